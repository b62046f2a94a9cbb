//! Which graphics stack draws the window, and the order they are tried in.
//!
//! wgpu picks one backend and does not fall back when it fails: under a virtual
//! machine, a remote desktop or a broken driver, Direct3D 12 can hand out a device
//! that dies on the first shader (seen under Wine: "FXC D3DCompile error", "Parent
//! device is lost"). The window is then opened again with the next renderer, so a
//! technician's tool opens on whatever graphics the machine has. Pure: the order and
//! the options; `gui::run` drives the attempts.

use std::fmt;

/// The environment variable that forces one renderer (also taken from `WGPU_BACKEND`).
pub const RENDERER_VARIABLE: &str = "PORTAPXE_RENDERER";

/// One way to draw the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    /// wgpu on Direct3D 12 (Windows).
    Dx12,
    /// wgpu on Vulkan (Windows, Linux).
    Vulkan,
    /// wgpu on Metal (macOS).
    Metal,
    /// wgpu on OpenGL (WGL, EGL or GLX).
    WgpuGl,
    /// eframe's own OpenGL renderer (glow), with no wgpu at all.
    Glow,
}

impl Renderer {
    /// The renderers tried, best first, on this system.
    pub fn order() -> &'static [Renderer] {
        if cfg!(target_os = "windows") {
            &[Self::Dx12, Self::Vulkan, Self::WgpuGl, Self::Glow]
        } else if cfg!(target_os = "macos") {
            &[Self::Metal, Self::Glow]
        } else {
            &[Self::Vulkan, Self::WgpuGl, Self::Glow]
        }
    }

    /// A name as a person types it (`PORTAPXE_RENDERER`, `WGPU_BACKEND`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "dx12" | "d3d12" | "direct3d12" => Some(Self::Dx12),
            "vulkan" | "vk" => Some(Self::Vulkan),
            "metal" | "mtl" => Some(Self::Metal),
            "gl" | "opengl" | "gles" => Some(Self::WgpuGl),
            "glow" => Some(Self::Glow),
            _ => None,
        }
    }

    /// `options` set to draw with this renderer.
    pub fn apply(self, mut options: eframe::NativeOptions) -> eframe::NativeOptions {
        let backends = match self {
            Self::Dx12 => eframe::wgpu::Backends::DX12,
            Self::Vulkan => eframe::wgpu::Backends::VULKAN,
            Self::Metal => eframe::wgpu::Backends::METAL,
            Self::WgpuGl => eframe::wgpu::Backends::GL,
            Self::Glow => {
                options.renderer = eframe::Renderer::Glow;
                return options;
            }
        };
        options.renderer = eframe::Renderer::Wgpu;
        let mut setup = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
        setup.instance_descriptor.backends = backends;
        options.wgpu_options.wgpu_setup = eframe::egui_wgpu::WgpuSetup::CreateNew(setup);
        options
    }
}

impl fmt::Display for Renderer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dx12 => "Direct3D 12",
            Self::Vulkan => "Vulkan",
            Self::Metal => "Metal",
            Self::WgpuGl => "OpenGL (wgpu)",
            Self::Glow => "OpenGL (glow)",
        })
    }
}

/// A forced renderer that names nothing known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}={value:?} names no renderer: use dx12, vulkan, metal, gl or glow, or unset it")]
pub struct UnknownRenderer {
    pub variable: &'static str,
    pub value: String,
}

/// The renderers to try: the one `forced` names (from `PORTAPXE_RENDERER`, else
/// `WGPU_BACKEND`) alone, or every one of this system in order.
pub fn attempts(forced: Option<(&'static str, String)>) -> Result<Vec<Renderer>, UnknownRenderer> {
    match forced {
        Some((variable, value)) => match Renderer::parse(&value) {
            Some(renderer) => Ok(vec![renderer]),
            None => Err(UnknownRenderer { variable, value }),
        },
        None => Ok(Renderer::order().to_vec()),
    }
}

/// What the environment forces, if anything.
pub fn forced_by_environment() -> Option<(&'static str, String)> {
    [RENDERER_VARIABLE, "WGPU_BACKEND"].into_iter().find_map(|variable| {
        let value = std::env::var(variable).ok().filter(|value| !value.trim().is_empty())?;
        Some((variable, value))
    })
}

/// What drew the first frame, for the log: the renderer and, for wgpu, the adapter.
pub fn describe_started(renderer: Renderer, cc: &eframe::CreationContext<'_>) -> String {
    match &cc.wgpu_render_state {
        Some(state) => {
            let info = state.adapter.get_info();
            format!("{renderer} on {} ({:?}, driver {})", info.name, info.device_type, info.driver)
        }
        None => renderer.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_tries_a_wgpu_backend_first_and_glow_last() {
        let order = Renderer::order();
        assert_eq!(order.last(), Some(&Renderer::Glow));
        assert_ne!(order[0], Renderer::Glow);
        if cfg!(target_os = "linux") {
            assert_eq!(order, [Renderer::Vulkan, Renderer::WgpuGl, Renderer::Glow]);
        }
    }

    #[test]
    fn a_forced_renderer_is_tried_alone_and_a_wrong_name_says_what_to_use() {
        assert_eq!(attempts(Some((RENDERER_VARIABLE, " GLOW ".into()))), Ok(vec![Renderer::Glow]));
        assert_eq!(attempts(Some(("WGPU_BACKEND", "vulkan".into()))), Ok(vec![Renderer::Vulkan]));
        assert_eq!(attempts(Some(("WGPU_BACKEND", "dx12".into()))), Ok(vec![Renderer::Dx12]));
        assert_eq!(attempts(None), Ok(Renderer::order().to_vec()));
        let wrong = attempts(Some((RENDERER_VARIABLE, "directx9".into()))).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "PORTAPXE_RENDERER=\"directx9\" names no renderer: use dx12, vulkan, metal, gl or glow, or unset it"
        );
    }

    #[test]
    fn each_renderer_sets_the_options_that_select_it() {
        let glow = Renderer::Glow.apply(eframe::NativeOptions::default());
        assert_eq!(glow.renderer, eframe::Renderer::Glow);
        for (renderer, backends) in [
            (Renderer::Dx12, eframe::wgpu::Backends::DX12),
            (Renderer::Vulkan, eframe::wgpu::Backends::VULKAN),
            (Renderer::Metal, eframe::wgpu::Backends::METAL),
            (Renderer::WgpuGl, eframe::wgpu::Backends::GL),
        ] {
            let options = renderer.apply(eframe::NativeOptions::default());
            assert_eq!(options.renderer, eframe::Renderer::Wgpu);
            let eframe::egui_wgpu::WgpuSetup::CreateNew(setup) = &options.wgpu_options.wgpu_setup else {
                panic!("{renderer}: a new wgpu setup")
            };
            assert_eq!(setup.instance_descriptor.backends, backends, "{renderer}");
        }
    }
}

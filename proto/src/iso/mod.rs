//! ISO images, the pure half: an image's index as data (`index`), its own boot menus
//! (`menu`, parsed without trusting the text), and its family with the recipe that
//! boots it (`family`). The engine's `iso` reads images into an [`IsoIndex`].

mod family;
/// An own-chain ISO entry for tests, here and in the engine (feature `fixtures`).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod index;
mod menu;

pub use family::{Family, IsoBoot, IsoPlan, IsoRefusal, OwnLoader, Site, plan};
pub use index::{ElTorito, Emulation, FLOPPY_IMAGE, IsoIndex, Member, SECTOR};
pub use menu::{MenuBoot, parse_grub, parse_syslinux};

/// What boots each ISO entry, by the entry's `image` as configured.
#[derive(Debug, Clone, Default)]
pub struct IsoPlans(std::collections::HashMap<String, IsoPlan>);

impl IsoPlans {
    pub fn insert(&mut self, image: String, plan: IsoPlan) {
        self.0.insert(image, plan);
    }

    pub fn get(&self, image: &str) -> Option<&IsoPlan> {
        self.0.get(image)
    }
}

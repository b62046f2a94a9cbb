//! The boot lines of an ISO's own menus: isolinux/syslinux (`kernel`/`linux`,
//! `append` with `initrd=`, `initrd`) and GRUB (`linux`/`linuxefi`, `initrd`/`initrdefi`
//! inside a `menuentry`). Pure and forgiving: a menu is text from an untrusted image, so
//! whatever it holds gives at worst no entry, never a panic.

/// One way the menu boots a Linux kernel: paths as the menu wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MenuBoot {
    pub kernel: String,
    pub initrds: Vec<String>,
    /// The kernel arguments, without `initrd=` (the boot loader that reads them is not ours).
    pub args: String,
}

/// Longest line looked at; longer ones are not boot lines.
const MAX_LINE: usize = 4096;
/// At most this many entries are kept from one menu.
const MAX_ENTRIES: usize = 64;

/// The entries of an isolinux/syslinux menu, in order.
pub fn parse_syslinux(text: &str) -> Vec<MenuBoot> {
    let mut entries = Collected::default();
    let mut current: Option<MenuBoot> = None;
    for line in lines(text) {
        let (keyword, rest) = split_keyword(line);
        match keyword.to_ascii_lowercase().as_str() {
            "label" => {
                entries.close(current.take());
                current = Some(MenuBoot::default());
            }
            "kernel" | "linux" => {
                let entry = current.get_or_insert_with(MenuBoot::default);
                entry.kernel = first_word(rest).to_owned();
            }
            "initrd" => {
                let entry = current.get_or_insert_with(MenuBoot::default);
                entry.initrds.extend(rest.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from));
            }
            "append" => {
                let entry = current.get_or_insert_with(MenuBoot::default);
                let mut args = Vec::new();
                for word in rest.split_whitespace() {
                    match word.strip_prefix("initrd=") {
                        Some(list) => entry.initrds.extend(list.split(',').filter(|p| !p.is_empty()).map(String::from)),
                        None => args.push(word),
                    }
                }
                entry.args = args.join(" ");
            }
            _ => {}
        }
        if entries.is_full() {
            break;
        }
    }
    entries.finish(current)
}

/// The `linux`/`initrd` pairs of a GRUB configuration, in order.
pub fn parse_grub(text: &str) -> Vec<MenuBoot> {
    let mut entries = Collected::default();
    let mut current: Option<MenuBoot> = None;
    for line in lines(text) {
        let (keyword, rest) = split_keyword(line);
        match keyword {
            "menuentry" | "submenu" => entries.close(current.take()),
            "linux" | "linuxefi" | "linux16" => {
                entries.close(current.take());
                let mut words = rest.split_whitespace();
                let kernel = words.next().unwrap_or_default().to_owned();
                let args: Vec<&str> = words.collect();
                current = Some(MenuBoot { kernel, initrds: Vec::new(), args: args.join(" ") });
            }
            "initrd" | "initrdefi" | "initrd16" => {
                if let Some(entry) = current.as_mut() {
                    entry.initrds.extend(rest.split_whitespace().map(String::from));
                }
            }
            _ => {}
        }
        if entries.is_full() {
            break;
        }
    }
    entries.finish(current)
}

/// The entries of one menu: an entry is kept when it names a kernel, at most [`MAX_ENTRIES`].
#[derive(Default)]
struct Collected(Vec<MenuBoot>);

impl Collected {
    fn close(&mut self, entry: Option<MenuBoot>) {
        self.0.extend(entry.filter(|entry| !entry.kernel.is_empty()));
    }

    fn is_full(&self) -> bool {
        self.0.len() >= MAX_ENTRIES
    }

    fn finish(mut self, last: Option<MenuBoot>) -> Vec<MenuBoot> {
        self.close(last);
        self.0.truncate(MAX_ENTRIES);
        self.0
    }
}

/// Trimmed, non-comment lines of sensible length.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#') && line.len() <= MAX_LINE)
}

fn split_keyword(line: &str) -> (&str, &str) {
    match line.split_once(char::is_whitespace) {
        Some((keyword, rest)) => (keyword, rest.trim()),
        None => (line, ""),
    }
}

fn first_word(text: &str) -> &str {
    text.split_whitespace().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_mini_iso_menu() {
        // The layout of Debian's mini.iso (isolinux/txt.cfg), included from isolinux.cfg.
        let text = "default install\nlabel install\n\tmenu label ^Install\n\tmenu default\n\tkernel linux\n\
                    \tappend vga=788 initrd=initrd.gz --- quiet \n";
        assert_eq!(
            parse_syslinux(text),
            vec![MenuBoot {
                kernel: "linux".into(),
                initrds: vec!["initrd.gz".into()],
                args: "vga=788 --- quiet".into()
            }]
        );
    }

    #[test]
    fn several_syslinux_labels_with_separate_initrd_lines() {
        let text = "# comment\nLABEL live\n  KERNEL /live/vmlinuz\n  INITRD /live/initrd.img\n  APPEND boot=live \
                    components quiet\nlabel memtest\n  kernel /live/memtest\nlabel empty\n";
        let entries = parse_syslinux(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].kernel, "/live/vmlinuz");
        assert_eq!(entries[0].initrds, vec!["/live/initrd.img"]);
        assert_eq!(entries[0].args, "boot=live components quiet");
        assert_eq!(entries[1].kernel, "/live/memtest");
    }

    #[test]
    fn grub_entries() {
        let text = "set timeout=5\nmenuentry 'Try or Install Ubuntu' {\n\tset gfxpayload=keep\n\
                    \tlinux\t/casper/vmlinuz  --- quiet splash\n\tinitrd\t/casper/initrd\n}\n\
                    menuentry 'Safe' {\n linuxefi /casper/vmlinuz nomodeset\n initrdefi /casper/initrd /casper/extra\n}\n";
        let entries = parse_grub(text);
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0],
            MenuBoot {
                kernel: "/casper/vmlinuz".into(),
                initrds: vec!["/casper/initrd".into()],
                args: "--- quiet splash".into()
            }
        );
        assert_eq!(entries[1].initrds, vec!["/casper/initrd", "/casper/extra"]);
    }

    #[test]
    fn hostile_menus_never_panic_and_stay_bounded() {
        let mut seed = 0xdead_beef_cafe_f00du64;
        let words = [
            "label",
            "kernel",
            "append",
            "initrd=",
            "linux",
            "initrd",
            "menuentry",
            "{",
            "}",
            "\n",
            " ",
            ",",
            "é",
            "\0",
        ];
        for _ in 0..2000 {
            let mut text = String::new();
            for _ in 0..200 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(words[(seed % words.len() as u64) as usize]);
            }
            assert!(parse_syslinux(&text).len() <= MAX_ENTRIES);
            assert!(parse_grub(&text).len() <= MAX_ENTRIES);
        }
        let many = "label a\nkernel k\n".repeat(1000);
        assert_eq!(parse_syslinux(&many).len(), MAX_ENTRIES);
    }
}

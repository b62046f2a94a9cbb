//! What one machine boots this time it network-boots, decided when it asks rather than
//! when serving started: every generated iPXE menu and GRUB configuration first fetches
//! `NEXT_BOOT_DIR/<its MAC, dashed>.ipxe|.cfg`. The answer is, in this order:
//! 1. imaging's, when the imaging hub has something for the machine (the agent while it
//!    has a capture or restore task; its own disk once, right after a restore);
//! 2. the one-off boot planned for it ([`NextBootTable`]: an entry once, or its disk
//!    once), used up by this answer;
//! 3. nothing (an empty script): the pins and the menu follow.
//!
//! So seats can be sent to imaging, and a machine to one entry, while serving goes on:
//! nothing is restarted, no machine that is booting is cut off.
//!
//! An ISO entry that boots through its image's own signed chain (`iso::OwnLoader`) is
//! planned the same way: GRUB asks at `NEXT_BOOT_DIR/own-loader/<entry>/<MAC>.cfg`, which
//! plans the entry once and answers with a restart; the DHCP answer to that machine's
//! next boot hands it the image's shim ([`NextBootAnswers::one_off_x64_loader`]), and
//! the image's GRUB then reads this answer like any other menu.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::BootEntry;
use crate::events::{EngineEvent, EventSink, NextBoot, NextBootEvent};
use crate::imaging::hub::{ImagingHub, SeatBoot};
use crate::iso::{IsoBoot, IsoPlans};
use crate::mac::MacAddr;
use crate::served::{MadeOnRequest, NEXT_BOOT_DIR};

/// The one-off boots planned, by MAC. Kept by whoever plans them (the window, the CLI)
/// across starts of serving; an engine reads and uses them up.
#[derive(Debug, Default)]
pub struct NextBootTable {
    planned: Mutex<BTreeMap<MacAddr, NextBoot>>,
}

impl NextBootTable {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn planned(&self) -> MutexGuard<'_, BTreeMap<MacAddr, NextBoot>> {
        // Plain data: go on with it after a panic elsewhere.
        self.planned.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Plans `boot` for `mac`'s next network boot (replacing what was planned).
    pub fn plan(&self, mac: MacAddr, boot: NextBoot) {
        self.planned().insert(mac, boot);
    }

    /// Drops what was planned for `mac`; returns it.
    pub fn cancel(&self, mac: MacAddr) -> Option<NextBoot> {
        self.planned().remove(&mac)
    }

    /// Everything planned and not used yet, by MAC.
    pub fn all(&self) -> Vec<(MacAddr, NextBoot)> {
        self.planned().iter().map(|(mac, boot)| (*mac, boot.clone())).collect()
    }

    fn peek(&self, mac: MacAddr) -> Option<NextBoot> {
        self.planned().get(&mac).cloned()
    }
}

/// Which menu asks: the answer is written in its language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Menu {
    Ipxe,
    Grub,
}

/// What a machine is answered, before it is put into a menu's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Imaging(SeatBoot),
    /// The entry at this index of the served entries, alone.
    Entry(usize),
    LocalDisk,
    Nothing,
}

/// The answers at [`NEXT_BOOT_DIR`] for one start of serving.
pub struct NextBootAnswers {
    table: Arc<NextBootTable>,
    imaging: Option<Arc<ImagingHub>>,
    /// The entries served: each one's name, iPXE script alone, and whether GRUB hands it
    /// to iPXE (a chain URL, a `sanboot`ed ISO), which then asks again.
    entries: Vec<EntryAnswer>,
    events: EventSink,
    /// What each machine was answered lately: a menu that asks again at once (a TFTP
    /// request sent again, a download that broke) gets the same answer, not "nothing".
    recent: Mutex<Vec<Recent>>,
    /// When each machine was first handed an image's own loader for its planned entry.
    handed: Mutex<BTreeMap<MacAddr, Instant>>,
    /// [`OWN_LOADER_HANDED_FOR`] (shorter in tests).
    handed_for: Duration,
}

#[derive(Debug)]
struct EntryAnswer {
    name: String,
    ipxe_script: String,
    grub_hands_to_ipxe: bool,
    /// The image's own shim, when the entry boots through its image's own chain.
    own_shim: Option<String>,
}

#[derive(Debug, Clone)]
struct Recent {
    mac: MacAddr,
    menu: Menu,
    at: Instant,
    answer: Answer,
}

/// How long a machine's question is answered the same way again.
const SAME_ANSWER_FOR: Duration = Duration::from_secs(5);

/// How long a machine is handed an image's own loader for its planned entry, from the
/// first time: a boot through it asks for the entry within a minute (36 s for two whole
/// boots in the lab, firmware retries included).
const OWN_LOADER_HANDED_FOR: Duration = Duration::from_secs(180);

impl std::fmt::Debug for NextBootAnswers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextBootAnswers").field("table", &self.table).finish_non_exhaustive()
    }
}

impl NextBootAnswers {
    /// `base_url` as for the menu (`ipxe::generate_script`).
    pub fn new(
        table: Arc<NextBootTable>,
        imaging: Option<Arc<ImagingHub>>,
        entries: &[BootEntry],
        isos: &IsoPlans,
        base_url: &str,
        events: EventSink,
    ) -> Self {
        let entries = entries
            .iter()
            .map(|entry| EntryAnswer {
                name: entry.name().to_owned(),
                ipxe_script: crate::ipxe::entry_script(entry, isos, base_url),
                grub_hands_to_ipxe: grub_hands_to_ipxe(entry, isos),
                own_shim: match entry {
                    BootEntry::Iso { image, .. } => {
                        isos.get(image).and_then(|plan| plan.own_loader.as_ref()).map(|own| own.shim.clone())
                    }
                    _ => None,
                },
            })
            .collect();
        Self {
            table,
            imaging,
            entries,
            events,
            recent: Mutex::default(),
            handed: Mutex::default(),
            handed_for: OWN_LOADER_HANDED_FOR,
        }
    }

    /// What `mac` gets now when `menu` asks; a planned one-off boot is used up (except
    /// when GRUB hands the entry to iPXE: iPXE's question uses it up).
    pub fn answer(&self, mac: MacAddr, menu: Menu) -> Answer {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        recent.retain(|r| r.at.elapsed() < SAME_ANSWER_FOR);
        if let Some(again) = recent.iter().find(|r| r.mac == mac && r.menu == menu) {
            return again.answer.clone();
        }
        let answer = self.fresh_answer(mac, menu);
        if answer != Answer::Nothing {
            recent.push(Recent { mac, menu, at: Instant::now(), answer: answer.clone() });
        }
        answer
    }

    /// The loader `mac`'s DHCP answer hands an x64 UEFI PXE machine, when its planned
    /// one-off boot is an entry that boots through its image's own chain: that image's
    /// shim. Handing it out uses nothing up (the image's GRUB asking does), but only for
    /// [`OWN_LOADER_HANDED_FOR`] from the first time: a machine whose firmware refuses the
    /// shim, or whose image GRUB never reads PortaPXE's menu, must not get it for ever.
    /// Imaging answers first, as in [`Self::answer`].
    pub fn one_off_x64_loader(&self, mac: MacAddr) -> Option<String> {
        let mut handed = self.handed.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let shim = match self.table.peek(mac) {
            Some(NextBoot::Entry(name)) => {
                self.entries.iter().find(|entry| entry.name == name).and_then(|entry| entry.own_shim.clone())
            }
            _ => None,
        };
        let imaging = self.imaging.as_ref().is_some_and(|hub| hub.involved_seat_boot(mac).is_some());
        let Some(shim) = shim.filter(|_| !imaging) else {
            handed.remove(&mac);
            return None;
        };
        let first = *handed.entry(mac).or_insert_with(Instant::now);
        if first.elapsed() <= self.handed_for {
            return Some(shim);
        }
        handed.remove(&mac);
        if let Some(boot) = self.table.cancel(mac) {
            self.events.emit(EngineEvent::NextBoot(NextBootEvent { mac, boot, given: false, expired: true }));
        }
        None
    }

    /// GRUB's request to boot entry `index` through its image's own chain: plans it as
    /// `mac`'s next boot and answers with a restart, or with nothing (GRUB then tries
    /// the kernel itself) when the entry has no such chain.
    fn restart_into_own_loader(&self, mac: MacAddr, index: usize) -> String {
        let Some(entry) = self.entries.get(index).filter(|entry| entry.own_shim.is_some()) else {
            return "# that entry has no signed chain of its own: its kernel is tried here\n".into();
        };
        self.table.plan(mac, NextBoot::Entry(entry.name.clone()));
        tracing::info!(%mac, entry = %entry.name, "restarts once into the image's own signed loader");
        crate::grub::restart_config(&format!("restarting into the signed loader of {}", entry.name))
    }

    fn fresh_answer(&self, mac: MacAddr, menu: Menu) -> Answer {
        if let Some(seat) = self.imaging.as_ref().and_then(|hub| hub.involved_seat_boot(mac)) {
            return Answer::Imaging(seat);
        }
        let Some(planned) = self.table.peek(mac) else { return Answer::Nothing };
        let index = match &planned {
            NextBoot::LocalDisk => None,
            NextBoot::Entry(name) => self.entries.iter().position(|served| &served.name == name),
        };
        if let Some(index) = index
            && menu == Menu::Grub
            && self.entries[index].grub_hands_to_ipxe
        {
            return Answer::Entry(index);
        }
        let Some(boot) = self.table.cancel(mac) else { return Answer::Nothing };
        let answer = match (&boot, index) {
            (NextBoot::LocalDisk, _) => Some(Answer::LocalDisk),
            (NextBoot::Entry(_), index) => index.map(Answer::Entry),
        };
        self.events.emit(EngineEvent::NextBoot(NextBootEvent { mac, boot, given: answer.is_some(), expired: false }));
        answer.unwrap_or(Answer::Nothing)
    }

    /// `answer` in `menu`'s words.
    pub fn text(&self, answer: &Answer, menu: Menu) -> String {
        const DISK: &str = "booting this machine's own disk, as planned";
        match (answer, menu) {
            (Answer::Imaging(SeatBoot::Agent(agent)), Menu::Ipxe) => agent.script(),
            (Answer::Imaging(SeatBoot::LocalDisk), Menu::Ipxe) => {
                crate::ipxe::leave_script("nothing to image on this machine; booting its disk")
            }
            (Answer::Imaging(seat), Menu::Grub) => seat.grub_config(),
            (Answer::Entry(index), Menu::Ipxe) => self
                .entries
                .get(*index)
                .map_or_else(|| crate::ipxe::NOTHING_PLANNED.into(), |entry| entry.ipxe_script.clone()),
            (Answer::Entry(index), Menu::Grub) => crate::grub::once_config(*index),
            (Answer::LocalDisk, Menu::Ipxe) => crate::ipxe::leave_script(DISK),
            (Answer::LocalDisk, Menu::Grub) => crate::grub::leave_config(DISK),
            (Answer::Nothing, Menu::Ipxe) => crate::ipxe::NOTHING_PLANNED.into(),
            (Answer::Nothing, Menu::Grub) => "# nothing planned for this machine: its menu follows\n".into(),
        }
    }
}

/// Whether GRUB's menu hands `entry` to iPXE (`grub::menu` chain-loads it): a chain URL,
/// an ISO it cannot boot itself.
fn grub_hands_to_ipxe(entry: &BootEntry, isos: &IsoPlans) -> bool {
    match entry {
        BootEntry::Chain { .. } => true,
        BootEntry::Iso { image, .. } => matches!(
            isos.get(image).map(|plan| &plan.boot),
            None | Some(IsoBoot::Sanboot | IsoBoot::Programs { efi: None, .. })
        ),
        _ => false,
    }
}

/// What a name at [`NEXT_BOOT_DIR`] asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// What this machine boots this time (`<MAC, dashed>.ipxe|.cfg`).
    NextBoot(MacAddr, Menu),
    /// Entry `index` through its image's own signed chain (`own-loader/<index>/<MAC>.cfg`).
    OwnLoader(MacAddr, usize),
}

/// What a name at [`NEXT_BOOT_DIR`] asks for.
pub fn asked_for(path: &str) -> Option<Asked> {
    let name = path.strip_prefix(NEXT_BOOT_DIR)?.strip_prefix('/')?;
    if let Some(own) = name.strip_prefix(crate::grub::OWN_LOADER_FOLDER).and_then(|rest| rest.strip_prefix('/')) {
        let (index, mac) = own.split_once('/')?;
        // Digits only: `usize::from_str` also takes a leading '+'.
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return Some(Asked::OwnLoader(MacAddr::from_dashed(mac.strip_suffix(".cfg")?)?, index.parse().ok()?));
    }
    let (mac, menu) = asked(name)?;
    Some(Asked::NextBoot(mac, menu))
}

/// The MAC and menu of `<MAC, dashed>.ipxe|.cfg`.
fn asked(name: &str) -> Option<(MacAddr, Menu)> {
    let (mac, menu) = match name.strip_suffix(".ipxe") {
        Some(mac) => (mac, Menu::Ipxe),
        None => (name.strip_suffix(".cfg")?, Menu::Grub),
    };
    Some((MacAddr::from_dashed(mac)?, menu))
}

impl MadeOnRequest for NextBootAnswers {
    fn make(&self, path: &str) -> Option<Bytes> {
        Some(match asked_for(path)? {
            Asked::NextBoot(mac, menu) => self.text(&self.answer(mac, menu), menu).into(),
            Asked::OwnLoader(mac, index) => self.restart_into_own_loader(mac, index).into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::hub::AgentBoot;

    const BASE: &str = "http://10.0.0.1";

    fn mac(last: u8) -> MacAddr {
        MacAddr([0x52, 0x54, 0, 0, 0, last])
    }

    fn entries() -> Vec<BootEntry> {
        vec![
            BootEntry::Linux {
                name: "Debian".into(),
                kernel: "debian/vmlinuz".into(),
                initrd: vec!["debian/initrd.img".into()],
                cmdline: String::new(),
            },
            BootEntry::Chain { name: "Lab menu".into(), url: "http://10.0.0.9/menu.ipxe".into() },
        ]
    }

    fn agent_boot() -> AgentBoot {
        AgentBoot {
            base_url: BASE.into(),
            kernel: "agent/vmlinuz".into(),
            initrd: "agent/initrd.img".into(),
            server: "10.0.0.1:80".into(),
            cmdline: String::new(),
        }
    }

    fn answers(imaging: Option<Arc<ImagingHub>>) -> (Arc<NextBootTable>, NextBootAnswers, EventSink) {
        let table = NextBootTable::new();
        let events = EventSink::new();
        let answers =
            NextBootAnswers::new(table.clone(), imaging, &entries(), &IsoPlans::default(), BASE, events.clone());
        (table, answers, events)
    }

    #[test]
    fn names_are_the_dashed_lower_case_mac_with_the_menus_extension() {
        assert_eq!(asked_for("portapxe/next/52-54-00-00-00-07.ipxe"), Some(Asked::NextBoot(mac(7), Menu::Ipxe)));
        assert_eq!(asked_for("portapxe/next/52-54-00-00-00-07.cfg"), Some(Asked::NextBoot(mac(7), Menu::Grub)));
        assert_eq!(asked_for("portapxe/next/own-loader/12/52-54-00-00-00-07.cfg"), Some(Asked::OwnLoader(mac(7), 12)));
        for other in [
            "portapxe/next/52-54-00-00-00-07",
            "portapxe/next/52:54:00:00:00:07.ipxe",
            "portapxe/next/52-54-00-00-00-0A.ipxe",
            "portapxe/next/x/52-54-00-00-00-07.ipxe",
            "portapxe/nextx/52-54-00-00-00-07.ipxe",
            "next/52-54-00-00-00-07.ipxe",
            "portapxe/next/52-54-00-00-00-07.ipxe.ipxe",
            "portapxe/next/own-loader/+1/52-54-00-00-00-07.cfg",
            "portapxe/next/own-loader//52-54-00-00-00-07.cfg",
            "portapxe/next/own-loader/1/52-54-00-00-00-07.ipxe",
            "portapxe/next/own-loader/1/x/52-54-00-00-00-07.cfg",
            "portapxe/next/own-loader/99999999999999999999999/52-54-00-00-00-07.cfg",
        ] {
            assert_eq!(asked_for(other), None, "{other}");
        }
    }

    #[test]
    fn a_planned_entry_is_given_once_then_the_menu_follows() {
        let (table, answers, events) = answers(None);
        let mut rx = events.subscribe();
        table.plan(mac(1), NextBoot::Entry("Lab menu".into()));
        assert_eq!(answers.answer(mac(2), Menu::Ipxe), Answer::Nothing, "another machine");
        let first = answers.make("portapxe/next/52-54-00-00-00-01.ipxe").unwrap();
        let first = std::str::from_utf8(&first).unwrap();
        assert!(first.starts_with("#!ipxe\n") && first.contains("chain http://10.0.0.9/menu.ipxe"), "{first}");
        assert!(!first.contains("portapxe/next"), "the entry alone, not the menu again: {first}");
        let again = answers.make("portapxe/next/52-54-00-00-00-01.ipxe").unwrap();
        assert_eq!(again, first.as_bytes(), "asked again at once (a retry): the same answer");
        assert_eq!(answers.fresh_answer(mac(1), Menu::Ipxe), Answer::Nothing, "used up");
        assert!(table.all().is_empty());
        let Ok(EngineEvent::NextBoot(event)) = rx.try_recv() else { panic!("no event") };
        assert_eq!(
            event,
            NextBootEvent { mac: mac(1), boot: NextBoot::Entry("Lab menu".into()), given: true, expired: false }
        );
        assert_eq!(
            event.to_string(),
            "52:54:00:00:00:01: network-booted and was told to boot \"Lab menu\" once, as planned"
        );
    }

    #[test]
    fn grub_is_sent_to_the_entrys_own_configuration_and_the_disk_leaves_network_boot() {
        let (table, answers, _events) = answers(None);
        table.plan(mac(1), NextBoot::Entry("Debian".into()));
        assert_eq!(answers.fresh_answer(mac(1), Menu::Grub), Answer::Entry(0));
        assert_eq!(answers.text(&Answer::Entry(0), Menu::Grub), "configfile '/grub/entries/0.cfg'\n");
        assert!(table.all().is_empty(), "GRUB boots it itself: used up");
        table.plan(mac(1), NextBoot::LocalDisk);
        let answer = answers.fresh_answer(mac(1), Menu::Grub);
        assert_eq!(answer, Answer::LocalDisk);
        let ipxe = answers.text(&answer, Menu::Ipxe);
        assert!(ipxe.contains("set portapxe_leave 1\nexit\n"), "{ipxe}");
        assert!(answers.text(&answer, Menu::Grub).ends_with("exit\n"));
        let nothing = answers.text(&Answer::Nothing, Menu::Grub);
        assert!(nothing.lines().all(|line| line.starts_with('#')), "GRUB reads nothing to do: {nothing}");
    }

    #[test]
    fn an_entry_grub_hands_to_ipxe_is_used_up_by_ipxes_question() {
        let (table, answers, events) = answers(None);
        let mut rx = events.subscribe();
        table.plan(mac(1), NextBoot::Entry("Lab menu".into()));
        assert_eq!(answers.fresh_answer(mac(1), Menu::Grub), Answer::Entry(1), "GRUB chain-loads iPXE for it");
        assert_eq!(table.all().len(), 1, "still planned: iPXE asks next");
        assert!(rx.try_recv().is_err(), "not given yet");
        assert_eq!(answers.fresh_answer(mac(1), Menu::Ipxe), Answer::Entry(1));
        assert!(table.all().is_empty());
        assert!(matches!(rx.try_recv(), Ok(EngineEvent::NextBoot(NextBootEvent { given: true, .. }))));
    }

    #[test]
    fn an_entry_no_longer_served_gives_the_menu_and_says_so() {
        let (table, answers, events) = answers(None);
        let mut rx = events.subscribe();
        table.plan(mac(3), NextBoot::Entry("Gone".into()));
        assert_eq!(answers.answer(mac(3), Menu::Ipxe), Answer::Nothing);
        let Ok(EngineEvent::NextBoot(event)) = rx.try_recv() else { panic!("no event") };
        assert!(!event.given);
        assert!(event.to_string().contains("no entry of that name is served now"), "{event}");
        assert!(table.all().is_empty(), "a plan that cannot be given is not kept for ever");
    }

    #[test]
    fn imaging_answers_first_and_leaves_the_plan_for_later() {
        let dir = tempfile::tempdir().unwrap();
        let hub = ImagingHub::new(dir.path().into(), EventSink::new());
        let (table, answers, _events) = answers(Some(hub.clone()));
        table.plan(mac(1), NextBoot::LocalDisk);
        assert_eq!(answers.answer(mac(2), Menu::Ipxe), Answer::Nothing, "imaging has nothing for it, nothing planned");
        hub.set_agent(agent_boot());
        hub.arm_capture(mac(1), "room-a").unwrap();
        let Answer::Imaging(SeatBoot::Agent(agent)) = answers.fresh_answer(mac(1), Menu::Ipxe) else {
            panic!("not the agent")
        };
        assert!(
            answers.text(&Answer::Imaging(SeatBoot::Agent(agent)), Menu::Ipxe).contains("portapxe.server=10.0.0.1:80")
        );
        assert_eq!(table.all(), vec![(mac(1), NextBoot::LocalDisk)], "kept for the boot after imaging");
        assert!(hub.cancel_capture(mac(1)));
        assert_eq!(answers.fresh_answer(mac(1), Menu::Ipxe), Answer::LocalDisk);
    }

    #[test]
    fn an_entry_through_its_images_own_chain_is_planned_by_grubs_restart_and_handed_out_by_dhcp() {
        let (ubuntu, isos) = portapxe_proto::iso::fixtures::own_chain_iso();
        let table = NextBootTable::new();
        let events = EventSink::new();
        let mut served = entries();
        served.push(ubuntu);
        let answers = NextBootAnswers::new(table.clone(), None, &served, &isos, BASE, events.clone());
        assert_eq!(answers.one_off_x64_loader(mac(1)), None, "nothing planned");
        let not_own = answers.make("portapxe/next/own-loader/0/52-54-00-00-00-01.cfg").unwrap();
        assert!(std::str::from_utf8(&not_own).unwrap().starts_with('#'), "Debian has no chain of its own");
        assert!(table.all().is_empty());
        let restart = answers.make("portapxe/next/own-loader/2/52-54-00-00-00-01.cfg").unwrap();
        let restart = std::str::from_utf8(&restart).unwrap();
        assert!(restart.contains("restarting into the signed loader of Ubuntu") && restart.ends_with("reboot\n"));
        assert_eq!(table.all(), vec![(mac(1), NextBoot::Entry("Ubuntu".into()))]);
        assert_eq!(answers.one_off_x64_loader(mac(1)).as_deref(), Some("u.iso/EFI/BOOT/BOOTX64.EFI"));
        assert_eq!(answers.one_off_x64_loader(mac(1)).as_deref(), Some("u.iso/EFI/BOOT/BOOTX64.EFI"), "not used up");
        assert_eq!(answers.one_off_x64_loader(mac(2)), None, "another machine");
        // The image's GRUB reads PortaPXE's menu, which asks first: the entry, alone.
        assert_eq!(answers.answer(mac(1), Menu::Grub), Answer::Entry(2));
        assert_eq!(answers.one_off_x64_loader(mac(1)), None, "used up: the next boot is the menu's again");
        table.plan(mac(3), NextBoot::Entry("Debian".into()));
        assert_eq!(answers.one_off_x64_loader(mac(3)), None, "a one-off of an entry without its own chain");

        // Handed out, and never asked for by the image's GRUB: dropped after a while, said.
        let mut answers = answers;
        answers.handed_for = Duration::from_millis(50);
        let mut rx = events.subscribe();
        table.plan(mac(4), NextBoot::Entry("Ubuntu".into()));
        assert!(answers.one_off_x64_loader(mac(4)).is_some(), "the first time");
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(answers.one_off_x64_loader(mac(4)), None, "not for ever");
        assert!(table.all().iter().all(|(planned, _)| *planned != mac(4)), "the plan is dropped");
        let Ok(EngineEvent::NextBoot(event)) = rx.try_recv() else { panic!("no event") };
        assert!(event.expired && !event.given, "{event:?}");
        assert!(event.to_string().contains("never asked for the entry"), "{event}");

        // A seat in imaging boots the agent through PortaPXE's chain, not the image's shim.
        let dir = tempfile::tempdir().unwrap();
        let hub = ImagingHub::new(dir.path().into(), EventSink::new());
        let with_hub = NextBootAnswers::new(table.clone(), Some(hub.clone()), &served, &isos, BASE, events.clone());
        table.plan(mac(5), NextBoot::Entry("Ubuntu".into()));
        assert!(with_hub.one_off_x64_loader(mac(5)).is_some());
        hub.set_agent(agent_boot());
        hub.arm_capture(mac(5), "room-b").unwrap();
        assert_eq!(with_hub.one_off_x64_loader(mac(5)), None, "imaging first");
    }
}

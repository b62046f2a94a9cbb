//! PortaPXE end-to-end lab.
//!
//! Boots real firmware (QEMU: SeaBIOS + iPXE ROM, OVMF's own PXE client) and runs
//! real clients (busybox udhcpc, ISC dhclient, tftp-hpa, hand-built packets)
//! against the real `portapxe` binary, all inside throw-away network namespaces.
//! Nothing here ever touches the root namespace's network: every DHCP packet stays
//! on a bridge inside a namespace the [`Lab`] made and deletes.
//!
//! | module | what it owns |
//! |---|---|
//! | [`netns`] | namespaces, bridge, taps, veth clients; `in_netns` for sockets inside |
//! | [`ra`] | the network's own IPv6 router, standing in (proxy and boot-files-only tests): advertisements with lifetime 0 |
//! | [`binary`] | building / locating the `portapxe` binary |
//! | [`server`] | running `portapxe serve` in any mode (`dhcp`, `proxy`, `off`), readiness, SIGTERM, log + events on failure |
//! | [`daemon`] | every other server the lab runs (dnsmasq, isc-dhcpd, Kea, udhcpd): start, readiness by log or pid file, log on failure, stop by PID |
//! | [`events`] | the `--events` JSON lines, typed |
//! | [`expect`] | assertions over events that print the evidence when they fail |
//! | [`guest`] | guest kernels (x64, and ARM64 for the ARM64 Secure Boot test), busybox initramfs with a per-run marker, iPXE binaries, signed loaders |
//! | [`imaging`] | image folders in PortaPXE's format, udpcast `udp-receiver` seats, checks of what they received |
//! | [`qemu`] | QEMU command lines, bounded wait for the marker, boot time |
//! | [`clients`] | udhcpc, dhclient, tftp-hpa drivers |
//! | [`wire`] | hand-built DHCP (valid and hostile) and a raw TFTP client |
//! | [`standin`] | dnsmasq: stand-in server for the harness self-test; address-only "network DHCP" for proxy mode |
//!
//! Prerequisites: root; `apt-get install qemu-system-x86 ipxe-qemu ipxe ovmf
//! qemu-system-arm qemu-efi-aarch64 busybox-static udhcpc isc-dhcp-client tftp-hpa`;
//! `tests/lab/prepare-guest.sh target/lab`, `tests/lab/prepare-arm64.sh target/lab/arm64`
//! (`.ci/install-deps.sh` does all of it).

pub mod binary;
pub mod clients;
pub mod daemon;
pub mod events;
pub mod expect;
pub mod guest;
pub mod imaging;
pub mod netns;
pub mod process;
pub mod qemu;
pub mod ra;
pub mod server;
pub mod standin;
pub mod wire;

pub use netns::{ClientNs, Lab};
pub use server::{Server, ServerSpec};

/// Parse `52:54:00:12:34:56`.
pub fn mac_bytes(mac: &str) -> [u8; 6] {
    let mut bytes = [0u8; 6];
    let parts: Vec<&str> = mac.split(':').collect();
    assert_eq!(parts.len(), 6, "bad MAC {mac}");
    for (byte, part) in bytes.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16).unwrap_or_else(|_| panic!("bad MAC {mac}"));
    }
    bytes
}

/// The lab pool of `lab` as a range (the default [`ServerSpec`] pool).
pub fn pool(lab: &Lab) -> std::ops::RangeInclusive<std::net::Ipv4Addr> {
    lab.ip(100)..=lab.ip(150)
}

/// A server root with Debian's iPXE loaders and a guest (kernel + marker initrd),
/// and the spec that serves them with the generated script.
pub fn boot_setup(lab: &Lab) -> (ServerSpec, guest::Guest) {
    let spec = ServerSpec::new(lab).expect("server root");
    guest::install_ipxe_binaries(&spec.root).expect("iPXE loaders");
    let guest = guest::Guest::install(&spec.root).expect("guest files");
    let mut spec = spec;
    spec.extra.extend(guest.server_args());
    (spec, guest)
}

/// [`boot_setup`] with the signed chain (shim, network GRUB) in the root too.
pub fn signed_boot_setup(lab: &Lab) -> (ServerSpec, guest::Guest) {
    let (spec, guest) = boot_setup(lab);
    guest::install_signed_loaders(&spec.root).expect("signed loaders");
    (spec, guest)
}

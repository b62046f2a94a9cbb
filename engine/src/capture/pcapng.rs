//! A pcapng file that Wireshark opens: one section, one Ethernet interface,
//! one enhanced packet block per captured frame.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};

/// Frames larger than this are cut (DHCP fits easily).
pub const SNAPLEN: u32 = 2048;

/// `if_tsresol` for 10^-9 s (pcapng: a power of ten when the top bit is clear).
const NANOSECONDS: u8 = 9;

pub struct PcapNgRecorder {
    writer: PcapNgWriter<BufWriter<File>>,
}

impl PcapNgRecorder {
    /// Creates (or truncates) `path`, and its folder when missing, and writes the
    /// section and interface headers.
    pub fn create(path: &Path, interface: &str) -> io::Result<Self> {
        if let Some(folder) = path.parent().filter(|folder| !folder.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)?;
        }
        let file = BufWriter::new(File::create(path)?);
        let mut writer = PcapNgWriter::new(file).map_err(io::Error::other)?;
        let interface_block = InterfaceDescriptionBlock {
            linktype: DataLink::ETHERNET,
            snaplen: SNAPLEN,
            // pcap-file writes packet times in nanoseconds; without `if_tsresol` = 9
            // readers take them as microseconds (tcpdump showed the year 58900).
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(interface.to_owned())),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        };
        writer.write_pcapng_block(interface_block).map_err(io::Error::other)?;
        Ok(Self { writer })
    }

    /// Appends one frame captured at `timestamp` (since the Unix epoch) and flushes,
    /// so the file is readable while capture goes on.
    pub fn record(&mut self, timestamp: Duration, frame: &[u8], original_len: u32) -> io::Result<()> {
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp,
            original_len,
            data: Cow::Borrowed(frame),
            options: vec![],
        };
        self.writer.write_pcapng_block(block).map_err(io::Error::other)?;
        self.writer.get_mut().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};

    #[test]
    fn frames_read_back_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dhcp.pcapng");
        let frame = crate::capture::frame::build_frame([0xaa, 0, 0, 0, 0, 2], [10, 0, 0, 2].into(), 67, &[1, 2, 3, 4]);
        let mut recorder = PcapNgRecorder::create(&path, "br0").unwrap();
        recorder.record(Duration::from_millis(1_700_000_000_123), &frame, frame.len() as u32).unwrap();
        recorder.record(Duration::from_millis(1_700_000_000_456), &frame, frame.len() as u32).unwrap();
        drop(recorder);

        let mut reader = PcapNgReader::new(File::open(&path).unwrap()).unwrap();
        let mut packets = Vec::new();
        let mut resolution = None;
        while let Some(block) = reader.next_block() {
            match block.unwrap() {
                Block::EnhancedPacket(packet) => packets.push((packet.timestamp, packet.data.into_owned())),
                Block::InterfaceDescription(interface) => {
                    resolution = interface.options.iter().find_map(|option| match option {
                        InterfaceDescriptionOption::IfTsResol(resolution) => Some(*resolution),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
        // Other readers (tcpdump, Wireshark) need to be told that times are in nanoseconds.
        assert_eq!(resolution, Some(NANOSECONDS));
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].1, frame);
        assert_eq!(packets[1].0, Duration::from_millis(1_700_000_000_456));
    }
}

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, OptionCode};

use crate::answer::{Destination, Outcome, Reply, admit, answered, boot_plan, boot_reply};
use crate::events::{DhcpEvent, DhcpReason, DhcpRole};
use crate::pxe::{BootPlan, BootSettings, PXE_BOOT_ITEM, PxeRequest};
use crate::rules::ClientRules;

/// Which of the two proxyDHCP sockets a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyPort {
    /// UDP 67, beside the network's DHCP server: DISCOVERs get a proxy offer.
    Dhcp,
    /// UDP 4011, the PXE boot server port: REQUESTs get the boot file in an ACK.
    BootServer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySettings {
    pub server_ip: Ipv4Addr,
    pub boot: BootSettings,
    pub rules: ClientRules,
}

/// What to answer a client on `port`. Non-PXE clients and address requests are
/// left to the network's DHCP server: silence, with the reason in the event.
/// `one_off_x64` as for full DHCP (`answer::boot_plan`).
pub fn decide(
    message: &Message,
    request: &PxeRequest,
    settings: &ProxySettings,
    port: ProxyPort,
    one_off_x64: Option<&str>,
) -> Outcome {
    let role = match port {
        ProxyPort::Dhcp => DhcpRole::Proxy,
        ProxyPort::BootServer => DhcpRole::BootServer,
    };
    let mut event = DhcpEvent::for_request(request, role);
    let silent = Outcome::silent;
    if !request.is_boot_client() {
        return silent(event, DhcpReason::NotPxeClient);
    }
    let rule = match admit(&settings.rules, request) {
        Ok(rule) => rule,
        Err(reason) => return silent(event, reason),
    };
    let reply_type = match (port, request.message_type) {
        (ProxyPort::Dhcp, MessageType::Discover) => MessageType::Offer,
        (ProxyPort::BootServer, MessageType::Request | MessageType::Inform) => MessageType::Ack,
        (ProxyPort::Dhcp, _) => return silent(event, DhcpReason::AddressRequest),
        (ProxyPort::BootServer, _) => return silent(event, DhcpReason::NotForBootServer),
    };
    let plan = boot_plan(request, &settings.boot, rule, one_off_x64);
    match &plan {
        BootPlan::AddressOnly => return silent(event, DhcpReason::NothingToBoot),
        BootPlan::NoBootFile { reason } => return silent(event, DhcpReason::NoBootFile(*reason)),
        _ => {}
    }

    let mut reply = boot_reply(message, request, reply_type, settings.server_ip, &plan);
    // Never an address: yiaddr stays 0.0.0.0; a 4011 client already has one.
    reply.set_ciaddr(request.ciaddr);
    if let Some(item) = &request.boot_item {
        echo_boot_item(&mut reply, item);
    }
    let destination = match port {
        ProxyPort::BootServer => Destination::Sender,
        ProxyPort::Dhcp if !request.giaddr.is_unspecified() => Destination::Relay(request.giaddr),
        ProxyPort::Dhcp => Destination::Broadcast,
    };
    answered(&mut event, reply_type, &plan, rule);
    event.reason = Some(match (port, request.is_ipxe) {
        (_, true) => DhcpReason::IpxeScript,
        (ProxyPort::Dhcp, false) => DhcpReason::BootFileOffered,
        (ProxyPort::BootServer, false) => DhcpReason::BootFileConfirmed,
    });
    Outcome { reply: Some(Reply { message: reply, destination }), persist: None, event }
}

/// A boot-server request names the item it wants; the ACK must name the same one.
fn echo_boot_item(reply: &mut Message, item: &[u8]) {
    let Ok(len) = u8::try_from(item.len()) else { return };
    let mut vendor = match reply.opts().get(OptionCode::VendorExtensions) {
        Some(DhcpOption::VendorExtensions(bytes)) => bytes.clone(),
        _ => vec![255],
    };
    if vendor.last() == Some(&255) {
        vendor.pop();
    }
    vendor.extend_from_slice(&[PXE_BOOT_ITEM, len]);
    vendor.extend_from_slice(item);
    vendor.push(255);
    reply.opts_mut().insert(DhcpOption::VendorExtensions(vendor));
}

#[cfg(test)]
mod tests {
    use super::*;
    use dhcproto::v4::{Architecture, Opcode};

    use crate::events::DhcpMessage;

    use crate::pxe::fixtures::{self, SERVER};

    fn settings() -> ProxySettings {
        let boot = BootSettings { uefi_arm64_file: None, ..fixtures::boot_settings() };
        ProxySettings { server_ip: SERVER, boot, rules: ClientRules::default() }
    }

    fn message(kind: MessageType, opts: Vec<DhcpOption>) -> Message {
        let mut msg = Message::default();
        msg.set_opcode(Opcode::BootRequest).set_chaddr(&[0x52, 0x54, 0, 0, 0, 1]).set_xid(7);
        msg.opts_mut().insert(DhcpOption::MessageType(kind));
        for opt in opts {
            msg.opts_mut().insert(opt);
        }
        msg
    }

    fn firmware(arch: u16) -> Vec<DhcpOption> {
        vec![
            DhcpOption::ClassIdentifier(format!("PXEClient:Arch:{arch:05}:UNDI:003000").into_bytes()),
            DhcpOption::ClientSystemArchitecture(Architecture::from(arch)),
            DhcpOption::ClientMachineIdentifier(vec![0; 17]),
        ]
    }

    fn run(msg: Message, port: ProxyPort) -> Outcome {
        let request = PxeRequest::from_message(&msg).unwrap();
        decide(&msg, &request, &settings(), port, None)
    }

    fn opt(msg: &Message, code: OptionCode) -> Option<&DhcpOption> {
        msg.opts().get(code)
    }

    #[test]
    fn proxy_offer_has_boot_info_but_never_an_address() {
        let outcome = run(message(MessageType::Discover, firmware(7)), ProxyPort::Dhcp);
        let Reply { message: offer, destination } = outcome.reply.unwrap();
        assert_eq!(destination, Destination::Broadcast);
        assert!(offer.yiaddr().is_unspecified());
        assert_eq!(offer.siaddr(), SERVER);
        assert_eq!(offer.fname_str().unwrap().unwrap(), "ipxe.efi");
        assert_eq!(offer.opts().msg_type(), Some(MessageType::Offer));
        assert_eq!(opt(&offer, OptionCode::ServerIdentifier), Some(&DhcpOption::ServerIdentifier(SERVER)));
        assert_eq!(opt(&offer, OptionCode::ClassIdentifier), Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec())));
        assert_eq!(opt(&offer, OptionCode::VendorExtensions), Some(&DhcpOption::VendorExtensions(vec![6, 1, 8, 255])));
        assert!(opt(&offer, OptionCode::ClientMachineIdentifier).is_some());
        for forbidden in [OptionCode::AddressLeaseTime, OptionCode::SubnetMask, OptionCode::Router] {
            assert!(opt(&offer, forbidden).is_none(), "{forbidden:?} in a proxy offer");
        }
        assert_eq!((outcome.event.role, outcome.event.answered), (DhcpRole::Proxy, Some(DhcpMessage::OFFER)));
        assert_eq!(outcome.event.answered_text().as_deref(), Some("proxy OFFER"));
    }

    #[test]
    fn client_without_guid_still_gets_an_offer() {
        let mut opts = firmware(0);
        opts.retain(|o| !matches!(o, DhcpOption::ClientMachineIdentifier(_)));
        let Reply { message: offer, .. } = run(message(MessageType::Discover, opts), ProxyPort::Dhcp).reply.unwrap();
        assert!(opt(&offer, OptionCode::ClientMachineIdentifier).is_none());
        assert_eq!(offer.fname_str().unwrap().unwrap(), "undionly.kpxe");
    }

    #[test]
    fn bootp_file_field_and_option_67_agree_for_clients_reading_either() {
        let Reply { message: offer, .. } =
            run(message(MessageType::Discover, firmware(0)), ProxyPort::Dhcp).reply.unwrap();
        assert_eq!(offer.fname_str().unwrap().unwrap(), "undionly.kpxe");
        assert_eq!(opt(&offer, OptionCode::BootfileName), Some(&DhcpOption::BootfileName(b"undionly.kpxe".to_vec())));
    }

    #[test]
    fn port_4011_request_gets_ack_back_to_sender_with_boot_item_echoed() {
        let mut opts = firmware(7);
        opts.push(DhcpOption::VendorExtensions(vec![71, 4, 0x80, 0, 0, 0, 255]));
        let mut msg = message(MessageType::Request, opts);
        msg.set_ciaddr(Ipv4Addr::new(10, 77, 0, 150));
        let outcome = run(msg, ProxyPort::BootServer);
        let Reply { message: ack, destination } = outcome.reply.unwrap();
        assert_eq!(destination, Destination::Sender);
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert!(ack.yiaddr().is_unspecified());
        assert_eq!(ack.ciaddr(), Ipv4Addr::new(10, 77, 0, 150));
        assert_eq!(ack.fname_str().unwrap().unwrap(), "ipxe.efi");
        assert_eq!(
            opt(&ack, OptionCode::VendorExtensions),
            Some(&DhcpOption::VendorExtensions(vec![6, 1, 8, 71, 4, 0x80, 0, 0, 0, 255]))
        );
    }

    #[test]
    fn ipxe_gets_the_script_in_proxy_mode_too() {
        let mut opts = firmware(0);
        opts.push(DhcpOption::UserClass(b"iPXE".to_vec()));
        let Reply { message: offer, .. } = run(message(MessageType::Discover, opts), ProxyPort::Dhcp).reply.unwrap();
        assert_eq!(offer.fname_str().unwrap().unwrap(), "http://10.77.0.1/boot.ipxe");
        assert!(opt(&offer, OptionCode::VendorExtensions).is_none());
        assert_eq!(opt(&offer, OptionCode::ClassIdentifier), Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec())));
    }

    #[test]
    fn silent_for_plain_clients_address_requests_and_unknown_arch() {
        let plain = run(message(MessageType::Discover, vec![]), ProxyPort::Dhcp);
        assert!(plain.reply.is_none());
        assert_eq!(plain.event.reason, Some(DhcpReason::NotPxeClient));
        let request_on_67 = run(message(MessageType::Request, firmware(0)), ProxyPort::Dhcp);
        assert!(request_on_67.reply.is_none());
        let discover_on_4011 = run(message(MessageType::Discover, firmware(0)), ProxyPort::BootServer);
        assert!(discover_on_4011.reply.is_none());
        let arm32 = run(message(MessageType::Discover, firmware(10)), ProxyPort::Dhcp);
        assert!(arm32.reply.is_none());
        assert!(matches!(arm32.event.reason, Some(DhcpReason::NoBootFile(_))), "{}", arm32.event.note());
    }

    #[test]
    fn relayed_discover_goes_back_to_the_relay() {
        let mut msg = message(MessageType::Discover, firmware(0));
        msg.set_giaddr(Ipv4Addr::new(10, 1, 0, 1));
        let Reply { destination, .. } = run(msg, ProxyPort::Dhcp).reply.unwrap();
        assert_eq!(destination, Destination::Relay(Ipv4Addr::new(10, 1, 0, 1)));
    }
}

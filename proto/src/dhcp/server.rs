//! The DHCP server as a pure function: one parsed request, the settings, the
//! lease table and the time in; a reply (or silence), lease changes and an event out.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType};
use ipnet::Ipv4Net;

use super::leases::{ClientKey, Lease, LeaseState, LeaseTable, OFFER_HOLD_SECS, Timestamp};
pub use crate::answer::{Destination, Outcome, Reply};
use crate::answer::{admit, answered, boot_plan, boot_reply, reply_skeleton};
use crate::events::{DhcpEvent, DhcpMessage, DhcpReason, DhcpRole};
use crate::pxe::{BootPlan, BootSettings, PxeRequest};
use crate::rules::{ClientRule, ClientRules};

/// Some ROMs drop BOOTP replies shorter than the RFC 951 minimum.
pub const MIN_BOOTP_LEN: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSettings {
    pub server_ip: Ipv4Addr,
    pub subnet: Ipv4Net,
    pub lease_time_secs: u32,
    pub router: Option<Ipv4Addr>,
    pub dns: Vec<Ipv4Addr>,
    pub boot: BootSettings,
    pub rules: ClientRules,
}

/// Decides what to answer to `request` (already parsed from `message`).
/// `one_off_x64` is the loader planned for this machine's next boot only (see
/// `answer::boot_plan`).
pub fn handle(
    message: &Message,
    request: &PxeRequest,
    settings: &DhcpSettings,
    leases: &mut LeaseTable,
    now: Timestamp,
    one_off_x64: Option<&str>,
) -> Outcome {
    let client = ClientKey::new(request.mac, request.client_id.as_deref());
    let mut event = DhcpEvent::for_request(request, DhcpRole::Server);
    let silent = Outcome::silent;
    let rule = match admit(&settings.rules, request) {
        Ok(rule) => rule,
        Err(reason) => return silent(event, reason),
    };
    if !request.giaddr.is_unspecified() && !settings.subnet.contains(&request.giaddr) {
        return silent(event, DhcpReason::ForeignRelay { relay: request.giaddr });
    }

    let answer = match request.message_type {
        MessageType::Discover => discover(request, &client, leases, now),
        MessageType::Request => request_(request, &client, settings, leases, now),
        MessageType::Release => {
            let released =
                request.server_id == Some(settings.server_ip) && leases.release(&client, request.ciaddr, now);
            let reason =
                if released { DhcpReason::Released { address: request.ciaddr } } else { DhcpReason::ReleaseNotOurs };
            Answer::Silent { reason, persist: released.then_some(request.ciaddr) }
        }
        MessageType::Decline => match request.requested_ip {
            Some(ip) if leases.decline(&client, ip, now) => {
                Answer::Silent { reason: DhcpReason::Declined { address: ip }, persist: Some(ip) }
            }
            _ => Answer::silent(DhcpReason::DeclineNotOffered),
        },
        MessageType::Inform => Answer::Ack { ip: None, reason: Some(DhcpReason::InformOnly) },
        _ => Answer::silent(DhcpReason::NotForServer),
    };

    match answer {
        Answer::Silent { reason, persist } => {
            let mut outcome = silent(event, reason);
            outcome.persist = persist;
            outcome
        }
        Answer::Nak { reason } => {
            event.answered = Some(DhcpMessage::NAK);
            event.reason = Some(reason);
            let reply = Reply { message: nak(message, settings), destination: destination(request, true) };
            Outcome { reply: Some(reply), persist: None, event }
        }
        Answer::Offer { ip } => finish(
            ReplyContext { message, request, settings, rule, one_off_x64 },
            MessageType::Offer,
            Some(ip),
            None,
            event,
        ),
        Answer::Ack { ip, reason } => {
            // Only a real lease (not an INFORM) must reach the disk before the ACK.
            let mut outcome = finish(
                ReplyContext { message, request, settings, rule, one_off_x64 },
                MessageType::Ack,
                ip,
                reason,
                event,
            );
            outcome.persist = ip;
            outcome
        }
    }
}

enum Answer {
    Silent {
        reason: DhcpReason,
        persist: Option<Ipv4Addr>,
    },
    Offer {
        ip: Ipv4Addr,
    },
    /// `ip` is `None` for INFORM: options only, no lease.
    Ack {
        ip: Option<Ipv4Addr>,
        reason: Option<DhcpReason>,
    },
    Nak {
        reason: DhcpReason,
    },
}

impl Answer {
    fn silent(reason: DhcpReason) -> Self {
        Self::Silent { reason, persist: None }
    }
}

fn discover(request: &PxeRequest, client: &ClientKey, leases: &mut LeaseTable, now: Timestamp) -> Answer {
    let ip = match leases.choose(client, request.requested_ip, now) {
        Ok(ip) => ip,
        Err(err) => return Answer::silent(DhcpReason::Lease(err)),
    };
    // Keep a bound lease bound (a client re-DISCOVERs after iPXE starts); only a new address is "offered".
    let state = match leases.get(ip) {
        Some(lease) if lease.client == *client && lease.state == LeaseState::Bound && lease.expires > now => {
            LeaseState::Bound
        }
        _ => LeaseState::Offered,
    };
    let expires = match state {
        LeaseState::Bound => leases.get(ip).map_or(now, |lease| lease.expires),
        _ => now + OFFER_HOLD_SECS,
    };
    let lease =
        Lease { ip, client: client.clone(), mac: request.mac, state, expires, hostname: request.hostname.clone() };
    match leases.assign(lease, now) {
        Ok(()) => Answer::Offer { ip },
        Err(err) => Answer::silent(DhcpReason::Lease(err)),
    }
}

fn request_(
    request: &PxeRequest,
    client: &ClientKey,
    settings: &DhcpSettings,
    leases: &mut LeaseTable,
    now: Timestamp,
) -> Answer {
    let ours = settings.server_ip;
    let wanted = match (request.server_id, request.ciaddr.is_unspecified(), request.requested_ip) {
        // SELECTING: the client names the server whose offer it took.
        (Some(server), _, _) if server != ours => {
            leases.drop_offer(client);
            return Answer::silent(DhcpReason::TookOtherOffer { server });
        }
        (Some(_), _, Some(ip)) => ip,
        (Some(_), false, None) => request.ciaddr,
        // INIT-REBOOT: the client asks to keep an address it remembers.
        (None, true, Some(ip)) => {
            if !settings.subnet.contains(&ip) {
                return Answer::Nak { reason: DhcpReason::NotOnNetwork { address: ip } };
            }
            match leases.lease_of(client) {
                Some(lease) if lease.ip == ip => ip,
                Some(lease) => {
                    return Answer::Nak { reason: DhcpReason::NotClientsAddress { address: ip, lease: lease.ip } };
                }
                None => {
                    return Answer::silent(DhcpReason::NoRecord { address: ip });
                }
            }
        }
        // RENEWING / REBINDING.
        (None, false, _) => request.ciaddr,
        _ => return Answer::silent(DhcpReason::NoAddressNamed),
    };
    let known = leases.lease_of(client).is_some_and(|lease| lease.ip == wanted && lease.state != LeaseState::Declined);
    if !known {
        if !leases.pool().contains(wanted) {
            return if settings.subnet.contains(&wanted) {
                Answer::Nak { reason: DhcpReason::NotInPool { address: wanted } }
            } else {
                Answer::silent(DhcpReason::ForeignAddress { address: wanted })
            };
        }
        return Answer::Nak { reason: DhcpReason::NotOffered { address: wanted } };
    }
    let lease = Lease {
        ip: wanted,
        client: client.clone(),
        mac: request.mac,
        state: LeaseState::Bound,
        expires: now + u64::from(settings.lease_time_secs),
        hostname: request.hostname.clone(),
    };
    match leases.assign(lease, now) {
        Ok(()) => Answer::Ack { ip: Some(wanted), reason: None },
        Err(err) => Answer::Nak { reason: DhcpReason::Lease(err) },
    }
}

/// What a reply is built from.
struct ReplyContext<'a> {
    message: &'a Message,
    request: &'a PxeRequest,
    settings: &'a DhcpSettings,
    rule: Option<(usize, &'a ClientRule)>,
    one_off_x64: Option<&'a str>,
}

fn finish(
    context: ReplyContext<'_>,
    kind: MessageType,
    ip: Option<Ipv4Addr>,
    reason: Option<DhcpReason>,
    mut event: DhcpEvent,
) -> Outcome {
    let ReplyContext { message, request, settings, rule, one_off_x64 } = context;
    let plan = boot_plan(request, &settings.boot, rule, one_off_x64);
    let reply_message = build_reply(message, request, settings, kind, ip, &plan);
    answered(&mut event, kind, &plan, rule);
    event.address = ip;
    event.reason = match (&plan, reason) {
        (BootPlan::NoBootFile { reason }, _) => Some(DhcpReason::NoBootFile(*reason)),
        (BootPlan::IpxeScript { .. }, None) => Some(DhcpReason::IpxeScript),
        (_, reason) => reason,
    };
    let destination = if ip.is_none() && !request.ciaddr.is_unspecified() && request.giaddr.is_unspecified() {
        Destination::Client(request.ciaddr)
    } else {
        destination(request, false)
    };
    Outcome { reply: Some(Reply { message: reply_message, destination }), persist: None, event }
}

/// RFC 2131 §4.1. A client without an address that did not ask for broadcast
/// would need an ARP entry we cannot portably create; broadcasting reaches it too.
fn destination(request: &PxeRequest, is_nak: bool) -> Destination {
    if !request.giaddr.is_unspecified() {
        Destination::Relay(request.giaddr)
    } else if !is_nak && !request.ciaddr.is_unspecified() {
        Destination::Client(request.ciaddr)
    } else {
        Destination::Broadcast
    }
}

fn nak(request: &Message, settings: &DhcpSettings) -> Message {
    reply_skeleton(request, MessageType::Nak, settings.server_ip)
}

fn build_reply(
    request_message: &Message,
    request: &PxeRequest,
    settings: &DhcpSettings,
    kind: MessageType,
    ip: Option<Ipv4Addr>,
    plan: &BootPlan,
) -> Message {
    let mut reply = boot_reply(request_message, request, kind, settings.server_ip, plan);
    if let Some(ip) = ip {
        reply.set_yiaddr(ip);
        let lease = settings.lease_time_secs;
        let opts = reply.opts_mut();
        opts.insert(DhcpOption::AddressLeaseTime(lease));
        opts.insert(DhcpOption::Renewal(lease / 2));
        opts.insert(DhcpOption::Rebinding(lease / 8 * 7));
    } else {
        reply.set_ciaddr(request.ciaddr);
    }
    let opts = reply.opts_mut();
    opts.insert(DhcpOption::SubnetMask(settings.subnet.netmask()));
    opts.insert(DhcpOption::BroadcastAddr(settings.subnet.broadcast()));
    if let Some(router) = settings.router {
        opts.insert(DhcpOption::Router(vec![router]));
    }
    if !settings.dns.is_empty() {
        opts.insert(DhcpOption::DomainNameServer(settings.dns.clone()));
    }
    reply
}

/// Encodes a reply padded to the BOOTP minimum size.
pub fn encode_reply(message: &Message) -> Result<Vec<u8>, dhcproto::error::EncodeError> {
    use dhcproto::Encodable;
    let mut bytes = message.to_vec()?;
    if bytes.len() < MIN_BOOTP_LEN {
        bytes.resize(MIN_BOOTP_LEN, 0);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::PoolRange;
    use dhcproto::v4::{Architecture, Flags, Opcode, OptionCode};

    use crate::dhcp::leases::LeaseError;
    use crate::mac::MacAddr;
    use crate::pxe::fixtures::{self, SERVER};
    use crate::pxe::{ClientArch, NoBootFile};
    use crate::rules::IgnoreReason;
    const NOW: Timestamp = 1_700_000_000;

    fn settings() -> DhcpSettings {
        DhcpSettings {
            server_ip: SERVER,
            subnet: "10.77.0.0/24".parse().unwrap(),
            lease_time_secs: 3600,
            router: Some(Ipv4Addr::new(10, 77, 0, 254)),
            dns: vec![],
            boot: BootSettings { uefi_arm64_file: None, ..fixtures::boot_settings() },
            rules: ClientRules::default(),
        }
    }

    fn table() -> LeaseTable {
        LeaseTable::new(PoolRange { start: [10, 77, 0, 100].into(), end: [10, 77, 0, 102].into() }, SERVER)
    }

    struct Client {
        mac: [u8; 6],
        opts: Vec<DhcpOption>,
    }

    impl Client {
        fn firmware(n: u8, arch: u16) -> Self {
            let class = format!("PXEClient:Arch:{arch:05}:UNDI:003000");
            Self {
                mac: [0x52, 0x54, 0, 0, 0, n],
                opts: vec![
                    DhcpOption::ClassIdentifier(class.into_bytes()),
                    DhcpOption::ClientSystemArchitecture(Architecture::from(arch)),
                    DhcpOption::ClientMachineIdentifier(vec![0; 17]),
                ],
            }
        }

        fn ipxe(n: u8, arch: u16) -> Self {
            let mut client = Self::firmware(n, arch);
            client.opts.push(DhcpOption::UserClass(b"iPXE".to_vec()));
            client
        }

        fn message(&self, kind: MessageType, extra: &[DhcpOption]) -> Message {
            let mut msg = Message::default();
            msg.set_opcode(Opcode::BootRequest).set_chaddr(&self.mac).set_xid(42);
            msg.opts_mut().insert(DhcpOption::MessageType(kind));
            for opt in self.opts.iter().chain(extra) {
                msg.opts_mut().insert(opt.clone());
            }
            msg
        }
    }

    fn run(message: Message, leases: &mut LeaseTable, now: Timestamp) -> Outcome {
        let request = PxeRequest::from_message(&message).unwrap();
        handle(&message, &request, &settings(), leases, now, None)
    }

    fn dora(client: &Client, leases: &mut LeaseTable, now: Timestamp) -> (Outcome, Outcome) {
        let offer = run(client.message(MessageType::Discover, &[]), leases, now);
        let ip = offer.reply.as_ref().expect("an offer").message.yiaddr();
        let ack = run(
            client.message(
                MessageType::Request,
                &[DhcpOption::ServerIdentifier(SERVER), DhcpOption::RequestedIpAddress(ip)],
            ),
            leases,
            now,
        );
        (offer, ack)
    }

    fn option(message: &Message, code: OptionCode) -> Option<&DhcpOption> {
        message.opts().get(code)
    }

    #[test]
    fn firmware_bios_gets_loader_with_pxe_options_and_fields() {
        let mut leases = table();
        let (offer, ack) = dora(&Client::firmware(1, 0), &mut leases, NOW);
        let offer_msg = &offer.reply.unwrap().message;
        assert_eq!(offer_msg.yiaddr(), Ipv4Addr::new(10, 77, 0, 100));
        assert_eq!(offer_msg.siaddr(), SERVER);
        assert_eq!(offer_msg.fname_str().unwrap().unwrap(), "undionly.kpxe");
        assert_eq!(
            option(offer_msg, OptionCode::BootfileName),
            Some(&DhcpOption::BootfileName(b"undionly.kpxe".to_vec()))
        );
        assert_eq!(
            option(offer_msg, OptionCode::ClassIdentifier),
            Some(&DhcpOption::ClassIdentifier(b"PXEClient".to_vec()))
        );
        assert!(option(offer_msg, OptionCode::VendorExtensions).is_some());
        assert!(option(offer_msg, OptionCode::ClientMachineIdentifier).is_some());
        assert_eq!(offer.persist, None);
        let ack = ack.reply.map(|r| r.message).unwrap();
        assert_eq!(ack.opts().msg_type(), Some(MessageType::Ack));
        assert_eq!(option(&ack, OptionCode::AddressLeaseTime), Some(&DhcpOption::AddressLeaseTime(3600)));
        assert_eq!(option(&ack, OptionCode::Router), Some(&DhcpOption::Router(vec![[10, 77, 0, 254].into()])));
    }

    #[test]
    fn ack_must_be_persisted_and_event_describes_it() {
        let mut leases = table();
        let (_, ack) = dora(&Client::firmware(1, 7), &mut leases, NOW);
        assert_eq!(ack.persist, Some([10, 77, 0, 100].into()));
        assert_eq!(ack.event.answered, Some(DhcpMessage::ACK));
        assert_eq!(ack.event.boot.as_deref(), Some("ipxe.efi"));
        assert_eq!(ack.event.arch, Some(ClientArch::UefiX64));
        assert_eq!(leases.get([10, 77, 0, 100].into()).unwrap().state, LeaseState::Bound);
    }

    #[test]
    fn ipxe_comes_back_and_gets_the_script_on_the_same_address() {
        let mut leases = table();
        let (first, _) = dora(&Client::firmware(1, 0), &mut leases, NOW);
        let (again, ack) = dora(&Client::ipxe(1, 0), &mut leases, NOW + 5);
        let first = first.reply.unwrap().message;
        let again = again.reply.unwrap().message;
        assert_eq!(first.yiaddr(), again.yiaddr());
        assert_eq!(again.fname_str().unwrap().unwrap(), "http://10.77.0.1/boot.ipxe");
        assert!(option(&again, OptionCode::VendorExtensions).is_none());
        assert_eq!(ack.event.boot.as_deref(), Some("http://10.77.0.1/boot.ipxe"));
    }

    #[test]
    fn replies_are_padded_and_broadcast_without_address() {
        let mut leases = table();
        let (offer, _) = dora(&Client::firmware(1, 0), &mut leases, NOW);
        let reply = offer.reply.unwrap();
        assert_eq!(reply.destination, Destination::Broadcast);
        assert!(encode_reply(&reply.message).unwrap().len() >= MIN_BOOTP_LEN);
    }

    #[test]
    fn plain_client_gets_no_boot_file() {
        let mut leases = table();
        let plain = Client { mac: [2, 0, 0, 0, 0, 9], opts: vec![] };
        let (offer, _) = dora(&plain, &mut leases, NOW);
        let offer = offer.reply.unwrap().message;
        assert!(offer.fname().is_none());
        assert!(option(&offer, OptionCode::BootfileName).is_none());
        assert!(option(&offer, OptionCode::ClassIdentifier).is_none());
    }

    #[test]
    fn client_choosing_another_server_frees_our_offer() {
        let mut leases = table();
        let client = Client::firmware(1, 0);
        run(client.message(MessageType::Discover, &[]), &mut leases, NOW);
        let other = run(
            client.message(
                MessageType::Request,
                &[
                    DhcpOption::ServerIdentifier([10, 77, 0, 2].into()),
                    DhcpOption::RequestedIpAddress([10, 77, 0, 50].into()),
                ],
            ),
            &mut leases,
            NOW,
        );
        assert!(other.reply.is_none());
        assert_eq!(leases.leases().count(), 0);
    }

    #[test]
    fn init_reboot_after_restart_keeps_address_and_wrong_address_is_naked() {
        let mut leases = table();
        let client = Client::firmware(1, 0);
        let (_, ack) = dora(&client, &mut leases, NOW);
        let ip = ack.reply.unwrap().message.yiaddr();
        let mut restarted = LeaseTable::from_bytes(leases.pool(), SERVER, &leases.to_bytes()).unwrap();
        let reboot =
            run(client.message(MessageType::Request, &[DhcpOption::RequestedIpAddress(ip)]), &mut restarted, NOW + 100);
        assert_eq!(reboot.reply.unwrap().message.opts().msg_type(), Some(MessageType::Ack));
        let offer = run(client.message(MessageType::Discover, &[]), &mut restarted, NOW + 100);
        assert_eq!(offer.reply.unwrap().message.yiaddr(), ip);

        let wrong = run(
            client.message(MessageType::Request, &[DhcpOption::RequestedIpAddress([10, 77, 0, 101].into())]),
            &mut restarted,
            NOW + 100,
        );
        let nak = wrong.reply.unwrap();
        assert_eq!(nak.message.opts().msg_type(), Some(MessageType::Nak));
        assert_eq!(nak.destination, Destination::Broadcast);
        let elsewhere = run(
            client.message(MessageType::Request, &[DhcpOption::RequestedIpAddress([192, 168, 1, 5].into())]),
            &mut restarted,
            NOW + 100,
        );
        assert_eq!(elsewhere.reply.unwrap().message.opts().msg_type(), Some(MessageType::Nak));
        let stranger = Client::firmware(7, 0);
        let unknown = run(
            stranger.message(MessageType::Request, &[DhcpOption::RequestedIpAddress([10, 77, 0, 102].into())]),
            &mut restarted,
            NOW + 100,
        );
        assert!(unknown.reply.is_none(), "no record: stay silent");
    }

    #[test]
    fn renewal_is_unicast_and_extends() {
        let mut leases = table();
        let client = Client::firmware(1, 0);
        let (_, ack) = dora(&client, &mut leases, NOW);
        let ip = ack.reply.unwrap().message.yiaddr();
        let mut renew = client.message(MessageType::Request, &[]);
        renew.set_ciaddr(ip);
        let renewed = run(renew, &mut leases, NOW + 1800);
        assert_eq!(renewed.reply.unwrap().destination, Destination::Client(ip));
        assert_eq!(leases.get(ip).unwrap().expires, NOW + 1800 + 3600);
    }

    #[test]
    fn release_decline_and_inform() {
        let mut leases = table();
        let client = Client::firmware(1, 0);
        let (_, ack) = dora(&client, &mut leases, NOW);
        let ip = ack.reply.unwrap().message.yiaddr();
        let mut release = client.message(MessageType::Release, &[DhcpOption::ServerIdentifier(SERVER)]);
        release.set_ciaddr(ip);
        let released = run(release, &mut leases, NOW + 10);
        assert!(released.reply.is_none());
        assert_eq!(released.persist, Some(ip));
        assert_eq!(leases.get(ip).unwrap().state, LeaseState::Released);

        let (_, ack) = dora(&client, &mut leases, NOW + 20);
        let ip = ack.reply.unwrap().message.yiaddr();
        let declined =
            run(client.message(MessageType::Decline, &[DhcpOption::RequestedIpAddress(ip)]), &mut leases, NOW + 30);
        assert_eq!(declined.persist, Some(ip));
        assert_eq!(leases.get(ip).unwrap().state, LeaseState::Declined);

        let mut inform = Client { mac: [2, 0, 0, 0, 0, 3], opts: vec![] }.message(MessageType::Inform, &[]);
        inform.set_ciaddr(Ipv4Addr::new(10, 77, 0, 50));
        let informed = run(inform, &mut leases, NOW);
        assert_eq!(informed.persist, None);
        let reply = informed.reply.unwrap();
        assert_eq!(reply.destination, Destination::Client([10, 77, 0, 50].into()));
        assert!(reply.message.yiaddr().is_unspecified());
        assert!(option(&reply.message, OptionCode::AddressLeaseTime).is_none());
    }

    #[test]
    fn relays_inside_our_subnet_get_answers_others_do_not() {
        let mut leases = table();
        let mut via_relay = Client::firmware(1, 0).message(MessageType::Discover, &[]);
        via_relay.set_giaddr(Ipv4Addr::new(10, 77, 0, 254)).set_flags(Flags::default().set_broadcast());
        let relayed = run(via_relay, &mut leases, NOW);
        assert_eq!(relayed.reply.unwrap().destination, Destination::Relay([10, 77, 0, 254].into()));

        let mut foreign = Client::firmware(2, 0).message(MessageType::Discover, &[]);
        foreign.set_giaddr(Ipv4Addr::new(172, 16, 0, 1));
        assert!(run(foreign, &mut leases, NOW).reply.is_none());
    }

    #[test]
    fn clients_outside_the_rules_get_no_reply_at_all() {
        let mut leases = table();
        let mut rules_settings = settings();
        rules_settings.rules.allow = vec!["52:54:00:00:00:01".parse().unwrap()];
        let denied = Client::firmware(2, 0).message(MessageType::Discover, &[]);
        let request = PxeRequest::from_message(&denied).unwrap();
        let outcome = handle(&denied, &request, &rules_settings, &mut leases, NOW, None);
        assert!(outcome.reply.is_none());
        assert_eq!(
            outcome.event.reason,
            Some(DhcpReason::Ignored(IgnoreReason::NotAllowlisted { mac: MacAddr([0x52, 0x54, 0, 0, 0, 2]) }))
        );
        assert_eq!(outcome.event.note(), "ignored: 52:54:00:00:00:02 is not in the allowlist");
        assert_eq!(leases.leases().count(), 0, "a denied client reserves nothing");
        let allowed = Client::firmware(1, 0).message(MessageType::Discover, &[]);
        let request = PxeRequest::from_message(&allowed).unwrap();
        assert!(handle(&allowed, &request, &rules_settings, &mut leases, NOW, None).reply.is_some());
    }

    #[test]
    fn exhausted_pool_stays_silent_with_reason() {
        let mut leases = table();
        for n in 1..=3 {
            dora(&Client::firmware(n, 0), &mut leases, NOW);
        }
        let full = run(Client::firmware(9, 0).message(MessageType::Discover, &[]), &mut leases, NOW);
        assert!(full.reply.is_none());
        assert!(matches!(full.event.reason, Some(DhcpReason::Lease(LeaseError::PoolExhausted { .. }))));
    }

    #[test]
    fn unsupported_arch_gets_address_and_reason() {
        let mut leases = table();
        let (offer, _) = dora(&Client::firmware(1, 11), &mut leases, NOW);
        assert!(offer.reply.unwrap().message.fname().is_none());
        assert_eq!(offer.event.reason, Some(DhcpReason::NoBootFile(NoBootFile::NotConfigured(ClientArch::UefiArm64))));
        assert_eq!(offer.event.note(), "no boot file configured for UEFI ARM64");
    }
}

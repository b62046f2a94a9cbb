//! What full DHCP (`dhcp::server`) and proxyDHCP (`proxy::decide`) share when they answer
//! one request, as one pipeline of pure steps: the client rules ([`admit`]), the boot
//! choice ([`boot_plan`]), the reply's skeleton with its boot fields ([`boot_reply`]), the
//! event's facts of an answer ([`answered`]), and the [`Outcome`] with where the reply
//! goes. Each mode adds only its own steps between them: leases and address options in
//! full DHCP; the port, "never an address" and the echoed boot item in proxy mode.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};

use crate::events::{DhcpEvent, DhcpMessage, DhcpReason};
use crate::pxe::{BootPlan, BootSettings, PxeRequest, choose_boot, write_boot_fields};
use crate::rules::{AppliedRule, ClientRule, ClientRules, Verdict};

/// Where a reply goes (RFC 2131 §4.1); the driver adds the ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255 on the serving interface: the client has no address yet.
    Broadcast,
    /// A client that already has this address (renewing, INFORM).
    Client(Ipv4Addr),
    /// The relay agent that forwarded the request.
    Relay(Ipv4Addr),
    /// Back to the address and port the request came from (PXE boot server, UDP 4011).
    Sender,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub message: Message,
    pub destination: Destination,
}

/// Everything one request led to.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub reply: Option<Reply>,
    /// The lease at this address changed in a way that must be on disk before the reply
    /// leaves (full DHCP only).
    pub persist: Option<Ipv4Addr>,
    pub event: DhcpEvent,
}

impl Outcome {
    /// No reply, for `reason`.
    pub fn silent(mut event: DhcpEvent, reason: DhcpReason) -> Self {
        event.reason = Some(reason);
        Self { reply: None, persist: None, event }
    }
}

/// The client rule that applies to `request` (the first match, if any), or why the
/// client is not answered at all (a deny, no allow, or a rule that ignores it).
pub fn admit<'a>(rules: &'a ClientRules, request: &PxeRequest) -> Result<Option<(usize, &'a ClientRule)>, DhcpReason> {
    match rules.evaluate(request) {
        Verdict::Ignore(reason) => Err(DhcpReason::Ignored(reason)),
        Verdict::Serve { rule } => Ok(rule),
    }
}

/// What `request` boots, with what its rule overrides (loader, pinned entry) and the
/// loader planned for this machine's next boot only (`one_off_x64`, x64 UEFI PXE).
pub fn boot_plan(
    request: &PxeRequest,
    boot: &BootSettings,
    rule: Option<(usize, &ClientRule)>,
    one_off_x64: Option<&str>,
) -> BootPlan {
    let mut overrides = rule.map(|(index, rule)| rule.boot_override(index)).unwrap_or_default();
    overrides.one_off_x64 = one_off_x64;
    choose_boot(request, boot, &overrides)
}

/// The reply of `kind` to `message` from `server_ip`: the BOOTP header echoed, message
/// type, server identifier, the client identifier echoed (RFC 6842), and `plan`'s boot
/// fields when it has a file. The mode adds its own fields.
pub fn boot_reply(
    message: &Message,
    request: &PxeRequest,
    kind: MessageType,
    server_ip: Ipv4Addr,
    plan: &BootPlan,
) -> Message {
    let mut reply = reply_skeleton(message, kind, server_ip);
    write_boot_fields(&mut reply, request, plan, server_ip);
    reply
}

/// The header and identifiers every reply (NAK included) carries.
pub fn reply_skeleton(request: &Message, kind: MessageType, server_ip: Ipv4Addr) -> Message {
    let mut reply = Message::default();
    reply
        .set_opcode(Opcode::BootReply)
        .set_htype(request.htype())
        .set_xid(request.xid())
        .set_flags(request.flags())
        .set_giaddr(request.giaddr())
        .set_chaddr(request.chaddr());
    reply.opts_mut().insert(DhcpOption::MessageType(kind));
    reply.opts_mut().insert(DhcpOption::ServerIdentifier(server_ip));
    if let Some(id @ DhcpOption::ClientIdentifier(_)) = request.opts().get(OptionCode::ClientIdentifier) {
        reply.opts_mut().insert(id.clone());
    }
    reply
}

/// The event's facts of an answer of `kind` that boots `plan` under `rule`.
pub fn answered(event: &mut DhcpEvent, kind: MessageType, plan: &BootPlan, rule: Option<(usize, &ClientRule)>) {
    event.answered = Some(DhcpMessage(kind));
    event.boot = plan.boot_file().map(str::to_owned);
    event.rule = rule.map(|(index, rule)| AppliedRule::new(index, rule));
}

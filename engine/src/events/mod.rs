//! Everything the engine tells the outside world happens through [`EngineEvent`]s.
//!
//! Services emit into an [`EventSink`]; the CLI logs them, the GUI and the client
//! registry subscribe. Emitting never blocks and never fails: with no subscriber,
//! or a subscriber that lags, events are dropped rather than slowing a transfer.
//! The event types themselves are pure data in `portapxe_proto::events`.

use tokio::sync::broadcast;

pub use portapxe_proto::events::*;

/// How many events a slow subscriber may fall behind before it loses some.
const EVENT_BACKLOG: usize = 4096;

/// Cheap to clone; every service holds one.
#[derive(Clone)]
pub struct EventSink {
    tx: broadcast::Sender<EngineEvent>,
}

impl Default for EventSink {
    fn default() -> Self {
        Self::new()
    }
}

impl EventSink {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(EVENT_BACKLOG);
        Self { tx }
    }

    pub fn emit(&self, event: EngineEvent) {
        // An error only means nobody listens right now, which is fine.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.tx.subscribe()
    }
}

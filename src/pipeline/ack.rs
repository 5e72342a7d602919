//! End-to-end acknowledgement: a message's [`Ack`] travels with its row and is used only once
//! BigQuery confirmed the row (or its dead-letter row). Dropping it unused releases the
//! message for redelivery, so nothing is acknowledged that was not written. While an `Ack`
//! lives, its message counts as in flight.

use prometheus_client::metrics::gauge::Gauge;

/// The source's side of an acknowledgement: the Pub/Sub source implements it for its
/// client's per-message handler. Dropping an implementation without calling `ack` must
/// release the message for redelivery.
pub trait Acknowledge: Send + 'static {
    /// The message's row is confirmed: the source may forget the message.
    fn ack(self: Box<Self>);
}

/// A message's acknowledgement, as the sink holds it.
pub struct Ack {
    source: Option<Box<dyn Acknowledge>>,
    in_flight: Option<InFlight>,
    /// The message's place in its stream's hold (`source::hold`), given back on drop.
    _hold: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Ack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ack")
            .field("attached", &self.source.is_some())
            .finish()
    }
}

/// An object's gauges of messages (and their bytes) received and not yet acknowledged.
#[derive(Debug, Clone, Default)]
pub struct InFlightGauges {
    pub messages: Gauge,
    pub bytes: Gauge,
}

/// Counts the message in the object's in-flight gauges for as long as the `Ack` lives.
#[derive(Debug)]
struct InFlight {
    gauges: InFlightGauges,
    size: i64,
}

impl Ack {
    pub fn new(source: Box<dyn Acknowledge>, gauges: &InFlightGauges, size: usize) -> Self {
        let size = size as i64;
        gauges.messages.inc();
        gauges.bytes.inc_by(size);
        Ack {
            source: Some(source),
            in_flight: Some(InFlight {
                gauges: gauges.clone(),
                size,
            }),
            _hold: None,
        }
    }

    /// Keeps `hold` (the message's place in what its source may hold) until the message is
    /// acknowledged or released.
    pub fn holding(mut self, hold: impl std::any::Any + Send + Sync) -> Self {
        self._hold = Some(Box::new(hold));
        self
    }

    /// An acknowledgement with no subscription behind it (tests, the load harness).
    pub fn detached() -> Self {
        Ack {
            source: None,
            in_flight: None,
            _hold: None,
        }
    }

    pub fn ack(mut self) {
        if let Some(s) = self.source.take() {
            s.ack();
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(f) = &self.in_flight {
            f.gauges.messages.dec();
            f.gauges.bytes.dec_by(f.size);
        }
        // A source handle dropped unacknowledged releases its message: Pub/Sub redelivers it.
    }
}

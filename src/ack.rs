//! End-to-end acknowledgement: a message's `Ack` travels with its row and is used only once
//! BigQuery confirmed the row (or its dead-letter row). Dropping it unused releases the
//! message for redelivery, so nothing is acknowledged that was not written. While an `Ack`
//! lives, its message counts as in flight.

use crate::telemetry::metrics::ObjectMetrics;
use google_cloud_pubsub::subscriber::handler::Handler;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Debug)]
pub struct Ack {
    handler: Option<Handler>,
    in_flight: Option<InFlight>,
}

#[derive(Debug)]
struct InFlight {
    messages: Gauge,
    bytes: Gauge,
    size: i64,
}

impl Ack {
    pub fn new(handler: Handler, metrics: &ObjectMetrics, size: usize) -> Self {
        let size = size as i64;
        metrics.in_flight_messages.inc();
        metrics.in_flight_bytes.inc_by(size);
        Ack {
            handler: Some(handler),
            in_flight: Some(InFlight {
                messages: metrics.in_flight_messages.clone(),
                bytes: metrics.in_flight_bytes.clone(),
                size,
            }),
        }
    }

    /// An acknowledgement with no subscription behind it (tests, the load harness).
    pub fn detached() -> Self {
        Ack {
            handler: None,
            in_flight: None,
        }
    }

    pub fn ack(mut self) {
        if let Some(h) = self.handler.take() {
            h.ack();
        }
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(f) = &self.in_flight {
            f.messages.dec();
            f.bytes.dec_by(f.size);
        }
        // A handler dropped unacknowledged nacks its message: Pub/Sub redelivers it.
    }
}

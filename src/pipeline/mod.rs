//! What flows between the stages of the data path, and the few things every stage shares.
//! The source, the envelope decoder and the sink depend on this module and never on each
//! other: the source turns a Pub/Sub message into a [`ReceivedMessage`] and an [`Ack`], the
//! decoder turns the message into an [`IngestRow`] or a [`DeadLetterRow`], and the sink
//! writes the row and then uses the [`Ack`].

mod ack;
pub mod backoff;
pub mod clock;
mod message;
mod rows;

pub use ack::{Ack, Acknowledge, InFlightGauges};
pub use message::{ReceivedMessage, attributes_json, attributes_json_len, write_attributes_json};
pub use rows::{DeadLetterRow, IngestRow, ReasonCode, Rejection, is_truncated};

/// One item of the bounded channel between an object's source and its sink: a decoded row,
/// or a message to dead-letter, each with the acknowledgement it releases once written.
#[derive(Debug)]
pub enum Decoded {
    Row(IngestRow, Ack),
    Rejected(DeadLetterRow, Ack),
}

//! The envelope: what a Pub/Sub message says about the domain event inside it. Decoding is
//! pure (no I/O, no clock): a [`ReceivedMessage`](crate::pipeline::ReceivedMessage) becomes
//! either an `IngestRow` or a `DeadLetterRow` carrying a typed reason. The decoder is built
//! from a [`DecoderSpec`]; it knows nothing of the configuration files the spec came from.

mod decode;
pub mod encoding;
mod json_view;
pub mod record;
mod spec;

pub use decode::{Decoder, Inflated};
pub use spec::{DecoderSpec, Format, Limits, Locator, RecordFormat, TopicSchemaSpec};

#[cfg(test)]
mod tests;

//! Protocol Buffer records: the topic schema's `.proto` compiled at run time (`protox`, no
//! `protoc`), a body decoded into a dynamic message (`prost-reflect`) and written as proto3's
//! canonical JSON, with the proto field names (`order_id`, not `orderId`) so envelope paths
//! read as in the `.proto`, and every field written, defaults included: `int64` and `uint64` as
//! strings, enums by name, `bytes` base64, `google.protobuf.Timestamp` RFC 3339, maps objects.

use super::{Fault, bad};
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

/// What Pub/Sub's schema is, as a file of the compiler's.
const FILE: &str = "topic_schema.proto";

struct Source(String);

impl FileResolver for Source {
    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        if name == FILE {
            File::from_source(name, &self.0)
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// Compiles `definition`; its message `message`, or its only top-level message.
pub(super) fn compile(
    definition: &str,
    message: Option<&str>,
) -> Result<MessageDescriptor, String> {
    let mut resolver = ChainFileResolver::new();
    resolver.add(Source(definition.to_string()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(FILE)
        .map_err(|e| format!("not a Protocol Buffer schema: {e}"))?;
    let pool = compiler.descriptor_pool();
    let file = pool
        .get_file_by_name(FILE)
        .ok_or("the schema has no file")?;
    match message {
        Some(name) => pool
            .get_message_by_name(name)
            .ok_or_else(|| format!("no message `{name}` in the schema")),
        None => {
            let mut top = file.messages();
            match (top.next(), top.next()) {
                (Some(m), None) => Ok(m),
                (None, _) => Err("the schema defines no message".into()),
                (Some(_), Some(_)) => Err(
                    "the schema defines more than one top-level message: name one with `topic_schema.message`"
                        .into(),
                ),
            }
        }
    }
}

fn options() -> SerializeOptions {
    SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(false)
}

/// A writer that refuses to grow past `max` bytes: the JSON of a message can be far larger
/// than its body (every field of every empty submessage is written), so it is capped as it
/// is written, not after.
struct Capped {
    out: Vec<u8>,
    max: usize,
    over: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.max {
            self.over = true;
            return Err(std::io::Error::other("over the cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The record in `body` (binary, or proto3 JSON when `json`) as our JSON, at most `max`
/// bytes of it.
pub(super) fn render(
    message: &MessageDescriptor,
    json: bool,
    body: &[u8],
    max: usize,
) -> Result<Vec<u8>, Fault> {
    let decoded = if json {
        let mut de = serde_json::Deserializer::from_slice(body);
        let m = DynamicMessage::deserialize(message.clone(), &mut de)
            .map_err(|e| bad(e.to_string()))?;
        de.end().map_err(|e| bad(e.to_string()))?;
        m
    } else {
        DynamicMessage::decode(message.clone(), body).map_err(|e| bad(e.to_string()))?
    };
    let mut out = Capped {
        out: Vec::with_capacity((body.len() * 2).min(max)),
        max,
        over: false,
    };
    let written =
        decoded.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options());
    match written {
        Ok(()) => Ok(out.out),
        Err(_) if out.over => Err(Fault::TooLarge),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Our JSON as a producer publishes it: binary, or proto3 JSON.
pub(super) fn encode(
    message: &MessageDescriptor,
    json: bool,
    value: &serde_json::Value,
) -> Result<Vec<u8>, String> {
    let m = DynamicMessage::deserialize(message.clone(), value).map_err(|e| e.to_string())?;
    if json {
        let mut out = Vec::new();
        m.serialize_with_options(&mut serde_json::Serializer::new(&mut out), &options())
            .map_err(|e| e.to_string())?;
        Ok(out)
    } else {
        Ok(prost::Message::encode_to_vec(&m))
    }
}

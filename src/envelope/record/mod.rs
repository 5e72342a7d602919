//! Records of schema'd topics: a message Pub/Sub validated against an Avro topic schema,
//! encoded as Avro binary or Avro JSON, rendered as the JSON text the envelope then reads.
//!
//! The schema is parsed by `apache-avro` and compiled here into a flat tree of nodes (named
//! types resolved, recursion allowed). The binary decoder reads straight from the body into
//! the JSON output, checking every length against the bytes that remain before it reserves
//! anything, and stops at `max_bytes` of output and `max_depth` of nesting: a body cannot make
//! it allocate more than the cap, however its lengths lie (a claimed string or array count
//! costs nothing until its bytes are there). That is why it is written here rather than going
//! through `apache-avro`'s value tree, which reserves what a length claims and costs a tree
//! per message (docs/BENCHMARKS.md).
//!
//! The JSON it writes (README, "Schema'd topics"): a record is an object with its fields in
//! schema order; a union is its value (not wrapped in its branch's name); an enum its symbol;
//! `bytes` and `fixed` base64; `int` and `long` numbers; `float` and `double` numbers, or the
//! strings `"NaN"`, `"Infinity"`, `"-Infinity"`; a map an object; `date` `"YYYY-MM-DD"`;
//! `time-*` `"HH:MM:SS.ffffff"`; `timestamp-*` RFC 3339 in UTC (`Z`); `local-timestamp-*` the
//! same without an offset; `decimal` a string of its exact value; `uuid` its string;
//! `duration` `{"months", "days", "milliseconds"}`.

mod json;
mod proto;
mod proto_plan;
mod proto_read;
mod read;
mod schema;
mod values;
mod write;

use crate::pipeline::{ReasonCode, Rejection};
use apache_avro::Schema;
use bytes::Bytes;
use read::{Input, Writer};
use schema::{Compiler, Node};
use std::collections::{BTreeMap, HashMap};
use write::Encoder;

/// How a message of a schema'd topic is encoded (the `googclient_schemaencoding` attribute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireEncoding {
    Json,
    Binary,
}

impl WireEncoding {
    /// As Pub/Sub writes it in the attribute; `None` for anything else.
    pub fn from_attribute(value: &str) -> Option<WireEncoding> {
        match value {
            "JSON" => Some(WireEncoding::Json),
            "BINARY" => Some(WireEncoding::Binary),
            _ => None,
        }
    }
}

/// Attributes Pub/Sub sets on every message of a schema'd topic.
pub const SCHEMA_NAME: &str = "googclient_schemaname";
pub const SCHEMA_REVISION: &str = "googclient_schemarevisionid";
pub const SCHEMA_ENCODING: &str = "googclient_schemaencoding";
/// The message a Protocol Buffer schema carries (its `message`, or its only top-level one),
/// compiled: for the gate, which compares two revisions' descriptors.
pub fn proto_message(
    definition: &str,
    message: Option<&str>,
) -> Result<prost_reflect::MessageDescriptor, String> {
    proto::compile(definition, message)
}

/// Where one member of a rendered record sits in its JSON text: its key's text (inside the
/// quotes) and its value.
pub type MemberSpan = (std::ops::Range<usize>, std::ops::Range<usize>);

/// A record rendered as JSON text.
#[derive(Debug)]
pub struct Rendered {
    pub json: Bytes,
    /// Where the top-level members sit in `json`, when the renderer knows (an Avro record):
    /// the envelope then reads them without parsing the text again. The text is valid JSON
    /// either way, written here.
    pub members: Option<Vec<MemberSpan>>,
    /// Where the member asked for with [`RecordSchema::render_noting`] sits, when the
    /// renderer knows: `Some(None)` when its outer member is a record without it.
    pub inner: Option<Option<std::ops::Range<usize>>>,
    /// The event time's microseconds, when the member asked for is a `Timestamp` the
    /// renderer wrote (Protocol Buffers): what the envelope would read from its text.
    pub event_time_us: Option<i64>,
}

/// What the envelope asks a renderer to note as it writes a record, so as not to read the
/// text again: member `inner.1` of top-level member `inner.0` (the object id one level
/// down), and the top-level member `event_time` (the event time).
#[derive(Debug, Clone, Copy, Default)]
pub struct Wanted<'a> {
    pub inner: Option<(&'a str, &'a str)>,
    pub event_time: Option<&'a str>,
}

/// The most of its scratch buffer a worker thread keeps between Avro records: most rendered
/// records are copied out of it at their exact size; larger ones take their own buffer.
pub const RENDER_SCRATCH_BYTES: usize = 64 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A compiled topic schema: one revision, or the contract's file.
#[derive(Debug)]
pub struct RecordSchema {
    kind: Kind,
    revision: String,
}

#[derive(Debug)]
enum Kind {
    Avro {
        nodes: Vec<Node>,
        root: usize,
    },
    Protobuf {
        message: prost_reflect::MessageDescriptor,
        /// How the wire reader reads it; `None`: through the dynamic message.
        plan: Option<proto_plan::Plan>,
    },
}

/// What reading a body takes beside its output (`Decoder` holds it from the shared decoding
/// budget while it reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadCost {
    Nothing,
    /// The body's JSON value tree (Avro JSON).
    JsonTree,
    /// A dynamic message of the body (Protocol Buffers through `prost-reflect`).
    DynamicMessage,
    /// This many bytes per body byte at most.
    PerBodyByte(usize),
}

impl RecordSchema {
    /// Parses and compiles an Avro schema; `revision` names it in rejections.
    pub fn avro(definition: &str, revision: impl Into<String>) -> Result<RecordSchema, String> {
        let schema =
            Schema::parse_str(definition).map_err(|e| format!("not an Avro schema: {e}"))?;
        let resolved = apache_avro::schema::ResolvedSchema::try_from(&schema)
            .map_err(|e| format!("Avro schema does not resolve: {e}"))?;
        let names: HashMap<String, &Schema> = resolved
            .get_names()
            .iter()
            .map(|(n, s)| (n.fullname(None), *s))
            .collect();
        let mut c = Compiler {
            nodes: Vec::new(),
            named: HashMap::new(),
            names: &names,
        };
        let root = c.compile(&schema)?;
        Ok(RecordSchema {
            kind: Kind::Avro {
                nodes: c.nodes,
                root,
            },
            revision: revision.into(),
        })
    }

    /// Compiles a Protocol Buffer schema (one `.proto` file): its message `message`, or its
    /// only top-level one.
    pub fn protobuf(
        definition: &str,
        message: Option<&str>,
        revision: impl Into<String>,
    ) -> Result<RecordSchema, String> {
        let message = proto::compile(definition, message)?;
        Ok(RecordSchema {
            kind: Kind::Protobuf {
                plan: proto_plan::compile(&message),
                message,
            },
            revision: revision.into(),
        })
    }

    /// The record in `body` as JSON text, at most `max_bytes` long and `max_depth` deep.
    pub fn render(
        &self,
        encoding: WireEncoding,
        body: &[u8],
        max_bytes: usize,
        max_depth: usize,
    ) -> Result<Rendered, Rejection> {
        self.render_noting(encoding, body, max_bytes, max_depth, Wanted::default())
    }

    /// [`RecordSchema::render`], also noting what the envelope reads ([`Wanted`]): where
    /// member `inner.1` of top-level member `inner.0` sits when that member is a record (the
    /// object id, read without scanning the payload for it), and the event time's value when
    /// it is a `Timestamp` (read without parsing its text).
    pub fn render_noting(
        &self,
        encoding: WireEncoding,
        body: &[u8],
        max_bytes: usize,
        max_depth: usize,
        wanted: Wanted<'_>,
    ) -> Result<Rendered, Rejection> {
        let (result, what) = match &self.kind {
            Kind::Avro { nodes, root } => {
                let what = match encoding {
                    WireEncoding::Binary => "Avro binary",
                    WireEncoding::Json => "Avro JSON",
                };
                (
                    // An Avro record as our JSON.
                    in_scratch(nodes, body, max_bytes, max_depth, wanted, |mut w| {
                        let written = avro_write(&mut w, *root, encoding, body);
                        (w, written)
                    }),
                    what,
                )
            }
            Kind::Protobuf { message, plan } => {
                let what = match encoding {
                    WireEncoding::Binary => "Protocol Buffer binary",
                    WireEncoding::Json => "Protocol Buffer JSON",
                };
                let out = match (plan, encoding) {
                    (Some(plan), WireEncoding::Binary) => {
                        in_scratch(&[], body, max_bytes, max_depth, wanted, |w| {
                            let mut r = proto_read::Reader::new(plan, w);
                            let written = r.record(body);
                            (r.into_writer(), written)
                        })
                    }
                    _ => proto::render(message, encoding == WireEncoding::Json, body, max_bytes)
                        .map(|json| Rendered {
                            json: Bytes::from(json),
                            members: None,
                            inner: None,
                            event_time_us: None,
                        }),
                };
                (out, what)
            }
        };
        match result {
            Ok(out) => Ok(out),
            Err(Fault::TooLarge) => Err(Rejection::new(
                ReasonCode::TooLarge,
                format!(
                    "{what} record of {} bytes renders beyond limits.max_message_bytes ({max_bytes}) as JSON",
                    body.len()
                ),
            )),
            Err(Fault::TooDeep) => Err(Rejection::new(
                ReasonCode::TooDeep,
                format!("{what} record nests deeper than limits.max_json_depth ({max_depth})"),
            )),
            Err(Fault::Bad(m)) => Err(Rejection::new(
                ReasonCode::UndecodableRecord,
                format!(
                    "body is not a record of schema revision {}: {what}: {}",
                    self.revision, m.0
                ),
            )),
        }
    }
}

impl RecordSchema {
    /// What reading a body of this schema in `encoding` takes beside its output.
    pub fn read_cost(&self, encoding: WireEncoding) -> ReadCost {
        match (&self.kind, encoding) {
            (Kind::Avro { .. }, WireEncoding::Binary) => ReadCost::Nothing,
            (Kind::Avro { .. }, WireEncoding::Json) => ReadCost::JsonTree,
            (Kind::Protobuf { plan: Some(_), .. }, WireEncoding::Binary) => {
                ReadCost::PerBodyByte(proto_read::WORKING_BYTES_PER_BODY_BYTE)
            }
            (Kind::Protobuf { .. }, _) => ReadCost::DynamicMessage,
        }
    }

    /// Encodes `json` (a record as [`RecordSchema::render`] writes it) as a producer would
    /// publish it: Avro binary, or Avro's JSON encoding (unions wrapped in their branch's
    /// name). A union takes the first branch the value fits. `publish` and the tests.
    pub fn encode(
        &self,
        encoding: WireEncoding,
        json: &serde_json::Value,
    ) -> Result<Vec<u8>, String> {
        let (nodes, root) = match &self.kind {
            Kind::Avro { nodes, root } => (nodes, *root),
            Kind::Protobuf { message, .. } => {
                return proto::encode(message, encoding == WireEncoding::Json, json);
            }
        };
        let e = Encoder { nodes };
        match encoding {
            WireEncoding::Binary => {
                let mut out = Vec::new();
                e.binary(root, json, &mut out)?;
                Ok(out)
            }
            WireEncoding::Json => Ok(e.avro_json(root, json)?.to_string().into_bytes()),
        }
    }
}

/// A record written by `write` in this thread's scratch buffer and copied out at its size (a
/// buffer grown while writing would hold up to twice what the row accounts for).
fn in_scratch<'a>(
    nodes: &'a [Node],
    body: &'a [u8],
    max_bytes: usize,
    max_depth: usize,
    wanted: Wanted<'a>,
    write: impl FnOnce(Writer<'a>) -> (Writer<'a>, Result<(), Fault>),
) -> Result<Rendered, Fault> {
    let mut out = SCRATCH.with_borrow_mut(std::mem::take);
    out.clear();
    let (mut w, written) = write(Writer::new(nodes, body, out, max_bytes, max_depth, wanted));
    let members = w.members.take();
    let inner = w.inner.take();
    let event_time_us = w.time_us.take();
    let mut out = w.out;
    if out.capacity() > RENDER_SCRATCH_BYTES {
        // Too large to keep: handed over as it is, trimmed to its size.
        out.shrink_to_fit();
        return written.map(|()| Rendered {
            json: Bytes::from(out),
            members,
            inner,
            event_time_us,
        });
    }
    let rendered = written.map(|()| Rendered {
        json: Bytes::copy_from_slice(&out),
        members,
        inner,
        event_time_us,
    });
    SCRATCH.with_borrow_mut(|s| *s = out);
    rendered
}

fn avro_write(
    w: &mut Writer<'_>,
    root: usize,
    encoding: WireEncoding,
    body: &[u8],
) -> Result<(), Fault> {
    match encoding {
        WireEncoding::Binary => {
            let mut input = Input { body, at: 0 };
            w.binary(root, &mut input, 0)?;
            if input.at != body.len() {
                return Err(bad(format!(
                    "{} bytes after the record",
                    body.len() - input.at
                )));
            }
            Ok(())
        }
        WireEncoding::Json => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) => w.json(root, &v, 0),
            Err(e) => Err(bad(format!("not JSON: {e}"))),
        },
    }
}

#[derive(Debug)]
pub(super) enum Fault {
    TooLarge,
    TooDeep,
    /// Boxed: a result of the readers' functions (most return `Result<(), Fault>`, once or
    /// more per value read) then fits in two registers instead of going through memory.
    Bad(Box<Reason>),
}

/// Why a body is not a record of its schema.
#[derive(Debug)]
pub(super) struct Reason(String);

const _: () = assert!(std::mem::size_of::<Result<(), Fault>>() == 16);

#[cold]
pub(super) fn bad(m: impl Into<String>) -> Fault {
    Fault::Bad(Box::new(Reason(m.into())))
}

#[cfg(test)]
mod tests;

/// An Avro definition as JSON, without documentation: equal for the same schema however it
/// is laid out (Parsing Canonical Form would also drop logical types, which change what
/// a record means).
pub fn avro_normalized(definition: &str) -> Option<serde_json::Value> {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("doc");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(definition).ok()?;
    strip(&mut v);
    Some(v)
}

/// Every type position of an Avro definition (a path of field names, `[]` for array items,
/// `{}` for map values, `|N` for union branch N) with its logical type, if it has one.
pub fn avro_logical_types(definition: &str) -> BTreeMap<String, Option<String>> {
    fn walk(v: &serde_json::Value, path: String, out: &mut BTreeMap<String, Option<String>>) {
        match v {
            serde_json::Value::Array(branches) => {
                for (i, b) in branches.iter().enumerate() {
                    walk(b, format!("{path}|{i}"), out);
                }
            }
            serde_json::Value::Object(m) => {
                let logical = m
                    .get("logicalType")
                    .and_then(|l| l.as_str())
                    .map(str::to_string);
                out.insert(path.clone(), logical);
                if let Some(fields) = m.get("fields").and_then(|f| f.as_array()) {
                    for f in fields {
                        let name = f.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                        if let Some(t) = f.get("type") {
                            walk(t, format!("{path}.{name}"), out);
                        }
                    }
                }
                for (key, mark) in [("items", "[]"), ("values", "{}")] {
                    if let Some(t) = m.get(key) {
                        walk(t, format!("{path}{mark}"), out);
                    }
                }
                if let Some(t @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) =
                    m.get("type")
                {
                    walk(t, path, out);
                }
            }
            _ => {
                out.entry(path).or_insert(None);
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(definition) {
        walk(&v, String::new(), &mut out);
    }
    out
}

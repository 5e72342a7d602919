//! Decodes one message into an ingest row or a rejection, per the object's envelope format.

use super::encoding;
use super::json_view::{ObjectView, ViewError, article, depth_exceeds, json_type, values_at_most};
use super::record::{
    MemberSpan, ReadCost, RecordSchema, Rendered, SCHEMA_ENCODING, SCHEMA_NAME, SCHEMA_REVISION,
    Wanted, WireEncoding,
};
use super::spec::{DecoderSpec, Format, Limits, Locator, RecordFormat};
use crate::pipeline::{DeadLetterRow, IngestRow, ReasonCode, ReceivedMessage, Rejection};
use base64::Engine as _;
use bytes::Bytes;
use bytestring::ByteString;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// A message's body once inflated ([`Decoder::inflate`]) or rendered from its record:
/// `None` when it was neither (the message's own body is read), or why it cannot be read.
#[derive(Debug)]
pub struct Inflated {
    body: Result<Option<Bytes>, Rejection>,
    /// A rendered record's members, where its renderer put them.
    layout: Option<Layout>,
}

/// Where a rendered record's top-level members sit in its JSON, and the member of a member
/// the envelope reads (the object id), as its renderer noted them.
#[derive(Debug)]
struct Layout {
    members: Vec<MemberSpan>,
    inner: Option<Option<std::ops::Range<usize>>>,
    /// The event time, when its renderer wrote it from a `Timestamp`.
    event_time_us: Option<i64>,
}

impl Inflated {
    fn body_only(body: Result<Option<Bytes>, Rejection>) -> Inflated {
        Inflated { body, layout: None }
    }

    /// The inflated body's size: 0 when nothing was inflated.
    pub fn inflated_bytes(&self) -> usize {
        match &self.body {
            Ok(Some(b)) => b.len(),
            _ => 0,
        }
    }

    /// The body the envelope reads, given the message's own.
    pub fn body<'a>(&'a self, data: &'a Bytes) -> &'a Bytes {
        match &self.body {
            Ok(Some(b)) => b,
            _ => data,
        }
    }
}

/// The decoder of one object: its envelope mapping, limits, event types and JSON Schema,
/// compiled once.
pub struct Decoder {
    envelope: DecoderSpec,
    /// The top-level members of the document that the envelope reads: the parse keeps
    /// these and skips the others.
    members: Vec<String>,
    limits: Limits,
    event_types: Option<HashSet<String>>,
    schema: Option<jsonschema::Validator>,
    records: Option<Records>,
}

/// The topic schema's revisions this decoder has compiled, and the contract's own.
struct Records {
    schema: String,
    format: RecordFormat,
    encoding: WireEncoding,
    local: Arc<RecordSchema>,
    /// Each revision fetched, compiled, or why it cannot be used.
    revisions: RwLock<HashMap<String, Result<Arc<RecordSchema>, String>>>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("envelope", &self.envelope)
            .field("schema", &self.schema.is_some())
            .finish()
    }
}

/// A field value: raw JSON from a document, or text from an attribute.
#[derive(Clone, Copy)]
enum Value<'a> {
    Json(&'a str),
    Text(&'a str),
}

/// The document a format reads its fields from.
struct Document<'v, 'a> {
    msg: &'a ReceivedMessage,
    /// The body as read: the message's, or its inflated copy.
    body: &'a Bytes,
    view: &'v ObjectView<'a>,
    /// CloudEvents binary mode: top-level names are `ce-` attributes, `data.…` is the body.
    binary_cloudevent: bool,
}

impl<'a> Document<'_, 'a> {
    fn get(&self, source: &Locator) -> Result<Option<Value<'a>>, Rejection> {
        match source {
            Locator::Attribute(name) => Ok(attribute(self.msg, name).map(Value::Text)),
            Locator::Path(path) if self.binary_cloudevent => match path.as_slice() {
                [first, rest @ ..] if first == "data" => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    self.view
                        .lookup(rest)
                        .map(|v| v.map(Value::Json))
                        .map_err(|m| Rejection::new(ReasonCode::InvalidField, m))
                }
                // `ce-{name}`, found without building that string (Pub/Sub allows at most
                // 100 attributes).
                [name] => Ok(self
                    .msg
                    .attributes
                    .iter()
                    .find(|(k, _)| k.strip_prefix("ce-") == Some(name.as_str()))
                    .map(|(_, v)| Value::Text(v.as_str()))),
                _ => Ok(None),
            },
            Locator::Path(path) => self
                .view
                .lookup(path)
                .map(|v| v.map(Value::Json))
                .map_err(|m| Rejection::new(ReasonCode::InvalidField, m)),
        }
    }

    /// A required, non-empty string field.
    fn string(&self, source: &Locator, what: &str) -> Result<ByteString, Rejection> {
        match self.get(source)? {
            None => Err(missing(source, what)),
            Some(v) => self.text_of(v, source, what, false),
        }
    }

    /// The text of a value ([`text_in`]), sharing the body's bytes where it lies in them.
    fn text_of(
        &self,
        v: Value<'_>,
        source: &Locator,
        what: &str,
        allow_integer: bool,
    ) -> Result<ByteString, Rejection> {
        Ok(match text_in(v, source, what, allow_integer)? {
            Cow::Borrowed(text) => shared_text(self.body, text),
            Cow::Owned(text) => ByteString::from(text),
        })
    }
}

/// An attribute's value. A message carries a handful of attributes: comparing their names
/// costs less than hashing the wanted name, which each envelope field did in turn.
fn attribute<'a>(msg: &'a ReceivedMessage, name: &str) -> Option<&'a str> {
    let attributes = &msg.attributes;
    if attributes.len() > 8 {
        return attributes.get(name).map(String::as_str);
    }
    attributes
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
}

/// The text of `raw`, a JSON string. Without escapes the text between the quotes is the
/// value: no need to run the parser again over a string the document parse has already
/// validated.
fn json_string(raw: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    if json_type(raw) == "string" && !raw.contains('\\') {
        return Ok(Cow::Borrowed(&raw[1..raw.len() - 1]));
    }
    serde_json::from_str::<String>(raw).map(Cow::Owned)
}

/// The most reading a record of `body` builds beside its output: an Avro JSON body's value
/// tree (as a JSON body's); a Protocol Buffer message's dynamic message (at most one value
/// per byte, so the same bound per byte), or the wire reader's bookkeeping; nothing for Avro
/// binary, read straight into JSON.
fn record_tree_bytes(schema: &RecordSchema, encoding: WireEncoding, body: &[u8]) -> usize {
    match schema.read_cost(encoding) {
        ReadCost::Nothing => 0,
        ReadCost::JsonTree => tree_bytes(body),
        ReadCost::DynamicMessage => body.len().saturating_mul(TREE_BYTES_PER_VALUE + 1),
        ReadCost::PerBodyByte(n) => body.len().saturating_mul(n),
    }
}

/// The encoding `msg`'s `content-encoding` attribute declares.
fn content_encoding(msg: &ReceivedMessage) -> Result<Option<encoding::ContentEncoding>, Rejection> {
    encoding::ContentEncoding::parse(attribute(msg, encoding::CONTENT_ENCODING))
}

/// Where a revision is kept: revision ids are unique within one schema only.
fn revision_key(records: &Records, msg: &ReceivedMessage, revision: &str) -> String {
    let schema = attribute(msg, SCHEMA_NAME).unwrap_or(&records.schema);
    format!("{schema}@{revision}")
}

/// A topic schema's definition compiled as the topic's kind.
fn compile(
    format: &RecordFormat,
    definition: &str,
    revision: &str,
) -> Result<RecordSchema, String> {
    match format {
        RecordFormat::Avro => RecordSchema::avro(definition, revision),
        RecordFormat::Protobuf(message) => {
            RecordSchema::protobuf(definition, message.as_deref(), revision)
        }
    }
}

fn too_large(size: usize, max: usize) -> Rejection {
    Rejection::new(
        ReasonCode::TooLarge,
        format!("body is {size} bytes, above limits.max_message_bytes ({max})"),
    )
}

fn missing(source: &Locator, what: &str) -> Rejection {
    Rejection::new(
        ReasonCode::MissingField,
        format!("{what} is missing (expected at `{source}`)"),
    )
}

/// `text` as a `ByteString`: a slice of `body` (no allocation) when it lies in it, as the
/// envelope's fields mostly do; otherwise (an attribute's value) a copy.
fn shared_text(body: &Bytes, text: &str) -> ByteString {
    let inside = body.as_ptr_range();
    let at = text.as_bytes().as_ptr_range();
    if inside.start <= at.start && at.end <= inside.end {
        // Checks the (short) text's UTF-8 once more rather than assert it unsafely; cannot
        // fail, the bytes are `text`'s own.
        if let Ok(shared) = ByteString::try_from(body.slice_ref(text.as_bytes())) {
            return shared;
        }
    }
    ByteString::from(text)
}

/// The text of a value, borrowed from the message wherever it is there as is; ids may also
/// be integers when `allow_integer`.
fn text_in<'a>(
    v: Value<'a>,
    source: &Locator,
    what: &str,
    allow_integer: bool,
) -> Result<Cow<'a, str>, Rejection> {
    let text = match v {
        Value::Text(t) => Cow::Borrowed(t),
        Value::Json(raw) => match json_type(raw) {
            "null" => return Err(missing(source, what)),
            "string" => json_string(raw).map_err(|e| {
                Rejection::new(
                    ReasonCode::InvalidField,
                    format!("{what} at `{source}`: {e}"),
                )
            })?,
            "number" if allow_integer && serde_json::from_str::<i64>(raw).is_ok() => {
                Cow::Borrowed(raw)
            }
            other => {
                let expected = if allow_integer {
                    "a string or an integer"
                } else {
                    "a string"
                };
                return Err(Rejection::new(
                    ReasonCode::InvalidField,
                    format!(
                        "{what} at `{source}` is {} {other}, expected {expected}",
                        article(other)
                    ),
                ));
            }
        },
    };
    // `trim().is_empty()`, answered at the first character that is not white space.
    if text.chars().all(char::is_whitespace) {
        return Err(Rejection::new(
            ReasonCode::InvalidField,
            format!("{what} at `{source}` is empty"),
        ));
    }
    Ok(text)
}

/// What a `serde_json::Value` tree of `json` may take at most, in bytes, per value: the
/// 32-byte `Value`, twice over in an array (a `Vec` grows by doubling, and while it grows
/// the old and new buffers both live: 96 bytes per element at the peak), and in an object a
/// B-tree slot (key `String` and `Value`, nodes at least half full) plus the key's own heap
/// block. Strings' bytes are counted once more by the text's length.
const TREE_BYTES_PER_VALUE: usize = 160;

/// The most a value tree of `json` can take: an upper bound from a byte count, no parse.
pub(super) fn tree_bytes(json: &[u8]) -> usize {
    values_at_most(json)
        .saturating_mul(TREE_BYTES_PER_VALUE)
        .saturating_add(json.len())
}

impl Decoder {
    /// The memory decoding `body` may take beyond the body itself: the value tree of its
    /// JSON Schema check (0 without a schema), capped at `limits.max_validation_bytes`, above
    /// which the payload is rejected unbuilt. The source holds this much of the process-wide
    /// validation budget while it decodes, so concurrent checks never exceed it together.
    pub fn working_set(&self, body: &[u8]) -> usize {
        match self.schema {
            // The payload is part of the body: the body's bound covers it.
            Some(_) => tree_bytes(body).min(self.limits.max_validation_bytes),
            None => 0,
        }
    }

    /// Compiles `spec`; fails only on a JSON Schema that does not compile.
    pub fn new(spec: DecoderSpec) -> Result<Decoder, String> {
        let schema = spec
            .payload_schema
            .as_ref()
            .map(jsonschema::validator_for)
            .transpose()
            .map_err(|e| format!("the payload JSON Schema does not compile: {e}"))?;
        let records = spec
            .topic_schema
            .as_ref()
            .map(|t| {
                compile(&t.format, &t.definition, "of the contract's file").map(|local| Records {
                    schema: t.schema.clone(),
                    format: t.format.clone(),
                    encoding: t.encoding,
                    local: Arc::new(local),
                    revisions: RwLock::new(HashMap::new()),
                })
            })
            .transpose()
            .map_err(|e| format!("the topic schema file: {e}"))?;
        Ok(Decoder {
            records,
            members: document_members(&spec),
            limits: spec.limits,
            event_types: spec
                .event_types
                .as_ref()
                .map(|t| t.iter().cloned().collect()),
            schema,
            envelope: spec,
        })
    }

    /// Decodes `msg`; `now_us` (microseconds since the epoch) bounds future event times.
    /// A rejected message becomes its dead-letter row, holding the body as received.
    pub fn decode(
        &self,
        msg: ReceivedMessage,
        now_us: i64,
    ) -> Result<IngestRow, Box<DeadLetterRow>> {
        let inflated = self.inflate(&msg);
        self.decode_inflated(msg, inflated, now_us)
    }

    /// The size `msg`'s body may take once inflated beside the body itself: 0 for an
    /// uncompressed body, else the cap (`limits.max_message_bytes`). The source holds this
    /// much of its stream's hold before inflating, and gives back what the body did not use.
    pub fn inflation_bound(&self, msg: &ReceivedMessage) -> usize {
        if self.records.is_some() && msg.data.len() <= self.limits.max_message_bytes {
            return self.limits.max_message_bytes;
        }
        match content_encoding(msg) {
            Ok(Some(_)) if msg.data.len() <= self.limits.max_message_bytes => {
                self.limits.max_message_bytes
            }
            _ => 0,
        }
    }

    /// `msg`'s body as the envelope reads it: inflated per its `content-encoding`, within
    /// `limits.max_message_bytes`.
    pub fn inflate(&self, msg: &ReceivedMessage) -> Inflated {
        let max = self.limits.max_message_bytes;
        if let Some(records) = &self.records {
            return match self.render_record(records, msg) {
                Ok(Rendered {
                    json,
                    members,
                    inner,
                    event_time_us,
                }) => Inflated {
                    body: Ok(Some(json)),
                    layout: members.map(|members| Layout {
                        members,
                        inner,
                        event_time_us,
                    }),
                },
                Err(e) => Inflated::body_only(Err(e)),
            };
        }
        let inflated = content_encoding(msg).and_then(|e| match e {
            None => Ok(None),
            Some(_) if msg.data.len() > max => Err(too_large(msg.data.len(), max)),
            Some(e) => {
                encoding::inflate(e, &msg.data, max, self.limits.max_zstd_window_log).map(Some)
            }
        });
        Inflated::body_only(inflated)
    }

    /// A schema'd message's record as JSON, decoded with the revision its attributes name
    /// (which the source fetched before: [`Decoder::unknown_revision`]), or with the
    /// contract's schema file when it names none.
    fn render_record(
        &self,
        records: &Records,
        msg: &ReceivedMessage,
    ) -> Result<Rendered, Rejection> {
        let max = self.limits.max_message_bytes;
        if msg.data.len() > max {
            return Err(too_large(msg.data.len(), max));
        }
        let (schema, encoding) = self.schema_for(records, msg)?;
        let tree = record_tree_bytes(&schema, encoding, &msg.data);
        if tree > self.limits.max_validation_bytes {
            return Err(Rejection::new(
                ReasonCode::TooLarge,
                format!(
                    "record body of {} bytes could take {tree} bytes to read, above the {} \
                     decoding may use",
                    msg.data.len(),
                    self.limits.max_validation_bytes
                ),
            ));
        }
        // The object id one level down and the event time are noted as the record is
        // written (plain JSON envelopes only: binary CloudEvents read `data.…` paths in the
        // body, structured ones the `time` the format names).
        let wanted = match self.envelope.format {
            Format::Json => Wanted {
                inner: self.nested_id(false),
                event_time: match &self.envelope.event_time {
                    Locator::Path(path) if path.len() == 1 => Some(path[0].as_str()),
                    _ => None,
                },
            },
            _ => Wanted::default(),
        };
        schema.render_noting(encoding, &msg.data, max, self.limits.max_json_depth, wanted)
    }

    /// The schema a schema'd message is read with: the revision its attributes name (which
    /// the source fetched before: [`Decoder::unknown_revision`]), or the contract's file when
    /// it names none; and its encoding.
    fn schema_for(
        &self,
        records: &Records,
        msg: &ReceivedMessage,
    ) -> Result<(Arc<RecordSchema>, WireEncoding), Rejection> {
        let encoding = match attribute(msg, SCHEMA_ENCODING) {
            None => records.encoding,
            Some(e) => WireEncoding::from_attribute(e).ok_or_else(|| {
                Rejection::new(
                    ReasonCode::UndecodableRecord,
                    format!(
                        "{SCHEMA_ENCODING} `{}` is neither JSON nor BINARY",
                        truncate_for_reason(e)
                    ),
                )
            })?,
        };
        let schema = match attribute(msg, SCHEMA_REVISION) {
            None => records.local.clone(),
            Some(revision) => records
                .revisions
                .read()
                .expect("never poisoned")
                .get(&revision_key(records, msg, revision))
                .cloned()
                .unwrap_or_else(|| Err("was not fetched".into()))
                .map_err(|why| {
                    Rejection::new(
                        ReasonCode::UndecodableRecord,
                        format!(
                            "revision {} of {}: {why}",
                            truncate_for_reason(revision),
                            attribute(msg, SCHEMA_NAME).unwrap_or(&records.schema)
                        ),
                    )
                })?,
        };
        Ok((schema, encoding))
    }

    /// The schema and revision `msg` names that this decoder has not compiled yet: to fetch
    /// and [`Decoder::learn_revision`] before decoding it.
    pub fn unknown_revision(&self, msg: &ReceivedMessage) -> Option<(String, String)> {
        let records = self.records.as_ref()?;
        let revision = attribute(msg, SCHEMA_REVISION)?;
        if records
            .revisions
            .read()
            .expect("never poisoned")
            .contains_key(&revision_key(records, msg, revision))
        {
            return None;
        }
        let schema = attribute(msg, SCHEMA_NAME).unwrap_or(&records.schema);
        Some((schema.to_string(), revision.to_string()))
    }

    /// Compiles a revision's definition for the messages that name it; or records why there
    /// is none (Pub/Sub does not have it): those messages are dead-lettered with the reason.
    /// Returns why the revision cannot be used, if it cannot.
    pub fn learn_revision(
        &self,
        schema: &str,
        revision: &str,
        definition: Result<&str, String>,
    ) -> Result<(), String> {
        let Some(records) = &self.records else {
            return Ok(());
        };
        let compiled = definition
            .and_then(|d| compile(&records.format, d, revision))
            .map(Arc::new);
        let outcome = compiled.as_ref().map(|_| ()).map_err(Clone::clone);
        records
            .revisions
            .write()
            .expect("never poisoned")
            .insert(format!("{schema}@{revision}"), compiled);
        outcome
    }

    /// What reading a schema'd body takes beside its output: the value tree of an Avro JSON
    /// body or of a Protocol Buffer message (0 for Avro binary, read without one), held from
    /// the process-wide decoding budget while it is read.
    pub fn record_working_set(&self, msg: &ReceivedMessage) -> usize {
        let Some(records) = &self.records else {
            return 0;
        };
        // A message that names no usable schema is rejected unread.
        self.schema_for(records, msg)
            .map_or(0, |(schema, encoding)| {
                record_tree_bytes(&schema, encoding, &msg.data)
                    .min(self.limits.max_validation_bytes)
            })
    }

    /// Decodes `msg` whose body [`Decoder::inflate`] already inflated.
    pub fn decode_inflated(
        &self,
        msg: ReceivedMessage,
        inflated: Inflated,
        now_us: i64,
    ) -> Result<IngestRow, Box<DeadLetterRow>> {
        let layout = inflated.layout;
        let fields = inflated.body.and_then(|body| {
            let body = body.as_ref().unwrap_or(&msg.data);
            self.decode_fields(&msg, body, layout.as_ref(), now_us)
        });
        match fields {
            Ok(fields) => Ok(IngestRow {
                event_id: fields
                    .event_id
                    .unwrap_or_else(|| ByteString::from(msg.message_id.as_str())),
                event_source: fields.event_source,
                event_type: fields.event_type,
                event_time_us: fields.event_time_us,
                object_id: fields.object_id,
                payload: fields.payload,
                attributes: msg.attributes,
                publish_time_us: msg.publish_time_us,
                ordering_key: (!msg.ordering_key.is_empty()).then_some(msg.ordering_key),
                delivery_attempt: msg.delivery_attempt.map(i64::from),
                message_id: msg.message_id,
                replayed_at_us: None,
                // As received (compressed, when it was): what a dead-letter row would keep.
                raw: msg.data,
            }),
            // Boxed: rejections are rare, and a small Result keeps the hot path lean.
            Err(rejection) => Err(Box::new(DeadLetterRow::new(
                msg,
                rejection,
                self.limits.max_dead_letter_data_bytes,
            ))),
        }
    }

    /// The envelope's fields of `data`; `layout`, where a rendered record's members sit in
    /// it, if known.
    fn decode_fields(
        &self,
        msg: &ReceivedMessage,
        data: &Bytes,
        layout: Option<&Layout>,
        now_us: i64,
    ) -> Result<Fields, Rejection> {
        if data.len() > self.limits.max_message_bytes {
            return Err(too_large(data.len(), self.limits.max_message_bytes));
        }
        let ce_specversion = match self.envelope.format {
            Format::CloudEvents => attribute(msg, "ce-specversion"),
            _ => None,
        };
        let binary_ce = ce_specversion.is_some();
        if binary_ce {
            check_specversion(ce_specversion)?;
        }
        let what_body = match self.envelope.format {
            Format::Attributes => "payload (the message body)",
            _ if binary_ce => "CloudEvents data (the message body)",
            _ => "body",
        };
        let text = self.json_text(data, what_body)?;
        let nested_id = self.nested_id(binary_ce);
        let from_layout = layout.and_then(|l| {
            let inner = nested_id
                .zip(l.inner.clone())
                .map(|((outer, key), at)| (outer, key, at));
            ObjectView::from_spans(text, &l.members, inner)
        });
        // The event time its renderer noted, when the envelope reads the renderer's members.
        let noted_time = from_layout
            .as_ref()
            .and(layout)
            .and_then(|l| l.event_time_us);
        let view = match from_layout {
            Some(view) => view,
            None => self.view(text, what_body, &self.members, nested_id)?,
        };
        let doc = Document {
            msg,
            body: data,
            view: &view,
            binary_cloudevent: binary_ce,
        };
        let payload = self.payload(&doc, data)?;
        // Required by CloudEvents 1.0; an event id is unique only within its source.
        let event_source = match self.envelope.format {
            Format::CloudEvents => {
                Some(doc.string(&Locator::path("source"), "CloudEvents source")?)
            }
            _ => None,
        };
        let event_id = self.event_id(&doc)?;
        let event_type = self.event_type(&doc)?;
        let event_time_us = self.event_time(&doc, noted_time, now_us)?;
        let env = &self.envelope;
        let object_id = match doc.get(&env.object_id)? {
            None => return Err(missing(&env.object_id, "object id")),
            Some(v) => Some(doc.text_of(v, &env.object_id, "object id", true)?),
        };
        if let Some(schema) = &self.schema {
            let tree = tree_bytes(&payload);
            if tree > self.limits.max_validation_bytes {
                return Err(Rejection::new(
                    ReasonCode::TooLarge,
                    format!(
                        "payload has up to {} JSON values: checking it against its JSON Schema \
                         could take {tree} bytes, above the {} a check may use",
                        values_at_most(&payload),
                        self.limits.max_validation_bytes
                    ),
                ));
            }
            validate_schema(schema, &payload)?;
        }
        Ok(Fields {
            event_id,
            event_source,
            event_type,
            event_time_us,
            object_id,
            payload,
        })
    }

    /// The payload, per format: a slice of the body wherever it can be.
    fn payload(&self, doc: &Document<'_, '_>, data: &Bytes) -> Result<Bytes, Rejection> {
        let env = &self.envelope;
        match env.format {
            Format::Json => match doc.get(&env.payload)? {
                Some(Value::Json(raw)) => self.payload_from(raw, data, &env.payload),
                // The configuration only allows a body path, but be explicit.
                Some(Value::Text(_)) => Err(Rejection::new(
                    ReasonCode::InvalidPayload,
                    format!("payload at `{}` is an attribute, not JSON", env.payload),
                )),
                None => Err(missing(&env.payload, "payload")),
            },
            // The whole body is the payload, already checked to be an object.
            Format::Attributes => Ok(data.clone()),
            Format::CloudEvents if doc.binary_cloudevent => Ok(data.clone()),
            Format::CloudEvents => {
                let spec = doc.view.get("specversion").ok_or_else(|| {
                    Rejection::new(
                        ReasonCode::MissingField,
                        "specversion is missing: not a structured CloudEvent",
                    )
                })?;
                // A specversion that is there but not a string (e.g. the number 1.0) is an
                // unsupported one, not a missing one.
                let spec = json_string(spec).map_err(|_| {
                    Rejection::new(
                        ReasonCode::UnsupportedSpecversion,
                        format!(
                            "CloudEvents specversion must be the string \"1.0\", not {}",
                            truncate_for_reason(spec)
                        ),
                    )
                })?;
                check_specversion(Some(&spec))?;
                self.cloudevent_data(doc.view, data)
            }
        }
    }

    /// The event id; `None` lets the row fall back to the Pub/Sub message id.
    fn event_id(&self, doc: &Document<'_, '_>) -> Result<Option<ByteString>, Rejection> {
        let source = &self.envelope.event_id;
        let id = match doc.get(source)? {
            Some(Value::Json(raw)) if json_type(raw) == "null" => None,
            Some(v) => Some(doc.text_of(v, source, "event id", true)?),
            None => None,
        };
        match id {
            // CloudEvents requires an id; the other formats fall back to the Pub/Sub
            // message id, which is unique per published message.
            None if self.envelope.format == Format::CloudEvents => Err(missing(source, "event id")),
            id => Ok(id),
        }
    }

    /// The event type, checked against the allow-list.
    fn event_type(&self, doc: &Document<'_, '_>) -> Result<ByteString, Rejection> {
        let event_type = doc.string(&self.envelope.event_type, "event type")?;
        if let Some(allowed) = &self.event_types
            && !allowed.contains(&*event_type)
        {
            return Err(Rejection::new(
                ReasonCode::UnknownEventType,
                format!(
                    "event type `{}` is not one of this object's event_types",
                    truncate_for_reason(&event_type)
                ),
            ));
        }
        Ok(event_type)
    }

    fn json_text<'a>(&self, data: &'a [u8], what: &str) -> Result<&'a str, Rejection> {
        if data.iter().all(u8::is_ascii_whitespace) {
            return Err(Rejection::new(
                ReasonCode::EmptyBody,
                format!("{what} is empty"),
            ));
        }
        std::str::from_utf8(data).map_err(|e| {
            Rejection::new(
                ReasonCode::InvalidUtf8,
                format!(
                    "{what} is not UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
            )
        })
    }

    /// Where the object id sits when it sits one level down or deeper (`payload.order_id`:
    /// `("payload", "order_id")`): the view reads it in its one parse.
    fn nested_id(&self, binary_cloudevent: bool) -> Option<(&str, &str)> {
        let Locator::Path(path) = &self.envelope.object_id else {
            return None;
        };
        // In binary mode `data.…` paths are read in the body, which is `data` itself.
        let path = match path.as_slice() {
            [first, rest @ ..] if binary_cloudevent && first == "data" => rest,
            path => path,
        };
        match path {
            [outer, key, ..] => Some((outer, key)),
            _ => None,
        }
    }

    fn view<'a>(
        &self,
        text: &'a str,
        what: &str,
        members: &[String],
        nested_id: Option<(&str, &'a str)>,
    ) -> Result<ObjectView<'a>, Rejection> {
        if depth_exceeds(text.as_bytes(), self.limits.max_json_depth) {
            return Err(too_deep(what, self.limits.max_json_depth));
        }
        ObjectView::parse_only(text, members, nested_id).map_err(|e| match e {
            ViewError::NotAnObject(t) => Rejection::new(
                ReasonCode::NotAnObject,
                format!("{what} is {} {t}, expected a JSON object", article(t)),
            ),
            ViewError::TooDeep => too_deep(what, self.limits.max_json_depth),
            ViewError::Malformed(e) => Rejection::new(
                ReasonCode::MalformedJson,
                format!("{what} is not valid JSON: {e}"),
            ),
        })
    }

    /// The payload as a slice of the body (no copy), checked to be an object.
    fn payload_from(&self, raw: &str, data: &Bytes, source: &Locator) -> Result<Bytes, Rejection> {
        match json_type(raw) {
            "object" => Ok(data.slice_ref(raw.as_bytes())),
            "null" => Err(missing(source, "payload")),
            other => Err(Rejection::new(
                ReasonCode::InvalidPayload,
                format!(
                    "payload at `{source}` is {} {other}, expected a JSON object",
                    article(other)
                ),
            )),
        }
    }

    fn cloudevent_data(&self, view: &ObjectView<'_>, data: &Bytes) -> Result<Bytes, Rejection> {
        let source = Locator::path("data");
        if let Some(raw) = view.get("data") {
            return self.payload_from(raw, data, &source);
        }
        let Some(b64) = view.get("data_base64") else {
            return Err(Rejection::new(
                ReasonCode::MissingField,
                "CloudEvent has neither `data` nor `data_base64`",
            ));
        };
        let b64: String = serde_json::from_str(b64).map_err(|_| {
            Rejection::new(ReasonCode::InvalidField, "`data_base64` is not a string")
        })?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64.as_bytes())
            .map_err(|e| {
                Rejection::new(
                    ReasonCode::InvalidField,
                    format!("`data_base64` is not base64: {e}"),
                )
            })?;
        let what = "CloudEvents data_base64";
        let text = self.json_text(&decoded, what)?;
        // Checked to be an object; none of its members is read.
        self.view(text, what, &[], None)?;
        Ok(Bytes::from(decoded))
    }

    /// The event time in microseconds since the epoch: `noted`, when the record's renderer
    /// noted it as it wrote its text (the same figure), else read from `doc`.
    fn event_time(
        &self,
        doc: &Document<'_, '_>,
        noted: Option<i64>,
        now_us: i64,
    ) -> Result<i64, Rejection> {
        let source = &self.envelope.event_time;
        let us = match noted {
            Some(us) => us,
            None => event_time_in(doc, source)?,
        };
        if us < 0 {
            return Err(Rejection::new(
                ReasonCode::InvalidEventTime,
                format!("event time at `{source}` is before 1970-01-01"),
            ));
        }
        let max_ahead = (self.limits.max_future_event_time_secs as i64).saturating_mul(1_000_000);
        if us > now_us.saturating_add(max_ahead) {
            return Err(Rejection::new(
                ReasonCode::InvalidEventTime,
                format!(
                    "event time at `{}` is more than {} s ahead of the clock",
                    source, self.limits.max_future_event_time_secs
                ),
            ));
        }
        Ok(us)
    }
}

/// The event time at `source` in `doc`, an RFC 3339 timestamp: microseconds since the epoch.
fn event_time_in(doc: &Document<'_, '_>, source: &Locator) -> Result<i64, Rejection> {
    let value = doc
        .get(source)?
        .ok_or_else(|| missing(source, "event time"))?;
    let text = text_in(value, source, "event time", false)?;
    let parsed = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Rejection::new(
                ReasonCode::InvalidEventTime,
                format!("event time at `{source}` is not an RFC 3339 timestamp: {e}"),
            )
        })?;
    // Floor, not truncation: 1969-12-31T23:59:59.9999995Z must stay before the epoch. Whole
    // seconds are floored and the sub-second part is never negative, so this is the floor
    // of the nanoseconds / 1000, without 128-bit division.
    Ok(parsed.unix_timestamp() * 1_000_000 + i64::from(parsed.microsecond()))
}

/// The top-level members a decoder of `spec` may read from its document: the first key of
/// every path, and for CloudEvents the members the format itself reads. In CloudEvents binary
/// mode the document is `data` itself, so `data.…` paths also name their second key.
fn document_members(spec: &DecoderSpec) -> Vec<String> {
    let locators = [
        &spec.event_id,
        &spec.event_type,
        &spec.event_time,
        &spec.object_id,
        &spec.payload,
    ];
    let mut members: Vec<String> = locators
        .into_iter()
        .filter_map(|l| match l {
            Locator::Path(path) => Some(path),
            Locator::Attribute(_) => None,
        })
        .flat_map(|path| match path.as_slice() {
            [first, second, ..] if first == "data" && spec.format == Format::CloudEvents => {
                vec![first.clone(), second.clone()]
            }
            [first, ..] => vec![first.clone()],
            [] => vec![],
        })
        .collect();
    if spec.format == Format::CloudEvents {
        members.extend(["specversion", "source", "data", "data_base64"].map(String::from));
    }
    members.sort_unstable();
    members.dedup();
    members
}

struct Fields {
    event_id: Option<ByteString>,
    event_source: Option<ByteString>,
    event_type: ByteString,
    event_time_us: i64,
    object_id: Option<ByteString>,
    payload: Bytes,
}

fn too_deep(what: &str, limit: usize) -> Rejection {
    Rejection::new(
        ReasonCode::TooDeep,
        format!("{what} nests deeper than limits.max_json_depth ({limit})"),
    )
}

fn check_specversion(v: Option<&str>) -> Result<(), Rejection> {
    match v {
        Some("1.0") => Ok(()),
        None => Err(Rejection::new(
            ReasonCode::MissingField,
            "CloudEvents specversion is missing",
        )),
        Some(other) => Err(Rejection::new(
            ReasonCode::UnsupportedSpecversion,
            format!(
                "CloudEvents specversion `{}` is not supported (only 1.0)",
                truncate_for_reason(other)
            ),
        )),
    }
}

fn validate_schema(schema: &jsonschema::Validator, payload: &[u8]) -> Result<(), Rejection> {
    // Only objects with a schema pay for building a value tree.
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(|e| {
        Rejection::new(
            ReasonCode::MalformedJson,
            format!("payload is not valid JSON: {e}"),
        )
    })?;
    match schema.validate(&value) {
        Ok(()) => Ok(()),
        Err(e) => {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { "/".to_string() } else { at };
            Err(Rejection::new(
                ReasonCode::SchemaViolation,
                format!(
                    "payload violates its JSON Schema at `{at}` (schema rule `{}`)",
                    e.schema_path()
                ),
            ))
        }
    }
}

/// Values echoed in reasons are producer-controlled: keep them short.
fn truncate_for_reason(s: &str) -> String {
    if s.chars().count() <= 64 {
        s.to_string()
    } else {
        let cut: String = s.chars().take(64).collect();
        format!("{cut}…")
    }
}

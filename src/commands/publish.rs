//! `mesh-ingest publish`: publishes a JSONL file to a topic, for local runs, demos and teams
//! trying their configuration. Each line is either a message body (`--lines body`) or a whole
//! message (`--lines message`): `{"data": <JSON> | "data_text": "…" | "data_base64": "…",
//! "attributes": {…}, "ordering_key": "…"}`. With `--compress gzip|zstd` each body is sent
//! compressed, with the `content-encoding` attribute that says so. An object with a
//! `topic_schema` has each body (JSON, as the ingest table's `payload` holds records) encoded
//! with the contract's schema file and the topic's encoding, as its producers would publish.

use crate::configuration::{GcpSettings, Settings};
use crate::configuration::{ObjectSettings, SchemaEncoding, SchemaKind};
use crate::envelope::encoding::{CONTENT_ENCODING, ContentEncoding, compress};
use crate::envelope::record::{RecordSchema, WireEncoding};
use crate::gcp::configured;
use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use google_cloud_pubsub::client::Publisher;
use google_cloud_pubsub::model::Message;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// Each line is the message body, attributes empty.
    Body,
    /// Each line describes a whole message: data, attributes, ordering key.
    Message,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageLine {
    #[serde(default)]
    data: Option<Box<RawValue>>,
    #[serde(default)]
    data_text: Option<String>,
    #[serde(default)]
    data_base64: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    ordering_key: Option<String>,
}

/// Publishes `file` to the topic of the object named `object`, and says how many went out.
pub async fn run(
    settings: &Settings,
    object: &str,
    file: &Path,
    format: LineFormat,
    compression: Option<ContentEncoding>,
) -> anyhow::Result<()> {
    let o = settings.object(object).map_err(anyhow::Error::msg)?;
    let Some(topic) = &o.topic else {
        bail!("{}: field `topic` is not set", o.source_file);
    };
    let encoder = record_encoder(o)?;
    if encoder.is_some() && compression.is_some() {
        bail!(
            "{}: topic `{topic}` has a schema: Pub/Sub refuses compressed records",
            o.source_file
        );
    }
    let sent = publish_file(
        &settings.gcp,
        topic,
        file,
        format,
        compression,
        encoder.as_ref(),
    )
    .await?;
    match compression {
        None => println!("published {} message(s) to {topic}", sent.messages),
        Some(c) => println!(
            "published {} message(s) to {topic}: {} body bytes as {}, {} before",
            sent.messages,
            sent.body_bytes,
            c.as_str(),
            sent.plain_bytes
        ),
    }
    Ok(())
}

/// The contract's topic schema and encoding, for an object whose topic has one.
pub fn record_encoder(o: &ObjectSettings) -> anyhow::Result<Option<(RecordSchema, WireEncoding)>> {
    let Some(t) = &o.topic_schema else {
        return Ok(None);
    };
    let schema = match t.kind {
        SchemaKind::Avro => RecordSchema::avro(&t.definition, t.file.clone()),
        SchemaKind::Protobuf => {
            RecordSchema::protobuf(&t.definition, t.message.as_deref(), t.file.clone())
        }
    }
    .map_err(|e| anyhow::anyhow!("{}: field `topic_schema.file`: {e}", o.source_file))?;
    let encoding = match t.encoding {
        SchemaEncoding::Json => WireEncoding::Json,
        SchemaEncoding::Binary => WireEncoding::Binary,
    };
    Ok(Some((schema, encoding)))
}

/// `msg`'s JSON body encoded as a record of `schema`.
fn encoded(
    msg: Message,
    schema: &RecordSchema,
    encoding: WireEncoding,
    number: usize,
) -> anyhow::Result<Message> {
    let json: serde_json::Value = serde_json::from_slice(&msg.data)
        .with_context(|| format!("line {number}: the body is not JSON"))?;
    let data = schema
        .encode(encoding, &json)
        .map_err(|e| anyhow::anyhow!("line {number}: not a record of the topic schema: {e}"))?;
    Ok(msg.set_data(Bytes::from(data)))
}

/// What [`publish_file`] sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    pub messages: usize,
    /// Bodies as sent (compressed, with `--compress`).
    pub body_bytes: usize,
    /// Bodies before compression.
    pub plain_bytes: usize,
}

/// `msg` with its body compressed, and the attribute that says how (an existing
/// `content-encoding` attribute is refused: the body would be compressed twice).
pub fn compressed(
    msg: Message,
    encoding: ContentEncoding,
    number: usize,
) -> anyhow::Result<Message> {
    if msg.attributes.contains_key(CONTENT_ENCODING) {
        bail!(
            "line {number}: already has a {CONTENT_ENCODING} attribute; publish it without --compress"
        );
    }
    let data = compress(encoding, &msg.data);
    let mut attributes = msg.attributes.clone();
    attributes.insert(CONTENT_ENCODING.to_string(), encoding.as_str().to_string());
    Ok(msg.set_data(data).set_attributes(attributes))
}

/// Parses one line into a message; errors name the line.
pub fn parse_line(line: &str, format: LineFormat, number: usize) -> anyhow::Result<Message> {
    match format {
        LineFormat::Body => Ok(Message::new().set_data(Bytes::copy_from_slice(line.as_bytes()))),
        LineFormat::Message => {
            let m: MessageLine = serde_json::from_str(line)
                .with_context(|| format!("line {number}: not a message object"))?;
            let data: Bytes = match (m.data, m.data_text, m.data_base64) {
                (Some(json), None, None) => Bytes::copy_from_slice(json.get().as_bytes()),
                (None, Some(text), None) => Bytes::from(text),
                (None, None, Some(b64)) => Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .with_context(|| format!("line {number}: data_base64 is not base64"))?,
                ),
                (None, None, None) => Bytes::new(),
                _ => bail!("line {number}: give only one of data, data_text, data_base64"),
            };
            let mut msg = Message::new().set_data(data).set_attributes(m.attributes);
            if let Some(k) = m.ordering_key {
                msg = msg.set_ordering_key(k);
            }
            Ok(msg)
        }
    }
}

/// Publishes every non-blank line of `file`; returns how many messages Pub/Sub accepted.
pub async fn publish_file(
    gcp_settings: &GcpSettings,
    topic: &str,
    file: &Path,
    format: LineFormat,
    compression: Option<ContentEncoding>,
    records: Option<&(RecordSchema, WireEncoding)>,
) -> anyhow::Result<Published> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let messages = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, format, i + 1).map(|m| (i + 1, m)))
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("in {}", file.display()))?;
    let plain_bytes = messages.iter().map(|(_, m)| m.data.len()).sum();
    let messages = messages
        .into_iter()
        .map(|(number, m)| match (compression, records) {
            (_, Some((schema, encoding))) => encoded(m, schema, *encoding, number),
            (Some(c), None) => compressed(m, c, number),
            (None, None) => Ok(m),
        })
        .collect::<anyhow::Result<Vec<_>>>()
        .with_context(|| format!("in {}", file.display()))?;
    let body_bytes = messages.iter().map(|m| m.data.len()).sum();
    let gcp = gcp_settings;
    let publisher = configured!(Publisher::builder(topic), &gcp.pubsub_endpoint, gcp)
        .build()
        .await?;
    let pending: Vec<_> = messages.into_iter().map(|m| publisher.publish(m)).collect();
    let mut published = 0;
    for (i, p) in pending.into_iter().enumerate() {
        p.await
            .with_context(|| format!("publishing message {} to {topic}", i + 1))?;
        published += 1;
    }
    Ok(Published {
        messages: published,
        body_bytes,
        plain_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_lines_carry_attributes_and_data() {
        let m = parse_line(
            r#"{"data": {"a": 1}, "attributes": {"ce-id": "x"}, "ordering_key": "k"}"#,
            LineFormat::Message,
            1,
        )
        .unwrap();
        assert_eq!(&m.data[..], br#"{"a": 1}"#);
        assert_eq!(m.attributes["ce-id"], "x");
        assert_eq!(m.ordering_key, "k");
        let m = parse_line(r#"{"data_base64": "/w=="}"#, LineFormat::Message, 1).unwrap();
        assert_eq!(&m.data[..], b"\xff");
        let e = parse_line(r#"{"data": 1, "data_text": "x"}"#, LineFormat::Message, 7).unwrap_err();
        assert!(e.to_string().contains("line 7"));
    }

    #[test]
    fn compressed_messages_say_how_and_are_never_compressed_twice() {
        let line = r#"{"data": {"a": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, "attributes": {"k": "v"}}"#;
        let m = parse_line(line, LineFormat::Message, 1).unwrap();
        for c in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            let z = compressed(m.clone(), c, 1).unwrap();
            assert_eq!(z.attributes[CONTENT_ENCODING], c.as_str());
            assert_eq!(z.attributes["k"], "v");
            let back = crate::envelope::encoding::inflate(c, &z.data, 1 << 20, 20).unwrap();
            assert_eq!(back, m.data);
            let e = compressed(z, c, 3).unwrap_err();
            assert!(e.to_string().contains("line 3"), "{e}");
        }
    }
}

//! Accepted events of the ingest log as messages again, to decode them under another
//! configuration. The ingest table keeps the payload (as JSON), the envelope's values, the
//! event source and every attribute, not the body as sent: the body is re-built in the old
//! configuration's envelope (the shape producers send today). What the re-built body lacks are
//! fields of the original outside the envelope and payload, and its exact bytes (sizes are of
//! the re-serialised body).

use crate::configuration::{EnvelopeFormat, FieldLocator, ObjectSettings};
use crate::pipeline::ReceivedMessage;
use crate::tables::ingest::{
    ATTRIBUTES, EVENT_ID, EVENT_SOURCE, EVENT_TIME, EVENT_TYPE, INGESTED_AT, MESSAGE_ID, OBJECT_ID,
    PAYLOAD, PUBLISH_TIME,
};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One accepted event as the ingest table keeps it.
#[derive(Debug, Clone, Default)]
pub struct StoredEvent {
    pub message_id: String,
    pub event_id: String,
    pub event_type: Option<String>,
    /// RFC 3339, microseconds.
    pub event_time: Option<String>,
    pub object_id: String,
    pub event_source: Option<String>,
    /// The payload as JSON text.
    pub payload: String,
    /// The message's attributes as a JSON object, if it had any.
    pub attributes: Option<String>,
    pub publish_time_us: Option<i64>,
}

/// The accepted events ingested at or after `since_us`, in `StoredEvent`'s order of fields.
pub fn ingest_sql(object: &ObjectSettings, since_us: i64) -> String {
    format!(
        "SELECT {MESSAGE_ID}, {EVENT_ID}, {EVENT_TYPE}, \
         FORMAT_TIMESTAMP('%Y-%m-%dT%H:%M:%E6SZ', {EVENT_TIME}) AS event_time, {OBJECT_ID}, \
         {EVENT_SOURCE}, TO_JSON_STRING({PAYLOAD}) AS payload, \
         TO_JSON_STRING({ATTRIBUTES}) AS attributes, UNIX_MICROS({PUBLISH_TIME}) AS publish_us\n\
         FROM {}\nWHERE {INGESTED_AT} >= TIMESTAMP_MICROS({since_us})\nORDER BY {MESSAGE_ID}",
        object.ingest_table.sql_name()
    )
}

/// The dead letters written at or after `since_us` whose message is not in the ingest table
/// (not replayed), in the columns `commands::dlq` reads dead letters with.
pub fn dead_letters_sql(object: &ObjectSettings, since_us: i64) -> String {
    format!(
        "SELECT d.message_id, UNIX_MICROS(d.publish_time) AS publish_us,\n  \
         TO_JSON_STRING(d.attributes) AS attributes, TO_BASE64(d.data) AS data,\n  \
         d.reason_code, d.reason, d.subscription, d.delivery_attempt\n\
         FROM {dl} AS d\n\
         WHERE d.failed_at >= TIMESTAMP_MICROS({since_us})\n  AND NOT EXISTS (\n    \
         SELECT 1 FROM {ingest} AS i WHERE i.message_id = d.message_id)\n\
         ORDER BY d.message_id, d.failed_at DESC",
        dl = object.dead_letter_table.sql_name(),
        ingest = object.ingest_table.sql_name(),
    )
}

/// Sets `value` at `keys` inside `doc`, creating objects on the way; keeps what is there when
/// `keep` (an object id path inside the payload already holds the original value).
fn put(doc: &mut Map<String, Value>, keys: &[String], value: Value, keep: bool) {
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut at = doc;
    for k in parents {
        let next = at
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !next.is_object() {
            return;
        }
        at = next.as_object_mut().expect("checked");
    }
    if keep && at.contains_key(last) {
        return;
    }
    at.insert(last.clone(), value);
}

/// `event` as the message `object` (the configuration it was accepted under) reads.
pub fn message(object: &ObjectSettings, event: &StoredEvent) -> ReceivedMessage {
    let mut attributes: HashMap<String, String> = event
        .attributes
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default();
    // They described the body as published (compressed, a record of a topic schema); the
    // re-built body is plain JSON.
    attributes.retain(|k, _| k != "content-encoding" && !k.starts_with("googclient_"));
    let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
    let e = &object.envelope;
    let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
    let body = match e.format {
        EnvelopeFormat::Attributes => payload,
        EnvelopeFormat::CloudEvents if attributes.contains_key("ce-specversion") => payload,
        EnvelopeFormat::CloudEvents => {
            let mut doc = Map::new();
            doc.insert("specversion".into(), "1.0".into());
            doc.insert("id".into(), event.event_id.clone().into());
            doc.insert("source".into(), text(&event.event_source));
            doc.insert("type".into(), text(&event.event_type));
            if event.event_time.is_some() {
                doc.insert("time".into(), text(&event.event_time));
            }
            doc.insert("datacontenttype".into(), "application/json".into());
            doc.insert("data".into(), payload);
            Value::Object(doc)
        }
        EnvelopeFormat::Json => {
            let mut doc = Map::new();
            let fields = [
                (&e.payload, payload, false),
                (&e.event_id, Value::String(event.event_id.clone()), false),
                (&e.event_type, text(&event.event_type), false),
                (&e.event_time, text(&event.event_time), false),
                (&e.object_id, Value::String(event.object_id.clone()), true),
            ];
            for (locator, value, keep) in fields {
                if let FieldLocator::Path(keys) = locator
                    && !value.is_null()
                {
                    put(&mut doc, keys, value, keep);
                }
            }
            Value::Object(doc)
        }
    };
    ReceivedMessage {
        data: body.to_string().into_bytes().into(),
        attributes,
        message_id: event.message_id.clone(),
        publish_time_us: event.publish_time_us,
        ordering_key: String::new(),
        delivery_attempt: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::decoder_for;
    use std::path::Path;

    fn object(envelope: &str) -> ObjectSettings {
        let yaml = format!(
            "name: order\nsubscription: s-sub\ningest_table: ing.events\n\
             dead_letter_table: ing.dead\nenvelope: {envelope}\n"
        );
        ObjectSettings::parse(&yaml, Path::new("order.yaml"), "p").unwrap()
    }

    fn stored() -> StoredEvent {
        StoredEvent {
            message_id: "m-1".into(),
            event_id: "e-1".into(),
            event_type: Some("OrderCreated".into()),
            event_time: Some("2026-11-24T09:00:00.000001Z".into()),
            object_id: "o-1".into(),
            event_source: Some("//shop".into()),
            payload: r#"{"order_id":"o-1","total":10}"#.into(),
            attributes: Some(r#"{"origin":"web"}"#.into()),
            publish_time_us: Some(1),
        }
    }

    /// 2026-11-24T09:00:00.000001Z.
    const EVENT_TIME_US: i64 = 1_795_510_800_000_001;

    /// An event that arrived compressed, or as a record of a topic schema, is re-built as the
    /// plain JSON it was stored as: the attributes that described its body go.
    #[test]
    fn a_rebuilt_message_drops_what_described_the_published_body() {
        let o = object("{format: json, object_id: payload.order_id}");
        let mut e = stored();
        e.attributes = Some(
            r#"{"origin":"web","content-encoding":"zstd","googclient_schemarevisionid":"r1","googclient_schemaencoding":"BINARY"}"#.into(),
        );
        let m = message(&o, &e);
        assert_eq!(m.attributes.len(), 1, "{:?}", m.attributes);
        assert_eq!(m.attributes["origin"], "web");
        let row = decoder_for(&o)
            .unwrap()
            .decode(m, 2_000_000_000_000_000)
            .unwrap_or_else(|r| panic!("{}", r.reason));
        assert_eq!(&*row.event_id, "e-1");
    }

    /// Each format: the re-built message decodes, under the same configuration, to the row
    /// the event was stored as.
    #[test]
    fn a_rebuilt_message_decodes_to_the_stored_event() {
        for envelope in [
            "{format: json, object_id: payload.order_id}",
            "{format: json, event_id: meta.id, object_id: payload.order_id}",
            "{format: cloudevents, object_id: data.order_id}",
        ] {
            let o = object(envelope);
            let row = decoder_for(&o)
                .unwrap()
                .decode(message(&o, &stored()), 2_000_000_000_000_000)
                .unwrap_or_else(|r| panic!("{envelope}: {}", r.reason));
            assert_eq!(&*row.event_id, "e-1", "{envelope}");
            assert_eq!(row.object_id.as_deref(), Some("o-1"), "{envelope}");
            assert_eq!(&*row.event_type, "OrderCreated", "{envelope}");
            assert_eq!(row.event_time_us, EVENT_TIME_US, "{envelope}");
        }
        let o = object("{format: attributes, object_id: order_id}");
        let mut e = stored();
        e.attributes = Some(
            r#"{"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T09:00:00.000001Z"}"#.into(),
        );
        let row = decoder_for(&o)
            .unwrap()
            .decode(message(&o, &e), 2_000_000_000_000_000)
            .unwrap_or_else(|r| panic!("attributes: {}", r.reason));
        assert_eq!(row.object_id.as_deref(), Some("o-1"));
    }
}

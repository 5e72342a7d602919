//! Encodes batches of rows as Arrow IPC record batches, the row format the Storage Write API
//! takes: one serialised schema per writer, one serialised record batch per append.

use crate::pipeline::{DeadLetterRow, IngestRow};
use crate::tables::{Column, ColumnType, DEAD_LETTER_COLUMNS, INGEST_COLUMNS};
use arrow_array::builder::{BinaryBuilder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use std::sync::Arc;

/// The Arrow type each column type is written as.
fn arrow_type(kind: ColumnType) -> DataType {
    match kind {
        // The Storage Write API takes JSON as text.
        ColumnType::String | ColumnType::Json => DataType::Utf8,
        // Microseconds, UTC: BigQuery refuses nanoseconds.
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Bytes => DataType::Binary,
    }
}

/// The Arrow schema of a table's rows: required columns are non-nullable.
pub fn arrow_schema(columns: &[Column]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, arrow_type(c.kind), !c.required))
            .collect::<Vec<_>>(),
    ))
}

/// Serialises `schema` as an encapsulated IPC schema message.
pub fn serialized_schema(columns: &[Column]) -> Bytes {
    let schema = arrow_schema(columns);
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
        &schema,
        &mut tracker,
        &options,
    );
    let mut out = Vec::new();
    arrow_ipc::writer::write_message(&mut out, encoded, &options)
        .expect("writing to a Vec cannot fail");
    Bytes::from(out)
}

/// Serialises a record batch as an encapsulated IPC record-batch message (no schema).
fn serialize_batch(batch: &RecordBatch) -> Result<Bytes, ArrowError> {
    let options = IpcWriteOptions::default();
    let mut tracker = DictionaryTracker::new(false);
    let (_dictionaries, encoded) = IpcDataGenerator::default().encode(
        batch,
        &mut tracker,
        &options,
        &mut IpcWriteContext::default(),
    )?;
    let mut out = Vec::with_capacity(encoded.ipc_message.len() + encoded.arrow_data.len() + 16);
    arrow_ipc::writer::write_message(&mut out, encoded, &options)?;
    Ok(Bytes::from(out))
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from_iter(values).with_timezone("UTC"))
}

/// Builds the ingest-table record batch for `rows`.
pub fn encode_ingest(
    rows: &[IngestRow],
    subscription: &str,
    ingested_at_us: i64,
) -> Result<Bytes, ArrowError> {
    let n = rows.len();
    let payload_bytes: usize = rows.iter().map(|r| r.payload.len()).sum();
    let mut event_id = StringBuilder::with_capacity(n, n * 24);
    let mut event_type = StringBuilder::with_capacity(n, n * 16);
    let mut object_id = StringBuilder::with_capacity(n, n * 16);
    let mut payload = StringBuilder::with_capacity(n, payload_bytes);
    let mut attributes = StringBuilder::with_capacity(n, n * 2);
    let mut message_id = StringBuilder::with_capacity(n, n * 16);
    let mut sub = StringBuilder::with_capacity(n, n * subscription.len());
    let mut ordering_key = StringBuilder::with_capacity(n, 0);
    let mut delivery_attempt = Int64Builder::with_capacity(n);
    let mut event_source = StringBuilder::with_capacity(n, 0);
    for r in rows {
        event_id.append_value(&r.event_id);
        event_source.append_option(r.event_source.as_deref());
        event_type.append_value(&r.event_type);
        object_id.append_option(r.object_id.as_deref());
        // The decoder checked the payload is UTF-8 JSON; this is a copy, not a re-encoding.
        payload.append_value(
            std::str::from_utf8(&r.payload).map_err(|e| {
                ArrowError::InvalidArgumentError(format!("payload is not UTF-8: {e}"))
            })?,
        );
        attributes.append_value(&r.attributes_json);
        message_id.append_value(&r.message_id);
        sub.append_value(subscription);
        ordering_key.append_option(r.ordering_key.as_deref());
        delivery_attempt.append_option(r.delivery_attempt);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(event_id.finish()),
        Arc::new(event_type.finish()),
        timestamps(rows.iter().map(|r| Some(r.event_time_us))),
        Arc::new(object_id.finish()),
        Arc::new(payload.finish()),
        Arc::new(attributes.finish()),
        Arc::new(message_id.finish()),
        timestamps(rows.iter().map(|r| r.publish_time_us)),
        Arc::new(sub.finish()),
        Arc::new(ordering_key.finish()),
        Arc::new(delivery_attempt.finish()),
        timestamps(std::iter::repeat_n(Some(ingested_at_us), n)),
        Arc::new(event_source.finish()),
        timestamps(rows.iter().map(|r| r.replayed_at_us)),
    ];
    let batch = RecordBatch::try_new(schema_of(&INGEST_COLUMNS), columns)?;
    serialize_batch(&batch)
}

/// Builds the dead-letter-table record batch for `rows`.
pub fn encode_dead_letter(
    rows: &[DeadLetterRow],
    subscription: &str,
    failed_at_us: i64,
) -> Result<Bytes, ArrowError> {
    let n = rows.len();
    let mut message_id = StringBuilder::with_capacity(n, n * 16);
    let mut sub = StringBuilder::with_capacity(n, n * subscription.len());
    let mut attributes = StringBuilder::with_capacity(n, n * 2);
    let mut data = BinaryBuilder::with_capacity(n, rows.iter().map(|r| r.data.len()).sum());
    let mut reason_code = StringBuilder::with_capacity(n, n * 16);
    let mut reason = StringBuilder::with_capacity(n, n * 64);
    let mut event_id = StringBuilder::with_capacity(n, n * 16);
    let mut delivery_attempt = Int64Builder::with_capacity(n);
    for r in rows {
        message_id.append_value(&r.message_id);
        sub.append_value(subscription);
        attributes.append_value(&r.attributes_json);
        data.append_value(&r.data);
        reason_code.append_value(r.reason_code.as_str());
        reason.append_value(&r.reason);
        event_id.append_option(r.event_id.as_deref());
        delivery_attempt.append_option(r.delivery_attempt);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(message_id.finish()),
        timestamps(rows.iter().map(|r| r.publish_time_us)),
        Arc::new(sub.finish()),
        Arc::new(attributes.finish()),
        Arc::new(data.finish()),
        Arc::new(reason_code.finish()),
        Arc::new(reason.finish()),
        timestamps(std::iter::repeat_n(Some(failed_at_us), n)),
        Arc::new(event_id.finish()),
        Arc::new(delivery_attempt.finish()),
    ];
    let batch = RecordBatch::try_new(schema_of(&DEAD_LETTER_COLUMNS), columns)?;
    serialize_batch(&batch)
}

fn schema_of(columns: &'static [Column]) -> Arc<Schema> {
    // Built per batch: a handful of small allocations next to the rows themselves.
    arrow_schema(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::ReasonCode;
    use arrow_array::{Array, StringArray};

    fn row(i: usize) -> IngestRow {
        let raw = Bytes::from(format!(r#"{{"payload":{{"n":{i}}}}}"#));
        IngestRow {
            event_id: format!("e{i}"),
            event_source: None,
            event_type: "T".into(),
            event_time_us: 1_700_000_000_000_000,
            object_id: Some("o".into()),
            payload: raw.slice(11..raw.len() - 1),
            attributes_json: "{}".into(),
            message_id: format!("m{i}"),
            publish_time_us: Some(1),
            ordering_key: None,
            delivery_attempt: None,
            replayed_at_us: None,
            raw,
        }
    }

    #[test]
    fn ingest_batch_round_trips_through_ipc() {
        let rows: Vec<IngestRow> = (0..3).map(row).collect();
        let bytes = encode_ingest(&rows, "projects/p/subscriptions/s", 42).unwrap();
        let schema = arrow_schema(&INGEST_COLUMNS);
        // Reassemble schema + batch into a stream and read it back.
        let mut stream = serialized_schema(&INGEST_COLUMNS).to_vec();
        stream.extend_from_slice(&bytes);
        let reader = arrow_ipc::reader::StreamReader::try_new(&stream[..], None).unwrap();
        assert_eq!(reader.schema(), schema);
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.num_rows(), 3);
        let payload = b
            .column_by_name("payload")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(payload.value(2), r#"{"n":2}"#);
        let ordering = b.column_by_name("ordering_key").unwrap();
        assert_eq!(ordering.null_count(), 3);
    }

    #[test]
    fn dead_letter_batch_encodes() {
        let r = DeadLetterRow {
            message_id: "m".into(),
            publish_time_us: None,
            attributes_json: r#"{"a":"b"}"#.into(),
            data: Bytes::from_static(b"\xff\x00"),
            reason_code: ReasonCode::InvalidUtf8,
            reason: "x".into(),
            event_id: None,
            delivery_attempt: Some(2),
        };
        let bytes = encode_dead_letter(&[r], "s", 1).unwrap();
        assert!(bytes.len() > 64);
    }
}

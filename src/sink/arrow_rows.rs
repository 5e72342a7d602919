//! Encodes batches of rows as Arrow IPC record batches, the row format the Storage Write API
//! takes: one serialised schema per writer, one serialised record batch per append.

use crate::pipeline::{DeadLetterRow, IngestRow, write_attributes_json};
use crate::tables::{Column, ColumnType, DEAD_LETTER_COLUMNS, INGEST_COLUMNS, MAX_APPEND_BYTES};
use arrow_array::builder::{BinaryBuilder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions, StreamWriter};
use arrow_schema::{ArrowError, DataType, Field, Schema, TimeUnit};
use bytes::Bytes;
use std::cell::RefCell;
use std::sync::Arc;

/// The Arrow type each column type is written as: BigQuery's documented mapping, from
/// "Supported protocol buffer and Arrow data types" (BigQuery documentation,
/// docs.cloud.google.com/bigquery/docs/supported-data-types), rows of its Arrow table:
///
/// | BigQuery data type | Supported Apache Arrow types | Supported type parameters         |
/// |--------------------|------------------------------|-----------------------------------|
/// | `STRING`           | `Utf8`                       |                                   |
/// | `JSON`             | `Utf8`                       |                                   |
/// | `TIMESTAMP`        | `Timestamp`                  | unit= MICROSECONDS timezone = UTC |
/// | `INTEGER`          | `int`                        | bitWidth in {8, 16, 32, 64} is_signed = false |
/// | `BYTES`            | `Binary`                     |                                   |
///
/// Where the document is silent or ambiguous (README, "Not guaranteed"):
/// - INTEGER says `is_signed = false`, which cannot hold negative INT64 values; the Java
///   samples of Google's java-bigquerystorage write signed 64-bit integers, and so do we.
/// - JSON: the write mapping lists plain Utf8 with no field metadata. The
///   `ARROW:extension:name = google:sqlType:json` marker is how Google's Python client
///   (python-bigquery) describes JSON columns it reads; we found no Google client or sample
///   that writes it, and the write table does not ask for it, so we do not send it.
/// - Nullability: the document says nothing of REQUIRED vs NULLABLE. A REQUIRED column is a
///   non-nullable field, a NULLABLE one nullable (`arrow_schema`), as the table's mode says.
fn arrow_type(kind: ColumnType) -> DataType {
    match kind {
        ColumnType::String | ColumnType::Json => DataType::Utf8,
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

/// Serialises a record batch as an encapsulated IPC record-batch message (no schema), writing
/// each column's buffers straight into one buffer of the right size: the only copy of the
/// rows between their Arrow columns and the request.
fn serialize_batch(batch: &RecordBatch) -> Result<Bytes, ArrowError> {
    let mut writer =
        StreamWriter::try_new(Vec::with_capacity(encoded_len(batch)), &batch.schema())?;
    // The writer starts the stream with the schema; the Storage Write API takes the schema
    // once per connection, so each append is the record-batch message alone.
    writer.get_mut().clear();
    writer.write(batch)?;
    Ok(Bytes::from(std::mem::take(writer.get_mut())))
}

/// The size of `batch`'s IPC message, from the lengths of its buffers (not their capacities:
/// the reused payload column may be larger than this batch): each buffer padded to 8 bytes,
/// plus the flatbuffer header (a few hundred bytes for these schemas).
fn encoded_len(batch: &RecordBatch) -> usize {
    let padded = |len: usize| len.div_ceil(8) * 8;
    let body: usize = batch
        .columns()
        .iter()
        .map(|c| {
            let data = c.to_data();
            let buffers: usize = data.buffers().iter().map(|b| padded(b.len())).sum();
            buffers + data.nulls().map_or(0, |n| padded(n.buffer().len()))
        })
        .sum();
    body + 4096
}

thread_local! {
    /// The payload column's bytes, kept by each runtime thread from one batch to the next: a
    /// batch of large objects then writes into memory already mapped instead of a fresh
    /// multi-megabyte allocation each time. Holds at most one batch (`batch.max_bytes`).
    static PAYLOADS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A string column of `values` (already UTF-8: the decoder checked every payload) built in a
/// reused buffer; `finish` with the batch gives the buffer back for the next batch.
struct ReusedColumn {
    array: Arc<StringArray>,
}

impl ReusedColumn {
    fn payloads(rows: &[IngestRow]) -> Result<ReusedColumn, ArrowError> {
        let mut values = PAYLOADS.with(|p| std::mem::take(&mut *p.borrow_mut()));
        values.clear();
        values.reserve(rows.iter().map(|r| r.payload.len()).sum());
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0i32);
        for r in rows {
            values.extend_from_slice(&r.payload);
            let end = i32::try_from(values.len()).map_err(|_| {
                ArrowError::InvalidArgumentError("payload column over 2 GiB".into())
            })?;
            offsets.push(end);
        }
        let array = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            None,
        )?;
        Ok(ReusedColumn {
            array: Arc::new(array),
        })
    }

    /// Returns the buffer to this thread once nothing else refers to the column.
    fn finish(self) {
        let Ok(array) = Arc::try_unwrap(self.array) else {
            return;
        };
        let (_, values, _) = array.into_parts();
        if let Ok(mut values) = values.into_vec::<u8>()
            && values.capacity() <= MAX_APPEND_BYTES
        {
            values.clear();
            PAYLOADS.with(|p| *p.borrow_mut() = values);
        }
    }
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
    let payload = ReusedColumn::payloads(rows)?;
    let mut event_id = StringBuilder::with_capacity(n, n * 24);
    let mut event_type = StringBuilder::with_capacity(n, n * 16);
    let mut object_id = StringBuilder::with_capacity(n, n * 16);
    let mut attributes = StringBuilder::with_capacity(n, n * 32);
    // One row's attributes JSON at a time, written into this one buffer.
    let mut attributes_text = Vec::with_capacity(256);
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
        attributes_text.clear();
        write_attributes_json(&r.attributes, &mut attributes_text);
        attributes.append_value(std::str::from_utf8(&attributes_text).expect("JSON is UTF-8"));
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
        payload.array.clone(),
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
    let bytes = serialize_batch(&batch);
    drop(batch);
    payload.finish();
    bytes
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
            event_id: format!("e{i}").into(),
            event_source: None,
            event_type: "T".into(),
            event_time_us: 1_700_000_000_000_000,
            object_id: Some("o".into()),
            payload: raw.slice(11..raw.len() - 1),
            attributes: Default::default(),
            message_id: format!("m{i}"),
            publish_time_us: Some(1),
            ordering_key: None,
            delivery_attempt: None,
            replayed_at_us: None,
            raw,
        }
    }

    /// The Arrow schemas the Storage Write API gets, field by field: a change to the mapping
    /// must change this table.
    #[test]
    fn arrow_schemas_follow_the_documented_mapping_field_by_field() {
        let ts = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let ingest: [(&str, DataType, bool); 14] = [
            ("event_id", DataType::Utf8, false),
            ("event_type", DataType::Utf8, false),
            ("event_time", ts(), false),
            ("object_id", DataType::Utf8, true),
            ("payload", DataType::Utf8, false),
            ("attributes", DataType::Utf8, false),
            ("message_id", DataType::Utf8, false),
            ("publish_time", ts(), true),
            ("subscription", DataType::Utf8, false),
            ("ordering_key", DataType::Utf8, true),
            ("delivery_attempt", DataType::Int64, true),
            ("ingested_at", ts(), false),
            ("event_source", DataType::Utf8, true),
            ("replayed_at", ts(), true),
        ];
        let dead_letter: [(&str, DataType, bool); 10] = [
            ("message_id", DataType::Utf8, false),
            ("publish_time", ts(), true),
            ("subscription", DataType::Utf8, false),
            ("attributes", DataType::Utf8, false),
            ("data", DataType::Binary, false),
            ("reason_code", DataType::Utf8, false),
            ("reason", DataType::Utf8, false),
            ("failed_at", ts(), false),
            ("event_id", DataType::Utf8, true),
            ("delivery_attempt", DataType::Int64, true),
        ];
        for (columns, expected) in [
            (&INGEST_COLUMNS[..], &ingest[..]),
            (&DEAD_LETTER_COLUMNS[..], &dead_letter[..]),
        ] {
            let schema = arrow_schema(columns);
            assert_eq!(schema.fields().len(), expected.len());
            assert!(schema.metadata().is_empty());
            for (field, (name, data_type, nullable)) in schema.fields().iter().zip(expected) {
                assert_eq!(field.name(), name);
                assert_eq!(field.data_type(), data_type, "{name}");
                assert_eq!(field.is_nullable(), *nullable, "{name}");
                assert!(field.metadata().is_empty(), "{name}: no field metadata");
            }
        }
    }

    #[test]
    fn ingest_batch_round_trips_through_ipc() {
        let mut rows: Vec<IngestRow> = (0..3).map(row).collect();
        rows[1].attributes = [("b", "2"), ("a", "\"quoted\"")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
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
        let strings = |name: &str| -> Vec<String> {
            let column = b.column_by_name(name).unwrap().as_any();
            let column = column.downcast_ref::<StringArray>().unwrap();
            column.iter().map(|v| v.unwrap().to_string()).collect()
        };
        assert_eq!(strings("payload")[2], r#"{"n":2}"#);
        // Attributes are written into the column per row: sorted keys, escaped values.
        let written = strings("attributes");
        assert_eq!(written, ["{}", r#"{"a":"\"quoted\"","b":"2"}"#, "{}"]);
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

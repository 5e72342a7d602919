//! The harness's Storage Write server checks each connection's Arrow schema the way BigQuery
//! documents it ("Supported protocol buffer and Arrow data types", BigQuery documentation,
//! docs.cloud.google.com/bigquery/docs/supported-data-types): every field must be a column of
//! the table, of the Arrow type the table documents for the column's BigQuery type, and every
//! REQUIRED column must be there. bqemulator casts whatever arrives, so this is where a change
//! that real BigQuery would refuse shows up in our tests.
//!
//! Where the document is silent the check accepts: field nullability against the column's
//! mode, field metadata, and the signedness of integers (the table says `is_signed = false`
//! while Google's own Java samples write signed 64-bit integers).

use arrow_schema::{DataType, Schema, TimeUnit};
use mesh_ingest::tables::{Column, ColumnType};

/// Whether `data_type` is what the document lists for a column of BigQuery type `kind`.
fn documented(kind: ColumnType, data_type: &DataType) -> Result<(), String> {
    let ok = match kind {
        // "STRING | Utf8" and "JSON | Utf8": no other string encodings are listed.
        ColumnType::String | ColumnType::Json => *data_type == DataType::Utf8,
        // "TIMESTAMP | Timestamp | unit = MICROSECONDS, timezone = UTC".
        ColumnType::Timestamp => {
            return match data_type {
                DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
                    Ok(())
                }
                DataType::Timestamp(TimeUnit::Microsecond, tz) => Err(format!(
                    "a TIMESTAMP column needs timezone UTC, not {}",
                    tz.as_deref().unwrap_or("none")
                )),
                other => Err(format!(
                    "a TIMESTAMP column needs Timestamp(MICROSECONDS, UTC), not {other}"
                )),
            };
        }
        // "INTEGER | int | bitWidth in {8, 16, 32, 64}".
        ColumnType::Int64 => matches!(
            data_type,
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::UInt8
                | DataType::UInt16
                | DataType::UInt32
                | DataType::UInt64
        ),
        // "BYTES | Binary".
        ColumnType::Bytes => *data_type == DataType::Binary,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a {} column is written as {}, not {data_type}",
            kind.bigquery_name(),
            expected(kind)
        ))
    }
}

fn expected(kind: ColumnType) -> &'static str {
    match kind {
        ColumnType::String | ColumnType::Json => "Utf8",
        ColumnType::Timestamp => "Timestamp(MICROSECONDS, UTC)",
        ColumnType::Int64 => "an integer of 8 to 64 bits",
        ColumnType::Bytes => "Binary",
    }
}

/// Checks a serialised Arrow schema (an encapsulated IPC schema message) against the table's
/// columns; the error names the field, as BigQuery's INVALID_ARGUMENT does.
pub fn check_schema(serialized: &[u8], columns: &[Column]) -> Result<(), String> {
    let schema: Schema = arrow_ipc::convert::try_schema_from_ipc_buffer(serialized)
        .map_err(|e| format!("the writer schema is not an Arrow IPC schema message: {e}"))?;
    for field in schema.fields() {
        let column = columns
            .iter()
            .find(|c| c.name == field.name())
            .ok_or_else(|| {
                format!(
                    "Input schema has more fields than BigQuery schema: `{}`",
                    field.name()
                )
            })?;
        documented(column.kind, field.data_type())
            .map_err(|e| format!("field `{}`: {e}", field.name()))?;
    }
    if let Some(missing) = columns
        .iter()
        .find(|c| c.required && schema.field_with_name(c.name).is_err())
    {
        return Err(format!(
            "REQUIRED column `{}` is missing from the writer schema",
            missing.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_ipc::writer::{DictionaryTracker, IpcDataGenerator, IpcWriteOptions};
    use arrow_schema::Field;
    use mesh_ingest::sink::arrow_rows::serialized_schema;
    use mesh_ingest::tables::{DEAD_LETTER_COLUMNS, INGEST_COLUMNS};

    fn serialize(schema: &Schema) -> Vec<u8> {
        let options = IpcWriteOptions::default();
        let encoded = IpcDataGenerator::default().schema_to_bytes_with_dictionary_tracker(
            schema,
            &mut DictionaryTracker::new(false),
            &options,
        );
        let mut out = Vec::new();
        arrow_ipc::writer::write_message(&mut out, encoded, &options).unwrap();
        out
    }

    /// The ingest schema with one field replaced.
    fn ingest_with(name: &str, data_type: DataType) -> Vec<u8> {
        let fields: Vec<Field> = INGEST_COLUMNS
            .iter()
            .map(|c| {
                let t = if c.name == name {
                    data_type.clone()
                } else {
                    mesh_ingest::sink::arrow_rows::arrow_schema(std::slice::from_ref(c))
                        .field(0)
                        .data_type()
                        .clone()
                };
                Field::new(c.name, t, !c.required)
            })
            .collect();
        serialize(&Schema::new(fields))
    }

    #[test]
    fn what_mesh_ingest_writes_passes() {
        assert_eq!(
            check_schema(&serialized_schema(&INGEST_COLUMNS), &INGEST_COLUMNS),
            Ok(())
        );
        assert_eq!(
            check_schema(
                &serialized_schema(&DEAD_LETTER_COLUMNS),
                &DEAD_LETTER_COLUMNS
            ),
            Ok(())
        );
    }

    #[test]
    fn undocumented_types_are_refused_by_field() {
        let cases = [
            (
                "event_time",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                "timezone UTC",
            ),
            (
                "event_time",
                DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
                "MICROSECONDS",
            ),
            ("payload", DataType::LargeUtf8, "Utf8"),
            ("payload", DataType::Binary, "Utf8"),
            ("event_id", DataType::Utf8View, "Utf8"),
            ("delivery_attempt", DataType::Float64, "integer"),
        ];
        for (field, data_type, says) in cases {
            let e =
                check_schema(&ingest_with(field, data_type.clone()), &INGEST_COLUMNS).unwrap_err();
            assert!(
                e.contains(field) && e.contains(says),
                "{field} as {data_type}: {e}"
            );
        }
    }

    #[test]
    fn extra_fields_and_missing_required_columns_are_refused() {
        let extra = serialize(&Schema::new(vec![Field::new("nope", DataType::Utf8, true)]));
        assert!(
            check_schema(&extra, &INGEST_COLUMNS)
                .unwrap_err()
                .contains("more fields")
        );
        let only_optional = serialize(&Schema::new(vec![Field::new(
            "object_id",
            DataType::Utf8,
            true,
        )]));
        assert!(
            check_schema(&only_optional, &INGEST_COLUMNS)
                .unwrap_err()
                .contains("REQUIRED column `event_id`")
        );
    }
}

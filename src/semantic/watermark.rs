//! The SQL around the state table's watermark: the small table that keeps, per state table,
//! the newest `ingested_at` that `materialize` applied, and the statements that read and move
//! it. Pure text, like the rest of the semantic layer.

use super::{Slice, sql_string};
use crate::configuration::{ObjectSettings, SemanticSettings};
use crate::tables::ingest::INGESTED_AT;

/// `materialize`'s watermarks, one row per state table of the dataset.
pub const TABLE: &str = "_mesh_ingest_watermarks";

fn table(semantic: &SemanticSettings) -> String {
    semantic.qualified(TABLE).sql_name()
}

/// Creates the watermark table if it is missing.
pub fn create_table(semantic: &SemanticSettings) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} (state_table STRING NOT NULL, watermark TIMESTAMP, updated_at TIMESTAMP)",
        table(semantic)
    )
}

/// One row, one column: the watermark in microseconds since the epoch (no row: never set).
pub fn read(semantic: &SemanticSettings) -> String {
    format!(
        "SELECT UNIX_MICROS(watermark) AS watermark FROM {} WHERE state_table = {}",
        table(semantic),
        sql_string(&semantic.state_table())
    )
}

/// Sets the watermark to `micros` (`None`: forgets it, so the next run reads everything).
pub fn write(semantic: &SemanticSettings, micros: Option<i64>) -> String {
    let name = sql_string(&semantic.state_table());
    match micros {
        None => format!("DELETE FROM {} WHERE state_table = {name}", table(semantic)),
        Some(us) => format!(
            "MERGE {t} T USING (SELECT {name} AS state_table, TIMESTAMP_MICROS({us}) AS watermark) S \
             ON T.state_table = S.state_table \
             WHEN MATCHED THEN UPDATE SET watermark = S.watermark, updated_at = CURRENT_TIMESTAMP() \
             WHEN NOT MATCHED THEN INSERT (state_table, watermark, updated_at) \
             VALUES (S.state_table, S.watermark, CURRENT_TIMESTAMP())",
            t = table(semantic)
        ),
    }
}

/// Forgets the watermark of `state_table` (one of the dataset's, dropped).
pub fn forget(semantic: &SemanticSettings, state_table: &str) -> String {
    format!(
        "DELETE FROM {} WHERE state_table = {}",
        table(semantic),
        sql_string(state_table)
    )
}

/// The watermark as a TIMESTAMP expression (`None`: the epoch, so everything is new).
pub fn as_sql(micros: Option<i64>) -> String {
    format!("TIMESTAMP_MICROS({})", micros.unwrap_or(0))
}

/// One row: how many events the slice after `watermark_sql` holds, and the newest
/// `ingested_at` among them (microseconds) — the next watermark. The same filter as the MERGE.
pub fn slice_stats(object: &ObjectSettings, watermark_sql: &str) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let slice = Slice::since(semantic, watermark_sql, "", |s| s);
    Some(format!(
        "SELECT COUNT(*) AS events, UNIX_MICROS(MAX({INGESTED_AT})) AS newest FROM {} WHERE TRUE {}",
        object.ingest_table.sql_name(),
        slice.filter
    ))
}

/// The newest `ingested_at` of the whole ingest log (microseconds): the watermark of a state
/// table just built from all of it.
pub fn newest_ingested(object: &ObjectSettings) -> String {
    format!(
        "SELECT UNIX_MICROS(MAX({INGESTED_AT})) AS newest FROM {}",
        object.ingest_table.sql_name()
    )
}

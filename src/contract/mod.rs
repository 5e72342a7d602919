//! The object file as a data contract: `odcs` writes it as an Open Data Contract Standard v3
//! document, `diff` classes every change between two versions of the object files as
//! compatible or breaking (with `json_schema` for the payload's JSON Schema). Pure: reads
//! resolved configuration, does no I/O.

pub mod diff;
pub mod json_schema;
pub mod odcs;
mod proto_diff;
mod topic_schema;

use serde::Serialize;

/// Whether consumers (or producers) of the contract keep working after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Compatible,
    Breaking,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Compatible => "compatible",
            Class::Breaking => "breaking",
        }
    }
}

#[cfg(test)]
mod tests;

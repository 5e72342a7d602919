//! The `mesh-ingest` commands, one file each. `main.rs` parses the command line and calls
//! these; each prints what it did for the operator.

pub mod check;
pub mod consumers;
pub mod contract;
pub mod dlq;
pub mod materialize;
pub mod preview;
pub mod provision;
pub mod publish;
pub mod run;
pub mod semantic;
pub mod sql;
pub mod topic_schema;

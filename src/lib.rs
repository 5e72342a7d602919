//! mesh-ingest: lands Data Mesh domain events from Pub/Sub in BigQuery.
//!
//! The data path, one module each: `source` (streaming pull) → `envelope` (decode, validate)
//! → `batch` → `sink` (Storage Write API, dead-letter) → `ack`. Beside it: `configuration`,
//! `http`, `telemetry`, `health`, `shutdown`, the `semantic` layer's SQL generation, and the
//! `provision` / `publish` commands.

pub mod ack;
pub mod batch;
pub mod configuration;
pub mod envelope;
pub mod gcp;
pub mod health;
pub mod http;
pub mod provision;
pub mod publish;
pub mod semantic;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod startup;
pub mod telemetry;

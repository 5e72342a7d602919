//! mesh-ingest: lands Data Mesh domain events from Pub/Sub in BigQuery.
//!
//! The data path, one folder each: `source` (streaming pull) → `envelope` (decode, validate)
//! → `batch` → `sink` (Storage Write API, dead-letter) → acknowledgement, with `pipeline`
//! holding what flows between them. Beside it: `configuration`, `tables`, `app` (wiring),
//! `commands`, `http`, `health`, `telemetry`, `shutdown`, the `semantic` layer's SQL
//! generation, the object file as a data `contract` (ODCS export, breaking-change diff), and
//! the `preview` of a contract change on real data.
//! ARCHITECTURE.md says who may import whom.

#![warn(clippy::too_many_lines)]

pub mod app;
pub mod batch;
pub mod commands;
pub mod configuration;
pub mod contract;
pub mod envelope;
mod gcp;
pub mod health;
pub mod http;
pub mod pipeline;
pub mod preview;
pub mod semantic;
pub mod shutdown;
pub mod sink;
pub mod source;
pub mod tables;
pub mod telemetry;

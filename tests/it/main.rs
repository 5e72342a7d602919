//! The integration tests, as one test binary: one link of the crate and its dependencies
//! instead of one per file. Each module is one area; `support` is the harness they share.
//! Tests that need the emulators read their addresses from the environment that
//! `scripts/test.sh` sets up; they never skip.

mod support;

mod architecture;
mod arrow_mapping;
mod bad_input_corpus;
mod bigquery_restart;
mod catalog;
mod chaos_sigkill;
mod check_command;
mod contract_preview;
mod contracts;
mod dataform_cli;
mod deploy_manifests;
mod destination_faults;
mod dlq_replay;
mod envelope_properties;
mod ingest_end_to_end;
mod load_harness;
mod major_versions;
mod many_objects;
mod materialize;
mod monitoring;
mod no_silent_failure;
mod observability;
mod semantic_layer;
mod shutdown_drain;
mod state_definition;
mod topic_schemas;

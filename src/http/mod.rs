//! The HTTP server: /healthz (the process makes progress: no object holds messages while no
//! append finishes for `stall_timeout_secs`), /readyz (every object's subscription, streams
//! and tables are up; the body names what is not) and /metrics (Prometheus text).

use crate::health::Health;
use crate::telemetry::metrics::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

#[derive(Clone)]
pub struct HttpState {
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz(State(s): State<HttpState>) -> impl IntoResponse {
    match s.health.liveness() {
        Ok(()) => (StatusCode::OK, "ok\n".to_string()),
        Err(stuck) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stuck:\n{}\n", stuck.join("\n")),
        ),
    }
}

async fn readyz(State(s): State<HttpState>) -> impl IntoResponse {
    match s.health.readiness() {
        Ok(msg) => (StatusCode::OK, format!("{msg}\n")),
        Err(problems) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        ),
    }
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    s.metrics.set_ready(s.health.readiness().is_ok());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

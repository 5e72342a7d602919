//! Builds the Google Cloud clients from `GcpSettings`: production endpoints and Application
//! Default Credentials (Workload Identity on GKE), or emulator endpoints over plaintext with
//! anonymous credentials.

use crate::configuration::GcpSettings;
use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
use google_cloud_bigquery::client::Write;
use google_cloud_bigquery_v2::client::{DatasetService, JobService, TableService};
use google_cloud_pubsub::client::{Publisher, Subscriber, SubscriptionAdmin, TopicAdmin};

pub type BuildResult<T> = Result<T, anyhow::Error>;

/// Points a client builder at `endpoint` (if set) and, for emulators, anonymous credentials.
macro_rules! configured {
    ($builder:expr, $endpoint:expr, $gcp:expr) => {{
        let mut b = $builder;
        if let Some(e) = $endpoint {
            b = b.with_endpoint(e.clone());
        }
        if $gcp.anonymous {
            b = b.with_credentials(Anonymous::new().build());
        }
        b
    }};
}

pub async fn subscriber(gcp: &GcpSettings, subchannels: usize) -> BuildResult<Subscriber> {
    let b = configured!(Subscriber::builder(), &gcp.pubsub_endpoint, gcp);
    Ok(b.with_grpc_subchannel_count(subchannels).build().await?)
}

pub async fn publisher(gcp: &GcpSettings, topic: &str) -> BuildResult<Publisher> {
    let b = configured!(Publisher::builder(topic), &gcp.pubsub_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn topic_admin(gcp: &GcpSettings) -> BuildResult<TopicAdmin> {
    let b = configured!(TopicAdmin::builder(), &gcp.pubsub_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn subscription_admin(gcp: &GcpSettings) -> BuildResult<SubscriptionAdmin> {
    let b = configured!(SubscriptionAdmin::builder(), &gcp.pubsub_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn write_client(gcp: &GcpSettings) -> BuildResult<Write> {
    let b = configured!(Write::builder(), &gcp.bigquery_write_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn dataset_service(gcp: &GcpSettings) -> BuildResult<DatasetService> {
    let b = configured!(DatasetService::builder(), &gcp.bigquery_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn table_service(gcp: &GcpSettings) -> BuildResult<TableService> {
    let b = configured!(TableService::builder(), &gcp.bigquery_endpoint, gcp);
    Ok(b.build().await?)
}

pub async fn job_service(gcp: &GcpSettings) -> BuildResult<JobService> {
    let b = configured!(JobService::builder(), &gcp.bigquery_endpoint, gcp);
    Ok(b.build().await?)
}

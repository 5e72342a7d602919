//! Where Google clients connect: production endpoints with Application Default Credentials
//! (Workload Identity on GKE), or emulator endpoints over plaintext with anonymous
//! credentials. Each client is built in the one file that uses it (Pub/Sub in the source,
//! Storage Write in the sink, the admin APIs in `provision`), through [`configured!`].

/// Points a client builder at `endpoint` (if set) and, for emulators, anonymous credentials:
/// `configured!(Subscriber::builder(), &gcp.pubsub_endpoint, gcp)`.
macro_rules! configured {
    ($builder:expr, $endpoint:expr, $gcp:expr) => {{
        let mut b = $builder;
        if let Some(e) = $endpoint {
            b = b.with_endpoint(e.clone());
        }
        if $gcp.anonymous {
            b = b.with_credentials(
                google_cloud_auth::credentials::anonymous::Builder::new().build(),
            );
        }
        b
    }};
}

pub(crate) use configured;

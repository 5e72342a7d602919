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

/// A gRPC status code as Google's documentation writes it (`RESOURCE_EXHAUSTED`), for metric
/// labels, readiness and logs.
pub fn code_name(code: google_cloud_gax::error::rpc::Code) -> String {
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
            sep.into_iter()
                .chain(std::iter::once(c.to_ascii_uppercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use google_cloud_gax::error::rpc::Code;

    #[test]
    fn code_names_are_screaming_snake() {
        assert_eq!(
            super::code_name(Code::ResourceExhausted),
            "RESOURCE_EXHAUSTED"
        );
        assert_eq!(super::code_name(Code::Unavailable), "UNAVAILABLE");
    }
}

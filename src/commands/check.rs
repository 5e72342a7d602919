//! `mesh-ingest check`: the configuration loaded and validated (by the time this runs), printed
//! resolved as JSON on stdout, with a one-line verdict on stderr.

use crate::configuration::Settings;

pub fn check(settings: &Settings) {
    println!("{}", settings.to_resolved_json());
    eprintln!(
        "configuration OK: {} object(s), environment `{}`",
        settings.objects.len(),
        settings.environment
    );
}

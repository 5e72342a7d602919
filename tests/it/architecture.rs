//! Who may import whom (ARCHITECTURE.md), checked on the source text: every `crate::<module>`
//! a module of `src/` names must be on its list, and the Google client crates are named only
//! by the files that talk to those services. Unit tests (`tests.rs` files and everything
//! after a `#[cfg(test)]`) may import anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The modules of the library, and the crate modules each may name.
const ALLOWED: &[(&str, &[&str])] = &[
    ("tables", &[]),
    ("pipeline", &[]),
    ("shutdown", &[]),
    ("gcp", &[]),
    ("configuration", &["tables"]),
    ("health", &[]),
    ("telemetry", &["configuration", "pipeline", "tables"]),
    ("envelope", &["pipeline"]),
    ("batch", &["configuration"]),
    ("semantic", &["configuration", "tables"]),
    (
        "contract",
        &["configuration", "envelope", "semantic", "tables"],
    ),
    ("preview", &["configuration", "pipeline", "tables"]),
    ("http", &["health", "telemetry"]),
    (
        "source",
        &[
            "configuration",
            "envelope",
            "gcp",
            "health",
            "pipeline",
            "shutdown",
            "telemetry",
        ],
    ),
    (
        "sink",
        &[
            "batch",
            "configuration",
            "gcp",
            "health",
            "pipeline",
            "shutdown",
            "tables",
            "telemetry",
        ],
    ),
    (
        "app",
        &[
            "configuration",
            "health",
            "http",
            "pipeline",
            "shutdown",
            "sink",
            "source",
            "tables",
            "telemetry",
        ],
    ),
    (
        "commands",
        &[
            "app",
            "configuration",
            "contract",
            "envelope",
            "gcp",
            "pipeline",
            "preview",
            "semantic",
            "shutdown",
            "sink",
            "source",
            "tables",
        ],
    ),
];

/// External crates that only these files may name.
const CONFINED: &[(&str, &[&str])] = &[
    (
        "google_cloud_pubsub",
        &[
            "src/source/pubsub.rs",
            "src/commands/provision.rs",
            "src/commands/topic_schema.rs",
            "src/commands/publish.rs",
        ],
    ),
    (
        "google_cloud_bigquery",
        &[
            "src/sink/writer.rs",
            "src/commands/provision.rs",
            "src/commands/check.rs",
            "src/commands/sql.rs",
        ],
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The file's text without its unit tests.
fn production_text(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The library module a file of `src/` belongs to: its folder, or its file stem.
fn module_of(relative: &Path) -> Option<String> {
    let mut parts = relative.components().skip(1); // "src"
    let first = parts.next()?.as_os_str().to_str()?.to_string();
    if first == "bin" || first == "main.rs" || first == "lib.rs" {
        return None;
    }
    Some(first.trim_end_matches(".rs").to_string())
}

/// The crate modules a text names as `crate::<module>`.
fn crate_modules(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .map(|(i, _)| {
            text[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|m| !m.is_empty())
        .collect()
}

#[test]
fn modules_import_only_what_architecture_md_allows() {
    let root = root();
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for path in rust_files(&root.join("src")) {
        let relative = path.strip_prefix(&root).unwrap();
        let Some(module) = module_of(relative) else {
            continue;
        };
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            violations.push(format!(
                "{}: module `{module}` is not in ALLOWED (add it, and to ARCHITECTURE.md)",
                relative.display()
            ));
            continue;
        };
        seen.insert(module.clone());
        for used in crate_modules(&production_text(&path)) {
            if used != module && !allowed.contains(&used.as_str()) {
                violations.push(format!(
                    "{}: `{module}` must not import `crate::{used}`",
                    relative.display()
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The rules stay honest: every listed module exists.
    for (module, _) in ALLOWED {
        assert!(
            seen.contains(*module),
            "ALLOWED lists `{module}`, which src/ has not"
        );
    }
}

#[test]
fn google_client_crates_are_named_only_where_they_are_used() {
    let root = root();
    let mut violations = Vec::new();
    for path in rust_files(&root.join("src")) {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .to_string();
        if relative.starts_with("src/bin/") {
            continue; // the load harness speaks both wire protocols itself
        }
        let text = production_text(&path);
        for (krate, files) in CONFINED {
            if text.contains(krate) && !files.contains(&relative.as_str()) {
                violations.push(format!("{relative} names `{krate}`"));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_checker_sees_a_forbidden_import() {
    // The rules above would pass vacuously if the scan found nothing: it must see these.
    let text = "use crate::sink::Thing;\nfn f() { crate::pipeline::clock::now_us(); }";
    let found = crate_modules(text);
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["pipeline".to_string(), "sink".to_string()]
    );
    assert_eq!(
        module_of(Path::new("src/source/pubsub.rs")).as_deref(),
        Some("source")
    );
    assert_eq!(module_of(Path::new("src/app.rs")).as_deref(), Some("app"));
}

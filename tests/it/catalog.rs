//! The catalog people browse: `scripts/catalog.sh` exports every object and major of the shipped
//! configuration (with the schema'd shipment of examples/schemad/ beside it) as ODCS, lints each with the real datacontract-cli (a finding fails it), and
//! renders `datacontract catalog`. Headless Chromium (Debian's) then opens each product's page
//! as a reader would: it must show the product's owner, description, freshness promise and
//! columns; and the index, whose screenshot must be a real picture (docs/catalog.png is one).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Chromium, headless, as this machine's closed network wants it.
fn chromium(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium: run scripts/install-emulators.sh")
}

/// The text a reader sees on `page`, as Chromium rendered it.
fn rendered_text(profile: &Path, page: &Path) -> String {
    let out = chromium(
        profile,
        &["--dump-dom", &format!("file://{}", page.display())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut text = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_catalog_shows_every_product_with_owner_description_freshness_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    // The shipped configuration, and beside it the schema'd shipment of examples/schemad/
    // (as run-local has it): its contract names its topic schema, and is linted too.
    let config = crate::check_command::copy_of_shipped();
    for (file, to) in [("shipment.yaml", "objects"), ("shipment.avsc", "schemas")] {
        std::fs::copy(
            root().join("examples/schemad").join(file),
            config.path().join(to).join(file),
        )
        .unwrap();
    }
    let out = Command::new(root().join("scripts/catalog.sh"))
        .arg(dir.path())
        .arg(config.path())
        .env("MESH_BIN", env!("CARGO_BIN_EXE_mesh-ingest"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shipment =
        std::fs::read_to_string(dir.path().join("contracts/shipment.odcs.yaml")).unwrap();
    for want in [
        "pubsubTopicSchema",
        "shipment.avsc",
        "pubsubTopicSchemaEncoding",
    ] {
        assert!(shipment.contains(want), "`{want}` missing:\n{shipment}");
    }
    assert!(
        dir.path().join("catalog/shipment.odcs.html").exists(),
        "the schema'd object has its page"
    );
    let profile = dir.path().join("chromium");
    for doc in ["customer.v1", "order.v1", "order.v2"] {
        let yaml =
            std::fs::read_to_string(dir.path().join(format!("contracts/{doc}.odcs.yaml"))).unwrap();
        let contract =
            crate::support::yaml_to_json(&yaml_rust2::YamlLoader::load_from_str(&yaml).unwrap()[0]);
        let page = dir.path().join(format!("catalog/{doc}.odcs.html"));
        let text = rendered_text(&profile, &page);
        let sla = &contract["slaProperties"][0];
        let mut must_show = vec![
            contract["team"]["name"].as_str().unwrap().to_string(),
            contract["description"]["purpose"]
                .as_str()
                .unwrap()
                .to_string(),
            format!(
                "Property latency Value {} Unit {}",
                sla["value"],
                sla["unit"].as_str().unwrap()
            ),
        ];
        let columns: Vec<String> = contract["schema"][0]["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p: &Value| p["name"].as_str().unwrap().to_string())
            .collect();
        assert!(columns.len() >= 4, "{doc}: {columns:?}");
        must_show.extend(columns);
        for want in &must_show {
            assert!(
                text.contains(want.as_str()),
                "{doc}: the page does not show `{want}`:\n{text}"
            );
        }
    }
    let index = rendered_text(&profile, &dir.path().join("catalog/index.html"));
    for want in [
        "team-orders",
        "team-crm",
        "Registered customers and their loyalty tier.",
    ] {
        assert!(index.contains(want), "index: `{want}` missing:\n{index}");
    }
    let shot = dir.path().join("catalog.png");
    let out = chromium(
        &profile,
        &[
            "--window-size=1280,480",
            &format!("--screenshot={}", shot.display()),
            &format!("file://{}", dir.path().join("catalog/index.html").display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

//! The bad-input corpus in `tests/data/bad/` (its README describes the format), two ways:
//!
//! - `corpus_codes_match_the_decoder` (no emulators): every case through the decoder of its
//!   object; each gets the reason code the corpus expects.
//! - `every_bad_input_is_dead_lettered_once_and_the_stream_keeps_flowing` (emulators): every
//!   case published to the running service with valid events before and after it; each bad
//!   input gets exactly one dead-letter row with its reason code, a reason and its raw bytes,
//!   every valid event lands in the ingest table exactly once, the service stays up (no panic)
//!   and exits 0 on SIGTERM.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mesh_ingest::configuration::{LimitSettings, ObjectSettings};
use mesh_ingest::envelope::Decoder;
use mesh_ingest::pipeline::{ReasonCode, ReceivedMessage};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `expect` of a case the decoder accepts: it must land in the ingest table.
const INGESTED: &str = "ingested";
/// Valid events published before and after each corpus case.
const VALID_AROUND: usize = 3;
const OBJECTS: [&str; 2] = ["orders", "shipments"];

const ORDERS_YAML: &str = "envelope:\n  format: json\n  object_id: payload.order_id\n\
     event_types: [OrderCreated, OrderUpdated]\npayload_schema_file: orders.schema.json\n\
     batch:\n  max_rows: 200\n  max_delay_ms: 200\n";
const SHIPMENTS_YAML: &str =
    "envelope:\n  format: cloudevents\nbatch:\n  max_rows: 200\n  max_delay_ms: 200\n";
const ORDER_SCHEMA: &str = r#"{"type": "object", "required": ["order_id", "status"],
  "properties": {"order_id": {"type": ["string", "integer"]}, "status": {"type": "string"},
                 "total": {"type": "number", "minimum": 0}}}"#;

/// One corpus file, resolved into the message to publish.
struct Case {
    file: String,
    description: String,
    /// A `reason_code`, or `INGESTED`.
    expect: String,
    object: String,
    body: Vec<u8>,
    attributes: Vec<(String, String)>,
}

impl Case {
    /// Whether the decoder accepts the message: `ingested`, or refused later by BigQuery.
    fn decoder_accepts(&self) -> bool {
        self.expect == INGESTED || self.expect.starts_with("bigquery_")
    }

    fn outgoing(&self) -> Outgoing {
        Outgoing {
            data: self.body.clone(),
            attributes: self.attributes.clone(),
        }
    }
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad")
}

/// Every `*.json` case, in file-name order.
fn load_corpus() -> Vec<Case> {
    let dir = corpus_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files.iter().map(PathBuf::as_path).map(load_case).collect()
}

fn fail_case(file: &str, msg: impl std::fmt::Display) -> ! {
    panic!("tests/data/bad/{file}: {msg}")
}

fn load_case(path: &Path) -> Case {
    let file = path.file_name().unwrap().to_string_lossy().to_string();
    let bytes = file.as_bytes();
    if !(bytes.len() > 3 && bytes[..2].iter().all(u8::is_ascii_digit) && bytes[2] == b'-') {
        fail_case(&file, "the name must be `NN-short-name.json`");
    }
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| fail_case(&file, format!("unreadable: {e}")));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| fail_case(&file, format!("not JSON: {e}")));
    let Some(doc) = doc.as_object() else {
        fail_case(&file, "must be a JSON object")
    };
    const KNOWN: [&str; 8] = [
        "description",
        "expect",
        "object",
        "attributes",
        "attributes_generator",
        "body_text",
        "body_base64",
        "body_generator",
    ];
    if let Some(unknown) = doc.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        fail_case(&file, format!("unknown member `{unknown}`"));
    }
    let string = |key: &str| -> Option<String> {
        doc.get(key).map(|v| {
            v.as_str()
                .unwrap_or_else(|| fail_case(&file, format!("`{key}` must be a string")))
                .to_string()
        })
    };

    let description =
        string("description").unwrap_or_else(|| fail_case(&file, "`description` is required"));
    if description.trim().is_empty() {
        fail_case(&file, "`description` is empty");
    }
    let expect = string("expect").unwrap_or_else(|| fail_case(&file, "`expect` is required"));
    let known_code = ReasonCode::ALL.iter().any(|c| c.as_str() == expect);
    if !known_code && expect != INGESTED {
        fail_case(
            &file,
            format!("`expect` is `{expect}`: neither a reason code nor `{INGESTED}`"),
        );
    }
    let object = string("object").unwrap_or_else(|| "orders".to_string());
    if !OBJECTS.contains(&object.as_str()) {
        fail_case(
            &file,
            format!("`object` is `{object}`, expected one of {OBJECTS:?}"),
        );
    }

    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    if let Some(a) = doc.get("attributes") {
        let a = a
            .as_object()
            .unwrap_or_else(|| fail_case(&file, "`attributes` must be an object"));
        for (k, v) in a {
            let v = v
                .as_str()
                .unwrap_or_else(|| fail_case(&file, format!("attribute `{k}` must be a string")));
            attributes.insert(k.clone(), v.to_string());
        }
    }
    if let Some(g) = doc.get("attributes_generator") {
        for (k, v) in generate_attributes(g).unwrap_or_else(|m| fail_case(&file, m)) {
            attributes.insert(k, v);
        }
    }

    let bodies: Vec<&str> = ["body_text", "body_base64", "body_generator"]
        .into_iter()
        .filter(|k| doc.contains_key(*k))
        .collect();
    let body = match bodies.as_slice() {
        ["body_text"] => string("body_text").unwrap().into_bytes(),
        ["body_base64"] => BASE64
            .decode(string("body_base64").unwrap())
            .unwrap_or_else(|e| fail_case(&file, format!("`body_base64` is not base64: {e}"))),
        ["body_generator"] => {
            generate_body(&doc["body_generator"]).unwrap_or_else(|m| fail_case(&file, m))
        }
        _ => fail_case(
            &file,
            format!("needs exactly one of body_text, body_base64, body_generator (has {bodies:?})"),
        ),
    };
    if body.is_empty() && attributes.is_empty() {
        fail_case(
            &file,
            "Pub/Sub refuses a message with empty data and no attributes: add one",
        );
    }
    Case {
        file,
        description,
        expect,
        object,
        body,
        attributes: attributes.into_iter().collect(),
    }
}

fn member_str<'a>(
    g: &'a Map<String, Value>,
    key: &str,
    default: Option<&'a str>,
) -> Result<&'a str, String> {
    match g.get(key) {
        Some(v) => v
            .as_str()
            .ok_or_else(|| format!("generator `{key}` must be a string")),
        None => default.ok_or_else(|| format!("generator needs `{key}`")),
    }
}

fn member_usize(g: &Map<String, Value>, key: &str) -> Result<Option<usize>, String> {
    g.get(key)
        .map(|v| {
            v.as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| format!("generator `{key}` must be a non-negative integer"))
        })
        .transpose()
}

fn one_ascii_byte(g: &Map<String, Value>, key: &str, default: &str) -> Result<u8, String> {
    match member_str(g, key, Some(default))?.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("generator `{key}` must be one ASCII character")),
    }
}

fn only_members(g: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match g.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("generator has an unknown member `{k}`")),
        None => Ok(()),
    }
}

/// `repeat` and `nested_arrays`; see the corpus README.
fn generate_body(g: &Value) -> Result<Vec<u8>, String> {
    let g = g.as_object().ok_or("`body_generator` must be an object")?;
    let kind = member_str(g, "kind", None)?;
    let prefix = member_str(g, "prefix", Some(""))?.as_bytes();
    let suffix = member_str(g, "suffix", Some(""))?.as_bytes();
    let mut body = Vec::new();
    match kind {
        "repeat" => {
            only_members(
                g,
                &["kind", "prefix", "byte", "count", "total_bytes", "suffix"],
            )?;
            let byte = one_ascii_byte(g, "byte", "x")?;
            let count = match (member_usize(g, "count")?, member_usize(g, "total_bytes")?) {
                (Some(n), None) => n,
                (None, Some(total)) => total
                    .checked_sub(prefix.len() + suffix.len())
                    .ok_or("`total_bytes` is smaller than prefix + suffix")?,
                _ => return Err("`repeat` needs exactly one of `count`, `total_bytes`".into()),
            };
            body.reserve(prefix.len() + count + suffix.len());
            body.extend_from_slice(prefix);
            body.resize(prefix.len() + count, byte);
            body.extend_from_slice(suffix);
        }
        "nested_arrays" => {
            only_members(g, &["kind", "depth", "prefix", "suffix"])?;
            let depth = member_usize(g, "depth")?.ok_or("`nested_arrays` needs `depth`")?;
            body.extend_from_slice(prefix);
            body.resize(prefix.len() + depth, b'[');
            body.resize(prefix.len() + 2 * depth, b']');
            body.extend_from_slice(suffix);
        }
        other => return Err(format!("unknown body generator kind `{other}`")),
    }
    Ok(body)
}

/// `many_attributes`; see the corpus README.
fn generate_attributes(g: &Value) -> Result<Vec<(String, String)>, String> {
    let g = g
        .as_object()
        .ok_or("`attributes_generator` must be an object")?;
    match member_str(g, "kind", None)? {
        "many_attributes" => {
            only_members(g, &["kind", "count", "key_prefix", "value_bytes", "byte"])?;
            let count = member_usize(g, "count")?.ok_or("`many_attributes` needs `count`")?;
            let key_prefix = member_str(g, "key_prefix", Some("attr-"))?;
            let value_bytes =
                member_usize(g, "value_bytes")?.ok_or("`many_attributes` needs `value_bytes`")?;
            let byte = one_ascii_byte(g, "byte", "v")? as char;
            let value = byte.to_string().repeat(value_bytes);
            Ok((0..count)
                .map(|i| (format!("{key_prefix}{i:03}"), value.clone()))
                .collect())
        }
        other => Err(format!("unknown attributes generator kind `{other}`")),
    }
}

fn yaml_of(object: &str) -> &'static str {
    match object {
        "orders" => ORDERS_YAML,
        "shipments" => SHIPMENTS_YAML,
        other => panic!("no object `{other}`"),
    }
}

#[test]
fn corpus_codes_match_the_decoder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.schema.json"), ORDER_SCHEMA).unwrap();
    let decoders: HashMap<&str, Decoder> = OBJECTS
        .iter()
        .map(|&name| {
            let text = format!(
                "name: {name}\nsubscription: sub-{name}\ningest_table: d.{name}_events\n\
                 dead_letter_table: d.{name}_dead_letter\n{}",
                yaml_of(name)
            );
            let settings =
                ObjectSettings::parse(&text, &dir.path().join(format!("{name}.yaml")), "p")
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, mesh_ingest::source::decoder_for(&settings).unwrap())
        })
        .collect();
    let max_data = LimitSettings::default().max_dead_letter_data_bytes;
    let now = now_us();
    let cases = load_corpus();
    let mut failures = Vec::new();
    for case in &cases {
        let msg = ReceivedMessage {
            data: Bytes::from(case.body.clone()),
            attributes: case.attributes.iter().cloned().collect(),
            message_id: format!("m-{}", case.file),
            publish_time_us: Some(now),
            ..Default::default()
        };
        match decoders[case.object.as_str()].decode(msg, now) {
            Ok(row) if case.decoder_accepts() => {
                if row.raw[..] != case.body[..] {
                    failures.push(format!("{}: the row does not keep the raw body", case.file));
                }
            }
            Ok(row) => failures.push(format!(
                "{}: expected `{}`, but the decoder accepted it (event {} of type {})",
                case.file, case.expect, row.event_id, row.event_type
            )),
            Err(dead) if case.decoder_accepts() => failures.push(format!(
                "{}: expected the decoder to accept it (`{}`), got `{}`: {}",
                case.file, case.expect, dead.reason_code, dead.reason
            )),
            Err(dead) => {
                if dead.reason_code.as_str() != case.expect {
                    failures.push(format!(
                        "{}: expected `{}`, got `{}`: {}",
                        case.file, case.expect, dead.reason_code, dead.reason
                    ));
                }
                if dead.reason.trim().is_empty() {
                    failures.push(format!("{}: empty reason", case.file));
                }
                let kept = case.body.len().min(max_data);
                if dead.data[..] != case.body[..kept] {
                    failures.push(format!(
                        "{}: dead-letter data is not the first {kept} bytes of the body",
                        case.file
                    ));
                }
                if dead.message_id != format!("m-{}", case.file) {
                    failures.push(format!("{}: message id not kept", case.file));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases disagree with the decoder:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// What one published message is.
enum Planned {
    /// A valid event with this event id.
    Valid(String),
    /// The corpus case at this index.
    Corpus(usize),
}

fn valid_order(i: usize, us: i64) -> (Outgoing, String) {
    let id = format!("ok-order-{i}");
    let body = json!({
        "event_id": id,
        "event_type": if i.is_multiple_of(2) { "OrderCreated" } else { "OrderUpdated" },
        "event_time": rfc3339(us),
        "payload": {"order_id": format!("o-{}", i % 7), "status": "created", "total": i},
    });
    (Outgoing::body(body.to_string()), id)
}

fn valid_shipment(i: usize, us: i64) -> (Outgoing, String) {
    let id = format!("ok-shipment-{i}");
    let subject = format!("s-{}", i % 5);
    let data = json!({"shipment_id": subject, "carrier": "DHL", "parcels": i % 3 + 1});
    let time = rfc3339(us);
    let message = if i.is_multiple_of(2) {
        let event = json!({"specversion": "1.0", "id": id, "source": "//logistics",
            "type": "ShipmentDispatched", "time": time, "subject": subject,
            "datacontenttype": "application/json", "data": data});
        Outgoing::body(event.to_string())
    } else {
        Outgoing::with_attributes(
            data.to_string(),
            &[
                ("ce-specversion", "1.0"),
                ("ce-id", id.as_str()),
                ("ce-source", "//logistics"),
                ("ce-type", "ShipmentDispatched"),
                ("ce-time", time.as_str()),
                ("ce-subject", subject.as_str()),
            ],
        )
    };
    (message, id)
}

/// The messages for one object: `VALID_AROUND` valid events, a corpus case, `VALID_AROUND`
/// valid events, the next case, …, ending with valid events.
fn plan(object: &str, cases: &[Case]) -> (Vec<Outgoing>, Vec<Planned>) {
    // An hour ago, a millisecond apart: well inside the future-time limit, whatever the clock.
    let base_us = now_us() - 3_600_000_000;
    let mut messages = Vec::new();
    let mut planned = Vec::new();
    let mut next_valid = 0usize;
    let mut valid_events = |messages: &mut Vec<Outgoing>, planned: &mut Vec<Planned>| {
        for _ in 0..VALID_AROUND {
            let us = base_us + next_valid as i64 * 1000;
            let (message, id) = match object {
                "orders" => valid_order(next_valid, us),
                _ => valid_shipment(next_valid, us),
            };
            messages.push(message);
            planned.push(Planned::Valid(id));
            next_valid += 1;
        }
    };
    valid_events(&mut messages, &mut planned);
    for (index, case) in cases.iter().enumerate() {
        if case.object != object {
            continue;
        }
        messages.push(case.outgoing());
        planned.push(Planned::Corpus(index));
        valid_events(&mut messages, &mut planned);
    }
    (messages, planned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_is_dead_lettered_once_and_the_stream_keeps_flowing() {
    let cases = load_corpus();
    let config = TestConfig::new(
        OBJECTS
            .iter()
            .map(|&name| TestObject::new(name, yaml_of(name)))
            .collect(),
    );
    std::fs::write(
        config.path().join("objects/orders.schema.json"),
        ORDER_SCHEMA,
    )
    .unwrap();
    config.provision();
    let mut app = App::start(&config).await;
    let log = app.log.clone();
    let emu = config.emulators.clone();

    // Publish everything first, then wait: the service sees bad input mixed into a stream.
    let mut published: Vec<(&str, Vec<String>, Vec<Planned>)> = Vec::new();
    for &name in &OBJECTS {
        let (messages, planned) = plan(name, &cases);
        let ids = publish(&emu, &config.object(name).topic_path(), messages).await;
        assert_eq!(
            ids.len(),
            planned.len(),
            "{name}: one message id per message"
        );
        published.push((name, ids, planned));
    }

    // Wait until each table holds what it should.
    for (name, _, planned) in &published {
        let object = config.object(name);
        let (mut ingest_want, mut dead_want) = (0u64, 0u64);
        for p in planned {
            match p {
                Planned::Valid(_) => ingest_want += 1,
                Planned::Corpus(i) if cases[*i].expect == INGESTED => ingest_want += 1,
                Planned::Corpus(_) => dead_want += 1,
            }
        }
        let ingested = wait_for_count(
            &emu,
            &format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table()),
            ingest_want,
            Duration::from_secs(120),
        )
        .await;
        let dead = wait_for_count(
            &emu,
            &format!("SELECT COUNT(*) AS n FROM `{}`", object.dead_letter_table()),
            dead_want,
            Duration::from_secs(60),
        )
        .await;
        assert!(
            ingested >= ingest_want && dead >= dead_want,
            "{name}: {ingested} of {ingest_want} ingest rows and {dead} of {dead_want} \
             dead-letter rows arrived\n{}",
            log_tail(&log)
        );
    }

    // Still running: no input made it panic or exit.
    let status = app.child.try_wait().expect("poll the service process");
    assert!(
        status.is_none(),
        "mesh-ingest exited ({status:?}) while handling the corpus\n{}",
        log_tail(&log)
    );
    let (code, took) = app.terminate().await;
    assert_eq!(code, Some(0), "exit code after SIGTERM\n{}", log_tail(&log));
    assert!(
        took < Duration::from_secs(20),
        "exited within the 20 s shutdown deadline (took {took:?})"
    );

    // Drained: what the tables hold now is final.
    let max_data = LimitSettings::default().max_dead_letter_data_bytes;
    let mut failures: Vec<String> = Vec::new();
    let (mut valid_total, mut bad_total, mut accepted_total) = (0usize, 0usize, 0usize);
    let (mut ingest_total, mut dead_total) = (0u64, 0u64);
    for (name, ids, planned) in &published {
        let object = config.object(name);
        let ingest_rows = query(
            &emu,
            &format!(
                "SELECT message_id, event_id, TO_JSON_STRING(attributes) AS attributes FROM `{}`",
                object.ingest_table()
            ),
        )
        .await;
        let dead_rows = query(
            &emu,
            &format!(
                "SELECT message_id, reason_code, reason, data FROM `{}`",
                object.dead_letter_table()
            ),
        )
        .await;
        ingest_total += ingest_rows.len() as u64;
        dead_total += dead_rows.len() as u64;
        let group = |rows: &[Map<String, Value>]| {
            let mut by_id: HashMap<String, Vec<Map<String, Value>>> = HashMap::new();
            for r in rows {
                let id = r["message_id"].as_str().unwrap_or_default().to_string();
                by_id.entry(id).or_default().push(r.clone());
            }
            by_id
        };
        let ingest = group(&ingest_rows);
        let dead = group(&dead_rows);
        let mut known = std::collections::HashSet::new();

        for (id, p) in ids.iter().zip(planned) {
            known.insert(id.as_str());
            let ingest_copies = ingest.get(id).map_or(&[][..], Vec::as_slice);
            let dead_copies = dead.get(id).map_or(&[][..], Vec::as_slice);
            match p {
                Planned::Valid(event_id) => {
                    valid_total += 1;
                    if ingest_copies.len() != 1 {
                        failures.push(format!(
                            "{name}: valid event {event_id} (message {id}) is in the ingest \
                             table {} times",
                            ingest_copies.len()
                        ));
                    } else if ingest_copies[0]["event_id"].as_str() != Some(event_id.as_str()) {
                        failures.push(format!(
                            "{name}: message {id} landed with event id {}, expected {event_id}",
                            ingest_copies[0]["event_id"]
                        ));
                    }
                    if !dead_copies.is_empty() {
                        failures.push(format!(
                            "{name}: valid event {event_id} was dead-lettered: {:?}",
                            dead_copies[0]["reason"]
                        ));
                    }
                }
                Planned::Corpus(i) if cases[*i].expect == INGESTED => {
                    let case = &cases[*i];
                    accepted_total += 1;
                    if ingest_copies.len() != 1 || !dead_copies.is_empty() {
                        failures.push(format!(
                            "{}: accepted input (message {id}) is in the ingest table {} times \
                             and the dead-letter table {} times; expected once and never",
                            case.file,
                            ingest_copies.len(),
                            dead_copies.len()
                        ));
                        continue;
                    }
                    let got: BTreeMap<String, String> = ingest_copies[0]["attributes"]
                        .as_str()
                        .and_then(|t| serde_json::from_str(t).ok())
                        .unwrap_or_default();
                    let want: BTreeMap<String, String> = case.attributes.iter().cloned().collect();
                    if got != want {
                        failures.push(format!(
                            "{}: ingested with {} attributes, published with {}",
                            case.file,
                            got.len(),
                            want.len()
                        ));
                    }
                }
                Planned::Corpus(i) => {
                    let case = &cases[*i];
                    bad_total += 1;
                    if !ingest_copies.is_empty() {
                        failures.push(format!(
                            "{}: bad input (message {id}) is in the ingest table",
                            case.file
                        ));
                    }
                    if dead_copies.len() != 1 {
                        failures.push(format!(
                            "{}: bad input (message {id}) has {} dead-letter rows, expected 1",
                            case.file,
                            dead_copies.len()
                        ));
                        continue;
                    }
                    let row = &dead_copies[0];
                    let code = row["reason_code"].as_str().unwrap_or_default();
                    let reason = row["reason"].as_str().unwrap_or_default();
                    if code != case.expect {
                        failures.push(format!(
                            "{}: reason_code `{code}`, expected `{}` ({reason})",
                            case.file, case.expect
                        ));
                    }
                    if reason.trim().is_empty() {
                        failures.push(format!("{}: empty reason", case.file));
                    }
                    let data = BASE64
                        .decode(row["data"].as_str().unwrap_or_default())
                        .unwrap_or_default();
                    let kept = case.body.len().min(max_data);
                    if data != case.body[..kept] {
                        failures.push(format!(
                            "{}: dead-letter data ({} bytes) is not the first {kept} bytes of \
                             the {}-byte body",
                            case.file,
                            data.len(),
                            case.body.len()
                        ));
                    }
                    if case.body.len() > max_data
                        && !reason.contains(&format!("{}-byte body", case.body.len()))
                    {
                        failures.push(format!(
                            "{}: the reason does not say the data was cut: {reason}",
                            case.file
                        ));
                    }
                }
            }
        }
        for id in ingest.keys().chain(dead.keys()) {
            if !known.contains(id.as_str()) {
                failures.push(format!(
                    "{name}: a row for message {id}, which was never published"
                ));
            }
        }
    }

    eprintln!(
        "bad-input corpus: {} cases ({bad_total} bad, {accepted_total} accepted) between \
         {valid_total} valid events; {ingest_total} ingest rows, {dead_total} dead-letter rows; \
         SIGTERM exit {code:?} after {took:?}; {} problems",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n{}\n\ncases:\n{}\n\nlog tail:\n{}",
        failures.len(),
        failures.join("\n"),
        cases
            .iter()
            .map(|c| format!("{} → {}: {}", c.file, c.expect, c.description))
            .collect::<Vec<_>>()
            .join("\n"),
        log_tail(&log)
    );
}

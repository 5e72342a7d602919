//! `mesh-ingest dlq replay`: recovers dead letters once the producer or the contract is fixed.
//! Each dead letter in scope is re-decoded from its stored body and attributes with the
//! **current** configuration; the ones that now pass are appended to the ingest table with
//! their original message id, publish time and attributes, `replayed_at` set. Those that
//! still fail stay where they are (nothing is deleted).
//!
//! At most once per message: the ingest table is the ledger. Only dead letters whose message
//! id is not yet in the ingest table are read (one query, a `NOT EXISTS` over the table since
//! the oldest publish time in scope), so a second run, or a run after a crash half way, skips
//! what already landed. An append whose outcome is unknown (a timeout, a dropped connection)
//! is checked against the table before it is retried.

use super::sql::{Answer, Sql, cell};
use crate::configuration::{ObjectSettings, Settings};
use crate::pipeline::backoff::Backoff;
use crate::pipeline::clock::now_us;
use crate::pipeline::{IngestRow, ReasonCode, ReceivedMessage, is_truncated};
use crate::semantic::sql_string;
use crate::sink::arrow_rows::encode_ingest;
use crate::sink::destination::TableIo;
use crate::sink::writer::{AppendFailure, WriteClient};
use crate::source::decoder_for;
use crate::tables::{INGEST_COLUMNS, compare};
use anyhow::{Context, bail};
use base64::Engine as _;
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

/// What to replay, from the command line.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub object: String,
    /// Empty: every reason.
    pub reasons: Vec<ReasonCode>,
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub dry_run: bool,
    pub batch_rows: usize,
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("--{flag} `{text}` is not an RFC 3339 time"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).context("time out of range")
}

impl ReplayOptions {
    /// Validates the command line: reason codes by name, times as RFC 3339.
    pub fn parse(
        object: &str,
        reasons: &[String],
        since: Option<String>,
        until: Option<String>,
        dry_run: bool,
        batch_rows: usize,
    ) -> anyhow::Result<ReplayOptions> {
        let reasons = reasons
            .iter()
            .map(|r| {
                ReasonCode::ALL
                    .into_iter()
                    .find(|c| c.as_str() == r)
                    .with_context(|| {
                        let all: Vec<&str> = ReasonCode::ALL.iter().map(|c| c.as_str()).collect();
                        format!("--reason `{r}` is not a reason code ({})", all.join(", "))
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if !(1..=10_000).contains(&batch_rows) {
            bail!("--batch-rows must be between 1 and 10000");
        }
        let options = ReplayOptions {
            object: object.to_string(),
            reasons,
            since_us: since.map(|t| parse_time("since", &t)).transpose()?,
            until_us: until.map(|t| parse_time("until", &t)).transpose()?,
            dry_run,
            batch_rows,
        };
        if let (Some(s), Some(u)) = (options.since_us, options.until_us)
            && s >= u
        {
            bail!("--since must be before --until");
        }
        Ok(options)
    }

    /// The dead-letter rows in scope, as a SQL condition on alias `d`.
    fn scope(&self) -> String {
        let mut conditions = vec!["TRUE".to_string()];
        if !self.reasons.is_empty() {
            let codes: Vec<String> = self
                .reasons
                .iter()
                .map(|r| format!("'{}'", r.as_str()))
                .collect();
            conditions.push(format!("d.reason_code IN ({})", codes.join(", ")));
        }
        if let Some(s) = self.since_us {
            conditions.push(format!("d.failed_at >= TIMESTAMP_MICROS({s})"));
        }
        if let Some(u) = self.until_us {
            conditions.push(format!("d.failed_at < TIMESTAMP_MICROS({u})"));
        }
        conditions.join(" AND ")
    }
}

/// A dead letter as read back from its table.
pub(crate) struct DeadLetter {
    pub(crate) message: ReceivedMessage,
    subscription: String,
    pub(crate) reason_code: String,
    /// Stored cut to `limits.max_dead_letter_data_bytes`: the whole body is gone.
    pub(crate) truncated: bool,
}

/// Per reason code: what became of its dead letters.
#[derive(Debug, Default)]
struct Tally {
    examined: usize,
    passed: usize,
    /// By the reason the current configuration (or BigQuery) gives.
    still_failing: BTreeMap<String, usize>,
    /// Stored cut to `limits.max_dead_letter_data_bytes`: the whole body is gone.
    truncated: usize,
}

/// The run's counts, by the reason each dead letter was stored with.
#[derive(Debug, Default)]
struct Summary {
    in_scope: usize,
    by_reason: BTreeMap<String, Tally>,
    appended: usize,
}

impl Summary {
    fn fail(&mut self, stored_reason: &str, now: &str) {
        let t = self.by_reason.entry(stored_reason.to_string()).or_default();
        t.passed -= 1;
        *t.still_failing.entry(now.to_string()).or_default() += 1;
    }

    fn examined(&self) -> usize {
        self.by_reason.values().map(|t| t.examined).sum()
    }
}

/// Rows per page read from the dead-letter table.
const PAGE_ROWS: u32 = 500;
/// Clock skew allowed between Pub/Sub's publish time and mesh-ingest's `ingested_at`.
const CLOCK_SKEW_US: i64 = 3_600_000_000;

/// The object's decoder, and Pub/Sub to read the revisions a schema'd topic's dead letters
/// name (`None` without a topic schema).
pub(super) async fn decoding(
    settings: &Settings,
    object: &ObjectSettings,
) -> anyhow::Result<(
    crate::envelope::Decoder,
    Option<crate::source::pubsub::Subscriptions>,
)> {
    let decoder = decoder_for(object).map_err(|e| anyhow::anyhow!("{}: {e}", object.name))?;
    let pubsub = match &object.topic_schema {
        Some(_) => Some(crate::source::pubsub::Subscriptions::connect(&settings.gcp, 1).await?),
        None => None,
    };
    Ok((decoder, pubsub))
}

/// Reads the topic schema revision `msg` names, if `decoder` has not compiled it yet. An
/// unusable revision leaves its letters dead-lettered, with the reason.
pub(super) async fn learn_revision(
    pubsub: Option<&crate::source::pubsub::Subscriptions>,
    decoder: &crate::envelope::Decoder,
    object: &ObjectSettings,
    msg: &ReceivedMessage,
) -> anyhow::Result<()> {
    let (Some(pubsub), Some((schema, revision))) = (pubsub, decoder.unknown_revision(msg)) else {
        return Ok(());
    };
    crate::source::learn_revision(pubsub, decoder, &object.name, &schema, &revision)
        .await
        .map_err(|e| anyhow::anyhow!("reading revision {revision} of {schema}: {e}"))?;
    Ok(())
}

/// Replays `options.object`'s dead letters; prints progress on stderr, a summary on stdout.
pub async fn replay(settings: &Settings, options: ReplayOptions) -> anyhow::Result<()> {
    let object = settings
        .object(&options.object)
        .map_err(anyhow::Error::msg)?;
    let (decoder, pubsub) = decoding(settings, object).await?;
    let sql = Sql::connect(&settings.gcp).await?;
    let (in_scope, lower_us) = scope(&sql, object, &options).await?;
    let mut summary = Summary {
        in_scope,
        ..Summary::default()
    };
    let mut writer = if options.dry_run {
        None
    } else {
        Some(Appender::open(settings, object, &sql, lower_us).await?)
    };
    // Ordered by message id, a message's repeated dead letters are adjacent (across pages).
    let mut last_id: Option<String> = None;
    let mut page = sql
        .run_paged(
            &object.dead_letter_table.project,
            candidates_sql(object, &options, lower_us),
            "reading the dead letters not yet replayed",
            Some(PAGE_ROWS),
        )
        .await?;
    let replayed_at = now_us();
    loop {
        let mut passing: Vec<Replayed> = Vec::new();
        for letter in dead_letters(&page)? {
            if last_id.as_ref() == Some(&letter.message.message_id) {
                continue; // dead-lettered more than once: replayed once
            }
            last_id = Some(letter.message.message_id.clone());
            let tally = summary
                .by_reason
                .entry(letter.reason_code.clone())
                .or_default();
            tally.examined += 1;
            if letter.truncated {
                tally.truncated += 1;
                continue;
            }
            learn_revision(pubsub.as_ref(), &decoder, object, &letter.message).await?;
            match decoder.decode(letter.message, now_us()) {
                Ok(mut row) => {
                    tally.passed += 1;
                    row.replayed_at_us = Some(replayed_at);
                    passing.push(Replayed {
                        row,
                        subscription: letter.subscription,
                        stored_reason: letter.reason_code,
                    });
                }
                Err(rejected) => {
                    let now = rejected.reason_code.as_str().to_string();
                    *tally.still_failing.entry(now).or_default() += 1;
                }
            }
        }
        if let Some(w) = writer.as_mut() {
            let mut passing = passing.into_iter().peekable();
            while passing.peek().is_some() {
                let chunk = passing.by_ref().take(options.batch_rows).collect();
                w.append(chunk, &mut summary).await?;
                progress(object, &summary);
            }
        }
        let Some(next) = page.next.take() else { break };
        page = sql.next(next, PAGE_ROWS).await?;
    }
    finished(object, &options, &summary);
    Ok(())
}

/// Prints the summary, and logs it.
fn finished(object: &ObjectSettings, options: &ReplayOptions, summary: &Summary) {
    print!("{}", report(object, options, summary));
    tracing::info!(
        object = %object.name,
        in_scope = summary.in_scope,
        examined = summary.examined(),
        appended = summary.appended,
        dry_run = options.dry_run,
        "dead-letter replay finished"
    );
}

fn progress(object: &ObjectSettings, summary: &Summary) {
    eprintln!(
        "dlq replay {}: {} of {} examined, {} appended",
        object.name,
        summary.examined(),
        summary.in_scope,
        summary.appended
    );
}

/// How many distinct messages the scope holds, and the earliest time one of them can have
/// landed in the ingest table (its publish time, less clock skew).
async fn scope(
    sql: &Sql,
    object: &ObjectSettings,
    options: &ReplayOptions,
) -> anyhow::Result<(usize, i64)> {
    let text = format!(
        "SELECT COUNT(DISTINCT d.message_id), MIN(IFNULL(UNIX_MICROS(d.publish_time), 0))\n\
         FROM `{}` AS d\nWHERE {}",
        object.dead_letter_table,
        options.scope()
    );
    let row = sql
        .first_row(
            &object.dead_letter_table.project,
            text,
            "counting the dead letters in scope",
        )
        .await?
        .unwrap_or_default();
    let count = row.first().copied().flatten().unwrap_or(0);
    let lower = row.get(1).copied().flatten().unwrap_or(0);
    Ok((
        usize::try_from(count).unwrap_or(0),
        (lower - CLOCK_SKEW_US).max(0),
    ))
}

/// The dead letters in scope whose message is not in the ingest table, newest failure of a
/// message first.
fn candidates_sql(object: &ObjectSettings, options: &ReplayOptions, lower_us: i64) -> String {
    format!(
        "SELECT d.message_id, UNIX_MICROS(d.publish_time) AS publish_us,\n  \
         TO_JSON_STRING(d.attributes) AS attributes, TO_BASE64(d.data) AS data,\n  \
         d.reason_code, d.reason, d.subscription, d.delivery_attempt\n\
         FROM `{dl}` AS d\n\
         WHERE {scope}\n  AND NOT EXISTS (\n    SELECT 1 FROM `{ingest}` AS i\n    \
         WHERE i.message_id = d.message_id AND i.ingested_at >= TIMESTAMP_MICROS({lower_us}))\n\
         ORDER BY d.message_id, d.failed_at DESC",
        dl = object.dead_letter_table,
        ingest = object.ingest_table,
        scope = options.scope(),
    )
}

/// The rows of one page of `candidates_sql` (or a query with its columns).
pub(crate) fn dead_letters(page: &Answer) -> anyhow::Result<Vec<DeadLetter>> {
    page.rows
        .iter()
        .map(|row| {
            let text = |i| cell(row, i).map(str::to_string);
            let message_id = text(0).context("a dead letter without message_id")?;
            let attributes: HashMap<String, String> = match cell(row, 2) {
                Some(json) => serde_json::from_str(json)
                    .with_context(|| format!("message {message_id}: attributes are not a map"))?,
                None => HashMap::new(),
            };
            let data = base64::engine::general_purpose::STANDARD
                .decode(cell(row, 3).unwrap_or_default())
                .with_context(|| format!("message {message_id}: data is not base64"))?;
            let reason = text(5).unwrap_or_default();
            Ok(DeadLetter {
                message: ReceivedMessage {
                    data: Bytes::from(data),
                    attributes,
                    publish_time_us: cell(row, 1).and_then(|v| v.parse().ok()),
                    ordering_key: String::new(),
                    delivery_attempt: cell(row, 7).and_then(|v| v.parse().ok()),
                    message_id,
                },
                reason_code: text(4).unwrap_or_default(),
                truncated: is_truncated(&reason),
                subscription: text(6).unwrap_or_default(),
            })
        })
        .collect()
}

/// Which messages are in the ingest table: the replay's ledger.
trait Ledger: Send + Sync {
    fn landed<'a>(
        &'a self,
        message_ids: &'a [String],
    ) -> BoxFuture<'a, anyhow::Result<HashSet<String>>>;
}

/// The ledger in BigQuery: a query of the ingest table since the scope's earliest publish time.
struct IngestLedger<'a> {
    sql: &'a Sql,
    object: &'a ObjectSettings,
    lower_us: i64,
}

impl Ledger for IngestLedger<'_> {
    fn landed<'a>(
        &'a self,
        message_ids: &'a [String],
    ) -> BoxFuture<'a, anyhow::Result<HashSet<String>>> {
        Box::pin(async move {
            let ids: Vec<String> = message_ids.iter().map(|id| sql_string(id)).collect();
            let table = self.object.ingest_table.sql_name();
            let text = format!(
                "SELECT DISTINCT message_id FROM {table}\n\
                 WHERE ingested_at >= TIMESTAMP_MICROS({}) AND message_id IN ({})",
                self.lower_us,
                ids.join(", ")
            );
            let answer = self
                .sql
                .run(
                    &self.object.ingest_table.project,
                    text,
                    "checking which replayed rows landed",
                )
                .await?;
            Ok(answer
                .rows
                .iter()
                .filter_map(|r| cell(r, 0).map(str::to_string))
                .collect())
        })
    }
}

/// A replayed row: the row, the subscription it was pulled from, the reason it was stored with.
#[derive(Clone)]
struct Replayed {
    row: IngestRow,
    subscription: String,
    stored_reason: String,
}

/// Appends replayed rows to the ingest table, each at most once.
struct Appender<'a> {
    table: Box<dyn TableIo + 'a>,
    ledger: Box<dyn Ledger + 'a>,
    backoff: Backoff,
    /// Appends that landed, or whose rows BigQuery judged one by one: the table takes rows.
    /// As in the sink, a refusal is blamed on a row only when one of these follows it.
    landings: u64,
}

/// Attempts per append before the run stops (nothing lost: re-run later).
const MAX_ATTEMPTS: u32 = 8;

/// What the bisection of one call to `Appender::append` has seen of refusals.
#[derive(Default)]
struct Refusals {
    /// `landings` at the first refusal: a landing after it proves the table takes rows.
    mark: Option<u64>,
    /// Rows refused alone before that proof: tried again once it comes.
    unproven: Vec<Replayed>,
    /// The last refusal, `CODE: message`.
    last: String,
    /// Whether the table's schema was compared with what mesh-ingest writes.
    schema_checked: bool,
}

impl<'a> Appender<'a> {
    async fn open(
        settings: &Settings,
        object: &'a ObjectSettings,
        sql: &'a Sql,
        lower_us: i64,
    ) -> anyhow::Result<Appender<'a>> {
        let client = WriteClient::connect(&settings.gcp).await?;
        let table = client.open(&object.ingest_table, &INGEST_COLUMNS).await?;
        Ok(Appender::new(
            Box::new(table),
            Box::new(IngestLedger {
                sql,
                object,
                lower_us,
            }),
        ))
    }

    fn new(table: Box<dyn TableIo + 'a>, ledger: Box<dyn Ledger + 'a>) -> Appender<'a> {
        Appender {
            table,
            ledger,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(10)),
            landings: 0,
        }
    }

    /// Appends `rows`; rows BigQuery refuses for their content are counted as still failing.
    /// Errors, naming the table and the cause, when the table cannot take rows (a fault of
    /// the table: missing, no permission, its schema drifted, or it refuses every row) or
    /// keeps failing; no row is then counted as failing, and every dead letter stays.
    async fn append(&mut self, rows: Vec<Replayed>, summary: &mut Summary) -> anyhow::Result<()> {
        let mut pending = vec![rows];
        let mut failures = 0;
        let mut refusals = Refusals::default();
        loop {
            let Some(mut part) = pending.pop() else {
                if refusals.unproven.is_empty() {
                    return Ok(());
                }
                if !self.took_rows_since(&refusals) {
                    bail!(
                        "the ingest table {} refused every append of this replay ({}) and took \
                         no row after: a fault of the table, not of the rows. Nothing was \
                         lost: the dead letters stay; re-run once the table takes rows",
                        self.table.name(),
                        refusals.last
                    );
                }
                // The table took rows after these refusals: alone again, a refusal is the row's.
                pending.extend(refusals.unproven.drain(..).map(|r| vec![r]));
                continue;
            };
            if part.is_empty() {
                continue;
            }
            // One subscription per append (the column is written once per batch).
            let subscription = part[0].subscription.clone();
            if let Some(split) = part.iter().position(|r| r.subscription != subscription) {
                pending.push(part.split_off(split));
            }
            let ingest: Vec<IngestRow> = part.iter().map(|r| r.row.clone()).collect();
            let batch = encode_ingest(&ingest, &subscription, now_us())?;
            match self.table.append(batch, ingest.len()).await {
                Ok(()) => {
                    self.landings += 1;
                    summary.appended += part.len();
                    failures = 0;
                }
                Err(AppendFailure::Rows(named)) => {
                    self.landings += 1;
                    let bad: HashSet<usize> = named.iter().map(|(i, _)| *i).collect();
                    let (refused, rest): (Vec<_>, Vec<_>) = part
                        .into_iter()
                        .enumerate()
                        .partition(|(i, _)| bad.contains(i));
                    for (_, r) in refused {
                        summary.fail(&r.stored_reason, ReasonCode::BigqueryRowError.as_str());
                    }
                    pending.push(rest.into_iter().map(|(_, r)| r).collect());
                }
                Err(AppendFailure::Refused { code, message }) => {
                    refusals.last = format!("{code}: {message}");
                    self.refused(part, &mut refusals, &mut pending, summary)
                        .await?;
                }
                Err(AppendFailure::Table { code, message }) => bail!(
                    "the ingest table {} cannot take rows ({code}: {message}); nothing was lost: \
                     re-run once it is fixed",
                    self.table.name()
                ),
                Err(AppendFailure::Transient { code, message }) => {
                    failures += 1;
                    // A proxy that hides the real error must not hide a drifted table: as in the
                    // sink, a failure that is not a verdict on the rows gets the schema read.
                    if let Some(drift) = self.drift().await {
                        return Err(self.drifted(&drift, &format!("{code}: {message}")));
                    }
                    if failures >= MAX_ATTEMPTS {
                        bail!(
                            "appending to {} failed {failures} times ({code}: {message}); \
                             re-run later: what landed is not appended again",
                            self.table.name()
                        );
                    }
                    tokio::time::sleep(self.backoff.delay(failures)).await;
                    // The failed append may have landed: keep only rows not in the table.
                    let ids: Vec<String> = part.iter().map(|r| r.row.message_id.clone()).collect();
                    let landed = self.ledger.landed(&ids).await?;
                    summary.appended += landed.len();
                    part.retain(|r| !landed.contains(&r.row.message_id));
                    pending.push(part);
                }
            }
        }
    }

    fn took_rows_since(&self, refusals: &Refusals) -> bool {
        refusals.mark.is_some_and(|mark| self.landings > mark)
    }

    /// A whole append was refused (INVALID_ARGUMENT): its content, or a table that takes no
    /// row. A drifted schema says the table at once; otherwise the part is halved, and a row
    /// refused alone is blamed only once the table took rows after the refusal.
    async fn refused(
        &mut self,
        mut part: Vec<Replayed>,
        refusals: &mut Refusals,
        pending: &mut Vec<Vec<Replayed>>,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        refusals.mark.get_or_insert(self.landings);
        if !refusals.schema_checked {
            refusals.schema_checked = true;
            if let Some(drift) = self.drift().await {
                return Err(self.drifted(&drift, &refusals.last));
            }
        }
        if part.len() > 1 {
            let half = part.split_off(part.len() / 2);
            pending.push(half);
            pending.push(part);
        } else if self.took_rows_since(refusals) {
            summary.fail(
                &part[0].stored_reason,
                ReasonCode::BigqueryRejected.as_str(),
            );
        } else {
            refusals.unproven.append(&mut part);
        }
        Ok(())
    }

    /// The error of a replay stopped by a drifted table; `upstream` is BigQuery's answer.
    fn drifted(&self, drift: &str, upstream: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "the ingest table {} cannot take rows: schema drift: {drift} ({upstream}). Nothing \
             was lost: the dead letters stay; fix the table (`mesh-ingest check --remote` \
             names each difference, `mesh-ingest provision` adds missing columns back) and \
             re-run",
            self.table.name()
        )
    }

    /// The first way the table's schema differs from what mesh-ingest writes (the sink's
    /// comparison), or `None` when it matches or cannot be read.
    async fn drift(&self) -> Option<String> {
        match self.table.columns().await {
            Ok(columns) => compare(&INGEST_COLUMNS, &columns)
                .first()
                .map(ToString::to_string),
            Err(e) => {
                tracing::warn!(table = %self.table.name(), error = %e,
                    "cannot read the table's schema");
                None
            }
        }
    }
}

/// The summary table: per stored reason, what passed and what still fails.
fn report(object: &ObjectSettings, options: &ReplayOptions, s: &Summary) -> String {
    let mut out = format!(
        "dlq replay {}{}: {} dead letter(s) in scope, {} already in the ingest table, {} examined\n",
        object.name,
        if options.dry_run { " (dry run)" } else { "" },
        s.in_scope,
        s.in_scope.saturating_sub(s.examined()),
        s.examined(),
    );
    out.push_str(&format!(
        "{:<26} {:>10} {:>10} {:>10} {:>10}  still failing, by the reason now\n",
        "reason",
        "examined",
        if options.dry_run {
            "would pass"
        } else {
            "passed"
        },
        "failing",
        "truncated"
    ));
    for (reason, t) in &s.by_reason {
        let failing: usize = t.still_failing.values().sum();
        let why: Vec<String> = t
            .still_failing
            .iter()
            .map(|(r, n)| format!("{r}: {n}"))
            .collect();
        out.push_str(&format!(
            "{:<26} {:>10} {:>10} {:>10} {:>10}  {}\n",
            reason,
            t.examined,
            t.passed,
            failing,
            t.truncated,
            why.join(", ")
        ));
    }
    if options.dry_run {
        out.push_str("dry run: nothing appended\n");
    } else {
        out.push_str(&format!(
            "appended {} row(s) to {}\n",
            s.appended, object.ingest_table
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::arrow_rows::serialized_schema;
    use crate::sink::destination::ReadError;
    use crate::tables::ExistingColumn;
    use arrow_array::{Array, StringArray};
    use std::sync::{Arc, Mutex};

    /// An ingest table in memory: the message ids it holds, and what each append answers.
    #[derive(Default)]
    struct Table {
        landed: Mutex<Vec<String>>,
        /// Appends whose rows land although the answer is lost (a timeout), in order.
        lose_answers: Mutex<usize>,
        /// Any append holding this message id is refused as a whole.
        refuse: Option<String>,
        /// Every append fails as a fault of the table.
        broken: bool,
        /// Every append is refused as a whole (INVALID_ARGUMENT).
        refuse_all: bool,
        /// The table lacks the `ordering_key` column.
        drifted: bool,
    }

    fn message_ids(batch: &Bytes) -> Vec<String> {
        let mut stream = serialized_schema(&INGEST_COLUMNS).to_vec();
        stream.extend_from_slice(batch);
        let reader = arrow_ipc::reader::StreamReader::try_new(&stream[..], None).unwrap();
        reader
            .flat_map(|b| {
                let b = b.unwrap();
                let ids = b.column_by_name("message_id").unwrap();
                let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
                (0..ids.len())
                    .map(|i| ids.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    impl TableIo for Arc<Table> {
        fn name(&self) -> String {
            "p.d.t".into()
        }

        fn append(&self, batch: Bytes, _rows: usize) -> BoxFuture<'_, Result<(), AppendFailure>> {
            Box::pin(async move {
                let ids = message_ids(&batch);
                if self.broken {
                    return Err(AppendFailure::Table {
                        code: "PERMISSION_DENIED".into(),
                        message: "no".into(),
                    });
                }
                if self.refuse_all || self.refuse.as_ref().is_some_and(|r| ids.contains(r)) {
                    return Err(AppendFailure::Refused {
                        code: "INVALID_ARGUMENT".into(),
                        message: "bad row".into(),
                    });
                }
                self.landed.lock().unwrap().extend(ids);
                let mut lose = self.lose_answers.lock().unwrap();
                if *lose > 0 {
                    *lose -= 1;
                    return Err(AppendFailure::Transient {
                        code: "DEADLINE_EXCEEDED".into(),
                        message: "timed out".into(),
                    });
                }
                Ok(())
            })
        }

        fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, ReadError>> {
            let columns = INGEST_COLUMNS
                .iter()
                .filter(|c| !(self.drifted && c.name == "ordering_key"))
                .map(|c| ExistingColumn {
                    name: c.name.to_string(),
                    type_name: c.kind.bigquery_name().to_string(),
                    mode: if c.required { "REQUIRED" } else { "NULLABLE" }.to_string(),
                })
                .collect();
            Box::pin(async { Ok(columns) })
        }
    }

    impl Ledger for Arc<Table> {
        fn landed<'a>(
            &'a self,
            message_ids: &'a [String],
        ) -> BoxFuture<'a, anyhow::Result<HashSet<String>>> {
            Box::pin(async move {
                let landed = self.landed.lock().unwrap();
                Ok(message_ids
                    .iter()
                    .filter(|id| landed.contains(id))
                    .cloned()
                    .collect())
            })
        }
    }

    fn replayed(ids: &[&str]) -> Vec<Replayed> {
        ids.iter()
            .map(|id| Replayed {
                row: IngestRow {
                    event_id: format!("e-{id}").into(),
                    event_source: None,
                    event_type: "OrderCreated".into(),
                    event_time_us: 1,
                    object_id: None,
                    payload: Bytes::from_static(b"{}"),
                    attributes: Default::default(),
                    message_id: id.to_string(),
                    publish_time_us: Some(1),
                    ordering_key: None,
                    delivery_attempt: None,
                    replayed_at_us: Some(2),
                    raw: Bytes::new(),
                },
                subscription: "projects/p/subscriptions/s".into(),
                stored_reason: "schema_violation".into(),
            })
            .collect()
    }

    fn summary_for(rows: &[Replayed]) -> Summary {
        let mut summary = Summary::default();
        let tally = summary
            .by_reason
            .entry("schema_violation".into())
            .or_default();
        tally.examined = rows.len();
        tally.passed = rows.len();
        summary
    }

    async fn run(table: &Arc<Table>, ids: &[&str]) -> (anyhow::Result<()>, Summary) {
        let rows = replayed(ids);
        let mut summary = summary_for(&rows);
        let mut appender = Appender::new(Box::new(table.clone()), Box::new(table.clone()));
        let result = appender.append(rows, &mut summary).await;
        (result, summary)
    }

    #[tokio::test(start_paused = true)]
    async fn an_append_that_landed_but_lost_its_answer_is_not_appended_again() {
        let table = Arc::new(Table {
            lose_answers: Mutex::new(2),
            ..Table::default()
        });
        let (result, summary) = run(&table, &["m1", "m2", "m3"]).await;
        result.unwrap();
        assert_eq!(*table.landed.lock().unwrap(), ["m1", "m2", "m3"]);
        assert_eq!(summary.appended, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_row_still_fails_and_its_siblings_land_once() {
        let table = Arc::new(Table {
            refuse: Some("m3".into()),
            ..Table::default()
        });
        let (result, summary) = run(&table, &["m1", "m2", "m3", "m4", "m5"]).await;
        result.unwrap();
        let mut landed = table.landed.lock().unwrap().clone();
        landed.sort();
        assert_eq!(landed, ["m1", "m2", "m4", "m5"]);
        assert_eq!(summary.appended, 4);
        let tally = &summary.by_reason["schema_violation"];
        assert_eq!(tally.passed, 4);
        assert_eq!(tally.still_failing["bigquery_rejected"], 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_fault_of_the_table_stops_the_replay_and_appends_nothing() {
        let table = Arc::new(Table {
            broken: true,
            ..Table::default()
        });
        let (result, summary) = run(&table, &["m1", "m2"]).await;
        let error = result.unwrap_err().to_string();
        assert!(
            error.contains("PERMISSION_DENIED") && error.contains("nothing was lost"),
            "{error}"
        );
        assert!(table.landed.lock().unwrap().is_empty());
        assert_eq!(summary.appended, 0);
    }

    /// The table refuses every row: the replay stops naming the table and the cause, no row
    /// is counted as failing, nothing lands. With a drifted schema, before any bisection.
    #[tokio::test(start_paused = true)]
    async fn a_table_that_refuses_every_row_stops_the_replay_and_blames_no_row() {
        for (drifted, cause, appends) in [
            (true, "schema drift: column `ordering_key` is missing", 1),
            (
                false,
                "refused every append of this replay (INVALID_ARGUMENT: bad row)",
                15,
            ),
        ] {
            let table = Arc::new(Table {
                refuse_all: true,
                drifted,
                ..Table::default()
            });
            let counted = Arc::new(Counted(table.clone(), Mutex::new(0)));
            let rows = replayed(&["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8"]);
            let mut summary = summary_for(&rows);
            let mut appender = Appender::new(Box::new(counted.clone()), Box::new(table.clone()));
            let error = appender.append(rows, &mut summary).await.unwrap_err();
            let error = error.to_string();
            assert!(
                error.contains("the ingest table p.d.t") && error.contains(cause),
                "{error}"
            );
            assert!(error.contains("the dead letters stay"), "{error}");
            let tally = &summary.by_reason["schema_violation"];
            assert!(tally.still_failing.is_empty(), "{:?}", tally.still_failing);
            assert_eq!(tally.passed, 8);
            assert!(table.landed.lock().unwrap().is_empty());
            assert_eq!(*counted.1.lock().unwrap(), appends, "drifted: {drifted}");
        }
    }

    /// A table that counts its appends.
    struct Counted(Arc<Table>, Mutex<usize>);

    impl TableIo for Arc<Counted> {
        fn name(&self) -> String {
            self.0.name()
        }

        fn append(&self, batch: Bytes, rows: usize) -> BoxFuture<'_, Result<(), AppendFailure>> {
            *self.1.lock().unwrap() += 1;
            self.0.append(batch, rows)
        }

        fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, ReadError>> {
            self.0.columns()
        }
    }
}

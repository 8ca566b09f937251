//! Durable storage: SQLite (WAL, synchronous=FULL) as the embedded default
//! and PostgreSQL for several nodes, behind one interface.
//!
//! Why this file is long: it holds the SQLite writer, the command pipeline,
//! timer claims and the list queries, shared by both dialects through one
//! `macro_rules!` backend. The schema has moved to `schema.rs`; putting the
//! rest behind small storage traits with an in-memory backend is issue 13's
//! remaining step.
//!
//! Each command runs in one transaction: it checks its idempotency key, loads
//! the case snapshot, applies the pure core, appends the events, writes the
//! snapshot with an optimistic version check, replaces the case's open tasks
//! and timers, records the idempotency key and an audit row, and commits.
//! Due timers are fired inside the transaction that claims their case; on
//! PostgreSQL the case row is claimed with `FOR UPDATE SKIP LOCKED`, so any
//! node fires any timer, and each timer fires once. Every writer locks the
//! case row before touching the case's timers, so claims never deadlock.
//!
//! All SQL is runtime `sqlx::query` with bound parameters (`$1`, `$2` … in
//! ascending order, which both backends read positionally).

use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Command, CommandError, CompiledFlow, Event, Time, apply};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use std::str::FromStr;
use std::sync::Arc;

pub mod cards;
pub mod claims;
pub mod schema;
pub mod users;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite://FILE or postgres://…")]
    Unsupported(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("stored data for {what} is unreadable: {message}")]
    Corrupt { what: String, message: String },
    #[error(
        "the database schema is at version {found}, newer than this govflow knows ({known}); run the govflow release that migrated it, or a newer one"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("the database schema could not be migrated: {0}")]
    Migrate(String),
}

/// Why a command did not commit.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("no case {0}")]
    NoCase(String),
    #[error("no deployed flow `{0}`")]
    NoFlow(String),
    #[error("flow `{0}` version {1} is not loaded")]
    NoFlowVersion(String, u32),
    #[error("case {0} changed concurrently too many times; retry")]
    Conflict(String),
    #[error(
        "idempotency key `{0}` was already used for a different request; use a new key for a new request"
    )]
    KeyReused(String),
    #[error("case numbers for {0} are exhausted today")]
    Numbers(String),
    #[error("the write failed and was not committed: {0}")]
    Batch(String),
    #[error("{} ({}) has claimed this task since {}", .0.name, .0.login, .0.claimed_at)]
    Claimed(Box<crate::store::claims::Claim>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ExecError {
    fn from(e: sqlx::Error) -> ExecError {
        ExecError::Store(StoreError::Sqlx(e))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Deployment {
    pub flow_id: String,
    pub version: i64,
    pub hash: String,
    pub file: String,
    pub deployed_at: String,
    pub deployed_by: String,
}

/// A command addressed to a case (or, for `start`, to a flow).
#[derive(Clone, Debug)]
pub struct Request {
    /// The case; `None` with a `Start` command.
    pub case_no: Option<String>,
    /// For `Start`: the flow to start (its latest version).
    pub flow_id: Option<String>,
    pub command: Command,
    /// A client-chosen key: a retried command with the same key is applied once.
    pub idempotency_key: Option<String>,
    /// Who asked (a login, or `timer`, `engine`…), for the audit log and
    /// the claim check: a task someone else has claimed is theirs to complete.
    pub actor: String,
    /// An administrator acting: others' claims do not stop a completion.
    pub override_claims: bool,
}

/// What a committed (or replayed) command produced.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub case_no: String,
    pub version: u64,
    pub events: Vec<Event>,
    /// True when the idempotency key had already been applied: nothing new happened.
    pub replayed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct TaskRow {
    pub case_no: String,
    pub task_id: i64,
    pub step: String,
    pub name: String,
    pub department: String,
    pub role: Option<String>,
    pub opened_at: String,
    pub due: Option<String>,
    pub flow_id: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct CaseRow {
    pub case_no: String,
    pub flow_id: String,
    pub flow_version: i64,
    pub status: String,
    pub version: i64,
    pub updated_at: String,
}

/// SHA-256 of a source text, hex.
pub fn source_hash(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn fmt_ts(t: Time) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// What to write when a claimed case's due timers fired nothing: with no
/// error, the row was stale (the case moved its timers) and goes; with
/// errors — its flow not loadable on this node, a write that failed — the
/// row stays and the next claim waits 2^attempts seconds (at most ten
/// minutes), so another node or a later deployment can fire it. A timer is
/// never dropped because this node could not run it. The first failure in a
/// row is written to the audit log. Statements with their bound values.
fn unfired(
    case_no: &str,
    row_due: &str,
    attempts: i64,
    errors: &[String],
    now: Time,
) -> Vec<(&'static str, Vec<String>)> {
    if errors.is_empty() {
        return vec![(
            "DELETE FROM case_timers WHERE case_no = $1 AND due = $2",
            vec![case_no.to_string(), row_due.to_string()],
        )];
    }
    let wait = 1i64 << attempts.clamp(0, 10);
    let retry = fmt_ts(now + chrono::Duration::seconds(wait.min(600)));
    let mut out = vec![(
        "UPDATE case_timers SET due = $1, attempts = attempts + 1 WHERE case_no = $2 AND due = $3",
        vec![retry.clone(), case_no.to_string(), row_due.to_string()],
    )];
    if attempts == 0 {
        out.push((
            "INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, 'timer', 'timer_deferred', $2)",
            vec![
                fmt_ts(now),
                serde_json::json!({"case": case_no, "errors": errors, "retry_at": retry}).to_string(),
            ],
        ));
    }
    out
}

fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: e.to_string(),
    }
}

/// The storage interface the server, the timer service and the tests use.
#[derive(Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
    /// One connection for writes: SQLite has one writer; queueing here avoids busy retries.
    pub(crate) writer: sqlx::SqlitePool,
    region: Arc<str>,
    /// Commands wait here for the group-commit writer.
    queue: tokio::sync::mpsc::Sender<Job>,
    /// The cases with task claims (loaded at open; a claim notes its case
    /// before it commits): the writer reads claims only for these.
    pub(crate) claimed: Claimed,
}

/// Case numbers with claims (SQLite: one process writes, so it knows them all).
pub(crate) type Claimed = Arc<std::sync::RwLock<std::collections::HashSet<String>>>;

impl SqliteStore {
    /// Notes that `case_no` has (or is about to have) a claim.
    pub(crate) fn note_claim(&self, case_no: &str) {
        match self.claimed.write() {
            Ok(mut g) => g.insert(case_no.to_string()),
            Err(p) => p.into_inner().insert(case_no.to_string()),
        };
    }
}

/// A command waiting for the SQLite writer.
struct Job {
    req: Request,
    flows: Registry,
    cal: Calendar,
    now: Time,
    reply: tokio::sync::oneshot::Sender<Result<Outcome, ExecError>>,
}

/// The most commands one SQLite transaction carries.
const MAX_BATCH: usize = 256;

static BATCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static BATCHED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// (transactions, commands) the SQLite group-commit writers have committed in
/// this process: their ratio is the mean batch size.
pub fn writer_stats() -> (u64, u64) {
    (
        BATCHES.load(std::sync::atomic::Ordering::Relaxed),
        BATCHED.load(std::sync::atomic::Ordering::Relaxed),
    )
}

impl SqliteStore {
    /// Group commit: one writer takes every command waiting, runs each in its
    /// own savepoint (a refused command rolls back alone), commits once, and
    /// only then answers each caller. A command is acknowledged only after the
    /// commit that made it durable.
    async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            req: req.clone(),
            flows: flows.clone(),
            cal: cal.clone(),
            now,
            reply,
        };
        if self.queue.send(job).await.is_err() {
            return Err(ExecError::Batch("the writer stopped".into()));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(ExecError::Batch("the writer stopped".into())))
    }

    async fn writer_loop(
        writer: sqlx::SqlitePool,
        region: Arc<str>,
        claimed: Claimed,
        mut rx: tokio::sync::mpsc::Receiver<Job>,
    ) {
        // Snapshots as last committed by this writer, the only one: a command on
        // a known case needs no read. The version check in the trigger guards it.
        let mut cache: std::collections::HashMap<String, CaseState> =
            std::collections::HashMap::new();
        let mut numbers: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            BATCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            BATCHED.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut result =
                Self::run_batch(&writer, &region, &claimed, &batch, &mut cache, &mut numbers).await;
            if result.is_err() {
                // Retry once from the database (a stale cache, a busy file).
                cache.clear();
                numbers.clear();
                result =
                    Self::run_batch(&writer, &region, &claimed, &batch, &mut cache, &mut numbers)
                        .await;
            }
            match result {
                Ok(outs) => {
                    for (job, out) in batch.into_iter().zip(outs) {
                        let _ = job.reply.send(out);
                    }
                }
                Err(e) => {
                    cache.clear();
                    numbers.clear();
                    let msg = e.to_string();
                    for job in batch {
                        let _ = job.reply.send(Err(ExecError::Batch(msg.clone())));
                    }
                }
            }
        }
    }

    async fn run_batch(
        writer: &sqlx::SqlitePool,
        region: &str,
        claimed: &Claimed,
        batch: &[Job],
        cache: &mut std::collections::HashMap<String, CaseState>,
        numbers: &mut std::collections::HashMap<String, i64>,
    ) -> Result<Vec<Result<Outcome, ExecError>>, ExecError> {
        // This task is the only writer, so reads outside a transaction see
        // exactly what the writes below will build on.
        let mut conn = writer.acquire().await?;
        let jobs: Vec<(&Request, &Registry, &Calendar, Time)> = batch
            .iter()
            .map(|j| (&j.req, &j.flows, &j.cal, j.now))
            .collect();
        let (outs, changes) = Self::prepare_batch(
            &mut conn,
            region,
            &jobs,
            Some(cache),
            Some(numbers),
            Some(claimed),
        )
        .await?;
        let rows = changes.order.len();
        let loose = changes
            .commands
            .iter()
            .any(|(_, no, ..)| !changes.cases.contains_key(no));
        if rows == 0 && !loose && changes.numbers.is_empty() {
            // Nothing to write (refused or replayed commands only).
        } else if rows > 0 && rows <= ROWS_PER_STATEMENT && !loose {
            // One INSERT statement: SQLite runs it, with its triggers, as one
            // atomic, durable transaction of its own.
            Self::write_inbox(&mut conn, &changes).await?;
        } else {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            if let Err(e) = Self::write_inbox(&mut tx, &changes).await {
                let _ = tx.rollback().await;
                return Err(e);
            }
            tx.commit().await?;
        }
        if cache.len() > 100_000 {
            cache.clear();
        }
        for (no, (state, _, _)) in changes.cases {
            if state.status.is_finished() {
                cache.remove(&no);
            } else {
                cache.insert(no, state);
            }
        }
        Ok(outs)
    }

    /// One `inbox` row per changed case; the trigger writes the rest.
    async fn write_inbox(conn: &mut sqlx::SqliteConnection, c: &Changes) -> Result<(), ExecError> {
        use serde_json::{Value, json};
        use std::collections::HashMap;
        let mut events: HashMap<&str, Vec<Value>> = HashMap::new();
        for (no, seq, evs) in &c.events {
            let body = serde_json::to_string(evs).map_err(|e| corrupt("events", e))?;
            let last = (*seq + evs.len() as u64).saturating_sub(1);
            let at = evs.first().map(|e| fmt_ts(e.at())).unwrap_or_default();
            events
                .entry(no.as_str())
                .or_default()
                .push(json!([seq, last, at, body]));
        }
        let mut commands: HashMap<&str, Vec<Value>> = HashMap::new();
        let mut loose = Vec::new();
        for (key, no, version, first, at, fp) in &c.commands {
            if c.cases.contains_key(no) {
                commands
                    .entry(no.as_str())
                    .or_default()
                    .push(json!([key, version, first, at, fp]));
            } else {
                loose.push((key, no, version, first, at, fp));
            }
        }
        let mut audit: HashMap<&str, Vec<Value>> = HashMap::new();
        for (at, actor, action, detail, no) in &c.audit {
            audit
                .entry(no.as_str())
                .or_default()
                .push(json!([at, actor, action, detail]));
        }
        let stamp = c.audit.last().map(|a| a.0.clone()).unwrap_or_default();
        let empty = Vec::new();
        let mut rows = Vec::new();
        for no in &c.order {
            let Some((state, before, is_new)) = c.cases.get(no) else {
                continue;
            };
            // Only what changed: tasks closed or moved go, tasks opened or moved come.
            let empty_tasks = std::collections::BTreeMap::new();
            let orig = c.orig_tasks.get(no).unwrap_or(&empty_tasks);
            let tasks_del: Vec<Value> = orig
                .iter()
                .filter(|(id, t)| state.tasks.get(id) != Some(t))
                .map(|(id, _)| json!(id))
                .collect();
            let tasks: Vec<Value> = state
                .tasks
                .values()
                .filter(|t| orig.get(&t.id) != Some(t))
                .map(|t| {
                    json!([
                        t.id,
                        t.step,
                        t.name,
                        t.department,
                        t.role,
                        fmt_ts(t.opened_at),
                        t.deadline.as_ref().and_then(|d| d.due).map(fmt_ts)
                    ])
                })
                .collect();
            let next_due = state.timers().first().map(|t| fmt_ts(t.due));
            rows.push((
                no,
                *before,
                *is_new,
                state,
                serde_json::to_string(state).map_err(|e| corrupt("snapshot", e))?,
                Value::Array(events.get(no.as_str()).unwrap_or(&empty).clone()).to_string(),
                Value::Array(tasks_del).to_string(),
                Value::Array(tasks).to_string(),
                next_due,
                Value::Array(commands.get(no.as_str()).unwrap_or(&empty).clone()).to_string(),
                Value::Array(audit.get(no.as_str()).unwrap_or(&empty).clone()).to_string(),
            ));
        }
        let numbers =
            Value::Array(c.numbers.iter().map(|(p, n)| json!([p, n])).collect()).to_string();
        let mut first_row = true;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = multi_insert(
                "INSERT INTO inbox (case_no, old_version, is_new, flow_id, flow_version, status, version, snapshot, stamp, events, tasks_del, tasks, next_due, commands, audit, numbers) VALUES ",
                16,
                chunk.len(),
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (no, before, is_new, state, snapshot, ev, tasks_del, tasks, next_due, cmds, aud) in
                chunk
            {
                q = q
                    .bind(no.as_str())
                    .bind(*before as i64)
                    .bind(i64::from(*is_new))
                    .bind(state.flow_id.as_str())
                    .bind(i64::from(state.flow_version))
                    .bind(state.status.as_str())
                    .bind(state.version as i64)
                    .bind(snapshot.as_str())
                    .bind(stamp.as_str())
                    .bind(ev.as_str())
                    .bind(tasks_del.as_str())
                    .bind(tasks.as_str())
                    .bind(next_due.as_deref())
                    .bind(cmds.as_str())
                    .bind(aud.as_str())
                    .bind(if first_row { numbers.as_str() } else { "[]" });
                first_row = false;
            }
            q.execute(&mut *conn).await?;
        }
        if rows.is_empty() {
            for (prefix, next) in &c.numbers {
                sqlx::query(
                    "INSERT INTO case_numbers (prefix, next) VALUES ($1, $2) ON CONFLICT (prefix) DO UPDATE SET next = excluded.next",
                )
                .bind(prefix.as_str())
                .bind(*next)
                .execute(&mut *conn)
                .await?;
            }
        }
        for (key, no, version, first, at, fp) in loose {
            sqlx::query(
                "INSERT INTO command_keys (idem_key, case_no, version, first_seq, at, fingerprint) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(key.as_str())
            .bind(no.as_str())
            .bind(*version as i64)
            .bind(*first as i64)
            .bind(at.as_str())
            .bind(fp.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// Fires due timers through the group-commit writer (so its snapshot cache
    /// stays exact). Each firing carries the idempotency key
    /// `timer:CASE:KEY@DUE`, so a timer fires once however often it is seen.
    async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        let rows = sqlx::query(
            "SELECT case_no, due, attempts FROM case_timers WHERE due <= $1 ORDER BY due, case_no LIMIT $2",
        )
        .bind(fmt_ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await?;
        let mut set = tokio::task::JoinSet::new();
        let mut attempts = std::collections::HashMap::new();
        for r in &rows {
            let case_no: String = r.try_get("case_no")?;
            let row_due: String = r.try_get("due")?;
            attempts.insert(case_no.clone(), r.try_get::<i64, _>("attempts")?);
            let (store, flows, cal) = (self.clone(), flows.clone(), cal.clone());
            set.spawn(async move {
                let mut outs = Vec::new();
                let state = match store.case(&case_no).await {
                    Ok(s) => s,
                    Err(e) => return (case_no, row_due, vec![Err(ExecError::Store(e))]),
                };
                let due: Vec<crate::core::Timer> = state
                    .map(|s| s.timers().into_iter().filter(|t| t.due <= now).collect())
                    .unwrap_or_default();
                for t in due {
                    let req = Request {
                        case_no: Some(case_no.clone()),
                        flow_id: None,
                        command: Command::Fire {
                            timer: t.key.clone(),
                        },
                        idempotency_key: Some(format!(
                            "timer:{case_no}:{}@{}",
                            t.key,
                            fmt_ts(t.due)
                        )),
                        actor: "timer".into(),
                        override_claims: false,
                    };
                    outs.push(store.execute(&req, &flows, &cal, now).await);
                }
                (case_no, row_due, outs)
            });
        }
        let mut fired = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((case_no, row_due, outs)) = joined else {
                continue;
            };
            let done = outs
                .iter()
                .filter(|o| {
                    o.as_ref()
                        .is_ok_and(|o| !o.replayed && !o.events.is_empty())
                })
                .count() as u32;
            fired.extend(
                outs.iter()
                    .filter_map(|o| o.as_ref().ok())
                    .filter(|o| !o.replayed && !o.events.is_empty())
                    .cloned(),
            );
            if done > 0 {
                continue;
            }
            let errors: Vec<String> = outs
                .iter()
                .filter_map(|o| o.as_ref().err().map(|e| e.to_string()))
                .collect();
            let tried = attempts.get(&case_no).copied().unwrap_or(0);
            for (sql, detail) in unfired(&case_no, &row_due, tried, &errors, now) {
                let mut q = sqlx::query(sql);
                for d in detail {
                    q = q.bind(d);
                }
                q.execute(&self.writer).await?;
            }
        }
        Ok(fired)
    }
}

impl PgStore {
    async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        self.execute_direct(req, flows, cal, now).await
    }

    async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        self.tick_direct(now, flows, cal, limit).await
    }
}

#[derive(Clone)]
pub struct PgStore {
    pub(crate) pool: sqlx::PgPool,
    region: Arc<str>,
}

/// Settings for opening a store.
#[derive(Clone, Debug)]
pub struct Options {
    /// The 6-digit division code at the head of case numbers.
    pub region: String,
    pub max_connections: u32,
    /// PostgreSQL only: keep the tables in this schema (created if missing).
    pub pg_schema: Option<String>,
    /// SQLite: create the file when it does not exist (off for read-only tools).
    pub create: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            region: "330100".into(),
            max_connections: 8,
            pg_schema: None,
            create: true,
        }
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`.
    pub async fn open(url: &str, opts: &Options) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            use sqlx::sqlite::{
                SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
            };
            let co = SqliteConnectOptions::from_str(url)?
                .create_if_missing(opts.create)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(std::time::Duration::from_secs(10));
            let writer = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(co.clone())
                .await?;
            schema::migrate(&writer, true).await?;
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .connect_with(co.read_only(true))
                .await?;
            let region: Arc<str> = opts.region.as_str().into();
            let with_claims: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT case_no FROM task_claims")
                    .fetch_all(&writer)
                    .await?;
            let claimed: Claimed =
                Arc::new(std::sync::RwLock::new(with_claims.into_iter().collect()));
            let (queue, rx) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
            tokio::spawn(SqliteStore::writer_loop(
                writer.clone(),
                region.clone(),
                claimed.clone(),
                rx,
            ));
            Ok(Store::Sqlite(SqliteStore {
                pool,
                writer,
                region,
                queue,
                claimed,
            }))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut co = sqlx::postgres::PgConnectOptions::from_str(url)?;
            if let Some(schema) = &opts.pg_schema {
                if !schema
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                {
                    return Err(StoreError::Unsupported(format!("schema name `{schema}`")));
                }
                let setup = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .connect_with(co.clone())
                    .await?;
                // `CREATE SCHEMA IF NOT EXISTS` is not safe against itself:
                // two nodes starting at once would race on the catalog.
                let mut tx = setup.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7170431)")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE SCHEMA IF NOT EXISTS {schema}"
                )))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                setup.close().await;
                co = co.options([("search_path", schema.as_str())]);
            }
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(opts.max_connections.max(1))
                .connect_with(co)
                .await?;
            // The migrator holds an advisory lock: nodes starting together
            // on an empty schema migrate it once.
            schema::migrate(&pool, false).await?;
            Ok(Store::Postgres(PgStore {
                pool,
                region: opts.region.as_str().into(),
            }))
        } else {
            Err(StoreError::Unsupported(url.to_string()))
        }
    }

    /// Flushes what can be flushed before the process ends (SQLite: checkpoint
    /// the WAL into the database file).
    pub async fn close(&self) {
        if let Store::Sqlite(s) = self {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&s.writer)
                .await;
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }
}

/// Dispatches a method to the backend.
macro_rules! dispatch {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match $self {
            Store::Sqlite(s) => s.$m($($a),*).await,
            Store::Postgres(s) => s.$m($($a),*).await,
        }
    };
}

impl Store {
    /// The 6-digit division code at the head of this store's case numbers.
    pub fn region(&self) -> &str {
        match self {
            Store::Sqlite(s) => &s.region,
            Store::Postgres(s) => &s.region,
        }
    }
}

impl Store {
    /// Records a deployment of `flow` unless the same source is already deployed;
    /// versions increase with each new source of a flow.
    pub async fn deploy(
        &self,
        flow_id: &str,
        source: &str,
        file: &str,
        actor: &str,
        now: Time,
    ) -> Result<(Deployment, bool), StoreError> {
        dispatch!(self.deploy(flow_id, source, file, actor, now))
    }
    pub async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError> {
        dispatch!(self.deployments(flow_id))
    }
    /// Deploys a pack's flows (id, source, file) in one transaction, with one audit row for the pack.
    pub async fn deploy_many(
        &self,
        pack: &str,
        manifest: &str,
        items: &[(String, String, String)],
        actor: &str,
        now: Time,
    ) -> Result<Vec<(Deployment, bool)>, StoreError> {
        dispatch!(self.deploy_many(pack, manifest, items, actor, now))
    }
    /// The manifests of packs deployed through the API (JSON), by pack id.
    pub async fn pack_manifests(&self) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self.pack_manifests())
    }
    /// Every deployment with its source, oldest first.
    pub async fn deployment_sources(&self) -> Result<Vec<(Deployment, String)>, StoreError> {
        dispatch!(self.deployment_sources())
    }
    /// Deployments recorded after row `after`, oldest first, with their row ids.
    pub async fn deployments_after(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, Deployment, String)>, StoreError> {
        dispatch!(self.deployments_after(after))
    }
    /// What changes whenever anything is deployed: the newest deployment row
    /// and the newest pack manifest (one indexed lookup each). Every node
    /// compares it before each command and timer claim.
    pub async fn deployment_marker(&self) -> Result<(i64, String), StoreError> {
        dispatch!(self.deployment_marker())
    }
    pub async fn audit(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        dispatch!(self.audit(limit))
    }
    pub async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        detail: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        dispatch!(self.record_audit(actor, action, detail, now))
    }
    /// Runs a command in one transaction (see the module docs).
    pub async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        dispatch!(self.execute(req, flows, cal, now))
    }
    /// The case snapshot.
    pub async fn case(&self, case_no: &str) -> Result<Option<CaseState>, StoreError> {
        dispatch!(self.case(case_no))
    }
    /// The case's event log, in order.
    pub async fn events(&self, case_no: &str) -> Result<Vec<Event>, StoreError> {
        dispatch!(self.events(case_no))
    }
    pub async fn cases(
        &self,
        status: Option<&str>,
        flow_id: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        dispatch!(self.cases(status, flow_id, limit, offset))
    }
    /// Open tasks, optionally for one department (and role).
    pub async fn tasks(
        &self,
        department: Option<&str>,
        role: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        dispatch!(self.tasks(department, role, limit, offset))
    }
    /// Fires up to `limit` timers due at `now`, each in its own transaction;
    /// returns what the firings did (one outcome per timer that fired).
    pub async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        dispatch!(self.tick(now, flows, cal, limit))
    }
    /// The schema versions applied to this database, in order.
    pub async fn schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        const SQL: &str = "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version";
        Ok(match self {
            Store::Sqlite(s) => sqlx::query_scalar(SQL).fetch_all(&s.pool).await?,
            Store::Postgres(s) => sqlx::query_scalar(SQL).fetch_all(&s.pool).await?,
        })
    }

    /// The database server's clock in China Standard Time, where several
    /// nodes share it (PostgreSQL); `None` for the embedded SQLite, whose one
    /// node's clock is the only one.
    pub async fn database_now(&self) -> Option<Time> {
        match self {
            Store::Sqlite(_) => None,
            Store::Postgres(pg) => {
                let row = sqlx::query("SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) AS now")
                    .fetch_one(&pg.pool)
                    .await
                    .ok()?;
                let secs: i64 = row.try_get("now").ok()?;
                chrono::DateTime::from_timestamp(secs, 0).map(crate::app::clock::cst)
            }
        }
    }

    /// The earliest pending timer, for the timer service's sleep.
    pub async fn next_timer(&self) -> Result<Option<String>, StoreError> {
        dispatch!(self.next_timer())
    }
    /// Case numbers of unfinished cases after `after`, in order (for scans).
    pub async fn open_cases(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        dispatch!(self.open_cases(after, limit))
    }
    /// Counts rows of a table (tests and benchmarks).
    pub async fn count(&self, table: Table) -> Result<i64, StoreError> {
        dispatch!(self.count(table))
    }
}

/// Tables that `count` may look at.
#[derive(Clone, Copy, Debug)]
pub enum Table {
    Cases,
    Events,
    Tasks,
    Timers,
    Commands,
    Audit,
}

impl Table {
    fn sql(self) -> &'static str {
        match self {
            Table::Cases => "SELECT COUNT(*) FROM cases",
            Table::Events => {
                "SELECT CAST(COALESCE(SUM(last_seq - seq + 1), 0) AS BIGINT) FROM event_log"
            }
            Table::Tasks => "SELECT COUNT(*) FROM tasks",
            Table::Timers => "SELECT COUNT(*) FROM case_timers",
            Table::Commands => "SELECT COUNT(*) FROM command_keys",
            Table::Audit => "SELECT COUNT(*) FROM audit_log",
        }
    }
}

/// What a command needs before it can be applied.
struct Loaded {
    case_no: String,
    state: Option<CaseState>,
    flow: Arc<CompiledFlow>,
}

/// What a prepared batch will write.
struct Changes {
    order: Vec<String>,
    /// case → (state after the batch, version before it, new case?)
    cases: std::collections::HashMap<String, (CaseState, u64, bool)>,
    /// (case, first seq, the command's events)
    events: Vec<(String, u64, Vec<Event>)>,
    /// Each changed case's open tasks before the batch.
    orig_tasks:
        std::collections::HashMap<String, std::collections::BTreeMap<u32, crate::core::Task>>,
    /// (key, case, version, first seq, at, request fingerprint)
    commands: Vec<(String, String, u64, u64, String, String)>,
    /// (at, actor, action, detail, case)
    audit: Vec<(String, String, &'static str, String, String)>,
    /// Case-number counters handed out from memory: (prefix, last number).
    numbers: Vec<(String, i64)>,
    /// Completions whose claim check waits for the case row's lock (taken by
    /// the versioned UPDATE on PostgreSQL): (case, the step's task ids, actor).
    claim_checks: Vec<(String, Vec<i64>, String)>,
}

/// What an idempotency key stands for: the same command on the same case or
/// flow. Reusing a key for another request is refused, never answered with
/// the first request's result.
fn fingerprint(req: &Request) -> String {
    let body = serde_json::to_string(&req.command).unwrap_or_default();
    source_hash(&format!(
        "{}\n{}\n{}\n{body}",
        req.command.name(),
        req.case_no.as_deref().unwrap_or(""),
        req.flow_id.as_deref().unwrap_or("")
    ))
}

/// Rows per multi-row statement (well under both backends' parameter limits).
const ROWS_PER_STATEMENT: usize = 200;

/// `prefix` followed by `rows` groups of `cols` numbered placeholders.
fn multi_insert(prefix: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(prefix.len() + rows * cols * 5);
    sql.push_str(prefix);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql
}

fn audit_detail(req: &Request, out: &Outcome) -> String {
    serde_json::json!({
        "case": out.case_no,
        "command": req.command.name(),
        "version": out.version,
        "events": out.events.len(),
        "key": req.idempotency_key,
    })
    .to_string()
}

/// The body shared by both backends; `$pool` names the write pool field,
/// `$begin` the statement that opens a write transaction, `$claim` the query
/// that claims one due timer.
macro_rules! backend {
    ($ty:ident, $db:ty, $wpool:ident, $begin:expr, $claim:expr, $claims_after_update:expr, $lock_deploy:expr) => {
        impl $ty {
            async fn begin(&self) -> Result<sqlx::Transaction<'static, $db>, sqlx::Error> {
                self.$wpool.begin_with($begin).await
            }

            async fn deploy(
                &self,
                flow_id: &str,
                source: &str,
                file: &str,
                actor: &str,
                now: Time,
            ) -> Result<(Deployment, bool), StoreError> {
                let mut tx = self.begin().await?;
                // Nodes deploying the same shipped files at once take turns.
                sqlx::query($lock_deploy).execute(&mut *tx).await?;
                let out = Self::deploy_in(&mut tx, flow_id, source, file, actor, now).await?;
                tx.commit().await?;
                Ok(out)
            }

            /// Deploys several flows in one transaction: all of them or none.
            async fn pack_manifests(&self) -> Result<Vec<(String, String)>, StoreError> {
                let rows = sqlx::query("SELECT id, manifest FROM packs ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push((r.try_get("id")?, r.try_get("manifest")?));
                }
                Ok(out)
            }

            async fn deploy_many(
                &self,
                pack: &str,
                manifest: &str,
                items: &[(String, String, String)],
                actor: &str,
                now: Time,
            ) -> Result<Vec<(Deployment, bool)>, StoreError> {
                let mut tx = self.begin().await?;
                sqlx::query($lock_deploy).execute(&mut *tx).await?;
                let changed = sqlx::query(
                    "INSERT INTO packs (id, manifest, deployed_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET manifest = excluded.manifest, deployed_at = excluded.deployed_at WHERE packs.manifest <> excluded.manifest",
                )
                .bind(pack)
                .bind(manifest)
                .bind(fmt_ts(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let mut out = Vec::new();
                for (flow_id, source, file) in items {
                    out.push(Self::deploy_in(&mut tx, flow_id, source, file, actor, now).await?);
                }
                if changed == 0 && out.iter().all(|(_, new)| !new) {
                    // The same pack again: nothing to record.
                    tx.commit().await?;
                    return Ok(out);
                }
                let detail = serde_json::json!({
                    "pack": pack,
                    "flows": out.iter().map(|(d, new)| serde_json::json!({"flow": d.flow_id, "version": d.version, "new": new})).collect::<Vec<_>>(),
                })
                .to_string();
                sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'deploy_pack', $3)")
                    .bind(fmt_ts(now))
                    .bind(actor)
                    .bind(&detail)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(out)
            }

            async fn deploy_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                flow_id: &str,
                source: &str,
                file: &str,
                actor: &str,
                now: Time,
            ) -> Result<(Deployment, bool), StoreError> {
                let hash = source_hash(source);
                let existing = sqlx::query(
                    "SELECT flow_id, version, hash, file, deployed_at, deployed_by FROM deployments WHERE flow_id = $1 AND hash = $2",
                )
                .bind(flow_id)
                .bind(&hash)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(row) = existing {
                    return Ok((Self::deployment(&row)?, false));
                }
                let version: i64 = sqlx::query(
                    "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM deployments WHERE flow_id = $1",
                )
                .bind(flow_id)
                .fetch_one(&mut **tx)
                .await?
                .try_get("v")?;
                let at = fmt_ts(now);
                sqlx::query(
                    "INSERT INTO deployments (flow_id, version, hash, file, source, deployed_at, deployed_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(flow_id)
                .bind(version)
                .bind(&hash)
                .bind(file)
                .bind(source)
                .bind(&at)
                .bind(actor)
                .execute(&mut **tx)
                .await?;
                let detail = serde_json::json!({"flow": flow_id, "version": version, "hash": hash, "file": file}).to_string();
                sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'deploy', $3)")
                    .bind(&at)
                    .bind(actor)
                    .bind(&detail)
                    .execute(&mut **tx)
                    .await?;
                Ok((
                    Deployment {
                        flow_id: flow_id.to_string(),
                        version,
                        hash,
                        file: file.to_string(),
                        deployed_at: at,
                        deployed_by: actor.to_string(),
                    },
                    true,
                ))
            }

            /// A `deployments` row (without its source).
            fn deployment(r: &<$db as sqlx::Database>::Row) -> Result<Deployment, sqlx::Error> {
                Ok(Deployment {
                    flow_id: r.try_get("flow_id")?,
                    version: r.try_get("version")?,
                    hash: r.try_get("hash")?,
                    file: r.try_get("file")?,
                    deployed_at: r.try_get("deployed_at")?,
                    deployed_by: r.try_get("deployed_by")?,
                })
            }

            async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError> {
                let rows = sqlx::query(
                    "SELECT flow_id, version, hash, file, deployed_at, deployed_by FROM deployments WHERE flow_id = $1 ORDER BY version",
                )
                .bind(flow_id)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push(Self::deployment(r)?);
                }
                Ok(out)
            }

            async fn deployments_after(&self, after: i64) -> Result<Vec<(i64, Deployment, String)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments WHERE id > $1 ORDER BY id",
                )
                .bind(after)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    out.push((r.try_get("id")?, Self::deployment(r)?, r.try_get("source")?));
                }
                Ok(out)
            }

            async fn deployment_marker(&self) -> Result<(i64, String), StoreError> {
                let r = sqlx::query(
                    "SELECT (SELECT COALESCE(MAX(id), 0) FROM deployments) AS m, (SELECT COUNT(*) || ':' || COALESCE(SUM(LENGTH(manifest)), 0) || ':' || COALESCE(MAX(deployed_at), '') FROM packs) AS p",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok((r.try_get("m")?, r.try_get("p")?))
            }

            async fn deployment_sources(&self) -> Result<Vec<(Deployment, String)>, StoreError> {
                let rows = sqlx::query(
                    "SELECT flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments ORDER BY flow_id, version",
                )
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push((
                        Self::deployment(r)?,
                        r.try_get("source")?,
                    ));
                }
                Ok(out)
            }

            async fn audit(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
                let rows = sqlx::query(
                    "SELECT id, at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push(serde_json::json!({
                        "id": r.try_get::<i64, _>("id")?,
                        "at": r.try_get::<String, _>("at")?,
                        "actor": r.try_get::<String, _>("actor")?,
                        "action": r.try_get::<String, _>("action")?,
                        "detail": r.try_get::<String, _>("detail")?,
                    }));
                }
                Ok(out)
            }

            async fn record_audit(
                &self,
                actor: &str,
                action: &str,
                detail: &str,
                now: Time,
            ) -> Result<(), StoreError> {
                sqlx::query("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
                    .bind(fmt_ts(now))
                    .bind(actor)
                    .bind(action)
                    .bind(detail)
                    .execute(&self.$wpool)
                    .await?;
                Ok(())
            }

            #[allow(dead_code)] // SQLite goes through the group-commit writer
            async fn execute_direct(
                &self,
                req: &Request,
                flows: &Registry,
                cal: &Calendar,
                now: Time,
            ) -> Result<Outcome, ExecError> {
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    let mut tx = self.begin().await?;
                    match Self::execute_in(&mut tx, &self.region, req, flows, cal, now).await {
                        Ok(out) => {
                            tx.commit().await?;
                            return Ok(out);
                        }
                        Err(ExecError::Conflict(c)) => {
                            let _ = tx.rollback().await;
                            if attempt >= 5 {
                                return Err(ExecError::Conflict(c));
                            }
                        }
                        Err(e) => {
                            let _ = tx.rollback().await;
                            return Err(e);
                        }
                    }
                }
            }

            /// Runs a batch of commands inside `tx`: each is checked and applied
            /// in memory (a later command sees the earlier ones' effects), then
            /// everything is written with a few multi-row statements. A refused
            /// command writes nothing; the others are unaffected. The outer
            /// `Err` is fatal for the whole batch (the caller rolls back).
            async fn execute_in_batch(
                tx: &mut sqlx::Transaction<'static, $db>,
                region: &str,
                jobs: &[(&Request, &Registry, &Calendar, Time)],
            ) -> Result<Vec<Result<Outcome, ExecError>>, ExecError> {
                let (outs, c) = Self::prepare_batch(&mut **tx, region, jobs, None, None, None).await?;
                Self::write_batch(tx, &c.order, &c.cases, &c.events, &c.commands, &c.audit, &c.claim_checks).await?;
                Ok(outs)
            }

            /// Checks and applies a batch in memory (reading what it needs from
            /// `tx`, or from `cache` — snapshots known to be current); writes nothing
            /// but case numbers.
            async fn prepare_batch(
                conn: &mut <$db as sqlx::Database>::Connection,
                region: &str,
                jobs: &[(&Request, &Registry, &Calendar, Time)],
                cache: Option<&std::collections::HashMap<String, CaseState>>,
                mut numbers: Option<&mut std::collections::HashMap<String, i64>>,
                claimed: Option<&std::sync::RwLock<std::collections::HashSet<String>>>,
            ) -> Result<(Vec<Result<Outcome, ExecError>>, Changes), ExecError> {
                let mut touched_numbers: std::collections::BTreeSet<String> = Default::default();
                let mut outs: Vec<Result<Outcome, ExecError>> = Vec::with_capacity(jobs.len());
                // case → (state now, version at batch start, new case?)
                let mut cases: std::collections::HashMap<String, (CaseState, u64, bool)> =
                    std::collections::HashMap::new();
                let mut order: Vec<String> = Vec::new();
                let mut events: Vec<(String, u64, Vec<Event>)> = Vec::new();
                let mut orig_tasks: std::collections::HashMap<
                    String,
                    std::collections::BTreeMap<u32, crate::core::Task>,
                > = std::collections::HashMap::new();
                let mut keys: std::collections::HashMap<String, (Outcome, String)> =
                    std::collections::HashMap::new();
                let mut audit: Vec<(String, String, &'static str, String, String)> = Vec::new();
                let mut commands: Vec<(String, String, u64, u64, String, String)> = Vec::new();
                let mut claim_checks: Vec<(String, Vec<i64>, String)> = Vec::new();
                for (req, flows, cal, now) in jobs {
                    let (req, now) = (*req, *now);
                    if let Some(key) = &req.idempotency_key {
                        if let Some((out, fp)) = keys.get(key) {
                            if *fp != fingerprint(req) {
                                outs.push(Err(ExecError::KeyReused(key.clone())));
                                continue;
                            }
                            let mut out = out.clone();
                            out.replayed = true;
                            outs.push(Ok(out));
                            continue;
                        }
                        match Self::replay_key(conn, key, req).await {
                            Ok(Some(out)) => {
                                outs.push(Ok(out));
                                continue;
                            }
                            Ok(None) => {}
                            Err(e @ ExecError::KeyReused(_)) => {
                                outs.push(Err(e));
                                continue;
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    let cached = req
                        .case_no
                        .as_ref()
                        .filter(|_| !matches!(req.command, Command::Start { .. }))
                        .and_then(|c| {
                            cases
                                .get(c)
                                .map(|(s, _, _)| s)
                                .or_else(|| cache.and_then(|m| m.get(c)))
                        })
                        .cloned();
                    let loaded = match cached {
                        Some(state) => match flows.get(&state.flow_id, state.flow_version) {
                            Some(flow) => Loaded {
                                case_no: state.case_no.clone(),
                                state: Some(state),
                                flow,
                            },
                            None => {
                                outs.push(Err(ExecError::NoFlowVersion(
                                    state.flow_id.clone(),
                                    state.flow_version,
                                )));
                                continue;
                            }
                        },
                        None if matches!(req.command, Command::Start { .. })
                            && req.case_no.is_none()
                            && numbers.is_some() =>
                        {
                            // The single SQLite writer hands out case numbers from memory.
                            let flow_id = req.flow_id.clone().unwrap_or_default();
                            let Some(flow) = flows.latest(&flow_id) else {
                                outs.push(Err(ExecError::NoFlow(flow_id)));
                                continue;
                            };
                            let prefix = format!("{region}{}", now.format("%Y%m%d"));
                            let Some(numbers) = numbers.as_deref_mut() else { continue };
                            let last = match numbers.get(&prefix) {
                                Some(n) => *n,
                                None => sqlx::query("SELECT next FROM case_numbers WHERE prefix = $1")
                                    .bind(&prefix)
                                    .fetch_optional(&mut *conn)
                                    .await?
                                    .map(|r| r.try_get::<i64, _>("next"))
                                    .transpose()?
                                    .unwrap_or(0),
                            };
                            numbers.insert(prefix.clone(), last + 1);
                            touched_numbers.insert(prefix.clone());
                            let Some(case_no) = crate::core::ids::case_number(region, now.date(), (last + 1) as u64) else {
                                outs.push(Err(ExecError::Numbers(prefix)));
                                continue;
                            };
                            Loaded {
                                case_no,
                                state: None,
                                flow,
                            }
                        }
                        None => match Self::load_for(conn, region, req, flows, now).await {
                            Ok(l) => l,
                            Err(ExecError::Store(e)) => return Err(ExecError::Store(e)),
                            Err(e) => {
                                outs.push(Err(e));
                                continue;
                            }
                        },
                    };
                    if matches!(req.command, Command::Start { .. })
                        && cases.contains_key(&loaded.case_no)
                    {
                        outs.push(Err(CommandError::AlreadyStarted {
                            case_no: loaded.case_no.clone(),
                        }
                        .into()));
                        continue;
                    }
                    let command = match &req.command {
                        Command::Start { .. } => {
                            let mut c = req.command.clone();
                            if let Command::Start { case_no, .. } = &mut c {
                                case_no.clone_from(&loaded.case_no);
                            }
                            std::borrow::Cow::Owned(c)
                        }
                        other => std::borrow::Cow::Borrowed(other),
                    };
                    let before = loaded.state.as_ref().map_or(0, |s| s.version);
                    let evs = match apply(&loaded.flow, cal, loaded.state.as_ref(), &command, now) {
                        Ok(e) => e,
                        Err(e) => {
                            outs.push(Err(e.into()));
                            continue;
                        }
                    };
                    // A command the core accepts is then checked against the
                    // task's claims — the same order, so the same error, on both
                    // backends. SQLite's writer reads them now; PostgreSQL after
                    // its versioned UPDATE has locked the case row (`write_batch`).
                    if let (Command::Complete { step, .. }, Some(state), false) =
                        (&req.command, loaded.state.as_ref(), req.override_claims)
                    {
                        let ids = Self::task_ids(state, step);
                        if !ids.is_empty() && !$claims_after_update {
                            if let Some(c) = Self::claimed_by_other(conn, &state.case_no, &ids, &req.actor, claimed).await? {
                                outs.push(Err(ExecError::Claimed(Box::new(c))));
                                continue;
                            }
                        } else if !ids.is_empty() {
                            claim_checks.push((state.case_no.clone(), ids, req.actor.clone()));
                        }
                    }
                    if !orig_tasks.contains_key(&loaded.case_no) {
                        orig_tasks.insert(
                            loaded.case_no.clone(),
                            loaded.state.as_ref().map(|s| s.tasks.clone()).unwrap_or_default(),
                        );
                    }
                    let mut state = loaded.state.unwrap_or_default();
                    for e in &evs {
                        state.apply(e);
                    }
                    let case_no = loaded.case_no;
                    if !evs.is_empty() {
                        events.push((case_no.clone(), before + 1, evs.clone()));
                    }
                    let out = Outcome {
                        case_no: case_no.clone(),
                        version: state.version,
                        events: evs,
                        replayed: false,
                    };
                    let stamp = fmt_ts(now);
                    if let Some(key) = &req.idempotency_key {
                        let fp = fingerprint(req);
                        commands.push((key.clone(), case_no.clone(), state.version, before + 1, stamp.clone(), fp.clone()));
                        keys.insert(key.clone(), (out.clone(), fp));
                    }
                    if !out.events.is_empty() {
                        audit.push((
                            stamp,
                            req.actor.clone(),
                            req.command.name(),
                            audit_detail(req, &out),
                            case_no.clone(),
                        ));
                        match cases.get_mut(&case_no) {
                            Some(entry) => entry.0 = state,
                            None => {
                                order.push(case_no.clone());
                                cases.insert(case_no.clone(), (state, before, before == 0));
                            }
                        }
                    }
                    outs.push(Ok(out));
                }
                let numbers = match numbers {
                    Some(n) => touched_numbers
                        .into_iter()
                        .filter_map(|p| n.get(&p).map(|v| (p, *v)))
                        .collect(),
                    None => Vec::new(),
                };
                Ok((
                    outs,
                    Changes {
                        order,
                        cases,
                        events,
                        orig_tasks,
                        commands,
                        audit,
                        numbers,
                        claim_checks,
                    },
                ))
            }

            /// The ids of the open tasks at `step`.
            fn task_ids(state: &CaseState, step: &str) -> Vec<i64> {
                state
                    .tasks
                    .values()
                    .filter(|t| t.step == step)
                    .map(|t| i64::from(t.id))
                    .collect()
            }

            /// The claim someone other than `actor` holds on one of these tasks
            /// of the case. It must be read after the case row is locked (claims
            /// lock it too), with a snapshot taken after the lock: SQLite's one
            /// writer holds it already, and `claimed` — the cases with claims,
            /// noted before each claim commits — spares the query for the others;
            /// PostgreSQL reads it in `write_batch`, after the versioned UPDATE.
            async fn claimed_by_other(
                conn: &mut <$db as sqlx::Database>::Connection,
                case_no: &str,
                ids: &[i64],
                actor: &str,
                claimed: Option<&std::sync::RwLock<std::collections::HashSet<String>>>,
            ) -> Result<Option<crate::store::claims::Claim>, ExecError> {
                if let Some(set) = claimed {
                    let known = match set.read() {
                        Ok(g) => g.contains(case_no),
                        Err(p) => p.into_inner().contains(case_no),
                    };
                    if !known {
                        return Ok(None);
                    }
                }
                let rows = sqlx::query(
                    "SELECT task_id, login, name, claimed_at FROM task_claims WHERE case_no = $1 AND login <> $2",
                )
                .bind(case_no)
                .bind(actor)
                .fetch_all(&mut *conn)
                .await?;
                for r in &rows {
                    let task_id: i64 = r.try_get("task_id")?;
                    if ids.contains(&task_id) {
                        return Ok(Some(crate::store::claims::Claim {
                            case_no: case_no.to_string(),
                            task_id,
                            login: r.try_get("login")?,
                            name: r.try_get("name")?,
                            claimed_at: r.try_get("claimed_at")?,
                        }));
                    }
                }
                Ok(None)
            }

            /// Answers a command whose idempotency key was already applied.
            async fn replay_key(
                conn: &mut <$db as sqlx::Database>::Connection,
                key: &str,
                req: &Request,
            ) -> Result<Option<Outcome>, ExecError> {
                let row = sqlx::query(
                    "SELECT case_no, version, first_seq, fingerprint FROM command_keys WHERE idem_key = $1",
                )
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let case_no: String = row.try_get("case_no")?;
                let fp: String = row.try_get("fingerprint")?;
                if fp != fingerprint(req) || req.case_no.as_ref().is_some_and(|c| c != &case_no) {
                    return Err(ExecError::KeyReused(key.to_string()));
                }
                let version: i64 = row.try_get("version")?;
                let first: i64 = row.try_get("first_seq")?;
                let rows = sqlx::query(
                    "SELECT body FROM event_log WHERE case_no = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
                )
                .bind(&case_no)
                .bind(first)
                .bind(version)
                .fetch_all(&mut *conn)
                .await?;
                let mut events = Vec::new();
                for r in &rows {
                    let body: String = r.try_get("body")?;
                    let batch: Vec<Event> = serde_json::from_str(&body)
                        .map_err(|e| corrupt(format!("events of {case_no}"), e))?;
                    events.extend(batch);
                }
                Ok(Some(Outcome {
                    case_no,
                    version: version as u64,
                    events,
                    replayed: true,
                }))
            }

            /// Writes what a batch produced: snapshots (with the optimistic
            /// version check per case), events, tasks, timers, idempotency keys
            /// and audit rows, each kind in as few statements as possible.
            async fn write_batch(
                tx: &mut sqlx::Transaction<'static, $db>,
                order: &[String],
                cases: &std::collections::HashMap<String, (CaseState, u64, bool)>,
                events: &[(String, u64, Vec<Event>)],
                commands: &[(String, String, u64, u64, String, String)],
                audit: &[(String, String, &'static str, String, String)],
                claim_checks: &[(String, Vec<i64>, String)],
            ) -> Result<(), ExecError> {
                if order.is_empty() && commands.is_empty() {
                    return Ok(());
                }
                let stamp = audit.last().map(|a| a.0.clone()).unwrap_or_default();
                // Snapshots: new cases in one INSERT; existing ones each with their version check.
                let mut new_rows = Vec::new();
                for no in order {
                    let Some((state, before, is_new)) = cases.get(no) else { continue };
                    let snapshot = serde_json::to_string(state).map_err(|e| corrupt("snapshot", e))?;
                    if *is_new {
                        new_rows.push((no, state, snapshot));
                        continue;
                    }
                    let done = sqlx::query(
                        "UPDATE cases SET status = $1, version = $2, snapshot = $3, updated_at = $4 WHERE case_no = $5 AND version = $6",
                    )
                    .bind(state.status.as_str())
                    .bind(state.version as i64)
                    .bind(&snapshot)
                    .bind(&stamp)
                    .bind(no)
                    .bind(*before as i64)
                    .execute(&mut **tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        return Err(ExecError::Conflict(no.clone()));
                    }
                }
                // The case rows are locked now: a claim committed before is
                // seen; one after waits for this transaction.
                for (no, ids, actor) in claim_checks {
                    if let Some(c) = Self::claimed_by_other(&mut **tx, no, ids, actor, None).await? {
                        return Err(ExecError::Claimed(Box::new(c)));
                    }
                }
                for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert(
                        "INSERT INTO cases (case_no, flow_id, flow_version, status, version, snapshot, created_at, updated_at) VALUES ",
                        8,
                        chunk.len(),
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (no, state, snapshot) in chunk {
                        q = q
                            .bind(no.as_str())
                            .bind(&state.flow_id)
                            .bind(i64::from(state.flow_version))
                            .bind(state.status.as_str())
                            .bind(state.version as i64)
                            .bind(snapshot.as_str())
                            .bind(&stamp)
                            .bind(&stamp);
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in events.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert("INSERT INTO event_log (case_no, seq, last_seq, at, body) VALUES ", 5, chunk.len());
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (no, seq, evs) in chunk {
                        let body = serde_json::to_string(evs).map_err(|e| corrupt("events", e))?;
                        let at = evs.first().map(|e| fmt_ts(e.at())).unwrap_or_default();
                        q = q
                            .bind(no.as_str())
                            .bind(*seq as i64)
                            .bind((*seq + evs.len() as u64).saturating_sub(1) as i64)
                            .bind(at)
                            .bind(body);
                    }
                    q.execute(&mut **tx).await?;
                }
                // Open tasks and timers: replaced for the cases that changed.
                for chunk in order.chunks(ROWS_PER_STATEMENT) {
                    for table in ["tasks", "case_timers"] {
                        let sql = format!(
                            "DELETE FROM {table} WHERE case_no IN ({})",
                            (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                        for no in chunk {
                            q = q.bind(no.as_str());
                        }
                        q.execute(&mut **tx).await?;
                    }
                }
                let mut tasks = Vec::new();
                let mut timers = Vec::new();
                for no in order {
                    let Some((state, _, _)) = cases.get(no) else { continue };
                    for t in state.tasks.values() {
                        tasks.push((no, &state.flow_id, t));
                    }
                    if let Some(t) = state.timers().first() {
                        timers.push((no, fmt_ts(t.due)));
                    }
                }
                for chunk in tasks.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert(
                        "INSERT INTO tasks (case_no, task_id, step, name, department, role, opened_at, due, flow_id) VALUES ",
                        9,
                        chunk.len(),
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (no, flow_id, t) in chunk {
                        q = q
                            .bind(no.as_str())
                            .bind(i64::from(t.id))
                            .bind(t.step.as_str())
                            .bind(t.name.as_str())
                            .bind(t.department.as_str())
                            .bind(t.role.as_deref())
                            .bind(fmt_ts(t.opened_at))
                            .bind(t.deadline.as_ref().and_then(|d| d.due).map(fmt_ts))
                            .bind(flow_id.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in timers.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert("INSERT INTO case_timers (case_no, due) VALUES ", 2, chunk.len());
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (no, due) in chunk {
                        q = q.bind(no.as_str()).bind(due.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in commands.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert(
                        "INSERT INTO command_keys (idem_key, case_no, version, first_seq, at, fingerprint) VALUES ",
                        6,
                        chunk.len(),
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (key, no, version, first, at, fp) in chunk {
                        q = q
                            .bind(key.as_str())
                            .bind(no.as_str())
                            .bind(*version as i64)
                            .bind(*first as i64)
                            .bind(at.as_str())
                            .bind(fp.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                for chunk in audit.chunks(ROWS_PER_STATEMENT) {
                    let sql = multi_insert("INSERT INTO audit_log (at, actor, action, detail) VALUES ", 4, chunk.len());
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (at, actor, action, detail, _) in chunk {
                        q = q.bind(at.as_str()).bind(actor.as_str()).bind(*action).bind(detail.as_str());
                    }
                    q.execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// One command in `tx`.
            async fn execute_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                region: &str,
                req: &Request,
                flows: &Registry,
                cal: &Calendar,
                now: Time,
            ) -> Result<Outcome, ExecError> {
                let mut outs = Self::execute_in_batch(tx, region, &[(req, flows, cal, now)]).await?;
                outs.pop()
                    .unwrap_or_else(|| Err(ExecError::Batch("no result".into())))
            }

            async fn load_for(
                conn: &mut <$db as sqlx::Database>::Connection,
                region: &str,
                req: &Request,
                flows: &Registry,
                now: Time,
            ) -> Result<Loaded, ExecError> {
                if let Command::Start { .. } = req.command {
                    let flow_id = req.flow_id.clone().unwrap_or_default();
                    let flow = flows
                        .latest(&flow_id)
                        .ok_or_else(|| ExecError::NoFlow(flow_id.clone()))?;
                    let case_no = match &req.case_no {
                        Some(c) => c.clone(),
                        None => {
                            let prefix = format!("{region}{}", now.format("%Y%m%d"));
                            let seq: i64 = sqlx::query(
                                "INSERT INTO case_numbers (prefix, next) VALUES ($1, 1) ON CONFLICT (prefix) DO UPDATE SET next = case_numbers.next + 1 RETURNING next",
                            )
                            .bind(&prefix)
                            .fetch_one(&mut *conn)
                            .await?
                            .try_get("next")?;
                            crate::core::ids::case_number(region, now.date(), seq as u64)
                                .ok_or_else(|| ExecError::Numbers(prefix.clone()))?
                        }
                    };
                    let exists = sqlx::query("SELECT version FROM cases WHERE case_no = $1")
                        .bind(&case_no)
                        .fetch_optional(&mut *conn)
                        .await?
                        .is_some();
                    if exists {
                        return Err(CommandError::AlreadyStarted { case_no }.into());
                    }
                    return Ok(Loaded {
                        case_no,
                        state: None,
                        flow,
                    });
                }
                let case_no = req.case_no.clone().unwrap_or_default();
                let row = sqlx::query("SELECT snapshot FROM cases WHERE case_no = $1")
                    .bind(&case_no)
                    .fetch_optional(&mut *conn)
                    .await?
                    .ok_or_else(|| ExecError::NoCase(case_no.clone()))?;
                let snapshot: String = row.try_get("snapshot")?;
                let state: CaseState = serde_json::from_str(&snapshot)
                    .map_err(|e| corrupt(format!("snapshot of {case_no}"), e))?;
                let flow = flows
                    .get(&state.flow_id, state.flow_version)
                    .ok_or_else(|| ExecError::NoFlowVersion(state.flow_id.clone(), state.flow_version))?;
                Ok(Loaded {
                    case_no,
                    state: Some(state),
                    flow,
                })
            }

            async fn case(&self, case_no: &str) -> Result<Option<CaseState>, StoreError> {
                let row = sqlx::query("SELECT snapshot FROM cases WHERE case_no = $1")
                    .bind(case_no)
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    None => Ok(None),
                    Some(r) => {
                        let s: String = r.try_get("snapshot")?;
                        serde_json::from_str(&s)
                            .map(Some)
                            .map_err(|e| corrupt(format!("snapshot of {case_no}"), e))
                    }
                }
            }

            async fn events(&self, case_no: &str) -> Result<Vec<Event>, StoreError> {
                let rows = sqlx::query("SELECT body FROM event_log WHERE case_no = $1 ORDER BY seq")
                    .bind(case_no)
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len() * 4);
                for r in &rows {
                    let body: String = r.try_get("body")?;
                    let batch: Vec<Event> = serde_json::from_str(&body)
                        .map_err(|e| corrupt(format!("events of {case_no}"), e))?;
                    out.extend(batch);
                }
                Ok(out)
            }

            async fn cases(
                &self,
                status: Option<&str>,
                flow_id: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<CaseRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT case_no, flow_id, flow_version, status, version, updated_at FROM cases
                     WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR flow_id = $2)
                     ORDER BY case_no DESC LIMIT $3 OFFSET $4",
                )
                .bind(status)
                .bind(flow_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push(CaseRow {
                        case_no: r.try_get("case_no")?,
                        flow_id: r.try_get("flow_id")?,
                        flow_version: r.try_get("flow_version")?,
                        status: r.try_get("status")?,
                        version: r.try_get("version")?,
                        updated_at: r.try_get("updated_at")?,
                    });
                }
                Ok(out)
            }

            async fn tasks(
                &self,
                department: Option<&str>,
                role: Option<&str>,
                limit: i64,
                offset: i64,
            ) -> Result<Vec<TaskRow>, StoreError> {
                let rows = sqlx::query(
                    "SELECT case_no, task_id, step, name, department, role, opened_at, due, flow_id FROM tasks
                     WHERE ($1 IS NULL OR department = $1) AND ($2 IS NULL OR role IS NULL OR role = $2)
                     ORDER BY opened_at, case_no, task_id LIMIT $3 OFFSET $4",
                )
                .bind(department)
                .bind(role)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push(TaskRow {
                        case_no: r.try_get("case_no")?,
                        task_id: r.try_get("task_id")?,
                        step: r.try_get("step")?,
                        name: r.try_get("name")?,
                        department: r.try_get("department")?,
                        role: r.try_get("role")?,
                        opened_at: r.try_get("opened_at")?,
                        due: r.try_get("due")?,
                        flow_id: r.try_get("flow_id")?,
                    });
                }
                Ok(out)
            }

            #[allow(dead_code)] // SQLite fires through the group-commit writer
            async fn tick_direct(
                &self,
                now: Time,
                flows: &Registry,
                cal: &Calendar,
                limit: u32,
            ) -> Result<Vec<Outcome>, ExecError> {
                let mut fired: Vec<Outcome> = Vec::new();
                let stamp = fmt_ts(now);
                while (fired.len() as u32) < limit {
                    let mut tx = self.begin().await?;
                    // Claim a case with due timers. Every writer locks the case row
                    // before it touches the case's timers, so claims never deadlock.
                    let row = sqlx::query($claim)
                        .bind(&stamp)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(row) = row else {
                        let _ = tx.rollback().await;
                        break;
                    };
                    let case_no: String = row.try_get("case_no")?;
                    let snapshot: Option<String> = sqlx::query("SELECT snapshot FROM cases WHERE case_no = $1")
                        .bind(&case_no)
                        .fetch_optional(&mut *tx)
                        .await?
                        .map(|r| r.try_get("snapshot"))
                        .transpose()?;
                    // A snapshot this node cannot read is a failure to retry
                    // (another node may read it), not a stale timer row.
                    let mut unreadable = Vec::new();
                    let state: Option<CaseState> = snapshot.and_then(|s| {
                        serde_json::from_str(&s)
                            .map_err(|e| unreadable.push(format!("snapshot of {case_no} unreadable: {e}")))
                            .ok()
                    });
                    let due: Vec<crate::core::Timer> = state
                        .map(|s| s.timers().into_iter().filter(|t| t.due <= now).collect())
                        .unwrap_or_default();
                    let reqs: Vec<Request> = due
                        .iter()
                        .map(|t| Request {
                            case_no: Some(case_no.clone()),
                            flow_id: None,
                            command: Command::Fire { timer: t.key.clone() },
                            idempotency_key: Some(format!("timer:{case_no}:{}@{}", t.key, fmt_ts(t.due))),
                            actor: "timer".into(),
                            override_claims: false,
                        })
                        .collect();
                    let jobs: Vec<(&Request, &Registry, &Calendar, Time)> =
                        reqs.iter().map(|r| (r, flows, cal, now)).collect();
                    match Self::execute_in_batch(&mut tx, &self.region, &jobs).await {
                        Ok(outs) => {
                            let failed: Vec<String> = outs
                                .iter()
                                .filter_map(|o| o.as_ref().err().map(|e| e.to_string()))
                                .chain(unreadable)
                                .collect();
                            let changed = outs
                                .iter()
                                .any(|o| o.as_ref().is_ok_and(|o| !o.events.is_empty() && !o.replayed));
                            if !changed {
                                let row = sqlx::query("SELECT due, attempts FROM case_timers WHERE case_no = $1")
                                    .bind(&case_no)
                                    .fetch_optional(&mut *tx)
                                    .await?;
                                if let Some(row) = row {
                                    let (row_due, tried): (String, i64) = (row.try_get("due")?, row.try_get("attempts")?);
                                    for (sql, values) in unfired(&case_no, &row_due, tried, &failed, now) {
                                        let mut q = sqlx::query(sql);
                                        for v in values {
                                            q = q.bind(v);
                                        }
                                        q.execute(&mut *tx).await?;
                                    }
                                }
                            }
                            tx.commit().await?;
                            fired.extend(
                                outs.into_iter()
                                    .filter_map(Result::ok)
                                    .filter(|o| !o.events.is_empty() && !o.replayed),
                            );
                        }
                        Err(ExecError::Conflict(_)) => {
                            let _ = tx.rollback().await;
                        }
                        Err(e) => {
                            let _ = tx.rollback().await;
                            return Err(e);
                        }
                    }
                }
                Ok(fired)
            }

            async fn open_cases(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
                let rows = sqlx::query(
                    "SELECT case_no FROM cases WHERE status NOT IN ('completed', 'terminated', 'withdrawn') AND case_no > $1 ORDER BY case_no LIMIT $2",
                )
                .bind(after)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                let mut out = Vec::new();
                for r in &rows {
                    out.push(r.try_get("case_no")?);
                }
                Ok(out)
            }

            async fn next_timer(&self) -> Result<Option<String>, StoreError> {
                let row = sqlx::query("SELECT MIN(due) AS due FROM case_timers")
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get("due")?)
            }

            async fn count(&self, table: Table) -> Result<i64, StoreError> {
                Ok(sqlx::query(table.sql()).fetch_one(&self.pool).await?.try_get(0)?)
            }
        }
    };
}

backend!(
    SqliteStore,
    sqlx::Sqlite,
    writer,
    "BEGIN IMMEDIATE",
    "SELECT case_no FROM case_timers WHERE due <= $1 ORDER BY due LIMIT 1",
    // One SQLite writer: it holds every lock already; claims are read at once.
    false,
    "SELECT 1"
);
backend!(
    PgStore,
    sqlx::Postgres,
    pool,
    "BEGIN",
    "SELECT case_no FROM cases WHERE case_no IN (SELECT case_no FROM case_timers WHERE due <= $1 ORDER BY due LIMIT 64) FOR UPDATE SKIP LOCKED LIMIT 1",
    // Claims are read after the versioned UPDATE has locked the case row.
    true,
    "SELECT pg_advisory_xact_lock(7170432)"
);

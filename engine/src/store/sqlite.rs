//! The embedded SQLite backend: one file, WAL, synchronous=FULL. One
//! connection writes: commands queue for a group-commit writer that keeps
//! the snapshots it last committed, hands out case numbers from memory and
//! writes each case's changes as one `inbox` row, which a trigger spreads
//! over the tables. Reads use a pool of read-only connections. Blobs are
//! files in a directory beside the database.

use super::pipeline;
use super::sql::Dialect;
use super::{
    Backend, BlobStore, CaseStore, ExecError, Options, Outcome, Request, StoreError, corrupt,
    fmt_ts, schema,
};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Time};
use async_trait::async_trait;
use sqlx::Row;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
    /// One connection for writes: SQLite has one writer; queueing here avoids busy retries.
    pub(crate) writer: sqlx::SqlitePool,
    region: Arc<str>,
    /// Where blobs are kept: a directory beside the database file.
    blobs: PathBuf,
    /// Commands wait here for the group-commit writer.
    queue: tokio::sync::mpsc::Sender<Job>,
    /// The cases with task claims (loaded at open; a claim notes its case
    /// before it commits): the writer reads claims only for these.
    pub(crate) claimed: Claimed,
    chain: super::chain::ChainHash,
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
    async fn enqueue(
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
        let (outs, changes) = pipeline::prepare_batch(
            &mut *conn,
            region,
            &jobs,
            Some(cache),
            Some(numbers),
            Some(claimed),
            false,
        )
        .await?;
        let rows = changes.order.len();
        let loose = changes
            .commands
            .iter()
            .any(|(_, no, ..)| !changes.cases.contains_key(no));
        if rows == 0 && !loose && changes.numbers.is_empty() {
            // Nothing to write (refused or replayed commands only).
        } else if rows > 0 && rows <= pipeline::ROWS_PER_STATEMENT && !loose {
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
    async fn write_inbox(
        conn: &mut sqlx::SqliteConnection,
        c: &pipeline::Changes,
    ) -> Result<(), ExecError> {
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
        for chunk in rows.chunks(pipeline::ROWS_PER_STATEMENT) {
            let sql = pipeline::multi_insert(
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
    async fn fire_through_writer(
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
                for req in pipeline::due_fires(&case_no, state.as_ref(), now) {
                    outs.push(store.enqueue(&req, &flows, &cal, now).await);
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
            pipeline::unfired(&case_no, tried, &errors, now)
                .write(&mut *self.writer.acquire().await?, &case_no, &row_due, now)
                .await?;
        }
        Ok(fired)
    }
}

impl SqliteStore {
    /// Opens (creating it if `opts.create`) and migrates the database file at `url`.
    pub async fn open(url: &str, opts: &Options) -> Result<SqliteStore, StoreError> {
        use sqlx::sqlite::{
            SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
        };
        let co = SqliteConnectOptions::from_str(url)?
            .create_if_missing(opts.create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(10));
        let file = co.get_filename().to_path_buf();
        let blobs = if file.as_os_str().is_empty() || file.to_string_lossy().contains(":memory:") {
            std::env::temp_dir().join(format!("govflow-blobs-{}", std::process::id()))
        } else {
            let mut name = file.clone().into_os_string();
            name.push(".blobs");
            PathBuf::from(name)
        };
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
        let claimed: Claimed = Arc::new(std::sync::RwLock::new(with_claims.into_iter().collect()));
        let (queue, rx) = tokio::sync::mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(SqliteStore::writer_loop(
            writer.clone(),
            region.clone(),
            claimed.clone(),
            rx,
        ));
        Ok(SqliteStore {
            pool,
            writer,
            region,
            blobs,
            queue,
            claimed,
            chain: opts.chain_hash,
        })
    }
}

impl Dialect for SqliteStore {
    type Db = sqlx::Sqlite;
    const NAME: &'static str = "sqlite";
    // One SQLite writer: it holds every lock already.
    const LOCK_CASE: &'static str = "SELECT $1";
    const LOCK_DEPLOY: &'static str = "SELECT 1";
    const LOCK_SEAL: &'static str = "SELECT 1";
    const LOCK_KEY: Option<&'static str> = None;
    const CLAIM_DUE: &'static str =
        "SELECT case_no FROM case_timers WHERE due <= $1 ORDER BY due LIMIT 1";
    // The writer reads claims at once: it holds every lock.
    const CLAIMS_AFTER_UPDATE: bool = false;

    fn reads(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.pool
    }
    fn writes(&self) -> &sqlx::Pool<sqlx::Sqlite> {
        &self.writer
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }
    async fn run_command(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        self.enqueue(req, flows, cal, now).await
    }
    async fn fire_due(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        self.fire_through_writer(now, flows, cal, limit).await
    }
    fn before_claim(&self, case_no: &str) {
        self.note_claim(case_no);
    }
}

#[async_trait]
impl Backend for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }
    async fn seal_chains(&self) -> Result<u64, StoreError> {
        super::chain::seal(self, self.chain).await
    }
    async fn verify_chains(&self) -> Result<Vec<super::chain::ChainReport>, StoreError> {
        super::chain::verify_all(self).await
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(schema::APPLIED)
            .fetch_all(&self.pool)
            .await?)
    }
    async fn database_now(&self) -> Option<Time> {
        None
    }
    /// `VACUUM INTO` reads one consistent snapshot while writers go on; the
    /// blobs, written once and never changed, are copied after it.
    async fn backup_to(&self, to: &std::path::Path) -> Result<(), StoreError> {
        if to.exists() {
            return Err(StoreError::NotSupported(format!(
                "{} exists; a backup never overwrites a file",
                to.display()
            )));
        }
        let path = to.to_string_lossy().to_string();
        sqlx::query("VACUUM INTO $1")
            .bind(&path)
            .execute(&self.pool)
            .await?;
        let mut dest = to.as_os_str().to_owned();
        dest.push(".blobs");
        let (from, dest) = (self.blobs.clone(), PathBuf::from(dest));
        tokio::task::spawn_blocking(move || copy_tree(&from, &dest))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
            .map_err(|e| StoreError::Io(e.to_string()))
    }

    async fn integrity(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().filter(|r| r != "ok").collect())
    }

    /// Checkpoints the WAL into the database file.
    async fn close(&self) {
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await;
    }
}

/// Copies a folder's files (recursively); a missing folder copies nothing.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    let rd = match std::fs::read_dir(from) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    std::fs::create_dir_all(to)?;
    for entry in rd {
        let entry = entry?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else if !entry.file_name().to_string_lossy().contains('~') {
            std::fs::copy(&src, &dst)?;
        }
    }
    Ok(())
}

/// A blob key as a relative path: letters, digits, `-`, `_`, `.` and `/`
/// between non-empty segments, never `..`.
pub(crate) fn blob_path(key: &str) -> Option<PathBuf> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        });
    ok.then(|| PathBuf::from(key))
}

#[async_trait]
impl BlobStore for SqliteStore {
    /// Written to a temporary file, synced, then renamed into place, so a
    /// crash leaves the old state or the whole blob.
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        let rel = blob_path(key).ok_or_else(|| StoreError::BadKey(key.to_string()))?;
        let path = self.blobs.join(rel);
        match tokio::fs::read(&path).await {
            Ok(old) if old == bytes => return Ok(false),
            Ok(_) => return Err(StoreError::BlobExists(key.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io(e.to_string())),
        }
        let io = |e: std::io::Error| StoreError::Io(e.to_string());
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(io)?;
        }
        // `~` is not allowed in keys: a temporary name never is one.
        let mut tmp = path.clone().into_os_string();
        tmp.push(format!("~{}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let data = bytes.to_vec();
        let (t2, p2) = (tmp.clone(), path.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&t2)?;
            f.write_all(&data)?;
            f.sync_all()?;
            std::fs::rename(&t2, &p2)?;
            if let Some(dir) = p2.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Io(e.to_string()))?
        .map_err(io)?;
        Ok(true)
    }
    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let rel = blob_path(key).ok_or_else(|| StoreError::BadKey(key.to_string()))?;
        match tokio::fs::read(self.blobs.join(rel)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }
    async fn blob_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let root = self.blobs.clone();
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let mut rd = match tokio::fs::read_dir(&dir).await {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(StoreError::Io(e.to_string())),
            };
            while let Some(entry) = rd
                .next_entry()
                .await
                .map_err(|e| StoreError::Io(e.to_string()))?
            {
                let p = entry.path();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let Ok(rel) = p.strip_prefix(&root) else {
                    continue;
                };
                let key = rel.to_string_lossy().replace('\\', "/");
                if key.contains('~') || !key.starts_with(prefix) {
                    continue;
                }
                out.push(key);
            }
        }
        out.sort();
        Ok(out)
    }
}

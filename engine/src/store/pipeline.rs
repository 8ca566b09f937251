//! The command pipeline of the SQL backends, written once: a batch of
//! commands is checked and applied in memory against the pure core
//! (`prepare_batch`), then written with a few multi-row statements
//! (`write_batch`, or SQLite's `inbox` trigger). Timer claims for the
//! backends that fire in the claiming transaction (`tick_direct`).
//!
//! Why this file is long: the pipeline is one unit — the reads it needs
//! (`Source`, for SQL and memory), the batch preparation and the writes —
//! and splitting it would spread one transaction's steps over files.

use super::sql::{Conn, Dialect, SqlRow, q};
use super::{Claim, ExecError, Outcome, Request, corrupt, fmt_ts, source_hash};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Command, CommandError, CompiledFlow, Event, Time, apply};
use std::future::Future;
use std::sync::Arc;

/// row is written to the audit log. Statements with their bound values.
pub(crate) fn unfired(case_no: &str, attempts: i64, errors: &[String], now: Time) -> Unfired {
    if errors.is_empty() {
        return Unfired::Stale;
    }
    let wait = 1i64 << attempts.clamp(0, 10);
    let retry = fmt_ts(now + chrono::Duration::seconds(wait.min(600)));
    Unfired::Retry {
        audit: (attempts == 0).then(|| {
            serde_json::json!({"case": case_no, "errors": errors, "retry_at": retry}).to_string()
        }),
        at: retry,
    }
}

/// What becomes of a timer row whose firing did nothing.
pub(crate) enum Unfired {
    /// Delete the row.
    Stale,
    /// Move the row to `at` and count the attempt; with `audit`, write a
    /// `timer_deferred` audit row with that detail.
    Retry { at: String, audit: Option<String> },
}

impl Unfired {
    /// Writes it for the timer row (`case_no`, `row_due`).
    pub(crate) async fn write<C: Conn + ?Sized>(
        self,
        c: &mut C,
        case_no: &str,
        row_due: &str,
        now: Time,
    ) -> Result<(), sqlx::Error> {
        match self {
            Unfired::Stale => {
                q("DELETE FROM case_timers WHERE case_no = $1 AND due = $2")
                    .bind(case_no)
                    .bind(row_due)
                    .execute(c)
                    .await?;
            }
            Unfired::Retry { at, audit } => {
                q("UPDATE case_timers SET due = $1, attempts = attempts + 1 WHERE case_no = $2 AND due = $3")
                    .bind(&at)
                    .bind(case_no)
                    .bind(row_due)
                    .execute(&mut *c)
                    .await?;
                if let Some(detail) = audit {
                    q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, 'timer', 'timer_deferred', $2)")
                        .bind(fmt_ts(now))
                        .bind(detail)
                        .execute(c)
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// The `fire` commands for the timers of `state` due at `now`. Each carries
/// the idempotency key `timer:CASE:KEY@DUE`, so a timer fires once however
/// often it is seen.
pub(crate) fn due_fires(case_no: &str, state: Option<&CaseState>, now: Time) -> Vec<Request> {
    let Some(state) = state else {
        return Vec::new();
    };
    state
        .timers()
        .into_iter()
        .filter(|t| t.due <= now)
        .map(|t| Request {
            case_no: Some(case_no.to_string()),
            flow_id: None,
            command: Command::Fire {
                timer: t.key.clone(),
            },
            idempotency_key: Some(format!("timer:{case_no}:{}@{}", t.key, fmt_ts(t.due))),
            actor: "timer".into(),
            override_claims: false,
        })
        .collect()
}

/// What the pipeline reads while it prepares a batch: the few primitive
/// reads a backend answers inside its transaction. The logic around them
/// (idempotency, numbering, loading, the claim check) is written once here,
/// for the SQL backends (any [`Conn`]) and the in-memory one alike.
pub(crate) trait Source: Send {
    /// The command key's row: (case, version, first seq, fingerprint).
    fn command_key(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(String, i64, i64, String)>, ExecError>> + Send;
    /// The events of a case with sequence numbers in [first, last].
    fn events_between(
        &mut self,
        case_no: &str,
        first: i64,
        last: i64,
    ) -> impl Future<Output = Result<Vec<Event>, ExecError>> + Send;
    /// Takes the next case number of a prefix (day and region).
    fn next_number(&mut self, prefix: &str) -> impl Future<Output = Result<i64, ExecError>> + Send;
    /// The last case number taken for a prefix (0 if none).
    fn last_number(&mut self, prefix: &str) -> impl Future<Output = Result<i64, ExecError>> + Send;
    /// Whether a case exists.
    fn case_exists(
        &mut self,
        case_no: &str,
    ) -> impl Future<Output = Result<bool, ExecError>> + Send;
    /// The case's snapshot.
    fn snapshot(
        &mut self,
        case_no: &str,
    ) -> impl Future<Output = Result<Option<CaseState>, ExecError>> + Send;
    /// The claims on the case's tasks held by others than `actor`.
    fn claims_of_others(
        &mut self,
        case_no: &str,
        actor: &str,
    ) -> impl Future<Output = Result<Vec<Claim>, ExecError>> + Send;
}

impl<C: Conn + ?Sized> Source for C {
    async fn command_key(
        &mut self,
        key: &str,
    ) -> Result<Option<(String, i64, i64, String)>, ExecError> {
        let row = q(
            "SELECT case_no, version, first_seq, fingerprint FROM command_keys WHERE idem_key = $1",
        )
        .bind(key)
        .fetch_optional(self)
        .await?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some((
            r.try_get("case_no")?,
            r.try_get("version")?,
            r.try_get("first_seq")?,
            r.try_get("fingerprint")?,
        )))
    }
    async fn events_between(
        &mut self,
        case_no: &str,
        first: i64,
        last: i64,
    ) -> Result<Vec<Event>, ExecError> {
        let rows = q(
            "SELECT body FROM event_log WHERE case_no = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq",
        )
        .bind(case_no)
        .bind(first)
        .bind(last)
        .fetch_all(self)
        .await?;
        let mut events = Vec::new();
        for r in &rows {
            let body: String = r.try_get("body")?;
            let batch: Vec<Event> = serde_json::from_str(&body)
                .map_err(|e| corrupt(format!("events of {case_no}"), e))?;
            events.extend(batch);
        }
        Ok(events)
    }
    async fn next_number(&mut self, prefix: &str) -> Result<i64, ExecError> {
        Ok(q(
            "INSERT INTO case_numbers (prefix, next) VALUES ($1, 1) ON CONFLICT (prefix) DO UPDATE SET next = case_numbers.next + 1 RETURNING next",
        )
        .bind(prefix)
        .fetch_one(self)
        .await?
        .try_get("next")?)
    }
    async fn last_number(&mut self, prefix: &str) -> Result<i64, ExecError> {
        Ok(q("SELECT next FROM case_numbers WHERE prefix = $1")
            .bind(prefix)
            .fetch_optional(self)
            .await?
            .map(|r| r.try_get::<i64, _>("next"))
            .transpose()?
            .unwrap_or(0))
    }
    async fn case_exists(&mut self, case_no: &str) -> Result<bool, ExecError> {
        Ok(q("SELECT version FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_optional(self)
            .await?
            .is_some())
    }
    async fn snapshot(&mut self, case_no: &str) -> Result<Option<CaseState>, ExecError> {
        let Some(row) = q("SELECT snapshot FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_optional(self)
            .await?
        else {
            return Ok(None);
        };
        let snapshot: String = row.try_get("snapshot")?;
        Ok(Some(serde_json::from_str(&snapshot).map_err(|e| {
            corrupt(format!("snapshot of {case_no}"), e)
        })?))
    }
    async fn claims_of_others(
        &mut self,
        case_no: &str,
        actor: &str,
    ) -> Result<Vec<Claim>, ExecError> {
        let rows = q(
            "SELECT task_id, login, name, claimed_at FROM task_claims WHERE case_no = $1 AND login <> $2",
        )
        .bind(case_no)
        .bind(actor)
        .fetch_all(self)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(Claim {
                case_no: case_no.to_string(),
                task_id: r.try_get("task_id")?,
                login: r.try_get("login")?,
                name: r.try_get("name")?,
                claimed_at: r.try_get("claimed_at")?,
            });
        }
        Ok(out)
    }
}

/// What a command needs before it can be applied.
pub(crate) struct Loaded {
    pub(crate) case_no: String,
    pub(crate) state: Option<CaseState>,
    pub(crate) flow: Arc<CompiledFlow>,
}

/// What a prepared batch will write.
pub(crate) struct Changes {
    pub(crate) order: Vec<String>,
    /// case → (state after the batch, version before it, new case?)
    pub(crate) cases: std::collections::HashMap<String, (CaseState, u64, bool)>,
    /// (case, first seq, the command's events)
    pub(crate) events: Vec<(String, u64, Vec<Event>)>,
    /// Each changed case's open tasks before the batch.
    pub(crate) orig_tasks:
        std::collections::HashMap<String, std::collections::BTreeMap<u32, crate::core::Task>>,
    /// (key, case, version, first seq, at, request fingerprint)
    pub(crate) commands: Vec<(String, String, u64, u64, String, String)>,
    /// (at, actor, action, detail, case)
    pub(crate) audit: Vec<(String, String, &'static str, String, String)>,
    /// Case-number counters handed out from memory: (prefix, last number).
    pub(crate) numbers: Vec<(String, i64)>,
    /// Completions whose claim check waits for the case row's lock (taken by
    /// the versioned UPDATE on PostgreSQL): (case, the step's task ids, actor).
    pub(crate) claim_checks: Vec<(String, Vec<i64>, String)>,
}

/// Whether the write failed because a concurrent request committed the
/// same idempotency key first (the insert into `command_keys` waited for it).
fn key_taken(e: &ExecError) -> bool {
    match e {
        ExecError::Store(super::StoreError::Sqlx(sqlx::Error::Database(d))) => {
            d.is_unique_violation()
                && d.constraint()
                    .is_some_and(|c| c.starts_with("command_keys"))
        }
        _ => false,
    }
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
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

/// `prefix` followed by `rows` groups of `cols` numbered placeholders.
pub(crate) fn multi_insert(prefix: &str, cols: usize, rows: usize) -> String {
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
pub(crate) async fn execute_direct<D: Dialect>(
    s: &D,
    req: &Request,
    flows: &Registry,
    cal: &Calendar,
    now: Time,
) -> Result<Outcome, ExecError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = s.begin().await?;
        if let (Some(lock), Some(key)) = (D::LOCK_KEY, &req.idempotency_key) {
            q(lock).bind(key).execute(&mut *tx).await?;
        }
        match execute_in(
            &mut *tx,
            s.region(),
            req,
            flows,
            cal,
            now,
            D::CLAIMS_AFTER_UPDATE,
        )
        .await
        {
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
            // The same idempotency key committed by a concurrent request
            // meanwhile: run again, and the key's outcome is answered.
            Err(e) if key_taken(&e) && attempt < 5 => {
                let _ = tx.rollback().await;
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
pub(crate) async fn execute_in_batch<C: Conn + ?Sized>(
    tx: &mut C,
    region: &str,
    jobs: &[(&Request, &Registry, &Calendar, Time)],
    claims_after_update: bool,
) -> Result<Vec<Result<Outcome, ExecError>>, ExecError> {
    let (outs, c) = prepare_batch(
        &mut *tx,
        region,
        jobs,
        None,
        None,
        None,
        claims_after_update,
    )
    .await?;
    write_batch(
        tx,
        &c.order,
        &c.cases,
        &c.events,
        &c.commands,
        &c.audit,
        &c.claim_checks,
    )
    .await?;
    Ok(outs)
}

/// Checks and applies a batch in memory (reading what it needs from
/// `tx`, or from `cache` — snapshots known to be current); writes nothing
/// but case numbers.
pub(crate) async fn prepare_batch<S: Source + ?Sized>(
    conn: &mut S,
    region: &str,
    jobs: &[(&Request, &Registry, &Calendar, Time)],
    cache: Option<&std::collections::HashMap<String, CaseState>>,
    mut numbers: Option<&mut std::collections::HashMap<String, i64>>,
    claimed: Option<&std::sync::RwLock<std::collections::HashSet<String>>>,
    claims_after_update: bool,
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
            match replay_key(conn, key, req).await {
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
                let Some(numbers) = numbers.as_deref_mut() else {
                    continue;
                };
                let last = match numbers.get(&prefix) {
                    Some(n) => *n,
                    None => conn.last_number(&prefix).await?,
                };
                numbers.insert(prefix.clone(), last + 1);
                touched_numbers.insert(prefix.clone());
                let Some(case_no) =
                    crate::core::ids::case_number(region, now.date(), (last + 1) as u64)
                else {
                    outs.push(Err(ExecError::Numbers(prefix)));
                    continue;
                };
                Loaded {
                    case_no,
                    state: None,
                    flow,
                }
            }
            None => match load_for(conn, region, req, flows, now).await {
                Ok(l) => l,
                Err(ExecError::Store(e)) => return Err(ExecError::Store(e)),
                Err(e) => {
                    outs.push(Err(e));
                    continue;
                }
            },
        };
        if matches!(req.command, Command::Start { .. }) && cases.contains_key(&loaded.case_no) {
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
            let ids = task_ids(state, &step[..]);
            if !ids.is_empty() && !claims_after_update {
                if let Some(c) =
                    claimed_by_other(conn, &state.case_no, &ids, &req.actor, claimed).await?
                {
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
                loaded
                    .state
                    .as_ref()
                    .map(|s| s.tasks.clone())
                    .unwrap_or_default(),
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
            commands.push((
                key.clone(),
                case_no.clone(),
                state.version,
                before + 1,
                stamp.clone(),
                fp.clone(),
            ));
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
pub(crate) async fn claimed_by_other<S: Source + ?Sized>(
    conn: &mut S,
    case_no: &str,
    ids: &[i64],
    actor: &str,
    claimed: Option<&std::sync::RwLock<std::collections::HashSet<String>>>,
) -> Result<Option<Claim>, ExecError> {
    if let Some(set) = claimed {
        let known = match set.read() {
            Ok(g) => g.contains(case_no),
            Err(p) => p.into_inner().contains(case_no),
        };
        if !known {
            return Ok(None);
        }
    }
    Ok(conn
        .claims_of_others(case_no, actor)
        .await?
        .into_iter()
        .find(|c| ids.contains(&c.task_id)))
}

/// Answers a command whose idempotency key was already applied.
pub(crate) async fn replay_key<S: Source + ?Sized>(
    conn: &mut S,
    key: &str,
    req: &Request,
) -> Result<Option<Outcome>, ExecError> {
    let Some((case_no, version, first, fp)) = conn.command_key(key).await? else {
        return Ok(None);
    };
    if fp != fingerprint(req) || req.case_no.as_ref().is_some_and(|c| c != &case_no) {
        return Err(ExecError::KeyReused(key.to_string()));
    }
    let events = conn.events_between(&case_no, first, version).await?;
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
pub(crate) async fn write_batch<C: Conn + ?Sized>(
    tx: &mut C,
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
        let Some((state, before, is_new)) = cases.get(no) else {
            continue;
        };
        let snapshot = serde_json::to_string(state).map_err(|e| corrupt("snapshot", e))?;
        if *is_new {
            new_rows.push((no, state, snapshot));
            continue;
        }
        let done = q(
                "UPDATE cases SET status = $1, version = $2, snapshot = $3, updated_at = $4 WHERE case_no = $5 AND version = $6",
            )
            .bind(state.status.as_str())
            .bind(state.version as i64)
            .bind(&snapshot)
            .bind(&stamp)
            .bind(no)
            .bind(*before as i64)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(ExecError::Conflict(no.clone()));
        }
    }
    // The case rows are locked now: a claim committed before is
    // seen; one after waits for this transaction.
    for (no, ids, actor) in claim_checks {
        if let Some(c) = claimed_by_other(&mut *tx, no, ids, actor, None).await? {
            return Err(ExecError::Claimed(Box::new(c)));
        }
    }
    for chunk in new_rows.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_insert(
            "INSERT INTO cases (case_no, flow_id, flow_version, status, version, snapshot, created_at, updated_at) VALUES ",
            8,
            chunk.len(),
        );
        let mut q = q(sqlx::AssertSqlSafe(sql));
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
        q.execute(&mut *tx).await?;
    }
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_insert(
            "INSERT INTO event_log (case_no, seq, last_seq, at, body) VALUES ",
            5,
            chunk.len(),
        );
        let mut q = q(sqlx::AssertSqlSafe(sql));
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
        q.execute(&mut *tx).await?;
    }
    // Open tasks and timers: replaced for the cases that changed.
    for chunk in order.chunks(ROWS_PER_STATEMENT) {
        for table in ["tasks", "case_timers"] {
            let sql = format!(
                "DELETE FROM {table} WHERE case_no IN ({})",
                (1..=chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let mut q = q(sqlx::AssertSqlSafe(sql));
            for no in chunk {
                q = q.bind(no.as_str());
            }
            q.execute(&mut *tx).await?;
        }
    }
    let mut tasks = Vec::new();
    let mut timers = Vec::new();
    for no in order {
        let Some((state, _, _)) = cases.get(no) else {
            continue;
        };
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
        let mut q = q(sqlx::AssertSqlSafe(sql));
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
        q.execute(&mut *tx).await?;
    }
    for chunk in timers.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_insert(
            "INSERT INTO case_timers (case_no, due) VALUES ",
            2,
            chunk.len(),
        );
        let mut q = q(sqlx::AssertSqlSafe(sql));
        for (no, due) in chunk {
            q = q.bind(no.as_str()).bind(due.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in commands.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_insert(
            "INSERT INTO command_keys (idem_key, case_no, version, first_seq, at, fingerprint) VALUES ",
            6,
            chunk.len(),
        );
        let mut q = q(sqlx::AssertSqlSafe(sql));
        for (key, no, version, first, at, fp) in chunk {
            q = q
                .bind(key.as_str())
                .bind(no.as_str())
                .bind(*version as i64)
                .bind(*first as i64)
                .bind(at.as_str())
                .bind(fp.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    for chunk in audit.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_insert(
            "INSERT INTO audit_log (at, actor, action, detail) VALUES ",
            4,
            chunk.len(),
        );
        let mut q = q(sqlx::AssertSqlSafe(sql));
        for (at, actor, action, detail, _) in chunk {
            q = q
                .bind(at.as_str())
                .bind(actor.as_str())
                .bind(*action)
                .bind(detail.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    Ok(())
}

/// One command in `tx`.
pub(crate) async fn execute_in<C: Conn + ?Sized>(
    tx: &mut C,
    region: &str,
    req: &Request,
    flows: &Registry,
    cal: &Calendar,
    now: Time,
    claims_after_update: bool,
) -> Result<Outcome, ExecError> {
    let mut outs =
        execute_in_batch(tx, region, &[(req, flows, cal, now)], claims_after_update).await?;
    outs.pop()
        .unwrap_or_else(|| Err(ExecError::Batch("no result".into())))
}

pub(crate) async fn load_for<S: Source + ?Sized>(
    conn: &mut S,
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
                let seq = conn.next_number(&prefix).await?;
                crate::core::ids::case_number(region, now.date(), seq as u64)
                    .ok_or_else(|| ExecError::Numbers(prefix.clone()))?
            }
        };
        if conn.case_exists(&case_no).await? {
            return Err(CommandError::AlreadyStarted { case_no }.into());
        }
        return Ok(Loaded {
            case_no,
            state: None,
            flow,
        });
    }
    let case_no = req.case_no.clone().unwrap_or_default();
    let state = conn
        .snapshot(&case_no)
        .await?
        .ok_or_else(|| ExecError::NoCase(case_no.clone()))?;
    let flow = flows
        .get(&state.flow_id, state.flow_version)
        .ok_or_else(|| ExecError::NoFlowVersion(state.flow_id.clone(), state.flow_version))?;
    Ok(Loaded {
        case_no,
        state: Some(state),
        flow,
    })
}

pub(crate) async fn tick_direct<D: Dialect>(
    s: &D,
    now: Time,
    flows: &Registry,
    cal: &Calendar,
    limit: u32,
) -> Result<Vec<Outcome>, ExecError> {
    let mut fired: Vec<Outcome> = Vec::new();
    let stamp = fmt_ts(now);
    while (fired.len() as u32) < limit {
        let mut tx = s.begin().await?;
        // Claim a case with due timers. Every writer locks the case row
        // before it touches the case's timers, so claims never deadlock.
        let row = q(D::CLAIM_DUE)
            .bind(&stamp)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            let _ = tx.rollback().await;
            break;
        };
        let case_no: String = row.try_get("case_no")?;
        let snapshot: Option<String> = q("SELECT snapshot FROM cases WHERE case_no = $1")
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
        let reqs = due_fires(&case_no, state.as_ref(), now);
        let jobs: Vec<(&Request, &Registry, &Calendar, Time)> =
            reqs.iter().map(|r| (r, flows, cal, now)).collect();
        match execute_in_batch(&mut *tx, s.region(), &jobs, D::CLAIMS_AFTER_UPDATE).await {
            Ok(outs) => {
                let failed: Vec<String> = outs
                    .iter()
                    .filter_map(|o| o.as_ref().err().map(|e| e.to_string()))
                    .chain(unreadable)
                    .collect();
                let changed = outs.iter().any(|o| {
                    o.as_ref()
                        .is_ok_and(|o| !o.events.is_empty() && !o.replayed)
                });
                if !changed {
                    let row = q("SELECT due, attempts FROM case_timers WHERE case_no = $1")
                        .bind(&case_no)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if let Some(row) = row {
                        let (row_due, tried): (String, i64) =
                            (row.try_get("due")?, row.try_get("attempts")?);
                        unfired(&case_no, tried, &failed, now)
                            .write(&mut *tx, &case_no, &row_due, now)
                            .await?;
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

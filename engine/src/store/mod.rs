//! Durable storage, behind small traits: [`CaseStore`] (commands, timers,
//! case reads), [`DeploymentStore`], [`AuditLog`], [`CardStore`],
//! [`ClaimStore`], [`UserStore`], [`BlobStore`] and [`Backend`]. Three
//! backends implement them: SQLite (WAL, synchronous=FULL) as the embedded
//! default, PostgreSQL for several nodes, and an in-memory store for tests.
//! [`Store`] is a cheap handle to whichever one was opened; one conformance
//! suite (`engine/tests/storage.rs`) runs on all three.
//!
//! The two SQL backends share their code: it is written once, generic over a
//! [`sql::Dialect`] (`deploy.rs`, `cases.rs`, `pipeline.rs`, `cards.rs`,
//! `claims.rs`, `users.rs`), and each backend module (`sqlite.rs`,
//! `postgres.rs`) only opens its pools and says how it begins, locks and
//! claims. The schema is in `schema.rs`, as numbered migrations.
//!
//! Each command runs in one transaction: it checks its idempotency key, loads
//! the case snapshot, applies the pure core, appends the events, writes the
//! snapshot with an optimistic version check, replaces the case's open tasks
//! and timers, records the idempotency key and an audit row, and commits.
//! Due timers are fired inside the transaction that claims their case; on
//! PostgreSQL the case row is claimed with `FOR UPDATE SKIP LOCKED`, so any
//! node fires any timer, and each timer fires once. Every writer locks the
//! case row before touching the case's timers, so claims never deadlock.

use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Command, CommandError, Event, Time};
use crate::supervision::{CardChange, StaffFacts, Verdict};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub mod cards;
mod cases;
pub mod chain;
pub mod claims;
mod deploy;
pub mod memory;
mod pipeline;
pub mod postgres;
pub mod schema;
pub mod sql;
pub mod sqlite;
pub mod users;

pub use cards::{Adjustment, Alarm, AlarmError, AlarmFilter, Known, Notification, Rating};
pub use claims::Claim;
pub use users::{TokenInfo, User};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}`: use sqlite://FILE, postgres://… or memory:")]
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
    #[error(
        "`{0}` is not a blob key: use letters, digits, `-`, `_`, `.` and `/` between non-empty segments"
    )]
    BadKey(String),
    #[error("blob `{0}` already holds other bytes: a blob is written once")]
    BlobExists(String),
    #[error("blob storage: {0}")]
    Io(String),
    #[error("{0}")]
    NotSupported(String),
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

/// The cases a reader's lists show: those of `flows`, and those with an open
/// task of one of `departments`.
#[derive(Clone, Debug, Default)]
pub struct CaseScope {
    pub flows: Vec<String>,
    pub departments: Vec<String>,
}

impl CaseScope {
    /// Whether the scope admits a case of `flow_id` with open tasks of `tasks`.
    pub fn admits<'a>(&self, flow_id: &str, mut tasks: impl Iterator<Item = &'a str>) -> bool {
        self.flows.iter().any(|f| f == flow_id)
            || tasks.any(|d| self.departments.iter().any(|m| m == d))
    }
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
pub(crate) fn corrupt(what: impl Into<String>, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        message: e.to_string(),
    }
}

/// Commands, timers and the case reads.
#[async_trait]
pub trait CaseStore: Send + Sync {
    /// Runs a command in one transaction (see the module docs).
    async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError>;
    /// Fires up to `limit` timers due at `now`; returns what the firings did
    /// (one outcome per timer that fired). A timer this node cannot fire is
    /// left for a later try, never dropped.
    async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError>;
    /// The case snapshot.
    async fn case(&self, case_no: &str) -> Result<Option<CaseState>, StoreError>;
    /// The case's event log, in order.
    async fn events(&self, case_no: &str) -> Result<Vec<Event>, StoreError>;
    /// A page of the case's event log: the events after the first `after`,
    /// at most `limit`.
    async fn events_after(
        &self,
        case_no: &str,
        after: u64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError>;
    /// Cases, newest number first; with `scope`, only those it admits.
    async fn cases(
        &self,
        status: Option<&str>,
        flow_id: Option<&str>,
        scope: Option<&CaseScope>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseRow>, StoreError>;
    /// Open tasks, optionally for one department (and role).
    async fn tasks(
        &self,
        department: Option<&str>,
        role: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError>;
    /// The earliest pending timer, for the timer service's sleep.
    async fn next_timer(&self) -> Result<Option<String>, StoreError>;
    /// Case numbers of unfinished cases after `after`, in order (for scans).
    async fn open_cases(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError>;
    /// A page of unfinished cases with their snapshots, after `after` in
    /// case-number order (the supervision scan reads the store this way).
    async fn open_snapshots(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError>;
    /// Service cases registered in [from, to) (timestamps `YYYY-MM-DDTHH:MM:SS`),
    /// at most `limit`, leaving out supervision orders and complaints.
    async fn cases_registered(
        &self,
        from: &str,
        to: &str,
        limit: i64,
    ) -> Result<Vec<CaseState>, StoreError>;
    /// Counts rows of a table (tests and benchmarks).
    async fn count(&self, table: Table) -> Result<i64, StoreError>;
}

/// Deployed flows, rule files, packs and calendars.
#[async_trait]
pub trait DeploymentStore: Send + Sync {
    /// Records a deployment of `flow_id` unless the same source is already
    /// deployed; versions increase with each new source of a flow.
    async fn deploy(
        &self,
        flow_id: &str,
        source: &str,
        file: &str,
        actor: &str,
        now: Time,
    ) -> Result<(Deployment, bool), StoreError>;
    /// Deploys a pack's flows (id, source, file) in one transaction, with
    /// one audit row for the pack: all of them or none.
    async fn deploy_many(
        &self,
        pack: &str,
        manifest: &str,
        items: &[(String, String, String)],
        actor: &str,
        now: Time,
    ) -> Result<Vec<(Deployment, bool)>, StoreError>;
    async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError>;
    /// The manifests of packs deployed through the API (JSON), by pack id.
    async fn pack_manifests(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Every deployment with its source, oldest first.
    async fn deployment_sources(&self) -> Result<Vec<(Deployment, String)>, StoreError>;
    /// Deployments recorded after row `after`, oldest first, with their row ids.
    async fn deployments_after(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, Deployment, String)>, StoreError>;
    /// What changes whenever anything is deployed: the newest deployment row
    /// and the newest pack manifest. Every node compares it before each
    /// command and timer claim.
    async fn deployment_marker(&self) -> Result<(i64, String), StoreError>;
    /// Every calendar deployment with its source and row id, oldest first.
    async fn calendar_deployments(&self) -> Result<Vec<(Deployment, String, i64)>, StoreError>;
}

/// Which audit rows to read: each filter given must hold.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Rows older than this id (the next page back).
    pub before: Option<i64>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Rows about this case (its number in the row's detail).
    pub case: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`, inclusive.
    pub from: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`, exclusive.
    pub to: Option<String>,
}

/// The audit log: one row per write.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// The newest `limit` rows, newest first.
    async fn audit(&self, limit: i64) -> Result<Vec<Value>, StoreError> {
        self.audit_page(&AuditFilter::default(), limit).await
    }
    /// The newest `limit` rows that pass `f`, newest first.
    async fn audit_page(&self, f: &AuditFilter, limit: i64) -> Result<Vec<Value>, StoreError>;
    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        detail: &str,
        now: Time,
    ) -> Result<(), StoreError>;
}

/// Supervision cards, ratings, adjustments and notifications.
#[async_trait]
pub trait CardStore: Send + Sync {
    /// Brings the stored cards of several cases in line with the rules'
    /// verdicts at `now`, in one transaction, and says what changed. With
    /// `only`, the verdicts cover just those rules: other cards are left
    /// alone. An evaluation error leaves its card as it was. The
    /// notifications `notes` gives for a case's changes are written in the
    /// same transaction: a card and its messages commit together or not at all.
    async fn sync_many(
        &self,
        items: &[(&str, &[Verdict])],
        only: Option<&HashSet<String>>,
        now: Time,
        notes: &NoteFn<'_>,
    ) -> Result<Vec<(String, Vec<CardChange>)>, StoreError>;
    /// `sync_many` for one case, without notifications.
    async fn sync_cards(
        &self,
        case_no: &str,
        verdicts: &[Verdict],
        now: Time,
    ) -> Result<Vec<CardChange>, StoreError> {
        let mut all = self
            .sync_many(&[(case_no, verdicts)], None, now, &|_, _| Vec::new())
            .await?;
        Ok(all.pop().map(|(_, c)| c).unwrap_or_default())
    }
    /// Open cards that have reached the top of a rule whose top asks for a
    /// supervision order and have none yet: `tops` is (rule, top level).
    /// The card is the durable record that its order is owed, so an order a
    /// crash cut short is found here and issued (once: its start carries the
    /// key `order:CARD`). Oldest first, with ids after `after`, at most `limit`.
    async fn awaiting_orders(
        &self,
        tops: &[(String, String)],
        after: i64,
        limit: i64,
    ) -> Result<Vec<Alarm>, StoreError>;
    /// The cards that follow the rules (open or revoked) of the cases in
    /// [first, last], by case.
    async fn known_cards(
        &self,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, Vec<Known>>, StoreError>;
    /// Cards, newest first.
    async fn alarms(
        &self,
        f: &AlarmFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Alarm>, StoreError>;
    async fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError>;
    /// Runs a person's command on one card (acknowledge, appeal, decide an
    /// appeal, verify, record an order): the pure `core::card::decide` on
    /// the card as it is inside the transaction (its case row locked first),
    /// then its event written with a history line and an audit row.
    async fn transition_alarm(
        &self,
        id: i64,
        command: &crate::core::card::CardCommand,
        actor: &str,
        now: Time,
    ) -> Result<Alarm, AlarmError>;
    /// Adds a line to a card's history (an order that finished, say).
    async fn note_alarm(&self, id: i64, what: &str, now: Time) -> Result<(), StoreError>;
    /// Records a rating (1–5) of a case by an account; one per case and
    /// account. Returns false when the account has already rated the case.
    async fn rate(&self, r: &Rating, now: Time) -> Result<bool, StoreError>;
    /// Ratings, newest first (optionally of one case).
    async fn ratings(&self, case_no: Option<&str>, limit: i64) -> Result<Vec<Rating>, StoreError>;
    /// Cards issued since `from`, and ratings given since `from`.
    async fn cards_and_ratings_since(
        &self,
        from: &str,
    ) -> Result<(Vec<Alarm>, Vec<Rating>), StoreError>;
    /// Records a manual efficiency adjustment (加减分) for a department and period.
    async fn add_adjustment(&self, a: &Adjustment, now: Time) -> Result<i64, StoreError>;
    /// The department an adjustment concerns.
    async fn adjustments_of(&self, id: i64) -> Result<Option<String>, StoreError>;
    /// Adjustments of a period (all departments).
    async fn adjustments(&self, period: &str) -> Result<Vec<Value>, StoreError>;
    /// Moves an adjustment: `applied → appealed` (the department appeals),
    /// `appealed → applied | withdrawn` (a supervisor decides). Returns the
    /// adjustment's department, or an error naming its state.
    async fn move_adjustment(
        &self,
        id: i64,
        from: &str,
        to: &str,
        note: &str,
        now: Time,
    ) -> Result<Option<Result<String, String>>, StoreError>;
    /// Records notifications (one row each), in one transaction.
    async fn notify(&self, rows: &[Notification], now: Time) -> Result<(), StoreError>;
    /// Notifications, newest first, optionally for one recipient.
    async fn notifications(
        &self,
        recipient: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Value>, StoreError>;
    /// Records the cross-case figures (JSON) as the new shared version and
    /// returns its number. Every node reads them from here, so all decide
    /// with the same figures.
    async fn save_figures(&self, figures: &str, now: Time) -> Result<i64, StoreError>;
    /// The version of the shared figures (0 when none were saved).
    async fn figures_version(&self) -> Result<i64, StoreError>;
    /// The shared figures: (version, JSON).
    async fn figures(&self) -> Result<Option<(i64, String)>, StoreError>;
    /// Per department, since `since`: substantiated complaints and confirmed
    /// anomalies (see `supervision::StaffFacts`).
    async fn staff_figures(&self, since: Time) -> Result<HashMap<String, StaffFacts>, StoreError>;
}

/// The notifications owed for a case's card changes (see `sync_many`).
pub type NoteFn<'a> = dyn Fn(&str, &[CardChange]) -> Vec<Notification> + Send + Sync + 'a;

/// Task claims (认领).
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Claims a task for `login`; returns the claim that holds afterwards
    /// (the caller's, or the one someone else already had), or `None` when
    /// the task is no longer open. The case row is locked first, as every
    /// command locks it: a completion and a claim of the same task are
    /// decided one after the other, never both against the old state.
    async fn claim_task(
        &self,
        case_no: &str,
        task_id: i64,
        login: &str,
        name: &str,
        now: Time,
    ) -> Result<Option<Claim>, StoreError>;
    /// Releases a claim; false when there was none to release.
    async fn release_task(
        &self,
        case_no: &str,
        task_id: i64,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// The claims on the tasks of these cases.
    async fn claims(&self, case_nos: &[String]) -> Result<Vec<Claim>, StoreError>;
}

/// Users, their tokens (hashes) and sessions.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; false when the login is taken.
    async fn create_user(
        &self,
        u: &User,
        password_hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    async fn users(&self) -> Result<Vec<User>, StoreError>;
    /// Records a token (its hash) for a user, valid until `expires`.
    async fn add_token(
        &self,
        login: &str,
        hash: &str,
        label: &str,
        expires: Time,
        actor: &str,
        now: Time,
    ) -> Result<(), StoreError>;
    /// A user's tokens (never their hashes: `id` is the hash's first 16 hex digits).
    async fn tokens(&self, login: &str) -> Result<Vec<TokenInfo>, StoreError>;
    /// Revokes a user's token by its id; false when there is none to revoke.
    async fn revoke_token(
        &self,
        login: &str,
        id: &str,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// Disables (or enables again) a user; disabling ends their sessions.
    /// False when there is no such user.
    async fn set_disabled(
        &self,
        login: &str,
        disabled: bool,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// Sets (or, with `None`, removes) a user's password hash and ends their
    /// sessions. False when there is no such user.
    async fn set_password(
        &self,
        login: &str,
        hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// Replaces a user's roles. False when there is no such user.
    async fn set_roles(
        &self,
        login: &str,
        roles: &[users::Grant],
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError>;
    /// An enabled user and their password hash (for a login).
    async fn user_with_password(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;
    /// Starts a session (its cookie's hash), valid until `expires`.
    async fn add_session(
        &self,
        hash: &str,
        login: &str,
        csrf: &str,
        expires: Time,
        now: Time,
    ) -> Result<(), StoreError>;
    /// The enabled user of a live session, with its CSRF token.
    async fn session(&self, hash: &str, now: Time) -> Result<Option<(User, String)>, StoreError>;
    async fn end_session(&self, hash: &str, actor: &str, now: Time) -> Result<(), StoreError>;
    /// The enabled user a live token (not expired at `now`, not revoked) belongs to.
    async fn user_for_token(&self, hash: &str, now: Time) -> Result<Option<User>, StoreError>;
}

/// Attachments and generated documents, by key: files beside the SQLite
/// database, a table on PostgreSQL, a map in memory. A key is written once:
/// writing it again with other bytes is refused.
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` under `key`; false when the key already holds them.
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError>;
    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Keys starting with `prefix`, in order.
    async fn blob_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError>;
}

/// What the backend is, and its housekeeping.
#[async_trait]
pub trait Backend: Send + Sync {
    /// "sqlite", "postgres" or "memory".
    fn backend(&self) -> &'static str;
    /// The 6-digit division code at the head of this store's case numbers.
    fn region(&self) -> &str;
    /// The schema versions applied to this database, in order.
    async fn schema_versions(&self) -> Result<Vec<i64>, StoreError>;
    /// The database server's clock in China Standard Time, where several
    /// nodes share it (PostgreSQL); `None` where this node's clock is the
    /// only one.
    async fn database_now(&self) -> Option<Time>;
    /// Flushes what can be flushed before the process ends.
    async fn close(&self);
    /// Writes a consistent copy of the whole database to `to` while it is in
    /// use (and its blobs beside it). Only the embedded SQLite backend: a
    /// PostgreSQL database is backed up with PostgreSQL's tools.
    async fn backup_to(&self, to: &std::path::Path) -> Result<(), StoreError> {
        Err(StoreError::NotSupported(format!(
            "backup to {} of a {} store: use the database's own tools (PostgreSQL: pg_dump -Fc, see docs/security.md)",
            to.display(),
            self.backend()
        )))
    }
    /// The database's own consistency check (SQLite: `PRAGMA integrity_check`);
    /// the problems found, none when it is sound.
    async fn integrity(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }
    /// Seals a batch of the event and audit rows written since the last call
    /// into their hash chains (`chain.rs`); how many rows it sealed. The memory
    /// store keeps no chains.
    async fn seal_chains(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
    /// Walks both hash chains; none where the store keeps no chains.
    async fn verify_chains(&self) -> Result<Vec<chain::ChainReport>, StoreError> {
        Ok(Vec::new())
    }
}

/// Every storage trait: what a backend implements.
pub trait Storage:
    Backend + CaseStore + DeploymentStore + AuditLog + CardStore + ClaimStore + UserStore + BlobStore
{
}
impl<T> Storage for T where
    T: Backend
        + CaseStore
        + DeploymentStore
        + AuditLog
        + CardStore
        + ClaimStore
        + UserStore
        + BlobStore
{
}

/// The traits, for `use govflow_engine::store::prelude::*`: their methods
/// are what a [`Store`] offers.
pub mod prelude {
    pub use super::{
        AuditLog, Backend, BlobStore, CardStore, CaseStore, ClaimStore, DeploymentStore, UserStore,
    };
}

/// A handle to the opened backend; cloning it is cheap.
#[derive(Clone)]
pub struct Store(Arc<dyn Storage>);

impl std::ops::Deref for Store {
    type Target = dyn Storage;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `url`:
    /// `sqlite://FILE`, `postgres://…`, or `memory:` (nothing kept).
    pub async fn open(url: &str, opts: &Options) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store(Arc::new(sqlite::SqliteStore::open(url, opts).await?)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Store(Arc::new(postgres::PgStore::open(url, opts).await?)))
        } else if url == "memory:" {
            Ok(Store(Arc::new(memory::MemStore::new(&opts.region))))
        } else {
            Err(StoreError::Unsupported(url.to_string()))
        }
    }

    /// A store over a backend built elsewhere.
    pub fn from_backend(b: Arc<dyn Storage>) -> Store {
        Store(b)
    }
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
    /// The hash the event and audit chains are sealed with.
    pub chain_hash: chain::ChainHash,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            region: "330100".into(),
            max_connections: 8,
            pg_schema: None,
            create: true,
            chain_hash: chain::ChainHash::Sha256,
        }
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
    pub(crate) fn sql(self) -> &'static str {
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

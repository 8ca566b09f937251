//! What the SQL backends share: a query written once runs on SQLite and on
//! PostgreSQL. `q(sql).bind(x).fetch_all(conn)` reads like sqlx's own
//! builder, but its connection is any [`Conn`] and its rows any [`SqlRow`],
//! so the storage code is generic over a [`Dialect`] instead of being pasted
//! per backend by a macro. The few statements that differ between the
//! dialects (how a write transaction begins, how a case row is locked, how a
//! due timer is claimed) are constants of the dialect.
//!
//! Placeholders are `$1`, `$2` … in ascending order, which both backends read
//! positionally. Values are always bound, never formatted into the text.

use super::{ExecError, Outcome, Request};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::Time;
use sqlx::{Decode, Encode, Postgres, SqlSafeStr, SqlStr, Sqlite, Type};
use std::future::Future;

/// A value bound to a placeholder.
#[derive(Debug)]
pub enum Arg<'a> {
    I64(i64),
    OptI64(Option<i64>),
    F64(f64),
    Str(&'a str),
    OptStr(Option<&'a str>),
    Owned(String),
    OptOwned(Option<String>),
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Arg::I64(v)
    }
}
impl From<Option<i64>> for Arg<'_> {
    fn from(v: Option<i64>) -> Self {
        Arg::OptI64(v)
    }
}
impl From<f64> for Arg<'_> {
    fn from(v: f64) -> Self {
        Arg::F64(v)
    }
}
impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Arg::Str(v)
    }
}
impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Arg::Str(v)
    }
}
impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Arg::OptStr(v)
    }
}
impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Arg::OptStr(v.as_deref())
    }
}

impl From<String> for Arg<'_> {
    fn from(v: String) -> Self {
        Arg::Owned(v)
    }
}
impl From<Option<String>> for Arg<'_> {
    fn from(v: Option<String>) -> Self {
        Arg::OptOwned(v)
    }
}

/// A statement with its bound values, not yet run.
pub struct Query<'a> {
    sql: SqlStr,
    args: Vec<Arg<'a>>,
}

/// A statement: a literal, or dynamic text wrapped in `sqlx::AssertSqlSafe`
/// after checking that it only repeats placeholders or fixed names.
pub fn q<'a>(sql: impl SqlSafeStr) -> Query<'a> {
    Query {
        sql: sql.into_sql_str(),
        args: Vec::new(),
    }
}

impl<'a> Query<'a> {
    pub fn bind(mut self, v: impl Into<Arg<'a>>) -> Self {
        self.args.push(v.into());
        self
    }

    /// Runs the statement; the number of rows it changed.
    pub async fn execute<C: Conn + ?Sized>(self, c: &mut C) -> Result<Done, sqlx::Error> {
        Ok(Done(c.run(self).await?))
    }

    pub async fn fetch_all<C: Conn + ?Sized>(self, c: &mut C) -> Result<Vec<C::Row>, sqlx::Error> {
        c.rows(self).await
    }

    pub async fn fetch_optional<C: Conn + ?Sized>(
        self,
        c: &mut C,
    ) -> Result<Option<C::Row>, sqlx::Error> {
        Ok(c.rows(self).await?.into_iter().next())
    }

    pub async fn fetch_one<C: Conn + ?Sized>(self, c: &mut C) -> Result<C::Row, sqlx::Error> {
        c.rows(self)
            .await?
            .into_iter()
            .next()
            .ok_or(sqlx::Error::RowNotFound)
    }

    /// The sqlx query for database `DB`, with every value bound.
    fn into_sqlx<DB>(self) -> sqlx::query::Query<'static, DB, <DB as sqlx::Database>::Arguments>
    where
        DB: sqlx::Database,
        i64: for<'e> Encode<'e, DB> + Type<DB>,
        Option<i64>: for<'e> Encode<'e, DB> + Type<DB>,
        f64: for<'e> Encode<'e, DB> + Type<DB>,
        String: for<'e> Encode<'e, DB> + Type<DB>,
        Option<String>: for<'e> Encode<'e, DB> + Type<DB>,
        for<'e> &'e str: Encode<'e, DB> + Type<DB>,
        for<'e> Option<&'e str>: Encode<'e, DB> + Type<DB>,
    {
        let mut out = sqlx::query::<DB>(self.sql);
        for a in self.args {
            out = match a {
                Arg::I64(v) => out.bind(v),
                Arg::OptI64(v) => out.bind(v),
                Arg::F64(v) => out.bind(v),
                // Borrowed: PostgreSQL encodes it into its buffer at once.
                Arg::Str(v) => out.bind(v),
                Arg::OptStr(v) => out.bind(v),
                Arg::Owned(v) => out.bind(v),
                Arg::OptOwned(v) => out.bind(v),
            };
        }
        out
    }
}

/// What `execute` reports.
pub struct Done(u64);

impl Done {
    pub fn rows_affected(&self) -> u64 {
        self.0
    }
}

/// A connection (or a transaction, through `&mut *tx`) of either backend.
pub trait Conn: Send {
    type Row: SqlRow + Send;
    fn run<'c>(
        &'c mut self,
        q: Query<'c>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send + 'c;
    fn rows<'c>(
        &'c mut self,
        q: Query<'c>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, sqlx::Error>> + Send + 'c;
}

impl Conn for sqlx::SqliteConnection {
    type Row = sqlx::sqlite::SqliteRow;
    async fn run<'c>(&'c mut self, q: Query<'c>) -> Result<u64, sqlx::Error> {
        Ok(q.into_sqlx::<Sqlite>().execute(self).await?.rows_affected())
    }
    async fn rows<'c>(&'c mut self, q: Query<'c>) -> Result<Vec<Self::Row>, sqlx::Error> {
        q.into_sqlx::<Sqlite>().fetch_all(self).await
    }
}

impl Conn for sqlx::PgConnection {
    type Row = sqlx::postgres::PgRow;
    async fn run<'c>(&'c mut self, q: Query<'c>) -> Result<u64, sqlx::Error> {
        Ok(q.into_sqlx::<Postgres>()
            .execute(self)
            .await?
            .rows_affected())
    }
    async fn rows<'c>(&'c mut self, q: Query<'c>) -> Result<Vec<Self::Row>, sqlx::Error> {
        q.into_sqlx::<Postgres>().fetch_all(self).await
    }
}

/// A column type both backends decode.
pub trait Col:
    Sized + for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Col for T where
    T: Sized
        + for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + for<'r> Decode<'r, Postgres>
        + Type<Postgres>
{
}

/// A column name or position both backends accept.
pub trait ColIdx:
    sqlx::ColumnIndex<sqlx::sqlite::SqliteRow>
    + sqlx::ColumnIndex<sqlx::postgres::PgRow>
    + std::fmt::Debug
{
}
impl<I> ColIdx for I where
    I: sqlx::ColumnIndex<sqlx::sqlite::SqliteRow>
        + sqlx::ColumnIndex<sqlx::postgres::PgRow>
        + std::fmt::Debug
{
}

/// A row of either backend.
pub trait SqlRow {
    fn try_get<T: Col, I: ColIdx>(&self, i: I) -> Result<T, sqlx::Error>;
}

impl SqlRow for sqlx::sqlite::SqliteRow {
    fn try_get<T: Col, I: ColIdx>(&self, i: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

impl SqlRow for sqlx::postgres::PgRow {
    fn try_get<T: Col, I: ColIdx>(&self, i: I) -> Result<T, sqlx::Error> {
        sqlx::Row::try_get(self, i)
    }
}

/// One SQL backend: its pools and the statements that differ.
pub trait Dialect: Clone + Send + Sync + 'static {
    type Db: sqlx::Database<Connection: Conn>;
    /// "sqlite" or "postgres".
    const NAME: &'static str;
    /// Locks a case row (`$1`) for the rest of the transaction. SQLite has
    /// one writer, which holds every lock already.
    const LOCK_CASE: &'static str;
    /// Makes concurrent deployments take turns.
    const LOCK_DEPLOY: &'static str;
    /// Makes the hash-chain sealers of several nodes take turns (`chain.rs`).
    const LOCK_SEAL: &'static str;
    /// Makes requests with the same idempotency key (`$1`) take turns, so
    /// the second reads the first's key rather than the state it left
    /// (`None`: one writer already serialises them).
    const LOCK_KEY: Option<&'static str>;
    /// Claims one case with timers due at `$1`; returns its `case_no`.
    const CLAIM_DUE: &'static str;
    /// Whether a completion's claim check waits for the versioned UPDATE
    /// (PostgreSQL: that UPDATE takes the case row's lock) or runs at once
    /// (SQLite: the one writer holds every lock).
    const CLAIMS_AFTER_UPDATE: bool;

    /// The pool reads use.
    fn reads(&self) -> &sqlx::Pool<Self::Db>;
    /// The pool writes use.
    fn writes(&self) -> &sqlx::Pool<Self::Db>;
    /// The 6-digit division code at the head of case numbers.
    fn region(&self) -> &str;
    /// Opens a write transaction.
    fn begin(
        &self,
    ) -> impl Future<Output = Result<sqlx::Transaction<'static, Self::Db>, sqlx::Error>> + Send;
    /// Runs one command (SQLite: through the group-commit writer).
    fn run_command(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> impl Future<Output = Result<Outcome, ExecError>> + Send;
    /// Fires up to `limit` due timers.
    fn fire_due(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Outcome>, ExecError>> + Send;
    /// Called before a task claim commits.
    fn before_claim(&self, _case_no: &str) {}
}

/// The connection type of dialect `D`.
pub type ConnOf<D> = <<D as Dialect>::Db as sqlx::Database>::Connection;
/// The row type of dialect `D`.
pub type RowOf<D> = <ConnOf<D> as Conn>::Row;

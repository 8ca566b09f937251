//! The PostgreSQL backend, for several nodes on one database. Every node
//! runs commands in their own transactions (the versioned UPDATE of the case
//! row decides between concurrent writers) and claims due timers with
//! `FOR UPDATE SKIP LOCKED`, so any node fires any timer, once. Blobs are
//! rows of the `blobs` table.

use super::pipeline;
use super::sql::{Dialect, SqlRow, q};
use super::{Backend, BlobStore, ExecError, Options, Outcome, Request, StoreError, schema};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::Time;
use async_trait::async_trait;
use std::str::FromStr;
use std::sync::Arc;

#[derive(Clone)]
pub struct PgStore {
    pool: sqlx::PgPool,
    region: Arc<str>,
    chain: super::chain::ChainHash,
}

impl PgStore {
    /// Connects to `url` and migrates the schema (`opts.pg_schema`, created
    /// if missing, or the connection's default).
    pub async fn open(url: &str, opts: &Options) -> Result<PgStore, StoreError> {
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
        Ok(PgStore {
            pool,
            region: opts.region.as_str().into(),
            chain: opts.chain_hash,
        })
    }
}

impl Dialect for PgStore {
    type Db = sqlx::Postgres;
    const NAME: &'static str = "postgres";
    const LOCK_CASE: &'static str = "SELECT case_no FROM cases WHERE case_no = $1 FOR UPDATE";
    const LOCK_DEPLOY: &'static str = "SELECT pg_advisory_xact_lock(7170432)";
    const LOCK_SEAL: &'static str = "SELECT pg_advisory_xact_lock(7170434)";
    const LOCK_KEY: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 7170433))");
    const CLAIM_DUE: &'static str = "SELECT case_no FROM cases WHERE case_no IN (SELECT case_no FROM case_timers WHERE due <= $1 ORDER BY due LIMIT 64) FOR UPDATE SKIP LOCKED LIMIT 1";
    // Claims are read after the versioned UPDATE has locked the case row.
    const CLAIMS_AFTER_UPDATE: bool = true;

    fn reads(&self) -> &sqlx::PgPool {
        &self.pool
    }
    fn writes(&self) -> &sqlx::PgPool {
        &self.pool
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
    async fn run_command(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        pipeline::execute_direct(self, req, flows, cal, now).await
    }
    async fn fire_due(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        pipeline::tick_direct(self, now, flows, cal, limit).await
    }
}

#[async_trait]
impl Backend for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
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
        let secs: i64 =
            sqlx::query_scalar("SELECT CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) AS now")
                .fetch_one(&self.pool)
                .await
                .ok()?;
        chrono::DateTime::from_timestamp(secs, 0).map(crate::app::clock::cst)
    }
    async fn close(&self) {}
}

#[async_trait]
impl BlobStore for PgStore {
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        if super::sqlite::blob_path(key).is_none() {
            return Err(StoreError::BadKey(key.to_string()));
        }
        let mut tx = self.pool.begin().await?;
        let old: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT bytes FROM blobs WHERE key = $1 FOR UPDATE")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        match old {
            Some(o) if o == bytes => return Ok(false),
            Some(_) => return Err(StoreError::BlobExists(key.to_string())),
            None => {}
        }
        let done = sqlx::query(
            "INSERT INTO blobs (key, bytes) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(bytes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if done == 0 {
            // Another node wrote the key between the read and the insert.
            return match self.blob(key).await? {
                Some(o) if o == bytes => Ok(false),
                _ => Err(StoreError::BlobExists(key.to_string())),
            };
        }
        Ok(true)
    }
    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT bytes FROM blobs WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
    }
    async fn blob_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let rows = q("SELECT key FROM blobs WHERE substr(key, 1, length($1)) = $1 ORDER BY key")
            .bind(prefix)
            .fetch_all(&mut *self.pool.acquire().await?)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(r.try_get("key")?);
        }
        Ok(out)
    }
}

//! Storage for the server slice: deployments (flow versions with their source
//! and hash) and the audit log, on SQLite through sqlx's runtime queries.

use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL `{0}` (this build serves `sqlite://FILE`)")]
    Unsupported(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Deployment {
    pub flow_id: String,
    pub version: i64,
    pub hash: String,
    pub file: String,
    pub deployed_at: String,
    pub deployed_by: String,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        flow_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        hash TEXT NOT NULL,
        file TEXT NOT NULL,
        source TEXT NOT NULL,
        deployed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        deployed_by TEXT NOT NULL,
        UNIQUE (flow_id, hash)
    )",
    "CREATE TABLE IF NOT EXISTS audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL
    )",
];

/// SHA-256 of a flow's source text, hex.
pub fn source_hash(source: &str) -> String {
    let digest = Sha256::digest(source.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Store {
    /// Opens (creating if needed) a SQLite database in WAL mode and migrates it.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unsupported(url.to_string()));
        }
        let opts = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        for m in MIGRATIONS {
            sqlx::query(*m).execute(&pool).await?;
        }
        Ok(Store { pool })
    }

    /// Records a deployment of `flow` unless the same source is already deployed.
    /// A flow's version number increases with each new source.
    pub async fn deploy(
        &self,
        flow: &govflow_dsl::Flow,
        source: &str,
        file: &str,
        actor: &str,
    ) -> Result<Deployment, StoreError> {
        let hash = source_hash(source);
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query("SELECT version, file, deployed_at, deployed_by FROM deployments WHERE flow_id = ? AND hash = ?")
            .bind(&flow.id)
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            tx.commit().await?;
            return Ok(Deployment {
                flow_id: flow.id.clone(),
                version: row.try_get("version")?,
                hash,
                file: row.try_get("file")?,
                deployed_at: row.try_get("deployed_at")?,
                deployed_by: row.try_get("deployed_by")?,
            });
        }
        let version: i64 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 AS v FROM deployments WHERE flow_id = ?",
        )
        .bind(&flow.id)
        .fetch_one(&mut *tx)
        .await?
        .try_get("v")?;
        let row = sqlx::query(
            "INSERT INTO deployments (flow_id, version, hash, file, source, deployed_by) VALUES (?, ?, ?, ?, ?, ?) RETURNING deployed_at",
        )
        .bind(&flow.id)
        .bind(version)
        .bind(&hash)
        .bind(file)
        .bind(source)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?;
        let detail =
            serde_json::json!({"flow": flow.id, "version": version, "hash": hash, "file": file})
                .to_string();
        sqlx::query("INSERT INTO audit_log (actor, action, detail) VALUES (?, 'deploy', ?)")
            .bind(actor)
            .bind(&detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Deployment {
            flow_id: flow.id.clone(),
            version,
            hash,
            file: file.to_string(),
            deployed_at: row.try_get("deployed_at")?,
            deployed_by: actor.to_string(),
        })
    }

    pub async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError> {
        let rows = sqlx::query(
            "SELECT flow_id, version, hash, file, deployed_at, deployed_by FROM deployments WHERE flow_id = ? ORDER BY version",
        )
        .bind(flow_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Deployment {
                    flow_id: r.try_get("flow_id")?,
                    version: r.try_get("version")?,
                    hash: r.try_get("hash")?,
                    file: r.try_get("file")?,
                    deployed_at: r.try_get("deployed_at")?,
                    deployed_by: r.try_get("deployed_by")?,
                })
            })
            .collect()
    }

    pub async fn audit(&self, limit: i64) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(serde_json::json!({
                    "id": r.try_get::<i64, _>("id")?,
                    "at": r.try_get::<String, _>("at")?,
                    "actor": r.try_get::<String, _>("actor")?,
                    "action": r.try_get::<String, _>("action")?,
                    "detail": r.try_get::<String, _>("detail")?,
                }))
            })
            .collect()
    }
}

//! Deployments and the audit log, written once for both SQL dialects.

use super::sql::{Conn, Dialect, SqlRow, q};
use super::{AuditFilter, AuditLog, Deployment, DeploymentStore, StoreError, fmt_ts, source_hash};
use crate::core::Time;
use async_trait::async_trait;
use serde_json::Value;

#[async_trait]
impl<D: Dialect> DeploymentStore for D {
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
        q(D::LOCK_DEPLOY).execute(&mut *tx).await?;
        let out = deploy_in(&mut *tx, flow_id, source, file, actor, now).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn pack_manifests(&self) -> Result<Vec<(String, String)>, StoreError> {
        let rows = q("SELECT id, manifest FROM packs ORDER BY id")
            .fetch_all(&mut *self.reads().acquire().await?)
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
        q(D::LOCK_DEPLOY).execute(&mut *tx).await?;
        let changed = q(
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
            out.push(deploy_in(&mut *tx, flow_id, source, file, actor, now).await?);
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
        q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'deploy_pack', $3)")
            .bind(fmt_ts(now))
            .bind(actor)
            .bind(&detail)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError> {
        let rows = q(
            "SELECT flow_id, version, hash, file, deployed_at, deployed_by FROM deployments WHERE flow_id = $1 ORDER BY version",
        )
        .bind(flow_id)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(deployment(r)?);
        }
        Ok(out)
    }

    async fn deployments_after(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, Deployment, String)>, StoreError> {
        let rows = q(
            "SELECT id, flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments WHERE id > $1 ORDER BY id",
        )
        .bind(after)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push((r.try_get("id")?, deployment(r)?, r.try_get("source")?));
        }
        Ok(out)
    }

    async fn deployment_marker(&self) -> Result<(i64, String), StoreError> {
        let r = q(
            "SELECT (SELECT COALESCE(MAX(id), 0) FROM deployments) AS m, (SELECT COUNT(*) || ':' || COALESCE(SUM(LENGTH(manifest)), 0) || ':' || COALESCE(MAX(deployed_at), '') FROM packs) AS p",
        )
        .fetch_one(&mut *self.reads().acquire().await?)
        .await?;
        Ok((r.try_get("m")?, r.try_get("p")?))
    }

    async fn deployment_sources(&self) -> Result<Vec<(Deployment, String)>, StoreError> {
        let rows = q(
            "SELECT flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments ORDER BY flow_id, version",
        )
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push((deployment(r)?, r.try_get("source")?));
        }
        Ok(out)
    }

    async fn calendar_deployments(&self) -> Result<Vec<(Deployment, String, i64)>, StoreError> {
        let rows = q(
            "SELECT id, flow_id, version, hash, file, deployed_at, deployed_by, source FROM deployments WHERE flow_id >= 'calendar/' AND flow_id < 'calendar0' ORDER BY id",
        )
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push((
                deployment(row)?,
                row.try_get("source")?,
                row.try_get::<i64, _>("id")?,
            ));
        }
        Ok(out)
    }
}

pub(crate) async fn deploy_in<C: Conn + ?Sized>(
    tx: &mut C,
    flow_id: &str,
    source: &str,
    file: &str,
    actor: &str,
    now: Time,
) -> Result<(Deployment, bool), StoreError> {
    let hash = source_hash(source);
    let existing = q(
            "SELECT flow_id, version, hash, file, deployed_at, deployed_by FROM deployments WHERE flow_id = $1 AND hash = $2",
        )
        .bind(flow_id)
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = existing {
        return Ok((deployment(&row)?, false));
    }
    let version: i64 =
        q("SELECT COALESCE(MAX(version), 0) + 1 AS v FROM deployments WHERE flow_id = $1")
            .bind(flow_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("v")?;
    let at = fmt_ts(now);
    q(
            "INSERT INTO deployments (flow_id, version, hash, file, source, deployed_at, deployed_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(flow_id)
        .bind(version)
        .bind(&hash)
        .bind(file)
        .bind(source)
        .bind(&at)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    let detail =
        serde_json::json!({"flow": flow_id, "version": version, "hash": hash, "file": file})
            .to_string();
    q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, 'deploy', $3)")
        .bind(&at)
        .bind(actor)
        .bind(&detail)
        .execute(&mut *tx)
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
pub(crate) fn deployment<R: SqlRow>(r: &R) -> Result<Deployment, sqlx::Error> {
    Ok(Deployment {
        flow_id: r.try_get("flow_id")?,
        version: r.try_get("version")?,
        hash: r.try_get("hash")?,
        file: r.try_get("file")?,
        deployed_at: r.try_get("deployed_at")?,
        deployed_by: r.try_get("deployed_by")?,
    })
}

#[async_trait]
impl<D: Dialect> AuditLog for D {
    async fn audit_page(&self, f: &AuditFilter, limit: i64) -> Result<Vec<Value>, StoreError> {
        // Only the filters given, each a numbered placeholder; values are bound.
        // `%`, `_` and `\` in the case number stand for themselves.
        let case = f.case.as_ref().map(|c| {
            let c = c
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("%\"case\":\"{c}\"%")
        });
        let mut conds: Vec<String> = Vec::new();
        let mut texts: Vec<&str> = Vec::new();
        for (cond, v) in [
            ("actor = ", f.actor.as_deref()),
            ("action = ", f.action.as_deref()),
            ("detail LIKE ", case.as_deref()),
            ("at >= ", f.from.as_deref()),
            ("at < ", f.to.as_deref()),
        ] {
            if let Some(v) = v {
                texts.push(v);
                let escape = if cond.starts_with("detail") {
                    " ESCAPE '\\'"
                } else {
                    ""
                };
                conds.push(format!("{cond}${}{escape}", texts.len()));
            }
        }
        let mut n = texts.len();
        if f.before.is_some() {
            n += 1;
            conds.push(format!("id < ${n}"));
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT id, at, actor, action, detail FROM audit_log {filter} ORDER BY id DESC LIMIT ${}",
            n + 1
        );
        let mut query = q(sqlx::AssertSqlSafe(sql));
        for v in texts {
            query = query.bind(v);
        }
        if let Some(b) = f.before {
            query = query.bind(b);
        }
        let rows = query
            .bind(limit)
            .fetch_all(&mut *self.reads().acquire().await?)
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
        q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(fmt_ts(now))
            .bind(actor)
            .bind(action)
            .bind(detail)
            .execute(&mut *self.writes().acquire().await?)
            .await?;
        Ok(())
    }
}

//! Commands, timers and case reads for both SQL dialects.

use super::sql::{Dialect, SqlRow, q};
use super::{CaseRow, CaseStore, ExecError, Outcome, Request, StoreError, Table, TaskRow, corrupt};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Event, Time};
use async_trait::async_trait;

#[async_trait]
impl<D: Dialect> CaseStore for D {
    async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        self.run_command(req, flows, cal, now).await
    }

    async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        self.fire_due(now, flows, cal, limit).await
    }

    async fn case(&self, case_no: &str) -> Result<Option<CaseState>, StoreError> {
        let row = q("SELECT snapshot FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_optional(&mut *self.reads().acquire().await?)
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
        let rows = q("SELECT body FROM event_log WHERE case_no = $1 ORDER BY seq")
            .bind(case_no)
            .fetch_all(&mut *self.reads().acquire().await?)
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

    async fn events_after(
        &self,
        case_no: &str,
        after: u64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        // Each row holds one command's events (`seq` to `last_seq`); a page
        // of `limit` events needs at most `limit` rows.
        let rows = q(
            "SELECT seq, body FROM event_log WHERE case_no = $1 AND last_seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(case_no)
        .bind(after as i64)
        .bind(limit.max(0))
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            let body: String = r.try_get("body")?;
            let batch: Vec<Event> = serde_json::from_str(&body)
                .map_err(|e| corrupt(format!("events of {case_no}"), e))?;
            for (i, e) in batch.into_iter().enumerate() {
                if seq as u64 + i as u64 > after {
                    out.push(e);
                }
            }
        }
        out.truncate(limit.max(0) as usize);
        Ok(out)
    }

    async fn cases(
        &self,
        status: Option<&str>,
        flow_id: Option<&str>,
        scope: Option<&super::CaseScope>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let mut sql = String::from(
            "SELECT case_no, flow_id, flow_version, status, version, updated_at FROM cases
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR flow_id = $2)",
        );
        let mut n = 2;
        let mut list = |count: usize| {
            let ps: Vec<String> = (0..count).map(|i| format!("${}", n + 1 + i)).collect();
            n += count;
            ps.join(", ")
        };
        if let Some(sc) = scope {
            let flows = list(sc.flows.len());
            let departments = list(sc.departments.len());
            sql.push_str(&format!(
                " AND ({} OR {})",
                if flows.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!("flow_id IN ({flows})")
                },
                if departments.is_empty() {
                    "1 = 0".to_string()
                } else {
                    format!(
                        "case_no IN (SELECT case_no FROM tasks WHERE department IN ({departments}))"
                    )
                }
            ));
        }
        sql.push_str(&format!(
            " ORDER BY case_no DESC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        let mut query = q(sqlx::AssertSqlSafe(sql)).bind(status).bind(flow_id);
        if let Some(sc) = scope {
            for v in sc.flows.iter().chain(&sc.departments) {
                query = query.bind(v.as_str());
            }
        }
        let rows = query
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self.reads().acquire().await?)
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
        let rows = q(
            "SELECT case_no, task_id, step, name, department, role, opened_at, due, flow_id FROM tasks
             WHERE ($1 IS NULL OR department = $1) AND ($2 IS NULL OR role IS NULL OR role = $2)
             ORDER BY opened_at, case_no, task_id LIMIT $3 OFFSET $4",
        )
        .bind(department)
        .bind(role)
        .bind(limit)
        .bind(offset)
        .fetch_all(&mut *self.reads().acquire().await?)
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

    async fn open_cases(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let rows = q(
            "SELECT case_no FROM cases WHERE status NOT IN ('completed', 'terminated', 'withdrawn') AND case_no > $1 ORDER BY case_no LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(r.try_get("case_no")?);
        }
        Ok(out)
    }

    async fn next_timer(&self) -> Result<Option<String>, StoreError> {
        let row = q("SELECT MIN(due) AS due FROM case_timers")
            .fetch_one(&mut *self.reads().acquire().await?)
            .await?;
        Ok(row.try_get("due")?)
    }

    async fn count(&self, table: Table) -> Result<i64, StoreError> {
        Ok(q(table.sql())
            .fetch_one(&mut *self.reads().acquire().await?)
            .await?
            .try_get(0)?)
    }

    /// A page of unfinished cases with their snapshots, after `after` in
    /// case-number order (the supervision scan reads the store this way).
    async fn open_snapshots(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = q(
            "SELECT case_no, snapshot FROM cases WHERE case_no > $1 AND status NOT IN ('completed', 'terminated', 'withdrawn') ORDER BY case_no LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push((row.try_get("case_no")?, row.try_get("snapshot")?));
        }
        Ok(out)
    }

    /// Service cases registered in [from, to) (timestamps `YYYY-MM-DDTHH:MM:SS`),
    /// at most `limit`, leaving out supervision orders and complaints.
    async fn cases_registered(
        &self,
        from: &str,
        to: &str,
        limit: i64,
    ) -> Result<Vec<crate::core::CaseState>, StoreError> {
        let rows = q(
            "SELECT snapshot FROM cases WHERE created_at >= $1 AND created_at < $2 AND flow_id <> $3 AND flow_id <> $4 ORDER BY case_no LIMIT $5",
        )
        .bind(from)
        .bind(to)
        .bind(crate::supervision::ORDER_FLOW)
        .bind(crate::supervision::COMPLAINT_FLOW)
        .bind(limit)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let snap: String = row.try_get("snapshot")?;
            out.push(
                serde_json::from_str(&snap).map_err(|e| StoreError::Corrupt {
                    what: "case snapshot".into(),
                    message: e.to_string(),
                })?,
            );
        }
        Ok(out)
    }
}

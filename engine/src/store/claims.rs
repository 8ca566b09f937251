//! Task claims (认领): a member of the task's department takes an open task,
//! so the work list shows who is on it and nobody else completes it by
//! mistake. One claim per task (the task id, unique within its case; a step
//! opened again is a new task), until its holder releases it.

use crate::core::Time;
use crate::store::cards::audit;
use crate::store::sql::{Dialect, SqlRow, q};
use crate::store::{ClaimStore, StoreError, fmt_ts};
use async_trait::async_trait;
use serde::Serialize;
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claim {
    pub case_no: String,
    pub task_id: i64,
    pub login: String,
    pub name: String,
    pub claimed_at: String,
}

/// A `Claim` from a row of `task_claims`.
macro_rules! read_claim {
    ($row:expr) => {
        Claim {
            case_no: $row.try_get("case_no")?,
            task_id: $row.try_get("task_id")?,
            login: $row.try_get("login")?,
            name: $row.try_get("name")?,
            claimed_at: $row.try_get("claimed_at")?,
        }
    };
}

#[async_trait]
impl<D: Dialect> ClaimStore for D {
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
    ) -> Result<Option<Claim>, StoreError> {
        let stamp = fmt_ts(now);
        // Before the claim can commit (SQLite's writer reads claims only of
        // cases it knows to have some).
        self.before_claim(case_no);
        let mut tx = self.begin().await?;
        q(D::LOCK_CASE)
            .bind(case_no)
            .fetch_optional(&mut *tx)
            .await?;
        let snapshot: Option<String> = q("SELECT snapshot FROM cases WHERE case_no = $1")
            .bind(case_no)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("snapshot"))
            .transpose()?;
        let open = snapshot
            .and_then(|s| serde_json::from_str::<crate::core::CaseState>(&s).ok())
            .is_some_and(|s| s.tasks.values().any(|t| i64::from(t.id) == task_id));
        if !open {
            let _ = tx.rollback().await;
            return Ok(None);
        }
        let made = q(
            "INSERT INTO task_claims (case_no, task_id, login, name, claimed_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (case_no, task_id) DO NOTHING",
        )
        .bind(case_no)
        .bind(task_id)
        .bind(login)
        .bind(name)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if made {
            audit(
                &mut *tx,
                &stamp,
                login,
                "task.claim",
                json!({"case": case_no, "task": task_id}).to_string(),
            )
            .await?;
        }
        let row = q(
            "SELECT case_no, task_id, login, name, claimed_at FROM task_claims WHERE case_no = $1 AND task_id = $2",
        )
        .bind(case_no)
        .bind(task_id)
        .fetch_one(&mut *tx)
        .await?;
        let claim = read_claim!(row);
        tx.commit().await?;
        Ok(Some(claim))
    }

    /// Releases a claim; false when there was none to release.
    async fn release_task(
        &self,
        case_no: &str,
        task_id: i64,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let gone = q("DELETE FROM task_claims WHERE case_no = $1 AND task_id = $2")
            .bind(case_no)
            .bind(task_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            == 1;
        if gone {
            audit(
                &mut *tx,
                &stamp,
                actor,
                "task.release",
                json!({"case": case_no, "task": task_id}).to_string(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    /// The claims on the tasks of these cases.
    async fn claims(&self, case_nos: &[String]) -> Result<Vec<Claim>, StoreError> {
        if case_nos.is_empty() {
            return Ok(Vec::new());
        }
        let marks: Vec<String> = (1..=case_nos.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT case_no, task_id, login, name, claimed_at FROM task_claims WHERE case_no IN ({}) ORDER BY case_no, task_id",
            marks.join(", ")
        );
        // Only numbered placeholders are formatted in; the values are bound.
        let mut q = q(sqlx::AssertSqlSafe(sql.clone()));
        for c in case_nos {
            q = q.bind(c);
        }
        let rows = q.fetch_all(&mut *self.reads().acquire().await?).await?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(read_claim!(row));
        }
        Ok(out)
    }
}

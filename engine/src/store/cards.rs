//! Why this file is long: the SQL of cards, ratings, adjustments, the
//! notification outbox and the staff figures, written once for both SQL
//! backends, with the pure card sync (`plan_sync`) they share with memory.
//!
//! Stored supervision cards (预警 / 黄牌 / 红牌) and their life, ratings
//! (服务评价), and the figures the statistics and the `staff.*` facts read.
//!
//! A card is keyed by (rule, case, subject). Its states:
//!
//! ```text
//! pending (预警 only) ──► issued (黄牌/红牌) ──► ordered (督办单 sent) ──► closed
//!    │                                                                  ▲
//!    └──► cancelled (the condition ended before a card was issued)       │ condition ended
//! issued / ordered ──► revoked (a successful appeal 申诉)
//! pending / issued / ordered ──► verified (a supervisor checked and closed it: 核实关闭)
//! ```
//!
//! A revoked card keeps its (rule, case, subject) quiet at its level and
//! below; only a higher level raises a new card. Appeals move through
//! `appeal.state`: pending → revoked | rejected | escalated.
//!
//! This module holds the card types and the [`CardStore`] of both SQL
//! dialects (the in-memory one is in `memory.rs`).
//!

use crate::core::Time;
use crate::store::sql::{Conn, Dialect, SqlRow, q};
use crate::store::{CardStore, StoreError, fmt_ts};
use crate::supervision::{Card, CardChange, Verdict};
use async_trait::async_trait;
use govflow_dsl::rule::Level;
use serde::Deserialize;
use serde_json::{Value, json};

/// The card states that still follow the rules' verdicts.
pub const OPEN_STATES: &[&str] = &["pending", "issued", "ordered"];

/// Filters for `Store::alarms`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AlarmFilter {
    pub class: Option<String>,
    pub level: Option<String>,
    /// A state, or `open` for pending, issued and ordered.
    pub state: Option<String>,
    pub department: Option<String>,
    pub case_no: Option<String>,
    pub rule: Option<String>,
}

/// One stored card, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Alarm {
    pub id: i64,
    pub rule: String,
    pub name: String,
    pub class: String,
    pub subtype: String,
    pub case_no: String,
    pub subject: String,
    pub department: String,
    pub level: String,
    pub state: String,
    pub appeal: Option<Value>,
    pub order_case: Option<String>,
    pub issued_at: String,
    pub updated_at: String,
    /// (instant, what happened), oldest first.
    pub history: Vec<(String, String)>,
}

/// Why a transition did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    #[error("no card {0}")]
    NotFound(i64),
    #[error("card {id}: {error}")]
    Card {
        id: i64,
        error: crate::core::card::CardError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for AlarmError {
    fn from(e: sqlx::Error) -> Self {
        AlarmError::Store(e.into())
    }
}

/// Writes one notification inside the transaction `tx`.
async fn insert_notification<C: Conn + ?Sized>(
    tx: &mut C,
    n: &Notification,
    stamp: &str,
) -> Result<(), sqlx::Error> {
    q("INSERT INTO notifications (at, recipient, case_no, rule, level, change, message) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(stamp)
        .bind(&n.recipient)
        .bind(&n.case_no)
        .bind(&n.rule)
        .bind(&n.level)
        .bind(&n.change)
        .bind(&n.message)
        .execute(tx)
        .await?;
    Ok(())
}

/// Writes one audit row inside the transaction `tx`.
pub(crate) async fn audit<C: Conn + ?Sized>(
    tx: &mut C,
    stamp: &str,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<(), sqlx::Error> {
    q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
        .bind(stamp)
        .bind(actor)
        .bind(action)
        .bind(detail)
        .execute(tx)
        .await?;
    Ok(())
}

/// A `Rating` from a row of `ratings`.
macro_rules! read_rating {
    ($row:expr) => {
        Rating {
            case_no: $row.try_get("case_no")?,
            account: $row.try_get("account")?,
            score: $row.try_get("score")?,
            reason: $row.try_get("reason")?,
            department: $row.try_get("department")?,
            flow_id: $row.try_get("flow_id")?,
            at: Some($row.try_get("at")?),
        }
    };
}

pub(crate) fn history(text: &str) -> Vec<(String, String)> {
    text.split(";\n")
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(' ') {
            // "YYYY-MM-DD HH:MM:SS what": the stamp has one space inside.
            Some(_) if l.len() > 19 && l.is_char_boundary(19) => {
                (l[..19].to_string(), l[19..].trim().to_string())
            }
            _ => (String::new(), l.to_string()),
        })
        .collect()
}

pub(crate) fn line(stamp: &str, what: &str) -> String {
    format!("{stamp} {};\n", what.replace(";\n", "; "))
}

macro_rules! read_alarm {
    ($r:expr) => {{
        let r = $r;
        AlarmRow {
            id: r.try_get("id")?,
            rule: r.try_get("rule")?,
            name: r.try_get("name")?,
            class: r.try_get("class")?,
            subtype: r.try_get("subtype")?,
            case_no: r.try_get("case_no")?,
            subject: r.try_get("subject")?,
            department: r.try_get("department")?,
            level: r.try_get("level")?,
            state: r.try_get("state")?,
            appeal: r.try_get("appeal")?,
            order_case: r.try_get("order_case")?,
            issued_at: r.try_get("issued_at")?,
            updated_at: r.try_get("updated_at")?,
            history: r.try_get("history")?,
        }
        .to_alarm()
    }};
}

/// A card as stored: the columns of `alarms`.
#[derive(Clone, Debug)]
pub(crate) struct AlarmRow {
    pub id: i64,
    pub rule: String,
    pub name: String,
    pub class: String,
    pub subtype: String,
    pub case_no: String,
    pub subject: String,
    pub department: String,
    pub level: String,
    pub state: String,
    pub appeal: Option<String>,
    pub order_case: Option<String>,
    pub issued_at: String,
    pub updated_at: String,
    /// `line`s, oldest first.
    pub history: String,
}

impl AlarmRow {
    pub(crate) fn to_alarm(&self) -> Alarm {
        Alarm {
            id: self.id,
            rule: self.rule.clone(),
            name: self.name.clone(),
            class: self.class.clone(),
            subtype: self.subtype.clone(),
            case_no: self.case_no.clone(),
            subject: self.subject.clone(),
            department: self.department.clone(),
            level: self.level.clone(),
            state: self.state.clone(),
            appeal: self
                .appeal
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok()),
            order_case: self.order_case.clone(),
            issued_at: self.issued_at.clone(),
            updated_at: self.updated_at.clone(),
            history: history(&self.history),
        }
    }

    /// Whether the card counts as a confirmed anomaly (a yellow or red card
    /// that got a supervision order or whose appeal was rejected).
    pub(crate) fn confirmed_anomaly(&self, since: &str) -> bool {
        matches!(self.level.as_str(), "yellow" | "red")
            && self.state != "revoked"
            && self.issued_at.as_str() >= since
            && (self.order_case.is_some()
                || self
                    .appeal
                    .as_deref()
                    .is_some_and(|a| a.contains("\"state\":\"rejected\"")))
    }
}

/// The card machine's view of a stored card.
pub(crate) fn card_of(
    id: i64,
    state: &str,
    level: &str,
    appeal: Option<&str>,
    order_case: Option<String>,
) -> Result<crate::core::card::Card, AlarmError> {
    use crate::core::card::{Card, CardState};
    let unreadable = |what: &str| {
        AlarmError::Store(StoreError::Corrupt {
            what: format!("card {id}"),
            message: what.to_string(),
        })
    };
    Ok(Card {
        state: CardState::parse(state).ok_or_else(|| unreadable(state))?,
        level: Level::parse(level).ok_or_else(|| unreadable(level))?,
        appeal: appeal.and_then(|a| serde_json::from_str(a).ok()),
        order_case,
    })
}

/// The department a substantiated complaint (a finished `complaint` case
/// whose result is 投诉属实) counts against.
pub(crate) fn complaint_addressee(state: &crate::core::CaseState) -> Option<String> {
    let substantiated = state
        .outcome
        .as_ref()
        .is_some_and(|o| o.result == "投诉属实");
    if !substantiated {
        return None;
    }
    state
        .data
        .get("addressee")
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

const COLUMNS: &str = "id, rule, name, class, subtype, case_no, subject, department, level, state, appeal, order_case, issued_at, updated_at, history";

#[async_trait]
impl<D: Dialect> CardStore for D {
    async fn sync_many(
        &self,
        items: &[(&str, &[Verdict])],
        only: Option<&std::collections::HashSet<String>>,
        now: Time,
        notes: &crate::store::NoteFn<'_>,
    ) -> Result<Vec<(String, Vec<CardChange>)>, StoreError> {
        let mut tx = self.begin().await?;
        let mut all = Vec::with_capacity(items.len());
        let stamp = fmt_ts(now);
        for (case_no, verdicts) in items {
            let (case_no, verdicts) = (*case_no, *verdicts);
            // Several nodes may supervise the same case: take the case row first.
            q(D::LOCK_CASE).bind(case_no).execute(&mut *tx).await?;
            let rows = q(
                "SELECT id, rule, subject, level, state FROM alarms WHERE case_no = $1 AND state IN ('pending', 'issued', 'ordered', 'revoked', 'verified') ORDER BY id",
            )
            .bind(case_no)
            .fetch_all(&mut *tx)
            .await?;
            let mut stored = Vec::with_capacity(rows.len());
            for r in &rows {
                stored.push(StoredCard {
                    id: r.try_get("id")?,
                    rule: r.try_get("rule")?,
                    subject: r.try_get("subject")?,
                    level: r.try_get("level")?,
                    state: r.try_get("state")?,
                });
            }
            let (writes, changes) = plan_sync(&stored, verdicts, only, now);
            for w in writes {
                match w {
                    CardWrite::Issue {
                        verdict,
                        level,
                        state,
                    } => {
                        let v = &verdicts[verdict];
                        q("INSERT INTO alarms (rule, name, class, subtype, case_no, subject, department, level, state, issued_at, updated_at, history) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                            .bind(&*v.rule)
                            .bind(&*v.name)
                            .bind(&*v.class)
                            .bind(&*v.subtype)
                            .bind(case_no)
                            .bind(&*v.subject)
                            .bind(&v.department)
                            .bind(level.as_str())
                            .bind(state)
                            .bind(&stamp)
                            .bind(&stamp)
                            .bind(line(&stamp, &format!("issued {}", level.as_str())))
                            .execute(&mut *tx)
                            .await?;
                    }
                    CardWrite::Move {
                        id,
                        level,
                        state,
                        note,
                    } => {
                        q("UPDATE alarms SET level = $1, state = $2, updated_at = $3, history = history || $4 WHERE id = $5")
                            .bind(level.as_str())
                            .bind(state)
                            .bind(&stamp)
                            .bind(line(&stamp, &note))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    CardWrite::End { id, state, note } => {
                        q("UPDATE alarms SET state = $1, updated_at = $2, history = history || $3 WHERE id = $4")
                            .bind(state)
                            .bind(&stamp)
                            .bind(line(&stamp, note))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            for n in notes(case_no, &changes) {
                insert_notification(&mut *tx, &n, &stamp).await?;
            }
            all.push((case_no.to_string(), changes));
        }
        tx.commit().await?;
        Ok(all)
    }

    async fn save_figures(&self, figures: &str, now: Time) -> Result<i64, StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let version: i64 = q(
            "INSERT INTO supervision_figures (id, version, figures, computed_at) VALUES (1, 1, $1, $2) ON CONFLICT (id) DO UPDATE SET version = supervision_figures.version + 1, figures = excluded.figures, computed_at = excluded.computed_at RETURNING version",
        )
        .bind(figures)
        .bind(&stamp)
        .fetch_one(&mut *tx)
        .await?
        .try_get("version")?;
        tx.commit().await?;
        Ok(version)
    }

    async fn figures_version(&self) -> Result<i64, StoreError> {
        Ok(q("SELECT version FROM supervision_figures WHERE id = 1")
            .fetch_optional(&mut *self.writes().acquire().await?)
            .await?
            .map(|r| r.try_get::<i64, _>("version"))
            .transpose()?
            .unwrap_or(0))
    }

    async fn figures(&self) -> Result<Option<(i64, String)>, StoreError> {
        let row = q("SELECT version, figures FROM supervision_figures WHERE id = 1")
            .fetch_optional(&mut *self.writes().acquire().await?)
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("version")?, r.try_get("figures")?))),
            None => Ok(None),
        }
    }

    async fn awaiting_orders(
        &self,
        tops: &[(String, String)],
        after: i64,
        limit: i64,
    ) -> Result<Vec<Alarm>, StoreError> {
        if tops.is_empty() {
            return Ok(Vec::new());
        }
        // Only numbered placeholders are formatted in; the values are bound.
        let pairs: Vec<String> = (0..tops.len())
            .map(|i| format!("(rule = ${} AND level = ${})", 2 * i + 1, 2 * i + 2))
            .collect();
        let sql = format!(
            "SELECT {COLUMNS} FROM alarms WHERE state = 'issued' AND order_case IS NULL AND ({}) AND id > ${} ORDER BY id LIMIT ${}",
            pairs.join(" OR "),
            2 * tops.len() + 1,
            2 * tops.len() + 2
        );
        let mut query = q(sqlx::AssertSqlSafe(sql));
        for (rule, level) in tops {
            query = query.bind(rule).bind(level);
        }
        let rows = query
            .bind(after)
            .bind(limit)
            .fetch_all(&mut *self.writes().acquire().await?)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(read_alarm!(row));
        }
        Ok(out)
    }

    /// The cards that follow the rules (open or revoked) of the cases in
    /// [first, last], by case.
    async fn known_cards(
        &self,
        first: &str,
        last: &str,
    ) -> Result<std::collections::HashMap<String, Vec<Known>>, StoreError> {
        let rows = q(
            "SELECT case_no, rule, subject, level, state FROM alarms WHERE case_no >= $1 AND case_no <= $2 AND state IN ('pending', 'issued', 'ordered', 'revoked', 'verified')",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out: std::collections::HashMap<String, Vec<Known>> =
            std::collections::HashMap::new();
        for row in &rows {
            let level: String = row.try_get("level")?;
            let Some(level) = Level::parse(&level) else {
                continue;
            };
            out.entry(row.try_get("case_no")?).or_default().push(Known {
                rule: row.try_get("rule")?,
                subject: row.try_get("subject")?,
                level,
                revoked: matches!(
                    row.try_get::<String, _>("state")?.as_str(),
                    "revoked" | "verified"
                ),
            });
        }
        Ok(out)
    }

    /// Cards, newest first.
    async fn alarms(
        &self,
        f: &AlarmFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Alarm>, StoreError> {
        // Only the filters given, so that SQLite uses `alarms_case` or
        // `alarms_department` (an `$n IS NULL OR …` form reads every card).
        let mut conds: Vec<String> = Vec::new();
        let mut binds: Vec<&str> = Vec::new();
        for (col, v) in [
            ("class", &f.class),
            ("level", &f.level),
            ("department", &f.department),
            ("case_no", &f.case_no),
            ("rule", &f.rule),
        ] {
            if let Some(v) = v {
                binds.push(v);
                conds.push(format!("{col} = ${}", binds.len()));
            }
        }
        match f.state.as_deref() {
            Some("open") => conds.push("state IN ('pending', 'issued', 'ordered')".into()),
            Some(st) => {
                binds.push(st);
                conds.push(format!("state = ${}", binds.len()));
            }
            None => {}
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM alarms {filter} ORDER BY id DESC LIMIT ${} OFFSET ${}",
            binds.len() + 1,
            binds.len() + 2
        );
        let mut q = q(sqlx::AssertSqlSafe(sql.clone()));
        for b in &binds {
            q = q.bind(*b);
        }
        let rows = q
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *self.reads().acquire().await?)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            out.push(read_alarm!(row));
        }
        Ok(out)
    }

    async fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        // The write pool: a card read right after it changed must show the change.
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE id = $1");
        match q(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *self.writes().acquire().await?)
            .await?
        {
            Some(row) => Ok(Some(read_alarm!(&row))),
            None => Ok(None),
        }
    }

    /// Runs a person's command on one card (acknowledge, appeal, decide an
    /// appeal, verify, record an order): the pure `core::card::decide` on
    /// the card as it is inside the transaction, then its event written with
    /// a history line and an audit row.
    async fn transition_alarm(
        &self,
        id: i64,
        command: &crate::core::card::CardCommand,
        actor: &str,
        now: Time,
    ) -> Result<Alarm, AlarmError> {
        use crate::core::card::{CardState, decide};
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        // The case row first, as the rules' own card updates lock it
        // (`sync_cards`): two people's actions on a card, or an action
        // and the rules, are decided one after the other.
        let case_no: String = q("SELECT case_no FROM alarms WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(AlarmError::NotFound(id))?
            .try_get("case_no")?;
        q(D::LOCK_CASE)
            .bind(&case_no)
            .fetch_optional(&mut *tx)
            .await?;
        let row = q("SELECT state, level, appeal, order_case FROM alarms WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(AlarmError::NotFound(id))?;
        let state: String = row.try_get("state")?;
        let level: String = row.try_get("level")?;
        let appeal: Option<String> = row.try_get("appeal")?;
        let card = card_of(
            id,
            &state,
            &level,
            appeal.as_deref(),
            row.try_get("order_case")?,
        )?;
        let event = decide(&card, command, now).map_err(|error| AlarmError::Card { id, error })?;
        q(
            "UPDATE alarms SET state = COALESCE($1, state), level = COALESCE($2, level),
               appeal = COALESCE($3, appeal), order_case = COALESCE($4, order_case),
               updated_at = $5, history = history || $6 WHERE id = $7",
        )
        .bind(event.state.map(CardState::as_str))
        .bind(event.level.map(Level::as_str))
        .bind(event.appeal.as_ref().map(Value::to_string))
        .bind(event.order_case.as_deref())
        .bind(&stamp)
        .bind(line(&stamp, &event.note))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        audit(
            &mut *tx,
            &stamp,
            actor,
            "alarm",
            json!({"alarm": id, "note": event.note, "state": event.state.map(CardState::as_str)})
                .to_string(),
        )
        .await?;
        tx.commit().await?;
        self.alarm(id).await?.ok_or(AlarmError::NotFound(id))
    }

    /// Adds a line to a card's history (an order that finished, say).
    async fn note_alarm(&self, id: i64, what: &str, now: Time) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        q("UPDATE alarms SET updated_at = $1, history = history || $2 WHERE id = $3")
            .bind(&stamp)
            .bind(line(&stamp, what))
            .bind(id)
            .execute(&mut *self.writes().acquire().await?)
            .await?;
        Ok(())
    }

    /// Records a rating (1–5) of a case by an account; one per case and account.
    /// Returns false when the account has already rated the case.
    async fn rate(&self, r: &Rating, now: Time) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let done = q(
            "INSERT INTO ratings (case_no, account, score, reason, department, flow_id, at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (case_no, account) DO NOTHING",
        )
        .bind(&r.case_no)
        .bind(&r.account)
        .bind(r.score)
        .bind(r.reason.as_deref())
        .bind(&r.department)
        .bind(&r.flow_id)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if done {
            audit(
                &mut *tx,
                &stamp,
                &r.account,
                "rate",
                json!({"case": r.case_no, "score": r.score}).to_string(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Ratings, newest first (optionally of one case).
    async fn ratings(&self, case_no: Option<&str>, limit: i64) -> Result<Vec<Rating>, StoreError> {
        let rows = q(
            "SELECT case_no, account, score, reason, department, flow_id, at FROM ratings WHERE ($1 IS NULL OR case_no = $1) ORDER BY at DESC LIMIT $2",
        )
        .bind(case_no)
        .bind(limit)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(read_rating!(row));
        }
        Ok(out)
    }

    /// Cards issued since `from`, and ratings given since `from`.
    async fn cards_and_ratings_since(
        &self,
        from: &str,
    ) -> Result<(Vec<Alarm>, Vec<Rating>), StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE issued_at >= $1 ORDER BY id");
        let rows = q(sqlx::AssertSqlSafe(sql))
            .bind(from)
            .fetch_all(&mut *self.reads().acquire().await?)
            .await?;
        let mut cards = Vec::with_capacity(rows.len());
        for row in &rows {
            cards.push(read_alarm!(row));
        }
        let rows = q(
            "SELECT case_no, account, score, reason, department, flow_id, at FROM ratings WHERE at >= $1",
        )
        .bind(from)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        let mut ratings = Vec::new();
        for row in &rows {
            ratings.push(read_rating!(row));
        }
        Ok((cards, ratings))
    }

    /// Records a manual efficiency adjustment (加减分) for a department and period.
    async fn add_adjustment(&self, a: &Adjustment, now: Time) -> Result<i64, StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let row = q(
            "INSERT INTO efficiency_adjustments (department, period, delta, reason, by_whom, state, at, history) VALUES ($1, $2, $3, $4, $5, 'applied', $6, $7) RETURNING id",
        )
        .bind(&a.department)
        .bind(&a.period)
        .bind(a.delta)
        .bind(&a.reason)
        .bind(&a.by)
        .bind(&stamp)
        .bind(line(&stamp, &format!("applied {:+} by {}", a.delta, a.by)))
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        q("INSERT INTO audit_log (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(&stamp)
            .bind(&a.by)
            .bind("efficiency.adjust")
            .bind(
                json!({"id": id, "department": a.department, "period": a.period, "delta": a.delta})
                    .to_string(),
            )
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Records notifications (one row each), in one transaction.
    async fn notify(&self, rows: &[Notification], now: Time) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        for n in rows {
            insert_notification(&mut *tx, n, &stamp).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Notifications, newest first, optionally for one recipient.
    async fn notifications(
        &self,
        recipient: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let by = if recipient.is_some() {
            "WHERE recipient = $3"
        } else {
            "WHERE $3 IS NULL"
        };
        let sql = format!(
            "SELECT id, at, recipient, case_no, rule, level, change, message FROM notifications {by} ORDER BY id DESC LIMIT $1 OFFSET $2"
        );
        let rows = q(sqlx::AssertSqlSafe(sql.clone()))
            .bind(limit)
            .bind(offset)
            .bind(recipient)
            .fetch_all(&mut *self.reads().acquire().await?)
            .await?;
        let mut out = Vec::new();
        for row in &rows {
            out.push(json!({
                "id": row.try_get::<i64, _>("id")?,
                "at": row.try_get::<String, _>("at")?,
                "recipient": row.try_get::<String, _>("recipient")?,
                "case_no": row.try_get::<String, _>("case_no")?,
                "rule": row.try_get::<String, _>("rule")?,
                "level": row.try_get::<String, _>("level")?,
                "change": row.try_get::<String, _>("change")?,
                "message": row.try_get::<String, _>("message")?,
            }));
        }
        Ok(out)
    }

    /// The department an adjustment concerns.
    async fn adjustments_of(&self, id: i64) -> Result<Option<String>, StoreError> {
        let row = q("SELECT department FROM efficiency_adjustments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.writes().acquire().await?)
            .await?;
        match row {
            Some(r) => Ok(Some(r.try_get("department")?)),
            None => Ok(None),
        }
    }

    /// Adjustments of a period (all departments).
    async fn adjustments(&self, period: &str) -> Result<Vec<Value>, StoreError> {
        let rows = q(
            "SELECT id, department, period, delta, reason, by_whom, state, at, history FROM efficiency_adjustments WHERE period = $1 ORDER BY id",
        )
        .bind(period)
        .fetch_all(&mut *self.writes().acquire().await?)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(json!({
                "id": r.try_get::<i64, _>("id")?,
                "department": r.try_get::<String, _>("department")?,
                "period": r.try_get::<String, _>("period")?,
                "delta": r.try_get::<f64, _>("delta")?,
                "reason": r.try_get::<String, _>("reason")?,
                "by": r.try_get::<String, _>("by_whom")?,
                "state": r.try_get::<String, _>("state")?,
                "at": r.try_get::<String, _>("at")?,
                "history": history(&r.try_get::<String, _>("history")?),
            }));
        }
        Ok(out)
    }

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
    ) -> Result<Option<Result<String, String>>, StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let Some(row) = q("SELECT department, state FROM efficiency_adjustments WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let state: String = row.try_get("state")?;
        if state != from {
            return Ok(Some(Err(state)));
        }
        q("UPDATE efficiency_adjustments SET state = $1, history = history || $2 WHERE id = $3")
            .bind(to)
            .bind(line(&stamp, note))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut *tx,
            &stamp,
            note,
            "efficiency.adjustment",
            json!({"id": id, "to": to}).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(row.try_get("department")?)))
    }

    /// Per department, since `since`: substantiated complaints (finished
    /// `complaint` cases whose result is 投诉属实) and confirmed anomalies
    /// (yellow/red cards that got a supervision order or whose appeal was rejected).
    async fn staff_figures(
        &self,
        since: Time,
    ) -> Result<std::collections::HashMap<String, crate::supervision::StaffFacts>, StoreError> {
        let stamp = fmt_ts(since);
        let mut out: std::collections::HashMap<String, crate::supervision::StaffFacts> =
            std::collections::HashMap::new();
        let rows = q(
            // Confirmed anomalies: cards a supervision order was issued for, or
            // whose appeal was rejected (raw automatic cards would make every
            // busy department "repeatedly anomalous" and feed on themselves).
            "SELECT department, COUNT(*) AS n FROM alarms WHERE level IN ('yellow', 'red') AND state <> 'revoked' AND issued_at >= $1
               AND (order_case IS NOT NULL OR appeal LIKE '%\"state\":\"rejected\"%') GROUP BY department",
        )
        .bind(&stamp)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        for row in &rows {
            let d: String = row.try_get("department")?;
            out.entry(d).or_default().anomalies = row.try_get("n")?;
        }
        let rows = q(
            "SELECT snapshot FROM cases WHERE flow_id = $1 AND status = 'completed' AND updated_at >= $2",
        )
        .bind(crate::supervision::COMPLAINT_FLOW)
        .bind(&stamp)
        .fetch_all(&mut *self.reads().acquire().await?)
        .await?;
        for row in &rows {
            let snap: String = row.try_get("snapshot")?;
            let Ok(state) = serde_json::from_str::<crate::core::CaseState>(&snap) else {
                continue;
            };
            if let Some(d) = complaint_addressee(&state) {
                out.entry(d).or_default().complaints += 1;
            }
        }
        Ok(out)
    }
}

/// A stored card that still follows the rules, as the sync reads it.
#[derive(Clone, Debug)]
pub(crate) struct StoredCard {
    pub id: i64,
    pub rule: String,
    pub subject: String,
    pub level: String,
    pub state: String,
}

/// A write the sync decided, for a backend to carry out.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum CardWrite {
    /// A new card for `verdicts[verdict]`, with the history line `issued LEVEL`.
    Issue {
        verdict: usize,
        level: Level,
        state: &'static str,
    },
    /// A card's level (and state) changes.
    Move {
        id: i64,
        level: Level,
        state: String,
        note: String,
    },
    /// A card ends: a warning is cancelled, a card closed.
    End {
        id: i64,
        state: &'static str,
        note: &'static str,
    },
}

/// Decides how the stored cards of one case follow the rules' verdicts at
/// `now` — the logic every backend shares. An open card wins over a revoked
/// one with the same (rule, subject); a revoked (or verified) card keeps its
/// subject quiet at its level and below; a card whose subject is gone (a
/// step that closed) resolves, unless `only` leaves its rule out.
pub(crate) fn plan_sync(
    stored: &[StoredCard],
    verdicts: &[Verdict],
    only: Option<&std::collections::HashSet<String>>,
    now: Time,
) -> (Vec<CardWrite>, Vec<CardChange>) {
    // (rule, subject) -> (id, level, state); an open card wins over a revoked one.
    let mut known: std::collections::BTreeMap<(String, String), (i64, Level, String)> =
        std::collections::BTreeMap::new();
    for r in stored {
        // A card a supervisor closed after checking it keeps its
        // subject quiet like a revoked one.
        let state = if r.state == "verified" {
            "revoked".to_string()
        } else {
            r.state.clone()
        };
        let Some(l) = Level::parse(&r.level) else {
            continue;
        };
        let key = (r.rule.clone(), r.subject.clone());
        let keep_old = known
            .get(&key)
            .is_some_and(|(_, _, s)| s != "revoked" && state == "revoked");
        if !keep_old {
            known.insert(key, (r.id, l, state));
        }
    }
    let end = |id: i64, state: &str| {
        if state == "pending" {
            CardWrite::End {
                id,
                state: "cancelled",
                note: "cancelled: the condition ended",
            }
        } else {
            CardWrite::End {
                id,
                state: "closed",
                note: "resolved",
            }
        }
    };
    let mut writes = Vec::new();
    let mut changes = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (n, v) in verdicts.iter().enumerate() {
        let key = (v.rule.to_string(), v.subject.to_string());
        seen.insert(key.clone());
        if v.error.is_some() {
            continue;
        }
        let current = known.get(&key);
        match (current, v.level) {
            // Quiet after a successful appeal, unless the level rises above it.
            (Some((_, revoked, state)), Some(level)) if state == "revoked" && level <= *revoked => {
            }
            (None, Some(level)) | (Some(_), Some(level))
                if current.is_none_or(|(_, _, s)| s == "revoked") =>
            {
                let state = if level == Level::Notice {
                    "pending"
                } else {
                    "issued"
                };
                writes.push(CardWrite::Issue {
                    verdict: n,
                    level,
                    state,
                });
                changes.push(CardChange::Issued {
                    card: Card {
                        rule: v.rule.to_string(),
                        name: v.name.to_string(),
                        class: v.class.to_string(),
                        subject: v.subject.to_string(),
                        level,
                        issued_at: now,
                        history: vec![(now, format!("issued {}", level.as_str()))],
                    },
                });
            }
            (Some((id, from, state)), Some(to)) if *from != to => {
                // A warning becomes a card once it reaches yellow; a card stays issued.
                let new_state = if state == "pending" && to > Level::Notice {
                    "issued"
                } else {
                    state.as_str()
                };
                writes.push(CardWrite::Move {
                    id: *id,
                    level: to,
                    state: new_state.to_string(),
                    note: format!("{} -> {}", from.as_str(), to.as_str()),
                });
                changes.push(if to > *from {
                    CardChange::Escalated {
                        rule: v.rule.to_string(),
                        subject: v.subject.to_string(),
                        from: *from,
                        to,
                    }
                } else {
                    CardChange::Lowered {
                        rule: v.rule.to_string(),
                        subject: v.subject.to_string(),
                        from: *from,
                        to,
                    }
                });
            }
            (Some((id, level, state)), None) if state != "revoked" => {
                writes.push(end(*id, state));
                changes.push(CardChange::Resolved {
                    rule: v.rule.to_string(),
                    subject: v.subject.to_string(),
                    level: *level,
                });
            }
            _ => {}
        }
    }
    // Cards whose subject is gone (a step that closed) resolve too.
    for ((rule, subject), (id, level, state)) in &known {
        if state != "revoked"
            && !seen.contains(&(rule.clone(), subject.clone()))
            && only.is_none_or(|o| o.contains(rule))
        {
            writes.push(end(*id, state));
            changes.push(CardChange::Resolved {
                rule: rule.clone(),
                subject: subject.clone(),
                level: *level,
            });
        }
    }
    (writes, changes)
}

/// A stored card as the scan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    pub rule: String,
    pub subject: String,
    pub level: Level,
    pub revoked: bool,
}

/// Whether `sync_cards` would change anything for these verdicts: the scan
/// writes only for cases where it would (the write re-reads under the lock).
pub fn needs_sync(
    known: &[Known],
    verdicts: &[Verdict],
    only: Option<&std::collections::HashSet<String>>,
) -> bool {
    let find = |rule: &str, subject: &str, revoked: bool| {
        known
            .iter()
            .find(|k| k.rule == rule && k.subject == subject && k.revoked == revoked)
    };
    for v in verdicts {
        if v.error.is_some() {
            continue;
        }
        match (find(&v.rule, &v.subject, false), v.level) {
            (Some(k), Some(l)) if k.level != l => return true,
            (Some(_), None) => return true,
            (None, Some(l)) => {
                let quiet = find(&v.rule, &v.subject, true).is_some_and(|r| l <= r.level);
                if !quiet {
                    return true;
                }
            }
            _ => {}
        }
    }
    // An open card whose subject is gone resolves.
    known.iter().any(|k| {
        !k.revoked
            && only.is_none_or(|o| o.contains(&k.rule))
            && !verdicts
                .iter()
                .any(|v| *v.rule == *k.rule && *v.subject == *k.subject)
    })
}

/// A rating (服务评价): 5 非常满意 … 1 非常不满意; 1 and 2 need a reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Rating {
    pub case_no: String,
    pub account: String,
    pub score: i64,
    #[serde(default)]
    pub reason: Option<String>,
    /// The department rated: the one that accepted the case.
    pub department: String,
    pub flow_id: String,
    #[serde(default)]
    pub at: Option<String>,
}

/// A manual efficiency adjustment.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
pub struct Adjustment {
    pub department: String,
    /// `YYYY-MM` or `YYYY-Qn`.
    pub period: String,
    pub delta: f64,
    pub reason: String,
    #[serde(default)]
    pub by: String,
}

/// One message to one recipient about a card.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Notification {
    /// A rule's `notify` entry (`supervisor`, `discipline` …) or a department id.
    pub recipient: String,
    pub case_no: String,
    pub rule: String,
    pub level: String,
    /// `issued` or `escalated`.
    pub change: String,
    pub message: String,
}

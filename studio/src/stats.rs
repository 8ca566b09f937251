//! Statistics (per department or item and period) and efficiency assessment.
//!
//! `GET /api/stats?by=department|item&from=YYYY-MM-DD&to=YYYY-MM-DD` reads the
//! service cases registered in the period (at most 50,000), their events, and
//! the cards and ratings given since the period began.
//! `GET /api/efficiency?period=YYYY-MM` grades every department by the
//! indicators of rules/efficiency.yaml plus its manual adjustments.

use crate::dto::{AdjustBody, AdjustmentAction};
use crate::error::ApiError;
use crate::extract::{bad_body, bad_query};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{Datelike, NaiveDate};
use govflow_engine::core::Actor;
use govflow_engine::store::cards::Adjustment;
use govflow_engine::supervision::stats::{Input, Row, by_department, by_item};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The most cases one statistics request reads.
const MAX_CASES: i64 = 50_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsQuery {
    by: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn date(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`{name}` must be a date YYYY-MM-DD, not `{v}`"),
        )
    })
}

/// [from, to] as days; the default is the current month.
fn period(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let today = state.now().date();
    let first = today.with_day(1).unwrap_or(today);
    let from = from.map(|v| date("from", v)).transpose()?.unwrap_or(first);
    let to = to.map(|v| date("to", v)).transpose()?.unwrap_or(today);
    if to < from {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`to` ({to}) is before `from` ({from})"),
        ));
    }
    Ok((from, to))
}

/// `YYYY-MM` → the month's first and last day.
fn month(p: &str) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "`period` 应为月份 YYYY-MM，而不是 `{p}` / `period` must be a month YYYY-MM, not `{p}`"
            ),
        )
    };
    let first = NaiveDate::parse_from_str(&format!("{p}-01"), "%Y-%m-%d").map_err(|_| bad())?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(bad)?;
    Ok((first, next.pred_opt().unwrap_or(first)))
}

async fn rows(
    state: &AppState,
    from: NaiveDate,
    to: NaiveDate,
    by: &str,
) -> Result<(Vec<Row>, usize), ApiError> {
    let engine = state.engine();
    let start = format!("{from}T00:00:00");
    let end = format!("{}T00:00:00", to.succ_opt().unwrap_or(to));
    let cases = engine
        .store
        .cases_registered(&start, &end, MAX_CASES)
        .await?;
    let mut with_events = Vec::with_capacity(cases.len());
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for c in cases {
        let events = if by == "department" {
            engine.store.events(&c.case_no).await?
        } else {
            Vec::new()
        };
        let flow = engine.flows.get(&c.flow_id, c.flow_version);
        let immediate = flow
            .as_ref()
            .is_some_and(|f| f.flow.item.kind == govflow_dsl::ir::CaseKind::Immediate);
        if let Some(f) = &flow {
            for d in &f.flow.departments {
                names.entry(d.id.clone()).or_insert_with(|| d.name.clone());
            }
        }
        with_events.push((c, events, immediate));
    }
    let (cards, ratings) = engine.store.cards_and_ratings_since(&start).await?;
    let nos: std::collections::HashSet<&str> =
        with_events.iter().map(|c| c.0.case_no.as_str()).collect();
    let cards: Vec<_> = cards
        .into_iter()
        .filter(|a| nos.contains(a.case_no.as_str()))
        .collect();
    let ratings: Vec<_> = ratings
        .into_iter()
        .filter(|r| nos.contains(r.case_no.as_str()))
        .collect();
    let input = Input {
        cases: &with_events,
        alarms: &cards,
        ratings: &ratings,
        names: &names,
        calendar: &engine.calendar(),
        now: state.now(),
    };
    let n = with_events.len();
    Ok((
        if by == "department" {
            by_department(&input)
        } else {
            by_item(&input)
        },
        n,
    ))
}

/// Statistics per department or item over a period.
pub(crate) async fn stats(
    State(state): State<AppState>,
    q: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let by = q.by.as_deref().unwrap_or("department");
    if !matches!(by, "department" | "item") {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`by` is department or item, not `{by}`"),
        ));
    }
    let (from, to) = period(&state, q.from.as_deref(), q.to.as_deref())?;
    let (rows, n) = rows(&state, from, to, by).await?;
    Ok(Json(json!({
        "by": by, "from": from, "to": to, "cases_read": n,
        "truncated": n as i64 >= MAX_CASES, "rows": rows,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EfficiencyQuery {
    period: Option<String>,
}

/// Efficiency grades per department for a month.
pub(crate) async fn efficiency(
    State(state): State<AppState>,
    q: Result<Query<EfficiencyQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let Some(scheme) = state.efficiency() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "efficiency.no_scheme",
            "no efficiency scheme: add efficiency.yaml beside the rules (--rules)",
        ));
    };
    let period = q
        .period
        .unwrap_or_else(|| state.now().format("%Y-%m").to_string());
    let (from, to) = month(&period)?;
    let (rows, n) = rows(&state, from, to, "department").await?;
    let engine = state.engine();
    let staff = engine
        .store
        .staff_figures(from.and_hms_opt(0, 0, 0).unwrap_or_default())
        .await?;
    let adjustments = engine.store.adjustments(&period).await?;
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for a in &adjustments {
        if a["state"] != "withdrawn"
            && let (Some(d), Some(v)) = (a["department"].as_str(), a["delta"].as_f64())
        {
            *sums.entry(d.to_string()).or_default() += v;
        }
    }
    let assessments: Vec<_> = rows
        .iter()
        .map(|r| {
            let complaints = staff.get(&r.key).map_or(0, |s| s.complaints.max(0) as u64);
            scheme.assess(r, complaints, sums.get(&r.key).copied().unwrap_or(0.0))
        })
        .collect();
    Ok(Json(json!({
        "period": period, "cases_read": n,
        "indicators": scheme.indicators,
        "grades": scheme.grades,
        "departments": assessments,
        "adjustments": adjustments,
    })))
}

/// A supervisor adds a manual adjustment (加减分), at most ±20 points.
pub(crate) async fn adjust(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    body: Result<Json<AdjustBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let mut by_actor: Actor = b.by.into();
    crate::supervision::supervisor(&principal, &mut by_actor)?;
    month(&b.period)?;
    if !crate::supervision::known_department(&state, &b.department) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "efficiency.unknown_department",
            format!("no deployed flow declares a department `{}`", b.department),
        ));
    }
    if !b.delta.is_finite() || b.delta.abs() > 20.0 || b.reason.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "efficiency.adjustment",
            "an adjustment is between -20 and +20 points and needs a reason",
        ));
    }
    let a = Adjustment {
        department: b.department,
        period: b.period,
        delta: b.delta,
        reason: b.reason,
        by: by_actor.name,
    };
    let id = state.engine().store.add_adjustment(&a, state.now()).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "adjustment": a})),
    ))
}

/// The department appeals an adjustment; a supervisor upholds or withdraws it.
pub(crate) async fn adjustment_action(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path((id, action)): Path<(String, String)>,
    body: Result<Json<AdjustmentAction>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let by_actor: Actor = b.by.into();
    let id = crate::extract::id_param(&id)?;
    let now = state.now();
    let store = &state.engine().store;
    let (from, to, note) = match (action.as_str(), b.outcome.as_deref()) {
        ("appeal", _) => {
            let reason = b
                .reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "appeal.no_reason",
                        "an appeal needs a reason",
                    )
                })?;
            (
                "applied",
                "appealed",
                format!("appealed by {}: {reason}", by_actor.name),
            )
        }
        ("decide", Some(o @ ("uphold" | "withdraw"))) => {
            let mut by = by_actor.clone();
            crate::supervision::supervisor(&principal, &mut by)?;
            let to = if o == "uphold" {
                "applied"
            } else {
                "withdrawn"
            };
            (
                "appealed",
                to,
                format!(
                    "{o} by {}: {}",
                    by_actor.name,
                    b.reason.clone().unwrap_or_default()
                ),
            )
        }
        ("decide", _) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "appeal.unknown_outcome",
                "`outcome` is uphold or withdraw",
            ));
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no action `{action}`; use appeal or decide"),
            ));
        }
    };
    if action == "appeal" {
        let mut by = by_actor.clone();
        principal.check_actor(&mut by)?;
        // Only the department concerned appeals.
        let list = store.adjustments_of(id).await?;
        if let Some(dept) = list
            && by_actor.department.as_deref() != Some(dept.as_str())
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "efficiency.wrong_department",
                format!("adjustment {id} concerns {dept}"),
            ));
        }
    }
    match store.move_adjustment(id, from, to, &note, now).await? {
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "efficiency.not_found",
            format!("no adjustment {id}"),
        )),
        Some(Err(state)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "efficiency.wrong_state",
            format!("adjustment {id} is {state}; this needs one that is {from}"),
        )),
        Some(Ok(dept)) => Ok(Json(json!({"id": id, "department": dept, "state": to}))),
    }
}

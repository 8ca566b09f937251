//! Supervision routes: cards (list, acknowledge, appeal, decide, order),
//! supervision orders and complaints (cases of the built-in flows in
//! flows/supervision), ratings, statistics and efficiency.
//!
//! Who may act: a card's own department acknowledges and appeals it; a
//! supervisor (`by.role == "supervisor"`) decides appeals and issues orders.

use crate::auth::Roles;
use crate::cases::{load_case, run};
use crate::dto::{
    AppealBody, ByBody, CloseBody, ComplaintBody, DecideBody, OrderBody, RateBody, ReplyBody,
};
use crate::error::ApiError;
use crate::extract::{bad_body, bad_query, id_param};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use govflow_engine::core::card::{AppealOutcome, CardCommand};
use govflow_engine::core::{Actor, Command, Data};
use govflow_engine::store::cards::{Alarm, AlarmError, AlarmFilter, Rating};
use govflow_engine::supervision::{COMPLAINT_FLOW, ORDER_FLOW};
use serde::Deserialize;
use serde_json::{Value, json};

/// The loaded supervision rules, each with its last evaluation error.
pub(crate) async fn list_rules(State(state): State<AppState>) -> Json<Value> {
    let engine = state.engine();
    let errors = engine
        .rule_errors
        .lock()
        .map(|e| e.clone())
        .unwrap_or_default();
    let rules: Vec<Value> = engine
        .rules()
        .map(|b| {
            b.rules()
                .map(|r| {
                    let err = errors.get(&r.id);
                    json!({
                        "id": r.id, "name": r.name, "class": r.class, "subtype": r.subtype,
                        "scope": r.scope,
                        "levels": r.levels.iter().map(|(l, e)| json!({"level": l, "when": e.source})).collect::<Vec<_>>(),
                        "order": r.order, "notify": r.notify,
                        "last_error": err.map(|(at, case, msg)| json!({"at": at, "case": case, "message": msg})),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Json(json!({ "items": rules }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationQuery {
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// The notification outbox: who was told of which card, newest first.
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    q: Result<Query<NotificationQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let (limit, offset) = page(q.limit, q.offset)?;
    let items = state
        .engine()
        .store
        .notifications(q.to.as_deref(), limit + 1, offset)
        .await?;
    Ok(crate::extract::page_of(items, limit, offset))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AlarmQuery {
    class: Option<String>,
    level: Option<String>,
    state: Option<String>,
    department: Option<String>,
    case: Option<String>,
    rule: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// Cards (预警/黄牌/红牌), newest first, filtered by class, colour, department, state.
pub(crate) async fn list_alarms(
    State(state): State<AppState>,
    q: Result<Query<AlarmQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let (limit, offset) = page(q.limit, q.offset)?;
    one_of(
        "class",
        &q.class,
        &["timeliness", "process", "content", "fee", "integrity"],
    )?;
    one_of("level", &q.level, &["notice", "yellow", "red"])?;
    one_of(
        "state",
        &q.state,
        &[
            "open",
            "pending",
            "issued",
            "ordered",
            "closed",
            "cancelled",
            "revoked",
            "verified",
        ],
    )?;
    let filter = AlarmFilter {
        class: q.class,
        level: q.level,
        state: q.state,
        department: q.department,
        case_no: q.case,
        rule: q.rule,
    };
    let items = state
        .engine()
        .store
        .alarms(&filter, limit + 1, offset)
        .await?;
    Ok(crate::extract::page_of(items, limit, offset))
}

/// A card id from the path: a JSON 400 for anything but a number.
fn one_of(name: &str, v: &Option<String>, allowed: &[&str]) -> Result<(), ApiError> {
    match v {
        Some(x) if !allowed.contains(&x.as_str()) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`{name}` is one of {}, not `{x}`", allowed.join(", ")),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(50);
    let offset = offset.unwrap_or(0);
    if !(1..=500).contains(&limit) || offset < 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`limit` is 1–500 and `offset` 0 or more (got {limit}, {offset})"),
        ));
    }
    Ok((limit, offset))
}

/// Departments some deployed flow declares (per-case ones left out).
pub(crate) fn known_department(state: &AppState, id: &str) -> bool {
    state.flows().values().any(|f| {
        f.flow
            .flow
            .departments
            .iter()
            .any(|d| d.id == id && d.from.is_none())
    })
}

async fn card(state: &AppState, id: i64) -> Result<Alarm, ApiError> {
    state
        .engine()
        .store
        .alarm(id)
        .await?
        .ok_or_else(|| AlarmError::NotFound(id).into())
}

pub(crate) async fn get_alarm(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Alarm>, ApiError> {
    let id = id_param(&id)?;
    Ok(Json(card(&state, id).await?))
}

fn who(by: &Actor) -> String {
    match (&by.department, &by.role) {
        (Some(d), Some(r)) => format!("{} @ {d}.{r}", by.name),
        (Some(d), None) => format!("{} @ {d}", by.name),
        _ => by.name.clone(),
    }
}

fn own_department(c: &Alarm, by: &Actor) -> Result<(), ApiError> {
    if by.department.as_deref() == Some(c.department.as_str()) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "alarm.wrong_department",
            format!(
                "card {} is addressed to {}; {} cannot act on it",
                c.id,
                c.department,
                who(by)
            ),
        ))
    }
}

/// A supervisor's action: a user with the `supervisor` role (the acting
/// name becomes theirs), or the administrator's token with `by.role` set to
/// `supervisor`.
pub(crate) fn supervisor(
    principal: &crate::auth::Principal,
    by: &mut Actor,
) -> Result<(), ApiError> {
    if let crate::auth::Principal::User(u) = principal
        && (u.has("supervisor") || u.has("admin"))
    {
        by.name = u.name.clone();
        by.role = Some("supervisor".into());
        return Ok(());
    }
    if matches!(principal, crate::auth::Principal::Admin)
        && by.role.as_deref() == Some("supervisor")
    {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "alarm.not_supervisor",
            format!(
                "only a supervisor (role `supervisor`) may do this; {} is not one",
                who(by)
            ),
        ))
    }
}

/// A card action of the card's own department: the caller acts as `by`
/// (checked), and the card is that department's. The card's id and who acted.
async fn own_card(
    state: &AppState,
    principal: &crate::auth::Principal,
    id: &str,
    by: crate::dto::Actor,
) -> Result<(i64, String), ApiError> {
    let mut by: Actor = by.into();
    principal.check_actor(&mut by)?;
    let id = id_param(id)?;
    let c = card(state, id).await?;
    own_department(&c, &by)?;
    Ok((id, who(&by)))
}

/// The card's department has seen it (签收).
pub(crate) async fn acknowledge(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    body: Result<Json<ByBody>, JsonRejection>,
) -> Result<Json<Alarm>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let (id, by) = own_card(&state, &principal, &id, b.by).await?;
    let command = CardCommand::Acknowledge {
        by: by.clone(),
        note: b.note,
    };
    Ok(Json(state.engine().card_command(id, &command, &by).await?))
}

/// The card's department appeals (申诉); one appeal per card.
pub(crate) async fn appeal(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    body: Result<Json<AppealBody>, JsonRejection>,
) -> Result<Json<Alarm>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let (id, by) = own_card(&state, &principal, &id, b.by).await?;
    let command = CardCommand::Appeal {
        by: by.clone(),
        reason: b.reason,
    };
    Ok(Json(state.engine().card_command(id, &command, &by).await?))
}

/// A supervisor decides an appeal: revoke the card, reject the appeal, or
/// escalate (the card goes up a level and, at red, gets an order).
pub(crate) async fn decide(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    body: Result<Json<DecideBody>, JsonRejection>,
) -> Result<Json<Alarm>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let mut by_actor: Actor = b.by.into();
    let id = id_param(&id)?;
    supervisor(&principal, &mut by_actor)?;
    let Some(outcome) = AppealOutcome::parse(&b.outcome) else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "appeal.unknown_outcome",
            format!(
                "unknown outcome `{}`; use revoke, reject or escalate",
                b.outcome
            ),
        ));
    };
    let by = who(&by_actor);
    let command = CardCommand::DecideAppeal {
        by: by.clone(),
        outcome,
        opinion: b.opinion,
    };
    Ok(Json(state.engine().card_command(id, &command, &by).await?))
}

/// A supervisor closes a card after checking it (核实关闭): for cards whose
/// condition holds for good (a case terminated or denied). The subject stays
/// quiet at this level; a higher level raises a new card.
pub(crate) async fn close(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    body: Result<Json<CloseBody>, JsonRejection>,
) -> Result<Json<Alarm>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let mut by_actor: Actor = b.by.into();
    let id = id_param(&id)?;
    supervisor(&principal, &mut by_actor)?;
    let by = who(&by_actor);
    let command = CardCommand::Verify {
        by: by.clone(),
        opinion: b.opinion,
    };
    Ok(Json(state.engine().card_command(id, &command, &by).await?))
}

/// A supervisor issues a supervision order (督办单) for a card.
pub(crate) async fn order(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(id): Path<String>,
    body: Result<Json<OrderBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Alarm>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let mut by_actor: Actor = b.by.into();
    let id = id_param(&id)?;
    supervisor(&principal, &mut by_actor)?;
    let c = card(&state, id).await?;
    let to = b.to.clone().unwrap_or_else(|| c.department.clone());
    let out = state
        .engine()
        .issue_order(&c, &to, b.reason.as_deref(), &who(&by_actor))
        .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    status: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

async fn list_flow_cases(
    state: &AppState,
    principal: &crate::auth::Principal,
    flow: &str,
    q: ListQuery,
) -> Result<Json<Value>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset)?;
    one_of(
        "status",
        &q.status,
        &[
            "applied",
            "correcting",
            "accepted",
            "suspended",
            "rectifying",
            "completed",
            "terminated",
            "withdrawn",
        ],
    )?;
    let rows = state
        .engine()
        .store
        .cases(
            q.status.as_deref(),
            Some(flow),
            crate::privacy::scope(principal, &state.engine().flows).as_ref(),
            limit + 1,
            offset,
        )
        .await?;
    let mut items = Vec::new();
    for r in rows {
        let s = load_case(state, &r.case_no).await?;
        items.push(json!({
            "case_no": s.case_no,
            "status": s.status.as_str(),
            "addressee": s.data.get("addressee"),
            // An order's origin; a complaint's case, when it names one.
            "origin": s.data.get("origin").cloned().or_else(|| s.data.get("case").map(|c| json!({"case": c}))),
            "reason": s.data.get("reason").or_else(|| s.data.get("content")),
            "submitted_at": s.submitted_at,
            "open_steps": s.tasks.values().map(|t| json!({"step": t.step, "department": t.department, "due_date": t.deadline.as_ref().and_then(|d| d.due_date)})).collect::<Vec<_>>(),
            "result": s.outcome.as_ref().map(|o| o.result.clone()),
        }));
    }
    let mut out = crate::extract::page_of(items, limit, offset);
    crate::privacy::mask(&mut out.0);
    Ok(out)
}

/// Supervision orders (cases of the built-in order flow).
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    list_flow_cases(&state, &principal, ORDER_FLOW, q).await
}

pub(crate) async fn list_complaints(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    list_flow_cases(&state, &principal, COMPLAINT_FLOW, q).await
}

/// The addressed department replies to an order (completes its reply step).
pub(crate) async fn reply_order(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
    body: Result<Json<ReplyBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let by_actor: Actor = b.by.into();
    let s = load_case(&state, &no).await?;
    if s.flow_id != ORDER_FLOW {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "order.not_found",
            format!("case {no} is not a supervision order"),
        ));
    }
    let cmd = Command::Complete {
        step: "reply".into(),
        action: "pass".into(),
        by: by_actor,
        opinion: Some(b.reply),
        data: Data::new(),
        missing: Vec::new(),
        defer: Vec::new(),
        defer_within: None,
        document_no: None,
        fixes: Default::default(),
        on_site: None,
    };
    run(&state, &principal, &headers, Some(no), None, cmd).await
}

/// Files a complaint (投诉): a case of the built-in complaint flow.
pub(crate) async fn file_complaint(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    body: Result<Json<ComplaintBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    if b.content.trim().is_empty() || b.addressee.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "complaint.empty",
            "a complaint needs `content` and the `addressee` department",
        ));
    }
    if !known_department(&state, &b.addressee) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "complaint.unknown_department",
            format!(
                "no deployed flow declares a department `{}`; name the department by its id in the flows",
                b.addressee
            ),
        ));
    }
    if let Some(c) = &b.case {
        load_case(&state, c).await.map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "complaint.unknown_case",
                format!("no case {c}"),
            )
        })?;
    }
    let mut data = Data::new();
    data.insert("addressee".into(), b.addressee.into());
    data.insert("content".into(), b.content.into());
    if let Some(c) = b.case {
        data.insert("case".into(), c.into());
    }
    if let Some(s) = b.staff {
        data.insert("staff".into(), s.into());
    }
    let cmd = Command::Start {
        case_no: String::new(),
        applicant: b.complainant.into(),
        agent: None,
        source: Some(b.source.unwrap_or_else(|| "网上投诉".into())),
        project_code: None,
        data,
        materials: Vec::new(),
    };
    run(
        &state,
        &principal,
        &headers,
        None,
        Some(COMPLAINT_FLOW.into()),
        cmd,
    )
    .await
}

/// Rates a finished case: 1–5, a reason required for 1 and 2; one rating
/// per case and account. Ratings of 1–2 show on the supervisors' list.
pub(crate) async fn rate(
    State(state): State<AppState>,
    Path(no): Path<String>,
    body: Result<Json<RateBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    if !(1..=5).contains(&b.score) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rating.score",
            format!("score {} is outside 1–5", b.score),
        ));
    }
    let reason = b.reason.filter(|r| !r.trim().is_empty());
    if b.score <= 2 && reason.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rating.reason_required",
            "a rating of 1 or 2 needs a reason",
        ));
    }
    if b.account.trim().is_empty() || b.account.len() > 100 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rating.account",
            "the account must be 1–100 characters",
        ));
    }
    let s = load_case(&state, &no).await?;
    if !s.status.is_finished() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rating.case_open",
            format!(
                "case {no} is {}; rate it once it is finished",
                s.status.as_str()
            ),
        ));
    }
    // The department rated: the one that accepted the case (the window).
    let engine = state.engine();
    let department = engine
        .flows
        .get(&s.flow_id, s.flow_version)
        .and_then(|f| {
            let acc = f.acceptance_step()?.to_string();
            f.flow
                .all_steps()
                .into_iter()
                .find_map(|st| match &st.kind {
                    govflow_dsl::ir::StepKind::Task { by, .. } if st.id == acc => {
                        Some(by.department.clone())
                    }
                    _ => None,
                })
        })
        .unwrap_or_default();
    let r = Rating {
        case_no: no.clone(),
        account: b.account,
        score: b.score,
        reason,
        department,
        flow_id: s.flow_id.clone(),
        at: None,
    };
    if !engine.store.rate(&r, state.now()).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "rating.exists",
            format!("account {} has already rated case {no}", r.account),
        ));
    }
    Ok((StatusCode::CREATED, Json(json!(r))))
}

pub(crate) async fn case_ratings(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
) -> Result<Json<Value>, ApiError> {
    crate::cases::readable_case(&state, &principal, &no).await?;
    let items = state.engine().store.ratings(Some(&no), 100).await?;
    Ok(Json(json!({ "items": items })))
}

#[cfg(test)]
mod tests {
    use crate::testkit::{ADMIN, CLERK, app, call};
    use axum::http::StatusCode;

    #[tokio::test]
    async fn cards_are_listed_and_only_supervisors_decide() {
        let (app, _) = app("cards").await;
        let (status, v) = call(&app, "GET", "/api/alarms", Some(ADMIN), None).await;
        assert_eq!(
            (status, v["items"].as_array().map(Vec::len)),
            (StatusCode::OK, Some(0)),
            "{v}"
        );
        let decide = serde_json::json!({"by": {"name": "王芳"}, "outcome": "revoke"});
        let (status, v) = call(
            &app,
            "POST",
            "/api/alarms/1/decide",
            Some(CLERK),
            Some(decide),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        let decide = serde_json::json!({"by": {"name": "监察员", "role": "supervisor"}, "outcome": "revoke"});
        let (status, v) = call(
            &app,
            "POST",
            "/api/alarms/1/decide",
            Some(ADMIN),
            Some(decide),
        )
        .await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("alarm.not_found")),
            "{v}"
        );
    }
}

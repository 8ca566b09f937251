//! Case and task routes: start a case, read it (status, open tasks, deadlines
//! with working days left, visits), its events and exchange records; work
//! lists; every case command. Writes accept an `Idempotency-Key` header: a
//! retried request with the same key is applied once and answered the same.

use crate::dto::{CommandBody, CompleteBody, StartBody};
use crate::error::ApiError;
use crate::extract::{bad_body, bad_query};
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use govflow_engine::core::{Actor, CaseState, Command, Deadline};
use govflow_engine::store::Request;
use serde::Deserialize;
use serde_json::{Value, json};

pub(crate) fn idem_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(s) if !s.is_empty() && s.len() <= 200 => Ok(Some(s.to_string())),
            _ => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Idempotency-Key must be 1-200 visible ASCII characters",
            )),
        },
    }
}

/// A command's `by` must be someone the caller may act as (staff: their own
/// departments); its name becomes the caller's.
fn acting_as(principal: &crate::auth::Principal, command: Command) -> Result<Command, ApiError> {
    if matches!(principal, crate::auth::Principal::Admin) {
        return Ok(command);
    }
    let mut v = serde_json::to_value(&command).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid command: {e}"),
        )
    })?;
    if let Some(by) = v.get_mut("by") {
        let mut actor: Actor = serde_json::from_value(by.clone()).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("invalid `by`: {e}"),
            )
        })?;
        principal.check_actor(&mut actor)?;
        *by = serde_json::to_value(&actor).unwrap_or(Value::Null);
    }
    serde_json::from_value(v).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid command: {e}"),
        )
    })
}

pub(crate) async fn run(
    state: &AppState,
    principal: &crate::auth::Principal,
    headers: &HeaderMap,
    case_no: Option<String>,
    flow_id: Option<String>,
    command: Command,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let command = acting_as(principal, command)?;
    // Who may send this kind of command to this case (docs/engine.md,
    // "Who may do what"): the case is read only when the rule needs it.
    let who = crate::authz::who_may(&command);
    let case = match (&case_no, crate::authz::needs_case(who)) {
        (Some(no), true) => Some(load_case(state, no).await?),
        _ => None,
    };
    let flow = match (&command, &flow_id) {
        (Command::Start { .. }, Some(f)) => state.engine().flows.latest(f),
        _ => None,
    };
    crate::authz::authorize(principal, &command, case.as_ref(), flow.as_deref())?;
    let req = Request {
        case_no,
        flow_id,
        command,
        // A client's key lives in its own namespace: it can never be one
        // of the engine's own keys (`timer:…`, `order:…`), nor another
        // caller's.
        idempotency_key: idem_key(headers)?.map(|k| format!("client:{}:{k}", principal.login())),
        actor: principal.login().to_string(),
        // Administrators may still act on a claimed task.
        override_claims: principal.has_role("admin"),
    };
    let created = matches!(req.command, Command::Start { .. });
    let out = state.engine().execute(&req).await?;
    let status = if created && !out.replayed {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "case_no": out.case_no,
            "version": out.version,
            "replayed": out.replayed,
            "events": out.events,
        })),
    ))
}

pub(crate) async fn start_case(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    body: Result<Json<StartBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let flow = b.flow.clone();
    run(
        &state,
        &principal,
        &headers,
        None,
        Some(flow),
        b.into_command(),
    )
    .await
}

/// The case view: the snapshot plus deadlines with working days left now.
fn case_view(state: &AppState, s: &CaseState) -> Value {
    let cal = state.engine().calendar();
    let today = state.now().date();
    let clock = |d: &Deadline| -> Value {
        let left = d.due_date.and_then(|due| cal.diff(today, due).ok());
        json!({
            "limit": d.limit.to_string(),
            "start": d.start,
            "due_date": d.due_date,
            "due": d.due,
            "extended": d.extended,
            "suspended": d.suspended,
            "working_days_left": left,
            "provisional": d.provisional,
            "beyond_calendar": d.due.is_none(),
        })
    };
    let tasks: Vec<Value> = s
        .tasks
        .values()
        .map(|t| {
            json!({
                "id": t.id,
                "step": t.step,
                "name": t.name,
                "department": t.department,
                "role": t.role,
                "opened_at": t.opened_at,
                "deadline": t.deadline.as_ref().map(clock),
                "risk_point": t.risk_point,
            })
        })
        .collect();
    json!({
        "case_no": s.case_no,
        "flow": s.flow_id,
        "flow_version": s.flow_version,
        "item_name": s.item_name,
        "status": s.status.as_str(),
        "version": s.version,
        "applicant": s.applicant,
        "submitted_at": s.submitted_at,
        "accepted_at": s.accepted_at,
        "deadlines": {
            "statutory": s.statutory.as_ref().map(clock),
            "promised": s.promised.as_ref().map(clock),
            "issue": s.issue.as_ref().map(clock),
            "receipt": s.receipt_window.as_ref().filter(|_| s.accepted_at.is_none()).map(clock),
        },
        "received_at": s.received_at,
        "deemed_accepted": s.deemed_accepted,
        "decided_at": s.decided_at,
        "tasks": tasks,
        // The durable timers the case holds now (deadlines not yet passed, waits).
        "timers": s.timers().iter().map(|t| json!({"key": t.key, "due": t.due})).collect::<Vec<_>>(),
        "visits": s.visits,
        "returns": s.returns,
        "corrections": s.corrections,
        "correction": s.correction.as_ref().map(|(step, missing)| json!({"reopens": step, "missing": missing})),
        "deferred": s.deferred,
        "specials": s.specials,
        "suspended": s.suspended.is_some(),
        "waits": s.waits,
        "subflows": s.subflows,
        "materials": s.materials,
        "data": s.data,
        "outcome": s.outcome,
        "finished_at": s.finished_at,
        "termination_reason": s.termination_reason,
    })
}

pub(crate) async fn load_case(state: &AppState, no: &str) -> Result<CaseState, ApiError> {
    if !govflow_engine::core::ids::is_case_number(no) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "case.not_found",
            format!(
                "`{no}` is not a case number: 办件编号 have 22 characters (division code, date, sequence, check character)"
            ),
        ));
    }
    state.engine().store.case(no).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "case.not_found",
            format!("no case {no}"),
        )
    })
}

/// The case, when the caller may read it (`privacy.rs`).
pub(crate) async fn readable_case(
    state: &AppState,
    principal: &crate::auth::Principal,
    no: &str,
) -> Result<CaseState, ApiError> {
    let s = load_case(state, no).await?;
    let flow = state.engine().flows.get(&s.flow_id, s.flow_version);
    crate::privacy::check_read(principal, &s, flow.as_deref())?;
    Ok(s)
}

pub(crate) async fn get_case(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = readable_case(&state, &principal, &no).await?;
    let mut v = case_view(&state, &s);
    crate::privacy::mask(&mut v);
    let claims = state
        .engine()
        .store
        .claims(std::slice::from_ref(&no))
        .await?;
    if let Some(tasks) = v["tasks"].as_array_mut() {
        for t in tasks {
            t["claimed_by"] = json!(
                claims
                    .iter()
                    .find(|c| Some(c.task_id) == t["id"].as_i64())
                    .map(|c| json!({"login": c.login, "name": c.name, "at": c.claimed_at}))
            );
        }
    }
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// How many events were read already (the page starts after them).
    #[serde(default)]
    after: u64,
    /// At most this many (500 by default, 2,000 at the most).
    limit: Option<i64>,
}

/// A page of the case's event log, oldest first: `total` events in all,
/// `next_after` to ask for the next page while `more`.
pub(crate) async fn case_events(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let limit = q.limit.unwrap_or(500).clamp(1, 2000);
    let s = readable_case(&state, &principal, &no).await?;
    let events = state
        .engine()
        .store
        .events_after(&no, q.after, limit)
        .await?;
    let next = q.after + events.len() as u64;
    let more = next < s.version;
    let mut items = serde_json::to_value(&events).unwrap_or(Value::Null);
    crate::privacy::mask(&mut items);
    Ok(Json(json!({
        "items": items, "total": s.version, "after": q.after, "limit": limit,
        "more": more, "next_after": more.then_some(next),
    })))
}

pub(crate) async fn case_exchange(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let s = readable_case(&state, &principal, &no).await?;
    let events = state.engine().store.events(&no).await?;
    let flow = state.engine().flows.get(&s.flow_id, s.flow_version);
    let mut v = govflow_engine::app::export::exchange_records(
        &events,
        flow.as_ref().map(|f| f.flow.as_ref()),
    );
    crate::privacy::mask(&mut v);
    Ok(Json(v))
}

/// `POST /cases/{no}/reveal`: the applicant's and agent's personal data
/// unmasked, for those who need it, with the reason recorded in the audit log.
pub(crate) async fn reveal(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
    body: Result<Json<crate::dto::RevealBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    let reason = b.reason.trim();
    let len = reason.chars().count();
    if !(2..=200).contains(&len) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reveal.reason",
            "查看完整个人信息须说明理由（2 至 200 字）/ say why you need the personal data (2 to 200 characters)",
        ));
    }
    let s = readable_case(&state, &principal, &no).await?;
    crate::privacy::check_reveal(&principal, &s)?;
    let now = state.engine().now();
    let detail = json!({"case": no, "reason": reason}).to_string();
    state
        .engine()
        .store
        .record_audit(principal.login(), "reveal_personal_data", &detail, now)
        .await?;
    Ok(Json(json!({
        "case_no": s.case_no,
        "applicant": s.applicant,
        "agent": s.agent,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    flow: Option<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
    #[serde(default)]
    offset: Option<i64>,
}

impl ListQuery {
    fn page(&self) -> (i64, i64) {
        (
            self.limit.unwrap_or(50).clamp(1, 500),
            self.offset.unwrap_or(0).max(0),
        )
    }
}

pub(crate) async fn list_cases(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let (limit, offset) = q.page();
    let scope = crate::privacy::scope(&principal, &state.engine().flows);
    let items = state
        .engine()
        .store
        .cases(
            q.status.as_deref(),
            q.flow.as_deref(),
            scope.as_ref(),
            limit + 1,
            offset,
        )
        .await?;
    Ok(crate::extract::page_of(items, limit, offset))
}

pub(crate) async fn list_tasks(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let (limit, offset) = q.page();
    // Staff see their own departments' tasks only; supervisors (no
    // department of their own) see every department's.
    let departments: Vec<Option<String>> = match principal.departments() {
        None => vec![q.department.clone()],
        Some(mine) => match &q.department {
            Some(d) if mine.contains(d) => vec![Some(d.clone())],
            Some(d) => {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "auth.wrong_department",
                    format!(
                        "{} works for {}; not for {d}",
                        principal.login(),
                        mine.join(", ")
                    ),
                ));
            }
            None if mine.is_empty() && principal.has_role("supervisor") => vec![None],
            None => mine.into_iter().map(Some).collect(),
        },
    };
    let multi = departments.len() > 1;
    let mut items = Vec::new();
    for d in &departments {
        items.extend(
            state
                .engine()
                .store
                .tasks(
                    d.as_deref(),
                    q.role.as_deref(),
                    if multi {
                        limit.saturating_add(offset).saturating_add(1)
                    } else {
                        limit + 1
                    },
                    if multi { 0 } else { offset },
                )
                .await?,
        );
    }
    if multi {
        items.sort_by(|a, b| a.due.cmp(&b.due).then(a.case_no.cmp(&b.case_no)));
    }
    // Working days left on each task's own limit, as on the case page.
    let cal = state.engine().calendar();
    let today = state.now().date();
    let items: Vec<_> = items
        .into_iter()
        .skip(if multi { offset as usize } else { 0 })
        .take(limit as usize + 1)
        .collect();
    let mut nos: Vec<String> = items.iter().map(|t| t.case_no.clone()).collect();
    nos.sort();
    nos.dedup();
    let claims = state.engine().store.claims(&nos).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|t| {
            let due_date = t
                .due
                .as_deref()
                .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%dT%H:%M:%S").ok())
                .map(|d| (d - chrono::Duration::seconds(1)).date());
            let left = due_date.and_then(|d| cal.diff(today, d).ok());
            let mut v = json!(t);
            v["due_date"] = json!(due_date);
            v["working_days_left"] = json!(left);
            v["provisional"] = json!(due_date.is_some_and(|d| d > cal.covered_until()));
            v["claimed_by"] = json!(
                claims
                    .iter()
                    .find(|c| c.case_no == t.case_no && c.task_id == t.task_id)
                    .map(|c| json!({"login": c.login, "name": c.name, "at": c.claimed_at}))
            );
            v
        })
        .collect();
    Ok(crate::extract::page_of(items, limit, offset))
}

pub(crate) async fn case_command(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(raw) = body.map_err(bad_body)?;
    let elsewhere = match raw.get("command").and_then(Value::as_str) {
        Some("start") => Some("办件从 POST /api/cases 开始 / a case starts at POST /api/cases"),
        Some("complete") => Some(
            "环节办理用 POST /api/cases/{no}/tasks/{step}/complete / a task is completed at POST /api/cases/{no}/tasks/{step}/complete",
        ),
        Some("fire") => Some("计时器自动触发 / timers fire by themselves"),
        Some("recalendar") => {
            Some("部署日历时自动重算期限 / deadlines are recomputed when a calendar is deployed")
        }
        Some("subcase_clock") => {
            Some("阶段计时自动跟随事项办件 / stage clocks follow their item cases by themselves")
        }
        _ => None,
    };
    if let Some(why) = elsewhere {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", why));
    }
    let cmd: CommandBody = serde_json::from_value(raw).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {e}"),
        )
    })?;
    run(&state, &principal, &headers, Some(no), None, cmd.into()).await
}

pub(crate) async fn complete_task(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path((no, step)): Path<(String, String)>,
    body: Result<Json<CompleteBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(bad_body)?;
    run(
        &state,
        &principal,
        &headers,
        Some(no),
        None,
        b.into_command(step),
    )
    .await
}

/// A command route whose body is one of the wire types (`dto`): special
/// procedures, materials, termination, withdrawal.
pub(crate) async fn typed_command<B>(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path(no): Path<String>,
    body: Result<Json<B>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError>
where
    B: serde::de::DeserializeOwned + Into<Command> + Send,
{
    let Json(b) = body.map_err(bad_body)?;
    run(&state, &principal, &headers, Some(no), None, b.into()).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CalQuery {
    date: Option<String>,
    n: Option<u32>,
    unit: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

fn date_param(name: &str, v: &Option<String>) -> Result<chrono::NaiveDate, ApiError> {
    let s = v.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("missing `{name}` (YYYY-MM-DD)"),
        )
    })?;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`{name}`: `{s}` is not YYYY-MM-DD"),
        )
    })
}

fn cal_err(e: govflow_engine::calendar::CalendarError) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "calendar.out_of_range",
        e.to_string(),
    )
}

pub(crate) async fn calendar_add(
    State(state): State<AppState>,
    q: Result<Query<CalQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let date = date_param("date", &q.date)?;
    let n = q.n.unwrap_or(0);
    state.engine().refresh_calendar().await;
    let cal = state.engine().calendar();
    let due = match q.unit.as_deref().unwrap_or("workdays") {
        "workdays" | "workday" => cal.add_workdays(date, n),
        "days" | "day" => cal.add_days(date, n),
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("unknown unit `{other}`; use workdays or days"),
            ));
        }
    }
    .map_err(cal_err)?;
    let provisional = cal.provisional_between(date, due);
    Ok(Json(
        json!({"date": date, "n": n, "due": due, "provisional": provisional}),
    ))
}

pub(crate) async fn calendar_diff(
    State(state): State<AppState>,
    q: Result<Query<CalQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = q.map_err(bad_query)?;
    let from = date_param("from", &q.from)?;
    let to = date_param("to", &q.to)?;
    state.engine().refresh_calendar().await;
    let cal = state.engine().calendar();
    let n = cal.diff(from, to).map_err(cal_err)?;
    let provisional = cal.provisional_between(from, to);
    Ok(Json(
        json!({"from": from, "to": to, "working_days": n, "provisional": provisional}),
    ))
}

/// The open task at `step` of the case (409 `task.not_open` when none is).
async fn task_at(
    state: &AppState,
    no: &str,
    step: &str,
) -> Result<govflow_engine::core::Task, ApiError> {
    let s = load_case(state, no).await?;
    s.tasks
        .values()
        .find(|t| t.step == step)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "task.not_open",
                format!("case {no} has no open task at `{step}`"),
            )
        })
}

/// The open task at `step` of the case, checked against the caller's
/// departments (as `by` is for a command).
async fn open_task(
    state: &AppState,
    principal: &crate::auth::Principal,
    no: &str,
    step: &str,
) -> Result<(govflow_engine::core::Task, Actor), ApiError> {
    let task = task_at(state, no, step).await?;
    let mut actor = Actor {
        name: principal.login().to_string(),
        department: Some(task.department.clone()),
        role: task.role.clone(),
    };
    principal.check_actor(&mut actor)?;
    Ok((task, actor))
}

/// 认领: takes the open task at `step` for the caller (a member of its
/// department). 409 `task.claimed` when someone else holds it.
pub(crate) async fn claim_task(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path((no, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (task, actor) = open_task(&state, &principal, &no, &step).await?;
    let c = state
        .engine()
        .store
        .claim_task(
            &no,
            i64::from(task.id),
            principal.login(),
            &actor.name,
            state.now(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "task.not_open",
                format!("case {no} has no open task at `{step}`"),
            )
        })?;
    if c.login != principal.login() {
        return Err(crate::error::claimed(&c));
    }
    Ok(Json(json!(c)))
}

/// Releases the claim on the open task at `step`: its holder, or a
/// supervisor or administrator.
pub(crate) async fn release_task(
    State(state): State<AppState>,
    axum::extract::Extension(principal): axum::extract::Extension<crate::auth::Principal>,
    Path((no, step)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let task = task_at(&state, &no, &step).await?;
    let claims = state
        .engine()
        .store
        .claims(std::slice::from_ref(&no))
        .await?;
    let Some(c) = claims.into_iter().find(|c| c.task_id == i64::from(task.id)) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "task.not_claimed",
            format!("nobody has claimed the task at `{step}`"),
        ));
    };
    if c.login != principal.login() && !principal.has_role("supervisor") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "{} holds this task; only they or a supervisor may release it",
                c.login
            ),
        ));
    }
    state
        .engine()
        .store
        .release_task(&no, c.task_id, principal.login(), state.now())
        .await?;
    Ok(Json(json!({"released": c})))
}

#[cfg(test)]
mod tests {
    use crate::testkit::{ADMIN, CLERK, app, call};
    use axum::http::StatusCode;

    #[tokio::test]
    async fn a_clients_key_is_its_own() {
        use crate::testkit::call_keyed;
        let (app, _) = app("keys").await;
        let start = serde_json::json!({
            "flow": "parallel_approval",
            "applicant": {"name": "杭州示例科技有限公司", "id_kind": "credit_code", "id_number": "91110000600037341L"},
            "materials": [{"id": "application"}],
        });
        // The engine's own key shapes mean nothing to a client: each caller's
        // key is theirs, so the same text from two callers is two keys.
        let key = "order:1";
        let (s1, v1) = call_keyed(&app, "/api/cases", CLERK, key, start.clone()).await;
        let (s2, v2) = call_keyed(&app, "/api/cases", ADMIN, key, start.clone()).await;
        assert_eq!(
            (s1, s2),
            (StatusCode::CREATED, StatusCode::CREATED),
            "{v1} {v2}"
        );
        assert_ne!(v1["case_no"], v2["case_no"]);
        // The same caller again: the first answer.
        let (s3, v3) = call_keyed(&app, "/api/cases", CLERK, key, start).await;
        assert_eq!(
            (s3, &v3["case_no"], &v3["replayed"]),
            (StatusCode::OK, &v1["case_no"], &serde_json::json!(true))
        );
    }

    #[tokio::test]
    async fn a_clerk_starts_and_accepts_a_case_of_their_department() {
        let (app, _) = app("cases").await;
        let start = serde_json::json!({
            "flow": "parallel_approval",
            "applicant": {"name": "杭州示例科技有限公司", "id_kind": "credit_code", "id_number": "91110000600037341L"},
            "materials": [{"id": "application"}, {"id": "project_doc"}, {"id": "land_doc"}],
        });
        let (status, v) = call(&app, "POST", "/api/cases", Some(CLERK), Some(start)).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let no = v["case_no"].as_str().unwrap_or_default().to_string();
        // Claimed by the clerk: the administrator may still act, others not.
        let claim = format!("/api/cases/{no}/tasks/accept/claim");
        let (status, v) = call(&app, "POST", &claim, Some(CLERK), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let by =
            serde_json::json!({"by": {"name": "王芳", "department": "window", "role": "clerk"}});
        let done = format!("/api/cases/{no}/tasks/accept/complete");
        let (status, v) = call(&app, "POST", &done, Some(CLERK), Some(by)).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let (status, v) = call(&app, "GET", &format!("/api/cases/{no}"), Some(ADMIN), None).await;
        assert_eq!(
            (status, v["status"].as_str()),
            (StatusCode::OK, Some("accepted")),
            "{v}"
        );
        // The event log comes in pages.
        let (status, v) = call(
            &app,
            "GET",
            &format!("/api/cases/{no}/events?limit=2"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["items"].as_array().map(Vec::len), Some(2), "{v}");
        assert_eq!(
            (v["more"].as_bool(), v["next_after"].as_u64()),
            (Some(true), Some(2)),
            "{v}"
        );
        let total = v["total"].as_u64().unwrap_or_default();
        let (_, v) = call(
            &app,
            "GET",
            &format!("/api/cases/{no}/events?after=2&limit=2000"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(
            v["items"].as_array().map(Vec::len),
            Some(total as usize - 2),
            "{v}"
        );
        assert_eq!(v["more"], false, "{v}");
        // And the audit log, by case.
        let (_, v) = call(
            &app,
            "GET",
            &format!("/api/audit?case={no}&limit=1"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["more"], true, "{v}");
        assert!(
            v["items"][0]["detail"]
                .as_str()
                .unwrap_or_default()
                .contains(&no),
            "{v}"
        );
        // Another department's step is not the clerk's.
        let dev = serde_json::json!({"by": {"name": "王芳", "department": "dev"}});
        let review = format!("/api/cases/{no}/tasks/dev_review/complete");
        let (status, _) = call(&app, "POST", &review, Some(CLERK), Some(dev)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

//! The working-day calendar: what is in force and how far it reaches
//! (`GET /api/calendar`), a year's official arrangement checked and compared
//! with what is in force (`POST /api/calendar/preview`), and deployed
//! (`POST /api/calendar/years`, admin). Deploying puts the new calendar in
//! force on this node at once, on the others before their next command or
//! timer claim, and recomputes the open cases' provisional deadlines.

use crate::auth::Principal;
use crate::dto::YearBody;
use crate::error::ApiError;
use crate::extract::bad_body;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use govflow_engine::calendar::deployments::{self as calendars, NATIONAL};
use govflow_engine::calendar::{Calendar, YearArrangement, year};
use serde_json::{Value, json};

/// Administrators and supervisors are warned when the official calendar ends
/// within this many days.
pub const COVERAGE_WARNING_DAYS: i64 = 60;

/// How far the calendar reaches: the official years (with their versions),
/// the last covered day, whether the warning is due, and the provisional rule.
pub fn coverage(state: &AppState) -> Value {
    let in_force = state.engine().calendar_in_force();
    let cal = &in_force.calendar;
    let today = state.now().date();
    let covered = cal.covered_until();
    let left = (covered - today).num_days();
    json!({
        "covered_until": covered,
        "days_left": left,
        "warning": left < COVERAGE_WARNING_DAYS,
        "provisional_from": covered.succ_opt(),
        "official_years": cal.official_years(),
        "calendar": in_force.label,
    })
}

pub(crate) async fn calendar(State(state): State<AppState>) -> Json<Value> {
    state.engine().refresh_calendar().await;
    let in_force = state.engine().calendar_in_force();
    let cal = &in_force.calendar;
    let days: Vec<Value> = cal
        .listed_days()
        .map(|(d, kind, name)| json!({"date": d, "kind": kind, "name": name}))
        .collect();
    let provisional: Vec<Value> = cal
        .provisional_holidays()
        .map(|(d, name)| json!({"date": d, "kind": "off", "name": name, "provisional": true}))
        .collect();
    let mut out = coverage(&state);
    if let Some(o) = out.as_object_mut() {
        o.insert("first".into(), json!(cal.first()));
        o.insert("last".into(), json!(cal.last()));
        o.insert("years".into(), json!(in_force.years));
        o.insert("days".into(), json!(days));
        o.insert("provisional_days".into(), json!(provisional));
        o.insert("regions".into(), json!(state.calendar_files()));
        o.insert("division".into(), json!(state.engine().store.region()));
        o.insert(
            "provisional_rule".into(),
            json!({
                "zh": "尚未导入国务院当年放假安排的年份，期限按《全国年节及纪念日放假办法》（2024 年修订）临时计算：周六周日及元旦、春节（除夕至初三）、清明、劳动节（5月1日至2日）、端午、中秋、国庆（10月1日至3日）休息，不含调休；计算结果标注“临时”，导入当年安排后自动重算。",
                "en": "Years without the State Council's arrangement yet are counted provisionally under the national holiday measures (as amended in 2024): weekends and 元旦, 春节 (除夕 to 初三), 清明, 1–2 May, 端午, 中秋 and 1–3 October off, no make-up days; such deadlines are marked provisional and recomputed when the year's arrangement is deployed.",
            }),
        );
    }
    Json(out)
}

/// Reads and checks a year's file: 422 `calendar.invalid` with every problem
/// (line, column, code, Chinese and English text, hint) when it does not hold.
fn read_year(body: &YearBody) -> Result<(String, YearArrangement), ApiError> {
    let region = body.region.clone().unwrap_or_else(|| NATIONAL.to_string());
    if !calendars::valid_region(&region) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "calendar.region",
            format!(
                "地区 `{region}` 无效：写 CN（全国）或 6 位行政区划代码 / `{region}` is not a region: CN (national) or a 6-digit division code"
            ),
        ));
    }
    year::parse(&body.text)
        .map(|y| (region, y))
        .map_err(|problems| invalid(&problems))
}

/// 422 `calendar.invalid` with every problem; nothing is stored.
fn invalid(problems: &[year::Problem]) -> ApiError {
    let first = problems
        .first()
        .map(|p| format!("{}:{}: {} / {}", p.line, p.column, p.message_zh, p.message))
        .unwrap_or_default();
    ApiError {
        status: StatusCode::UNPROCESSABLE_ENTITY,
        code: "calendar.invalid",
        message: format!(
            "日历文件有 {} 个问题，未作任何更改 / the calendar file has {} problem(s); nothing changed. {first}",
            problems.len(),
            problems.len()
        ),
        details: json!({"problems": problems}),
    }
}
fn summary(before: &Calendar, after: &Calendar, region: &str, y: &YearArrangement) -> Value {
    let changes = before.changes_to(after, y.year);
    let official = before.official_years().contains(&y.year) && region == NATIONAL;
    json!({
        "region": region,
        "year": y.year,
        "working_days": after.working_days_in(y.year),
        "days": y.days.iter().map(|(d, (k, n))| json!({"date": d, "kind": k, "name": n})).collect::<Vec<_>>(),
        "replaces": if official { "official" } else if region == NATIONAL { "provisional" } else { "region" },
        "changes": changes,
        "text": y.to_text(),
    })
}

/// The checks beyond the file's own (years in range, statutory holidays
/// present), then the calendar as it would be after deploying.
async fn check_and_simulate(
    state: &AppState,
    body: &YearBody,
) -> Result<(String, YearArrangement, Calendar, Calendar), ApiError> {
    let (region, y) = read_year(body)?;
    let engine = state.engine();
    engine.refresh_calendar().await;
    let before = engine.calendar_in_force();
    let problems = calendars::check_import(&before.calendar, &region, &y, &body.text);
    if !problems.is_empty() {
        return Err(invalid(&problems));
    }
    let rows = engine.store.calendar_deployments().await?;
    let after = calendars::after_deploy(&rows, engine.store.region(), &region, &y);
    Ok((region, y, before.calendar.clone(), after.calendar))
}

pub(crate) async fn preview(
    State(state): State<AppState>,
    body: Result<Json<YearBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    let (region, y, before, after) = check_and_simulate(&state, &body).await?;
    Ok(Json(summary(&before, &after, &region, &y)))
}

pub(crate) async fn deploy(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<YearBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    let (region, y, before, after) = check_and_simulate(&state, &body).await?;
    let engine = state.engine();
    let mut out = summary(&before, &after, &region, &y);
    let file = body
        .file
        .as_deref()
        .map_or_else(|| "studio".to_string(), |f| format!("studio:{f}"));
    // In force here at once (elsewhere at each node's next command); the
    // recomputation runs in the background.
    let (d, new) = engine
        .deploy_calendar_year(&region, &y, &file, p.login())
        .await?;
    if let Some(o) = out.as_object_mut() {
        o.insert("version".into(), json!(d.version));
        o.insert("new".into(), json!(new));
        o.insert("coverage".into(), coverage(&state));
    }
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)))
}

//! The one route table. Each route is written once, with who may call it,
//! and the table builds everything that depends on it: the router, the
//! role check each route carries, and the OpenAPI document. A route that is
//! not in the table does not exist, so nothing is reachable without a role
//! rule (deny by default).
//!
//! The top of the crate: it imports the route modules; they import only
//! `state`, `error`, `extract` and `auth` below them.

use crate::dto::{self, *};
use crate::error::ApiError;
use crate::openapi::{Method, RouteInfo};
use crate::state::AppState;
use crate::{MAX_BODY, auth, calendar, cases, flows, packs, stats, studio, supervision, users};
use axum::extract::{DefaultBodyLimit, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Json, Router, middleware};

use Method::{Get, Post, Put};

/// A route of the table: what the document says of it, and its handler.
pub(crate) struct Route {
    pub(crate) info: RouteInfo,
    handler: MethodRouter<AppState>,
}

impl Route {
    /// The route's request body: a wire type of `dto`, whose schema the
    /// document shows.
    fn body<B: utoipa::ToSchema>(mut self) -> Route {
        self.info.body = Some(dto::schema_of::<B>);
        self
    }
}

fn route<H, T>(
    method: Method,
    path: &'static str,
    handler: H,
    tag: &'static str,
    roles: &'static str,
    summary: &'static str,
) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = match method {
        Get => MethodFilter::GET,
        Post => MethodFilter::POST,
        Put => MethodFilter::PUT,
    };
    Route {
        info: RouteInfo {
            method,
            path,
            tag,
            summary,
            roles,
            body: None,
        },
        handler: on(filter, handler),
    }
}

/// Every route of the API (paths under `/api`). `roles`: `public` (no
/// authentication), `any` authenticated caller, `staff` (clerk or reviewer),
/// or role names joined by `|`; `admin` may call everything.
#[rustfmt::skip]
pub(crate) fn table() -> Vec<Route> {
    let mut t = vec![
        route(Get, "/me", studio::me, "users", "any",
            "The caller: login, name, roles (and the session's CSRF token)"),
        route(Post, "/timers", studio::timers, "flows", "any",
            "The deadlines of a flow text; with `set`, the text with one literal rewritten (comments and layout kept)").body::<TimersBody>(),
        route(Put, "/flows/{id}/source", studio::deploy_flow, "flows", "deployer",
            "Deploy a new version of one flow from its text (valid, same id); the same text deploys once").body::<SourceBody>(),
        route(Post, "/flows/{id}/diff", studio::diff_flow, "flows", "analyst|deployer",
            "Line diff from the running version's text to a new text").body::<SourceBody>(),
        route(Get, "/flows/{id}/versions/{version}", studio::flow_version, "flows", "any",
            "The text of one deployed version"),
        route(Get, "/rules/files", studio::rule_files, "supervision", "any",
            "The rule files in force (latest versions) with their texts; the efficiency scheme"),
        route(Put, "/rules/files/{file}", studio::deploy_rule_file, "supervision", "supervisor",
            "Deploy a new version of a rule file (or a new file); in force at once when the whole rule book builds").body::<SourceBody>(),
        route(Post, "/rules/files/{file}/diff", studio::diff_rule_file, "supervision", "supervisor|analyst",
            "Line diff from the rule file's version in force to a new text").body::<SourceBody>(),
        route(Get, "/rules/files/{file}/versions", studio::rule_file_versions, "supervision", "any",
            "Every deployed version of a rule file"),
        route(Get, "/rules/files/{file}/versions/{version}", studio::rule_file_version, "supervision", "any",
            "The text of one version of a rule file"),
        route(Post, "/rules/try", studio::try_rules, "supervision", "analyst|supervisor",
            "Evaluate the rules of a text on a stored case (no card is stored)").body::<TryBody>(),
        route(Get, "/calendar", calendar::calendar, "calendar", "any",
            "The calendar in force: official years (versions), how far it covers, the coverage warning, holidays and make-up days, the provisional rule"),
        route(Post, "/calendar/preview", calendar::preview, "calendar", "admin",
            "Check a year's official arrangement (holiday-cn JSON or plain text) and list its changes against the calendar in force; nothing is stored").body::<YearBody>(),
        route(Post, "/calendar/years", calendar::deploy, "calendar", "admin",
            "Deploy a year's official arrangement (national or a region's): versioned, audited, in force on every node, open cases' provisional deadlines recomputed").body::<YearBody>(),
        route(Get, "/health", health, "server", "public",
            "Liveness; needs no token"),
        route(Post, "/login", auth::login, "users", "public",
            "Log in: a session cookie and a CSRF token").body::<LoginBody>(),
        route(Post, "/logout", auth::logout, "users", "public",
            "End the session"),
        route(Get, "/openapi.json", openapi, "server", "any",
            "This document"),
        route(Get, "/flows", flows::list_flows, "flows", "any",
            "Deployed flows (latest source, version as written, deployed version)"),
        route(Get, "/flows/{id}", flows::get_flow, "flows", "any",
            "One flow's latest source"),
        route(Get, "/flows/{id}/ir", flows::flow_ir, "flows", "any",
            "The flow's IR"),
        route(Get, "/flows/{id}/graph.svg", flows::flow_graph, "flows", "any",
            "The flow's diagram (SVG)"),
        route(Get, "/flows/{id}/deployments", flows::flow_deployments, "flows", "any",
            "Every deployed version of the flow"),
        route(Post, "/validate", flows::validate, "flows", "any",
            "Diagnostics of a flow text (with its diagram and deadlines) or of a rule file").body::<ValidateBody>(),
        route(Get, "/audit", audit, "server", "admin",
            "The latest audit rows"),
        route(Get, "/packs", packs::list_packs, "packs", "any",
            "Process packs"),
        route(Post, "/packs", packs::deploy_pack, "packs", "deployer",
            "Deploy a pack: all its flows or none").body::<PackBody>(),
        route(Post, "/cases", cases::start_case, "cases", "staff",
            "Register a case").body::<StartBody>(),
        route(Get, "/cases", cases::list_cases, "cases", "any",
            "List cases, newest first"),
        route(Get, "/cases/{no}", cases::get_case, "cases", "any",
            "A case: status, open tasks, deadlines with working days left"),
        route(Get, "/cases/{no}/events", cases::case_events, "cases", "any",
            "The case's event log"),
        route(Get, "/cases/{no}/exchange", cases::case_exchange, "cases", "any",
            "The six exchange record types"),
        route(Post, "/cases/{no}/commands", cases::case_command, "cases", "staff|integration",
            "Any command, as {\"command\": …}").body::<CommandBody>(),
        route(Post, "/cases/{no}/tasks/{step}/complete", cases::complete_task, "tasks", "staff",
            "Complete the open task at a step").body::<CompleteBody>(),
        route(Post, "/cases/{no}/tasks/{step}/claim", cases::claim_task, "cases", "staff",
            "Claim (认领) the open task at a step: a member of its department; 409 when someone else holds it"),
        route(Post, "/cases/{no}/tasks/{step}/release", cases::release_task, "cases", "staff|supervisor",
            "Release a claim: its holder or a supervisor"),
        route(Post, "/cases/{no}/special/start", cases::typed_command::<SpecialStartBody>, "cases", "staff",
            "Start a special procedure").body::<SpecialStartBody>(),
        route(Post, "/cases/{no}/special/end", cases::typed_command::<SpecialEndBody>, "cases", "staff",
            "End a special procedure").body::<SpecialEndBody>(),
        route(Post, "/cases/{no}/materials", cases::typed_command::<MaterialsBody>, "cases", "staff",
            "The applicant supplies materials").body::<MaterialsBody>(),
        route(Post, "/cases/{no}/terminate", cases::typed_command::<TerminateBody>, "cases", "staff",
            "Terminate (中止)").body::<TerminateBody>(),
        route(Post, "/cases/{no}/withdraw", cases::typed_command::<WithdrawBody>, "cases", "staff",
            "Withdraw (撤回)").body::<WithdrawBody>(),
        route(Post, "/cases/{no}/reveal", cases::reveal, "cases", "any",
            "The applicant's personal data unmasked, with a reason (audited): the window's clerks, supervisors, integration").body::<RevealBody>(),
        route(Get, "/tasks", cases::list_tasks, "tasks", "staff|supervisor",
            "The work list by department and role"),
        route(Get, "/calendar/add", cases::calendar_add, "calendar", "any",
            "Add working days or days to a date"),
        route(Get, "/calendar/diff", cases::calendar_diff, "calendar", "any",
            "Working days between two dates"),
        route(Get, "/rules", supervision::list_rules, "supervision", "any",
            "Supervision rules with their last evaluation error"),
        route(Get, "/notifications", supervision::list_notifications, "supervision", "any",
            "The notification outbox"),
        route(Get, "/alarms", supervision::list_alarms, "supervision", "any",
            "Cards (预警/黄牌/红牌), filtered"),
        route(Get, "/alarms/{id}", supervision::get_alarm, "supervision", "any",
            "One card"),
        route(Post, "/alarms/{id}/acknowledge", supervision::acknowledge, "supervision", "staff",
            "The card's department has seen it").body::<ByBody>(),
        route(Post, "/alarms/{id}/appeal", supervision::appeal, "supervision", "staff",
            "The card's department appeals").body::<AppealBody>(),
        route(Post, "/alarms/{id}/decide", supervision::decide, "supervision", "supervisor",
            "A supervisor decides the appeal").body::<DecideBody>(),
        route(Post, "/alarms/{id}/order", supervision::order, "supervision", "supervisor",
            "A supervisor issues a supervision order").body::<OrderBody>(),
        route(Post, "/alarms/{id}/close", supervision::close, "supervision", "supervisor",
            "A supervisor closes a card after checking it").body::<CloseBody>(),
        route(Get, "/orders", supervision::list_orders, "supervision", "any",
            "Supervision orders"),
        route(Post, "/orders/{no}/reply", supervision::reply_order, "supervision", "staff",
            "The addressed department replies").body::<ReplyBody>(),
        route(Post, "/complaints", supervision::file_complaint, "supervision", "staff|supervisor",
            "File a complaint").body::<ComplaintBody>(),
        route(Get, "/complaints", supervision::list_complaints, "supervision", "any",
            "Complaints"),
        route(Post, "/cases/{no}/rating", supervision::rate, "supervision", "any",
            "Rate a finished case (1–5)").body::<RateBody>(),
        route(Get, "/cases/{no}/rating", supervision::case_ratings, "supervision", "any",
            "A case's ratings"),
        route(Get, "/stats", stats::stats, "statistics", "any",
            "Statistics per department or item and period"),
        route(Get, "/efficiency", stats::efficiency, "statistics", "any",
            "Efficiency grades per department for a month"),
        route(Post, "/efficiency/adjustments", stats::adjust, "statistics", "supervisor",
            "A supervisor's manual adjustment").body::<AdjustBody>(),
        route(Post, "/efficiency/adjustments/{id}/{action}", stats::adjustment_action, "statistics", "staff|supervisor",
            "Appeal or decide an adjustment").body::<AdjustmentAction>(),
        route(Get, "/users", users::list_users, "users", "admin",
            "Users and their roles"),
        route(Post, "/users", users::create_user, "users", "admin",
            "Add a user").body::<NewUser>(),
        route(Post, "/users/{login}/tokens", users::create_token, "users", "admin",
            "Make an API token for a user (shown once; it expires, 90 days by default)").body::<NewToken>(),
        route(Get, "/users/{login}/tokens", users::list_tokens, "users", "admin",
            "A user's tokens: label, made, expires, revoked (never the token)"),
        route(Post, "/users/{login}/tokens/{id}/revoke", users::revoke_token, "users", "admin",
            "Revoke a token; it stops working at once"),
        route(Post, "/users/{login}/disable", users::disable_user, "users", "admin",
            "Disable a user: their sessions end, their tokens stop working"),
        route(Post, "/users/{login}/enable", users::enable_user, "users", "admin",
            "Enable a disabled user again"),
        route(Put, "/users/{login}/password", users::set_password, "users", "admin",
            "Set a user's password; their sessions end").body::<PasswordBody>(),
        route(Put, "/users/{login}/roles", users::set_roles, "users", "admin",
            "Replace a user's roles").body::<RolesBody>(),
    ];
    // A pack is uploaded whole: a larger body than other writes.
    for r in &mut t {
        if r.info.path == "/packs" && r.info.method == Post {
            let h = std::mem::take(&mut r.handler);
            r.handler = h.layer(DefaultBodyLimit::max(packs::MAX_PACK));
        }
    }
    t
}

/// The server: the studio's pages, and the API under `/api` built from the table.
pub fn app(state: AppState) -> Router {
    let mut api = Router::new();
    let mut public = Router::new();
    for r in table() {
        let RouteInfo { path, roles, .. } = r.info;
        // NUL is looked for inside the route: after authentication (an
        // anonymous caller's body is read only on the public routes).
        let nul = middleware::from_fn(crate::extract::refuse_nul);
        if roles == "public" {
            public = public.route(path, r.handler.route_layer(nul));
        } else {
            let check = middleware::from_fn_with_state(roles, auth::require_roles);
            api = api.route(path, r.handler.route_layer(nul).route_layer(check));
        }
    }
    let api = api
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .merge(public)
        .method_not_allowed_fallback(method_not_allowed)
        // Every instant the API gives carries its +08:00 offset.
        .layer(middleware::from_fn(crate::offsets::layer));
    Router::new()
        .merge(studio::pages())
        .nest("/api", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn openapi() -> Json<serde_json::Value> {
    let infos: Vec<RouteInfo> = table().into_iter().map(|r| r.info).collect();
    Json(crate::openapi::document(&infos))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method; see docs/engine.md",
    )
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    /// Rows older than this id: the next page back.
    before: Option<i64>,
    actor: Option<String>,
    action: Option<String>,
    case: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS` (China time), inclusive.
    from: Option<String>,
    /// `YYYY-MM-DDTHH:MM:SS`, exclusive.
    to: Option<String>,
    /// At most this many rows (200 by default, 1,000 at the most).
    limit: Option<i64>,
}

/// Audit rows, newest first, filtered; `next_before` pages back.
async fn audit(
    State(state): State<AppState>,
    q: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let axum::extract::Query(q) = q.map_err(crate::extract::bad_query)?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let f = govflow_engine::store::AuditFilter {
        before: q.before,
        actor: q.actor,
        action: q.action,
        case: q.case,
        from: q.from,
        to: q.to,
    };
    let mut items = state.engine().store.audit_page(&f, limit + 1).await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next = items.last().and_then(|r| r["id"].as_i64());
    Ok(Json(serde_json::json!({
        "items": items, "limit": limit, "more": more,
        "next_before": if more { next } else { None },
    })))
}

#[cfg(test)]
mod tests {
    use crate::testkit::{ADMIN, CLERK, app, call};
    use axum::http::StatusCode;

    /// Every route of the table but the public ones refuses a caller
    /// without credentials — the router has no route the table lacks.
    #[tokio::test]
    async fn every_route_but_the_public_ones_needs_authentication() {
        let (app, _) = app("deny").await;
        let mut checked = 0;
        for r in super::table() {
            let path = r
                .info
                .path
                .replace("{id}", "1")
                .replace("{no}", "X")
                .replace("{step}", "s")
                .replace("{file}", "a.rules")
                .replace("{version}", "1")
                .replace("{login}", "clerk")
                .replace("{action}", "approve");
            let (status, v) = call(
                &app,
                &r.info.method.as_str().to_uppercase(),
                &format!("/api{path}"),
                None,
                None,
            )
            .await;
            if r.info.roles == "public" {
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{path}");
            } else {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {v}");
                checked += 1;
            }
        }
        assert!(checked > 50, "{checked}");
        let (status, _) = call(&app, "GET", "/api/health", None, None).await;
        assert_eq!(status, StatusCode::OK);
        let (status, v) = call(&app, "GET", "/api/no/such/route", Some(ADMIN), None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }

    /// A route's own role rule: a clerk may list cases but not deploy.
    #[tokio::test]
    async fn each_route_checks_its_roles() {
        let (app, _) = app("roles").await;
        let (status, _) = call(&app, "GET", "/api/cases", Some(CLERK), None).await;
        assert_eq!(status, StatusCode::OK);
        let body = serde_json::json!({"source": "flow x \"x\" {}"});
        let (status, v) = call(&app, "PUT", "/api/flows/x/source", Some(CLERK), Some(body)).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("auth.forbidden")),
            "{v}"
        );
        let (status, v) = call(&app, "GET", "/api/audit", Some(CLERK), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        let (status, v) = call(&app, "GET", "/api/openapi.json", Some(CLERK), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(v["paths"]["/api/cases"]["post"]["x-roles"].is_array());
    }
}

#[cfg(test)]
mod hostile_input {
    use crate::testkit::{ADMIN, CLERK, app, call};
    use axum::http::StatusCode;
    use serde_json::json;

    /// NUL in a body string, a path or a query: 400 on every route, before
    /// the store sees it; an oversized body: 413; a pack file name with a
    /// path: 422.
    #[tokio::test]
    async fn nul_oversized_and_path_names_are_refused() {
        let (app, _) = app("hostile").await;
        let body = json!({"by": {"name": "王\u{0}芳", "department": "window", "role": "clerk"}});
        let (s, v) = call(
            &app,
            "POST",
            "/api/cases/X/tasks/accept/complete",
            Some(CLERK),
            Some(body),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request.nul")),
            "{v}"
        );
        let (s, v) = call(&app, "GET", "/api/cases/33010020251%00", Some(CLERK), None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request.nul")),
            "{v}"
        );
        let (s, v) = call(&app, "GET", "/api/cases?status=open%00", Some(CLERK), None).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request.nul")),
            "{v}"
        );
        // The escape written out as text is fine: it is not a NUL.
        let body = json!({"source": "flow x \"\\u0000\"", "syntax": "dsl"});
        let (s, _) = call(&app, "POST", "/api/validate", Some(CLERK), Some(body)).await;
        assert_eq!(s, StatusCode::OK);
        let big = json!({"source": "x".repeat(crate::MAX_BODY + 1)});
        let (s, v) = call(&app, "POST", "/api/validate", Some(CLERK), Some(big)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")),
            "{v}"
        );
        let pack = json!({"manifest": "pack: p", "files": {"../evil.flow": "flow x"}});
        let (s, v) = call(&app, "POST", "/api/packs", Some(ADMIN), Some(pack)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("pack.bad_file_name")),
            "{v}"
        );
    }
}

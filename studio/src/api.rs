//! Routes. Every `/api` route except `/api/health` requires
//! `Authorization: Bearer <token>`; errors are JSON `{code, message, details}`.

use crate::MAX_BODY;
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use govflow_engine::app::registry::Deployed;
use govflow_engine::service::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    admin_token: String,
    /// The efficiency scheme (rules/efficiency.yaml), when there is one.
    efficiency: std::sync::RwLock<Option<Arc<govflow_engine::supervision::efficiency::Scheme>>>,
    /// Where the rule files were read from, and the region calendar files.
    places: std::sync::RwLock<(Option<std::path::PathBuf>, Vec<String>)>,
}

impl AppState {
    pub fn new(engine: Engine, admin_token: String) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                engine,
                admin_token,
                efficiency: std::sync::RwLock::new(None),
                places: std::sync::RwLock::new((None, Vec::new())),
            }),
        }
    }

    pub fn set_efficiency(&self, scheme: govflow_engine::supervision::efficiency::Scheme) {
        if let Ok(mut g) = self.inner.efficiency.write() {
            *g = Some(Arc::new(scheme));
        }
    }

    /// Records where the rule files and the region calendars came from.
    pub fn set_places(&self, rules_dir: Option<std::path::PathBuf>, calendars: Vec<String>) {
        if let Ok(mut g) = self.inner.places.write() {
            *g = (rules_dir, calendars);
        }
    }

    pub(crate) fn rules_dir(&self) -> Option<std::path::PathBuf> {
        self.inner.places.read().ok().and_then(|g| g.0.clone())
    }

    pub(crate) fn calendar_files(&self) -> Vec<String> {
        self.inner
            .places
            .read()
            .map(|g| g.1.clone())
            .unwrap_or_default()
    }

    pub(crate) fn efficiency(
        &self,
    ) -> Option<Arc<govflow_engine::supervision::efficiency::Scheme>> {
        self.inner.efficiency.read().ok().and_then(|g| g.clone())
    }

    pub fn flow_count(&self) -> usize {
        self.flows().len()
    }

    /// The latest version of every deployed flow, by id: the engine's
    /// registry, which every node keeps in step with the store.
    pub(crate) fn flows(&self) -> BTreeMap<String, Deployed> {
        self.inner
            .engine
            .flows
            .all_latest_deployed()
            .into_iter()
            .map(|d| (d.flow.flow.id.clone(), d))
            .collect()
    }

    /// Reads after a deployment on another node see it: one marker lookup.
    pub(crate) async fn synced(&self) -> &AppState {
        self.inner.engine.sync_deployments().await;
        self
    }

    pub(crate) fn admin_token(&self) -> &str {
        &self.inner.admin_token
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Now, by the engine's clock.
    pub(crate) fn now(&self) -> govflow_engine::core::Time {
        self.inner.engine.now()
    }
}

/// An API error: status, stable code, message and details.
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: serde_json::Value,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"code": self.code, "message": self.message, "details": self.details});
        (self.status, Json(body)).into_response()
    }
}

impl From<crate::StoreError> for ApiError {
    fn from(e: crate::StoreError) -> ApiError {
        // Internals are logged, not shown.
        eprintln!("storage error: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "storage error; see the server log",
        )
    }
}

impl From<govflow_engine::service::DeployError> for ApiError {
    fn from(e: govflow_engine::service::DeployError) -> ApiError {
        use govflow_engine::service::DeployError as D;
        match e {
            D::Invalid {
                code,
                message,
                diagnostics,
            } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                message,
                details: serde_json::json!({ "diagnostics": diagnostics }),
            },
            D::IdMismatch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "flow.id_mismatch",
                e.to_string(),
            ),
            D::NotRuleFile(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "rules.not_found", e.to_string())
            }
            D::Store(e) => e.into(),
        }
    }
}

/// A page of a list: the handler fetched up to `limit + 1` rows; the extra
/// one only tells that more follow (`more`, `next_offset`) — no count query
/// over a large table.
pub(crate) fn page_of<T: serde::Serialize>(
    mut items: Vec<T>,
    limit: i64,
    offset: i64,
) -> Json<serde_json::Value> {
    let more = items.len() as i64 > limit;
    items.truncate(limit.max(0) as usize);
    Json(serde_json::json!({
        "items": items, "limit": limit, "offset": offset, "more": more,
        "next_offset": more.then_some(offset + limit),
    }))
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/flows", get(list_flows))
        .route("/flows/{id}", get(get_flow))
        .route("/flows/{id}/ir", get(flow_ir))
        .route("/flows/{id}/graph.svg", get(flow_graph))
        .route("/flows/{id}/deployments", get(flow_deployments))
        .route("/validate", post(validate))
        .route("/audit", get(audit))
        .route("/openapi.json", get(openapi))
        .merge(crate::cases::routes())
        .merge(crate::packs::routes())
        .merge(crate::supervision::routes())
        .merge(crate::studio::routes())
        .merge(crate::calendar::routes())
        .route(
            "/users",
            get(crate::auth::list_users).post(crate::auth::create_user),
        )
        .route("/users/{login}/tokens", post(crate::auth::create_token))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ))
        .route("/health", get(health))
        .route("/login", post(crate::auth::login))
        .route("/logout", post(crate::auth::logout))
        .method_not_allowed_fallback(method_not_allowed)
        // Every instant the API gives carries its +08:00 offset.
        .layer(middleware::from_fn(crate::offsets::layer));
    Router::new()
        .merge(crate::studio::pages())
        .nest("/api", api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
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

fn flow_summary(d: &Deployed) -> serde_json::Value {
    let f = &d.flow.flow;
    let item = &f.item;
    serde_json::json!({
        "id": f.id,
        "name": f.name,
        "version": f.version,
        "file": d.file,
        "mode": item.mode.as_str(),
        "kind": item.kind,
        "statutory": item.statutory.map(|l| l.to_string()),
        "promised": item.promised.map(|l| l.to_string()),
        "steps": f.all_steps().len(),
        "hash": govflow_engine::store::source_hash(&d.source),
        "deployed_version": d.flow.revision(),
    })
}

/// `version` is the one written in the flow; `deployed_version` numbers the
/// deployments of its source texts (cases record it).
async fn list_flows(State(state): State<AppState>) -> Json<serde_json::Value> {
    let items: Vec<_> = state
        .synced()
        .await
        .flows()
        .values()
        .map(flow_summary)
        .collect();
    Json(serde_json::json!({"items": items, "total": items.len()}))
}

pub(crate) async fn find(state: &AppState, id: &str) -> Result<Deployed, ApiError> {
    state.synced().await;
    state.inner.engine.flows.latest_deployed(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "flow.not_found",
            format!("no flow `{id}`"),
        )
    })
}

async fn get_flow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f = find(&state, &id).await?;
    let mut v = flow_summary(&f);
    v["source"] = serde_json::Value::String(f.source.to_string());
    Ok(Json(v))
}

async fn flow_ir(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let f = find(&state, &id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        f.flow.flow.to_canonical_json(),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphQuery {
    /// A deployed version (a case's); the latest by default.
    #[serde(default)]
    version: Option<u32>,
}

async fn flow_graph(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<axum::extract::Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = q.map_err(crate::cases::bad_query)?;
    let svg = match q.version {
        None => govflow_dsl::graph::Diagram::build(&find(&state, &id).await?.flow.flow).to_svg(),
        Some(v) => {
            let f = state.engine().flows.get(&id, v).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "flow.not_found",
                    format!("flow `{id}` has no deployed version {v}"),
                )
            })?;
            govflow_dsl::graph::Diagram::build(&f.flow).to_svg()
        }
    };
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

async fn flow_deployments(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    find(&state, &id).await?;
    let items = state.inner.engine.store.deployments(&id).await?;
    Ok(Json(serde_json::json!({"items": items})))
}

async fn audit(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let items = state.inner.engine.store.audit(200).await?;
    Ok(Json(serde_json::json!({"items": items})))
}

#[derive(Deserialize)]
struct ValidateBody {
    source: String,
    #[serde(default)]
    syntax: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// `flow` (default) or `rules`.
    #[serde(default)]
    kind: Option<String>,
}

/// Validates a flow text; returns its diagnostics (the `check --format json` shape).
async fn validate(
    body: Result<Json<ValidateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {}", e.body_text()),
        )
    })?;
    let syntax = crate::studio::syntax_of(body.syntax.as_deref())?;
    match body.kind.as_deref() {
        None | Some("flow") => {}
        Some("rules") => {
            let name = body.name.unwrap_or_else(|| {
                if syntax == govflow_dsl::Syntax::Dsl {
                    "input.rules".into()
                } else {
                    "input.rules.yaml".into()
                }
            });
            let loaded = govflow_dsl::rule::load_rules(&name, &body.source, syntax);
            return Ok(Json(serde_json::json!({
                "ok": !loaded.has_errors(),
                "diagnostics": loaded.report.to_json(),
                "rules": loaded.rules.as_ref().map(|s| s.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>()),
            })));
        }
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("unknown kind `{other}`; use `flow` or `rules`"),
            ));
        }
    }
    let name = body.name.unwrap_or_else(|| {
        if syntax == govflow_dsl::Syntax::Dsl {
            "input.flow".into()
        } else {
            "input.flow.yaml".into()
        }
    });
    let loaded = govflow_dsl::load(&name, &body.source, syntax);
    // The diagram and the deadlines of whatever could be read: the editor
    // keeps showing them while the text has errors elsewhere.
    let (svg, timers) = match &loaded.flow {
        Some(f) => (
            Some(govflow_dsl::graph::Diagram::build(f).to_svg()),
            Some(govflow_dsl::timers::timers(f, &body.source)),
        ),
        None => (None, None),
    };
    Ok(Json(serde_json::json!({
        "ok": !loaded.has_errors(),
        "diagnostics": loaded.report.to_json(),
        "svg": svg,
        "timers": timers,
    })))
}

//! The deployed flows over HTTP: list, text, IR, diagram, versions, and
//! validating a text. What is listed is the engine's registry, which every
//! node keeps in step with the store.

use crate::dto::ValidateBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use govflow_engine::app::registry::Deployed;
use serde::Deserialize;

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
pub(crate) async fn list_flows(State(state): State<AppState>) -> Json<serde_json::Value> {
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
    state.engine().flows.latest_deployed(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "flow.not_found",
            format!("no flow `{id}`"),
        )
    })
}

pub(crate) async fn get_flow(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f = find(&state, &id).await?;
    let mut v = flow_summary(&f);
    v["source"] = serde_json::Value::String(f.source.to_string());
    Ok(Json(v))
}

pub(crate) async fn flow_ir(
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
pub(crate) struct GraphQuery {
    /// A deployed version (a case's); the latest by default.
    #[serde(default)]
    version: Option<u32>,
}

pub(crate) async fn flow_graph(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<axum::extract::Query<GraphQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(q) = q.map_err(crate::extract::bad_query)?;
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

pub(crate) async fn flow_deployments(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    find(&state, &id).await?;
    let items = state.engine().store.deployments(&id).await?;
    Ok(Json(serde_json::json!({"items": items})))
}

/// Validates a flow text; returns its diagnostics (the `check --format json` shape).
pub(crate) async fn validate(
    body: Result<Json<ValidateBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {}", e.body_text()),
        )
    })?;
    let syntax = crate::extract::syntax_of(body.syntax.as_deref())?;
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

#[cfg(test)]
mod tests {
    use crate::testkit::{ADMIN, app, call};
    use axum::http::StatusCode;

    #[tokio::test]
    async fn the_deployed_flows_are_listed_with_their_versions() {
        let (app, _) = app("flows").await;
        let (status, v) = call(&app, "GET", "/api/flows", Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["items"][0]["id"], "parallel_approval", "{v}");
        assert_eq!(v["items"][0]["deployed_version"], 1);
        let (status, v) = call(&app, "GET", "/api/flows/nope", Some(ADMIN), None).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("flow.not_found"))
        );
        let bad = serde_json::json!({"source": "flow broken {"});
        let (status, v) = call(&app, "POST", "/api/validate", Some(ADMIN), Some(bad)).await;
        assert_eq!(
            (status, v["ok"].as_bool()),
            (StatusCode::OK, Some(false)),
            "{v}"
        );
    }
}

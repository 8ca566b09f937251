//! Process packs over HTTP: list them, and deploy one as a unit — every file
//! valid and the whole pack committed in one transaction, or nothing deployed
//! and every diagnostic returned.

use crate::LoadedFlow;
use crate::api::{ApiError, AppState};
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::get;
use govflow_engine::core::CompiledFlow;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Largest pack upload, in bytes.
pub const MAX_PACK: usize = 4 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/packs",
        get(list_packs)
            .post(deploy_pack)
            .layer(DefaultBodyLimit::max(MAX_PACK)),
    )
}

async fn list_packs(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<_> = state.packs().into_values().collect();
    Json(json!({"items": items, "total": items.len()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackBody {
    /// The text of `pack.yaml`.
    manifest: String,
    /// File name → text, for every file the manifest lists.
    files: BTreeMap<String, String>,
}

async fn deploy_pack(
    State(state): State<AppState>,
    body: Result<Json<PackBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {}", e.body_text()),
        )
    })?;
    let loaded = govflow_dsl::pack::load_pack_texts("pack.yaml", &body.manifest, &body.files);
    let diagnostics: Vec<_> = loaded.reports().iter().flat_map(|r| r.to_json()).collect();
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == govflow_dsl::Severity::Error)
        .count();
    let manifest = match (&loaded.manifest, errors) {
        (Some(m), 0) => m.clone(),
        _ => {
            return Err(ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "pack.invalid",
                message: format!("the pack has {errors} error(s); nothing was deployed"),
                details: json!({"diagnostics": diagnostics}),
            });
        }
    };
    // Compile everything before writing anything.
    let mut compiled = Vec::new();
    for (file, text, l) in &loaded.flows {
        let Some(flow) = l.valid_flow().cloned() else {
            continue;
        };
        let c = CompiledFlow::new(flow.clone()).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "pack.invalid",
                e.to_string(),
            )
        })?;
        compiled.push((file.clone(), text.clone(), flow, c));
    }
    let items: Vec<(String, String, String)> = compiled
        .iter()
        .map(|(file, text, flow, _)| {
            (
                flow.id.clone(),
                text.clone(),
                format!("pack:{}/{file}", manifest.id),
            )
        })
        .collect();
    let now = govflow_engine::service::now_cst();
    let deployed = state
        .engine()
        .store
        .deploy_many(
            &manifest.id,
            &serde_json::to_string(&manifest).unwrap_or_default(),
            &items,
            "admin",
            now,
        )
        .await?;
    let mut out = Vec::new();
    for ((file, text, flow, c), (d, new)) in compiled.into_iter().zip(deployed) {
        state
            .engine()
            .flows
            .insert(c.with_revision(d.version as u32));
        state.set_flow(LoadedFlow {
            path: format!("pack:{}/{file}", manifest.id),
            source: text,
            flow,
        });
        out.push(json!({"flow": d.flow_id, "version": d.version, "hash": d.hash, "new": new}));
    }
    state.set_pack(manifest.clone());
    Ok(Json(json!({
        "pack": manifest,
        "deployed": out,
        "warnings": diagnostics,
    })))
}

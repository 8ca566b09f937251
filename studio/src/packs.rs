//! Process packs over HTTP: list them, and deploy one as a unit — every file
//! valid and the whole pack committed in one transaction, or nothing deployed
//! and every diagnostic returned.

use crate::dto::PackBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Largest pack upload, in bytes.
pub const MAX_PACK: usize = 4 * 1024 * 1024;

pub(crate) async fn list_packs(State(state): State<AppState>) -> Json<Value> {
    let items: Vec<_> = state
        .synced()
        .await
        .engine()
        .packs()
        .into_values()
        .collect();
    Json(json!({"items": items, "total": items.len()}))
}

pub(crate) async fn deploy_pack(
    State(state): State<AppState>,
    Extension(p): Extension<crate::auth::Principal>,
    body: Result<Json<PackBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("invalid request body: {}", e.body_text()),
        )
    })?;
    let out = state
        .engine()
        .deploy_pack(&body.manifest, &body.files, p.login())
        .await?;
    let deployed: Vec<Value> = out
        .flows
        .iter()
        .map(
            |(d, new)| json!({"flow": d.flow_id, "version": d.version, "hash": d.hash, "new": new}),
        )
        .collect();
    Ok(Json(json!({
        "pack": out.manifest,
        "deployed": deployed,
        "warnings": out.warnings,
    })))
}

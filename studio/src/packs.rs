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

/// Largest pack upload, in bytes (kept with the other size limits).
pub use crate::extract::MAX_PACK;

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
    let Json(body) = body.map_err(crate::extract::bad_body)?;
    // A pack is a folder of files: their names are plain file names.
    if let Some(bad) = body.files.keys().find(|name| {
        name.is_empty()
            || name.contains(['/', '\\'])
            || name.contains("..")
            || name.chars().any(char::is_control)
    }) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "pack.bad_file_name",
            format!(
                "`{bad}` 不是文件名：不能含路径分隔符或 `..` / `{bad}` is not a file name: no path separators, no `..`"
            ),
        ));
    }
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

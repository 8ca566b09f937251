//! Reading requests: the rejections of axum's extractors as `ApiError`s,
//! path ids, pages of lists.

use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;

pub(crate) fn bad_body(e: JsonRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("invalid request body: {}", e.body_text()),
    )
}

pub(crate) fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("invalid query: {}", e.body_text()),
    )
}

pub(crate) fn id_param(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`{raw}` is not an id (a whole number)"),
        )
    })
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

pub(crate) fn syntax_of(s: Option<&str>) -> Result<govflow_dsl::Syntax, ApiError> {
    match s {
        None | Some("dsl") => Ok(govflow_dsl::Syntax::Dsl),
        Some("yaml") => Ok(govflow_dsl::Syntax::Yaml),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("unknown syntax `{other}`; use `dsl` or `yaml`"),
        )),
    }
}

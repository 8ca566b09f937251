//! Reading requests: the rejections of axum's extractors as `ApiError`s,
//! path ids, pages of lists.

use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::StatusCode;

/// Largest pack upload, in bytes: a pack is uploaded whole.
pub const MAX_PACK: usize = 4 * 1024 * 1024;

pub(crate) fn bad_body(e: JsonRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return too_large();
    }
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("invalid request body: {}", e.body_text()),
    )
}

/// 413: the body is over the route's limit.
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "请求体超过上限（{0} KiB；流程包 {1} KiB） / the request body is over the limit ({0} KiB; a pack {1} KiB)",
            crate::MAX_BODY / 1024,
            MAX_PACK / 1024
        ),
    )
}

/// Refuses text the database cannot hold: the NUL character (U+0000) in the
/// path, the query or any string of a JSON body — PostgreSQL's text cannot
/// store it, and no name, number or opinion needs it. Answers 400 on every
/// backend alike. The body is read here (within the route's size limit) and
/// handed on unchanged.
pub(crate) async fn refuse_nul(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let nul = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request.nul",
            "文本不能包含空字符（U+0000） / text may not contain the NUL character (U+0000)",
        )
    };
    let has_nul = |s: &str| s.to_ascii_lowercase().contains("%00");
    if has_nul(req.uri().path()) || req.uri().query().is_some_and(has_nul) {
        return Err(nul());
    }
    let (parts, body) = req.into_parts();
    let limit = if parts.uri.path() == "/packs" {
        MAX_PACK
    } else {
        crate::MAX_BODY
    };
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())?;
    // Every body the API takes is a JSON object: serde would also read a
    // struct from an array (`[null, null]`), which no client means.
    if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
        && *first != b'{'
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "请求体应为 JSON 对象 / the body must be a JSON object",
        ));
    }
    // Only a body that spells the escape is parsed to look.
    if bytes.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000"))
        && serde_json::from_slice::<serde_json::Value>(&bytes).is_ok_and(|v| holds_nul(&v))
    {
        return Err(nul());
    }
    Ok(next
        .run(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        ))
        .await)
}

fn holds_nul(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(a) => a.iter().any(holds_nul),
        serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
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

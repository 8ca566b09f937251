//! Every instant the API gives carries its offset. The engine keeps instants
//! in China Standard Time without one (`2026-12-02T09:30:00`, the pure core's
//! `Time`); another system reading that could take it for UTC and be eight
//! hours out on every deadline. A layer on `/api` responses writes each such
//! instant as `2026-12-02T09:30:00+08:00` (dates stay dates). Instants a
//! client sends may carry the offset too ([`parse_instant`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;

/// The offset of China Standard Time, which every engine instant is in.
pub const CST: &str = "+08:00";

/// Responses larger than this are passed through untouched (none is today).
const MAX_REWRITE: usize = 64 * 1024 * 1024;

/// `YYYY-MM-DDTHH:MM:SS` exactly: an engine instant without its offset.
fn is_naive_instant(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 19
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// Appends the offset to every engine instant in `v`.
pub fn add_offsets(v: &mut Value) {
    match v {
        Value::String(s) if is_naive_instant(s) => s.push_str(CST),
        Value::Array(items) => items.iter_mut().for_each(add_offsets),
        Value::Object(m) => m.values_mut().for_each(add_offsets),
        _ => {}
    }
}

/// An instant a client sent, with or without `+08:00` (another offset is
/// refused: the engine's clock is China Standard Time).
pub fn parse_instant(s: &str) -> Option<chrono::NaiveDateTime> {
    let s = s.strip_suffix(CST).unwrap_or(s);
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok()
}

/// The response layer: JSON bodies get their instants' offsets.
pub async fn layer(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REWRITE).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let out = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            add_offsets(&mut v);
            serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_get_their_offset_and_dates_stay() {
        let mut v = serde_json::json!({
            "due": "2027-01-26T00:00:00", "due_date": "2027-01-25",
            "items": [{"at": "2026-12-02T09:30:00"}], "text": "2026-12-02T09:30:00 was then",
            "already": "2026-12-02T09:30:00+08:00",
        });
        add_offsets(&mut v);
        assert_eq!(v["due"], "2027-01-26T00:00:00+08:00");
        assert_eq!(v["due_date"], "2027-01-25");
        assert_eq!(v["items"][0]["at"], "2026-12-02T09:30:00+08:00");
        assert_eq!(v["text"], "2026-12-02T09:30:00 was then");
        assert_eq!(v["already"], "2026-12-02T09:30:00+08:00");
        assert!(parse_instant("2026-12-02T09:30:00+08:00").is_some());
        assert!(parse_instant("2026-12-02T09:30:00").is_some());
        assert!(parse_instant("2026-12-02T09:30:00Z").is_none());
    }
}

//! In-process tests of the routes: the real router over a real engine (on
//! the in-memory store), called with `Router::oneshot` — no port, no file,
//! no process. The end-to-end tests in tests/e2e run the binary.
#![allow(clippy::unwrap_used)]

use crate::auth::token_hash;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use govflow_engine::store::users::{Grant, User};
use std::sync::Arc;
use tower::util::ServiceExt;

pub(crate) const ADMIN: &str = "admin-token";
/// A clerk of the `window` department.
pub(crate) const CLERK: &str = "clerk-token";

/// A server with the reference flow deployed and one clerk.
pub(crate) async fn app(tag: &str) -> (Router, AppState) {
    let _ = tag;
    // The in-memory store: the layers above it are what these tests are about.
    let store = govflow_engine::store::Store::open("memory:", &Default::default())
        .await
        .unwrap();
    let engine = govflow_engine::service::Engine::new(
        store,
        Arc::new(govflow_engine::app::registry::Registry::new()),
        Arc::new(govflow_engine::calendar::Calendar::china()),
        None,
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let file = root.join("flows/reference/parallel_approval.flow");
    let source = std::fs::read_to_string(&file).unwrap();
    engine
        .deploy_flow(&source, "parallel_approval.flow", None, "test")
        .await
        .unwrap();
    let clerk = User {
        login: "clerk".into(),
        name: "王芳".into(),
        roles: vec![Grant {
            role: "clerk".into(),
            department: Some("window".into()),
            position: None,
        }],
        disabled: false,
    };
    let now = engine.now();
    engine
        .store
        .create_user(&clerk, None, "test", now)
        .await
        .unwrap();
    engine
        .store
        .add_token(
            "clerk",
            &token_hash(CLERK),
            "test",
            now + chrono::Duration::days(90),
            "test",
            now,
        )
        .await
        .unwrap();
    let state = AppState::new(engine, ADMIN.into());
    (crate::routes::app(state.clone()), state)
}

/// One request with an `Idempotency-Key`: (status, JSON body or Null).
pub(crate) async fn call_keyed(
    app: &Router,
    path: &str,
    token: &str,
    key: &str,
    body: serde_json::Value,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, req).await
}

/// Sends a request: (status, JSON body or Null).
async fn send(app: &Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 24)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// One request: (status, JSON body or Null).
pub(crate) async fn call(
    app: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    send(app, req).await
}

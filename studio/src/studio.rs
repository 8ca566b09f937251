//! What the web studio needs beyond the case and supervision routes: the
//! embedded page and its assets, who am I, the timers panel, deploying one
//! flow version from the editor with a diff against the running one, old
//! versions, rule files with a "try it" evaluation, and the calendar.

use crate::auth::Principal;
use crate::dto::{SourceBody, TimersBody, TryBody};
use crate::error::ApiError;
use crate::extract::{bad_body, syntax_of};
use crate::state::AppState;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use govflow_dsl::Syntax;
use serde_json::{Value, json};

/// The studio page and its assets, compiled into the binary: no request
/// leaves the machine and no front-end build runs. The script is native ES
/// modules, one per page or concern (`assets/js/`), loaded as they are.
const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_CSS: &str = include_str!("../assets/app.css");
const MODULES: &[(&str, &str)] = &[
    ("main.js", include_str!("../assets/js/main.js")),
    ("i18n.js", include_str!("../assets/js/i18n.js")),
    ("dom.js", include_str!("../assets/js/dom.js")),
    ("api.js", include_str!("../assets/js/api.js")),
    ("shell.js", include_str!("../assets/js/shell.js")),
    ("login.js", include_str!("../assets/js/login.js")),
    ("editor.js", include_str!("../assets/js/editor.js")),
    ("flows.js", include_str!("../assets/js/flows.js")),
    ("rules.js", include_str!("../assets/js/rules.js")),
    ("cases.js", include_str!("../assets/js/cases.js")),
    ("board.js", include_str!("../assets/js/board.js")),
    ("calendar.js", include_str!("../assets/js/calendar.js")),
    ("users.js", include_str!("../assets/js/users.js")),
];

/// `keywords.js`: the language's words for the editor, from the language crate.
fn keywords_module() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        let words = serde_json::to_string(&govflow_dsl::schema::highlight_words())
            .unwrap_or_else(|_| "[]".into());
        format!(
            "// govflow studio — the flow and rule languages' words (govflow_dsl::schema::highlight_words).\nexport const DSL_KEYWORDS = new Set({words});\n"
        )
    })
}

async fn module(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    const JS: &str = "text/javascript; charset=utf-8";
    if name == "keywords.js" {
        return asset(JS, keywords_module());
    }
    match MODULES.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => asset(JS, text),
        None => (StatusCode::NOT_FOUND, "no such module").into_response(),
    }
}

/// Routes outside `/api`.
pub fn pages() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route("/assets/js/{name}", get(module))
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Routes under `/api` (behind authentication).
pub(crate) async fn me(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let csrf = crate::auth::session_csrf(&state, &headers).await?;
    Ok(Json(match &p {
        Principal::Admin => json!({
            "login": "admin", "name": "管理员", "roles": [{"role": "admin"}], "csrf": csrf,
        }),
        Principal::User(u) => json!({
            "login": u.login, "name": u.name, "roles": u.roles, "csrf": csrf,
        }),
    }))
}

/// The deadlines of a flow text; with `set`, the text with one literal
/// rewritten (every other byte kept) and the deadlines of the new text.
pub(crate) async fn timers(
    body: Result<Json<TimersBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    let syntax = syntax_of(body.syntax.as_deref())?;
    let read = |text: &str| -> Result<govflow_dsl::Flow, ApiError> {
        govflow_dsl::load("input", text, syntax)
            .flow
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "flow.unreadable",
                    "the text cannot be read as a flow; fix the syntax errors first",
                )
            })
    };
    let flow = read(&body.source)?;
    let source = match &body.set {
        None => body.source,
        Some(s) => {
            govflow_dsl::timers::set(&flow, &body.source, &s.key, s.value, s.unit).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "timer.invalid",
                    e.to_string(),
                )
            })?
        }
    };
    let flow = read(&source)?;
    let items = govflow_dsl::timers::timers(&flow, &source);
    Ok(Json(json!({"source": source, "items": items})))
}

/// Deploys a new version of one flow from the editor. The text must be
/// valid and name the flow of the path; the same text deploys once.
pub(crate) async fn deploy_flow(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Result<Json<SourceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    let file = match syntax_of(body.syntax.as_deref())? {
        Syntax::Dsl => format!("studio:{id}.flow"),
        Syntax::Yaml => format!("studio:{id}.flow.yaml"),
    };
    let out = state
        .engine()
        .deploy_flow(&body.source, &file, Some(&id), p.login())
        .await?;
    let d = out.deployment;
    Ok(Json(json!({
        "flow": d.flow_id, "version": d.version, "hash": d.hash, "new": out.new,
        "warnings": out.warnings,
    })))
}

/// The changes from the running version's text to `source`, line by line.
pub(crate) async fn diff_flow(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<SourceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    syntax_of(body.syntax.as_deref())?;
    let running = crate::flows::find(&state, &id).await?;
    let version = Some(i64::from(running.flow.revision()));
    diff_json(&id, version, &running.source, &body.source)
}

fn diff_json(
    id: &str,
    version: Option<i64>,
    old: &str,
    new: &str,
) -> Result<Json<Value>, ApiError> {
    let lines = line_diff(old, new).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "diff.too_large",
            "the texts are too long to compare line by line (more than 20,000 lines)",
        )
    })?;
    let added = lines.iter().filter(|(op, _)| *op == '+').count();
    let removed = lines.iter().filter(|(op, _)| *op == '-').count();
    let items: Vec<Value> = lines
        .into_iter()
        .map(|(op, text)| json!({"op": op.to_string(), "text": text}))
        .collect();
    Ok(Json(json!({
        "id": id, "running_version": version, "added": added, "removed": removed,
        "lines": items,
    })))
}

/// A line diff (Myers, through `similar`): (' ' | '+' | '-', line).
/// `None` when either text has more than 20,000 lines.
pub(crate) fn line_diff(old: &str, new: &str) -> Option<Vec<(char, String)>> {
    if old.lines().count() > 20_000 || new.lines().count() > 20_000 {
        return None;
    }
    let diff = similar::TextDiff::from_lines(old, new);
    Some(
        diff.iter_all_changes()
            .map(|c| {
                let op = match c.tag() {
                    similar::ChangeTag::Equal => ' ',
                    similar::ChangeTag::Insert => '+',
                    similar::ChangeTag::Delete => '-',
                };
                (op, c.value().trim_end_matches(['\n', '\r']).to_string())
            })
            .collect(),
    )
}

/// The text of one deployed version.
pub(crate) async fn flow_version(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    version_json(&state, &id, &id, &version).await
}

async fn version_json(
    state: &AppState,
    deployment: &str,
    shown: &str,
    version: &str,
) -> Result<Json<Value>, ApiError> {
    let v: i64 = version.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("`{version}` is not a version number"),
        )
    })?;
    let sources = state.engine().store.deployment_sources().await?;
    let (d, source) = sources
        .into_iter()
        .find(|(d, _)| d.flow_id == deployment && d.version == v)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "version.not_found",
                format!("`{shown}` has no version {v}"),
            )
        })?;
    Ok(Json(json!({
        "id": shown, "version": d.version, "hash": d.hash, "file": d.file,
        "deployed_at": d.deployed_at, "deployed_by": d.deployed_by, "source": source,
    })))
}

const RULES: &str = govflow_engine::supervision::RULES_DEPLOYMENT;

fn rule_syntax(file: &str) -> Syntax {
    if file.ends_with(".rules") {
        Syntax::Dsl
    } else {
        Syntax::Yaml
    }
}

fn known_rule_file(file: &str) -> Result<(), ApiError> {
    if govflow_dsl::rule::is_rule_file(file) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "rules.not_found",
            format!("`{file}` is not a rule file name (*.rules, *.rules.yaml)"),
        ))
    }
}

/// Deploys a new version of one rule file (a new file too): the text must be
/// valid and the whole rule book with it must build (unique rule ids); it is
/// in force for the next command and scan, on every node.
pub(crate) async fn deploy_rule_file(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(file): Path<String>,
    body: Result<Json<SourceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    known_rule_file(&file)?;
    let from = format!("studio:{file}");
    let deployed = state
        .engine()
        .deploy_rule_files(&[(file.clone(), body.source, from)], p.login())
        .await?;
    let Some((d, new)) = deployed.into_iter().next() else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "nothing was deployed",
        ));
    };
    Ok(Json(json!({
        "file": file, "version": d.version, "hash": d.hash, "new": new,
        "rules": state.engine().rules().map_or(0, |b| b.len()),
    })))
}

pub(crate) async fn diff_rule_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    body: Result<Json<SourceBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    known_rule_file(&file)?;
    syntax_of(body.syntax.as_deref())?;
    let running = state
        .engine()
        .latest_rule_files()
        .await?
        .into_iter()
        .find(|(n, _, _)| *n == file);
    let (version, old) = running.map_or((None, String::new()), |(_, d, s)| (Some(d.version), s));
    diff_json(&file, version, &old, &body.source)
}

pub(crate) async fn rule_file_versions(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Json<Value>, ApiError> {
    known_rule_file(&file)?;
    let items = state
        .engine()
        .store
        .deployments(&format!("{RULES}{file}"))
        .await?;
    Ok(Json(json!({"items": items})))
}

pub(crate) async fn rule_file_version(
    State(state): State<AppState>,
    Path((file, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    known_rule_file(&file)?;
    version_json(&state, &format!("{RULES}{file}"), &file, &version).await
}

/// The rule files in force (their latest versions), with their texts, and
/// the efficiency scheme beside them (read-only).
pub(crate) async fn rule_files(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut items: Vec<Value> = state
        .engine()
        .latest_rule_files()
        .await?
        .into_iter()
        .map(|(name, d, text)| {
            json!({
                "file": name,
                "syntax": if rule_syntax(&name) == Syntax::Dsl { "dsl" } else { "yaml" },
                "kind": "rules",
                "version": d.version,
                "deployed_at": d.deployed_at,
                "deployed_by": d.deployed_by,
                "source": text,
            })
        })
        .collect();
    if let Some(dir) = state.rules_dir() {
        let path = dir.join("efficiency.yaml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            items.push(json!({
                "file": "efficiency.yaml", "syntax": "yaml", "kind": "efficiency",
                "version": null, "source": text,
            }));
        }
    }
    Ok(Json(json!({"items": items, "total": items.len()})))
}

/// "Try it": evaluates the rules of a text on a stored case, without storing
/// any card. Shows what each rule says, and why one could not be evaluated.
pub(crate) async fn try_rules(
    State(state): State<AppState>,
    body: Result<Json<TryBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_body)?;
    let syntax = syntax_of(body.syntax.as_deref())?;
    let name = if syntax == Syntax::Dsl {
        "try.rules"
    } else {
        "try.rules.yaml"
    };
    let loaded = govflow_dsl::rule::load_rules(name, &body.source, syntax);
    let Some(set) = loaded.rules.clone() else {
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "rules.invalid",
            message: "the rule file has errors; fix them to try it".into(),
            details: json!({"diagnostics": loaded.report.to_json()}),
        });
    };
    let book = govflow_engine::supervision::RuleBook::new(std::slice::from_ref(&set))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "rules.invalid", e))?;
    let now = match body.at.as_deref() {
        None | Some("") => state.now(),
        Some(t) => crate::offsets::parse_instant(t)
            .ok_or(())
            .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
            .map_err(|_| {
                // The document states the shape; a date that does not exist
                // (2026-02-30) is a question of meaning.
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "rules.bad_instant",
                    format!("`{t}` 不是时间，应如 2026-03-16T09:00:00 / `{t}` is not an instant like 2026-03-16T09:00:00"),
                )
            })?,
    };
    let engine = state.engine();
    let case = engine.store.case(&body.case).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "case.not_found",
            format!("no case `{}`", body.case),
        )
    })?;
    let flow = engine.flows.get(&case.flow_id, case.flow_version);
    let mut verdicts = book.evaluate(&case, flow.as_deref(), &engine.calendar(), now);
    govflow_engine::supervision::RuleBook::fill_departments(&mut verdicts, &case, flow.as_deref());
    let items: Vec<Value> = verdicts
        .iter()
        .map(|v| {
            json!({
                "rule": &*v.rule, "name": &*v.name, "class": &*v.class, "subtype": &*v.subtype,
                "subject": &*v.subject, "department": v.department,
                "level": v.level.map(|l| l.as_str()), "error": v.error,
            })
        })
        .collect();
    Ok(Json(
        json!({"case": body.case, "at": now, "rules": set.rules.len(), "items": items}),
    ))
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn diff_marks_changed_lines() {
        let d = line_diff("a\nb\nc\nd\n", "a\nB\nc\nd\ne\n").unwrap_or_default();
        let s: Vec<String> = d.iter().map(|(o, l)| format!("{o}{l}")).collect();
        assert_eq!(s, [" a", "-b", "+B", " c", " d", "+e"]);
        assert!(line_diff(&"x\n".repeat(20_001), "").is_none());
    }
}

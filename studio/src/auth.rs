//! Who is calling, and what they may do.
//!
//! Every `/api` route but `/api/health` needs `Authorization: Bearer TOKEN`:
//! the bootstrap administrator's `GOVFLOW_ADMIN_TOKEN`, or an API token made
//! for a user (`POST /api/users/{login}/tokens`). Each route names the roles
//! that may call it (`openapi::ROUTES`); `admin` may call every route. Staff
//! (`clerk`, `reviewer`) act only for their own departments: a command's `by`
//! must name one of them (and the user's position there, when the grant names
//! one), and its name is set to the user's.

use crate::api::{ApiError, AppState};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use govflow_engine::core::Actor;
use govflow_engine::service::now_cst;
use govflow_engine::users::{Grant, ROLES, User, token_hash};
use serde::Deserialize;
use serde_json::{Value, json};

/// The caller.
#[derive(Clone, Debug)]
pub enum Principal {
    /// The bootstrap administrator (`GOVFLOW_ADMIN_TOKEN`).
    Admin,
    User(User),
}

impl Principal {
    pub fn login(&self) -> &str {
        match self {
            Principal::Admin => "admin",
            Principal::User(u) => &u.login,
        }
    }

    fn may(&self, roles: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::User(u) => {
                u.has("admin")
                    || roles.split('|').any(|r| match r {
                        "any" => true,
                        "staff" => u.has("clerk") || u.has("reviewer"),
                        other => u.has(other),
                    })
            }
        }
    }

    /// The departments a staff member or supervisor acts for; `None` for
    /// administrators (every department).
    pub fn departments(&self) -> Option<Vec<String>> {
        match self {
            Principal::Admin => None,
            Principal::User(u) if u.has("admin") => None,
            Principal::User(u) => Some(
                u.roles
                    .iter()
                    .filter_map(|g| g.department.clone())
                    .collect(),
            ),
        }
    }

    /// Checks a command's `by` against the user's grants and sets its name to
    /// the user's. Administrators may act for anyone.
    pub fn check_actor(&self, by: &mut Actor) -> Result<(), ApiError> {
        let Principal::User(u) = self else {
            return Ok(());
        };
        if u.has("admin") {
            return Ok(());
        }
        let fits = |g: &Grant| {
            g.department.is_some()
                && g.department == by.department
                && g.position
                    .as_ref()
                    .is_none_or(|p| by.role.as_ref() == Some(p))
        };
        if !u.roles.iter().any(fits) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "auth.wrong_department",
                format!(
                    "{} acts for {}; not for {}",
                    u.login,
                    u.roles
                        .iter()
                        .filter_map(|g| g.department.as_ref().map(|d| match &g.position {
                            Some(p) => format!("{d}.{p}"),
                            None => d.clone(),
                        }))
                        .collect::<Vec<_>>()
                        .join(", "),
                    match (&by.department, &by.role) {
                        (Some(d), Some(r)) => format!("{d}.{r}"),
                        (Some(d), None) => d.clone(),
                        _ => "no department".into(),
                    }
                ),
            ));
        }
        by.name = u.name.clone();
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Resolves the bearer token to a principal and checks the route's roles.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let principal = match given {
        None => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authentication required: send `Authorization: Bearer <token>`",
            )
            .into_response();
        }
        Some(t) if constant_time_eq(t.as_bytes(), state.admin_token().as_bytes()) => {
            Principal::Admin
        }
        Some(t) => match state.engine().store.user_for_token(&token_hash(&t)).await {
            Ok(Some(u)) => Principal::User(u),
            Ok(None) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the bearer token is not valid",
                )
                .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
    };
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().trim_start_matches("/api").to_string())
        .unwrap_or_default();
    let method = req.method().as_str().to_ascii_lowercase();
    if let Some((_, _, _, _, roles)) = crate::openapi::ROUTES
        .iter()
        .find(|(m, p, ..)| *m == method && *p == path)
        && !principal.may(roles)
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "{method} /api{path} needs the role {}; {} has {}",
                roles.replace('|', " or "),
                principal.login(),
                match &principal {
                    Principal::Admin => "admin".to_string(),
                    Principal::User(u) => u
                        .roles
                        .iter()
                        .map(|g| g.role.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            ),
        )
        .into_response();
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    login: String,
    name: String,
    roles: Vec<Grant>,
}

/// An administrator adds a user (201); 409 when the login is taken.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(crate::cases::bad_body)?;
    let login_ok = !b.login.is_empty()
        && b.login.len() <= 64
        && b.login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !login_ok || b.name.trim().is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user.invalid",
            "a login is 1–64 letters, digits, `_`, `-` or `.`, and a user needs a name",
        ));
    }
    for g in &b.roles {
        if !ROLES.contains(&g.role.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "user.unknown_role",
                format!("unknown role `{}`; roles: {}", g.role, ROLES.join(", ")),
            ));
        }
        if matches!(g.role.as_str(), "clerk" | "reviewer") && g.department.is_none() {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "user.no_department",
                format!("a {} works for a department: add `department`", g.role),
            ));
        }
    }
    let u = User {
        login: b.login,
        name: b.name,
        roles: b.roles,
    };
    if !state
        .engine()
        .store
        .create_user(&u, p.login(), now_cst())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "user.exists",
            format!("login `{}` is taken", u.login),
        ));
    }
    Ok((StatusCode::CREATED, Json(json!(u))))
}

pub(crate) async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": state.engine().store.users().await?})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewToken {
    #[serde(default)]
    label: Option<String>,
}

/// An administrator makes an API token for a user; it is shown once.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(crate::cases::bad_body)?;
    let store = &state.engine().store;
    if !store.users().await?.iter().any(|u| u.login == login) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "user.not_found",
            format!("no user `{login}`"),
        ));
    }
    let token = random_token();
    let label = b.label.unwrap_or_else(|| "api".into());
    store
        .add_token(&login, &token_hash(&token), &label, p.login(), now_cst())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"login": login, "label": label, "token": token})),
    ))
}

/// 32 random bytes as hex, from the operating system.
fn random_token() -> String {
    use std::io::Read;
    let mut buf = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // No /dev/urandom: hash what varies (time, address, process).
        let seed = format!(
            "{:?}{:p}{}",
            std::time::SystemTime::now(),
            &buf,
            std::process::id()
        );
        let h = token_hash(&seed);
        return format!("{h}{}", token_hash(&h));
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

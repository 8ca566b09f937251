//! Users and their API tokens, as administrators manage them: making a user
//! (reserved logins refused, roles checked), disabling and enabling one,
//! a new password, new roles, making, listing and revoking tokens. Who is
//! calling and how they log in is `auth.rs`; the records are the store's.

use crate::auth::{MAX_PASSWORD, Principal, ROLES, hash_password, random_token, token_hash};
use crate::dto::{NewToken, NewUser};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use govflow_engine::store::users::{Grant, User};
use serde_json::{Value, json};

/// An administrator adds a user (201); 409 when the login is taken.
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(crate::extract::bad_body)?;
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
    if RESERVED.contains(&b.login.to_ascii_lowercase().as_str()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user.reserved",
            format!(
                "`{0}` 是引擎在审计日志中使用的保留名称，请换一个账号 / `{0}` is a name the engine itself signs with in the audit log; choose another login",
                b.login
            ),
        ));
    }
    check_grants(&b.roles)?;
    let hash = match &b.password {
        Some(pw) => Some(strong_hash(pw)?),
        None => None,
    };
    let u = User {
        login: b.login,
        name: b.name,
        roles: b.roles.into_iter().map(Into::into).collect(),
        disabled: false,
    };
    if !state
        .engine()
        .store
        .create_user(&u, hash.as_deref(), p.login(), state.now())
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

/// Logins the engine signs with in the audit log: no person may have them.
const RESERVED: &[&str] = &[
    "admin",
    "system",
    "timer",
    "engine",
    "root",
    "test",
    "supervision",
    "anonymous",
    "nobody",
];

/// The roles of a user must be known, and staff roles need a department.
fn check_grants(roles: &[crate::dto::Grant]) -> Result<(), ApiError> {
    for g in roles {
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
    Ok(())
}

/// The argon2id hash of a password of at least 10 characters.
fn strong_hash(pw: &str) -> Result<String, ApiError> {
    if pw.chars().count() < 10 || pw.chars().count() > MAX_PASSWORD {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user.weak_password",
            "密码为 10 至 1024 个字符 / a password has 10 to 1,024 characters",
        ));
    }
    hash_password(pw)
}

fn no_user(login: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "user.not_found",
        format!("没有用户 `{login}` / no user `{login}`"),
    )
}

/// An administrator disables a user (their sessions end; their tokens stop
/// working) or enables them again.
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, &p, &login, true).await
}

pub(crate) async fn enable_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
) -> Result<Json<Value>, ApiError> {
    set_disabled(&state, &p, &login, false).await
}

async fn set_disabled(
    state: &AppState,
    p: &Principal,
    login: &str,
    disabled: bool,
) -> Result<Json<Value>, ApiError> {
    if disabled && login == p.login() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "user.self",
            "管理员不能停用自己的账号 / an administrator does not disable their own login",
        ));
    }
    let store = &state.engine().store;
    if !store
        .set_disabled(login, disabled, p.login(), state.now())
        .await?
    {
        return Err(no_user(login));
    }
    Ok(Json(json!({"login": login, "disabled": disabled})))
}

/// An administrator sets a user's password; their sessions end.
pub(crate) async fn set_password(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
    body: Result<Json<crate::dto::PasswordBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(crate::extract::bad_body)?;
    let hash = strong_hash(&b.password)?;
    let store = &state.engine().store;
    if !store
        .set_password(&login, Some(&hash), p.login(), state.now())
        .await?
    {
        return Err(no_user(&login));
    }
    Ok(Json(json!({"login": login, "sessions_ended": true})))
}

/// An administrator replaces a user's roles.
pub(crate) async fn set_roles(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
    body: Result<Json<crate::dto::RolesBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(b) = body.map_err(crate::extract::bad_body)?;
    check_grants(&b.roles)?;
    let roles: Vec<Grant> = b.roles.into_iter().map(Into::into).collect();
    let store = &state.engine().store;
    if !store
        .set_roles(&login, &roles, p.login(), state.now())
        .await?
    {
        return Err(no_user(&login));
    }
    Ok(Json(json!({"login": login, "roles": roles})))
}

/// A user's API tokens: label, made, expires, revoked (never the token).
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Path(login): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({"items": state.engine().store.tokens(&login).await?}),
    ))
}

/// An administrator revokes a token (by the id the list shows).
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((login, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let store = &state.engine().store;
    if !store
        .revoke_token(&login, &id, p.login(), state.now())
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "token.not_found",
            format!("`{login}` 没有有效的令牌 `{id}` / `{login}` has no live token `{id}`"),
        ));
    }
    Ok(Json(json!({"login": login, "id": id, "revoked": true})))
}

pub(crate) async fn list_users(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": state.engine().store.users().await?})))
}

/// An administrator makes an API token for a user; it is shown once.
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(login): Path<String>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body.map_err(crate::extract::bad_body)?;
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
    let days = b.expires_days.unwrap_or(90);
    if !(1..=365).contains(&days) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "token.lifetime",
            "令牌有效期为 1–365 天（`expires_days`，默认 90 天） / a token lives 1 to 365 days (`expires_days`, 90 by default)",
        ));
    }
    let expires = state.now() + chrono::Duration::days(i64::from(days));
    let hash = token_hash(&token);
    store
        .add_token(&login, &hash, &label, expires, p.login(), state.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"login": login, "label": label, "token": token,
            "id": &hash[..16], "expires_at": expires})),
    ))
}

//! Who is calling, and what they may do.
//!
//! Every `/api` route but `/api/health` needs `Authorization: Bearer TOKEN`:
//! the bootstrap administrator's `GOVFLOW_ADMIN_TOKEN`, or an API token made
//! for a user (`POST /api/users/{login}/tokens`). Each route names the roles
//! that may call it (`openapi::ROUTES`); `admin` may call every route. Staff
//! (`clerk`, `reviewer`) act only for their own departments: a command's `by`
//! must name one of them (and the user's position there, when the grant names
//! one), and its name is set to the user's.

use crate::dto::LoginBody;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use govflow_engine::core::Actor;
use govflow_engine::store::users::{Grant, User};

/// The roles: `admin`, `analyst` (flows), `deployer` (packs), `clerk` and
/// `reviewer` (a department's staff; `position` narrows to one of the flow's
/// roles, e.g. `clerk` of `window`), `supervisor`, `integration` (a system
/// that reports payments and item cases' results).
pub const ROLES: &[&str] = &[
    "admin",
    "analyst",
    "deployer",
    "clerk",
    "reviewer",
    "supervisor",
    "integration",
];

/// What a stored token or session id is known by: its SHA-256 (the secret
/// itself is shown once and never stored).
pub(crate) fn token_hash(token: &str) -> String {
    govflow_engine::store::source_hash(token)
}

/// A user's roles, as the role checks read them.
pub(crate) trait Roles {
    fn has(&self, role: &str) -> bool;
}

impl Roles for User {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|g| g.role == role)
    }
}
use serde_json::json;

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

    /// The user holds `role` (the administrator holds every role).
    pub fn has_role(&self, role: &str) -> bool {
        match self {
            Principal::Admin => true,
            Principal::User(u) => u.has(role) || u.has("admin"),
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
            // Only staff grants make a department the user's.
            Principal::User(u) => Some(
                u.roles
                    .iter()
                    .filter(|g| matches!(g.role.as_str(), "clerk" | "reviewer"))
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
        // A position narrows which of the flow's roles its holder may act
        // as; acting without a role (a step open to the whole department,
        // such as a supervision order's reply) it does not narrow. The core
        // still checks every task's role.
        let fits = |g: &Grant| {
            g.department.is_some()
                && g.department == by.department
                && g.position
                    .as_ref()
                    .is_none_or(|p| by.role.as_ref().is_none_or(|r| r == p))
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
    let session = session_cookie(req.headers());
    let principal = match (given, session) {
        (None, Some(id)) => match state
            .engine()
            .store
            .session(&token_hash(&id), state.now())
            .await
        {
            Ok(Some((u, csrf))) => {
                // Writes from a browser session echo the session's CSRF token.
                let safe = matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS");
                let echoed = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| constant_time_eq(t.as_bytes(), csrf.as_bytes()));
                if !safe && !echoed {
                    return ApiError::new(
                        StatusCode::FORBIDDEN,
                        "auth.csrf",
                        "a write from a session needs the `X-CSRF-Token` header the login returned",
                    )
                    .into_response();
                }
                Principal::User(u)
            }
            Ok(None) => {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "the session has ended; log in again",
                )
                .into_response();
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        (None, None) => {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "authentication required: send `Authorization: Bearer <token>` or log in",
            )
            .into_response();
        }
        (Some(t), _) if constant_time_eq(t.as_bytes(), state.admin_token().as_bytes()) => {
            Principal::Admin
        }
        (Some(t), _) => match state
            .engine()
            .store
            .user_for_token(&token_hash(&t), state.now())
            .await
        {
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
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The role rule of one route (`routes::table`), checked after
/// `authenticate`: a caller without one of `roles` is refused, and so is a
/// request that reached a route without being authenticated.
pub(crate) async fn require_roles(
    State(roles): State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let Some(principal) = req.extensions().get::<Principal>() else {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "authentication required: send `Authorization: Bearer <token>` or log in",
        )
        .into_response();
    };
    if !principal.may(roles) {
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        let method = req.method().as_str().to_ascii_lowercase();
        let has = match principal {
            Principal::Admin => "admin".to_string(),
            Principal::User(u) => u
                .roles
                .iter()
                .map(|g| g.role.clone())
                .collect::<Vec<_>>()
                .join(", "),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "auth.forbidden",
            format!(
                "{method} {path} 需要角色 {}；{} 的角色：{has} / {method} {path} needs the role {}; {} has {has}",
                roles.replace('|', " 或 "),
                principal.login(),
                roles.replace('|', " or "),
                principal.login(),
            ),
        )
        .into_response();
    }
    next.run(req).await
}

pub(crate) fn hash_password(pw: &str) -> Result<String, ApiError> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(&random_bytes::<16>()).map_err(|e| internal(&e))?;
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| internal(&e))
}

fn verify_password(pw: &str, stored: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &h)
            .is_ok()
    })
}

pub(crate) fn internal(e: &dyn std::fmt::Display) -> ApiError {
    eprintln!("auth: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "see the server log",
    )
}

const SESSION_COOKIE: &str = "govflow_session";
/// Sessions last a working day.
const SESSION_HOURS: i64 = 12;

/// The CSRF token of the caller's session, when it is a browser session
/// (the studio reads it again after a reload).
pub(crate) async fn session_csrf(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<String>, ApiError> {
    let Some(id) = session_cookie(headers) else {
        return Ok(None);
    };
    Ok(state
        .engine()
        .store
        .session(&token_hash(&id), state.now())
        .await?
        .map(|(_, csrf)| csrf))
}

fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The client's address, as the connection gave it (no proxy header is
/// trusted); the unspecified address where there is none (in-process tests).
pub(crate) struct ClientAddr(pub(crate) std::net::IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip()),
        ))
    }
}

/// A hash no password matches: an unknown login is verified against it, so
/// it takes as long as a known one (no timing tells which logins exist).
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&random_token()).unwrap_or_default());

/// The longest password checked (argon2 on a huge text is work an attacker
/// chooses); longer ones are refused unread.
pub(crate) const MAX_PASSWORD: usize = 1024;

/// 429 with `Retry-After`: too many attempts from this address.
fn throttled(login: &str, wait: u64) -> Response {
    let shown: String = login
        .chars()
        .filter(|c| !c.is_control())
        .take(crate::throttle::MAX_LOGIN)
        .collect();
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "auth.throttled",
        format!(
            "此地址登录 `{shown}` 的尝试过多，请 {wait} 秒后再试 / too many login attempts for `{shown}` from this address; try again in {wait} s"
        ),
    )
    .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&wait.to_string()) {
        r.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
    }
    r
}

/// Logs in: a session cookie (HttpOnly, Secure, SameSite=Strict) and the
/// CSRF token writes must echo in `X-CSRF-Token`. Repeated failures wait.
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body.map_err(crate::extract::bad_body)?;
    let login_ok = !b.login.is_empty()
        && b.login.chars().count() <= crate::throttle::MAX_LOGIN
        && !b.login.chars().any(char::is_control);
    if !login_ok || b.password.chars().count() > MAX_PASSWORD || b.password.contains('\0') {
        if let Err(wait) = state.inner_throttle().address(addr) {
            return Ok(throttled(&b.login, wait));
        }
        // Audited like any failed login, with the name made printable.
        let name: String = b
            .login
            .chars()
            .filter(|c| !c.is_control())
            .take(crate::throttle::MAX_LOGIN)
            .collect();
        state
            .engine()
            .store
            .record_audit(
                "anonymous",
                "login.refused",
                &json!({"login": name}).to_string(),
                state.now(),
            )
            .await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "auth.bad_login",
            format!(
                "账号为 1–{0} 个字符且不含控制字符，密码不超过 {MAX_PASSWORD} 个字符 / a login is 1–{0} characters without control characters, a password at most {MAX_PASSWORD} characters",
                crate::throttle::MAX_LOGIN
            ),
        ));
    }
    // Counted before the password is checked: guesses sent at once all count.
    if let Err(wait) = state.inner_throttle().attempt(&b.login, addr) {
        return Ok(throttled(&b.login, wait));
    }
    let store = &state.engine().store;
    let found = store.user_with_password(&b.login).await?;
    let user = match found {
        Some((u, Some(hash))) if verify_password(&b.password, &hash) => u,
        other => {
            if !matches!(other, Some((_, Some(_)))) {
                // The same work as a known login's check.
                verify_password(&b.password, &DUMMY_HASH);
            }
            // Failed logins are audited too: by `anonymous`, with the login
            // as typed in the detail (never the password).
            let name: String = b.login.chars().take(64).collect();
            store
                .record_audit(
                    "anonymous",
                    "login.failed",
                    &json!({"login": name}).to_string(),
                    state.now(),
                )
                .await?;
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "auth.login_failed",
                "账号或密码错误 / wrong login or password",
            ));
        }
    };
    let id = random_token();
    let csrf = random_token();
    let expires = state.now() + chrono::Duration::hours(SESSION_HOURS);
    store
        .add_session(&token_hash(&id), &user.login, &csrf, expires, state.now())
        .await?;
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_HOURS * 3600
    );
    let mut r =
        Json(json!({"login": user.login, "name": user.name, "roles": user.roles, "csrf": csrf}))
            .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Ends the session of the cookie sent.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(id) = session_cookie(&headers) {
        let store = &state.engine().store;
        let hash = token_hash(&id);
        let who = store
            .session(&hash, state.now())
            .await?
            .map_or_else(|| "unknown".to_string(), |(u, _)| u.login);
        store.end_session(&hash, &who, state.now()).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
    )) {
        r.headers_mut().insert(axum::http::header::SET_COOKIE, v);
    }
    Ok(r)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use std::io::Read;
    let mut buf = [0u8; N];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        let seed = token_hash(&format!(
            "{:?}{}",
            std::time::SystemTime::now(),
            std::process::id()
        ));
        for (b, c) in buf.iter_mut().zip(seed.bytes().cycle()) {
            *b = c;
        }
    }
    buf
}

/// 32 random bytes as hex, from the operating system.
pub(crate) fn random_token() -> String {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::testkit::{ADMIN, app, call};
    use axum::http::StatusCode;
    use serde_json::json;

    /// Huge login names are refused before anything is kept for them: the
    /// throttle holds no key after 10,000 distinct ones.
    #[tokio::test]
    async fn huge_login_names_leave_no_trace() {
        let (app, state) = app("huge-logins").await;
        let pad = "x".repeat(16 * 1024);
        let mut refused = 0;
        let t0 = std::time::Instant::now();
        for i in 0..10_000 {
            let body = json!({"login": format!("{i}{pad}"), "password": "whatever"});
            let (s, v) = call(&app, "POST", "/api/login", None, Some(body)).await;
            match s {
                StatusCode::BAD_REQUEST => {
                    assert_eq!(v["code"], "auth.bad_login");
                    refused += 1;
                }
                // The address's own budget is spent on them too.
                StatusCode::TOO_MANY_REQUESTS => assert_eq!(v["code"], "auth.throttled"),
                other => panic!("{other}: {v}"),
            }
        }
        // The address's burst of 20, then one more per 3 s the loop took.
        let refill = t0.elapsed().as_secs() / 3;
        assert!(
            (20..=21 + refill).contains(&refused),
            "the address's burst, then it waits: {refused} in {:?}",
            t0.elapsed()
        );
        // One key: the address; none for the names.
        assert_eq!(state.inner_throttle().keys(), 1);
        // A NUL anywhere in a body is refused before any handler reads it.
        let body = json!({"login": "a\u{0}b", "password": "whatever"});
        let (s, v) = call(&app, "POST", "/api/login", None, Some(body)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request.nul"))
        );
    }

    /// Reserved logins are refused; a disabled user's token stops at once;
    /// a revoked token too; a token's lifetime is bounded.
    #[tokio::test]
    async fn user_and_token_lifecycle() {
        let (app, _) = app("lifecycle").await;
        for reserved in ["system", "timer", "Engine", "admin"] {
            let body = json!({"login": reserved, "name": "x", "roles": []});
            let (s, v) = call(&app, "POST", "/api/users", Some(ADMIN), Some(body)).await;
            assert_eq!(
                (s, v["code"].as_str()),
                (StatusCode::UNPROCESSABLE_ENTITY, Some("user.reserved")),
                "{v}"
            );
        }
        let body = json!({"login": "zhao", "name": "赵", "roles": [{"role": "clerk", "department": "window"}]});
        assert_eq!(
            call(&app, "POST", "/api/users", Some(ADMIN), Some(body))
                .await
                .0,
            StatusCode::CREATED
        );
        let (s, v) = call(
            &app,
            "POST",
            "/api/users/zhao/tokens",
            Some(ADMIN),
            Some(json!({"expires_days": 400})),
        )
        .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("token.lifetime")),
            "{v}"
        );
        let (s, v) = call(
            &app,
            "POST",
            "/api/users/zhao/tokens",
            Some(ADMIN),
            Some(json!({"label": "ci"})),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let token = v["token"].as_str().unwrap().to_string();
        let id = v["id"].as_str().unwrap().to_string();
        assert!(v["expires_at"].as_str().is_some(), "{v}");
        assert_eq!(
            call(&app, "GET", "/api/me", Some(&token), None).await.0,
            StatusCode::OK
        );
        // Disabled: the token stops; enabled: it works again.
        assert_eq!(
            call(&app, "POST", "/api/users/zhao/disable", Some(ADMIN), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "GET", "/api/me", Some(&token), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&app, "POST", "/api/users/zhao/enable", Some(ADMIN), None)
                .await
                .0,
            StatusCode::OK
        );
        assert_eq!(
            call(&app, "GET", "/api/me", Some(&token), None).await.0,
            StatusCode::OK
        );
        // Revoked: it stops for good.
        let (s, v) = call(
            &app,
            "POST",
            &format!("/api/users/zhao/tokens/{id}/revoke"),
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(
            call(&app, "GET", "/api/me", Some(&token), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (_, v) = call(&app, "GET", "/api/users/zhao/tokens", Some(ADMIN), None).await;
        assert!(v["items"][0]["revoked_at"].as_str().is_some(), "{v}");
        assert!(
            !v.to_string().contains(&token),
            "the token itself is never listed"
        );
        // New roles; a password of at least 10 characters.
        let roles = json!({"roles": [{"role": "reviewer", "department": "dev"}]});
        assert_eq!(
            call(
                &app,
                "PUT",
                "/api/users/zhao/roles",
                Some(ADMIN),
                Some(roles)
            )
            .await
            .0,
            StatusCode::OK
        );
        let (s, _) = call(
            &app,
            "PUT",
            "/api/users/zhao/password",
            Some(ADMIN),
            Some(json!({"password": "short"})),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _) = call(
            &app,
            "PUT",
            "/api/users/nobody/password",
            Some(ADMIN),
            Some(json!({"password": "long enough password"})),
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    /// Guesses sent at once are counted before any is checked: of 100
    /// parallel wrong passwords from one address, 5 are checked (401) and
    /// the rest wait (429).
    #[tokio::test]
    async fn parallel_guesses_count_before_they_are_checked() {
        let (app, _) = app("guesses").await;
        let user = json!({"login": "lina", "name": "李娜", "password": "correct horse battery",
            "roles": [{"role": "clerk", "department": "window"}]});
        let (s, v) = call(&app, "POST", "/api/users", Some(ADMIN), Some(user)).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100 {
            let app = app.clone();
            set.spawn(async move {
                let body = json!({"login": "lina", "password": format!("guess {i}")});
                call(&app, "POST", "/api/login", None, Some(body)).await.0
            });
        }
        let (mut checked, mut waited) = (0, 0);
        while let Some(s) = set.join_next().await {
            match s.unwrap() {
                StatusCode::UNAUTHORIZED => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => waited += 1,
                other => panic!("{other}"),
            }
        }
        assert_eq!((checked, waited), (5, 95));
    }
}

//! The records of users, their API tokens and login sessions, for every SQL
//! dialect. What they mean — the roles, who may do what, how a token or a
//! session id is hashed — is the server's (`studio/src/auth.rs`); the store
//! keeps only hashes, in the same database and transactions as the audit log.

use crate::core::Time;
use crate::store::cards::audit;
use crate::store::sql::{Dialect, Query, SqlRow, q};
use crate::store::{StoreError, UserStore, fmt_ts};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
/// A role granted to a user, in a department (and position).
pub struct Grant {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
/// A user as stored.
pub struct User {
    pub login: String,
    pub name: String,
    pub roles: Vec<Grant>,
    /// A disabled user can neither log in nor use a token.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// An API token as listed (its hash is never shown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The first 16 hex digits of the token's hash: enough to name it.
    pub id: String,
    pub label: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

const TOKEN_ID: usize = 16;

#[async_trait]
impl<D: Dialect> UserStore for D {
    /// Creates a user; false when the login is taken.
    async fn create_user(
        &self,
        u: &User,
        password_hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let roles = serde_json::to_string(&u.roles).unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin().await?;
        let made = q(
            "INSERT INTO users (login, name, roles, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (login) DO NOTHING",
        )
        .bind(&u.login)
        .bind(&u.name)
        .bind(&roles)
        .bind(password_hash)
        .bind(&stamp)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if made {
            audit(
                &mut *tx,
                &stamp,
                actor,
                "user.create",
                json!({"login": u.login, "roles": u.roles}).to_string(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(made)
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows = q("SELECT login, name, roles, disabled_at FROM users ORDER BY login")
            .fetch_all(&mut *self.writes().acquire().await?)
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            out.push(read_user(r)?);
        }
        Ok(out)
    }

    /// Records a token (its hash) for a user.
    async fn add_token(
        &self,
        login: &str,
        hash: &str,
        label: &str,
        expires: Time,
        actor: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        let until = fmt_ts(expires);
        let mut tx = self.begin().await?;
        q("INSERT INTO api_tokens (hash, login, label, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(hash)
            .bind(login)
            .bind(label)
            .bind(&stamp)
            .bind(&until)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut *tx,
            &stamp,
            actor,
            "token.create",
            json!({"login": login, "label": label, "id": &hash[..hash.len().min(TOKEN_ID)], "expires_at": until}).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn tokens(&self, login: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = q("SELECT hash, label, created_at, expires_at, revoked_at FROM api_tokens WHERE login = $1 ORDER BY created_at, hash")
            .bind(login)
            .fetch_all(&mut *self.writes().acquire().await?)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let hash: String = r.try_get("hash")?;
            out.push(TokenInfo {
                id: hash.chars().take(TOKEN_ID).collect(),
                label: r.try_get("label")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
                revoked_at: r.try_get("revoked_at")?,
            });
        }
        Ok(out)
    }

    async fn revoke_token(
        &self,
        login: &str,
        id: &str,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        if id.len() != TOKEN_ID || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let done = q("UPDATE api_tokens SET revoked_at = $1 WHERE login = $2 AND substr(hash, 1, 16) = $3 AND revoked_at IS NULL")
            .bind(&stamp)
            .bind(login)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if done {
            audit(
                &mut *tx,
                &stamp,
                actor,
                "token.revoke",
                json!({"login": login, "id": id}).to_string(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn set_disabled(
        &self,
        login: &str,
        disabled: bool,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let update = q("UPDATE users SET disabled_at = $1 WHERE login = $2")
            .bind(disabled.then_some(stamp.as_str()))
            .bind(login);
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let detail = json!({"login": login}).to_string();
        change_user(
            self,
            update,
            login,
            disabled,
            (actor, action, detail),
            &stamp,
        )
        .await
    }

    async fn set_password(
        &self,
        login: &str,
        hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let update = q("UPDATE users SET password_hash = $1 WHERE login = $2")
            .bind(hash)
            .bind(login);
        let detail = json!({"login": login}).to_string();
        change_user(
            self,
            update,
            login,
            true,
            (actor, "user.password", detail),
            &stamp,
        )
        .await
    }

    async fn set_roles(
        &self,
        login: &str,
        roles: &[Grant],
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let text = serde_json::to_string(roles).unwrap_or_else(|_| "[]".into());
        let update = q("UPDATE users SET roles = $1 WHERE login = $2")
            .bind(&text)
            .bind(login);
        let detail = json!({"login": login, "roles": roles}).to_string();
        change_user(
            self,
            update,
            login,
            false,
            (actor, "user.roles", detail),
            &stamp,
        )
        .await
    }

    /// A user and their password hash (for a login).
    async fn user_with_password(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = q("SELECT login, name, roles, disabled_at, password_hash FROM users WHERE login = $1 AND disabled_at IS NULL")
            .bind(login)
            .fetch_optional(&mut *self.writes().acquire().await?)
            .await?;
        match row {
            Some(r) => Ok(Some((read_user(&r)?, r.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// Starts a session (its cookie's hash), valid until `expires`.
    async fn add_session(
        &self,
        hash: &str,
        login: &str,
        csrf: &str,
        expires: Time,
        now: Time,
    ) -> Result<(), StoreError> {
        let until = fmt_ts(expires);
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        q("INSERT INTO sessions (hash, login, csrf, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(login)
            .bind(csrf)
            .bind(&until)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut *tx,
            &stamp,
            login,
            "login",
            json!({"until": until}).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user of a live session, with its CSRF token.
    async fn session(&self, hash: &str, now: Time) -> Result<Option<(User, String)>, StoreError> {
        let stamp = fmt_ts(now);
        let row = q(
            "SELECT u.login, u.name, u.roles, u.disabled_at, s.csrf FROM sessions s JOIN users u ON u.login = s.login WHERE s.hash = $1 AND s.expires_at > $2 AND u.disabled_at IS NULL",
        )
        .bind(hash)
        .bind(&stamp)
        .fetch_optional(&mut *self.writes().acquire().await?)
        .await?;
        match row {
            Some(r) => Ok(Some((read_user(&r)?, r.try_get("csrf")?))),
            None => Ok(None),
        }
    }

    async fn end_session(&self, hash: &str, actor: &str, now: Time) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        let gone = q("DELETE FROM sessions WHERE hash = $1")
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone > 0 {
            audit(&mut *tx, &stamp, actor, "logout", "{}".to_string()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The user a token belongs to.
    async fn user_for_token(&self, hash: &str, now: Time) -> Result<Option<User>, StoreError> {
        let row = q(
            "SELECT u.login, u.name, u.roles, u.disabled_at FROM api_tokens t JOIN users u ON u.login = t.login WHERE t.hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) AND u.disabled_at IS NULL",
        )
        .bind(hash)
        .bind(fmt_ts(now))
        .fetch_optional(&mut *self.writes().acquire().await?)
        .await?;
        match row {
            Some(r) => Ok(Some(read_user(&r)?)),
            None => Ok(None),
        }
    }
}

/// Changes one user in a transaction: `update` (naming the user); when it
/// changed a row, their sessions end (with `end_sessions`) and the audit row
/// (actor, action, detail) is written. False when there is no such user.
async fn change_user<D: Dialect>(
    s: &D,
    update: Query<'_>,
    login: &str,
    end_sessions: bool,
    (actor, action, detail): (&str, &str, String),
    stamp: &str,
) -> Result<bool, StoreError> {
    let mut tx = s.begin().await?;
    let done = update.execute(&mut *tx).await?.rows_affected() > 0;
    if done {
        if end_sessions {
            q("DELETE FROM sessions WHERE login = $1")
                .bind(login)
                .execute(&mut *tx)
                .await?;
        }
        audit(&mut *tx, stamp, actor, action, detail).await?;
    }
    tx.commit().await?;
    Ok(done)
}

fn read_user<R: SqlRow>(r: &R) -> Result<User, StoreError> {
    let roles: String = r.try_get("roles")?;
    let disabled: Option<String> = r.try_get("disabled_at")?;
    Ok(User {
        disabled: disabled.is_some(),
        login: r.try_get("login")?,
        name: r.try_get("name")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt {
            what: "user roles".into(),
            message: e.to_string(),
        })?,
    })
}

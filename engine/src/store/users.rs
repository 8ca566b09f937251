//! The records of users, their API tokens and login sessions, for every SQL
//! dialect. What they mean — the roles, who may do what, how a token or a
//! session id is hashed — is the server's (`studio/src/auth.rs`); the store
//! keeps only hashes, in the same database and transactions as the audit log.

use crate::core::Time;
use crate::store::cards::audit;
use crate::store::sql::{Dialect, SqlRow, q};
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
}

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
        let rows = q("SELECT login, name, roles FROM users ORDER BY login")
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
        actor: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        let mut tx = self.begin().await?;
        q("INSERT INTO api_tokens (hash, login, label, created_at) VALUES ($1, $2, $3, $4)")
            .bind(hash)
            .bind(login)
            .bind(label)
            .bind(&stamp)
            .execute(&mut *tx)
            .await?;
        audit(
            &mut *tx,
            &stamp,
            actor,
            "token.create",
            json!({"login": login, "label": label}).to_string(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user and their password hash (for a login).
    async fn user_with_password(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = q("SELECT login, name, roles, password_hash FROM users WHERE login = $1")
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
            "SELECT u.login, u.name, u.roles, s.csrf FROM sessions s JOIN users u ON u.login = s.login WHERE s.hash = $1 AND s.expires_at > $2",
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
    async fn user_for_token(&self, hash: &str) -> Result<Option<User>, StoreError> {
        let row = q(
            "SELECT u.login, u.name, u.roles FROM api_tokens t JOIN users u ON u.login = t.login WHERE t.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *self.writes().acquire().await?)
        .await?;
        match row {
            Some(r) => Ok(Some(read_user(&r)?)),
            None => Ok(None),
        }
    }
}

fn read_user<R: SqlRow>(r: &R) -> Result<User, StoreError> {
    let roles: String = r.try_get("roles")?;
    Ok(User {
        login: r.try_get("login")?,
        name: r.try_get("name")?,
        roles: serde_json::from_str(&roles).map_err(|e| StoreError::Corrupt {
            what: "user roles".into(),
            message: e.to_string(),
        })?,
    })
}

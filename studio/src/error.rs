//! `ApiError` — status, stable code, message, details — and how every error
//! of the engine becomes one. Internals are logged, never shown.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use govflow_engine::core::CommandError;
use govflow_engine::core::card::CardError;
use govflow_engine::service::OrderError;
use govflow_engine::store::ExecError;
use govflow_engine::store::cards::AlarmError;
use serde_json::{Value, json};

/// An API error: status, stable code, message and details.
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) details: serde_json::Value,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"code": self.code, "message": self.message, "details": self.details});
        (self.status, Json(body)).into_response()
    }
}

impl From<govflow_engine::store::StoreError> for ApiError {
    fn from(e: govflow_engine::store::StoreError) -> ApiError {
        // Internals are logged, not shown.
        eprintln!("storage error: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "storage error; see the server log",
        )
    }
}

impl From<govflow_engine::service::DeployError> for ApiError {
    fn from(e: govflow_engine::service::DeployError) -> ApiError {
        use govflow_engine::service::DeployError as D;
        match e {
            D::Invalid {
                code,
                message,
                diagnostics,
            } => ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                message,
                details: serde_json::json!({ "diagnostics": diagnostics }),
            },
            D::IdMismatch { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "flow.id_mismatch",
                e.to_string(),
            ),
            D::NotRuleFile(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "rules.not_found", e.to_string())
            }
            D::Store(e) => e.into(),
        }
    }
}

fn command_status(e: &CommandError) -> StatusCode {
    match e {
        CommandError::WrongAssignee { .. } => StatusCode::FORBIDDEN,
        CommandError::InvalidPerson { .. }
        | CommandError::UnknownMaterial { .. }
        | CommandError::IncompleteNotice { .. }
        | CommandError::SecondNotice { .. }
        | CommandError::SecondNoticeReason
        | CommandError::FixRequired { .. }
        | CommandError::NoticeRequired { .. }
        | CommandError::EmptyNotice
        | CommandError::ExtensionDays { .. }
        | CommandError::ExtensionUndecided
        | CommandError::EmptySubmission
        | CommandError::NotDeferrable { .. }
        | CommandError::NoAssignee { .. }
        | CommandError::UnknownAction { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::CONFLICT,
    }
}

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> ApiError {
        match e {
            ExecError::Command(c) => ApiError {
                status: command_status(&c),
                code: c.code(),
                message: c.to_string(),
                details: Value::Null,
            },
            ExecError::Claimed(c) => claimed(&c),
            ExecError::NoCase(c) => ApiError::new(
                StatusCode::NOT_FOUND,
                "case.not_found",
                format!("no case {c}"),
            ),
            ExecError::NoFlow(f) => ApiError::new(
                StatusCode::NOT_FOUND,
                "flow.not_found",
                format!("no deployed flow `{f}`"),
            ),
            ExecError::Conflict(c) => ApiError::new(
                StatusCode::CONFLICT,
                "case.conflict",
                format!("case {c} changed concurrently; retry the request"),
            ),
            ExecError::KeyReused(k) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency.reused",
                format!("idempotency key `{k}` was already used for another case"),
            ),
            other => {
                eprintln!("engine error: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "engine error; see the server log",
                )
            }
        }
    }
}

impl From<AlarmError> for ApiError {
    fn from(e: AlarmError) -> ApiError {
        match e {
            AlarmError::NotFound(id) => ApiError::new(
                StatusCode::NOT_FOUND,
                "alarm.not_found",
                format!("no card {id}"),
            ),
            AlarmError::Card { id, error } => {
                let status = match error {
                    CardError::NoReason | CardError::NoOpinion => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::CONFLICT,
                };
                ApiError::new(status, error.code(), format!("card {id}: {error}"))
            }
            AlarmError::Store(s) => s.into(),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> ApiError {
        match e {
            e @ OrderError::NoOrderFlow(_) => {
                ApiError::new(StatusCode::CONFLICT, "order.no_flow", e.to_string())
            }
            OrderError::Exec(x) => x.into(),
            OrderError::Alarm(a) => a.into(),
        }
    }
}

/// 409 `task.claimed`: someone else holds the task.
pub(crate) fn claimed(c: &govflow_engine::store::claims::Claim) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        code: "task.claimed",
        message: format!(
            "{} ({}) has claimed this task since {}",
            c.name, c.login, c.claimed_at
        ),
        details: json!({"claimed_by": c.login, "name": c.name, "claimed_at": c.claimed_at}),
    }
}

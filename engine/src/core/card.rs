//! A supervision card's life as a pure state machine, like a case's:
//! `decide(card, command, now) → event`, `Card::apply(event)`. The store runs
//! it inside the transaction that holds the card's row; the server only
//! checks who may ask.
//!
//! ```text
//! pending ─┬─(rules: condition met at the higher level)─► issued ──► ordered
//!          └─(rules: condition gone)─► cancelled           │           │
//! issued / ordered ─(rules: condition gone)──────────────► closed ◄─────┘
//! pending / issued / ordered ─(supervisor: verify)───────► verified
//! issued / ordered ─(supervisor: revoke the appeal's card)► revoked
//! ```
//! The rules' own moves (issue, escalate, resolve) are `supervision::Board`'s;
//! this module holds the moves people make: acknowledge (签收), appeal (申诉),
//! decide an appeal (revoke 撤销 / reject 打回 / escalate 上报), verify and
//! close (核实关闭), and recording a supervision order (督办).

use super::Time;
use govflow_dsl::rule::Level;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    Pending,
    Issued,
    Ordered,
    Closed,
    Cancelled,
    Revoked,
    Verified,
}

impl CardState {
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Pending => "pending",
            CardState::Issued => "issued",
            CardState::Ordered => "ordered",
            CardState::Closed => "closed",
            CardState::Cancelled => "cancelled",
            CardState::Revoked => "revoked",
            CardState::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<CardState> {
        Some(match s {
            "pending" => CardState::Pending,
            "issued" => CardState::Issued,
            "ordered" => CardState::Ordered,
            "closed" => CardState::Closed,
            "cancelled" => CardState::Cancelled,
            "revoked" => CardState::Revoked,
            "verified" => CardState::Verified,
            _ => return None,
        })
    }

    /// A card still calling for action.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CardState::Pending | CardState::Issued | CardState::Ordered
        )
    }
}

/// How a supervisor decides an appeal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppealOutcome {
    /// 撤销: the card was wrong; it is revoked.
    Revoke,
    /// 打回: the appeal fails; the card stands.
    Reject,
    /// 上报: the card goes up a level (at red, an order follows).
    Escalate,
}

impl AppealOutcome {
    pub fn parse(s: &str) -> Option<AppealOutcome> {
        Some(match s {
            "revoke" => AppealOutcome::Revoke,
            "reject" => AppealOutcome::Reject,
            "escalate" => AppealOutcome::Escalate,
            _ => return None,
        })
    }
    fn done(self) -> &'static str {
        match self {
            AppealOutcome::Revoke => "revoked",
            AppealOutcome::Reject => "rejected",
            AppealOutcome::Escalate => "escalated",
        }
    }
}

/// What the decisions need of a card.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub state: CardState,
    pub level: Level,
    /// The appeal as stored (`{state, reason, by, at, decided_by, …}`).
    pub appeal: Option<serde_json::Value>,
    pub order_case: Option<String>,
}

/// A person's request about a card. `by` names them for the history.
#[derive(Clone, Debug, PartialEq)]
pub enum CardCommand {
    Acknowledge {
        by: String,
        note: Option<String>,
    },
    Appeal {
        by: String,
        reason: String,
    },
    DecideAppeal {
        by: String,
        outcome: AppealOutcome,
        opinion: Option<String>,
    },
    Verify {
        by: String,
        opinion: String,
    },
    /// A supervision order case was started for the card.
    Ordered {
        by: String,
        order_case: String,
        to: String,
    },
}

/// What happened to a card: the new state, level, appeal and order (each
/// `None` when unchanged) and the history line.
#[derive(Clone, Debug, PartialEq)]
pub struct CardEvent {
    pub state: Option<CardState>,
    pub level: Option<Level>,
    pub appeal: Option<serde_json::Value>,
    pub order_case: Option<String>,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card is {state}; this needs a card that is {expected}")]
    WrongState { state: String, expected: String },
    #[error("the card has already been appealed")]
    AppealExists,
    #[error("the card has no pending appeal")]
    NoPendingAppeal,
    #[error("an appeal needs a reason")]
    NoReason,
    #[error("closing a card needs the supervisor's opinion")]
    NoOpinion,
}

impl CardError {
    /// The stable code the API answers with.
    pub fn code(&self) -> &'static str {
        match self {
            CardError::WrongState { .. } => "alarm.wrong_state",
            CardError::AppealExists => "appeal.exists",
            CardError::NoPendingAppeal => "appeal.not_pending",
            CardError::NoReason => "appeal.no_reason",
            CardError::NoOpinion => "alarm.no_opinion",
        }
    }
}

fn require(card: &Card, allowed: &[CardState]) -> Result<(), CardError> {
    if allowed.contains(&card.state) {
        return Ok(());
    }
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    Err(CardError::WrongState {
        state: card.state.as_str().into(),
        expected: names.join(" or "),
    })
}

const OPEN: &[CardState] = &[CardState::Pending, CardState::Issued, CardState::Ordered];
const OUT: &[CardState] = &[CardState::Issued, CardState::Ordered];

/// Decides a command against the card as it is.
pub fn decide(card: &Card, command: &CardCommand, now: Time) -> Result<CardEvent, CardError> {
    let unchanged = |note: String| CardEvent {
        state: None,
        level: None,
        appeal: None,
        order_case: None,
        note,
    };
    let at = serde_json::json!(now);
    match command {
        CardCommand::Acknowledge { by, note } => {
            require(card, OPEN)?;
            Ok(unchanged(match note {
                Some(n) => format!("acknowledged: {n} ({by})"),
                None => format!("acknowledged ({by})"),
            }))
        }
        CardCommand::Appeal { by, reason } => {
            if reason.trim().is_empty() {
                return Err(CardError::NoReason);
            }
            require(card, OUT)?;
            if card.appeal.is_some() {
                return Err(CardError::AppealExists);
            }
            Ok(CardEvent {
                appeal: Some(serde_json::json!({
                    "state": "pending", "reason": reason, "by": by, "at": at,
                })),
                ..unchanged(format!("appealed: {reason} ({by})"))
            })
        }
        CardCommand::DecideAppeal {
            by,
            outcome,
            opinion,
        } => {
            let Some(mut appeal) = card.appeal.clone().filter(|a| a["state"] == "pending") else {
                return Err(CardError::NoPendingAppeal);
            };
            require(card, OUT)?;
            let opinion = opinion.clone().unwrap_or_default();
            let (state, level) = match outcome {
                AppealOutcome::Revoke => (Some(CardState::Revoked), None),
                AppealOutcome::Reject => (None, None),
                AppealOutcome::Escalate => {
                    let up = match card.level {
                        Level::Notice => Level::Yellow,
                        _ => Level::Red,
                    };
                    (
                        Some(CardState::Issued).filter(|_| card.state == CardState::Pending),
                        Some(up),
                    )
                }
            };
            appeal["state"] = outcome.done().into();
            appeal["decided_by"] = by.as_str().into();
            appeal["decided_at"] = at;
            appeal["opinion"] = opinion.as_str().into();
            Ok(CardEvent {
                state,
                level,
                appeal: Some(appeal),
                order_case: None,
                note: format!("appeal {}: {opinion} ({by})", outcome.done()),
            })
        }
        CardCommand::Verify { by, opinion } => {
            if opinion.trim().is_empty() {
                return Err(CardError::NoOpinion);
            }
            require(card, OPEN)?;
            Ok(CardEvent {
                state: Some(CardState::Verified),
                ..unchanged(format!("verified and closed: {opinion} ({by})"))
            })
        }
        CardCommand::Ordered { by, order_case, to } => {
            require(card, OPEN)?;
            Ok(CardEvent {
                state: Some(CardState::Ordered),
                order_case: Some(order_case.clone()),
                ..unchanged(format!("supervision order {order_case} to {to} ({by})"))
            })
        }
    }
}

impl Card {
    /// The card after `event`.
    pub fn apply(&mut self, event: &CardEvent) {
        if let Some(s) = event.state {
            self.state = s;
        }
        if let Some(l) = event.level {
            self.level = l;
        }
        if let Some(a) = &event.appeal {
            self.appeal = Some(a.clone());
        }
        if let Some(o) = &event.order_case {
            self.order_case = Some(o.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(state: CardState, level: Level) -> Card {
        Card {
            state,
            level,
            appeal: None,
            order_case: None,
        }
    }

    fn now() -> Time {
        chrono::NaiveDate::from_ymd_opt(2026, 12, 2)
            .and_then(|d| d.and_hms_opt(9, 30, 0))
            .unwrap_or_default()
    }

    fn appeal(by: &str) -> CardCommand {
        CardCommand::Appeal {
            by: by.into(),
            reason: "已按时办结，系统延迟".into(),
        }
    }

    fn decide_as(outcome: AppealOutcome) -> CardCommand {
        CardCommand::DecideAppeal {
            by: "监察员".into(),
            outcome,
            opinion: Some("核实".into()),
        }
    }

    #[test]
    fn an_appeal_is_made_once_and_decided_once() {
        let mut c = card(CardState::Issued, Level::Yellow);
        let e = decide(&c, &appeal("发改委"), now());
        let Ok(e) = e else {
            panic!("{e:?}");
        };
        c.apply(&e);
        assert_eq!(
            c.appeal.as_ref().map(|a| a["state"].clone()),
            Some("pending".into())
        );
        assert_eq!(
            decide(&c, &appeal("发改委"), now()),
            Err(CardError::AppealExists)
        );
        let Ok(e) = decide(&c, &decide_as(AppealOutcome::Reject), now()) else {
            panic!("reject");
        };
        c.apply(&e);
        assert_eq!(c.state, CardState::Issued);
        assert_eq!(
            decide(&c, &decide_as(AppealOutcome::Revoke), now()),
            Err(CardError::NoPendingAppeal)
        );
    }

    #[test]
    fn escalation_goes_up_one_level_and_revocation_ends_the_card() {
        for (level, up) in [(Level::Notice, Level::Yellow), (Level::Yellow, Level::Red)] {
            let mut c = card(CardState::Issued, level);
            let Ok(e) = decide(&c, &appeal("窗口"), now()) else {
                panic!("appeal");
            };
            c.apply(&e);
            let Ok(e) = decide(&c, &decide_as(AppealOutcome::Escalate), now()) else {
                panic!("escalate");
            };
            c.apply(&e);
            assert_eq!(c.level, up);
        }
        let mut c = card(CardState::Ordered, Level::Red);
        let Ok(e) = decide(&c, &appeal("窗口"), now()) else {
            panic!("appeal");
        };
        c.apply(&e);
        let Ok(e) = decide(&c, &decide_as(AppealOutcome::Revoke), now()) else {
            panic!("revoke");
        };
        c.apply(&e);
        assert_eq!(c.state, CardState::Revoked);
        assert!(
            decide(
                &c,
                &CardCommand::Acknowledge {
                    by: "x".into(),
                    note: None
                },
                now()
            )
            .is_err()
        );
    }

    #[test]
    fn a_pending_card_cannot_be_appealed_and_closed_cards_take_nothing() {
        let c = card(CardState::Pending, Level::Notice);
        assert!(matches!(
            decide(&c, &appeal("窗口"), now()),
            Err(CardError::WrongState { .. })
        ));
        for s in [CardState::Closed, CardState::Cancelled, CardState::Verified] {
            let c = card(s, Level::Yellow);
            let verify = CardCommand::Verify {
                by: "监察员".into(),
                opinion: "核实".into(),
            };
            assert!(matches!(
                decide(&c, &verify, now()),
                Err(CardError::WrongState { .. })
            ));
        }
        let c = card(CardState::Issued, Level::Red);
        let empty = CardCommand::Verify {
            by: "监察员".into(),
            opinion: " ".into(),
        };
        assert_eq!(decide(&c, &empty, now()), Err(CardError::NoOpinion));
    }
}

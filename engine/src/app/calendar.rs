//! The calendar in force on this node and the recomputation of provisional
//! deadlines when a newer calendar is deployed.

use super::{Engine, SCAN_PAGE};
use crate::calendar::Calendar;
use crate::store::{ExecError, Request};
use std::sync::Arc;

/// The calendar a node uses, swapped whole when a newer calendar deployment
/// appears in the store (`Engine::refresh_calendar`).
pub struct CalendarCell {
    pub(super) current: std::sync::RwLock<Arc<crate::calendar::deployments::InForce>>,
    /// The division whose region overlays apply.
    pub(super) division: String,
    /// A recomputation sweep is running on this node.
    pub(super) sweeping: std::sync::atomic::AtomicBool,
    /// A newer calendar was put in force: the provisional deadlines wait
    /// for a sweep.
    pub(super) changed: tokio::sync::Notify,
}

impl CalendarCell {
    pub(super) fn get(&self) -> Arc<crate::calendar::deployments::InForce> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    pub(super) fn set(&self, v: crate::calendar::deployments::InForce) {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = Arc::new(v);
    }
}

/// What a recomputation sweep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecomputeStats {
    /// Open cases read.
    pub cases: usize,
    /// Cases whose provisional deadlines were recomputed now.
    pub recomputed: usize,
    /// Cases already recomputed for this calendar (a sweep resumed after a crash).
    pub already: usize,
    pub failed: usize,
}

impl Engine {
    /// The working-day calendar in force on this node.
    pub fn calendar(&self) -> Arc<Calendar> {
        Arc::new(self.calendars.get().calendar.clone())
    }

    /// The calendar in force with where it came from (deployed years, the
    /// newest deployment).
    pub fn calendar_in_force(&self) -> Arc<crate::calendar::deployments::InForce> {
        self.calendars.get()
    }

    /// Loads the calendar deployments and puts them in force. Seeds the
    /// shipped years first when `seed` (at `serve` start).
    pub async fn load_calendar(&self, seed: bool) -> Result<(), crate::store::StoreError> {
        if seed {
            self.store.seed_calendar(self.now()).await?;
        }
        let rows = self.store.calendar_deployments().await?;
        let in_force = crate::calendar::deployments::build(&rows, &self.calendars.division);
        for p in &in_force.problems {
            eprintln!("calendar: {p}");
        }
        self.calendars.set(in_force);
        Ok(())
    }

    /// Brings this node in step with the store's deployments
    /// (`sync_deployments`); whether a newer calendar was put in force.
    pub async fn refresh_calendar(&self) -> bool {
        self.sync_deployments().await.calendar
    }

    /// Recomputes the provisional deadlines of every open case with the
    /// calendar in force: one `recalendar` command per case, keyed by the
    /// calendar version, so a sweep cut short by a crash resumes where it
    /// stopped and applies each case once (every node may sweep; the keys keep
    /// it to one event per case and calendar version). Timers follow the new
    /// deadlines; supervision runs after each case as after any command:
    /// a card raised only by a provisional deadline is revoked, a deadline
    /// that moved earlier raises its card at once.
    pub async fn recompute_provisional(&self) -> RecomputeStats {
        use std::sync::atomic::Ordering;
        let mut st = RecomputeStats::default();
        if self.calendars.sweeping.swap(true, Ordering::AcqRel) {
            return st; // the running sweep will see the newest calendar
        }
        let mut after = String::new();
        'pages: loop {
            let in_force = self.calendars.get();
            let page = match self.store.open_snapshots(&after, SCAN_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("calendar: recomputation stopped: {e}");
                    break;
                }
            };
            let Some(last) = page.last().map(|(no, _)| no.clone()) else {
                break;
            };
            let cal = in_force.calendar.clone();
            let label = in_force.label.clone();
            let now = self.now();
            for (no, snap) in &page {
                st.cases += 1;
                // Decided in memory first (the pure core): only a case whose
                // deadlines the new calendar changes gets a command.
                let changes = serde_json::from_str::<crate::core::CaseState>(snap)
                    .ok()
                    .and_then(|state| {
                        let flow = self.flows.get(&state.flow_id, state.flow_version)?;
                        let cmd = crate::core::Command::Recalendar {
                            calendar: label.clone(),
                        };
                        crate::core::apply(&flow, &cal, Some(&state), &cmd, now).ok()
                    })
                    .is_some_and(|ev| !ev.is_empty());
                if !changes {
                    continue;
                }
                let req = Request {
                    case_no: Some(no.clone()),
                    flow_id: None,
                    command: crate::core::Command::Recalendar {
                        calendar: in_force.label.clone(),
                    },
                    idempotency_key: Some(format!("recalendar:{}:{no}", in_force.marker)),
                    actor: "calendar".into(),
                    override_claims: false,
                };
                match self.execute_supervised(&req).await {
                    Ok((o, _)) if o.replayed => st.already += 1,
                    Ok((_, changes)) => {
                        st.recomputed += 1;
                        self.note_recomputed_cards(no, &changes, &in_force.label)
                            .await;
                    }
                    Err(ExecError::Command(crate::core::CommandError::NothingToRecompute)) => {}
                    Err(e) => {
                        st.failed += 1;
                        eprintln!("calendar: case {no}: {e}");
                    }
                }
                if self.calendars.get().marker != in_force.marker {
                    // A newer calendar arrived mid-sweep: start over with it.
                    after.clear();
                    continue 'pages;
                }
            }
            if (page.len() as i64) < SCAN_PAGE {
                break;
            }
            after = last;
        }
        self.calendars.sweeping.store(false, Ordering::Release);
        if st.recomputed + st.failed > 0 {
            eprintln!(
                "calendar: {} open cases read, {} recomputed, {} already, {} failed",
                st.cases, st.recomputed, st.already, st.failed
            );
        }
        st
    }

    /// Cards a recomputation cleared (the overrun was only the provisional
    /// deadline's) are closed by supervision like any card whose condition
    /// ended; their history says why. They are not `revoked`: a revoked card
    /// keeps its subject quiet, and the real deadline may still pass.
    pub(super) async fn note_recomputed_cards(
        &self,
        case_no: &str,
        changes: &[crate::supervision::CardChange],
        calendar: &str,
    ) {
        use crate::supervision::CardChange;
        for c in changes {
            let (rule, subject, what) = match c {
                CardChange::Resolved { rule, subject, .. } => (
                    rule,
                    subject,
                    format!(
                        "临时期限按新日历重算后不再超期，牌撤销 / cleared: the provisional deadline was recomputed with {calendar}"
                    ),
                ),
                CardChange::Lowered { rule, subject, .. } => (
                    rule,
                    subject,
                    format!(
                        "临时期限按新日历重算，降级 / lowered: the provisional deadline was recomputed with {calendar}"
                    ),
                ),
                CardChange::Issued { card } => (
                    &card.rule,
                    &card.subject,
                    format!(
                        "期限按新日历重算后提前，即时出牌 / raised at once: the deadline recomputed with {calendar} is earlier"
                    ),
                ),
                CardChange::Escalated { rule, subject, .. } => (
                    rule,
                    subject,
                    format!(
                        "期限按新日历重算后提前，升级 / escalated: the deadline recomputed with {calendar} is earlier"
                    ),
                ),
                CardChange::Failed { .. } => continue,
            };
            let filter = crate::store::cards::AlarmFilter {
                case_no: Some(case_no.to_string()),
                rule: Some(rule.clone()),
                ..Default::default()
            };
            let Ok(cards) = self.store.alarms(&filter, 100, 0).await else {
                continue;
            };
            // The newest card of the subject is the one that just changed.
            if let Some(card) = cards
                .iter()
                .filter(|a| a.subject == *subject)
                .max_by_key(|a| a.id)
                && let Err(e) = self.store.note_alarm(card.id, &what, self.now()).await
            {
                eprintln!("calendar: cannot note card {}: {e}", card.id);
            }
        }
    }
}

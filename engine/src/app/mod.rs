//! The application layer: `Engine` owns every use case — commands with
//! their hand-offs and supervision, deploying (`deploy.rs`), the timer
//! service and recovery — over a store, the registry of deployments, the
//! calendar in force, the rule book and a `Clock`. Adapters (the HTTP
//! server, the CLI, tests) call it; none of them holds state of its own.

pub mod clock;
pub(crate) mod deploy;
pub mod export;
pub mod registry;
pub use deploy::{DeployError, FlowDeployed, PackDeployed, Synced, load_registry};

use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::Time;
use crate::store::{ExecError, Outcome, Request, Store};
use std::sync::Arc;
use std::time::Duration;

fn level_zh(level: &str) -> &'static str {
    match level {
        "notice" => "预警",
        "yellow" => "黄牌",
        _ => "红牌",
    }
}

/// The calendar a node uses, swapped whole when a newer calendar deployment
/// appears in the store (`Engine::refresh_calendar`).
pub struct CalendarCell {
    current: std::sync::RwLock<Arc<crate::calendar::deployments::InForce>>,
    /// The division whose region overlays apply.
    division: String,
    /// A recomputation sweep is running on this node.
    sweeping: std::sync::atomic::AtomicBool,
    /// A newer calendar was put in force: the provisional deadlines wait
    /// for a sweep.
    changed: tokio::sync::Notify,
}

impl CalendarCell {
    fn get(&self) -> Arc<crate::calendar::deployments::InForce> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
    fn set(&self, v: crate::calendar::deployments::InForce) {
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

#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    /// Where "now" comes from (the wall clock in China Standard Time, a
    /// manual clock in tests).
    clock: Arc<dyn crate::app::clock::Clock>,
    pub flows: Arc<Registry>,
    calendars: Arc<CalendarCell>,
    /// What this node has loaded of the store's deployments.
    deployed: Arc<deploy::DeployCell>,
    /// Supervision rules; cards follow every command and the scheduled scans.
    /// Replaced whole when rule files are deployed (`set_rules`).
    rules: Arc<std::sync::RwLock<Option<Arc<crate::supervision::RuleBook>>>>,
    /// Figures across cases the rules read (`staff.*`), refreshed at each scan
    /// and when a complaint finishes.
    pub context: Arc<std::sync::RwLock<crate::supervision::Context>>,
    /// The last evaluation error of each rule (a wrong type, the sandbox
    /// stopping a condition): rule id → (instant, case, message).
    pub rule_errors: Arc<std::sync::Mutex<RuleErrors>>,
}

/// Rule id → (instant, case, message) of its last evaluation error.
pub type RuleErrors = std::collections::BTreeMap<String, (Time, String, String)>;

/// Cases a scan reads per page.
const SCAN_PAGE: i64 = 2000;

/// What a scan did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Unfinished cases read.
    pub cases: usize,
    /// Verdicts computed (rules × subjects).
    pub evaluations: usize,
    /// Card changes written (issued, escalated, lowered, resolved).
    pub changes: usize,
    /// Cards issued.
    pub cards: usize,
}

/// Who issues supervision orders (the applicant of a 督办单 case): the
/// electronic supervision centre. Set `GOVFLOW_SUPERVISION_BODY` to
/// `名称|统一社会信用代码` for another body.
pub fn supervision_body() -> crate::core::Person {
    let configured = std::env::var("GOVFLOW_SUPERVISION_BODY").ok();
    let (name, code) = configured
        .as_deref()
        .and_then(|v| v.split_once('|'))
        .map_or(("电子监察中心", "11330100MB0000001R"), |(n, c)| {
            (n.trim(), c.trim())
        });
    crate::core::Person {
        name: name.to_string(),
        id_kind: crate::core::ids::IdKind::CreditCode,
        id_number: code.to_string(),
        legacy: false,
        phone: None,
        address: None,
        postcode: None,
        legal_representative: None,
    }
}

/// Why an order could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the supervision order flow `{0}` is not deployed (flows/supervision)")]
    NoOrderFlow(&'static str),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Alarm(#[from] crate::store::cards::AlarmError),
}

impl Engine {
    pub fn new(
        store: Store,
        flows: Arc<Registry>,
        calendar: Arc<Calendar>,
        rules: Option<Arc<crate::supervision::RuleBook>>,
    ) -> Engine {
        let in_force = crate::calendar::deployments::InForce {
            calendar: (*calendar).clone(),
            marker: 0,
            label: "shipped".into(),
            years: Vec::new(),
            problems: Vec::new(),
        };
        let division = store.region().to_string();
        Engine {
            store,
            clock: Arc::new(crate::app::clock::SystemClock::default()),
            flows,
            calendars: Arc::new(CalendarCell {
                current: std::sync::RwLock::new(Arc::new(in_force)),
                division,
                sweeping: std::sync::atomic::AtomicBool::new(false),
                changed: tokio::sync::Notify::new(),
            }),
            deployed: Arc::default(),
            rules: Arc::new(std::sync::RwLock::new(rules)),
            context: Arc::default(),
            rule_errors: Arc::default(),
        }
    }

    /// The same engine reading `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn crate::app::clock::Clock>) -> Engine {
        self.clock = clock;
        self
    }

    /// Now, by this engine's clock.
    pub fn now(&self) -> Time {
        self.clock.now()
    }

    /// Now for deciding which timers are due: the database's clock when this
    /// engine runs on the (shifted) wall clock and the store has one to give,
    /// so nodes whose clocks drift agree; otherwise this engine's clock.
    pub async fn timer_now(&self) -> Time {
        if let Some(offset) = self.clock.wall_offset()
            && let Some(db) = self.store.database_now().await
        {
            return db + chrono::Duration::seconds(offset);
        }
        self.now()
    }

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
    async fn note_recomputed_cards(
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

    /// The rule book in force.
    pub fn rules(&self) -> Option<Arc<crate::supervision::RuleBook>> {
        match self.rules.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts a new rule book in force: the next command and scan use it.
    pub fn set_rules(&self, book: Option<Arc<crate::supervision::RuleBook>>) {
        let mut g = match self.rules.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = book;
    }

    /// Re-reads the cross-case figures (`staff.*`): the last 365 days.
    pub async fn refresh_context(&self, now: Time) {
        match self
            .store
            .staff_figures(now - chrono::Duration::days(365))
            .await
        {
            Ok(staff) => {
                if let Ok(mut c) = self.context.write() {
                    c.staff = staff;
                }
            }
            Err(e) => eprintln!("supervision: cannot read the staff figures: {e}"),
        }
    }

    /// Issues a supervision order (督办单) for a card: starts a case of the
    /// built-in order flow addressed to `to`, and marks the card `ordered`.
    /// The idempotency key `order:CARD` makes a second call answer the first.
    pub async fn issue_order(
        &self,
        alarm: &crate::store::cards::Alarm,
        to: &str,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<crate::store::cards::Alarm, OrderError> {
        use crate::core::card::{CardError, CardState};
        use crate::supervision::ORDER_FLOW;
        if self.flows.latest(ORDER_FLOW).is_none() {
            return Err(OrderError::NoOrderFlow(ORDER_FLOW));
        }
        // Checked again inside the transaction that records the order; here
        // so that no order case is started for a card that is over.
        if !CardState::parse(&alarm.state).is_some_and(CardState::is_open) {
            return Err(crate::store::cards::AlarmError::Card {
                id: alarm.id,
                error: CardError::WrongState {
                    state: alarm.state.clone(),
                    expected: "pending or issued or ordered".into(),
                },
            }
            .into());
        }
        let mut data = crate::core::Data::new();
        data.insert("addressee".into(), to.into());
        data.insert(
            "origin".into(),
            serde_json::json!({
                "case": alarm.case_no, "rule": alarm.rule, "subject": alarm.subject,
                "level": alarm.level, "alarm": alarm.id, "class": alarm.class,
            }),
        );
        data.insert(
            "reason".into(),
            reason
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}（{}）", alarm.name, level_zh(&alarm.level)))
                .into(),
        );
        let req = Request {
            case_no: None,
            flow_id: Some(ORDER_FLOW.into()),
            command: crate::core::Command::Start {
                case_no: String::new(),
                applicant: supervision_body(),
                agent: None,
                source: Some("电子监察".into()),
                project_code: None,
                data,
                materials: Vec::new(),
            },
            idempotency_key: Some(format!("order:{}", alarm.id)),
            actor: actor.to_string(),
            override_claims: false,
        };
        // Boxed: starting the order supervises it, which may issue orders.
        let out = Box::pin(self.execute(&req)).await?;
        if alarm.state == "ordered" && alarm.order_case.as_deref() == Some(out.case_no.as_str()) {
            return Ok(alarm.clone());
        }
        let ordered = crate::core::card::CardCommand::Ordered {
            by: actor.to_string(),
            order_case: out.case_no.clone(),
            to: to.to_string(),
        };
        Ok(self
            .store
            .transition_alarm(alarm.id, &ordered, actor, self.now())
            .await?)
    }

    /// A person's command on a card (acknowledge, appeal, decide an appeal,
    /// verify and close), decided by the pure `core::card` inside the
    /// store's transaction. An appeal escalated to red gets its supervision
    /// order at once, as a card the rules raise to red does.
    pub async fn card_command(
        &self,
        id: i64,
        command: &crate::core::card::CardCommand,
        actor: &str,
    ) -> Result<crate::store::cards::Alarm, OrderError> {
        let out = self
            .store
            .transition_alarm(id, command, actor, self.now())
            .await?;
        if matches!(
            command,
            crate::core::card::CardCommand::DecideAppeal {
                outcome: crate::core::card::AppealOutcome::Escalate,
                ..
            }
        ) && out.level == "red"
            && out.order_case.is_none()
        {
            let to = out.department.clone();
            return self.issue_order(&out, &to, None, actor).await;
        }
        Ok(out)
    }

    /// Who is told: a card issued or escalated goes to its rule's `notify`
    /// list, and a yellow or red one also to the department responsible.
    fn notifications_for(
        &self,
        case_no: &str,
        changes: &[crate::supervision::CardChange],
        verdicts: &[crate::supervision::Verdict],
    ) -> Vec<crate::store::cards::Notification> {
        use crate::supervision::CardChange;
        use govflow_dsl::rule::Level;
        let Some(rules) = self.rules() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for c in changes {
            let (rule, subject, level, change) = match c {
                CardChange::Issued { card } => (&card.rule, &card.subject, card.level, "issued"),
                CardChange::Escalated {
                    rule, subject, to, ..
                } => (rule, subject, *to, "escalated"),
                _ => continue,
            };
            let Some(r) = rules.rule(rule) else { continue };
            let mut to: Vec<String> = r.notify.clone();
            if level >= Level::Yellow
                && let Some(v) = verdicts
                    .iter()
                    .find(|v| &*v.rule == rule.as_str() && &*v.subject == subject.as_str())
                && !v.department.is_empty()
                && !to.contains(&v.department)
            {
                to.push(v.department.clone());
            }
            let colour = match level {
                Level::Notice => "预警",
                Level::Yellow => "黄牌",
                Level::Red => "红牌",
            };
            for recipient in to {
                out.push(crate::store::cards::Notification {
                    recipient,
                    case_no: case_no.to_string(),
                    rule: rule.clone(),
                    level: level.as_str().to_string(),
                    change: change.to_string(),
                    message: format!("{case_no} {}（{subject}）：{colour}", r.name),
                });
            }
        }
        out
    }

    /// After the cards of a case changed: a card that reached the top of its
    /// rule's ladder, where the rule says `order { … }`, gets its order.
    async fn orders_for(&self, case_no: &str, changes: &[crate::supervision::CardChange]) {
        use crate::supervision::CardChange;
        let Some(rules) = self.rules() else { return };
        let topped: Vec<(&str, &str)> = changes
            .iter()
            .filter_map(|c| match c {
                CardChange::Issued { card } => {
                    Some((card.rule.as_str(), card.subject.as_str(), card.level))
                }
                CardChange::Escalated {
                    rule, subject, to, ..
                } => Some((rule.as_str(), subject.as_str(), *to)),
                _ => None,
            })
            .filter(|(rule, _, level)| {
                rules.rule(rule).is_some_and(|r| {
                    r.order.is_some() && r.levels.last().is_some_and(|(top, _)| top == level)
                })
            })
            .map(|(r, s, _)| (r, s))
            .collect();
        if topped.is_empty() {
            return;
        }
        let filter = crate::store::cards::AlarmFilter {
            case_no: Some(case_no.to_string()),
            state: Some("issued".into()),
            ..Default::default()
        };
        let Ok(cards) = self.store.alarms(&filter, 100, 0).await else {
            return;
        };
        for card in cards {
            if !topped.contains(&(card.rule.as_str(), card.subject.as_str())) {
                continue;
            }
            let Some(order) = rules.rule(&card.rule).and_then(|r| r.order.clone()) else {
                continue;
            };
            let to = if order.to == "responsible" {
                card.department.clone()
            } else {
                order.to.clone()
            };
            if let Err(e) = self.issue_order(&card, &to, None, "engine").await {
                eprintln!("supervision: no order for card {}: {e}", card.id);
            }
        }
    }

    /// Runs a command, then what it sets off between cases: a `subflow` step
    /// starts a case of each item whose flow is deployed (its data names the
    /// parent), and a finished sub-case reports to its parent. Each follow-up
    /// is a command of its own with an idempotency key derived from the
    /// cases, so running it again (after a crash, say) applies it once.
    pub async fn execute(&self, req: &Request) -> Result<Outcome, ExecError> {
        self.sync_deployments().await;
        self.execute_now(req).await
    }

    /// `execute` with the calendar this node holds (no check for a newer one).
    async fn execute_now(&self, req: &Request) -> Result<Outcome, ExecError> {
        self.execute_supervised(req).await.map(|(out, _)| out)
    }

    /// Runs a command and its follow-ups, then supervision on its case:
    /// the outcome and the card changes it led to.
    async fn execute_supervised(
        &self,
        req: &Request,
    ) -> Result<(Outcome, Vec<crate::supervision::CardChange>), ExecError> {
        let out = self
            .store
            .execute(req, &self.flows, &self.calendar(), self.now())
            .await?;
        let mut changes = Vec::new();
        if !out.replayed {
            self.follow_through(vec![out.clone()]).await;
            changes = self.supervise(&out.case_no, self.now()).await;
        }
        Ok((out, changes))
    }

    /// Evaluates the rules on one case and brings its stored cards in line.
    /// A failure is logged; it never undoes the command that led here.
    pub async fn supervise(&self, case_no: &str, now: Time) -> Vec<crate::supervision::CardChange> {
        let Some(rules) = self.rules() else {
            return Vec::new();
        };
        let state = match self.store.case(case_no).await {
            Ok(Some(s)) => s,
            Ok(None) => return Vec::new(),
            Err(e) => {
                eprintln!("supervision: cannot read case {case_no}: {e}");
                return Vec::new();
            }
        };
        let flow = self.flows.get(&state.flow_id, state.flow_version);
        let mut verdicts = match self.context.read() {
            Ok(ctx) => rules.evaluate_with(&state, flow.as_deref(), &self.calendar(), now, &ctx),
            Err(_) => rules.evaluate(&state, flow.as_deref(), &self.calendar(), now),
        };
        crate::supervision::RuleBook::fill_departments(&mut verdicts, &state, flow.as_deref());
        for v in verdicts.iter().filter(|v| v.error.is_some()) {
            let msg = v.error.clone().unwrap_or_default();
            if let Ok(mut errs) = self.rule_errors.lock() {
                // Logged once per rule and message; the card stays as it was.
                let first = errs.get(&*v.rule).is_none_or(|(_, _, m)| *m != msg);
                if first {
                    eprintln!("supervision: rule {} on case {case_no}: {msg}", v.rule);
                }
                errs.insert(v.rule.to_string(), (now, case_no.to_string(), msg));
            }
        }
        // Most commands change no card: find out without the write lock.
        if let Ok(known) = self.store.known_cards(case_no, case_no).await {
            let k = known.get(case_no).map_or(&[][..], Vec::as_slice);
            if !crate::store::cards::needs_sync(k, &verdicts, None) {
                return Vec::new();
            }
        }

        match self.store.sync_cards(case_no, &verdicts, now).await {
            Ok(c) => {
                let notes = self.notifications_for(case_no, &c, &verdicts);
                if let Err(e) = self.store.notify(&notes, now).await {
                    eprintln!("supervision: cannot record notifications for {case_no}: {e}");
                }
                self.orders_for(case_no, &c).await;
                c
            }
            Err(e) => {
                eprintln!("supervision: cannot store the cards of {case_no}: {e}");
                Vec::new()
            }
        }
    }

    /// Re-runs the hand-offs between cases that a crash may have cut short:
    /// for every unfinished case waiting at a `subflow` step, the items'
    /// cases are started if they were not, and finished ones are reported.
    /// Every hand-off carries the idempotency key it had the first time, so
    /// what already happened is answered from the log, not done again.
    /// Returns the number of hand-offs that did something.
    pub async fn recover(&self) -> usize {
        use crate::core::Event;
        let now = self.now();
        let mut after = String::new();
        let mut fixed = 0;
        loop {
            let page = match self.store.open_cases(&after, 500).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("recovery: {e}");
                    return fixed;
                }
            };
            let Some(last) = page.last().cloned() else {
                return fixed;
            };
            for no in &page {
                let Ok(Some(state)) = self.store.case(no).await else {
                    continue;
                };
                for (step, sf) in &state.subflows {
                    let waiting: Vec<String> = sf
                        .items
                        .iter()
                        .filter(|i| !sf.finished.contains_key(*i))
                        .cloned()
                        .collect();
                    let asked = Outcome {
                        case_no: no.clone(),
                        version: state.version,
                        events: vec![Event::SubcasesRequested {
                            at: now,
                            step: step.clone(),
                            items: waiting,
                            needed: sf.needed,
                            deadline: None,
                        }],
                        replayed: false,
                    };
                    for start in self.follow_ups(&asked).await {
                        let child = match self
                            .store
                            .execute(&start, &self.flows, &self.calendar(), now)
                            .await
                        {
                            Ok(c) => c,
                            Err(e) => {
                                eprintln!("recovery: starting a sub-case of {no}: {e}");
                                continue;
                            }
                        };
                        if !child.replayed {
                            fixed += 1;
                            self.follow_through(vec![child.clone()]).await;
                        }
                        // A child that finished but never reported: report now.
                        let finished = matches!(
                            self.store.case(&child.case_no).await,
                            Ok(Some(c)) if c.status.is_finished()
                        );
                        if finished {
                            let done = Outcome {
                                case_no: child.case_no.clone(),
                                version: child.version,
                                events: vec![Event::Completed {
                                    at: now,
                                    end: String::new(),
                                    result: String::new(),
                                    document_no: None,
                                    by: None,
                                }],
                                replayed: false,
                            };
                            for report in self.follow_ups(&done).await {
                                match self
                                    .store
                                    .execute(&report, &self.flows, &self.calendar(), now)
                                    .await
                                {
                                    Ok(o) if !o.replayed => {
                                        fixed += 1;
                                        self.follow_through(vec![o]).await;
                                    }
                                    Ok(_) => {}
                                    Err(e) => {
                                        eprintln!("recovery: reporting {}: {e}", child.case_no)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            after = last;
        }
    }

    /// Evaluates the rules on every unfinished case (the scheduled scans:
    /// working-day figures change at midnight, hour limits by the hour).
    /// Reads pages of snapshots and their cards in bulk, evaluates on every
    /// core, and writes only for the cases whose cards change (each such write
    /// re-reads the case's cards under its lock). Returns the number of changes.
    pub async fn scan(&self, now: Time) -> usize {
        self.scan_stats(now).await.changes
    }

    /// `scan` with its figures (the benchmark reads them).
    pub async fn scan_stats(&self, now: Time) -> ScanStats {
        let mut st = ScanStats::default();
        let Some(rules) = self.rules() else {
            return st;
        };
        self.refresh_context(now).await;
        let ctx = self.context.read().map(|c| c.clone()).unwrap_or_default();
        let ctx = Arc::new(ctx);
        let timed = Arc::new(rules.timed_rules());
        let mut after = String::new();
        loop {
            let page = match self.store.open_snapshots(&after, SCAN_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("supervision scan: {e}");
                    return st;
                }
            };
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                return st;
            };
            let known = match self.store.known_cards(&first.0, &last.0).await {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("supervision scan: {e}");
                    return st;
                }
            };
            after = last.0.clone();
            st.cases += page.len();
            // Parse and evaluate on every core; collect the cases to write.
            let known = Arc::new(known);
            let page = Arc::new(page);
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = page.len().div_ceil(workers).max(1);
            let mut jobs = Vec::new();
            for w in 0..workers {
                let (page, known, rules, ctx, timed) = (
                    page.clone(),
                    known.clone(),
                    rules.clone(),
                    ctx.clone(),
                    timed.clone(),
                );
                let (flows, cal) = (self.flows.clone(), self.calendar());
                jobs.push(tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    let mut evaluated = 0usize;
                    let lo = (w * chunk).min(page.len());
                    let hi = ((w + 1) * chunk).min(page.len());
                    for (no, snap) in &page[lo..hi] {
                        let Ok(state) = serde_json::from_str::<crate::core::CaseState>(snap) else {
                            eprintln!("supervision scan: case {no}: unreadable snapshot");
                            continue;
                        };
                        let flow = flows.get(&state.flow_id, state.flow_version);
                        let mut verdicts =
                            rules.evaluate_timed(&state, flow.as_deref(), &cal, now, &ctx);
                        evaluated += verdicts.len();
                        let k = known.get(no).map_or(&[][..], Vec::as_slice);
                        if crate::store::cards::needs_sync(k, &verdicts, Some(&timed)) {
                            crate::supervision::RuleBook::fill_departments(
                                &mut verdicts,
                                &state,
                                flow.as_deref(),
                            );
                            out.push((no.clone(), verdicts));
                        }
                    }
                    (out, evaluated)
                }));
            }
            let mut writes = Vec::new();
            for j in jobs {
                if let Ok((w, n)) = j.await {
                    writes.extend(w);
                    st.evaluations += n;
                }
            }
            // One transaction for the page's writes.
            let items: Vec<(&str, &[crate::supervision::Verdict])> = writes
                .iter()
                .map(|(no, v)| (no.as_str(), v.as_slice()))
                .collect();
            match self.store.sync_many(&items, Some(&timed), now).await {
                Ok(all) => {
                    let mut notes = Vec::new();
                    for ((no, c), (_, verdicts)) in all.iter().zip(&writes) {
                        notes.extend(self.notifications_for(no, c, verdicts));
                    }
                    if let Err(e) = self.store.notify(&notes, now).await {
                        eprintln!("supervision scan: cannot record notifications: {e}");
                    }
                    for (no, c) in all {
                        st.changes += c.len();
                        st.cards += c
                            .iter()
                            .filter(|c| matches!(c, crate::supervision::CardChange::Issued { .. }))
                            .count();
                        self.orders_for(&no, &c).await;
                    }
                }
                Err(e) => eprintln!("supervision scan: cannot store cards: {e}"),
            }
            if (page.len() as i64) < SCAN_PAGE {
                return st;
            }
        }
    }

    /// Runs the follow-ups of `outs` (and of what they set off), each once.
    async fn follow_through(&self, outs: Vec<Outcome>) {
        {
            let mut queue = outs;
            while let Some(done) = queue.pop() {
                for follow in self.follow_ups(&done).await {
                    match self
                        .store
                        .execute(&follow, &self.flows, &self.calendar(), self.now())
                        .await
                    {
                        Ok(o) if !o.replayed => queue.push(o),
                        Ok(_) => {}
                        // The stage does not follow that item procedure: nothing to do.
                        Err(ExecError::Command(crate::core::CommandError::NoStageEffect)) => {}
                        Err(e) => eprintln!(
                            "follow-up {} of case {} failed: {e}",
                            follow.command.name(),
                            done.case_no
                        ),
                    }
                }
            }
        }
    }

    async fn follow_ups(&self, out: &Outcome) -> Vec<Request> {
        use crate::core::{Command, Event};
        let mut reqs = Vec::new();
        for e in &out.events {
            match e {
                Event::SubcasesRequested { step, items, .. } => {
                    let Ok(Some(parent)) = self.store.case(&out.case_no).await else {
                        continue;
                    };
                    let Some(applicant) = parent.applicant.clone() else {
                        continue;
                    };
                    for item in items {
                        let Some(flow) = self.flows.find_item(item) else {
                            continue; // handled elsewhere: reported with `subcase_finished`
                        };
                        let mut data = crate::core::Data::new();
                        data.insert(
                            "parent".into(),
                            serde_json::json!({"case": out.case_no, "step": step, "item": item}),
                        );
                        reqs.push(Request {
                            case_no: None,
                            flow_id: Some(flow.flow.id.clone()),
                            command: Command::Start {
                                case_no: String::new(),
                                applicant: applicant.clone(),
                                agent: parent.agent.clone(),
                                source: Some("并联审批".into()),
                                project_code: parent.project_code.clone(),
                                data,
                                materials: Vec::new(),
                            },
                            idempotency_key: Some(format!("sub:{}:{step}:{item}", out.case_no)),
                            actor: "engine".into(),
                            override_claims: false,
                        });
                    }
                }
                Event::Completed { .. } | Event::Terminated { .. } | Event::Withdrawn { .. } => {
                    let Ok(Some(child)) = self.store.case(&out.case_no).await else {
                        continue;
                    };
                    self.supervision_finished(&child).await;
                    let Some(parent) = child.data.get("parent") else {
                        continue;
                    };
                    let (Some(case), Some(step), Some(item)) = (
                        parent.get("case").and_then(|v| v.as_str()),
                        parent.get("step").and_then(|v| v.as_str()),
                        parent.get("item").and_then(|v| v.as_str()),
                    ) else {
                        continue;
                    };
                    let result = match (&child.outcome, child.status.as_str()) {
                        (Some(o), _) => o.result.clone(),
                        (None, status) => status.to_string(),
                    };
                    reqs.push(Request {
                        case_no: Some(case.to_string()),
                        flow_id: None,
                        command: Command::SubcaseFinished {
                            step: step.to_string(),
                            item: item.to_string(),
                            case_no: out.case_no.clone(),
                            result,
                        },
                        idempotency_key: Some(format!("subdone:{}", out.case_no)),
                        actor: "engine".into(),
                        override_claims: false,
                    });
                }
                // A clock-stopping procedure in an item case: its stage follows
                // when it declares the procedure (the parent decides).
                Event::SpecialStarted { special, .. }
                    if special.stops_statutory || special.stops_promised =>
                {
                    if let Some(r) = self
                        .stage_clock(&out.case_no, special.id, &special.kind, true)
                        .await
                    {
                        reqs.push(r);
                    }
                }
                Event::SpecialEnded { id, .. } => {
                    let Ok(Some(child)) = self.store.case(&out.case_no).await else {
                        continue;
                    };
                    let Some(sp) = child
                        .specials
                        .iter()
                        .find(|s| s.id == *id && (s.stops_statutory || s.stops_promised))
                    else {
                        continue;
                    };
                    if let Some(r) = self.stage_clock(&out.case_no, *id, &sp.kind, false).await {
                        reqs.push(r);
                    }
                }
                _ => {}
            }
        }
        reqs
    }

    /// The `subcase_clock` hand-off to the stage that started `child`, if any.
    async fn stage_clock(
        &self,
        child: &str,
        special: u32,
        kind: &str,
        stopped: bool,
    ) -> Option<Request> {
        let case = self.store.case(child).await.ok()??;
        let parent = case.data.get("parent")?;
        let (p, step, item) = (
            parent.get("case")?.as_str()?,
            parent.get("step")?.as_str()?,
            parent.get("item")?.as_str()?,
        );
        let edge = if stopped { "start" } else { "end" };
        Some(Request {
            case_no: Some(p.to_string()),
            flow_id: None,
            command: crate::core::Command::SubcaseClock {
                step: step.to_string(),
                item: item.to_string(),
                case_no: child.to_string(),
                kind: kind.to_string(),
                stopped,
            },
            idempotency_key: Some(format!("stageclock:{child}:{special}:{edge}")),
            actor: "engine".into(),
            override_claims: false,
        })
    }

    /// A finished order is noted on its card; a finished complaint changes
    /// the complaint figures the rules read.
    async fn supervision_finished(&self, case: &crate::core::CaseState) {
        use crate::supervision::{COMPLAINT_FLOW, ORDER_FLOW};
        let now = self.now();
        match case.flow_id.as_str() {
            ORDER_FLOW => {
                let card = case
                    .data
                    .get("origin")
                    .and_then(|o| o.get("alarm"))
                    .and_then(|a| a.as_i64());
                if let Some(id) = card {
                    let result = case
                        .outcome
                        .as_ref()
                        .map_or(case.status.as_str().to_string(), |o| o.result.clone());
                    let what = format!("supervision order {} finished: {result}", case.case_no);
                    if let Err(e) = self.store.note_alarm(id, &what, now).await {
                        eprintln!("supervision: cannot note order on card {id}: {e}");
                    }
                }
            }
            COMPLAINT_FLOW => self.refresh_context(now).await,
            _ => {}
        }
    }

    /// Fires every timer due at `now` (in batches); returns how many fired.
    pub async fn tick(&self, now: Time) -> Result<u32, ExecError> {
        let mut total = 0;
        loop {
            self.sync_deployments().await;
            let fired = self
                .store
                .tick(now, &self.flows, &self.calendar(), 256)
                .await?;
            let n = fired.len() as u32;
            total += n;
            // A timer may finish a sub-case (an expired 容缺 deadline, say): tell its parent.
            for o in &fired {
                self.supervise(&o.case_no, now).await;
            }
            self.follow_through(fired).await;
            if n < 256 {
                return Ok(total);
            }
        }
    }

    /// Runs the timer service until the task is dropped: every `poll`, fire
    /// what is due. Errors are logged and retried on the next round.
    pub fn spawn_timers(&self, poll: Duration) -> tokio::task::JoinHandle<()> {
        // Recomputations of provisional deadlines, whenever a newer calendar
        // is put in force on this node.
        let sweeper = self.clone();
        tokio::spawn(async move {
            loop {
                sweeper.calendars.changed.notified().await;
                sweeper.recompute_provisional().await;
            }
        });
        let engine = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The scans the rules' schedules ask for (`every 1h`, `at 00:00 on
            // workdays` …), plus one at start and one at each midnight: working-day
            // figures change then.
            let mut next_scan: Option<Time> = None;
            loop {
                every.tick().await;
                let now = engine.timer_now().await;
                if let Err(e) = engine.tick(now).await {
                    eprintln!("timer service: {e}");
                }
                if next_scan.is_none_or(|due| now >= due) {
                    engine.scan(now).await;
                    let midnight = now
                        .date()
                        .succ_opt()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .unwrap_or(now + chrono::Duration::days(1));
                    let scheduled = engine
                        .rules()
                        .and_then(|r| r.next_scan(now, &engine.calendar()));
                    next_scan = Some(scheduled.map_or(midnight, |s| s.min(midnight)));
                }
            }
        })
    }
}

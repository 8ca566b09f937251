//! The application layer: `Engine` owns every use case — commands with
//! their hand-offs and supervision, deploying (`deploy.rs`), the timer
//! service and recovery — over a store, the registry of deployments, the
//! calendar in force, the rule book and a `Clock`. Adapters (the HTTP
//! server, the CLI, tests) call it; none of them holds state of its own.

mod calendar;
pub mod check;
pub mod clock;
pub(crate) mod deploy;
pub mod export;
pub mod registry;
mod supervise;
pub use calendar::{CalendarCell, RecomputeStats};
pub use deploy::{DeployError, FlowDeployed, PackDeployed, Synced, load_registry};
pub use supervise::{OrderError, ScanStats, supervision_body};

use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::Time;
use crate::store::{ExecError, Outcome, Request, Store};
use std::sync::Arc;
use std::time::Duration;

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

    /// Re-runs the hand-offs between cases that a crash may have cut short:
    /// for every unfinished case waiting at a `subflow` step, the items'
    /// cases are started if they were not, and finished ones are reported.
    /// Every hand-off carries the idempotency key it had the first time, so
    /// what already happened is answered from the log, not done again.
    /// Then the supervision orders cards are owed (`complete_orders`).
    /// Returns the number of hand-offs and orders that did something.
    pub async fn recover(&self) -> usize {
        let fixed = self.recover_hand_offs().await;
        fixed + self.complete_orders().await
    }

    /// The hand-offs part of `recover`.
    async fn recover_hand_offs(&self) -> usize {
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

    /// Seals new event and audit rows into their hash chains until the task
    /// is dropped: a batch at a time while rows wait, then every `poll`.
    pub fn spawn_sealer(&self, poll: Duration) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            loop {
                match engine.store.seal_chains().await {
                    Ok(n) if n > 0 => continue,
                    Ok(_) => {}
                    Err(e) => eprintln!("hash-chain sealer: {e}"),
                }
                tokio::time::sleep(poll).await;
            }
        })
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
            let mut orders_checked = std::time::Instant::now();
            loop {
                every.tick().await;
                let now = engine.timer_now().await;
                if let Err(e) = engine.tick(now).await {
                    eprintln!("timer service: {e}");
                }
                // Orders owed by cards another node (or a crash) left without one.
                if orders_checked.elapsed() >= Duration::from_secs(60) {
                    orders_checked = std::time::Instant::now();
                    engine.complete_orders().await;
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

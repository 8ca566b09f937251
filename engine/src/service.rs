//! The running engine: a store, the deployed flows, the calendar and the
//! wall clock, plus the timer service that fires due timers.

use crate::calendar::Calendar;
use crate::core::Time;
use crate::registry::Registry;
use crate::store::{ExecError, Outcome, Request, Store};
use std::sync::Arc;
use std::time::Duration;

static CLOCK_OFFSET: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Shifts the adapter clock by `seconds` (drills and tests: "the server was
/// down for three days"). The core never reads a clock; only adapters do.
pub fn set_clock_offset(seconds: i64) {
    CLOCK_OFFSET.store(seconds, std::sync::atomic::Ordering::Relaxed);
}

/// The adapter clock: now in China Standard Time (UTC+8), to the second.
pub fn now_cst() -> Time {
    let offset = CLOCK_OFFSET.load(std::sync::atomic::Ordering::Relaxed);
    let t = (chrono::Utc::now() + chrono::Duration::hours(8) + chrono::Duration::seconds(offset))
        .naive_utc();
    chrono::Timelike::with_nanosecond(&t, 0).unwrap_or(t)
}

#[derive(Clone)]
pub struct Engine {
    pub store: Store,
    pub flows: Arc<Registry>,
    pub calendar: Arc<Calendar>,
    /// Supervision rules; cards follow every command and the nightly scan.
    pub rules: Option<Arc<crate::supervision::RuleBook>>,
}

impl Engine {
    /// Runs a command, then what it sets off between cases: a `subflow` step
    /// starts a case of each item whose flow is deployed (its data names the
    /// parent), and a finished sub-case reports to its parent. Each follow-up
    /// is a command of its own with an idempotency key derived from the
    /// cases, so running it again (after a crash, say) applies it once.
    pub async fn execute(&self, req: &Request) -> Result<Outcome, ExecError> {
        let out = self
            .store
            .execute(req, &self.flows, &self.calendar, now_cst())
            .await?;
        if !out.replayed {
            self.follow_through(vec![out.clone()]).await;
            self.supervise(&out.case_no, now_cst()).await;
        }
        Ok(out)
    }

    /// Evaluates the rules on one case and brings its stored cards in line.
    /// A failure is logged; it never undoes the command that led here.
    pub async fn supervise(&self, case_no: &str, now: Time) -> Vec<crate::supervision::CardChange> {
        let Some(rules) = &self.rules else {
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
        let verdicts = rules.evaluate(&state, flow.as_deref(), &self.calendar, now);
        match self.store.sync_cards(case_no, &verdicts, now).await {
            Ok(c) => c,
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
        let now = now_cst();
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
                            .execute(&start, &self.flows, &self.calendar, now)
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
                                    .execute(&report, &self.flows, &self.calendar, now)
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

    /// Evaluates the rules on every unfinished case (the nightly scan:
    /// working-day figures change at midnight). Returns the number of changes.
    pub async fn scan(&self, now: Time) -> usize {
        if self.rules.is_none() {
            return 0;
        }
        let mut after = String::new();
        let mut changes = 0;
        loop {
            let page = match self.store.open_cases(&after, 500).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("supervision scan: {e}");
                    return changes;
                }
            };
            let Some(last) = page.last().cloned() else {
                return changes;
            };
            for no in &page {
                changes += self.supervise(no, now).await.len();
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
                        .execute(&follow, &self.flows, &self.calendar, now_cst())
                        .await
                    {
                        Ok(o) if !o.replayed => queue.push(o),
                        Ok(_) => {}
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
                        });
                    }
                }
                Event::Completed { .. } | Event::Terminated { .. } | Event::Withdrawn { .. } => {
                    let Ok(Some(child)) = self.store.case(&out.case_no).await else {
                        continue;
                    };
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
                    });
                }
                _ => {}
            }
        }
        reqs
    }

    /// Fires every timer due at `now` (in batches); returns how many fired.
    pub async fn tick(&self, now: Time) -> Result<u32, ExecError> {
        let mut total = 0;
        loop {
            let fired = self
                .store
                .tick(now, &self.flows, &self.calendar, 256)
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
        let engine = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut scanned: Option<chrono::NaiveDate> = None;
            loop {
                every.tick().await;
                let now = now_cst();
                if let Err(e) = engine.tick(now).await {
                    eprintln!("timer service: {e}");
                }
                // Once a day (and at start): the supervision scan.
                if scanned != Some(now.date()) {
                    scanned = Some(now.date());
                    engine.scan(now).await;
                }
            }
        })
    }
}

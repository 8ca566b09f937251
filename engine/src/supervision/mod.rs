//! Supervision rules evaluated against cases (pure: the case, the calendar
//! and the instant come in; verdicts come out). A rule book is compiled once;
//! `CardBoard` keeps the cards of the cases it has seen and says what changed:
//! issued, escalated, resolved.
//!
//! Facts (docs/rule-language.md): `status`, `promised_left`, `statutory_left`
//! (working days left; negative once overdue; frozen while the clock stands
//! still; 9999 when the case has no such deadline yet), `elapsed`, `returns`,
//! `corrections`, `visits`, `suspended`, and the maps `item`, `data`, `fee`,
//! `materials`, `staff`, plus `step` or `special` for those scopes.

pub mod efficiency;
pub mod fastcond;
pub mod stats;

use crate::calendar::Calendar;
use crate::core::{CaseState, CompiledFlow, Deadline, SpecialClass, Time, to_dynamic};
use govflow_dsl::rule::{Level, Rule, RuleSet};
use rhai::{Dynamic, Map};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One thing a rule looks at: (subject, responsible department, the scope's object).
type Subject = (String, String, Option<(&'static str, Map)>);

/// "No such deadline": far enough that no threshold reaches it.
pub const NO_DEADLINE: i64 = 9999;

/// The built-in flow whose cases are supervision orders (督办单, flows/supervision).
pub const ORDER_FLOW: &str = "supervision_order";
/// The built-in flow whose cases are complaints (投诉, flows/supervision).
pub const COMPLAINT_FLOW: &str = "complaint";

/// What rules see besides the case: figures gathered across cases (the
/// complaint store and the anomaly store), per department.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Context {
    pub staff: std::collections::HashMap<String, StaffFacts>,
    /// The version of the shared figures these are (`store::CardStore::figures`):
    /// every node decides with the same version, not with its own count.
    #[serde(default)]
    pub version: i64,
}

/// `staff.*` for a step: the figures of the people who handle it. Until tasks
/// are claimed by a person they are the figures of the step's department.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StaffFacts {
    /// Substantiated complaints (投诉属实) in the last 365 days.
    pub complaints: i64,
    /// Confirmed anomalies in the last 365 days: yellow and red cards that got
    /// a supervision order or whose appeal was rejected.
    pub anomalies: i64,
}

/// Which rules apply to a case: service cases take `case`, `step` and
/// `special` rules; supervision orders `order` rules; complaints `complaint` rules.
fn applies(scope: &str, flow_id: &str) -> bool {
    match flow_id {
        ORDER_FLOW => scope == "order",
        COMPLAINT_FLOW => scope == "complaint",
        _ => matches!(scope, "case" | "step" | "special"),
    }
}

pub struct RuleBook {
    engine: rhai::Engine,
    rules: Vec<(Rule, Vec<(Level, rhai::AST)>)>,
    /// Per rule: the conditions compiled to the fast path, when all of them fit
    /// (`fastcond`); such rules of scope `case` need no rhai scope at all.
    fast: Vec<Option<Vec<crate::supervision::fastcond::Fast>>>,
    /// The words the conditions use: facts no rule names are not built.
    words: std::collections::HashSet<String>,
    /// Per rule: whether its verdict can change with time alone (it names a
    /// clock figure or `staff`): only these are evaluated by scans.
    timed: Vec<bool>,
    /// Per rule: (id, name, class, sub-type), shared by its verdicts.
    meta: Vec<[Arc<str>; 4]>,
    /// The subject `case`, shared.
    case_subject: Arc<str>,
}

/// Words that make a condition depend on the instant (or on figures that
/// change between events): clock figures and the cross-case `staff` facts.
const TIMED_WORDS: &[&str] = &[
    "promised_left",
    "statutory_left",
    "issue_left",
    "elapsed",
    "left",
    "staff",
    "suspended",
];

/// What one rule says about one subject of one case now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Shared with the rule book (a scan makes millions of verdicts).
    pub rule: Arc<str>,
    pub name: Arc<str>,
    pub class: Arc<str>,
    pub subtype: Arc<str>,
    /// `case`, `step:ID`, `special:N`, `order` or `complaint`.
    pub subject: Arc<str>,
    /// The department responsible for the subject (a supervision order goes there).
    pub department: String,
    /// The highest level whose condition holds; `None` when none does.
    pub level: Option<Level>,
    /// The condition could not be evaluated (a wrong type, the sandbox's limits).
    pub error: Option<String>,
}

/// The rule files under `dir` (walked), as (path relative to `dir`, text), sorted.
pub fn rule_files(dir: &std::path::Path) -> Result<Vec<(String, String)>, String> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if govflow_dsl::rule::is_rule_file(&p.to_string_lossy()) {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                files.push((rel, text));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Rule files are deployed like flows, under this prefix and their file name
/// (`rules/timeliness.rules`): versions, history and the running text.
pub const RULES_DEPLOYMENT: &str = "rules/";

impl RuleBook {
    pub fn new(sets: &[RuleSet]) -> Result<RuleBook, String> {
        let engine = govflow_dsl::rhai_sandbox::engine();
        let mut rules = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for set in sets {
            for r in &set.rules {
                // Cards are keyed by rule id: one id, one rule across all files.
                if !seen.insert(r.id.as_str()) {
                    return Err(format!(
                        "rule `{}` is defined in more than one rule file; rule ids must be unique",
                        r.id
                    ));
                }
                let mut levels = Vec::new();
                for (l, e) in &r.levels {
                    let ast = engine
                        .compile_expression(&e.source)
                        .map_err(|err| format!("rule `{}`: {err}", r.id))?;
                    levels.push((*l, ast));
                }
                rules.push((r.clone(), levels));
            }
        }
        let mut words = std::collections::HashSet::new();
        for (r, _) in &rules {
            for (_, e) in &r.levels {
                let mut w = String::new();
                for c in e.source.chars().chain(std::iter::once(' ')) {
                    if c.is_alphanumeric() || c == '_' {
                        w.push(c);
                    } else if !w.is_empty() {
                        words.insert(std::mem::take(&mut w));
                    }
                }
            }
        }
        let fast = rules
            .iter()
            .map(|(r, _)| {
                if r.scope != "case" {
                    return None;
                }
                r.levels
                    .iter()
                    .map(|(_, e)| crate::supervision::fastcond::Fast::compile(&e.source))
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        let timed = rules
            .iter()
            .map(|(r, _)| {
                r.levels.iter().any(|(_, e)| {
                    e.source
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|w| TIMED_WORDS.contains(&w))
                })
            })
            .collect();
        let meta = rules
            .iter()
            .map(|(r, _)| {
                [
                    Arc::from(r.id.as_str()),
                    Arc::from(r.name.as_str()),
                    Arc::from(r.class.as_str()),
                    Arc::from(r.subtype.as_str()),
                ]
            })
            .collect();
        Ok(RuleBook {
            engine,
            rules,
            fast,
            words,
            timed,
            meta,
            case_subject: Arc::from("case"),
        })
    }

    /// Loads every rule file under `dir`; a file with errors is an error.
    pub fn load_dir(dir: &std::path::Path) -> Result<RuleBook, String> {
        // Diagnostics name the files as found on disk.
        let files: Vec<(String, String)> = rule_files(dir)?
            .into_iter()
            .map(|(rel, text)| (dir.join(rel).display().to_string(), text))
            .collect();
        RuleBook::from_texts(&files)
    }

    /// Builds the book from rule files given as (name, text); a file with
    /// errors is an error (its rendered diagnostics).
    pub fn from_texts(files: &[(String, String)]) -> Result<RuleBook, String> {
        let mut sets = Vec::new();
        for (name, text) in files {
            let syntax = if name.ends_with(".rules") {
                govflow_dsl::Syntax::Dsl
            } else {
                govflow_dsl::Syntax::Yaml
            };
            let l = govflow_dsl::rule::load_rules(name, text, syntax);
            match l.rules {
                Some(s) if !l.report.has_errors() => sets.push(s),
                _ => return Err(l.report.render(false)),
            }
        }
        RuleBook::new(&sets)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first instant after `after` at which some rule's schedule asks for
    /// a scan (`every 1h`, `at 00:00 on workdays` …); `None` when every rule
    /// is evaluated on events only.
    pub fn next_scan(&self, after: Time, cal: &Calendar) -> Option<Time> {
        use govflow_dsl::rule::Schedule;
        let mut best: Option<Time> = None;
        for (r, _) in &self.rules {
            for sch in &r.schedule {
                let next = match sch {
                    Schedule::OnEvents => None,
                    Schedule::Every { minutes } => {
                        let step = i64::from((*minutes).max(1)) * 60;
                        let midnight = after.date().and_hms_opt(0, 0, 0)?;
                        let since = (after - midnight).num_seconds();
                        Some(midnight + chrono::Duration::seconds((since / step + 1) * step))
                    }
                    Schedule::At {
                        hour,
                        minute,
                        workdays,
                    } => {
                        let mut day = after.date();
                        let mut found = None;
                        for _ in 0..400 {
                            let at = day.and_hms_opt(*hour, *minute, 0)?;
                            // Outside the calendar's years a day counts as a working day.
                            let open = !*workdays || cal.is_working_day(day).unwrap_or(true);
                            if at > after && open {
                                found = Some(at);
                                break;
                            }
                            day = day.succ_opt()?;
                        }
                        found
                    }
                };
                if let Some(n) = next {
                    best = Some(best.map_or(n, |b: Time| b.min(n)));
                }
            }
        }
        best
    }

    /// Fills in the responsible department of the verdicts that hold and
    /// have none yet (the case-scope ones): the department holding the case's
    /// oldest open task, else the flow's first department. Call before storing.
    pub fn fill_departments(
        verdicts: &mut [Verdict],
        state: &CaseState,
        flow: Option<&CompiledFlow>,
    ) {
        let mut owner: Option<String> = None;
        for v in verdicts
            .iter_mut()
            .filter(|v| v.level.is_some() && v.department.is_empty())
        {
            v.department = owner
                .get_or_insert_with(|| responsible(state, flow))
                .clone();
        }
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().map(|(r, _)| r)
    }

    /// A rule by id.
    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().map(|(r, _)| r).find(|r| r.id == id)
    }

    /// Every rule's verdict on every subject of the case at `now`.
    pub fn evaluate(
        &self,
        state: &CaseState,
        flow: Option<&CompiledFlow>,
        cal: &Calendar,
        now: Time,
    ) -> Vec<Verdict> {
        self.evaluate_with(state, flow, cal, now, &Context::default())
    }

    /// The ids of the rules whose verdicts can change with time alone.
    pub fn timed_rules(&self) -> std::collections::HashSet<String> {
        self.rules
            .iter()
            .zip(&self.timed)
            .filter(|(_, t)| **t)
            .map(|((r, _), _)| r.id.clone())
            .collect()
    }

    /// `evaluate` with figures from across cases (`staff.*`).
    pub fn evaluate_with(
        &self,
        state: &CaseState,
        flow: Option<&CompiledFlow>,
        cal: &Calendar,
        now: Time,
        ctx: &Context,
    ) -> Vec<Verdict> {
        self.evaluate_some(state, flow, cal, now, ctx, false)
    }

    /// What a scan evaluates: only the rules whose verdicts can change with
    /// time alone (the others change only on events, and are evaluated then).
    pub fn evaluate_timed(
        &self,
        state: &CaseState,
        flow: Option<&CompiledFlow>,
        cal: &Calendar,
        now: Time,
        ctx: &Context,
    ) -> Vec<Verdict> {
        self.evaluate_some(state, flow, cal, now, ctx, true)
    }

    fn evaluate_some(
        &self,
        state: &CaseState,
        flow: Option<&CompiledFlow>,
        cal: &Calendar,
        now: Time,
        ctx: &Context,
        timed_only: bool,
    ) -> Vec<Verdict> {
        let mut base: Option<rhai::Scope<'static>> = None;
        let mut nums: Option<[i64; 8]> = None;
        let mut out = Vec::new();
        // The responsible department: needed only by verdicts that hold.
        let owner_cell = std::cell::OnceCell::new();
        let owner = || -> String { owner_cell.get_or_init(|| responsible(state, flow)).clone() };
        for (ri, (rule, levels)) in self.rules.iter().enumerate() {
            if !applies(&rule.scope, &state.flow_id) || (timed_only && !self.timed[ri]) {
                continue;
            }
            // A finished case has no clocks: its timeliness cards resolve.
            if state.status.is_finished() && rule.class == "timeliness" {
                let subject = match rule.scope.as_str() {
                    "order" | "complaint" => Arc::from(rule.scope.as_str()),
                    _ => self.case_subject.clone(),
                };
                out.push(verdict(&self.meta[ri], subject, String::new(), None, None));
                continue;
            }
            // The fast path: integer conditions over the case's figures.
            if let Some(Some(fast)) = self.fast.get(ri) {
                let vars = *nums.get_or_insert_with(|| numbers(state, cal, now));
                let mut level = None;
                let mut decided = true;
                for ((l, _), f) in levels.iter().zip(fast) {
                    match f.eval(&vars) {
                        Some(true) => level = Some(*l),
                        Some(false) => {}
                        None => decided = false,
                    }
                }
                if decided {
                    // The department is filled in only if the card is written
                    // (`fill_departments`): most verdicts are never stored.
                    let dept = String::new();
                    out.push(verdict(
                        &self.meta[ri],
                        self.case_subject.clone(),
                        dept,
                        level,
                        None,
                    ));
                    continue;
                }
            }
            let base = base.get_or_insert_with(|| facts(state, flow, cal, now, &self.words));
            let subjects: Vec<Subject> = match rule.scope.as_str() {
                "step" => state
                    .tasks
                    .values()
                    .map(|t| {
                        let mut m = Map::new();
                        let sf = ctx.staff.get(&t.department).copied().unwrap_or_default();
                        let mut staff = Map::new();
                        staff.insert("complaints".into(), sf.complaints.into());
                        staff.insert("anomalies".into(), sf.anomalies.into());
                        staff.insert("department".into(), t.department.clone().into());
                        m.insert("staff".into(), staff.into());
                        m.insert("id".into(), t.step.clone().into());
                        m.insert("name".into(), t.name.clone().into());
                        m.insert("department".into(), t.department.clone().into());
                        m.insert("risk_point".into(), t.risk_point.into());
                        // The step's clock pauses with the promised one.
                        let frozen = state
                            .held()
                            .filter(|(s, _)| s.step == t.step && s.stops_promised)
                            .map(|(_, since)| since);
                        m.insert(
                            "left".into(),
                            t.deadline
                                .as_ref()
                                .map_or(NO_DEADLINE, |d| left(d, cal, frozen.unwrap_or(now)))
                                .into(),
                        );
                        (
                            format!("step:{}", t.step),
                            t.department.clone(),
                            Some(("step", m)),
                        )
                    })
                    .collect(),
                "special" => state
                    .specials
                    .iter()
                    .filter(|s| s.ended_at.is_none())
                    .map(|s| {
                        let mut m = Map::new();
                        m.insert("kind".into(), s.kind.clone().into());
                        m.insert(
                            "class".into(),
                            match s.class {
                                SpecialClass::A => "A",
                                SpecialClass::B => "B",
                            }
                            .into(),
                        );
                        let left = match (s.due_date, s.due) {
                            // Overdue from the instant the declared length passes,
                            // weekends and holidays included (as case deadlines).
                            (Some(date), Some(due)) if now >= due => {
                                -cal.diff(date, now.date()).unwrap_or(1).max(1)
                            }
                            (Some(date), Some(_)) => {
                                cal.diff(now.date(), date).unwrap_or(NO_DEADLINE)
                            }
                            // Recorded before due instants were kept.
                            _ => {
                                let used = cal.diff(s.started_at.date(), now.date()).unwrap_or(0);
                                s.days.map_or(NO_DEADLINE, |d| i64::from(d) - used)
                            }
                        };
                        m.insert("left".into(), left.into());
                        m.insert("step".into(), s.step.clone().into());
                        let dept = state
                            .tasks
                            .values()
                            .find(|t| t.step == s.step)
                            .map_or_else(owner, |t| t.department.clone());
                        (format!("special:{}", s.id), dept, Some(("special", m)))
                    })
                    .collect(),
                "case" => vec![("case".into(), String::new(), None)],
                scope @ ("order" | "complaint") => {
                    let (m, dept) = reply_facts(state, flow, cal, now);
                    let name = if scope == "order" {
                        "order"
                    } else {
                        "complaint"
                    };
                    vec![(scope.to_string(), dept, Some((name, m)))]
                }
                _ => Vec::new(),
            };
            for (subject, dept, extra) in subjects {
                let mut scope = base.clone();
                if let Some((name, mut m)) = extra {
                    // `staff` is the step's; rules write `staff.x` rather than `step.staff.x`.
                    if let Some(st) = m.remove("staff") {
                        scope.push_constant("staff", st);
                    }
                    scope.push_constant(name, m);
                }
                let mut level = None;
                let mut error = None;
                for (l, ast) in levels {
                    match govflow_dsl::rhai_sandbox::eval(&self.engine, &mut scope, ast) {
                        Ok(v) => match v.as_bool() {
                            Ok(true) => level = Some(*l),
                            Ok(false) => {}
                            Err(t) => {
                                error = Some(format!(
                                    "the {} condition gave a {t}, not true or false",
                                    l.as_str()
                                ));
                            }
                        },
                        Err(e) => {
                            error = Some(format!(
                                "the {} condition failed: {}",
                                l.as_str(),
                                govflow_dsl::rhai_sandbox::explain(&e)
                            ))
                        }
                    }
                }
                out.push(verdict(
                    &self.meta[ri],
                    Arc::from(subject),
                    dept,
                    level,
                    error,
                ));
            }
        }
        out
    }
}

fn verdict(
    meta: &[Arc<str>; 4],
    subject: Arc<str>,
    department: String,
    level: Option<Level>,
    error: Option<String>,
) -> Verdict {
    Verdict {
        rule: meta[0].clone(),
        name: meta[1].clone(),
        class: meta[2].clone(),
        subtype: meta[3].clone(),
        subject,
        department,
        level,
        error,
    }
}

/// The department answerable for the case as a whole: the one holding its
/// oldest open task, else the flow's first department (the window).
fn responsible(state: &CaseState, flow: Option<&CompiledFlow>) -> String {
    if let Some(d) = state.data.get("addressee").and_then(|v| v.as_str())
        && matches!(state.flow_id.as_str(), ORDER_FLOW | COMPLAINT_FLOW)
    {
        return d.to_string();
    }
    state
        .tasks
        .values()
        .min_by_key(|t| t.id)
        .map(|t| t.department.clone())
        .or_else(|| flow.and_then(|f| f.flow.departments.first().map(|d| d.id.clone())))
        .unwrap_or_default()
}

/// `order.*` / `complaint.*`: the reply owed by the addressed department.
/// `left` counts working days to the reply deadline (the open task of the
/// department the case data names); 9999 once the reply is in.
fn reply_facts(
    state: &CaseState,
    flow: Option<&CompiledFlow>,
    cal: &Calendar,
    now: Time,
) -> (Map, String) {
    let addressee = state
        .data
        .get("addressee")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string();
    // Steps assigned to a per-case department (`from addressee`).
    let dynamic = |step: &str| -> bool {
        flow.is_some_and(|f| {
            f.flow.all_steps().iter().any(|s| {
                s.id == step
                    && matches!(&s.kind, govflow_dsl::ir::StepKind::Task { by, .. }
                        if f.flow.departments.iter().any(|d| d.id == by.department && d.from.is_some()))
            })
        })
    };
    let reply = state
        .tasks
        .values()
        .find(|t| dynamic(&t.step) || (flow.is_none() && t.department == addressee));
    let mut m = Map::new();
    m.insert(
        "left".into(),
        reply
            .and_then(|t| t.deadline.as_ref())
            .map_or(NO_DEADLINE, |d| left(d, cal, now))
            .into(),
    );
    m.insert("replied".into(), reply.is_none().into());
    m.insert("department".into(), addressee.clone().into());
    let origin = state.data.get("origin");
    let field = |k: &str| -> Dynamic {
        origin
            .and_then(|o| o.get(k))
            .and_then(|v| v.as_str())
            .map_or(Dynamic::UNIT, |s| s.to_string().into())
    };
    m.insert("case".into(), field("case"));
    m.insert("rule".into(), field("rule"));
    (m, addressee)
}

/// The case figures of `fastcond::NAMES`, in that order.
fn numbers(state: &CaseState, cal: &Calendar, now: Time) -> [i64; 8] {
    let at = clock_instant(state, now);
    let clock = |d: &Option<Deadline>| d.as_ref().map_or(NO_DEADLINE, |d| left(d, cal, at));
    let days = |d: &Option<Deadline>| {
        d.as_ref()
            .map_or(NO_DEADLINE, |d| i64::from(d.limit.value + d.extended))
    };
    [
        clock(&state.promised),
        statutory_left(state, cal, now),
        elapsed(state, cal, at),
        days(&state.promised),
        days(&state.statutory),
        i64::from(state.returns),
        i64::from(state.corrections),
        i64::from(state.visits),
    ]
}

/// Working days left to the statutory deadline. The decision clock stops at
/// the licensing decision: one made in time has met it (no deadline left to
/// approach), one made late stays overdue by what it was at the decision.
fn statutory_left(state: &CaseState, cal: &Calendar, now: Time) -> i64 {
    let Some(d) = &state.statutory else {
        return NO_DEADLINE;
    };
    // It stands still only for what stops it (行政许可法第四十五条).
    let at = match (state.finished_at, state.held_statutory()) {
        (Some(f), _) => f,
        (None, Some(since)) => since,
        (None, None) => now,
    };
    match state.decided_at {
        Some(decided) if d.due.is_some_and(|due| decided < due) => NO_DEADLINE,
        Some(decided) => left(d, cal, decided.min(at)),
        None => left(d, cal, at),
    }
}

/// The instant the promised clock (and the figures that follow it) reads:
/// the end for a finished case, the start of the stop while it stands still,
/// else now.
fn clock_instant(state: &CaseState, now: Time) -> Time {
    match (state.finished_at, state.held_promised()) {
        (Some(f), _) => f,
        (None, Some(since)) => since,
        (None, None) => now,
    }
}

/// Since when some clock stands still (a B procedure, the applicant's rectification).
fn stopped_since(state: &CaseState) -> Option<Time> {
    state.held_promised().or_else(|| state.held_statutory())
}

/// Working days since acceptance, not counting the days the clock stood still.
fn elapsed(state: &CaseState, cal: &Calendar, at: Time) -> i64 {
    state.accepted_at.map_or(0, |a| {
        let stood = state
            .statutory
            .as_ref()
            .map_or(0, |d| i64::from(d.suspended));
        (cal.diff(a.date(), at.date()).unwrap_or(0) - stood).max(0)
    })
}

/// Working days left to a deadline at `now`: 0 on its last day, negative once
/// it has passed (at least -1 from the instant it passes).
pub fn left(d: &Deadline, cal: &Calendar, now: Time) -> i64 {
    let (Some(date), Some(due)) = (d.due_date, d.due) else {
        return NO_DEADLINE;
    };
    if now >= due {
        -cal.diff(date, now.date()).unwrap_or(1).max(1)
    } else {
        cal.diff(now.date(), date).unwrap_or(NO_DEADLINE)
    }
}

fn facts(
    state: &CaseState,
    flow: Option<&CompiledFlow>,
    cal: &Calendar,
    now: Time,
    words: &std::collections::HashSet<String>,
) -> rhai::Scope<'static> {
    // Only the facts some condition names are built (a scan touches every case).
    let need = |w: &str| words.contains(w);
    let mut s = rhai::Scope::new();
    let stopped = stopped_since(state);
    let at = clock_instant(state, now);
    let clock = |d: &Option<Deadline>| d.as_ref().map_or(NO_DEADLINE, |d| left(d, cal, at));
    if need("status") {
        s.push_constant("status", state.status.as_str().to_string());
    }
    if need("result") {
        // 办理结果 of a completed case (准予许可, 不予许可, 不予受理 …), "" before.
        s.push_constant(
            "result",
            state
                .outcome
                .as_ref()
                .map_or(String::new(), |o| o.result.clone()),
        );
    }
    if need("promised_left") {
        s.push_constant("promised_left", clock(&state.promised));
    }
    if need("statutory_left") {
        s.push_constant("statutory_left", statutory_left(state, cal, now));
    }
    if need("issue_left") {
        // Issuing the licence (颁发、送达) runs on its own clock until the case ends.
        let v = state.issue.as_ref().map_or(NO_DEADLINE, |d| {
            left(d, cal, state.finished_at.unwrap_or(now))
        });
        s.push_constant("issue_left", v);
    }
    if need("elapsed") {
        s.push_constant("elapsed", elapsed(state, cal, at));
    }
    let days = |d: &Option<Deadline>| {
        d.as_ref()
            .map_or(NO_DEADLINE, |d| i64::from(d.limit.value + d.extended))
    };
    if need("promised_days") {
        s.push_constant("promised_days", days(&state.promised));
    }
    if need("statutory_days") {
        s.push_constant("statutory_days", days(&state.statutory));
    }
    s.push_constant("deemed_accepted", state.deemed_accepted);
    // 最多跑一次: trips of the office's doing against the mode's bound
    // (原件预审 2, 原件核验 1, 全程网办 0; 9999 for window handling).
    s.push_constant("office_visits", i64::from(state.office_visits));
    s.push_constant(
        "visit_bound",
        flow.and_then(|f| f.flow.item.mode.visit_bound())
            .map_or(NO_DEADLINE, i64::from),
    );
    s.push_constant("returns", i64::from(state.returns));
    s.push_constant("corrections", i64::from(state.corrections));
    s.push_constant("visits", i64::from(state.visits));
    s.push_constant("suspended", stopped.is_some());
    if need("item") || need("fee") {
        let mut item = Map::new();
        item.insert("name".into(), state.item_name.clone().into());
        item.insert(
            "code".into(),
            state.item_code.clone().map_or(Dynamic::UNIT, Dynamic::from),
        );
        let mut fee = Map::new();
        if let Some(f) = flow {
            let it = &f.flow.item;
            item.insert("charged".into(), it.fee.charged.into());
            fee.insert(
                "standard".into(),
                it.fee.standard.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
            fee.insert(
                "item_basis".into(),
                it.fee.basis.clone().map_or(Dynamic::UNIT, Dynamic::from),
            );
        }
        // What was charged and on which basis come from the case's data.
        for (k, key) in [("charged", "fee_charged"), ("basis", "fee_basis")] {
            if let Some(v) = state.data.get(key) {
                fee.insert(k.into(), to_dynamic(v));
            }
        }
        s.push_constant("item", item);
        s.push_constant("fee", fee);
    }
    if need("data") {
        s.push_constant(
            "data",
            to_dynamic(&serde_json::Value::Object(state.data.clone())),
        );
    }
    if need("staff") {
        // Shadowed per step by the step's figures.
        let mut staff = Map::new();
        staff.insert("complaints".into(), 0_i64.into());
        staff.insert("anomalies".into(), 0_i64.into());
        s.push_constant("staff", staff);
    }
    if need("materials") {
        let mats: Map = state
            .materials
            .iter()
            .map(|(k, m)| (k.as_str().into(), Dynamic::from(i64::from(m.count))))
            .collect();
        s.push_constant("materials", mats);
    }
    s
}

/// The state of one card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Card {
    pub rule: String,
    pub name: String,
    pub class: String,
    pub subject: String,
    pub level: Level,
    pub issued_at: Time,
    /// (instant, what happened)
    pub history: Vec<(Time, String)>,
}

/// A change to the cards of a case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum CardChange {
    Issued {
        card: Card,
    },
    Escalated {
        rule: String,
        subject: String,
        from: Level,
        to: Level,
    },
    Lowered {
        rule: String,
        subject: String,
        from: Level,
        to: Level,
    },
    Resolved {
        rule: String,
        subject: String,
        level: Level,
    },
    Failed {
        rule: String,
        subject: String,
        error: String,
    },
}

/// The cards of the cases seen so far, deduplicated per (rule, case, subject).
#[derive(Default, Debug)]
pub struct CardBoard {
    pub cards: BTreeMap<(String, String, String), Card>,
    /// Closed cards, kept with their history.
    pub closed: Vec<Card>,
}

impl CardBoard {
    /// Applies the verdicts for `case_no` at `now`; returns what changed.
    pub fn update(&mut self, case_no: &str, verdicts: &[Verdict], now: Time) -> Vec<CardChange> {
        let mut changes = Vec::new();
        for v in verdicts {
            let key = (
                v.rule.to_string(),
                case_no.to_string(),
                v.subject.to_string(),
            );
            if let Some(e) = &v.error {
                changes.push(CardChange::Failed {
                    rule: v.rule.to_string(),
                    subject: v.subject.to_string(),
                    error: e.clone(),
                });
                continue;
            }
            match (self.cards.get_mut(&key), v.level) {
                (None, Some(level)) => {
                    let card = Card {
                        rule: v.rule.to_string(),
                        name: v.name.to_string(),
                        class: v.class.to_string(),
                        subject: v.subject.to_string(),
                        level,
                        issued_at: now,
                        history: vec![(now, format!("issued {}", level.as_str()))],
                    };
                    changes.push(CardChange::Issued { card: card.clone() });
                    self.cards.insert(key, card);
                }
                (Some(card), Some(level)) if level != card.level => {
                    let from = card.level;
                    card.level = level;
                    card.history
                        .push((now, format!("{} → {}", from.as_str(), level.as_str())));
                    changes.push(if level > from {
                        CardChange::Escalated {
                            rule: v.rule.to_string(),
                            subject: v.subject.to_string(),
                            from,
                            to: level,
                        }
                    } else {
                        CardChange::Lowered {
                            rule: v.rule.to_string(),
                            subject: v.subject.to_string(),
                            from,
                            to: level,
                        }
                    });
                }
                (Some(_), None) => {
                    if let Some(mut card) = self.cards.remove(&key) {
                        card.history.push((now, "resolved".into()));
                        changes.push(CardChange::Resolved {
                            rule: v.rule.to_string(),
                            subject: v.subject.to_string(),
                            level: card.level,
                        });
                        self.closed.push(card);
                    }
                }
                _ => {}
            }
        }
        // Subjects that disappeared (a step that closed) resolve their cards.
        let seen: std::collections::BTreeSet<(String, String)> = verdicts
            .iter()
            .map(|v| (v.rule.to_string(), v.subject.to_string()))
            .collect();
        let gone: Vec<_> = self
            .cards
            .keys()
            .filter(|(r, c, s)| c == case_no && !seen.contains(&(r.clone(), s.clone())))
            .cloned()
            .collect();
        for key in gone {
            if let Some(mut card) = self.cards.remove(&key) {
                card.history.push((now, "resolved".into()));
                changes.push(CardChange::Resolved {
                    rule: card.rule.clone(),
                    subject: card.subject.clone(),
                    level: card.level,
                });
                self.closed.push(card);
            }
        }
        changes
    }
}

//! Scenarios: drive a case through a flow on a simulated clock and the shipped
//! calendar, and print what happened as a YAML trace. `govflow run` prints one
//! trace; `govflow test` compares every scenario's trace with the snapshot
//! beside it. The format is documented in docs/scenarios.md.
//!
//! Why this file is long: the reader of scenario files and the trace printer
//! (one line per event kind, the clocks in words) live together because the
//! trace is the scenario format's other half; the next split is the printer.

use crate::calendar::Calendar;
use crate::core::{
    Actor, CaseState, Command, CompiledFlow, Deadline, Event, Period, Status, Time, apply,
};
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use govflow_dsl::node::{Node, Value as NodeValue};
use govflow_dsl::{SourceFile, Span};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};

/// A problem with a scenario, at a place in its file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One action of a scenario, as read from the file.
#[derive(Debug, Clone)]
struct Step {
    span: Span,
    at: Option<Time>,
    expect_error: Option<String>,
    what: What,
}

#[derive(Debug, Clone)]
enum What {
    Advance(Period),
    Command(Box<Command>),
}

/// A parsed scenario file.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub flow: Option<String>,
    /// Rule files or folders (relative to the scenario) whose cards the trace shows.
    pub rules: Vec<String>,
    /// Figures from across cases the rules see (`staff:` — per department,
    /// `complaints` and `anomalies`), as the server gathers them.
    pub context: crate::supervision::Context,
    file: SourceFile,
    start_at: Time,
    start: Command,
    steps: Vec<Step>,
    expect: Map<String, Value>,
    expect_span: Span,
}

fn parse_time(s: &str) -> Option<Time> {
    let s = s.trim();
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .map(|d| d.and_time(NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default()))
}

/// `王芳 @ window.clerk` → an actor.
fn parse_actor(s: &str) -> Actor {
    let (name, rest) = match s.split_once('@') {
        Some((n, r)) => (n.trim(), Some(r.trim())),
        None => (s.trim(), None),
    };
    let (department, role) = match rest {
        Some(r) => match r.split_once('.') {
            Some((d, role)) => (Some(d.to_string()), Some(role.to_string())),
            None => (Some(r.to_string()), None),
        },
        None => (None, None),
    };
    Actor {
        name: name.to_string(),
        department,
        role,
    }
}

/// A YAML node as JSON: unquoted `true`/`false`/numbers become JSON values.
fn to_json(n: &Node) -> Value {
    match &n.value {
        NodeValue::Null => Value::Null,
        NodeValue::Str { text, quoted } => {
            if !quoted {
                if text == "true" {
                    return Value::Bool(true);
                }
                if text == "false" {
                    return Value::Bool(false);
                }
                if let Ok(i) = text.parse::<i64>() {
                    return Value::from(i);
                }
                if let Ok(f) = text.parse::<f64>()
                    && let Some(num) = serde_json::Number::from_f64(f)
                {
                    return Value::Number(num);
                }
            }
            Value::String(text.clone())
        }
        NodeValue::List(items) => Value::Array(items.iter().map(to_json).collect()),
        NodeValue::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), to_json(&e.value)))
                .collect(),
        ),
    }
}

/// Materials may be written as ids or as maps.
fn materials(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|m| match m {
                    Value::String(id) => json!({ "id": id }),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

/// `by` may be `name @ dept.role` or a map.
fn actor_value(v: Value) -> Value {
    match v {
        Value::String(s) => serde_json::to_value(parse_actor(&s)).unwrap_or(Value::Null),
        other => other,
    }
}

impl Scenario {
    pub fn parse(name: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let file = SourceFile::new(name, text);
        let err = |span: Span, message: String| {
            let (line, column) = file.line_col(span.start);
            ScenarioError {
                file: name.to_string(),
                line,
                column,
                message,
            }
        };
        let root = govflow_dsl::yaml::parse(text).map_err(|d| err(d.span, d.message.clone()))?;
        let Some(entries) = root.as_map() else {
            return Err(err(
                root.span,
                "a scenario is a map with `start`, `actions` and `expect`".into(),
            ));
        };
        for e in entries {
            if ![
                "name", "scenario", "flow", "rules", "staff", "start", "actions", "expect",
            ]
            .contains(&e.key.as_str())
            {
                return Err(err(
                    e.key_span,
                    format!(
                        "unknown key `{}`; expected name, flow, rules, staff, start, actions, expect",
                        e.key
                    ),
                ));
            }
        }
        let scenario_name = root
            .get("name")
            .or_else(|| root.get("scenario"))
            .and_then(Node::as_str)
            .unwrap_or(name)
            .to_string();
        let flow = root.get("flow").and_then(Node::as_str).map(str::to_string);
        let rules = match root.get("rules") {
            None => Vec::new(),
            Some(n) => match (n.as_str(), n.as_list()) {
                (Some(s), _) => vec![s.to_string()],
                (None, Some(l)) => l
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => {
                    return Err(err(
                        n.span,
                        "`rules` is a path or a list of paths to rule files or folders".into(),
                    ));
                }
            },
        };
        let mut context = crate::supervision::Context::default();
        if let Some(n) = root.get("staff") {
            let bad = |span| {
                err(
                    span,
                    "`staff` maps departments to `{ complaints: N, anomalies: N }`".into(),
                )
            };
            for e in n.as_map().ok_or_else(|| bad(n.span))? {
                let mut f = crate::supervision::StaffFacts::default();
                for x in e.value.as_map().ok_or_else(|| bad(e.value.span))? {
                    let v: i64 = x
                        .value
                        .as_str()
                        .and_then(|v| v.parse().ok())
                        .ok_or_else(|| bad(x.value.span))?;
                    match x.key.as_str() {
                        "complaints" => f.complaints = v,
                        "anomalies" => f.anomalies = v,
                        _ => return Err(bad(x.key_span)),
                    }
                }
                context.staff.insert(e.key.clone(), f);
            }
        }
        let start = root.get("start").ok_or_else(|| {
            err(
                root.span,
                "missing `start`: when and by whom the case is registered".into(),
            )
        })?;
        let at_node = start
            .get("at")
            .ok_or_else(|| err(start.span, "`start` needs `at: YYYY-MM-DD HH:MM`".into()))?;
        let start_at = at_node.as_str().and_then(parse_time).ok_or_else(|| {
            err(
                at_node.span,
                "expected a time like `2025-09-22 09:00`".into(),
            )
        })?;
        let mut obj = match to_json(start) {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        obj.remove("at");
        obj.insert("command".into(), "start".into());
        obj.entry("case_no").or_insert_with(|| {
            Value::String(
                crate::core::ids::case_number("330100", start_at.date(), 1).unwrap_or_default(),
            )
        });
        if let Some(m) = obj.remove("materials") {
            obj.insert("materials".into(), materials(m));
        }
        let start_cmd: Command = serde_json::from_value(Value::Object(obj))
            .map_err(|e| err(start.span, format!("`start`: {e}")))?;

        let mut steps = Vec::new();
        let actions = root.get("actions");
        for a in actions.and_then(Node::as_list).unwrap_or(&[]) {
            let Some(map) = a.as_map() else {
                return Err(err(
                    a.span,
                    "an action is a map, like `complete: accept`".into(),
                ));
            };
            let mut at = None;
            let mut expect_error = None;
            let mut fields = Map::new();
            let mut verb: Option<(&str, &Node)> = None;
            for e in map {
                match e.key.as_str() {
                    "at" => {
                        at = Some(e.value.as_str().and_then(parse_time).ok_or_else(|| {
                            err(
                                e.value.span,
                                "expected a time like `2025-09-22 09:00`".into(),
                            )
                        })?);
                    }
                    "expect_error" => {
                        expect_error = e.value.as_str().map(str::to_string);
                    }
                    "advance" | "complete" | "submit" | "start_special" | "end_special"
                    | "signal" | "subcase" | "terminate" | "withdraw" | "fire" => {
                        if let Some((v, _)) = verb {
                            return Err(err(
                                e.key_span,
                                format!("one verb per action: `{v}` and `{}`", e.key),
                            ));
                        }
                        verb = Some((e.key.as_str(), &e.value));
                    }
                    _ => {
                        fields.insert(e.key.clone(), to_json(&e.value));
                    }
                }
            }
            let Some((verb, arg)) = verb else {
                return Err(err(
                    a.span,
                    "an action needs a verb: advance, complete, submit, start_special, end_special, signal, subcase, terminate, withdraw or fire".into(),
                ));
            };
            let what = if verb == "advance" {
                let p = arg
                    .as_str()
                    .ok_or_else(|| err(arg.span, "expected `N workdays|days|hours`".into()))?
                    .parse::<Period>()
                    .map_err(|m| err(arg.span, m))?;
                What::Advance(p)
            } else {
                let mut obj = fields;
                let main = to_json(arg);
                match (verb, main) {
                    ("complete", Value::String(s)) => {
                        obj.insert("step".into(), s.into());
                    }
                    ("signal", Value::String(s)) => {
                        obj.insert("name".into(), s.into());
                    }
                    ("withdraw", Value::String(s)) => {
                        obj.insert("reason".into(), s.into());
                    }
                    ("terminate", Value::String(s)) => {
                        obj.insert("reason".into(), s.into());
                    }
                    ("fire", Value::String(s)) => {
                        obj.insert("timer".into(), s.into());
                    }
                    (_, Value::Object(o)) => obj.extend(o),
                    (_, Value::Null) => {}
                    (v, _) => {
                        return Err(err(arg.span, format!("`{v}` takes a map of fields")));
                    }
                }
                let command = match verb {
                    "submit" => "submit_materials",
                    "subcase" => "subcase_finished",
                    v => v,
                };
                obj.insert("command".into(), command.into());
                if let Some(m) = obj.remove("materials") {
                    obj.insert("materials".into(), materials(m));
                }
                if let Some(b) = obj.remove("by") {
                    obj.insert("by".into(), actor_value(b));
                }
                let cmd: Command = serde_json::from_value(Value::Object(obj))
                    .map_err(|e| err(a.span, format!("`{verb}`: {e}")))?;
                What::Command(Box::new(cmd))
            };
            steps.push(Step {
                span: a.span,
                at,
                expect_error,
                what,
            });
        }
        let (expect, expect_span) = match root.get("expect") {
            Some(n) => match to_json(n) {
                Value::Object(o) => (o, n.span),
                _ => {
                    return Err(err(
                        n.span,
                        "`expect` is a map: status, result, visits".into(),
                    ));
                }
            },
            None => {
                return Err(err(
                    root.span,
                    "missing `expect`: the end the scenario must reach (status, result)".into(),
                ));
            }
        };
        for k in expect.keys() {
            if ![
                "status",
                "result",
                "visits",
                "document_no",
                "returns",
                "corrections",
            ]
            .contains(&k.as_str())
            {
                return Err(err(
                    expect_span,
                    format!(
                        "unknown expectation `{k}`; expected status, result, visits, document_no, returns, corrections"
                    ),
                ));
            }
        }
        Ok(Scenario {
            name: scenario_name,
            flow,
            rules,
            context,
            file,
            start_at,
            start: start_cmd,
            steps,
            expect,
            expect_span,
        })
    }

    fn err(&self, span: Span, message: String) -> ScenarioError {
        let (line, column) = self.file.line_col(span.start);
        ScenarioError {
            file: self.file.name.clone(),
            line,
            column,
            message,
        }
    }

    /// Runs the scenario and returns its trace as YAML.
    pub fn run(&self, flow: &CompiledFlow, cal: &Calendar) -> Result<String, ScenarioError> {
        self.run_with(flow, cal, None)
    }

    /// Runs the scenario; with a rule book, the trace also shows the cards it
    /// issues, escalates and resolves — after each command and at each
    /// midnight the clock passes (when working-day figures change).
    pub fn run_with(
        &self,
        flow: &CompiledFlow,
        cal: &Calendar,
        rules: Option<&crate::supervision::RuleBook>,
    ) -> Result<String, ScenarioError> {
        let mut r = Runner {
            rules,
            context: &self.context,
            board: crate::supervision::CardBoard::default(),
            flow,
            cal,
            state: None,
            now: self.start_at,
            trace: Vec::new(),
            log: Vec::new(),
            past_calendar: false,
        };
        r.note_past_calendar();
        r.command(&self.start, None, "start".into())
            .map_err(|m| self.err(Span::new(0, 0), m))?;
        for step in &self.steps {
            if let Some(at) = step.at {
                if at < r.now {
                    return Err(self.err(
                        step.span,
                        format!("`at: {at}` is before the scenario's clock ({}); time only moves forward", r.now),
                    ));
                }
                // A command at an instant comes before the timers due at that instant.
                r.advance_to(at, false)
                    .map_err(|m| self.err(step.span, m))?;
            }
            match &step.what {
                What::Advance(p) => {
                    let target = r.advance_target(*p).map_err(|m| self.err(step.span, m))?;
                    r.advance_to(target, true)
                        .map_err(|m| self.err(step.span, m))?;
                }
                What::Command(c) => {
                    let label = describe(c);
                    r.command(c, step.expect_error.as_deref(), label)
                        .map_err(|m| self.err(step.span, m))?;
                }
            }
        }
        let state = r.state.clone().unwrap_or_default();
        let mut end = Map::new();
        end.insert("status".into(), state.status.as_str().into());
        if let Some(o) = &state.outcome {
            end.insert("result".into(), o.result.clone().into());
            if let Some(d) = &o.document_no {
                end.insert("document_no".into(), d.clone().into());
            }
        }
        if let Some(reason) = &state.termination_reason {
            end.insert("reason".into(), reason.clone().into());
        }
        end.insert("visits".into(), state.visits.into());
        end.insert("returns".into(), state.returns.into());
        end.insert("corrections".into(), state.corrections.into());
        if let Some(f) = state.finished_at {
            end.insert("finished_at".into(), fmt_time(f).into());
            if let Some(a) = state.accepted_at
                && let Ok(d) = cal.diff(a.date(), f.date())
            {
                // The clock's count: days it stood still (B procedures, the
                // applicant's rectification) are not used.
                let stopped = state
                    .statutory
                    .as_ref()
                    .or(state.promised.as_ref())
                    .map_or(0, |c| i64::from(c.suspended));
                end.insert("working_days_used".into(), (d - stopped).max(0).into());
            }
        }
        let mut problems = Vec::new();
        for (k, want) in &self.expect {
            let got = end.get(k).cloned().unwrap_or(Value::Null);
            let same = match (want, &got) {
                (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
                (a, b) => a == b,
            };
            if !same {
                problems.push(format!("expected {k} {want}, got {got}"));
            }
        }
        if !problems.is_empty() {
            return Err(self.err(self.expect_span, problems.join("; ")));
        }
        let doc = json!({
            "scenario": self.name,
            "flow": format!("{} v{}", flow.flow.id, flow.flow.version),
            "trace": r.trace,
            "end": end,
        });
        // serde_yaml_ng's emitter (libyaml's): block style, strings quoted
        // only where YAML would read them as something else.
        serde_yaml_ng::to_string(&doc).map_err(|e| self.err(self.expect_span, e.to_string()))
    }
}

fn describe(c: &Command) -> String {
    let who = |a: &Actor| match (&a.department, &a.role) {
        (Some(d), Some(r)) => format!("{} @ {d}.{r}", a.name),
        (Some(d), None) => format!("{} @ {d}", a.name),
        _ => a.name.clone(),
    };
    match c {
        Command::Start { .. } => "start".into(),
        Command::SubmitMaterials {
            materials, on_site, ..
        } => {
            let what = if materials.is_empty() {
                "data".to_string()
            } else {
                materials
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if *on_site {
                format!("submit {what} at the window")
            } else {
                format!("submit {what}")
            }
        }
        Command::Complete {
            step, action, by, ..
        } => format!("complete {step} ({action}) by {}", who(by)),
        Command::StartSpecial {
            step,
            kind,
            by,
            days,
            ..
        } => match days {
            Some(d) => format!("start {kind} at {step} ({d} days) by {}", who(by)),
            None => format!("start {kind} at {step} by {}", who(by)),
        },
        Command::EndSpecial { step, kind, by, .. } => {
            format!("end {kind} at {step} by {}", who(by))
        }
        Command::Signal { name, .. } => format!("signal {name}"),
        Command::SubcaseFinished { item, result, .. } => format!("sub-case {item}: {result}"),
        Command::SubcaseClock {
            item,
            case_no,
            kind,
            stopped,
            ..
        } => format!(
            "sub-case {item} ({case_no}): {kind} {}",
            if *stopped { "started" } else { "ended" }
        ),
        Command::Terminate { by, .. } => format!("terminate by {}", who(by)),
        Command::Withdraw { .. } => "withdraw".into(),
        Command::Fire { timer } => format!("timer {timer}"),
        Command::Recalendar { calendar } => format!("recompute provisional deadlines ({calendar})"),
    }
}

/// A due instant: midnight means "the end of the day before".
pub fn fmt_due(t: Time) -> String {
    if t.time() == NaiveTime::MIN {
        match t.date().pred_opt() {
            Some(d) => format!("end of {d}"),
            None => fmt_time(t),
        }
    } else {
        fmt_time(t)
    }
}

pub fn fmt_time(t: Time) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

struct Runner<'a> {
    rules: Option<&'a crate::supervision::RuleBook>,
    context: &'a crate::supervision::Context,
    board: crate::supervision::CardBoard,
    flow: &'a CompiledFlow,
    cal: &'a Calendar,
    state: Option<CaseState>,
    now: Time,
    trace: Vec<Value>,
    /// Every event so far, stored as the database stores them (JSON).
    log: Vec<String>,
    /// The trace already said that the clock left the official calendar.
    past_calendar: bool,
}

impl Runner<'_> {
    fn advance_target(&self, p: Period) -> Result<Time, String> {
        use govflow_dsl::ir::Unit;
        Ok(match p.unit {
            Unit::Workdays => self
                .cal
                .add_workdays(self.now.date(), p.value)
                .map_err(|e| e.to_string())?
                .and_time(self.now.time()),
            Unit::Days => self.now + chrono::Duration::days(i64::from(p.value)),
            Unit::Hours => self.now + chrono::Duration::hours(i64::from(p.value)),
        })
    }

    /// Moves the clock to `target`, firing every timer that falls due on the
    /// way, in order (those due exactly at `target` only when `inclusive`).
    fn advance_to(&mut self, target: Time, inclusive: bool) -> Result<(), String> {
        let mut stale = std::collections::BTreeSet::new();
        while let Some(state) = &self.state {
            let next = state
                .timers()
                .into_iter()
                .filter(|t| {
                    (t.due < target || (inclusive && t.due == target))
                        && !stale.contains(&(t.key.clone(), t.due))
                })
                .min_by(|a, b| a.due.cmp(&b.due).then(a.key.cmp(&b.key)));
            // Rules are also scanned at each midnight, when working-day figures change.
            let midnight = self
                .now
                .date()
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .filter(|m| self.rules.is_some() && (*m < target || (inclusive && *m == target)));
            if let Some(m) = midnight
                && next.as_ref().is_none_or(|t| m < t.due)
            {
                self.now = m;
                self.note_past_calendar();
                self.scan("supervision scan (00:00)");
                continue;
            }
            let Some(timer) = next else { break };
            self.now = self.now.max(timer.due);
            self.note_past_calendar();
            let fired = self.command(
                &Command::Fire {
                    timer: timer.key.clone(),
                },
                None,
                format!("timer {}", timer.key),
            )?;
            if !fired {
                stale.insert((timer.key, timer.due));
            }
        }
        self.now = self.now.max(target);
        self.note_past_calendar();
        Ok(())
    }

    /// Once the scenario's clock is past the official calendar, the trace
    /// says that working days are now counted with the provisional rule.
    fn note_past_calendar(&mut self) {
        let covered = self.cal.covered_until();
        if self.past_calendar || self.now.date() <= covered {
            return;
        }
        self.past_calendar = true;
        let mut entry = Map::new();
        entry.insert("at".into(), fmt_time(self.now).into());
        entry.insert(
            "note".into(),
            format!("past the official calendar (covered to {covered}): working days counted provisionally (weekends and the statutory holidays off, no 调休)").into(),
        );
        self.trace.push(Value::Object(entry));
    }

    /// Applies one command and records it; returns whether it produced events.
    fn command(
        &mut self,
        c: &Command,
        expect_error: Option<&str>,
        label: String,
    ) -> Result<bool, String> {
        let result = apply(self.flow, self.cal, self.state.as_ref(), c, self.now);
        let mut entry = Map::new();
        entry.insert("at".into(), fmt_time(self.now).into());
        entry.insert("do".into(), label.into());
        match (result, expect_error) {
            (Ok(events), None) => {
                if events.is_empty() {
                    return Ok(false);
                }
                let mut state = self.state.take().unwrap_or_default();
                for e in &events {
                    state.apply(e);
                    self.log
                        .push(serde_json::to_string(e).map_err(|e| format!("event: {e}"))?);
                }
                // Every step of every scenario checks the storage invariant:
                // the stored events, read back, rebuild exactly this snapshot,
                // and the snapshot survives its own JSON form.
                let mut replayed = CaseState::default();
                for line in &self.log {
                    let e: Event = serde_json::from_str(line)
                        .map_err(|e| format!("stored event does not read back: {e}"))?;
                    replayed.apply(&e);
                }
                if replayed != state {
                    return Err("replaying the event log does not rebuild the snapshot".into());
                }
                let json = serde_json::to_string(&state).map_err(|e| format!("snapshot: {e}"))?;
                let back: CaseState = serde_json::from_str(&json)
                    .map_err(|e| format!("stored snapshot does not read back: {e}"))?;
                if back != state {
                    return Err("the snapshot changes when stored and read back".into());
                }
                entry.insert(
                    "events".into(),
                    Value::Array(
                        events
                            .iter()
                            .map(|e| self.event_line(e, &state).into())
                            .collect(),
                    ),
                );
                self.snapshot_into(&state, &mut entry);
                self.state = Some(state);
                let cards = self.cards();
                if !cards.is_empty() {
                    entry.insert("cards".into(), Value::Array(cards));
                }
                self.trace.push(Value::Object(entry));
                Ok(true)
            }
            (Ok(_), Some(code)) => Err(format!(
                "expected error `{code}`, but the command was applied"
            )),
            (Err(e), Some(code)) if e.code() == code => {
                entry.insert("refused".into(), format!("{}: {e}", e.code()).into());
                self.trace.push(Value::Object(entry));
                Ok(false)
            }
            (Err(e), Some(code)) => {
                Err(format!("expected error `{code}`, got `{}`: {e}", e.code()))
            }
            (Err(e), None) => Err(format!("{} refused: {e} [{}]", c.name(), e.code())),
        }
    }

    fn due_text(&self, d: &Deadline) -> String {
        self.due_text_at(d, None)
    }

    /// Evaluates the rules on the case now and returns the card changes as trace lines.
    fn cards(&mut self) -> Vec<Value> {
        use crate::supervision::CardChange;
        let (Some(rules), Some(state)) = (self.rules, &self.state) else {
            return Vec::new();
        };
        let verdicts =
            rules.evaluate_with(state, Some(self.flow), self.cal, self.now, self.context);
        let colour = |l: govflow_dsl::rule::Level| match l {
            govflow_dsl::rule::Level::Notice => "预警 notice",
            govflow_dsl::rule::Level::Yellow => "黄牌 yellow",
            govflow_dsl::rule::Level::Red => "红牌 red",
        };
        let case_no = state.case_no.clone();
        self.board
            .update(&case_no, &verdicts, self.now)
            .into_iter()
            .map(|c| {
                Value::String(match c {
                    CardChange::Issued { card } => format!(
                        "{} issued: {} {} ({}, {})",
                        colour(card.level),
                        card.rule,
                        card.name,
                        card.class,
                        card.subject
                    ),
                    CardChange::Escalated {
                        rule,
                        subject,
                        from,
                        to,
                    } => {
                        format!(
                            "{rule} ({subject}) escalated: {} → {}",
                            colour(from),
                            colour(to)
                        )
                    }
                    CardChange::Lowered {
                        rule,
                        subject,
                        from,
                        to,
                    } => {
                        format!(
                            "{rule} ({subject}) lowered: {} → {}",
                            colour(from),
                            colour(to)
                        )
                    }
                    CardChange::Resolved {
                        rule,
                        subject,
                        level,
                    } => {
                        format!("{rule} ({subject}) resolved ({} closed)", colour(level))
                    }
                    CardChange::Failed {
                        rule,
                        subject,
                        error,
                    } => {
                        format!("{rule} ({subject}) could not be evaluated: {error}")
                    }
                })
            })
            .collect()
    }

    /// A scan with no command: records card changes, if any.
    fn scan(&mut self, label: &str) {
        let cards = self.cards();
        if !cards.is_empty() {
            let mut entry = Map::new();
            entry.insert("at".into(), fmt_time(self.now).into());
            entry.insert("do".into(), label.into());
            entry.insert("cards".into(), Value::Array(cards));
            self.trace.push(Value::Object(entry));
        }
    }

    /// A deadline as text; with `frozen`, the clock stopped on that date (a B
    /// special procedure) and the working days left are counted from it.
    /// The statutory clock once the decision is made: where it stopped.
    fn decided_text(&self, d: &Deadline, at: Time) -> String {
        let limit = match (d.extended, d.suspended) {
            (0, 0) => d.limit.to_string(),
            (e, 0) => format!("{}, +{e} extended", d.limit),
            (0, s) => format!("{}, +{s} suspended", d.limit),
            (e, s) => format!("{}, +{e} extended, +{s} suspended", d.limit),
        };
        match d.due_date {
            Some(date) if Some(at) >= d.due => {
                let n = self.cal.diff(date, at.date()).unwrap_or(0).max(1);
                let days = if n == 1 { "day" } else { "days" };
                format!(
                    "decided {}, {n} working {days} after the deadline {date} ({limit})",
                    fmt_time(at)
                )
            }
            Some(date) => {
                let n = self.cal.diff(at.date(), date).unwrap_or(0).max(0);
                let days = if n == 1 { "day" } else { "days" };
                format!(
                    "decided {}, {n} working {days} before the deadline {date} ({limit})",
                    fmt_time(at)
                )
            }
            None => format!("decided {} ({limit})", fmt_time(at)),
        }
    }

    fn due_text_at(&self, d: &Deadline, frozen: Option<NaiveDate>) -> String {
        if let (Some(since), Some(date)) = (frozen, d.due_date) {
            let left = self.cal.diff(since, date).unwrap_or(0).max(0);
            let days = if left == 1 { "day" } else { "days" };
            return format!(
                "clock stopped since {since}, {left} working {days} left ({})",
                d.limit
            );
        }
        match (d.due_date, d.due) {
            (Some(date), Some(due)) => {
                let extra = match (d.extended, d.suspended) {
                    (0, 0) => String::new(),
                    (e, 0) => format!(", +{e} extended"),
                    (0, s) => format!(", +{s} suspended"),
                    (e, s) => format!(", +{e} extended, +{s} suspended"),
                };
                let left = if matches!(d.limit.unit, govflow_dsl::ir::Unit::Hours) {
                    if self.now >= due {
                        format!("due {}, overdue", fmt_time(due))
                    } else {
                        format!("due {}", fmt_time(due))
                    }
                } else {
                    match self.cal.diff(self.now.date(), date) {
                        _ if self.now >= due => {
                            let n = self.cal.diff(date, self.now.date()).unwrap_or(0).max(0);
                            match n {
                                0 => format!("due {date}, overdue"),
                                1 => format!("due {date}, overdue by 1 working day"),
                                n => format!("due {date}, overdue by {n} working days"),
                            }
                        }
                        Ok(1) => format!("due {date}, 1 working day left"),
                        Ok(n) => format!("due {date}, {n} working days left"),
                        Err(_) => format!("due {date}"),
                    }
                };
                let provisional = if d.provisional {
                    ", provisional: no official calendar yet"
                } else {
                    ""
                };
                format!("{} ({}{extra}{provisional})", left, d.limit)
            }
            _ => format!(
                "due beyond the calendar (covered to {}) ({})",
                self.cal.last(),
                d.limit
            ),
        }
    }

    fn event_line(&self, e: &Event, _after: &CaseState) -> String {
        match e {
            Event::CaseStarted {
                case_no, applicant, ..
            } => format!(
                "case {case_no} registered for {} ({})",
                applicant.name,
                applicant.id_kind.label()
            ),
            Event::MaterialsReceived { materials, .. } => format!(
                "materials received: {}",
                materials
                    .iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Event::DataSet { step, values, .. } => {
                format!("data set by {step}: {}", Value::Object(values.clone()))
            }
            Event::TaskOpened { task, .. } => {
                let who = match &task.role {
                    Some(r) => format!("{}.{r}", task.department),
                    None => task.department.clone(),
                };
                match &task.deadline {
                    Some(d) => format!(
                        "task #{} {} opened for {who}, {}",
                        task.id,
                        task.step,
                        self.due_text(d)
                    ),
                    None => format!("task #{} {} opened for {who}", task.id, task.step),
                }
            }
            Event::TaskCompleted {
                task,
                step,
                action,
                by,
                next,
                ..
            } => match next {
                Some(n) => format!("task #{task} {step} done: {action} by {} → {n}", by.name),
                None => format!("task #{task} {step} done: {action} by {}", by.name),
            },
            Event::TaskCancelled { task, reason, .. } => {
                format!("task #{task} cancelled: {reason}")
            }
            Event::DecisionMade { step, target, .. } => format!("decision {step} → {target}"),
            Event::CorrectionRequested {
                missing,
                reopen,
                fixes,
                ..
            } => format!(
                "correction notice (补齐补正) listing {}; {reopen} reopens on resubmission",
                missing
                    .iter()
                    .map(|m| match fixes.get(m) {
                        Some(f) => format!("{m} ({f})"),
                        None => m.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Event::Accepted {
                statutory,
                promised,
                deferred,
                ..
            } => {
                let mut s = String::from("accepted (受理): clocks start");
                if let Some(d) = statutory {
                    s.push_str(&format!("; statutory {}", self.due_text(d)));
                }
                if let Some(d) = promised {
                    s.push_str(&format!("; promised {}", self.due_text(d)));
                }
                if let Some(d) = deferred {
                    s.push_str(&format!(
                        "; deferred {} due {}",
                        d.materials.join(", "),
                        d.due_date
                            .map_or("beyond the calendar".to_string(), |d| d.to_string())
                    ));
                }
                s
            }
            Event::VisitRecorded { step, cause, .. } => match cause.as_deref() {
                None | Some("flow") => format!("on-site visit at {step}"),
                Some("applicant") => format!("on-site visit at {step} (the applicant's choice)"),
                Some(c) => format!("on-site visit at {step} ({c}: the office's doing)"),
            },

            Event::ParallelStarted {
                step,
                lanes,
                needed,
                lead,
                ..
            } => format!(
                "parallel {step} split into {} (join {needed} of {}{})",
                lanes.join(", "),
                lanes.len(),
                lead.as_ref()
                    .map_or(String::new(), |l| format!(", lead {l}"))
            ),
            Event::LaneFinished { step, lane, .. } => format!("{step}: lane {lane} finished"),
            Event::Joined { step, dropped, .. } => {
                if dropped.is_empty() {
                    format!("{step} joined")
                } else {
                    format!("{step} joined, dropping {}", dropped.join(", "))
                }
            }
            Event::ReviewFinished { step, review, .. } => {
                format!("{step}: review {review} finished")
            }
            Event::JointRoundStarted {
                step,
                round,
                reviews,
                ..
            } => {
                format!("joint review {step} round {round}: {}", reviews.join(", "))
            }
            Event::RectificationIssued {
                step,
                round,
                resubmit_due,
                ..
            } => format!(
                "{step} round {round}: one consolidated rectification opinion sent to the applicant{}",
                resubmit_due.as_ref().map_or(String::new(), |d| format!(
                    ", resubmission {}",
                    self.due_text(d)
                ))
            ),
            Event::WaitStarted { step, state, .. } => match (&state.until, &state.event) {
                (Some(u), _) => format!("{step} waits until {}", fmt_time(*u)),
                (None, Some(ev)) => format!("{step} waits for event {ev}"),
                _ => format!("{step} waits"),
            },
            Event::WaitEnded { step, by, .. } => format!("{step} wait ended by {by}"),
            Event::SubcasesRequested {
                step,
                items,
                needed,
                ..
            } => format!(
                "{step} requests sub-cases {} (needs {needed})",
                items.join(", ")
            ),
            Event::SubcaseFinished {
                item,
                case_no,
                result,
                ..
            } => {
                format!("sub-case {item} ({case_no}) finished: {result}")
            }
            Event::SpecialStarted { special, .. } => format!(
                "special procedure {} ({}) started at {}{}",
                special.kind,
                match (
                    special.class,
                    special.stops_statutory,
                    special.stops_promised
                ) {
                    (crate::core::SpecialClass::A, ..) => "A: extension requested".to_string(),
                    (_, true, true) => format!(
                        "B: statutory and promised clocks stop ({}); notice {}",
                        special.basis.as_deref().unwrap_or("行政许可法第四十五条"),
                        special.notice.as_deref().unwrap_or("—")
                    ),
                    (_, true, false) => format!(
                        "B: statutory clock stops ({}); notice {}",
                        special.basis.as_deref().unwrap_or("行政许可法第四十五条"),
                        special.notice.as_deref().unwrap_or("—")
                    ),
                    (_, false, true) =>
                        "B: promised clock pauses; statutory clock runs".to_string(),
                    (_, false, false) => "B: recorded; no clock stops".to_string(),
                },
                special.step,
                special
                    .days
                    .map_or(String::new(), |d| format!(", {d} days declared"))
            ),
            Event::SpecialEnded {
                id,
                result,
                counted_days,
                ..
            } => match counted_days {
                1 => format!("special procedure #{id} ended: {result} (1 working day counted)"),
                n => format!("special procedure #{id} ended: {result} ({n} working days counted)"),
            },
            Event::DeadlinesMoved {
                reason,
                statutory,
                promised,
                tasks,
                stages,
                ..
            } => {
                let mut s = format!("deadlines moved ({reason})");
                if let Some(d) = statutory {
                    s.push_str(&format!("; statutory {}", self.due_text(d)));
                }
                if let Some(d) = promised {
                    s.push_str(&format!("; promised {}", self.due_text(d)));
                }
                for (id, d) in tasks {
                    s.push_str(&format!("; task #{id} {}", self.due_text(d)));
                }
                for (step, d) in stages {
                    s.push_str(&format!("; stage {step} {}", self.due_text(d)));
                }
                s
            }
            Event::Received {
                resubmission,
                window,
                ..
            } => format!(
                "{} (收件): a correction notice is due by {} at the latest (行政许可法第三十二条)",
                if *resubmission {
                    "resubmission received"
                } else {
                    "application received"
                },
                window.due_date.map_or("—".to_string(), |d| d.to_string())
            ),
            Event::DeemedAccepted {
                received_at,
                statutory,
                promised,
                ..
            } => {
                let mut s = format!(
                    "deemed accepted (视为受理) as of {}: no notice in time (行政许可法第三十二条); clocks run from receipt",
                    fmt_time(*received_at)
                );
                if let Some(d) = statutory {
                    s.push_str(&format!("; statutory {}", self.due_text(d)));
                }
                if let Some(d) = promised {
                    s.push_str(&format!("; promised {}", self.due_text(d)));
                }
                s
            }
            Event::StageClock {
                step,
                case_no,
                kind,
                paused,
                basis,
                ..
            } => format!(
                "stage {step} clock {} with {kind} in item case {case_no} ({})",
                if *paused { "stopped" } else { "resumes" },
                basis.as_deref().unwrap_or("—")
            ),
            Event::Decided {
                step,
                action,
                issue,
                ..
            } => match issue {
                Some(d) => format!(
                    "decision made at {step} ({action}): the statutory clock stops; the licence is issued and served {} (行政许可法第四十四条)",
                    self.due_text(d)
                ),
                None => format!("decision made at {step} ({action}): the statutory clock stops"),
            },
            Event::DeadlinesRecomputed {
                calendar, changes, ..
            } => {
                let list: Vec<String> = changes
                    .iter()
                    .map(|c| {
                        let was = c.was.map_or("none".to_string(), |d| d.to_string());
                        format!("{} {was} → {}", c.key, self.due_text(&c.deadline))
                    })
                    .collect();
                format!("deadlines recomputed with {calendar}: {}", list.join("; "))
            }
            Event::DeadlinePassed { timer, due, .. } => {
                format!("deadline passed: {timer} (due {})", fmt_due(*due))
            }
            Event::Terminated { reason, by, .. } => {
                format!("terminated (中止) by {}: {reason}", by.name)
            }
            Event::Withdrawn { reason, .. } => format!("withdrawn (撤回): {reason}"),
            Event::Completed {
                result,
                document_no,
                ..
            } => match document_no {
                Some(d) => format!("completed (办结): {result}, document {d}"),
                None => format!("completed (办结): {result}"),
            },
        }
    }

    fn snapshot_into(&self, s: &CaseState, entry: &mut Map<String, Value>) {
        entry.insert("status".into(), s.status.as_str().into());
        if s.status == Status::Completed || s.status.is_finished() {
            return;
        }
        // Each clock stands still only for what stops it (行政许可法第四十五条).
        let held = s
            .held()
            .filter(|(sp, _)| sp.stops_promised)
            .map(|(sp, since)| (sp, since.date()));
        let frozen_statutory = s.held_statutory().map(|t| t.date());
        let frozen = s.held_promised().map(|t| t.date());
        let mut clocks = Map::new();
        if let Some(d) = &s.statutory {
            let text = match s.decided_at {
                Some(at) => self.decided_text(d, at),
                None => self.due_text_at(d, frozen_statutory),
            };
            clocks.insert("statutory".into(), text.into());
        }
        if let Some(d) = &s.promised {
            clocks.insert("promised".into(), self.due_text_at(d, frozen).into());
        }
        if let Some(d) = &s.issue {
            clocks.insert("issue".into(), self.due_text(d).into());
        }
        if !clocks.is_empty() {
            entry.insert("deadlines".into(), Value::Object(clocks));
        }
        let tasks: Vec<Value> = s
            .tasks
            .values()
            .map(|t| {
                let who = match &t.role {
                    Some(r) => format!("{}.{r}", t.department),
                    None => t.department.clone(),
                };
                let stopped = held
                    .filter(|(sp, _)| sp.step == t.step)
                    .map(|(_, since)| since);
                let due = t.deadline.as_ref().map_or(String::new(), |d| {
                    format!(", {}", self.due_text_at(d, stopped))
                });
                format!("#{} {} @ {who}{due}", t.id, t.step).into()
            })
            .collect();
        if !tasks.is_empty() {
            entry.insert("open".into(), Value::Array(tasks));
        }
        if s.visits > 0 {
            entry.insert("visits".into(), s.visits.into());
        }
    }
}

/// Loads a flow file and compiles it; errors are the flow's diagnostics, rendered.
pub fn load_flow(path: &Path) -> Result<CompiledFlow, String> {
    let loaded = govflow_dsl::load_path(path);
    let Some(flow) = loaded.valid_flow().cloned() else {
        return Err(loaded.report.render(false));
    };
    CompiledFlow::new(flow).map_err(|e| e.to_string())
}

/// The flow a scenario file runs against: `flow:` relative to the scenario,
/// else the flow file beside it whose name is the scenario's up to the first dot.
pub fn flow_for(scenario_path: &Path, sc: &Scenario) -> Option<PathBuf> {
    let dir = scenario_path.parent().unwrap_or(Path::new("."));
    if let Some(f) = &sc.flow {
        return Some(dir.join(f));
    }
    let file = scenario_path.file_name()?.to_str()?;
    let stem = file.split('.').next()?;
    [".flow", ".flow.yaml", ".flow.yml"]
        .iter()
        .map(|ext| dir.join(format!("{stem}{ext}")))
        .find(|p| p.exists())
}

/// Runs one scenario file and returns its trace.
pub fn run_file(path: &Path, cal: &Calendar) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let sc = Scenario::parse(&path.display().to_string(), &text).map_err(|e| e.to_string())?;
    let flow_path = flow_for(path, &sc).ok_or_else(|| {
        format!(
            "{}: no flow found beside it; name it `<flow>.<case>.scenario.yaml` or set `flow:`",
            path.display()
        )
    })?;
    let flow = load_flow(&flow_path)?;
    let book = scenario_rules(path, &sc)?;
    sc.run_with(&flow, cal, book.as_ref())
        .map_err(|e| e.to_string())
}

/// The rule book a scenario names with `rules:` (paths relative to it).
pub fn scenario_rules(
    path: &Path,
    sc: &Scenario,
) -> Result<Option<crate::supervision::RuleBook>, String> {
    if sc.rules.is_empty() {
        return Ok(None);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut sets = Vec::new();
    for r in &sc.rules {
        let p = dir.join(r);
        let files: Vec<PathBuf> = if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|f| govflow_dsl::rule::is_rule_file(&f.to_string_lossy()))
                .collect();
            v.sort();
            v
        } else {
            vec![p]
        };
        for f in files {
            let l = govflow_dsl::rule::load_rules_path(&f);
            match l.rules {
                Some(s) if !l.report.has_errors() => sets.push(s),
                _ => return Err(l.report.render(false)),
            }
        }
    }
    crate::supervision::RuleBook::new(&sets).map(Some)
}

/// Every `*.scenario.yaml` under the given paths, sorted.
pub fn scenario_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), out);
                }
            }
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".scenario.yaml") || n.ends_with(".scenario.yml"))
        {
            out.push(p.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out.sort();
    out
}

/// Where a scenario's snapshot lives: `snapshots/<file name>.snap` beside it.
pub fn snapshot_path(scenario: &Path) -> PathBuf {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    let name = scenario
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("scenario");
    let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    dir.join("snapshots").join(format!("{stem}.snap"))
}

/// The outcome of checking one scenario against its snapshot.
#[derive(Debug)]
pub enum Checked {
    Matches,
    /// No snapshot yet; the trace was written as `.snap.new` (or accepted).
    New {
        accepted: bool,
    },
    /// The trace differs; the diff, and whether the new trace was accepted.
    Differs {
        diff: String,
        accepted: bool,
    },
    Failed(String),
}

fn snap_text(scenario: &Path, trace: &str) -> String {
    format!(
        "---\nsource: {}\nexpression: trace\n---\n{trace}",
        scenario.display()
    )
}

fn snap_body(text: &str) -> &str {
    // insta's format: a `---` header block, then the body.
    if let Some(rest) = text.strip_prefix("---\n")
        && let Some(i) = rest.find("\n---\n")
    {
        return &rest[i + 5..];
    }
    text
}

/// Runs a scenario and compares its trace with the snapshot beside it. With
/// `accept`, a new or changed trace replaces the snapshot; otherwise it is
/// written beside it as `.snap.new` (for `cargo insta review` or `--accept`).
pub fn check_file(path: &Path, cal: &Calendar, accept: bool) -> Checked {
    let trace = match run_file(path, cal) {
        Ok(t) => t,
        Err(e) => return Checked::Failed(e),
    };
    let snap = snapshot_path(path);
    let new_path = snap.with_extension("snap.new");
    let write = |p: &Path| -> Result<(), String> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        std::fs::write(p, snap_text(path, &trace)).map_err(|e| format!("{}: {e}", p.display()))
    };
    match std::fs::read_to_string(&snap) {
        Ok(old) if snap_body(&old) == trace => {
            let _ = std::fs::remove_file(&new_path);
            Checked::Matches
        }
        Ok(old) => {
            let diff = similar::TextDiff::from_lines(snap_body(&old), trace.as_str())
                .unified_diff()
                .context_radius(2)
                .header("snapshot", "trace")
                .to_string();
            let r = if accept {
                write(&snap)
            } else {
                write(&new_path)
            };
            if accept {
                let _ = std::fs::remove_file(&new_path);
            }
            match r {
                Ok(()) => Checked::Differs {
                    diff,
                    accepted: accept,
                },
                Err(e) => Checked::Failed(e),
            }
        }
        Err(_) => {
            let r = if accept {
                write(&snap)
            } else {
                write(&new_path)
            };
            match r {
                Ok(()) => Checked::New { accepted: accept },
                Err(e) => Checked::Failed(e),
            }
        }
    }
}

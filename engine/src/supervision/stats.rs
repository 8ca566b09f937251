//! Statistics and efficiency figures (pure: cases, their events, cards and
//! ratings come in; rows come out).
//!
//! Per item: cases, finished, average working days (acceptance to finish,
//! without the days the clock stood still), overdue rate, cards by class and
//! colour, satisfaction, and the guideline's E2-1…E2-4. Per department: the
//! same over the department's tasks (a case counts for every department that
//! had a task in it).

use crate::calendar::Calendar;
use crate::core::{CaseState, Deadline, Event, Time};
use crate::store::cards::{Alarm, Rating};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One row of the statistics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    /// Flow id (by item) or department id (by department).
    pub key: String,
    pub name: String,
    pub cases: u64,
    pub finished: u64,
    /// By item: finished cases; by department: completed tasks.
    pub measured: u64,
    pub avg_working_days: Option<f64>,
    pub overdue: u64,
    /// overdue / (cases or tasks), 0–1.
    pub overdue_rate: Option<f64>,
    /// class → colour → count (revoked cards left out).
    pub cards: BTreeMap<String, BTreeMap<String, u64>>,
    pub ratings: u64,
    pub satisfaction: Option<f64>,
    /// E2-1…E2-4 (by item only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2: Option<E2>,
}

/// The guideline's efficiency figures (item-elements.md, E2).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct E2 {
    /// E2-1 法定办结率: completed within the statutory limit / cases.
    pub statutory_rate: Option<f64>,
    /// E2-2 承诺办结率: promised cases completed within the promised limit / promised cases completed.
    pub promised_rate: Option<f64>,
    /// E2-3 即办程度: immediate cases / all cases.
    pub immediate_rate: Option<f64>,
    /// E2-4 时效异常率: cases with timeliness cards (yellow or red) / cases completed.
    pub anomaly_rate: Option<f64>,
}

/// A case of the period with its events and whether it is an immediate (即办) item.
pub type CaseRecord = (CaseState, Vec<Event>, bool);

/// What the figures are computed from.
pub struct Input<'a> {
    /// The cases of the period with their events, and whether each is an immediate (即办) item.
    pub cases: &'a [CaseRecord],
    pub alarms: &'a [Alarm],
    pub ratings: &'a [Rating],
    /// Names of flows and departments.
    pub names: &'a BTreeMap<String, String>,
    pub calendar: &'a Calendar,
    pub now: Time,
}

fn ratio(n: u64, d: u64) -> Option<f64> {
    (d > 0).then(|| (n as f64 / d as f64 * 10_000.0).round() / 10_000.0)
}

fn passed(d: &Option<Deadline>, at: Time) -> bool {
    d.as_ref().and_then(|d| d.due).is_some_and(|due| at > due)
}

fn working_days(cal: &Calendar, from: Time, to: Time, stood: u32) -> Option<i64> {
    cal.diff(from.date(), to.date())
        .ok()
        .map(|n| (n - i64::from(stood)).max(0))
}

fn add_cards_and_ratings(row: &mut Row, alarms: &[&Alarm], ratings: &[&Rating]) {
    for a in alarms {
        *row.cards
            .entry(a.class.clone())
            .or_default()
            .entry(a.level.clone())
            .or_default() += 1;
    }
    row.ratings = ratings.len() as u64;
    if !ratings.is_empty() {
        let sum: i64 = ratings.iter().map(|r| r.score).sum();
        row.satisfaction = Some((sum as f64 / ratings.len() as f64 * 100.0).round() / 100.0);
    }
}

/// One row per item (flow), sorted by flow id.
pub fn by_item(i: &Input) -> Vec<Row> {
    let live: Vec<&Alarm> = i.alarms.iter().filter(|a| a.state != "revoked").collect();
    let mut groups: BTreeMap<&str, Vec<&CaseRecord>> = BTreeMap::new();
    for c in i.cases {
        groups.entry(c.0.flow_id.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (flow, cases) in groups {
        let nos: BTreeSet<&str> = cases.iter().map(|c| c.0.case_no.as_str()).collect();
        let mut row = Row {
            key: flow.to_string(),
            name: cases
                .first()
                .map(|c| c.0.item_name.clone())
                .unwrap_or_default(),
            cases: cases.len() as u64,
            ..Row::default()
        };
        let (mut days, mut within_statutory, mut promised_done, mut promised_ok, mut immediate) =
            (0i64, 0u64, 0u64, 0u64, 0u64);
        let mut completed = 0u64;
        for (s, _, imm) in &cases {
            if *imm {
                immediate += 1;
            }
            let end = s.finished_at.unwrap_or(i.now);
            if passed(&s.promised, end) || passed(&s.statutory, end) {
                row.overdue += 1;
            }
            let Some(fin) = s.finished_at else { continue };
            row.finished += 1;
            if s.status.as_str() != "completed" {
                continue;
            }
            completed += 1;
            if !passed(&s.statutory, fin) {
                within_statutory += 1;
            }
            if s.promised.is_some() {
                promised_done += 1;
                if !passed(&s.promised, fin) {
                    promised_ok += 1;
                }
            }
            if let Some(acc) = s.accepted_at {
                let stood = s.statutory.as_ref().map_or(0, |d| d.suspended);
                if let Some(n) = working_days(i.calendar, acc, fin, stood) {
                    days += n;
                    row.measured += 1;
                }
            }
        }
        row.avg_working_days =
            (row.measured > 0).then(|| (days as f64 / row.measured as f64 * 100.0).round() / 100.0);
        row.overdue_rate = ratio(row.overdue, row.cases);
        let cards: Vec<&Alarm> = live
            .iter()
            .copied()
            .filter(|a| nos.contains(a.case_no.as_str()))
            .collect();
        let anomalous: BTreeSet<&str> = cards
            .iter()
            .filter(|a| a.class == "timeliness" && a.level != "notice")
            .map(|a| a.case_no.as_str())
            .collect();
        let ratings: Vec<&Rating> = i
            .ratings
            .iter()
            .filter(|r| nos.contains(r.case_no.as_str()))
            .collect();
        add_cards_and_ratings(&mut row, &cards, &ratings);
        row.e2 = Some(E2 {
            statutory_rate: ratio(within_statutory, row.cases),
            promised_rate: ratio(promised_ok, promised_done),
            immediate_rate: ratio(immediate, row.cases),
            anomaly_rate: ratio(anomalous.len() as u64, completed),
        });
        out.push(row);
    }
    out
}

/// One row per department, sorted by department id.
pub fn by_department(i: &Input) -> Vec<Row> {
    #[derive(Default)]
    struct Acc {
        cases: BTreeSet<String>,
        finished: BTreeSet<String>,
        tasks: u64,
        done: u64,
        days: i64,
        overdue: u64,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (s, events, _) in i.cases {
        // task id → (department, opened, deadline)
        let mut open: BTreeMap<u32, (String, Time, Option<Time>)> = BTreeMap::new();
        for e in events {
            match e {
                Event::TaskOpened { task, .. } => {
                    let a = acc.entry(task.department.clone()).or_default();
                    a.cases.insert(s.case_no.clone());
                    if s.finished_at.is_some() {
                        a.finished.insert(s.case_no.clone());
                    }
                    a.tasks += 1;
                    open.insert(
                        task.id,
                        (
                            task.department.clone(),
                            task.opened_at,
                            task.deadline.as_ref().and_then(|d| d.due),
                        ),
                    );
                }
                Event::TaskCompleted { at, task, .. } => {
                    if let Some((dept, opened, due)) = open.remove(task) {
                        let a = acc.entry(dept).or_default();
                        a.done += 1;
                        a.days += working_days(i.calendar, opened, *at, 0).unwrap_or(0);
                        if due.is_some_and(|d| *at > d) {
                            a.overdue += 1;
                        }
                    }
                }
                Event::TaskCancelled { task, .. } => {
                    open.remove(task);
                }
                _ => {}
            }
        }
        // Tasks still open past their deadline are overdue too.
        for (dept, _, due) in open.into_values() {
            if s.finished_at.is_none() && due.is_some_and(|d| i.now > d) {
                acc.entry(dept).or_default().overdue += 1;
            }
        }
    }
    let live: Vec<&Alarm> = i.alarms.iter().filter(|a| a.state != "revoked").collect();
    let mut keys: BTreeSet<String> = acc.keys().cloned().collect();
    keys.extend(live.iter().map(|a| a.department.clone()));
    keys.extend(i.ratings.iter().map(|r| r.department.clone()));
    keys.remove("");
    let mut out = Vec::new();
    for k in keys {
        let a = acc.remove(&k).unwrap_or_default();
        let mut row = Row {
            name: i.names.get(&k).cloned().unwrap_or_else(|| k.clone()),
            key: k.clone(),
            cases: a.cases.len() as u64,
            finished: a.finished.len() as u64,
            measured: a.done,
            avg_working_days: (a.done > 0)
                .then(|| (a.days as f64 / a.done as f64 * 100.0).round() / 100.0),
            overdue: a.overdue,
            overdue_rate: ratio(a.overdue, a.tasks),
            ..Row::default()
        };
        let cards: Vec<&Alarm> = live.iter().copied().filter(|x| x.department == k).collect();
        let ratings: Vec<&Rating> = i.ratings.iter().filter(|r| r.department == k).collect();
        add_cards_and_ratings(&mut row, &cards, &ratings);
        out.push(row);
    }
    out
}

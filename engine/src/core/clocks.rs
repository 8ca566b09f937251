//! The law on clocks, each rule beside its article (行政许可法): deadlines on
//! the working-day calendar and their provisional marking and recomputation;
//! receipt and deemed acceptance (第三十二条); extensions within the period
//! (第四十二条); which clocks a special procedure stops (第四十五条); the issuing
//! clock (第四十四条, `ISSUE_WORKDAYS`); a stage following its item cases. The
//! rest of the command handling (navigation, tasks, joins) is in `apply.rs`.
//! Pure like the rest of the core: the calendar and the instant are arguments.

use super::apply::{CommandError, Cx, R, list};
use super::model::*;
use govflow_dsl::ir::{SPECIAL_EXTENSION, StepKind, Unit};

/// 行政许可法第四十四条: “应当自作出决定之日起十日内向申请人颁发、送达行政许可证件”.
pub const ISSUE_WORKDAYS: u32 = 10;

/// 行政许可法第四十五条: “行政机关作出行政许可决定，依法需要听证、招标、拍卖、检验、检测、检疫、鉴定和专家评审的，
/// 所需时间不计算在本节规定的期限内”. The guide's combined kind names count too.
/// The applicant's rectification after a joint review's consolidated opinion,
/// declared like a B procedure (`stops_statutory`, `stops_promised`).
pub const RECTIFICATION: &str = "申请人整改";

pub const ART45_PROCEDURES: &[&str] = &[
    "听证",
    "招标",
    "拍卖",
    "招标拍卖",
    "检验",
    "检测",
    "检疫",
    "鉴定",
    "检验检测检疫鉴定",
    "检验检测",
    "专家评审",
    "hearing",
    "expert_review",
    "testing",
];

impl Cx<'_> {
    /// 第四十四条: issuing and serving the licence, from the decision.
    pub(super) fn issue_clock(&self, at: Time) -> Deadline {
        let limit = Period {
            value: ISSUE_WORKDAYS,
            unit: Unit::Workdays,
        };
        self.deadline(limit, at, 0, 0)
    }

    /// Which clocks the applicant's rectification after a joint review stops.
    pub(super) fn rectification_stops(&self) -> (bool, bool) {
        self.stops(RECTIFICATION)
    }

    /// A deadline of `limit` from `start`, moved by `extended` and `suspended`
    /// working days. Past the official years the calendar counts with the
    /// provisional rule and the deadline says so (`provisional`); only past the
    /// calendar's tables altogether is the due instant `None`.
    pub(super) fn deadline(
        &self,
        limit: Period,
        start: Time,
        extended: u32,
        suspended: u32,
    ) -> Deadline {
        let shift = extended + suspended;
        let cal = self.cal;
        let end_of = |d: chrono::NaiveDate| d.succ_opt().and_then(|n| n.and_hms_opt(0, 0, 0));
        let (due_date, due) = match limit.unit {
            Unit::Workdays => match cal.add_workdays(start.date(), limit.value + shift) {
                Ok(d) => (Some(d), end_of(d)),
                Err(_) => (None, None),
            },
            Unit::Days => match cal
                .add_days(start.date(), limit.value)
                .and_then(|d| cal.add_workdays(d, shift))
            {
                Ok(d) => (Some(d), end_of(d)),
                Err(_) => (None, None),
            },
            Unit::Hours => {
                let t = start + chrono::Duration::hours(i64::from(limit.value));
                match cal.add_workdays(t.date(), shift) {
                    Ok(d) => (Some(d), Some(d.and_time(t.time()))),
                    Err(_) => (None, None),
                }
            }
        };
        let provisional = match due_date {
            Some(d) => cal.provisional_between(start.date(), d),
            None => true,
        };
        Deadline {
            limit,
            start,
            extended,
            suspended,
            due_date,
            due,
            provisional,
        }
    }

    /// Every deadline of the case recomputed with the calendar now in force:
    /// provisional ones settle when their year's arrangement arrives, and a
    /// corrected arrangement (a new version of a year) moves the deadlines
    /// counted with the old one. One event records the old and new dates of
    /// those that changed.
    pub(super) fn recalendar(&mut self, calendar: &str) -> R<()> {
        let st = &self.st;
        let mut found: Vec<(String, Deadline)> = Vec::new();
        let mut add = |key: String, d: Option<&Deadline>| {
            if let Some(d) = d {
                found.push((key, d.clone()));
            }
        };
        add("case:statutory".into(), st.statutory.as_ref());
        add("case:promised".into(), st.promised.as_ref());
        add("case:issue".into(), st.issue.as_ref());
        for t in st.tasks.values() {
            add(format!("task:{}", t.id), t.deadline.as_ref());
        }
        for (step, j) in &st.joins {
            add(format!("stage:{step}"), j.deadline.as_ref());
        }
        for (step, j) in &st.joint {
            add(format!("stage:{step}"), j.deadline.as_ref());
            add(format!("resubmit:{step}"), j.resubmit_due.as_ref());
        }
        for (step, j) in &st.subflows {
            add(format!("stage:{step}"), j.deadline.as_ref());
        }
        for (step, w) in &st.waits {
            add(format!("wait_limit:{step}"), w.deadline.as_ref());
        }
        let changes: Vec<Recomputed> = found
            .into_iter()
            .filter_map(|(key, d)| {
                let now = self.moved(&d, 0, 0);
                (now != d).then_some(Recomputed {
                    key,
                    was: d.due_date,
                    was_provisional: d.provisional,
                    deadline: now,
                })
            })
            .collect();
        if changes.is_empty() {
            return Err(CommandError::NothingToRecompute);
        }
        let at = self.now;
        self.emit(Event::DeadlinesRecomputed {
            at,
            calendar: calendar.to_string(),
            changes,
        });
        Ok(())
    }

    pub(super) fn moved(&self, d: &Deadline, extended: u32, suspended: u32) -> Deadline {
        self.deadline(
            d.limit,
            d.start,
            d.extended + extended,
            d.suspended + suspended,
        )
    }

    pub(super) fn period(l: &govflow_dsl::ir::Limit) -> Period {
        Period {
            value: l.value,
            unit: l.unit,
        }
    }

    /// 收件: the office received a submission of an item with legal clocks;
    /// a correction notice is due within the item's window (five working
    /// days at most, 行政许可法第三十二条).
    pub(super) fn receive(&mut self, resubmission: bool) {
        let item = &self.flow.flow.item;
        // The rule is the licensing law's: items of other kinds (备案, 督办 …)
        // keep their own acceptance practice.
        if item.item_type.as_deref() != Some("行政许可")
            || (item.statutory.is_none() && item.promised.is_none())
        {
            return;
        }
        let limit = item
            .correction_within
            .unwrap_or(govflow_dsl::ir::Limit::CORRECTION_LAW);
        let at = self.now;
        let window = self.deadline(Self::period(&limit), at, 0, 0);
        self.emit(Event::Received {
            at,
            resubmission,
            window,
        });
    }

    /// The correction window passed with neither acceptance nor a notice: the
    /// application counts as accepted on the day it was received.
    pub(super) fn deem_accepted(&mut self) {
        let Some(received_at) = self.st.received_at else {
            return;
        };
        let f = &self.flow.flow;
        let statutory = f
            .item
            .statutory
            .as_ref()
            .map(|l| self.deadline(Self::period(l), received_at, 0, 0));
        let promised = f
            .item
            .promised
            .as_ref()
            .map(|l| self.deadline(Self::period(l), received_at, 0, 0));
        let due = self
            .st
            .receipt_window
            .as_ref()
            .and_then(|w| w.due_date)
            .map_or(String::new(), |d| d.to_string());
        let at = self.now;
        self.emit(Event::DeemedAccepted {
            at,
            received_at,
            reason: format!(
                "行政许可法第三十二条：收件后至 {due} 既未受理也未一次告知补正，自收到申请材料之日起即为受理 / no acceptance and no correction notice by {due}: accepted by law as of receipt (art. 32)"
            ),
            statutory,
            promised,
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn start_special(
        &mut self,
        step_id: &str,
        kind: &str,
        reason: &str,
        days: Option<u32>,
        by: &Actor,
        notice: &Option<String>,
    ) -> R<()> {
        if self.st.accepted_at.is_none() {
            return Err(CommandError::NotAccepted {
                case_no: self.st.case_no.clone(),
                status: self.st.status.as_str().into(),
            });
        }
        let active = self.active_steps();
        if !active.iter().any(|s| s == step_id) {
            return Err(CommandError::StepNotActive {
                step: step_id.to_string(),
                active: list(&active),
            });
        }
        self.check_actor_for_step(step_id, by)?;
        let step = self.step(step_id)?;
        if !step.special.iter().any(|k| k == kind) {
            return Err(CommandError::SpecialNotAllowed {
                kind: kind.to_string(),
                step: step_id.to_string(),
                allowed: list(&step.special),
            });
        }
        let class = if SPECIAL_EXTENSION.contains(&kind) {
            SpecialClass::A
        } else {
            SpecialClass::B
        };
        match class {
            SpecialClass::A => {
                // Art. 42: 20 + 10 working days; joint or centralised handling 45 + 15.
                let joint = self
                    .flow
                    .flow
                    .item
                    .statutory
                    .is_some_and(|l| l.unit == Unit::Workdays && l.value >= 45);
                let max = if joint { 15 } else { 10 };
                if let Some(done) = self.st.specials.iter().find(|s| {
                    s.class == SpecialClass::A && (s.counted_days > 0 || s.ended_at.is_none())
                }) {
                    return Err(CommandError::AlreadyExtended {
                        days: done.days.unwrap_or(done.counted_days),
                    });
                }
                if !days.is_some_and(|d| d > 0 && d <= max) {
                    return Err(CommandError::ExtensionDays { max });
                }
                self.check_within_statutory()?;
            }
            SpecialClass::B if !self.stops(kind).0 && !self.stops(kind).1 => {}
            SpecialClass::B => {
                if self.stops(kind).0 && notice.as_deref().is_none_or(|n| n.trim().is_empty()) {
                    return Err(CommandError::NoticeRequired {
                        kind: kind.to_string(),
                    });
                }
                if let Some((sid, since)) = self.st.suspended {
                    let kind = self
                        .st
                        .specials
                        .iter()
                        .find(|s| s.id == sid)
                        .map_or(String::new(), |s| s.kind.clone());
                    return Err(CommandError::AlreadySuspended {
                        kind,
                        since: since.format("%Y-%m-%dT%H:%M:%S+08:00").to_string(),
                    });
                }
            }
        }
        let at = self.now;
        // The declared length ends with its last working day.
        let due_date = days.and_then(|d| self.cal.add_workdays(at.date(), d).ok());
        let (stops_statutory, stops_promised) = match class {
            SpecialClass::A => (false, false),
            SpecialClass::B => self.stops(kind),
        };
        let basis = stops_statutory.then(|| {
            if ART45_PROCEDURES.contains(&kind) {
                "行政许可法第四十五条".to_string()
            } else {
                self.flow
                    .flow
                    .item
                    .stops_statutory_basis
                    .clone()
                    .unwrap_or_default()
            }
        });
        let special = Special {
            id: self.st.specials.len() as u32 + 1,
            step: step_id.to_string(),
            kind: kind.to_string(),
            class,
            reason: reason.to_string(),
            requested_by: by.clone(),
            started_at: at,
            days,
            due_date,
            due: due_date
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0)),
            ended_at: None,
            result: None,
            opinion: None,
            handled_by: None,
            counted_days: 0,
            stops_statutory,
            stops_promised,
            basis,
            notice: notice.clone().filter(|n| !n.trim().is_empty()),
            blocks: self.enclosing_blocks(step_id),
        };
        self.emit(Event::SpecialStarted { at, special });
        Ok(())
    }

    /// Which clocks a B procedure of `kind` stops: (statutory, promised).
    /// 行政许可法第四十五条 lists what is excluded from the statutory period; an
    /// item adds what a specific law excludes. The promised clock follows the
    /// item's `stops_promised`, or stops for every B procedure.
    pub(super) fn stops(&self, kind: &str) -> (bool, bool) {
        let item = &self.flow.flow.item;
        let statutory =
            ART45_PROCEDURES.contains(&kind) || item.stops_statutory.iter().any(|k| k == kind);
        let promised = item
            .stops_promised
            .as_ref()
            .is_none_or(|l| l.iter().any(|k| k == kind));
        (statutory, promised)
    }

    /// Art. 42: an extension is requested and approved within the statutory
    /// period. A clock that stands still (a B procedure running now) has not
    /// used the days since it stopped.
    pub(super) fn check_within_statutory(&self) -> R<()> {
        let Some(d) = &self.st.statutory else {
            return Ok(());
        };
        let held = self.st.held_statutory().map_or(0, |since| {
            self.cal
                .diff(since.date(), self.now.date())
                .map_or(0, |n| n.max(0) as u32)
        });
        let d = if held > 0 {
            self.moved(d, 0, held)
        } else {
            d.clone()
        };
        match d.due {
            Some(due) if self.now >= due => Err(CommandError::ExtensionAfterDeadline {
                due_date: d.due_date.map_or(String::new(), |x| x.to_string()),
            }),
            _ => Ok(()),
        }
    }

    pub(super) fn end_special(
        &mut self,
        step_id: &str,
        kind: &str,
        result: &str,
        opinion: &Option<String>,
        approved: Option<bool>,
        by: &Actor,
    ) -> R<()> {
        let Some(sp) = self
            .st
            .specials
            .iter()
            .find(|s| s.step == step_id && s.kind == kind && s.ended_at.is_none())
            .cloned()
        else {
            return Err(CommandError::NoSuchSpecial {
                kind: kind.to_string(),
                step: step_id.to_string(),
                running: list(
                    self.st
                        .specials
                        .iter()
                        .filter(|s| s.ended_at.is_none())
                        .map(|s| format!("{} at {}", s.kind, s.step)),
                ),
            });
        };
        self.check_actor_for_step(step_id, by)?;
        let at = self.now;
        let counted = match sp.class {
            SpecialClass::A => match approved {
                None => return Err(CommandError::ExtensionUndecided),
                Some(true) => {
                    self.check_within_statutory()?;
                    sp.days.unwrap_or(0)
                }
                Some(false) => 0,
            },
            // Working days it took; they move only the clocks it stopped.
            SpecialClass::B if sp.stops_statutory || sp.stops_promised => self
                .cal
                .diff(sp.started_at.date(), at.date())
                .map_or(0, |d| d.max(0) as u32),
            SpecialClass::B => 0,
        };
        self.emit(Event::SpecialEnded {
            at,
            id: sp.id,
            result: result.to_string(),
            opinion: opinion.clone(),
            by: by.clone(),
            counted_days: counted,
        });
        if counted > 0 {
            let (ext, susp) = match sp.class {
                SpecialClass::A => (counted, 0),
                SpecialClass::B => (0, counted),
            };
            // A B procedure moves the statutory clock only when it stopped it
            // (第四十五条, or the item's law); the promised clock, the step's and
            // the stages' when it paused the promised one.
            let (susp_stat, susp_prom) = if sp.class == SpecialClass::B {
                (
                    if sp.stops_statutory { susp } else { 0 },
                    if sp.stops_promised { susp } else { 0 },
                )
            } else {
                (0, 0)
            };
            let statutory = self
                .st
                .statutory
                .as_ref()
                .map(|d| self.moved(d, ext, susp_stat));
            let promised = self
                .st
                .promised
                .as_ref()
                .map(|d| self.moved(d, ext, susp_prom));
            let susp = susp_prom;
            let mut tasks = Vec::new();
            let mut stages = std::collections::BTreeMap::new();
            if sp.class == SpecialClass::A {
                // An extension granted at a block step moves the block's stage limit too.
                let d = self
                    .st
                    .joins
                    .get(step_id)
                    .and_then(|j| j.deadline.as_ref())
                    .or_else(|| self.st.joint.get(step_id).and_then(|j| j.deadline.as_ref()))
                    .or_else(|| {
                        self.st
                            .subflows
                            .get(step_id)
                            .and_then(|j| j.deadline.as_ref())
                    });
                if let Some(d) = d {
                    stages.insert(step_id.to_string(), self.moved(d, ext, 0));
                }
            }
            if sp.class == SpecialClass::B && susp > 0 {
                for t in self.st.tasks.values() {
                    if t.step == step_id
                        && let Some(d) = &t.deadline
                    {
                        tasks.push((t.id, self.moved(d, 0, susp)));
                    }
                }
                for b in &sp.blocks {
                    let d = self
                        .st
                        .joins
                        .get(b)
                        .and_then(|j| j.deadline.as_ref())
                        .or_else(|| self.st.joint.get(b).and_then(|j| j.deadline.as_ref()))
                        .or_else(|| self.st.subflows.get(b).and_then(|j| j.deadline.as_ref()));
                    if let Some(d) = d {
                        stages.insert(b.clone(), self.moved(d, 0, susp));
                    }
                }
            }
            let which = match (sp.stops_statutory, sp.stops_promised) {
                (true, true) => "clocks",
                (true, false) => "statutory clock",
                _ => "promised clock",
            };
            let unit = if counted == 1 { "day" } else { "days" };
            let reason = match sp.class {
                SpecialClass::A => format!("{} approved: +{counted} working days", sp.kind),
                SpecialClass::B => format!("{}: {which} stopped {counted} working {unit}", sp.kind),
            };
            self.emit(Event::DeadlinesMoved {
                at,
                reason,
                statutory,
                promised,
                tasks,
                stages,
            });
        }
        Ok(())
    }

    /// An item case's clock-stopping procedure started or ended: the stage's
    /// clock follows only for the procedures the stage declares
    /// (`pauses_for`, with its rule); when it resumes, the stage limit moves by
    /// the working days it stood still.
    pub(super) fn subcase_clock(
        &mut self,
        step: &str,
        case_no: &str,
        kind: &str,
        stopped: bool,
    ) -> R<()> {
        let Some(sf) = self.st.subflows.get(step).cloned() else {
            return Err(CommandError::NoStageEffect);
        };
        let StepKind::Subflow {
            pauses_for,
            pauses_for_basis,
            ..
        } = &self.step(step)?.kind
        else {
            return Err(CommandError::NoStageEffect);
        };
        if !pauses_for.iter().any(|k| k == kind) {
            return Err(CommandError::NoStageEffect);
        }
        let basis = pauses_for_basis.clone();
        let at = self.now;
        match (&sf.paused, stopped) {
            (None, true) => {
                self.emit(Event::StageClock {
                    at,
                    step: step.to_string(),
                    case_no: case_no.to_string(),
                    kind: kind.to_string(),
                    paused: true,
                    basis,
                });
                Ok(())
            }
            (Some((since, c, k)), false) if c == case_no && k == kind => {
                let days = self
                    .cal
                    .diff(since.date(), at.date())
                    .map_or(0, |d| d.max(0) as u32);
                self.emit(Event::StageClock {
                    at,
                    step: step.to_string(),
                    case_no: case_no.to_string(),
                    kind: kind.to_string(),
                    paused: false,
                    basis,
                });
                if days > 0
                    && let Some(d) = sf.deadline.as_ref()
                {
                    let mut stages = std::collections::BTreeMap::new();
                    stages.insert(step.to_string(), self.moved(d, 0, days));
                    let unit = if days == 1 { "day" } else { "days" };
                    self.emit(Event::DeadlinesMoved {
                        at,
                        reason: format!("{kind} in item case {case_no}: stage clock stopped {days} working {unit}"),
                        statutory: self.st.statutory.clone(),
                        promised: self.st.promised.clone(),
                        tasks: Vec::new(),
                        stages,
                    });
                }
                Ok(())
            }
            _ => Err(CommandError::NoStageEffect),
        }
    }
}

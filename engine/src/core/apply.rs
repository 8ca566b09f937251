//! `apply`: decide what a command does to a case. Pure: the flow, the
//! calendar, the state and the instant come in; events or an error go out.
//! The command works on a private copy of the state, so an error leaves
//! nothing half-applied.
//!
//! Why this file is long: it is the command handling of every step kind
//! (tasks and their actions, parallel joins, joint-review rounds, sub-cases,
//! waits) with the correction and one-notice rules, sharing one private `Cx`;
//! the law on clocks is in `clocks.rs`.

use super::compiled::{CompiledFlow, Parent, from_dynamic, to_dynamic};
use super::model::*;
use crate::calendar::Calendar;
use crate::core::ids::{IdKind, check_credit_code, check_id_card};
use govflow_dsl::ir::{ActionKind, CaseKind, Join, Step, StepKind, Target, Unit};

/// Why a command was refused. The message names what was expected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("the calendar in force changes none of the case's deadlines")]
    NothingToRecompute,
    #[error(
        "行政许可法第四十五条：{kind} 所需时间不计算在法定期限内，应当书面告知申请人；请在 notice 中写明告知书文号或日期 / art. 45: the time {kind} takes is excluded from the statutory period and the applicant must be told in writing; give the written notice in `notice`"
    )]
    NoticeRequired { kind: String },
    #[error("the stage does not follow this item procedure (its `pauses_for` does not name it)")]
    NoStageEffect,
    #[error(
        "行政许可法第四十二条：延长须在法定期限内决定，法定期限已于 {due_date} 届满，不能再延长 / art. 42 of the Administrative Licensing Law: an extension is decided within the statutory period, which ended on {due_date}; it can no longer be extended"
    )]
    ExtensionAfterDeadline { due_date: String },
    #[error("case {case_no} already exists")]
    AlreadyStarted { case_no: String },
    #[error("the case has not been started")]
    NotStarted,
    #[error("case {case_no} is {status}: no further commands are accepted")]
    Finished { case_no: String, status: String },
    #[error("the {who} is invalid: {message}")]
    InvalidPerson { who: &'static str, message: String },
    #[error("unknown material `{given}`; the flow's materials are: {known}")]
    UnknownMaterial { given: String, known: String },
    #[error("step `{step}` has no open task; open tasks: {open}")]
    NoOpenTask { step: String, open: String },
    #[error("step `{step}` is assigned to {expected}; {given} cannot complete it")]
    WrongAssignee {
        step: String,
        expected: String,
        given: String,
    },
    #[error(
        "step `{step}` goes to the department named by the case's data field `{field}` ({department}), and the case has no such field"
    )]
    NoAssignee {
        step: String,
        department: String,
        field: String,
    },
    #[error("step `{step}` has no action `{given}`; allowed: {allowed}")]
    UnknownAction {
        step: String,
        given: String,
        allowed: String,
    },
    #[error(
        "cannot accept: required material(s) {missing} not received; request a correction (补正) listing them, or defer only deferrable materials"
    )]
    MissingMaterials { missing: String },
    #[error("material `{material}` cannot be deferred: {why}")]
    NotDeferrable { material: String, why: String },
    #[error(
        "行政许可法第三十二条（一次性告知）：补正告知须一次列出事项全部缺少的必要材料，漏列 {left_out} / art. 32: the correction notice must list every missing material of the item in one notice (补齐补正); it leaves out: {left_out}"
    )]
    IncompleteNotice { left_out: String },
    #[error("nothing is missing: name the materials to correct in `missing`")]
    EmptyNotice,
    #[error(
        "行政许可法第三十二条：补正告知须写明每项需要补正的内容；{materials} 已收到，请在 fixes 中说明哪里不符合法定形式 / art. 32: the notice says what to correct; {materials} were received — say in `fixes` what is not in legal form"
    )]
    FixRequired { materials: String },
    #[error(
        "行政许可法第三十二条：补正告知在受理之前；办件 {case_no} 已受理（或因逾期未告知已视为受理），不能再要求补正 / a correction notice comes before acceptance (art. 32); case {case_no} is accepted — use a return or a special procedure"
    )]
    CorrectionAfterAcceptance { case_no: String },
    #[error(
        "行政许可法第三十二条：补正告知应在收件后 {due_date} 之前一次发出，已逾期；申请自收件之日起视为受理 / art. 32: the correction notice was due by {due_date}; the application counts as accepted as of receipt"
    )]
    CorrectionLate { due_date: String },
    #[error(
        "行政许可法第三十二条（一次性告知）：第二次补正告知只能针对重新提交后出现的问题，{outside} 不在其中 / art. 32 (one notice): a second notice may only name problems the resubmission introduced; {outside} are not among them (first notice: {first}; resubmitted: {resubmitted})"
    )]
    SecondNotice {
        outside: String,
        first: String,
        resubmitted: String,
    },
    #[error(
        "行政许可法第三十二条（一次性告知）：第二次补正告知须写明理由（opinion） / art. 32 (one notice): a second notice needs its reason in `opinion`"
    )]
    SecondNoticeReason,
    #[error(
        "环节 {step} 未声明特别程序 {kind}（已声明：{allowed}） / special procedure `{kind}` is not declared at step `{step}`; declared there: {allowed}"
    )]
    SpecialNotAllowed {
        kind: String,
        step: String,
        allowed: String,
    },
    #[error(
        "step `{step}` is not active; special procedures run at an active step (active: {active})"
    )]
    StepNotActive { step: String, active: String },
    #[error(
        "时钟已因 {kind} 停止（自 {since}），一次只能有一个停止时钟的特别程序，请先结束 / the clock is already stopped by `{kind}` since {since}; end it first"
    )]
    AlreadySuspended { kind: String, since: String },
    #[error(
        "step `{step}` is suspended by `{kind}`; end the special procedure before completing the task"
    )]
    StepSuspended { step: String, kind: String },
    #[error("special procedures start after acceptance; case {case_no} is {status}")]
    NotAccepted { case_no: String, status: String },
    #[error(
        "行政许可法第四十二条：延长期限为 1 至 {max} 个工作日（二十日延长十日；统一、联合、集中办理的四十五日延长十五日） / art. 42: an extension is 1 to {max} working days (10 on 20, 15 on 45 for joint handling); give it in `days`"
    )]
    ExtensionDays { max: u32 },
    #[error(
        "行政许可法第四十二条：本件已延长一次（{days} 个工作日），不能再次延长 / art. 42: the case was already extended once ({days} working days); the law allows one extension"
    )]
    AlreadyExtended { days: u32 },
    #[error(
        "延长审批须由负责人决定：approved 为 true 或 false / an extension ends with `approved: true` or `approved: false` (the head of the office decides, art. 42)"
    )]
    ExtensionUndecided,
    #[error("no `{kind}` is running at step `{step}`; running: {running}")]
    NoSuchSpecial {
        kind: String,
        step: String,
        running: String,
    },
    #[error("no step is waiting for event `{name}`; waiting: {waiting}")]
    NotWaiting { name: String, waiting: String },
    #[error("step `{step}` is not waiting for sub-case item `{item}`; waiting for: {waiting}")]
    NoSuchSubcase {
        step: String,
        item: String,
        waiting: String,
    },
    #[error("submit at least one material or data field")]
    EmptySubmission,
    #[error("step `{step}`: {message}")]
    Script { step: String, message: String },
    #[error("step `{step}`: decision has no branch for this case and no `else`")]
    NoBranch { step: String },
    #[error("the flow has no step `{0}`")]
    UnknownStep(String),
}

impl CommandError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::AlreadyStarted { .. } => "case.exists",
            CommandError::NotStarted => "case.not_started",
            CommandError::Finished { .. } => "case.finished",
            CommandError::InvalidPerson { .. } => "case.invalid_applicant",
            CommandError::UnknownMaterial { .. } => "material.unknown",
            CommandError::NoOpenTask { .. } => "task.not_open",
            CommandError::WrongAssignee { .. } => "task.wrong_department",
            CommandError::NoAssignee { .. } => "task.no_assignee",
            CommandError::UnknownAction { .. } => "task.unknown_action",
            CommandError::MissingMaterials { .. } => "material.missing",
            CommandError::NotDeferrable { .. } => "material.not_deferrable",
            CommandError::IncompleteNotice { .. } => "correction.incomplete",
            CommandError::EmptyNotice => "correction.empty",
            CommandError::FixRequired { .. } => "correction.fix_required",
            CommandError::CorrectionAfterAcceptance { .. } => "correction.after_acceptance",
            CommandError::CorrectionLate { .. } => "correction.late",
            CommandError::SecondNotice { .. } => "correction.second_notice",
            CommandError::SecondNoticeReason => "correction.second_notice_reason",
            CommandError::SpecialNotAllowed { .. } => "special.not_allowed",
            CommandError::StepNotActive { .. } => "step.not_active",
            CommandError::AlreadySuspended { .. } => "special.already_suspended",
            CommandError::StepSuspended { .. } => "step.suspended",
            CommandError::NotAccepted { .. } => "case.not_accepted",
            CommandError::ExtensionDays { .. } => "special.extension_days",
            CommandError::AlreadyExtended { .. } => "special.already_extended",
            CommandError::ExtensionUndecided => "special.extension_undecided",
            CommandError::NoSuchSpecial { .. } => "special.not_running",
            CommandError::NotWaiting { .. } => "wait.not_waiting",
            CommandError::NoSuchSubcase { .. } => "subflow.unknown_item",
            CommandError::EmptySubmission => "materials.empty",
            CommandError::Script { .. } => "script.error",
            CommandError::NoBranch { .. } => "decision.no_branch",
            CommandError::UnknownStep(_) => "flow.unknown_step",
            CommandError::NothingToRecompute => "calendar.nothing_to_recompute",
            CommandError::NoticeRequired { .. } => "special.notice_required",
            CommandError::NoStageEffect => "subflow.no_stage_effect",
            CommandError::ExtensionAfterDeadline { .. } => "special.after_deadline",
        }
    }
}

pub(super) type R<T> = Result<T, CommandError>;

/// The events `command` produces on `state` at `now`, or why it is refused.
/// `state` is `None` for a case that does not exist yet.
pub fn apply(
    flow: &CompiledFlow,
    calendar: &Calendar,
    state: Option<&CaseState>,
    command: &Command,
    now: Time,
) -> R<Vec<Event>> {
    let mut cx = Cx {
        flow,
        cal: calendar,
        st: state.cloned().unwrap_or_default(),
        ev: Vec::new(),
        now,
        on_site: None,
        fixes: Default::default(),
    };
    let started = state.is_some_and(|s| s.version > 0);
    match command {
        Command::Start { case_no, .. } if started => Err(CommandError::AlreadyStarted {
            case_no: case_no.clone(),
        }),
        Command::Start {
            case_no,
            applicant,
            agent,
            source,
            project_code,
            data,
            materials,
        } => {
            cx.start(
                case_no,
                applicant,
                agent,
                source,
                project_code,
                data,
                materials,
            )?;
            Ok(cx.ev)
        }
        _ if !started => Err(CommandError::NotStarted),
        // A timer of a finished case is stale, not an error.
        Command::Fire { .. } if cx.st.status.is_finished() => Ok(Vec::new()),
        _ if cx.st.status.is_finished() => Err(CommandError::Finished {
            case_no: cx.st.case_no.clone(),
            status: cx.st.status.as_str().into(),
        }),
        Command::SubmitMaterials {
            materials,
            data,
            on_site,
        } => {
            cx.submit(materials, data, *on_site)?;
            Ok(cx.ev)
        }
        Command::Complete {
            step,
            action,
            by,
            opinion,
            data,
            missing,
            defer,
            defer_within,
            document_no,
            on_site,
            fixes,
        } => {
            cx.on_site = *on_site;
            cx.fixes = fixes.clone();
            cx.complete(
                step,
                action,
                by,
                opinion,
                data,
                missing,
                defer,
                *defer_within,
                document_no,
            )?;
            Ok(cx.ev)
        }
        Command::StartSpecial {
            step,
            kind,
            reason,
            days,
            by,
            notice,
        } => {
            cx.start_special(step, kind, reason, *days, by, notice)?;
            Ok(cx.ev)
        }
        Command::EndSpecial {
            step,
            kind,
            result,
            opinion,
            approved,
            by,
        } => {
            cx.end_special(step, kind, result, opinion, *approved, by)?;
            Ok(cx.ev)
        }
        Command::Signal { name, data } => {
            cx.signal(name, data)?;
            Ok(cx.ev)
        }
        Command::SubcaseClock {
            step,
            case_no,
            kind,
            stopped,
            ..
        } => {
            cx.subcase_clock(step, case_no, kind, *stopped)?;
            Ok(cx.ev)
        }
        Command::SubcaseFinished {
            step,
            item,
            case_no,
            result,
        } => {
            cx.subcase(step, item, case_no, result)?;
            Ok(cx.ev)
        }
        Command::Terminate { reason, by } => {
            let known = &flow.flow.departments;
            if !by
                .department
                .as_ref()
                .is_some_and(|d| known.iter().any(|k| &k.id == d))
            {
                return Err(CommandError::WrongAssignee {
                    step: "(case)".into(),
                    expected: format!(
                        "staff of {}",
                        known
                            .iter()
                            .map(|d| d.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    given: format!(
                        "{} of {}",
                        by.name,
                        by.department.as_deref().unwrap_or("no department")
                    ),
                });
            }
            cx.finish_abnormally(reason, by.clone());
            Ok(cx.ev)
        }
        Command::Withdraw { reason } => {
            cx.cancel_all("withdrawn");
            let at = cx.now;
            cx.emit(Event::Withdrawn {
                at,
                reason: reason.clone(),
            });
            Ok(cx.ev)
        }
        Command::Fire { timer } => {
            cx.fire(timer)?;
            Ok(cx.ev)
        }
        Command::Recalendar { calendar } => {
            cx.recalendar(calendar)?;
            Ok(cx.ev)
        }
    }
}

pub(super) struct Cx<'a> {
    pub(super) flow: &'a CompiledFlow,
    pub(super) cal: &'a Calendar,
    pub(super) st: CaseState,
    pub(super) ev: Vec<Event>,
    pub(super) now: Time,
    /// A completion's word on whether the applicant was there.
    pub(super) on_site: Option<bool>,
    /// A correction notice's word on what to fix, by material.
    pub(super) fixes: std::collections::BTreeMap<String, String>,
}

pub(super) fn list<I: IntoIterator<Item = S>, S: AsRef<str>>(items: I) -> String {
    let v: Vec<String> = items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

impl Cx<'_> {
    pub(super) fn emit(&mut self, e: Event) {
        self.st.apply(&e);
        self.ev.push(e);
    }

    pub(super) fn step(&self, id: &str) -> R<&Step> {
        self.flow
            .step(id)
            .ok_or_else(|| CommandError::UnknownStep(id.to_string()))
    }

    fn check_person(&self, who: &'static str, p: &Person) -> R<()> {
        let r = match p.id_kind {
            IdKind::IdCard => check_id_card(&p.id_number, self.now.date()).map(|_| ()),
            IdKind::CreditCode => check_credit_code(&p.id_number, p.legacy),
        };
        r.map_err(|e| CommandError::InvalidPerson {
            who,
            message: e.to_string(),
        })?;
        if p.name.trim().is_empty() {
            return Err(CommandError::InvalidPerson {
                who,
                message: "the name is empty".into(),
            });
        }
        Ok(())
    }

    fn check_materials(&self, materials: &[MaterialIn]) -> R<()> {
        for m in materials {
            if !self.flow.flow.materials.iter().any(|x| x.id == m.id) {
                return Err(CommandError::UnknownMaterial {
                    given: m.id.clone(),
                    known: list(self.flow.flow.materials.iter().map(|x| &x.id)),
                });
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        case_no: &str,
        applicant: &Person,
        agent: &Option<Person>,
        source: &Option<String>,
        project_code: &Option<String>,
        data: &Data,
        materials: &[MaterialIn],
    ) -> R<()> {
        self.check_person("applicant", applicant)?;
        if let Some(a) = agent {
            self.check_person("agent", a)?;
        }
        self.check_materials(materials)?;
        let f = &self.flow.flow;
        let at = self.now;
        self.emit(Event::CaseStarted {
            at,
            case_no: case_no.to_string(),
            flow_id: f.id.clone(),
            flow_version: self.flow.revision(),
            item_name: f.name.clone(),
            item_code: f
                .item
                .impl_code
                .clone()
                .or_else(|| f.item.basic_code.clone()),
            case_kind: Some(
                match f.item.kind {
                    CaseKind::Immediate => "即办件",
                    CaseKind::Promised => "承诺件",
                }
                .to_string(),
            ),
            applicant: applicant.clone(),
            agent: agent.clone(),
            source: source.clone(),
            project_code: project_code.clone(),
            data: data.clone(),
        });
        if !materials.is_empty() {
            self.emit(Event::MaterialsReceived {
                at,
                materials: materials.to_vec(),
            });
        }
        if self.flow.acceptance_step().is_none() {
            self.accept(Actor::system(), None, &[], None)?;
        } else {
            self.receive(false);
        }
        let first = f.steps.first().map(|s| s.id.clone());
        match first {
            Some(id) => self.enter(&id),
            None => Ok(()),
        }
    }

    fn submit(&mut self, materials: &[MaterialIn], data: &Data, on_site: bool) -> R<()> {
        if materials.is_empty() && data.is_empty() {
            return Err(CommandError::EmptySubmission);
        }
        self.check_materials(materials)?;
        let at = self.now;
        if !materials.is_empty() {
            self.emit(Event::MaterialsReceived {
                at,
                materials: materials.to_vec(),
            });
        }
        if !data.is_empty() {
            self.emit(Event::DataSet {
                at,
                step: "applicant".into(),
                values: data.clone(),
            });
        }
        let correcting = self.st.status == Status::Correcting;
        // A trip to the window: the office's doing when the item's corrections
        // need the applicant on site, the applicant's own choice otherwise
        // (corrections are received online, 网上补正).
        let on_site_correction = correcting && self.flow.flow.item.correction_on_site;
        if on_site_correction || on_site {
            let step = self
                .st
                .correction
                .as_ref()
                .filter(|_| correcting)
                .map_or("applicant".to_string(), |(reopen, _)| reopen.clone());
            self.emit(Event::VisitRecorded {
                at,
                step,
                cause: Some(
                    if on_site_correction {
                        "correction"
                    } else {
                        "applicant"
                    }
                    .into(),
                ),
            });
        }
        if correcting && let Some((reopen, _)) = self.st.correction.clone() {
            self.receive(true);
            return self.enter(&reopen);
        }
        type Waiting = (String, u32, Option<Time>, (bool, bool));
        let waiting: Vec<Waiting> = self
            .st
            .joint
            .iter()
            .filter(|(_, j)| j.awaiting_resubmission)
            .map(|(s, j)| {
                (
                    s.clone(),
                    j.round,
                    j.rectifying_since,
                    (j.rectify_stops_statutory, j.rectify_stops_promised),
                )
            })
            .collect();
        for (step, round, since, (stat, prom)) in waiting {
            // The applicant's time is not the authority's: the case clocks and
            // the stage limit move by the working days the rectification took.
            let days = since
                .and_then(|t| self.cal.diff(t.date(), at.date()).ok())
                .map_or(0, |d| d.max(0) as u32);
            if days > 0 && (stat || prom) {
                // Only the clocks the rectification stops move (the item's
                // declaration, as for a B procedure).
                let (ds, dp) = (if stat { days } else { 0 }, if prom { days } else { 0 });
                let statutory = self.st.statutory.as_ref().map(|d| self.moved(d, 0, ds));
                let promised = self.st.promised.as_ref().map(|d| self.moved(d, 0, dp));
                let mut stages = std::collections::BTreeMap::new();
                if prom && let Some(d) = self.st.joint.get(&step).and_then(|j| j.deadline.as_ref())
                {
                    stages.insert(step.clone(), self.moved(d, 0, days));
                }
                let unit = if days == 1 { "day" } else { "days" };
                self.emit(Event::DeadlinesMoved {
                    at,
                    reason: format!(
                        "申请人整改 (rectification): {days} working {unit} not counted"
                    ),
                    statutory,
                    promised,
                    tasks: Vec::new(),
                    stages,
                });
            }
            self.start_round(&step, round + 1)?;
        }
        Ok(())
    }

    /// Starts the legal clocks.
    fn accept(
        &mut self,
        by: Actor,
        notice_no: Option<String>,
        defer: &[String],
        defer_within: Option<Period>,
    ) -> R<()> {
        let f = &self.flow.flow;
        let at = self.now;
        let statutory = f
            .item
            .statutory
            .as_ref()
            .map(|l| self.deadline(Self::period(l), at, 0, 0));
        let promised = match (&f.item.promised, f.item.kind) {
            (Some(l), _) => Some(self.deadline(Self::period(l), at, 0, 0)),
            // 即办件: done the day it is accepted.
            (None, CaseKind::Immediate) => Some(self.deadline(
                Period {
                    value: 0,
                    unit: Unit::Workdays,
                },
                at,
                0,
                0,
            )),
            (None, CaseKind::Promised) => None,
        };
        let deferred = if defer.is_empty() {
            None
        } else {
            let within = defer_within
                .or_else(|| f.item.promised.as_ref().map(Self::period))
                .or_else(|| f.item.statutory.as_ref().map(Self::period));
            let d = within.map(|p| self.deadline(p, at, 0, 0));
            if let (Some(d), Some(p)) = (&d, &promised)
                && let (Some(dd), Some(pd)) = (d.due, p.due)
                && dd > pd
            {
                return Err(CommandError::NotDeferrable {
                    material: defer.join(", "),
                    why: format!(
                        "they would be due {}, after the promised deadline {}; 容缺 materials are due within the promised limit",
                        d.due_date.map_or(String::new(), |x| x.to_string()),
                        p.due_date.map_or(String::new(), |x| x.to_string())
                    ),
                });
            }
            Some(Deferred {
                materials: defer.to_vec(),
                due: d.as_ref().and_then(|d| d.due),
                due_date: d.and_then(|d| d.due_date),
            })
        };
        self.emit(Event::Accepted {
            at,
            by,
            notice_no,
            statutory,
            promised,
            deferred,
        });
        Ok(())
    }

    fn open_task(&mut self, step: &Step, phase: Option<&str>) -> R<()> {
        let (by, within) = match (&step.kind, phase) {
            (StepKind::JointReview { consolidate, .. }, Some(_)) => {
                (consolidate.by.clone(), consolidate.within)
            }
            (StepKind::Task { by, .. }, _) => (by.clone(), step.within),
            _ => return Err(CommandError::UnknownStep(step.id.clone())),
        };
        let at = self.now;
        let deadline = within.map(|l| self.deadline(Self::period(&l), at, 0, 0));
        let name = match phase {
            Some(_) => format!("{}（汇总意见）", step.name),
            None => step.name.clone(),
        };
        let department = self.assignee_department(&step.id, &by.department)?;
        let task = Task {
            id: self.st.next_task.max(1),
            step: step.id.clone(),
            name,
            phase: phase.map(str::to_string),
            department,
            role: by.role.clone(),
            opened_at: at,
            deadline,
            risk_point: step.risk_point,
        };
        self.emit(Event::TaskOpened { at, task });
        Ok(())
    }

    /// The department a task of `dept` goes to: the declared one, or for a
    /// department chosen per case (`from FIELD`) the one the case data names.
    fn assignee_department(&self, step: &str, dept: &str) -> R<String> {
        let Some(field) = self
            .flow
            .flow
            .departments
            .iter()
            .find(|d| d.id == dept)
            .and_then(|d| d.from.as_ref())
        else {
            return Ok(dept.to_string());
        };
        match self.st.data.get(field).and_then(|v| v.as_str()) {
            Some(d) if !d.trim().is_empty() => Ok(d.trim().to_string()),
            _ => Err(CommandError::NoAssignee {
                step: step.to_string(),
                department: dept.to_string(),
                field: field.clone(),
            }),
        }
    }

    /// Makes `id` the active step.
    fn enter(&mut self, id: &str) -> R<()> {
        let step = self.step(id)?.clone();
        let at = self.now;
        match &step.kind {
            StepKind::Task { .. } => self.open_task(&step, None),
            StepKind::Auto { set } => {
                let mut values = Data::new();
                for (i, a) in set.iter().enumerate() {
                    let v = self.eval(&step.id, i, &values)?;
                    values.insert(a.field.clone(), from_dynamic(&v));
                }
                self.emit(Event::DataSet {
                    at,
                    step: step.id.clone(),
                    values,
                });
                // An automatic step marked `starts_clock` accepts the case itself.
                if self.flow.acceptance_step() == Some(step.id.as_str())
                    && self.st.accepted_at.is_none()
                {
                    self.accept(Actor::system(), None, &[], None)?;
                }
                self.follow(&step.id, step.next.as_ref().map(|t| &t.target), None, None)
            }
            StepKind::Decision { branches, default } => {
                let mut chosen = None;
                for (i, b) in branches.iter().enumerate() {
                    let v = self.eval(&step.id, i, &Data::new())?;
                    let truth = v.as_bool().map_err(|t| CommandError::Script {
                        step: step.id.clone(),
                        message: format!(
                            "condition `{}` gave a {t}, not true or false",
                            b.condition.source
                        ),
                    })?;
                    if truth {
                        chosen = Some(b.target.target.clone());
                        break;
                    }
                }
                let target = chosen
                    .or_else(|| default.as_ref().map(|t| t.target.clone()))
                    .ok_or_else(|| CommandError::NoBranch {
                        step: step.id.clone(),
                    })?;
                self.emit(Event::DecisionMade {
                    at,
                    step: step.id.clone(),
                    target: target_name(&target),
                });
                self.follow(&step.id, Some(&target), None, None)
            }
            StepKind::Parallel { lead, join, lanes } => {
                let needed = match *join {
                    Join::All => lanes.len() as u32,
                    Join::Any => 1,
                    Join::NOfM { n, .. } => n,
                };
                let deadline = step
                    .within
                    .map(|l| self.deadline(Self::period(&l), at, 0, 0));
                self.emit(Event::ParallelStarted {
                    at,
                    step: step.id.clone(),
                    lanes: lanes.iter().map(|l| l.id.clone()).collect(),
                    needed,
                    lead: lead.clone(),
                    deadline,
                });
                for lane in lanes {
                    // A lane may finish at once (auto steps) and satisfy the join.
                    if !self.st.joins.contains_key(&step.id) {
                        break;
                    }
                    match lane.steps.first() {
                        Some(first) => self.enter(&first.id)?,
                        None => self.lane_done(&step.id, &lane.id)?,
                    }
                }
                Ok(())
            }
            StepKind::JointReview { .. } => self.start_round(&step.id, 1),
            StepKind::Subflow { items, join, .. } => {
                let needed = match *join {
                    Join::All => items.len() as u32,
                    Join::Any => 1,
                    Join::NOfM { n, .. } => n,
                };
                let deadline = step
                    .within
                    .map(|l| self.deadline(Self::period(&l), at, 0, 0));
                self.emit(Event::SubcasesRequested {
                    at,
                    step: step.id.clone(),
                    items: items.clone(),
                    needed,
                    deadline,
                });
                Ok(())
            }
            StepKind::Wait { timer, event } => {
                let until = timer.map(|l| self.deadline(Self::period(&l), at, 0, 0));
                let deadline = step
                    .within
                    .map(|l| self.deadline(Self::period(&l), at, 0, 0));
                // A wait timer counts like a deadline: it ends after the last day.
                let until = until.and_then(|d| d.due);
                self.emit(Event::WaitStarted {
                    at,
                    step: step.id.clone(),
                    state: WaitState {
                        until,
                        event: event.clone(),
                        deadline,
                    },
                });
                Ok(())
            }
        }
    }

    fn start_round(&mut self, joint: &str, round: u32) -> R<()> {
        let step = self.step(joint)?.clone();
        let StepKind::JointReview { reviews, .. } = &step.kind else {
            return Err(CommandError::UnknownStep(joint.to_string()));
        };
        let at = self.now;
        let deadline = match self.st.joint.get(joint) {
            Some(j) => j.deadline.clone(),
            None => step
                .within
                .map(|l| self.deadline(Self::period(&l), at, 0, 0)),
        };
        self.emit(Event::JointRoundStarted {
            at,
            step: joint.to_string(),
            round,
            reviews: reviews.iter().map(|r| r.id.clone()).collect(),
            deadline,
        });
        for r in reviews {
            if self
                .st
                .joint
                .get(joint)
                .is_none_or(|j| j.pending.is_empty())
            {
                break;
            }
            self.enter(&r.id)?;
        }
        Ok(())
    }

    fn eval(&self, step: &str, i: usize, extra: &Data) -> R<rhai::Dynamic> {
        let mut data = self.st.data.clone();
        for (k, v) in extra {
            data.insert(k.clone(), v.clone());
        }
        let mut scope = rhai::Scope::new();
        scope.push_constant("data", to_dynamic(&serde_json::Value::Object(data)));
        let mats: rhai::Array = self
            .st
            .materials
            .keys()
            .map(|k| rhai::Dynamic::from(k.clone()))
            .collect();
        scope.push_constant("materials", mats);
        scope.push_constant("visits", i64::from(self.st.visits));
        self.flow
            .eval(&format!("{step}#{i}"), &mut scope)
            .map_err(|message| CommandError::Script {
                step: step.to_string(),
                message,
            })
    }

    /// Follows a transition out of `from`.
    fn follow(
        &mut self,
        from: &str,
        target: Option<&Target>,
        by: Option<&Actor>,
        document_no: Option<&String>,
    ) -> R<()> {
        match target {
            Some(Target::Step(id)) => self.enter(id),
            Some(Target::End(end)) => self.complete_case(end, by, document_no),
            Some(Target::Join) => match self.flow.parent(from).cloned() {
                Some(Parent::Lane { parallel, lane }) => self.lane_done(&parallel, &lane),
                Some(Parent::Review { joint }) => self.review_done(&joint, from),
                _ => Ok(()),
            },
            // No target: the flow ends here without an outcome (validation
            // forbids it; be safe).
            None => Ok(()),
        }
    }

    fn lane_done(&mut self, parallel: &str, lane: &str) -> R<()> {
        let at = self.now;
        self.emit(Event::LaneFinished {
            at,
            step: parallel.to_string(),
            lane: lane.to_string(),
        });
        let satisfied = self
            .st
            .joins
            .get(parallel)
            .is_some_and(|j| j.done.len() as u32 >= j.needed);
        if satisfied {
            self.join(parallel)?;
        }
        Ok(())
    }

    fn review_done(&mut self, joint: &str, review: &str) -> R<()> {
        if !self.st.joint.contains_key(joint) {
            return Ok(());
        }
        let at = self.now;
        self.emit(Event::ReviewFinished {
            at,
            step: joint.to_string(),
            review: review.to_string(),
        });
        if self
            .st
            .joint
            .get(joint)
            .is_some_and(|j| j.pending.is_empty())
        {
            let step = self.step(joint)?.clone();
            self.open_task(&step, Some("consolidate"))?;
        }
        Ok(())
    }

    /// Completes a block step: drops what is still open inside it, then
    /// follows the step's `next`.
    fn join(&mut self, block: &str) -> R<()> {
        let at = self.now;
        let inner: Vec<u32> = self
            .st
            .tasks
            .values()
            .filter(|t| self.flow.is_within(&t.step, block))
            .map(|t| t.id)
            .collect();
        for task in inner {
            self.emit(Event::TaskCancelled {
                at,
                task,
                reason: format!("`{block}` joined"),
            });
        }
        let mut dropped: Vec<String> = Vec::new();
        for s in self
            .st
            .joins
            .keys()
            .chain(self.st.joint.keys())
            .chain(self.st.subflows.keys())
            .chain(self.st.waits.keys())
        {
            if self.flow.is_within(s, block) {
                dropped.push(s.clone());
            }
        }
        dropped.sort();
        dropped.dedup();
        self.emit(Event::Joined {
            at,
            step: block.to_string(),
            dropped,
        });
        let next = self.step(block)?.next.as_ref().map(|t| t.target.clone());
        self.follow(block, next.as_ref(), None, None)
    }

    fn cancel_all(&mut self, reason: &str) {
        let at = self.now;
        let running: Vec<u32> = self
            .st
            .specials
            .iter()
            .filter(|s| s.ended_at.is_none())
            .map(|s| s.id)
            .collect();
        for id in running {
            self.emit(Event::SpecialEnded {
                at,
                id,
                result: format!("未完成：{reason}"),
                opinion: None,
                by: Actor::system(),
                counted_days: 0,
            });
        }
        let ids: Vec<u32> = self.st.tasks.keys().copied().collect();
        for task in ids {
            self.emit(Event::TaskCancelled {
                at,
                task,
                reason: reason.to_string(),
            });
        }
    }

    fn complete_case(
        &mut self,
        end: &str,
        by: Option<&Actor>,
        document_no: Option<&String>,
    ) -> R<()> {
        self.cancel_all("case completed");
        let at = self.now;
        let (name, result) = match self.flow.flow.ends.get(end) {
            Some(e) => (e.id.clone(), e.result.clone()),
            None => (end.to_string(), end.to_string()),
        };
        let document_no = document_no.cloned().or_else(|| {
            self.st
                .data
                .get("document_no")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        });
        self.emit(Event::Completed {
            at,
            end: name,
            result,
            document_no,
            by: by.cloned(),
        });
        Ok(())
    }

    fn finish_abnormally(&mut self, reason: &str, by: Actor) {
        self.cancel_all("case terminated");
        let at = self.now;
        self.emit(Event::Terminated {
            at,
            reason: reason.to_string(),
            by,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn complete(
        &mut self,
        step_id: &str,
        action: &str,
        by: &Actor,
        opinion: &Option<String>,
        data: &Data,
        missing: &[String],
        defer: &[String],
        defer_within: Option<Period>,
        document_no: &Option<String>,
    ) -> R<()> {
        let Some(task) = self.st.open_task_for_step(step_id).cloned() else {
            return Err(CommandError::NoOpenTask {
                step: step_id.to_string(),
                open: list(self.st.tasks.values().map(|t| &t.step)),
            });
        };
        let expected = match &task.role {
            Some(r) => format!("{}.{r}", task.department),
            None => task.department.clone(),
        };
        let given = match (&by.department, &by.role) {
            (Some(d), Some(r)) => format!("{} of {d}.{r}", by.name),
            (Some(d), None) => format!("{} of {d}", by.name),
            (None, _) => format!("{} (no department)", by.name),
        };
        let dept_ok = by.department.as_deref() == Some(task.department.as_str());
        let role_ok = match &task.role {
            Some(want) => by.role.as_deref() == Some(want.as_str()),
            None => true,
        };
        if !dept_ok || !role_ok {
            return Err(CommandError::WrongAssignee {
                step: step_id.to_string(),
                expected,
                given,
            });
        }
        if let Some((sid, _)) = self.st.suspended
            && let Some(sp) = self.st.specials.iter().find(|s| s.id == sid)
            && sp.step == step_id
        {
            return Err(CommandError::StepSuspended {
                step: step_id.to_string(),
                kind: sp.kind.clone(),
            });
        }
        let step = self.step(step_id)?.clone();
        let at = self.now;

        // The consolidation task of a joint review: pass, or one rectification opinion.
        if task.phase.as_deref() == Some("consolidate") {
            let StepKind::JointReview {
                resubmit_within, ..
            } = &step.kind
            else {
                return Err(CommandError::UnknownStep(step_id.to_string()));
            };
            let kind = match action {
                "pass" | "通过" => "pass",
                "rectify" | "整改" | "correct" | "补正" => "rectify",
                other => {
                    return Err(CommandError::UnknownAction {
                        step: step_id.to_string(),
                        given: other.to_string(),
                        allowed: "`pass`, `rectify`".into(),
                    });
                }
            };
            self.record_data(step_id, data);
            self.emit(Event::TaskCompleted {
                at,
                task: task.id,
                step: step_id.to_string(),
                action: kind.into(),
                by: by.clone(),
                opinion: opinion.clone(),
                next: None,
            });
            if kind == "pass" {
                return self.join(step_id);
            }
            let round = self.st.joint.get(step_id).map_or(1, |j| j.round);
            let resubmit_due = resubmit_within.map(|l| self.deadline(Self::period(&l), at, 0, 0));
            let (stops_statutory, stops_promised) = self.rectification_stops();
            self.emit(Event::RectificationIssued {
                at,
                step: step_id.to_string(),
                round,
                opinion: opinion.clone(),
                resubmit_due,
                stops_statutory,
                stops_promised,
            });
            return Ok(());
        }

        // A review of a joint review reports its finding: pass, or problems
        // to rectify; the consolidation turns the findings into one opinion.
        if matches!(self.flow.parent(step_id), Some(Parent::Review { .. }))
            && matches!(action, "rectify" | "整改" | "不通过" | "fail")
        {
            self.record_data(step_id, data);
            self.emit(Event::TaskCompleted {
                at,
                task: task.id,
                step: step_id.to_string(),
                action: "rectify".into(),
                by: by.clone(),
                opinion: opinion.clone(),
                next: Some("汇总意见".into()),
            });
            return self.follow(step_id, Some(&Target::Join), Some(by), None);
        }
        let StepKind::Task { actions, .. } = &step.kind else {
            return Err(CommandError::UnknownStep(step_id.to_string()));
        };
        let kind = ActionKind::parse(action);
        let declared = actions.iter().find(|a| a.kind == kind);
        let target = match (declared, &kind) {
            (Some(a), _) => Some(a.target.target.clone()),
            (None, ActionKind::Pass) => step.next.as_ref().map(|t| t.target.clone()),
            (None, _) => {
                let mut allowed = vec!["pass".to_string()];
                allowed.extend(actions.iter().map(|a| a.kind.as_str().to_string()));
                allowed.dedup();
                return Err(CommandError::UnknownAction {
                    step: step_id.to_string(),
                    given: action.to_string(),
                    allowed: list(&allowed),
                });
            }
        };

        if kind == ActionKind::Correct {
            if self.st.accepted_at.is_some() {
                return Err(CommandError::CorrectionAfterAcceptance {
                    case_no: self.st.case_no.clone(),
                });
            }
            if let Some(w) = &self.st.receipt_window
                && w.due.is_some_and(|due| self.now >= due)
            {
                return Err(CommandError::CorrectionLate {
                    due_date: w.due_date.map_or(String::new(), |d| d.to_string()),
                });
            }
            // One notice lists everything to correct: every required material of
            // the item that is missing, not only the current step's (art. 32).
            let expected = self.missing_required(None, &[]);
            for m in missing {
                if !self.flow.flow.materials.iter().any(|x| &x.id == m) {
                    return Err(CommandError::UnknownMaterial {
                        given: m.clone(),
                        known: list(self.flow.flow.materials.iter().map(|x| &x.id)),
                    });
                }
            }
            let left_out: Vec<&String> = expected.iter().filter(|m| !missing.contains(m)).collect();
            if !missing.is_empty() && !left_out.is_empty() {
                return Err(CommandError::IncompleteNotice {
                    left_out: list(left_out),
                });
            }
            let notice = if missing.is_empty() {
                expected
            } else {
                missing.to_vec()
            };
            if notice.is_empty() {
                return Err(CommandError::EmptyNotice);
            }
            let fixes = self.fixes.clone();
            if let Some(last) = self.st.last_notice_at {
                // A second notice: only what the first one named, or what the
                // resubmission brought (a problem it introduced), with a reason.
                let resubmitted: Vec<&String> = self
                    .st
                    .materials
                    .iter()
                    .filter(|(_, m)| m.at > last)
                    .map(|(id, _)| id)
                    .collect();
                let outside: Vec<&String> = notice
                    .iter()
                    .filter(|m| !self.st.notified.contains(*m) && !resubmitted.contains(m))
                    .collect();
                if !outside.is_empty() {
                    return Err(CommandError::SecondNotice {
                        outside: list(outside),
                        first: list(&self.st.notified),
                        resubmitted: list(resubmitted),
                    });
                }
                if opinion.as_deref().is_none_or(|o| o.trim().is_empty()) {
                    return Err(CommandError::SecondNoticeReason);
                }
            }
            // Each item says what to fix: a received material named in the
            // notice is not in legal form, and the notice must say how.
            if let Some(extra) = self.fixes.keys().find(|k| !notice.contains(k)) {
                return Err(CommandError::UnknownMaterial {
                    given: extra.clone(),
                    known: list(&notice),
                });
            }
            let unexplained: Vec<&String> = notice
                .iter()
                .filter(|m| self.st.materials.contains_key(*m))
                .filter(|m| self.fixes.get(*m).is_none_or(|f| f.trim().is_empty()))
                .collect();
            if !unexplained.is_empty() {
                return Err(CommandError::FixRequired {
                    materials: list(unexplained),
                });
            }
            let reopen = match &target {
                Some(Target::Step(s)) => s.clone(),
                _ => step_id.to_string(),
            };
            self.record_data(step_id, data);
            self.emit(Event::TaskCompleted {
                at,
                task: task.id,
                step: step_id.to_string(),
                action: kind.as_str().to_string(),
                by: by.clone(),
                opinion: opinion.clone(),
                next: Some("补齐补正".into()),
            });
            self.visit(&step);
            self.emit(Event::CorrectionRequested {
                at,
                step: step_id.to_string(),
                reopen,
                missing: notice,
                fixes,
            });
            return Ok(());
        }

        let accepting = self.flow.acceptance_step() == Some(step_id)
            && kind == ActionKind::Pass
            && self.st.accepted_at.is_none();
        if accepting {
            for m in defer {
                match self.flow.flow.materials.iter().find(|x| &x.id == m) {
                    None => {
                        return Err(CommandError::UnknownMaterial {
                            given: m.clone(),
                            known: list(self.flow.flow.materials.iter().map(|x| &x.id)),
                        });
                    }
                    Some(x) if !x.deferrable => {
                        return Err(CommandError::NotDeferrable {
                            material: m.clone(),
                            why: "the flow does not mark it `deferrable` (容缺)".into(),
                        });
                    }
                    Some(_) if self.st.materials.contains_key(m) => {
                        return Err(CommandError::NotDeferrable {
                            material: m.clone(),
                            why: "it was already received".into(),
                        });
                    }
                    Some(_) => {}
                }
            }
            let missing = self.missing_required(None, defer);
            if !missing.is_empty() {
                return Err(CommandError::MissingMaterials {
                    missing: list(missing),
                });
            }
        }

        self.record_data(step_id, data);
        if let Some(no) = document_no
            && !accepting
            && matches!(target, Some(Target::Step(_)))
        {
            // Kept for the completion record even when automatic steps follow.
            let mut d = Data::new();
            d.insert("document_no".into(), serde_json::Value::String(no.clone()));
            self.record_data(step_id, &d);
        }
        self.emit(Event::TaskCompleted {
            at,
            task: task.id,
            step: step_id.to_string(),
            action: kind.as_str().to_string(),
            by: by.clone(),
            opinion: opinion.clone(),
            next: target.as_ref().map(|t| self.target_label(t)),
        });
        self.visit(&step);
        if accepting {
            self.accept(by.clone(), document_no.clone(), defer, defer_within)?;
        }
        if step.decides && kind != ActionKind::Return && self.st.decided_at.is_none() {
            // 行政许可法第四十四条: a licence is issued and served within 10
            // working days of the decision to grant it; a decision that ends the
            // case (不予许可) has nothing left to issue.
            let issue = matches!(target, Some(Target::Step(_))).then(|| self.issue_clock(at));
            self.emit(Event::Decided {
                at,
                step: step_id.to_string(),
                action: kind.as_str().to_string(),
                issue,
            });
        }
        self.follow(step_id, target.as_ref(), Some(by), document_no.as_ref())
    }

    fn target_label(&self, t: &Target) -> String {
        match t {
            Target::Step(s) => self.flow.step(s).map_or(s.clone(), |x| x.name.clone()),
            Target::End(e) => self
                .flow
                .flow
                .ends
                .get(e)
                .map_or(e.clone(), |x| x.name.clone()),
            Target::Join => "汇合".into(),
        }
    }

    /// An on-site visit, counted once per visit step: a correction or a
    /// return that reopens the step does not bring the applicant again.
    /// A step completed with the applicant there: by default the first time
    /// a `visit` step completes (the flow's trip). Any other trip is recorded
    /// when the completion says so (`on_site: true`), as the office's doing —
    /// a return to the window that needs the originals again, say.
    fn visit(&mut self, step: &Step) {
        let first = step.visit && !self.st.visited.contains(&step.id);
        if !self.on_site.unwrap_or(first) {
            return;
        }
        let cause = Some(if first { "flow" } else { "office" }.to_string());
        if let Some(cause) = cause {
            let at = self.now;
            self.emit(Event::VisitRecorded {
                at,
                step: step.id.clone(),
                cause: Some(cause),
            });
        }
    }

    fn record_data(&mut self, step: &str, data: &Data) {
        if !data.is_empty() {
            let at = self.now;
            self.emit(Event::DataSet {
                at,
                step: step.to_string(),
                values: data.clone(),
            });
        }
    }

    /// Required materials of `step` (or of the flow when no step is given or
    /// the step lists none) not yet received, leaving out `deferred` ones.
    fn missing_required(&self, step: Option<&Step>, deferred: &[String]) -> Vec<String> {
        let listed: &[String] = match step.map(|s| &s.kind) {
            Some(StepKind::Task { materials, .. }) => materials,
            _ => &[],
        };
        self.flow
            .flow
            .materials
            .iter()
            .filter(|m| m.required)
            .filter(|m| listed.is_empty() || listed.contains(&m.id))
            .filter(|m| !self.st.materials.contains_key(&m.id))
            .filter(|m| !deferred.contains(&m.id))
            .map(|m| m.id.clone())
            .collect()
    }

    pub(super) fn active_steps(&self) -> Vec<String> {
        let mut v: Vec<String> = self.st.tasks.values().map(|t| t.step.clone()).collect();
        v.extend(self.st.joins.keys().cloned());
        v.extend(self.st.joint.keys().cloned());
        v.extend(self.st.subflows.keys().cloned());
        v.extend(self.st.waits.keys().cloned());
        v.sort();
        v.dedup();
        v
    }

    /// The departments that may act on a step: its task's department, or the
    /// lead of a parallel, joint-review or subflow block.
    pub(super) fn check_actor_for_step(&self, step_id: &str, by: &Actor) -> R<()> {
        let mut allowed: Vec<String> = self
            .st
            .tasks
            .values()
            .filter(|t| t.step == step_id)
            .map(|t| t.department.clone())
            .collect();
        if let Ok(step) = self.step(step_id) {
            match &step.kind {
                StepKind::Parallel { lead: Some(l), .. }
                | StepKind::JointReview { lead: Some(l), .. }
                | StepKind::Subflow { lead: Some(l), .. } => allowed.push(l.clone()),
                // A block without a lead (a subflow stage): any department of the flow.
                StepKind::Parallel { .. }
                | StepKind::JointReview { .. }
                | StepKind::Subflow { .. }
                    if allowed.is_empty() =>
                {
                    allowed.extend(self.flow.flow.departments.iter().map(|d| d.id.clone()));
                }
                _ => {}
            }
        }
        if by
            .department
            .as_ref()
            .is_some_and(|d| allowed.iter().any(|a| a == d))
        {
            return Ok(());
        }
        Err(CommandError::WrongAssignee {
            step: step_id.to_string(),
            expected: if allowed.is_empty() {
                "no department".into()
            } else {
                allowed.join(" or ")
            },
            given: format!(
                "{} of {}",
                by.name,
                by.department.as_deref().unwrap_or("no department")
            ),
        })
    }

    /// The block steps around `step`, innermost first.
    pub(super) fn enclosing_blocks(&self, step: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = step.to_string();
        loop {
            match self.flow.parent(&cur) {
                Some(Parent::Lane { parallel, .. }) => {
                    out.push(parallel.clone());
                    cur = parallel.clone();
                }
                Some(Parent::Review { joint }) => {
                    out.push(joint.clone());
                    cur = joint.clone();
                }
                _ => return out,
            }
        }
    }

    fn signal(&mut self, name: &str, data: &Data) -> R<()> {
        let Some(step) = self
            .st
            .waits
            .iter()
            .find(|(_, w)| w.event.as_deref() == Some(name))
            .map(|(s, _)| s.clone())
        else {
            return Err(CommandError::NotWaiting {
                name: name.to_string(),
                waiting: list(self.st.waits.values().filter_map(|w| w.event.as_ref())),
            });
        };
        self.record_data(&step, data);
        self.end_wait(&step, name)
    }

    fn end_wait(&mut self, step: &str, by: &str) -> R<()> {
        let at = self.now;
        self.emit(Event::WaitEnded {
            at,
            step: step.to_string(),
            by: by.to_string(),
        });
        let next = self.step(step)?.next.as_ref().map(|t| t.target.clone());
        self.follow(step, next.as_ref(), None, None)
    }

    fn subcase(&mut self, step: &str, item: &str, case_no: &str, result: &str) -> R<()> {
        let Some(sf) = self.st.subflows.get(step).cloned() else {
            return Err(CommandError::NoSuchSubcase {
                step: step.to_string(),
                item: item.to_string(),
                waiting: format!(
                    "nothing (steps waiting for sub-cases: {})",
                    list(self.st.subflows.keys())
                ),
            });
        };
        if !sf.items.iter().any(|i| i == item) || sf.finished.contains_key(item) {
            return Err(CommandError::NoSuchSubcase {
                step: step.to_string(),
                item: item.to_string(),
                waiting: list(sf.items.iter().filter(|i| !sf.finished.contains_key(*i))),
            });
        }
        let at = self.now;
        self.emit(Event::SubcaseFinished {
            at,
            step: step.to_string(),
            item: item.to_string(),
            case_no: case_no.to_string(),
            result: result.to_string(),
        });
        let Some(sf) = self.st.subflows.get(step).cloned() else {
            return Ok(());
        };
        if sf.finished.len() as u32 >= sf.needed {
            let mut results = match self.st.data.get("results") {
                Some(serde_json::Value::Object(m)) => m.clone(),
                _ => Data::new(),
            };
            for (item, (_, result)) in &sf.finished {
                results.insert(item.clone(), serde_json::Value::String(result.clone()));
            }
            let mut values = Data::new();
            values.insert("results".into(), serde_json::Value::Object(results));
            self.record_data(step, &values);
            self.join(step)?;
        }
        Ok(())
    }

    fn fire(&mut self, key: &str) -> R<()> {
        let Some(timer) = self.st.timers().into_iter().find(|t| t.key == key) else {
            return Ok(()); // stale: the deadline moved or the step ended
        };
        if timer.due > self.now {
            return Ok(());
        }
        let at = self.now;
        let (kind, rest) = key.split_once(':').unwrap_or((key, ""));
        match kind {
            "wait" => self.end_wait(rest, "timer"),
            "case" if rest == "receipt" => {
                self.deem_accepted();
                Ok(())
            }
            "resubmit" => {
                self.finish_abnormally(
                    "申请人逾期未按统一整改意见提交材料 (resubmission overdue)",
                    Actor::system(),
                );
                Ok(())
            }
            "deferred" => {
                let missing = self
                    .st
                    .deferred
                    .as_ref()
                    .map(|d| d.materials.join("、"))
                    .unwrap_or_default();
                self.finish_abnormally(
                    &format!("容缺材料逾期未补齐: {missing} (deferred materials not supplied by their deadline)"),
                    Actor::system(),
                );
                Ok(())
            }
            _ => {
                self.emit(Event::DeadlinePassed {
                    at,
                    timer: key.to_string(),
                    due: timer.due,
                });
                Ok(())
            }
        }
    }
}

fn target_name(t: &Target) -> String {
    match t {
        Target::Step(s) => s.clone(),
        Target::End(e) => format!("end {e}"),
        Target::Join => "join".into(),
    }
}

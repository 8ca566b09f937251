//! Commands, events and case state: the data of the pure core.
//!
//! Events are self-describing: `evolve` needs neither the flow nor the
//! calendar, so replaying a case's log rebuilds its snapshot exactly, whatever
//! flows are deployed today.

use crate::core::ids::IdKind;
use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// An instant in China Standard Time (UTC+8), to the second.
pub type Time = NaiveDateTime;
pub type Data = serde_json::Map<String, serde_json::Value>;

/// Who acts: a member of staff of a department (and role), the applicant, or
/// the system itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            name: "system".into(),
            department: None,
            role: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub id_kind: IdKind,
    pub id_number: String,
    /// Accept a 统一社会信用代码 whose check character is wrong: a known legacy code.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legacy: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    /// 法定代表人, for a legal person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_representative: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialIn {
    pub id: String,
    /// 收取方式: `paper` 纸质收取, `upload` 附件上传, `library` 证照库.
    #[serde(default = "default_how")]
    pub how: String,
    #[serde(default = "one")]
    pub count: u32,
}
fn default_how() -> String {
    "upload".into()
}
fn one() -> u32 {
    1
}

/// A length of time as commands and events carry it, written `10 workdays`,
/// `3 days` or `4 hours` (Chinese unit words too).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub value: u32,
    pub unit: govflow_dsl::ir::Unit,
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = self.unit.as_str();
        if self.value == 1 {
            write!(f, "1 {}", &unit[..unit.len() - 1])
        } else {
            write!(f, "{} {unit}", self.value)
        }
    }
}

impl std::str::FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Period, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let value = num
            .parse::<u32>()
            .map_err(|_| format!("`{s}`: expected a number and a unit, like `10 workdays`"))?;
        let unit = govflow_dsl::ir::Unit::parse(unit.trim()).ok_or_else(|| {
            format!("`{s}`: unknown unit; expected workdays, days or hours (工作日, 天, 小时)")
        })?;
        Ok(Period { value, unit })
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a client asks the engine to do to one case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// Register an application (申请). The case number comes from the adapter.
    Start {
        case_no: String,
        applicant: Person,
        #[serde(default)]
        agent: Option<Person>,
        /// 申请来源: portal, hall, app, kiosk …
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        project_code: Option<String>,
        #[serde(default)]
        data: Data,
        #[serde(default)]
        materials: Vec<MaterialIn>,
    },
    /// The applicant supplies materials (a correction, a deferred material, a
    /// resubmission after a consolidated opinion).
    SubmitMaterials {
        #[serde(default)]
        materials: Vec<MaterialIn>,
        #[serde(default)]
        data: Data,
        /// The applicant brought them to the window (a trip of their own
        /// choosing, unless the item's corrections need them on site).
        #[serde(default)]
        on_site: bool,
    },
    /// Complete the open task at `step` with an action.
    Complete {
        step: String,
        #[serde(default = "pass")]
        action: String,
        by: Actor,
        #[serde(default)]
        opinion: Option<String>,
        #[serde(default)]
        data: Data,
        /// For `correct`: the materials the one notice lists.
        #[serde(default)]
        missing: Vec<String>,
        /// At acceptance: deferrable materials accepted as missing (容缺受理).
        #[serde(default)]
        defer: Vec<String>,
        /// At acceptance: when the deferred materials are due (default: the promised limit).
        #[serde(default)]
        defer_within: Option<Period>,
        /// For `correct`: what to fix, by material — required for a material
        /// already received (not in legal form); a missing one is to be supplied.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fixes: BTreeMap<String, String>,
        /// 受理文书编号 / 结果证照编号, when the step produces one.
        #[serde(default)]
        document_no: Option<String>,
        /// Whether the applicant was there (到现场): by default yes the first
        /// time a `visit` step completes, no otherwise. A trip recorded here is
        /// of the office's doing and counts against the mode's bound.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on_site: Option<bool>,
    },
    /// Start a special procedure at a step: A 延长审批 asks for `days` more
    /// working days; B kinds suspend the clock until they end.
    StartSpecial {
        step: String,
        kind: String,
        reason: String,
        #[serde(default)]
        days: Option<u32>,
        by: Actor,
        /// The written notice telling the applicant the time the procedure
        /// takes (its number or date): 行政许可法第四十五条 asks for it when
        /// the procedure stops the statutory clock.
        #[serde(default)]
        notice: Option<String>,
    },
    /// End the running special procedure of `kind` at `step`; for A,
    /// `approved` says whether the extension was granted.
    EndSpecial {
        step: String,
        kind: String,
        result: String,
        #[serde(default)]
        opinion: Option<String>,
        #[serde(default)]
        approved: Option<bool>,
        by: Actor,
    },
    /// A named external event, for `wait … event NAME` steps.
    Signal {
        name: String,
        #[serde(default)]
        data: Data,
    },
    /// A sub-case of a `subflow` step finished.
    SubcaseFinished {
        step: String,
        item: String,
        case_no: String,
        result: String,
    },
    /// A special procedure that stops a clock started (`stopped`) or ended in
    /// an item case of the stage `step`: the stage's clock follows when the
    /// stage declares the procedure (`pauses_for`). Sent by the engine.
    SubcaseClock {
        step: String,
        item: String,
        case_no: String,
        kind: String,
        stopped: bool,
    },
    /// 中止: end the case abnormally, with a reason.
    Terminate { reason: String, by: Actor },
    /// 撤回: the applicant withdraws.
    Withdraw { reason: String },
    /// A durable timer fell due.
    Fire { timer: String },
    /// The calendar in force changed (a year's official arrangement was
    /// deployed): recompute every provisional deadline with it. `calendar`
    /// names the calendar version, as the event records it.
    Recalendar { calendar: String },
}

fn pass() -> String {
    "pass".into()
}

impl Command {
    /// Every command's name, as `name` gives it.
    pub const KINDS: &'static [&'static str] = &[
        "start",
        "submit_materials",
        "complete",
        "start_special",
        "end_special",
        "signal",
        "subcase_finished",
        "subcase_clock",
        "terminate",
        "withdraw",
        "fire",
        "recalendar",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Command::Start { .. } => "start",
            Command::SubmitMaterials { .. } => "submit_materials",
            Command::Complete { .. } => "complete",
            Command::StartSpecial { .. } => "start_special",
            Command::EndSpecial { .. } => "end_special",
            Command::Signal { .. } => "signal",
            Command::SubcaseFinished { .. } => "subcase_finished",
            Command::SubcaseClock { .. } => "subcase_clock",
            Command::Terminate { .. } => "terminate",
            Command::Withdraw { .. } => "withdraw",
            Command::Fire { .. } => "fire",
            Command::Recalendar { .. } => "recalendar",
        }
    }
}

/// A deadline: a limit counted from a start, moved by extensions and
/// suspensions. When the count runs through a year no official arrangement
/// covers yet, the deadline is computed with the provisional rule and marked
/// `provisional` (it is recomputed when that year's calendar is deployed).
/// `due` is `None` only for a deadline more than ten years past the official
/// calendar, or recorded before provisional deadlines existed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    pub limit: Period,
    pub start: Time,
    /// Working days added by approved extensions (A).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extended: u32,
    /// Working days the clock stood still (B).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suspended: u32,
    /// The last day of the period (for limits in days).
    pub due_date: Option<NaiveDate>,
    /// The instant the deadline passes: the end of `due_date`, or start + hours.
    pub due: Option<Time>,
    /// Computed with the provisional rule (weekends and the statutory
    /// holidays off, no 调休): some day it counts lies in a year whose official
    /// arrangement is not deployed yet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}
fn yes() -> bool {
    true
}
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One deadline a new calendar settled: which one (as its timer is keyed:
/// `case:statutory`, `case:promised`, `task:N`, `stage:STEP`, `wait_limit:STEP`,
/// `resubmit:STEP`), its due date before, and the deadline now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recomputed {
    pub key: String,
    pub was: Option<NaiveDate>,
    #[serde(default)]
    pub was_provisional: bool,
    pub deadline: Deadline,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: u32,
    pub step: String,
    pub name: String,
    /// `consolidate` for the consolidation task of a joint review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub department: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub opened_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// The step is an integrity risk point (廉政风险点).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub risk_point: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialClass {
    /// 延长审批: adds working days once approved.
    A,
    /// Everything else: the clock stops while it runs.
    B,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Special {
    pub id: u32,
    pub step: String,
    pub kind: String,
    pub class: SpecialClass,
    pub reason: String,
    pub requested_by: Actor,
    pub started_at: Time,
    /// Declared length in working days (the applicant is told in writing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// The last day of the declared length, and the instant it passes (the
    /// end of that day): a durable timer raises the overrun at that instant,
    /// weekends and holidays included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_date: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opinion: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handled_by: Option<Actor>,
    /// Working days the extension added, or the clock stood still.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub counted_days: u32,
    /// Which clocks the procedure stops (B only): the statutory one for the
    /// procedures of 行政许可法第四十五条 and those the item adds with their
    /// law; the promised one for every B procedure unless the item says which.
    /// Records from before this distinction stopped both.
    #[serde(default = "yes")]
    pub stops_statutory: bool,
    #[serde(default = "yes")]
    pub stops_promised: bool,
    /// The law that makes it stop the statutory clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// The written notice to the applicant (第四十五条).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The parallel, joint-review or subflow blocks around the step: their
    /// stage limits stop with the step's clock.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deferred {
    pub materials: Vec<String>,
    pub due: Option<Time>,
    pub due_date: Option<NaiveDate>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// 申请: registered, not yet accepted (pre-review, correction).
    #[default]
    Applied,
    /// 补齐补正: waiting for the applicant's materials.
    Correcting,
    /// 受理 and in progress; the clocks run.
    Accepted,
    /// 挂起: a B special procedure stopped the clock.
    Suspended,
    /// 整改: the applicant is rectifying after a joint review's consolidated
    /// opinion; the clock stands still until the resubmission.
    Rectifying,
    /// 办结.
    Completed,
    /// 中止 (by staff or automatically).
    Terminated,
    /// 撤回.
    Withdrawn,
}

impl Status {
    pub fn is_finished(&self) -> bool {
        matches!(
            self,
            Status::Completed | Status::Terminated | Status::Withdrawn
        )
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Applied => "applied",
            Status::Correcting => "correcting",
            Status::Accepted => "accepted",
            Status::Suspended => "suspended",
            Status::Rectifying => "rectifying",
            Status::Completed => "completed",
            Status::Terminated => "terminated",
            Status::Withdrawn => "withdrawn",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialState {
    pub how: String,
    pub count: u32,
    pub at: Time,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinState {
    pub lanes: Vec<String>,
    pub needed: u32,
    pub done: BTreeSet<String>,
    /// The stage limit of the parallel step, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JointState {
    pub round: u32,
    pub pending: BTreeSet<String>,
    /// Waiting for the applicant's resubmission after a consolidated opinion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resubmit_due: Option<Deadline>,
    #[serde(default)]
    pub awaiting_resubmission: bool,
    /// Since when the applicant has been rectifying (the clocks it stops stand still).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rectifying_since: Option<Time>,
    #[serde(default = "yes")]
    pub rectify_stops_statutory: bool,
    #[serde(default = "yes")]
    pub rectify_stops_promised: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubflowState {
    pub items: Vec<String>,
    pub needed: u32,
    /// item → (case number, result)
    pub finished: BTreeMap<String, (String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Deadline>,
    /// The stage's clock stands still since then, for an item case's procedure
    /// the stage declares: (since, item case, procedure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<(Time, String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub end: String,
    pub result: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_no: Option<String>,
    pub at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Actor>,
}

/// The case snapshot: what `evolve` builds from the events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseState {
    pub case_no: String,
    pub flow_id: String,
    pub flow_version: u32,
    pub item_name: String,
    pub item_code: Option<String>,
    pub status: Status,
    /// Number of events applied.
    pub version: u64,
    pub applicant: Option<Person>,
    pub agent: Option<Person>,
    pub source: Option<String>,
    pub project_code: Option<String>,
    pub submitted_at: Option<Time>,
    pub data: Data,
    pub materials: BTreeMap<String, MaterialState>,
    pub accepted_at: Option<Time>,
    pub accepted_by: Option<Actor>,
    /// 收件: when the latest submission (the application, or a resubmission
    /// after a correction notice) was received, and by when the office must
    /// accept it or send one correction notice (行政许可法第三十二条).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_window: Option<Deadline>,
    /// Accepted by operation of law: no notice went out in time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deemed_accepted: bool,
    /// Materials named in the correction notices so far, and when the last
    /// notice went out (a second notice may only name these, or problems the
    /// resubmission introduced).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub notified: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_notice_at: Option<Time>,
    pub acceptance_no: Option<String>,
    pub statutory: Option<Deadline>,
    pub promised: Option<Deadline>,
    /// When the licensing decision was made (the step marked `decides`): the
    /// statutory decision clock stops there (行政许可法第四十二条).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Time>,
    /// Issuing and serving the licence after a decision to grant: 10 working
    /// days from the decision (第四十四条), a clock of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<Deadline>,
    pub tasks: BTreeMap<u32, Task>,
    pub next_task: u32,
    pub joins: BTreeMap<String, JoinState>,
    pub joint: BTreeMap<String, JointState>,
    pub waits: BTreeMap<String, WaitState>,
    pub subflows: BTreeMap<String, SubflowState>,
    pub specials: Vec<Special>,
    /// The B special procedure that holds the clock, and since when.
    pub suspended: Option<(u32, Time)>,
    pub deferred: Option<Deferred>,
    /// While correcting: the step that reopens on resubmission, and what is missing.
    pub correction: Option<(String, Vec<String>)>,
    pub corrections: u32,
    pub returns: u32,
    pub visits: u32,
    /// Trips of the office's doing (every cause but the applicant's own
    /// choice): the mode's bound (最多跑一次) applies to these.
    #[serde(default)]
    pub office_visits: u32,
    /// Visit steps already counted.
    #[serde(default)]
    pub visited: BTreeSet<String>,
    /// Deadline timers that already fired, as `key@due`.
    pub fired: BTreeSet<String>,
    pub outcome: Option<Outcome>,
    pub finished_at: Option<Time>,
    pub termination_reason: Option<String>,
}

/// What happened to a case. Every event carries its instant.
#[allow(clippy::large_enum_variant)] // events are stored and replayed one by one
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    CaseStarted {
        at: Time,
        case_no: String,
        flow_id: String,
        flow_version: u32,
        item_name: String,
        item_code: Option<String>,
        /// 办件类型: 即办件 or 承诺件.
        #[serde(default)]
        case_kind: Option<String>,
        applicant: Person,
        #[serde(default)]
        agent: Option<Person>,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        project_code: Option<String>,
        #[serde(default)]
        data: Data,
    },
    MaterialsReceived {
        at: Time,
        materials: Vec<MaterialIn>,
    },
    DataSet {
        at: Time,
        step: String,
        values: Data,
    },
    TaskOpened {
        at: Time,
        task: Task,
    },
    TaskCompleted {
        at: Time,
        task: u32,
        step: String,
        action: String,
        by: Actor,
        #[serde(default)]
        opinion: Option<String>,
        /// The next step's (or end's) name, for the exchange records.
        #[serde(default)]
        next: Option<String>,
    },
    TaskCancelled {
        at: Time,
        task: u32,
        reason: String,
    },
    DecisionMade {
        at: Time,
        step: String,
        target: String,
    },
    CorrectionRequested {
        at: Time,
        step: String,
        reopen: String,
        missing: Vec<String>,
        /// What to fix, by material: for one received but not in legal form,
        /// what is wrong with it (a missing one is simply to be supplied).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fixes: BTreeMap<String, String>,
    },
    Accepted {
        at: Time,
        by: Actor,
        #[serde(default)]
        notice_no: Option<String>,
        statutory: Option<Deadline>,
        promised: Option<Deadline>,
        #[serde(default)]
        deferred: Option<Deferred>,
    },
    /// An on-site trip (到现场) with its cause: `flow` (a step that needs the
    /// applicant, the first time), `office` (the office had the applicant come
    /// again), `correction` (the item's corrections need the applicant on
    /// site), `applicant` (a trip the applicant chose). Older records: `flow`.
    VisitRecorded {
        at: Time,
        step: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<String>,
    },
    ParallelStarted {
        at: Time,
        step: String,
        lanes: Vec<String>,
        needed: u32,
        #[serde(default)]
        lead: Option<String>,
        #[serde(default)]
        deadline: Option<Deadline>,
    },
    LaneFinished {
        at: Time,
        step: String,
        lane: String,
    },
    /// A parallel, joint-review or subflow step completed; the state of the
    /// steps in `dropped` (unfinished branches inside it) is discarded.
    Joined {
        at: Time,
        step: String,
        #[serde(default)]
        dropped: Vec<String>,
    },
    ReviewFinished {
        at: Time,
        step: String,
        review: String,
    },
    JointRoundStarted {
        at: Time,
        step: String,
        round: u32,
        reviews: Vec<String>,
        #[serde(default)]
        deadline: Option<Deadline>,
    },
    RectificationIssued {
        at: Time,
        step: String,
        round: u32,
        opinion: Option<String>,
        resubmit_due: Option<Deadline>,
        /// Which clocks the applicant's rectification (申请人整改) stops, as
        /// the item declares it like a B procedure: the statutory clock only
        /// when the item names it with its law, the promised one by default.
        /// Older records stopped both.
        #[serde(default = "yes")]
        stops_statutory: bool,
        #[serde(default = "yes")]
        stops_promised: bool,
    },
    WaitStarted {
        at: Time,
        step: String,
        state: WaitState,
    },
    WaitEnded {
        at: Time,
        step: String,
        by: String,
    },
    SubcasesRequested {
        at: Time,
        step: String,
        items: Vec<String>,
        needed: u32,
        #[serde(default)]
        deadline: Option<Deadline>,
    },
    SubcaseFinished {
        at: Time,
        step: String,
        item: String,
        case_no: String,
        result: String,
    },
    SpecialStarted {
        at: Time,
        special: Special,
    },
    SpecialEnded {
        at: Time,
        id: u32,
        result: String,
        #[serde(default)]
        opinion: Option<String>,
        by: Actor,
        counted_days: u32,
    },
    /// Deadlines recomputed after an extension or a suspension.
    DeadlinesMoved {
        at: Time,
        reason: String,
        statutory: Option<Deadline>,
        promised: Option<Deadline>,
        /// (task id, its new deadline). A list, not a map: JSON map keys are
        /// strings, and an internally tagged enum cannot read them back as numbers.
        #[serde(default)]
        tasks: Vec<(u32, Deadline)>,
        /// Stage limits of blocks, by block step.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        stages: BTreeMap<String, Deadline>,
    },
    DeadlinePassed {
        at: Time,
        timer: String,
        due: Time,
    },
    /// 收件: a submission was received (the application, or a resubmission
    /// after a correction notice); `window` is when a correction notice is due
    /// at the latest (行政许可法第三十二条).
    Received {
        at: Time,
        #[serde(default)]
        resubmission: bool,
        window: Deadline,
    },
    /// No correction notice went out within the window: the application counts
    /// as accepted on the day it was received, and the clocks run from then
    /// (行政许可法第三十二条: “逾期不告知的，自收到申请材料之日起即为受理”).
    DeemedAccepted {
        at: Time,
        received_at: Time,
        reason: String,
        statutory: Option<Deadline>,
        promised: Option<Deadline>,
    },
    /// The licensing decision was made at `step` (`action`): the statutory
    /// clock stops; when the case goes on to issue the licence, `issue` is
    /// its clock (10 working days, 行政许可法第四十四条).
    Decided {
        at: Time,
        step: String,
        action: String,
        #[serde(default)]
        issue: Option<Deadline>,
    },
    /// A stage's clock stopped (`paused`) or resumed with an item case's
    /// procedure, as the stage declares (`pauses_for`, with `basis`).
    StageClock {
        at: Time,
        step: String,
        case_no: String,
        kind: String,
        paused: bool,
        #[serde(default)]
        basis: Option<String>,
    },
    /// Provisional deadlines recomputed with a newly deployed calendar: one
    /// event per case and calendar version, with the old and new deadlines.
    DeadlinesRecomputed {
        at: Time,
        /// The calendar version that settled them (`CN/2027 v1`, say).
        calendar: String,
        changes: Vec<Recomputed>,
    },
    Terminated {
        at: Time,
        reason: String,
        by: Actor,
    },
    Withdrawn {
        at: Time,
        reason: String,
    },
    Completed {
        at: Time,
        end: String,
        result: String,
        #[serde(default)]
        document_no: Option<String>,
        #[serde(default)]
        by: Option<Actor>,
    },
}

impl Event {
    pub fn at(&self) -> Time {
        match self {
            Event::CaseStarted { at, .. }
            | Event::MaterialsReceived { at, .. }
            | Event::DataSet { at, .. }
            | Event::TaskOpened { at, .. }
            | Event::TaskCompleted { at, .. }
            | Event::TaskCancelled { at, .. }
            | Event::DecisionMade { at, .. }
            | Event::CorrectionRequested { at, .. }
            | Event::Accepted { at, .. }
            | Event::VisitRecorded { at, .. }
            | Event::ParallelStarted { at, .. }
            | Event::LaneFinished { at, .. }
            | Event::Joined { at, .. }
            | Event::ReviewFinished { at, .. }
            | Event::JointRoundStarted { at, .. }
            | Event::RectificationIssued { at, .. }
            | Event::WaitStarted { at, .. }
            | Event::WaitEnded { at, .. }
            | Event::SubcasesRequested { at, .. }
            | Event::SubcaseFinished { at, .. }
            | Event::SpecialStarted { at, .. }
            | Event::SpecialEnded { at, .. }
            | Event::DeadlinesMoved { at, .. }
            | Event::DeadlinePassed { at, .. }
            | Event::Terminated { at, .. }
            | Event::Withdrawn { at, .. }
            | Event::DeadlinesRecomputed { at, .. }
            | Event::Decided { at, .. }
            | Event::StageClock { at, .. }
            | Event::Received { at, .. }
            | Event::DeemedAccepted { at, .. }
            | Event::Completed { at, .. } => *at,
        }
    }

    /// The event's type name, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CaseStarted { .. } => "case_started",
            Event::MaterialsReceived { .. } => "materials_received",
            Event::DataSet { .. } => "data_set",
            Event::TaskOpened { .. } => "task_opened",
            Event::TaskCompleted { .. } => "task_completed",
            Event::TaskCancelled { .. } => "task_cancelled",
            Event::DecisionMade { .. } => "decision_made",
            Event::CorrectionRequested { .. } => "correction_requested",
            Event::Accepted { .. } => "accepted",
            Event::VisitRecorded { .. } => "visit_recorded",
            Event::ParallelStarted { .. } => "parallel_started",
            Event::LaneFinished { .. } => "lane_finished",
            Event::Joined { .. } => "joined",
            Event::ReviewFinished { .. } => "review_finished",
            Event::JointRoundStarted { .. } => "joint_round_started",
            Event::RectificationIssued { .. } => "rectification_issued",
            Event::WaitStarted { .. } => "wait_started",
            Event::WaitEnded { .. } => "wait_ended",
            Event::SubcasesRequested { .. } => "subcases_requested",
            Event::SubcaseFinished { .. } => "subcase_finished",
            Event::SpecialStarted { .. } => "special_started",
            Event::SpecialEnded { .. } => "special_ended",
            Event::DeadlinesMoved { .. } => "deadlines_moved",
            Event::DeadlinePassed { .. } => "deadline_passed",
            Event::Terminated { .. } => "terminated",
            Event::Withdrawn { .. } => "withdrawn",
            Event::DeadlinesRecomputed { .. } => "deadlines_recomputed",
            Event::Decided { .. } => "decided",
            Event::StageClock { .. } => "stage_clock",
            Event::Received { .. } => "received",
            Event::DeemedAccepted { .. } => "deemed_accepted",
            Event::Completed { .. } => "completed",
        }
    }
}

/// A durable timer the storage keeps for a case: fire `Command::Fire { timer: key }` at `due`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timer {
    pub key: String,
    pub due: Time,
}

//! The flow IR: what both syntaxes mean.
//!
//! INVARIANT: the IR is syntax-free. Every transition is explicit (a task's
//! `pass` target is resolved even when the source relied on step order), ends
//! live in a map keyed by id, and spans are carried but ignored by equality and
//! skipped by serialization, so `ir(dsl(f)) == ir(yaml(f))`.

use crate::span::Span;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Flow {
    pub id: String,
    pub name: String,
    pub version: u32,
    pub item: Item,
    pub departments: Vec<Department>,
    pub materials: Vec<Material>,
    /// The top-level sequence of steps (ends excluded; see `ends`).
    pub steps: Vec<Step>,
    pub ends: BTreeMap<String, End>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Workdays,
    Days,
    Hours,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Workdays => "workdays",
            Unit::Days => "days",
            Unit::Hours => "hours",
        }
    }
    /// Parses the unit words the language accepts (English and Chinese).
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "workday" | "workdays" | "工作日" | "个工作日" => Unit::Workdays,
            "day" | "days" | "天" | "日" | "自然日" => Unit::Days,
            "hour" | "hours" | "小时" => Unit::Hours,
            _ => return None,
        })
    }
}

/// A time limit: a whole number of working days, calendar days or hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Limit {
    pub value: u32,
    pub unit: Unit,
    #[serde(skip)]
    pub span: Span,
}

impl Limit {
    /// The limit in working-day equivalents, used only for static path sums.
    /// Calendar days count as working days and hours as eighths of a day: an
    /// over-estimate is the safe side for a warning.
    /// 行政许可法第三十二条: a correction notice within five working days of receipt.
    pub const CORRECTION_LAW: Limit = Limit {
        value: 5,
        unit: Unit::Workdays,
        span: Span { start: 0, end: 0 },
    };

    /// Roughly how many calendar days the limit spans (a working week is
    /// seven days), to compare limits given in different units.
    pub fn approx_days(&self) -> f64 {
        match self.unit {
            Unit::Workdays => f64::from(self.value) * 7.0 / 5.0,
            Unit::Days => f64::from(self.value),
            Unit::Hours => f64::from(self.value) / 24.0,
        }
    }

    pub fn approx_workdays(&self) -> f64 {
        match self.unit {
            Unit::Workdays | Unit::Days => f64::from(self.value),
            Unit::Hours => f64::from(self.value) / 8.0,
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = self.unit.as_str();
        if self.value == 1 {
            write!(f, "1 {}", &unit[..unit.len() - 1])
        } else {
            write!(f, "{} {unit}", self.value)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// 承诺件
    Promised,
    /// 即办件
    Immediate,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Window only (办理形式: 窗口办理).
    Window,
    /// 原件预审: at most 2 on-site visits.
    PreReview,
    /// 原件核验: at most 1 on-site visit.
    Verification,
    /// 全程网办: no on-site visit.
    FullOnline,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Window => "window",
            Mode::PreReview => "pre_review",
            Mode::Verification => "verification",
            Mode::FullOnline => "full_online",
        }
    }
    /// The most on-site visits the mode allows on any path, if it bounds them.
    pub fn visit_bound(self) -> Option<u32> {
        match self {
            Mode::Window => None,
            Mode::PreReview => Some(2),
            Mode::Verification => Some(1),
            Mode::FullOnline => Some(0),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Fee {
    pub charged: bool,
    pub standard: Option<String>,
    pub basis: Option<String>,
}

/// The implementation-list elements (事项实施清单要素) of the item a flow describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Item {
    /// 基本编码: 10 digits.
    pub basic_code: Option<String>,
    /// 实施编码: 24 characters.
    pub impl_code: Option<String>,
    /// 事项类型.
    #[serde(rename = "type")]
    pub item_type: Option<String>,
    pub statutory: Option<Limit>,
    pub promised: Option<Limit>,
    /// How soon after receipt (收件) a correction notice must go out; the law's
    /// five working days when absent (行政许可法第三十二条), never longer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction_within: Option<Limit>,
    pub kind: CaseKind,
    pub mode: Mode,
    pub fee: Fee,
    pub served: Vec<String>,
    pub scope: Option<String>,
    pub version: Option<u32>,
    pub status: Option<String>,
    pub level: Option<String>,
    pub body_nature: Option<String>,
    pub change_type: Option<String>,
    pub running_system: Option<String>,
    pub appointment: Option<bool>,
    pub online_payment: Option<bool>,
    pub delivery: Option<bool>,
    pub co_handling: Vec<String>,
    /// Special procedures that stop the statutory clock for this item beyond
    /// 行政许可法第四十五条's list (a specific law adds them), with that law.
    /// Corrections need the applicant on site (the guide's default is 网上补正,
    /// online): the visit proof then counts a correction trip on every path
    /// through a step that can send a correction notice.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub correction_on_site: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stops_statutory: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops_statutory_basis: Option<String>,
    /// The special procedures that pause the promised clock (the office's own
    /// commitment); every class-B procedure when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stops_promised: Option<Vec<String>>,
    /// Free-text elements (设定依据, 受理条件, 办理地点 …) by key.
    pub text: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Department {
    pub id: String,
    pub name: String,
    pub roles: Vec<Role>,
    /// A department chosen per case: the case data field that names it
    /// (`addressee "被督办部门" from addressee`). Tasks of this department go to
    /// the department the field names when they open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Role {
    pub id: String,
    pub name: String,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Material {
    pub id: String,
    pub name: String,
    pub required: bool,
    /// May be supplied after acceptance (容缺受理).
    pub deferrable: bool,
    pub source: Option<String>,
    pub paper: bool,
    pub electronic: bool,
    /// Trust levels (A–D) accepted for the electronic copy.
    pub trust: Vec<String>,
    #[serde(skip)]
    pub span: Span,
}

/// A reference to a department, optionally narrowed to one of its roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assignee {
    pub department: String,
    pub role: Option<String>,
    #[serde(skip)]
    pub span: Span,
}

impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.role {
            Some(r) => write!(f, "{}.{}", self.department, r),
            None => f.write_str(&self.department),
        }
    }
}

/// Where a transition goes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Step(String),
    End(String),
    /// The end of the enclosing parallel branch (its join).
    Join,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub target: Target,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// 通过
    Pass,
    /// 退回: back to a named earlier step.
    Return,
    /// 补正: request correction.
    Correct,
    /// 不予受理
    Refuse,
    /// 不予许可
    Deny,
    Custom(String),
}

impl ActionKind {
    pub fn parse(s: &str) -> ActionKind {
        match s {
            "pass" | "通过" => ActionKind::Pass,
            "return" | "退回" => ActionKind::Return,
            "correct" | "补正" | "补齐补正" => ActionKind::Correct,
            "refuse" | "不予受理" => ActionKind::Refuse,
            "deny" | "不予许可" => ActionKind::Deny,
            other => ActionKind::Custom(other.to_string()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            ActionKind::Pass => "pass",
            ActionKind::Return => "return",
            ActionKind::Correct => "correct",
            ActionKind::Refuse => "refuse",
            ActionKind::Deny => "deny",
            ActionKind::Custom(s) => s,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Action {
    pub kind: ActionKind,
    pub target: Transition,
    #[serde(skip)]
    pub span: Span,
}

/// A rhai expression, compiled when the file loads.
///
/// `source` is normalised (comments removed, whitespace outside strings
/// collapsed to one space), so an expression written over several YAML lines
/// and the same expression on one DSL line are equal. `raw` is the text as
/// written, used to map rhai error positions back to the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expr {
    pub source: String,
    #[serde(skip)]
    pub raw: Raw,
    #[serde(skip)]
    pub span: Span,
}

/// Source text kept beside the IR; equality ignores it (like spans).
#[derive(Clone, Debug, Default)]
pub struct Raw(pub String);
impl PartialEq for Raw {
    fn eq(&self, _: &Raw) -> bool {
        true
    }
}
impl Eq for Raw {}

impl Expr {
    pub fn new(raw: &str, span: Span) -> Expr {
        Expr {
            source: normalize_expr(raw),
            raw: Raw(raw.to_string()),
            span,
        }
    }
}

/// Removes `//` comments and collapses whitespace outside string literals.
pub fn normalize_expr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for line in s.split('\n') {
        let line = crate::span::strip_line_comment(line);
        let mut in_str: Option<char> = None;
        let mut prev = ' ';
        for c in line.chars() {
            match in_str {
                Some(q) => {
                    if c == q && prev != '\\' {
                        in_str = None;
                    }
                    out.push(c);
                }
                None if c.is_whitespace() => {
                    if !out.is_empty() && !out.ends_with(' ') {
                        out.push(' ');
                    }
                }
                None => {
                    if c == '"' || c == '\'' || c == '`' {
                        in_str = Some(c);
                    }
                    out.push(c);
                }
            }
            prev = c;
        }
        if !out.is_empty() && !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim_end().to_string()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Assign {
    pub field: String,
    pub expr: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Branch {
    pub condition: Expr,
    pub target: Transition,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Join {
    All,
    Any,
    NOfM { n: u32, m: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Lane {
    pub id: String,
    pub name: String,
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Consolidate {
    pub by: Assignee,
    pub within: Option<Limit>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Task {
        by: Assignee,
        actions: Vec<Action>,
        materials: Vec<String>,
    },
    Auto {
        set: Vec<Assign>,
    },
    Decision {
        branches: Vec<Branch>,
        default: Option<Transition>,
    },
    Parallel {
        lead: Option<String>,
        join: Join,
        lanes: Vec<Lane>,
    },
    /// 多评合一: parallel reviews of `reports`, one consolidated opinion, loop until passed.
    JointReview {
        lead: Option<String>,
        reports: Vec<String>,
        reviews: Vec<Step>,
        consolidate: Consolidate,
        resubmit_within: Option<Limit>,
    },
    /// Cross-item parallel approval: start the items' cases, complete on all/any.
    Subflow {
        /// 牵头部门: coordinates the stage and may act on it (special procedures).
        #[serde(skip_serializing_if = "Option::is_none")]
        lead: Option<String>,
        items: Vec<String>,
        join: Join,
        /// The item cases' special procedures that pause this stage's clock
        /// (the stage's own limit), and the rule that says so.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        pauses_for: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        pauses_for_basis: Option<String>,
    },
    Wait {
        timer: Option<Limit>,
        event: Option<String>,
    },
}

impl StepKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            StepKind::Task { .. } => "task",
            StepKind::Auto { .. } => "auto",
            StepKind::Decision { .. } => "decision",
            StepKind::Parallel { .. } => "parallel",
            StepKind::JointReview { .. } => "joint_review",
            StepKind::Subflow { .. } => "subflow",
            StepKind::Wait { .. } => "wait",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    pub id: String,
    pub name: String,
    pub kind: StepKind,
    pub within: Option<Limit>,
    pub visit: bool,
    pub risk_point: bool,
    pub starts_clock: bool,
    /// The step where the licensing decision is made (准予/不予许可): the
    /// statutory decision clock stops when it completes (行政许可法第四十二条),
    /// and issuing the licence has its own clock (第四十四条).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub decides: bool,
    /// Special procedures allowed at this step (延长审批, 听证, 实地核查 …).
    pub special: Vec<String>,
    /// Where the step goes when it completes normally (a task's `pass`).
    pub next: Option<Transition>,
    #[serde(skip)]
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct End {
    pub id: String,
    pub name: String,
    /// 办理结果: 准予许可, 不予许可, 不予受理, 转报 …
    pub result: String,
    #[serde(skip)]
    pub span: Span,
}

/// The special procedures the language knows (the guide's 附录三): `A`
/// extends the period; everything else is class `B`. Which clocks a B
/// procedure stops is not the kind's but the law's: the statutory clock for
/// those 行政许可法第四十五条 lists (and those an item adds with its law), the
/// promised clock as the item declares (engine `core::clocks::ART45_PROCEDURES`).
pub const SPECIAL_EXTENSION: &[&str] = &["延长审批", "延长", "extension"];
pub const SPECIAL_SUSPENDING: &[&str] = &[
    "听证",
    "实地核查",
    "现场核查",
    "专家评审",
    "检验检测",
    "检验检测检疫鉴定",
    "检验",
    "检测",
    "检疫",
    "鉴定",
    "招标",
    "拍卖",
    "招标拍卖",
    "公示",
    "书面审查",
    "考试",
    "考核",
    "考试考核",
    "技术审查",
    "听取利害关系人意见",
    "集体审查",
    "申请人整改",
    "hearing",
    "inspection",
    "expert_review",
    "testing",
];

impl Flow {
    /// Every step, depth-first in source order (lanes and reviews included).
    pub fn all_steps(&self) -> Vec<&Step> {
        fn walk<'a>(steps: &'a [Step], out: &mut Vec<&'a Step>) {
            for s in steps {
                out.push(s);
                match &s.kind {
                    StepKind::Parallel { lanes, .. } => {
                        for l in lanes {
                            walk(&l.steps, out);
                        }
                    }
                    StepKind::JointReview { reviews, .. } => walk(reviews, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.steps, &mut out);
        out
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.all_steps().into_iter().find(|s| s.id == id)
    }

    /// The canonical JSON form (`govflow ir`).
    pub fn to_canonical_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

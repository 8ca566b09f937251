//! `Node` → IR, reporting every problem with the node's span.
//!
//! Why this file is long: it is the one place where every key of both syntaxes
//! gets its meaning (item elements, each step kind, limits, actions); keeping
//! it whole is what guarantees a check or a message cannot differ by syntax.
//!
//! Both syntaxes arrive here as `Node`s, so every key check, value check and
//! message is shared. Cross-reference checks that need the whole flow live in
//! validate.rs.

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::ir::*;
use crate::node::{Entry, Node, Value};
use crate::schema;
use crate::span::Span;
use std::collections::BTreeMap;

pub struct Lower {
    pub diags: Vec<Diagnostic>,
    ends: BTreeMap<String, End>,
}

/// A map being read: remembers which keys were used so that the rest can be
/// reported as unknown.
struct Fields<'a> {
    entries: &'a [Entry],
    used: Vec<bool>,
    span: Span,
}

impl<'a> Fields<'a> {
    fn take(&mut self, key: &str) -> Option<&'a Entry> {
        let idx = self.entries.iter().position(|e| e.key == key)?;
        self.used[idx] = true;
        Some(&self.entries[idx])
    }
    fn take_value(&mut self, key: &str) -> Option<&'a Node> {
        self.take(key).map(|e| &e.value)
    }
}

const ITEM_TYPES: &[&str] = &[
    "行政许可",
    "行政征收",
    "行政给付",
    "行政确认",
    "行政裁决",
    "行政奖励",
    "行政检查",
    "行政处罚",
    "行政强制",
    "其他事项",
    "其他行政权力",
    "公共服务",
    "基本公共教育",
    "劳动就业服务",
    "社会保险",
    "基本社会服务",
    "基本医疗卫生",
    "公共文化体育",
    "残疾人基本公共服务",
    "其他公共服务",
];
/// Words that cannot name a step, end or branch (they mean something in the DSL).
const RESERVED_IDS: &[&str] = &[
    "branch",
    "join",
    "on",
    "when",
    "else",
    "set",
    "flow",
    "item",
    "departments",
    "materials",
    "consolidate",
    "of",
];
const SERVED: &[&str] = &["自然人", "法人", "其他组织"];
const SCOPES: &[&str] = &["全国", "跨省", "跨市", "跨县", "本地"];
const STATUSES: &[(&str, &str)] = &[
    ("在用", "在用"),
    ("in_use", "在用"),
    ("暂停", "暂停"),
    ("suspended", "暂停"),
    ("取消", "取消"),
    ("cancelled", "取消"),
];
const LEVELS: &[&str] = &["国家级", "省级", "市级", "县级", "乡级", "村级"];
const BODY_NATURES: &[&str] = &["法定机关", "授权组织", "受委托组织"];
const CHANGE_TYPES: &[&str] = &["新增", "变更", "取消"];
const RUNNING_SYSTEMS: &[&str] = &["国家级", "省级", "市级"];
const TRUST_LEVELS: &[&str] = &["A", "B", "C", "D"];

fn step_allowed(kind: &str) -> &'static [&'static str] {
    const COMMON: &[&str] = &[
        "name",
        "within",
        "visit",
        "risk_point",
        "starts_clock",
        "special",
        "next",
    ];
    match kind {
        "task" => &[
            "name",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "decides",
            "special",
            "next",
            "by",
            "materials",
            "on",
        ],
        "auto" => &[
            "name",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "special",
            "next",
            "set",
        ],
        "decision" => &["name", "when", "else", "risk_point"],
        "parallel" => &[
            "name",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "special",
            "next",
            "lead",
            "join",
            "branches",
        ],
        "joint_review" => &[
            "name",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "special",
            "next",
            "lead",
            "reports",
            "reviews",
            "consolidate",
            "resubmit_within",
        ],
        "subflow" => &[
            "name",
            "lead",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "special",
            "next",
            "items",
            "join",
            "pauses_for",
            "pauses_for_basis",
        ],
        "wait" => &[
            "name",
            "within",
            "visit",
            "risk_point",
            "starts_clock",
            "special",
            "next",
            "for",
            "event",
        ],
        "end" => &["name", "result"],
        _ => COMMON,
    }
}

/// A raw step before sequencing: the IR step plus whether the source gave `next`.
struct Raw {
    step: Step,
    explicit_next: bool,
}

impl Lower {
    pub fn new() -> Self {
        Lower {
            diags: Vec::new(),
            ends: BTreeMap::new(),
        }
    }

    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn fields<'a>(&mut self, node: &'a Node, ctx: &str) -> Option<Fields<'a>> {
        match &node.value {
            Value::Map(entries) => {
                let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
                for e in entries {
                    if let Some(first) = seen.get(e.key.as_str()) {
                        let first = *first;
                        self.err(
                            Diagnostic::new(
                                Code::DuplicateId,
                                e.key_span,
                                format!("`{}` is given twice in `{ctx}`", e.key),
                            )
                            .label("second occurrence")
                            .related(first, "first given here")
                            .help("remove one of them"),
                        );
                    } else {
                        seen.insert(&e.key, e.key_span);
                    }
                }
                Some(Fields {
                    entries,
                    used: vec![false; entries.len()],
                    span: node.span,
                })
            }
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{ctx}` must be a map, found {}", node.kind_name()),
                    )
                    .label("expected `key: value` pairs")
                    .help(format!("write `{ctx}` as a map of keys")),
                );
                None
            }
        }
    }

    /// Reports the keys of `f` that were not used.
    fn finish(&mut self, f: &Fields<'_>, allowed: &[&str], ctx: &str) {
        for (e, used) in f.entries.iter().zip(&f.used) {
            // A repeated key was read once and reported as a duplicate already.
            let key_used = f
                .entries
                .iter()
                .zip(&f.used)
                .any(|(o, u)| *u && o.key == e.key);
            if *used || key_used {
                continue;
            }
            let help = match did_you_mean(&e.key, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("`{ctx}` accepts: {}", allowed.join(", ")),
            };
            self.err(
                Diagnostic::new(
                    Code::UnknownKey,
                    e.key_span,
                    format!("unknown key `{}` in `{ctx}`", e.key),
                )
                .label("unknown key")
                .help(help),
            );
        }
    }

    fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match &node.value {
            Value::Str { text, .. } => Some(text.clone()),
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{what}` must be a string, found {}", node.kind_name()),
                    )
                    .label("expected a string")
                    .help(format!("write `{what}` as a single value")),
                );
                None
            }
        }
    }

    fn ident(&mut self, node: &Node, what: &str) -> Option<String> {
        let s = self.string(node, what)?;
        let reserved = matches!(what, "step id" | "end id" | "branch id")
            && (schema::STEP_KINDS.contains(&s.as_str()) || RESERVED_IDS.contains(&s.as_str()));
        if reserved {
            self.err(
                Diagnostic::new(
                    Code::InvalidValue,
                    node.span,
                    format!("`{s}` is a keyword and cannot be a {what}"),
                )
                .label("reserved word")
                .help(format!("rename it, for example `{s}_step`")),
            );
            return None;
        }
        let ok = s
            .chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
            && s.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '?');
        if !ok {
            self.err(
                Diagnostic::new(Code::InvalidValue, node.span, format!("`{s}` is not a valid {what}"))
                    .label("not an identifier")
                    .help("ids start with a letter (Chinese characters are letters) or `_` and contain letters, digits and `_`"),
            );
            return None;
        }
        Some(s)
    }

    fn boolean(&mut self, node: &Node, what: &str) -> Option<bool> {
        let s = self.string(node, what)?;
        match s.as_str() {
            "true" | "yes" | "是" => Some(true),
            "false" | "no" | "否" => Some(false),
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{what}` must be true or false, found `{s}`"),
                    )
                    .label("expected true or false")
                    .help("write `true` or `false` (是/否 also work)"),
                );
                None
            }
        }
    }

    fn number(&mut self, node: &Node, what: &str) -> Option<u32> {
        let s = self.string(node, what)?;
        match s.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{what}` must be a whole number, found `{s}`"),
                    )
                    .label("expected a number")
                    .help(format!("write `{what}` as a number such as 1")),
                );
                None
            }
        }
    }

    fn one_of(&mut self, node: &Node, what: &str, allowed: &[&str]) -> Option<String> {
        let s = self.string(node, what)?;
        if allowed.contains(&s.as_str()) {
            return Some(s);
        }
        let help = match did_you_mean(&s, allowed.iter().copied()) {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("allowed: {}", allowed.join(", ")),
        };
        self.err(
            Diagnostic::new(
                Code::InvalidValue,
                node.span,
                format!("`{s}` is not a valid `{what}`"),
            )
            .label(format!("unknown {what}"))
            .help(help),
        );
        None
    }

    fn list<'a>(&mut self, node: &'a Node, what: &str) -> &'a [Node] {
        match &node.value {
            Value::List(items) => items,
            Value::Null => &[],
            Value::Str { .. } => std::slice::from_ref(node),
            Value::Map(_) => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{what}` must be a list, found a map"),
                    )
                    .label("expected a list")
                    .help(format!("write `{what}: [a, b]`")),
                );
                &[]
            }
        }
    }

    fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        let items = self.list(node, what);
        items.iter().filter_map(|n| self.string(n, what)).collect()
    }

    pub fn limit(&mut self, node: &Node, what: &str) -> Option<Limit> {
        let s = self.string(node, what)?;
        let mut parts = s.split_whitespace();
        let (num, unit) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(u), None) => (n.to_string(), u.to_string()),
            (Some(one), None, None) => {
                // `5工作日` written without a space.
                let split = one.find(|c: char| !c.is_ascii_digit()).unwrap_or(one.len());
                (one[..split].to_string(), one[split..].to_string())
            }
            _ => (String::new(), String::new()),
        };
        let value = num.parse::<u32>().ok();
        let unit_v = Unit::parse(&unit);
        match (value, unit_v) {
            (Some(value), Some(unit)) if value <= 3650 => Some(Limit {
                value,
                unit,
                span: node.span,
            }),
            _ => {
                let why = if value.is_some_and(|v| v > 3650) {
                    "the number is larger than any legal limit (at most 3650)".to_string()
                } else if value.is_none() {
                    "it does not start with a whole number".to_string()
                } else if unit.is_empty() {
                    "it has no unit".to_string()
                } else {
                    format!("`{unit}` is not a unit")
                };
                self.err(
                    Diagnostic::new(Code::MalformedLimit, node.span, format!("malformed time limit `{s}` for `{what}`: {why}"))
                        .label("expected `N workdays`, `N days` or `N hours`")
                        .help("write a whole number and a unit, such as `20 workdays` (工作日), `30 days` (自然日) or `4 hours`"),
                );
                None
            }
        }
    }

    pub fn flow(&mut self, root: &Node) -> Option<Flow> {
        if let Value::Null = root.value {
            self.err(
                Diagnostic::new(Code::Syntax, root.span, "the file has no flow")
                    .label("empty")
                    .help("a flow file starts with `flow: my_flow` (YAML) or `flow my_flow \"名称\" { … }` (DSL)"),
            );
            return None;
        }
        let mut f = self.fields(root, "flow")?;
        let id_node = f.take_value("flow");
        let id = match id_node {
            Some(n) => self.ident(n, "flow id"),
            None => {
                self.err(
                    Diagnostic::new(Code::MissingKey, Span::new(root.span.start, root.span.start), "the flow has no id")
                        .label("missing `flow`")
                        .help("start the file with `flow: my_flow` (YAML) or `flow my_flow \"名称\" { … }` (DSL)"),
                );
                None
            }
        };
        let name = match f.take_value("name") {
            Some(n) => self.string(n, "name"),
            None => {
                let at = id_node.map_or(root.span, |n| n.span);
                self.err(
                    Diagnostic::new(Code::MissingKey, at, "the flow has no name (事项名称)")
                        .label("name missing")
                        .help("add `name: 事项名称` (YAML) or a string after the id (DSL)"),
                );
                None
            }
        };
        let version = match f.take_value("version") {
            Some(n) => self.number(n, "version"),
            None => Some(1),
        };
        let item = match f.take_value("item") {
            Some(n) => self.item(n),
            None => {
                let at = id_node.map_or(root.span, |n| n.span);
                self.err(
                    Diagnostic::new(Code::MissingKey, at, "the flow has no `item` block")
                        .label("item missing")
                        .help("add `item` with at least basic_code, type, statutory, kind, promised and mode"),
                );
                None
            }
        };
        let departments = f
            .take_value("departments")
            .map(|n| self.departments(n))
            .unwrap_or_default();
        let materials = f
            .take_value("materials")
            .map(|n| self.materials(n))
            .unwrap_or_default();
        let steps_node = f.take_value("steps");
        let steps = match steps_node {
            Some(n) => {
                let items = self.list(n, "steps");
                self.sequence(items, Target::Join, false)
            }
            None => Vec::new(),
        };
        if steps.is_empty() {
            let at = steps_node.map_or(id_node.map_or(root.span, |n| n.span), |n| n.span);
            self.err(
                Diagnostic::new(Code::EmptyBlock, at, "the flow has no steps")
                    .label("no steps")
                    .help("add at least one step and an end, such as `task accept \"受理\" by window` and `end granted \"准予许可\"`"),
            );
        }
        self.finish(
            &f,
            &schema::names(schema::FLOW_KEYS).collect::<Vec<_>>(),
            "flow",
        );
        let ends = std::mem::take(&mut self.ends);
        Some(Flow {
            id: id?,
            name: name?,
            version: version?,
            item: item?,
            departments,
            materials,
            steps,
            ends,
            span: root.span,
        })
    }

    fn item(&mut self, node: &Node) -> Option<Item> {
        let mut f = self.fields(node, "item")?;
        let mut ok = true;
        let basic_code = f.take_value("basic_code").and_then(|n| {
            let s = self.string(n, "basic_code")?;
            if s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit()) {
                Some(s)
            } else {
                self.err(
                    Diagnostic::new(Code::MalformedCode, n.span, format!("malformed 基本编码 `{s}`: it must be exactly 10 digits"))
                        .label(format!("{} characters", s.chars().count()))
                        .help("基本编码 is 2 item-type digits + 5 main-item digits + 3 sub-item digits (000 when there is no sub-item); quote it in YAML so leading zeros stay"),
                );
                None
            }
        });
        let impl_code = f.take_value("impl_code").and_then(|n| {
            let s = self.string(n, "impl_code")?;
            if s.len() == 24 && s.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
                Some(s)
            } else {
                self.err(
                    Diagnostic::new(Code::MalformedCode, n.span, format!("malformed 实施编码 `{s}`: it must be 24 digits or capital letters"))
                        .label(format!("{} characters", s.chars().count()))
                        .help("实施编码 is region (6) + township (3) + village (3) + organisation code (9) + body class (1) + handling-item code (2)"),
                );
                None
            }
        });
        let item_type = f
            .take_value("type")
            .and_then(|n| self.one_of(n, "type", ITEM_TYPES));
        let statutory = f
            .take_value("statutory")
            .and_then(|n| self.limit(n, "statutory"));
        let kind = match f.take_value("kind") {
            Some(n) => match self.string(n, "kind").as_deref() {
                Some("promised" | "承诺件") => CaseKind::Promised,
                Some("immediate" | "即办件") => CaseKind::Immediate,
                Some(other) => {
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            n.span,
                            format!("`{other}` is not a valid `kind`"),
                        )
                        .label("unknown case kind")
                        .help("办件类型 is `promised` (承诺件) or `immediate` (即办件)"),
                    );
                    ok = false;
                    CaseKind::Promised
                }
                None => CaseKind::Promised,
            },
            None => CaseKind::Promised,
        };
        let correction_within = f
            .take_value("correction_within")
            .and_then(|n| self.limit(n, "correction_within"));
        let promised_node = f.take_value("promised");
        let promised = promised_node.and_then(|n| self.limit(n, "promised"));
        if promised_node.is_none() && kind == CaseKind::Promised {
            self.err(
                Diagnostic::new(Code::MissingKey, f.span, "a promised item (承诺件) needs a `promised` limit (承诺办结时限)")
                    .label("no `promised` limit")
                    .help("add `promised 10 workdays`, or set `kind immediate` for an item completed on the spot"),
            );
        }
        let mode = match f.take_value("mode") {
            Some(n) => match self.string(n, "mode").as_deref() {
                Some("window" | "窗口办理") => Mode::Window,
                Some("pre_review" | "原件预审") => Mode::PreReview,
                Some("verification" | "原件核验") => Mode::Verification,
                Some("full_online" | "全程网办") => Mode::FullOnline,
                Some(other) => {
                    let help = match did_you_mean(other, ["window", "pre_review", "verification", "full_online"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "办理形式 is `window`, `pre_review` (原件预审), `verification` (原件核验) or `full_online` (全程网办)".into(),
                    };
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            n.span,
                            format!("`{other}` is not a valid `mode`"),
                        )
                        .label("unknown mode")
                        .help(help),
                    );
                    ok = false;
                    Mode::Window
                }
                None => Mode::Window,
            },
            None => Mode::Window,
        };
        let fee = match f.take_value("fee") {
            Some(n) => self.fee(n),
            None => Fee::default(),
        };
        let served = f.take_value("served").map(|n| {
            let items = self.list(n, "served");
            items
                .iter()
                .filter_map(|i| self.one_of(i, "served", SERVED))
                .collect()
        });
        let scope = f
            .take_value("scope")
            .and_then(|n| self.one_of(n, "scope", SCOPES));
        let version = f
            .take_value("version")
            .and_then(|n| self.number(n, "item version"));
        let status = f.take_value("status").and_then(|n| {
            let s = self.string(n, "status")?;
            match STATUSES.iter().find(|(k, _)| *k == s) {
                Some((_, v)) => Some(v.to_string()),
                None => {
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            n.span,
                            format!("`{s}` is not a valid `status`"),
                        )
                        .label("unknown status")
                        .help("权力状态 is 在用 (in_use), 暂停 (suspended) or 取消 (cancelled)"),
                    );
                    None
                }
            }
        });
        let level = f
            .take_value("level")
            .and_then(|n| self.one_of(n, "level", LEVELS));
        let body_nature = f
            .take_value("body_nature")
            .and_then(|n| self.one_of(n, "body_nature", BODY_NATURES));
        let change_type = f
            .take_value("change_type")
            .and_then(|n| self.one_of(n, "change_type", CHANGE_TYPES));
        let running_system = f
            .take_value("running_system")
            .and_then(|n| self.one_of(n, "running_system", RUNNING_SYSTEMS));
        let appointment = f
            .take_value("appointment")
            .and_then(|n| self.boolean(n, "appointment"));
        let correction_on_site = f
            .take_value("correction_on_site")
            .and_then(|n| self.boolean(n, "correction_on_site"))
            .unwrap_or(false);
        let online_payment = f
            .take_value("online_payment")
            .and_then(|n| self.boolean(n, "online_payment"));
        let delivery = f
            .take_value("delivery")
            .and_then(|n| self.boolean(n, "delivery"));
        let co_handling = f
            .take_value("co_handling")
            .map(|n| self.strings(n, "co_handling"))
            .unwrap_or_default();
        let stops_statutory = f
            .take_value("stops_statutory")
            .map(|n| self.strings(n, "stops_statutory"))
            .unwrap_or_default();
        let stops_statutory_basis = f
            .take_value("stops_statutory_basis")
            .and_then(|n| self.string(n, "stops_statutory_basis"));
        let stops_promised = f
            .take_value("stops_promised")
            .map(|n| self.strings(n, "stops_promised"));
        let mut text = BTreeMap::new();
        for key in schema::ITEM_TEXT_KEYS {
            if let Some(n) = f.take_value(key)
                && let Some(s) = self.string(n, key)
            {
                text.insert((*key).to_string(), s);
            }
        }
        for (key, label) in [
            ("basic_code", "基本编码"),
            ("type", "事项类型"),
            ("statutory", "法定办结时限"),
            ("mode", "办理形式"),
        ] {
            if !f.entries.iter().any(|e| e.key == key) {
                self.err(
                    Diagnostic::new(
                        Code::MissingKey,
                        Span::new(f.span.start, f.span.start),
                        format!("the item has no `{key}` ({label})"),
                    )
                    .label(format!("`{key}` missing"))
                    .help(format!(
                        "{label} is required for a deployable flow; add `{key}` to the item block"
                    )),
                );
            }
        }
        self.finish(
            &f,
            &schema::names(schema::ITEM_KEYS).collect::<Vec<_>>(),
            "item",
        );
        if !ok {
            return None;
        }
        Some(Item {
            basic_code,
            impl_code,
            item_type,
            statutory,
            promised,
            correction_within,
            kind,
            mode,
            fee,
            served: served.unwrap_or_default(),
            scope,
            version,
            status,
            level,
            body_nature,
            change_type,
            running_system,
            appointment,
            online_payment,
            delivery,
            co_handling,
            correction_on_site,
            stops_statutory,
            stops_statutory_basis,
            stops_promised,
            text,
        })
    }

    fn fee(&mut self, node: &Node) -> Fee {
        if let Some(s) = node.as_str() {
            return match s {
                "none" | "无" | "false" | "no" | "否" | "不收费" => Fee::default(),
                _ => {
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            node.span,
                            format!("`{s}` is not a valid `fee`"),
                        )
                        .label("expected `none` or a block")
                        .help(
                            "write `fee none` or `fee { charged true standard \"…\" basis \"…\" }`",
                        ),
                    );
                    Fee::default()
                }
            };
        }
        let Some(mut f) = self.fields(node, "fee") else {
            return Fee::default();
        };
        let charged = f
            .take_value("charged")
            .and_then(|n| self.boolean(n, "charged"))
            .unwrap_or(true);
        let standard = f
            .take_value("standard")
            .and_then(|n| self.string(n, "standard"));
        let basis = f.take_value("basis").and_then(|n| self.string(n, "basis"));
        if charged && (standard.is_none() || basis.is_none()) {
            self.err(
                Diagnostic::new(
                    Code::MissingKey,
                    node.span,
                    "a charged fee needs its `standard` (收费标准) and `basis` (收费依据)",
                )
                .label("incomplete fee")
                .help("add `standard` and `basis`, or write `fee none`"),
            );
        }
        self.finish(
            &f,
            &schema::names(schema::FEE_KEYS).collect::<Vec<_>>(),
            "fee",
        );
        Fee {
            charged,
            standard,
            basis,
        }
    }

    fn departments(&mut self, node: &Node) -> Vec<Department> {
        let Some(f) = self.fields(node, "departments") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in f.entries {
            let Some(id) = self.ident(&Node::str(e.key.clone(), e.key_span), "department id")
            else {
                continue;
            };
            let (name, roles, from) = match &e.value.value {
                Value::Str { text, .. } => (text.clone(), Vec::new(), None),
                Value::Map(_) => {
                    let Some(mut df) = self.fields(&e.value, "department") else {
                        continue;
                    };
                    let name = df
                        .take_value("name")
                        .and_then(|n| self.string(n, "name"))
                        .unwrap_or_else(|| id.clone());
                    let mut roles = Vec::new();
                    if let Some(r) = df.take_value("roles")
                        && let Some(rf) = self.fields(r, "roles")
                    {
                        for re in rf.entries {
                            let rname = match &re.value.value {
                                Value::Str { text, .. } => text.clone(),
                                _ => re.key.clone(),
                            };
                            roles.push(Role {
                                id: re.key.clone(),
                                name: rname,
                                span: re.key_span,
                            });
                        }
                    }
                    let from = df
                        .take_value("from")
                        .and_then(|n| self.ident(n, "data field"));
                    self.finish(
                        &df,
                        &schema::names(schema::DEPARTMENT_KEYS).collect::<Vec<_>>(),
                        "department",
                    );
                    (name, roles, from)
                }
                _ => (id.clone(), Vec::new(), None),
            };
            out.push(Department {
                id,
                name,
                roles,
                from,
                span: e.key_span,
            });
        }
        out
    }

    fn materials(&mut self, node: &Node) -> Vec<Material> {
        let Some(f) = self.fields(node, "materials") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in f.entries {
            let Some(id) = self.ident(&Node::str(e.key.clone(), e.key_span), "material id") else {
                continue;
            };
            let mut m = Material {
                id: id.clone(),
                name: id.clone(),
                required: true,
                deferrable: false,
                source: None,
                paper: false,
                electronic: false,
                trust: Vec::new(),
                span: e.key_span,
            };
            match &e.value.value {
                Value::Str { text, .. } => m.name = text.clone(),
                Value::Map(_) => {
                    let Some(mut mf) = self.fields(&e.value, "material") else {
                        continue;
                    };
                    if let Some(n) = mf.take_value("name") {
                        m.name = self.string(n, "name").unwrap_or(m.name);
                    }
                    if let Some(n) = mf.take_value("required") {
                        m.required = self.boolean(n, "required").unwrap_or(true);
                    }
                    if let Some(n) = mf.take_value("optional") {
                        m.required = !self.boolean(n, "optional").unwrap_or(false);
                    }
                    if let Some(n) = mf.take_value("deferrable") {
                        m.deferrable = self.boolean(n, "deferrable").unwrap_or(false);
                    }
                    m.source = mf
                        .take_value("source")
                        .and_then(|n| self.string(n, "source"));
                    if let Some(n) = mf.take_value("paper") {
                        m.paper = self.boolean(n, "paper").unwrap_or(false);
                    }
                    if let Some(n) = mf.take_value("electronic") {
                        m.electronic = self.boolean(n, "electronic").unwrap_or(false);
                    }
                    if let Some(n) = mf.take_value("trust") {
                        let items = self.list(n, "trust");
                        m.trust = items
                            .iter()
                            .filter_map(|i| self.one_of(i, "trust", TRUST_LEVELS))
                            .collect();
                    }
                    self.finish(
                        &mf,
                        &schema::names(schema::MATERIAL_KEYS).collect::<Vec<_>>(),
                        "material",
                    );
                }
                _ => {}
            }
            if !m.paper && !m.electronic {
                m.paper = true;
                m.electronic = true;
            }
            out.push(m);
        }
        out
    }

    /// Lowers a sequence of step nodes; `after` is where the last step goes.
    fn sequence(&mut self, nodes: &[Node], after: Target, in_lane: bool) -> Vec<Step> {
        // First pass: lower each node; ends go to the end map but keep their place
        // so that the step before an end falls through to it.
        enum Slot {
            Step(Box<Raw>),
            End(String),
        }
        let mut slots = Vec::new();
        for n in nodes {
            let kind = n
                .as_map()
                .and_then(|m| {
                    m.iter()
                        .find(|e| schema::STEP_KINDS.contains(&e.key.as_str()))
                })
                .map(|e| e.key.clone());
            match kind.as_deref() {
                Some("end") => {
                    if in_lane {
                        self.err(
                            Diagnostic::new(Code::BranchEscapesParallel, n.span, "an `end` inside a parallel branch ends the whole case from one branch")
                                .label("end inside a branch")
                                .help("let the branch finish and decide after the join"),
                        );
                    }
                    if let Some((id, _)) = self.end_step(n) {
                        slots.push(Slot::End(id));
                    }
                }
                _ => {
                    if let Some(raw) = self.step(n) {
                        slots.push(Slot::Step(Box::new(raw)));
                    }
                }
            }
        }
        // Second pass: default `next` is the following slot.
        let mut steps = Vec::new();
        for i in 0..slots.len() {
            let follow = match slots.get(i + 1) {
                Some(Slot::Step(r)) => Some(Target::Step(r.step.id.clone())),
                Some(Slot::End(id)) => Some(Target::End(id.clone())),
                None => match after {
                    Target::Join if !in_lane => None,
                    ref t => Some(t.clone()),
                },
            };
            if let Slot::Step(raw) = &mut slots[i] {
                let needs_next = !matches!(raw.step.kind, StepKind::Decision { .. });
                if needs_next && !raw.explicit_next {
                    raw.step.next = follow.map(|target| Transition {
                        target,
                        span: raw.step.span,
                    });
                }
            }
        }
        for s in slots {
            if let Slot::Step(raw) = s {
                steps.push(raw.step);
            }
        }
        steps
    }

    fn end_step(&mut self, n: &Node) -> Option<(String, Span)> {
        let mut f = self.fields(n, "end")?;
        let id_node = f.take_value("end")?;
        let id = self.ident(id_node, "end id")?;
        let name = f
            .take_value("name")
            .and_then(|v| self.string(v, "name"))
            .unwrap_or_else(|| id.clone());
        let result = f
            .take_value("result")
            .and_then(|v| self.string(v, "result"))
            .unwrap_or_else(|| name.clone());
        self.finish(&f, step_allowed("end"), "end");
        self.define_end(id.clone(), name, result, id_node.span);
        Some((id, id_node.span))
    }

    fn define_end(&mut self, id: String, name: String, result: String, span: Span) {
        if let Some(existing) = self.ends.get_mut(&id) {
            if existing.name == existing.id && name != id {
                // The first mention gave no name; this one does.
                existing.name = name;
                existing.result = result;
                return;
            }
            let same = existing.name == name || name == id;
            if !same {
                let first = existing.span;
                self.err(
                    Diagnostic::new(
                        Code::DuplicateId,
                        span,
                        format!("end `{id}` is defined twice with different names"),
                    )
                    .label("second definition")
                    .related(first, "first defined here")
                    .help("give the two ends different ids, or the same name"),
                );
            }
            return;
        }
        self.ends.insert(
            id.clone(),
            End {
                id,
                name,
                result,
                span,
            },
        );
    }

    fn target(&mut self, node: &Node, what: &str) -> Option<Transition> {
        match &node.value {
            Value::Str { text, .. } => {
                if text == "join" {
                    // `-> join`: finish this branch of the enclosing parallel block.
                    return Some(Transition {
                        target: Target::Join,
                        span: node.span,
                    });
                }
                if let Some(rest) = text.strip_prefix("end ") {
                    let id = rest.trim().to_string();
                    self.define_end(id.clone(), id.clone(), id.clone(), node.span);
                    return Some(Transition {
                        target: Target::End(id),
                        span: node.span,
                    });
                }
                Some(Transition {
                    target: Target::Step(text.clone()),
                    span: node.span,
                })
            }
            Value::Map(_) => {
                let mut f = self.fields(node, what)?;
                let Some(idn) = f.take_value("end") else {
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            node.span,
                            format!("`{what}` must be a step id or an `end`"),
                        )
                        .label("expected a target")
                        .help("write a step id, or `{end: denied, name: 不予许可}`"),
                    );
                    return None;
                };
                let id = self.ident(idn, "end id")?;
                let name = f
                    .take_value("name")
                    .and_then(|v| self.string(v, "name"))
                    .unwrap_or_else(|| id.clone());
                let result = f
                    .take_value("result")
                    .and_then(|v| self.string(v, "result"))
                    .unwrap_or_else(|| name.clone());
                self.finish(&f, &["end", "name", "result"], what);
                self.define_end(id.clone(), name, result, idn.span);
                Some(Transition {
                    target: Target::End(id),
                    span: idn.span,
                })
            }
            _ => {
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        node.span,
                        format!("`{what}` needs a target"),
                    )
                    .label("expected a step id")
                    .help("write a step id such as `review`"),
                );
                None
            }
        }
    }

    fn assignee(&mut self, node: &Node) -> Option<Assignee> {
        let s = self.string(node, "by")?;
        let (department, role) = match s.split_once('.') {
            Some((d, r)) => (d.to_string(), Some(r.to_string())),
            None => (s, None),
        };
        Some(Assignee {
            department,
            role,
            span: node.span,
        })
    }

    fn join(&mut self, node: &Node) -> Option<Join> {
        let s = self.string(node, "join")?;
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["all"] | ["全部"] => Some(Join::All),
            ["any"] | ["任一"] => Some(Join::Any),
            [n, "of", m] => match (n.parse(), m.parse()) {
                (Ok(n), Ok(m)) => Some(Join::NOfM { n, m }),
                _ => self.bad_join(node, &s),
            },
            _ => self.bad_join(node, &s),
        }
    }

    fn bad_join(&mut self, node: &Node, s: &str) -> Option<Join> {
        self.err(
            Diagnostic::new(
                Code::InvalidValue,
                node.span,
                format!("`{s}` is not a join policy"),
            )
            .label("unknown join")
            .help("write `join all`, `join any` or `join 2 of 3`"),
        );
        None
    }

    fn step(&mut self, node: &Node) -> Option<Raw> {
        let mut f = self.fields(node, "step")?;
        let kinds: Vec<&Entry> = f
            .entries
            .iter()
            .filter(|e| schema::STEP_KINDS.contains(&e.key.as_str()))
            .collect();
        let kind_entry = match kinds.as_slice() {
            [one] => *one,
            [] => {
                let help = f
                    .entries
                    .first()
                    .and_then(|e| did_you_mean(&e.key, schema::STEP_KINDS.iter().copied()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| "start the step with its kind: `task`, `auto`, `decision`, `parallel`, `joint_review`, `subflow`, `wait` or `end`".into());
                let at = f.entries.first().map_or(node.span, |e| e.key_span);
                self.err(
                    Diagnostic::new(Code::MissingKey, at, "a step without a kind")
                        .label("no step kind here")
                        .help(help),
                );
                return None;
            }
            [_, second, ..] => {
                self.err(
                    Diagnostic::new(Code::InvalidValue, second.key_span, "a step has two kinds")
                        .label("second kind")
                        .help("split this into two steps"),
                );
                return None;
            }
        };
        let kind_name = kind_entry.key.clone();
        f.take(&kind_name);
        let id = self.ident(&kind_entry.value, "step id")?;
        let id_span = kind_entry.value.span;
        let allowed = step_allowed(&kind_name);
        // Keys common to most steps are read only where they apply; elsewhere
        // they stay unread and are reported as unknown for this kind.
        let applies = |k: &str| allowed.contains(&k);
        let name = f
            .take_value("name")
            .and_then(|n| self.string(n, "name"))
            .unwrap_or_else(|| id.clone());
        let within = if applies("within") {
            f.take_value("within").and_then(|n| self.limit(n, "within"))
        } else {
            None
        };
        let visit = if !applies("visit") {
            None
        } else {
            f.take_value("visit")
        }
        .and_then(|n| self.boolean(n, "visit"))
        .unwrap_or(false);
        let risk_point = if !applies("risk_point") {
            None
        } else {
            f.take_value("risk_point")
        }
        .and_then(|n| self.boolean(n, "risk_point"))
        .unwrap_or(false);
        let starts_clock = if !applies("starts_clock") {
            None
        } else {
            f.take_value("starts_clock")
        }
        .and_then(|n| self.boolean(n, "starts_clock"))
        .unwrap_or(false);
        let decides = if !applies("decides") {
            None
        } else {
            f.take_value("decides")
        }
        .and_then(|n| self.boolean(n, "decides"))
        .unwrap_or(false);
        let special = if !applies("special") {
            None
        } else {
            f.take_value("special")
        }
        .map(|n| self.special(n))
        .unwrap_or_default();
        let mut next = if applies("next") {
            f.take_value("next").and_then(|n| self.target(n, "next"))
        } else {
            None
        };
        let kind = match kind_name.as_str() {
            "task" => {
                let by = match f.take_value("by") {
                    Some(n) => self.assignee(n),
                    None => {
                        self.err(
                            Diagnostic::new(
                                Code::MissingKey,
                                id_span,
                                format!("task `{id}` has no `by`"),
                            )
                            .label("who does this task?")
                            .help("add `by DEPARTMENT` or `by DEPARTMENT.ROLE`"),
                        );
                        None
                    }
                };
                let materials = f
                    .take_value("materials")
                    .map(|n| self.strings(n, "materials"))
                    .unwrap_or_default();
                let mut actions = Vec::new();
                if let Some(on) = f.take_value("on")
                    && let Some(of) = self.fields(on, "on")
                {
                    for e in of.entries {
                        let kind = ActionKind::parse(&e.key);
                        let Some(t) = self.target(&e.value, "on") else {
                            continue;
                        };
                        if kind == ActionKind::Pass {
                            if next.is_some() {
                                self.err(
                                    Diagnostic::new(
                                        Code::DuplicateId,
                                        e.key_span,
                                        "`pass` target given twice (`next` and `on pass`)",
                                    )
                                    .label("second pass target")
                                    .help("keep one of `next` and `on pass`"),
                                );
                            }
                            next = Some(t);
                        } else {
                            actions.push(Action {
                                kind,
                                target: t,
                                span: e.key_span,
                            });
                        }
                    }
                }
                StepKind::Task {
                    by: by.unwrap_or(Assignee {
                        department: String::new(),
                        role: None,
                        span: id_span,
                    }),
                    actions,
                    materials,
                }
            }
            "auto" => {
                let mut set = Vec::new();
                if let Some(s) = f.take_value("set")
                    && let Some(sf) = self.fields(s, "set")
                {
                    for e in sf.entries {
                        if let Some(src) = self.string(&e.value, "set") {
                            set.push(Assign {
                                field: e.key.clone(),
                                expr: Expr::new(&src, e.value.span),
                            });
                        }
                    }
                }
                if set.is_empty() {
                    self.err(
                        Diagnostic::new(
                            Code::MissingKey,
                            id_span,
                            format!("auto step `{id}` sets nothing"),
                        )
                        .label("empty auto step")
                        .help("add `set FIELD = EXPRESSION` (a rhai expression over `data`)"),
                    );
                }
                StepKind::Auto { set }
            }
            "decision" => {
                let mut branches = Vec::new();
                if let Some(w) = f.take_value("when") {
                    let items = self.list(w, "when");
                    for it in items {
                        let Some(mut bf) = self.fields(it, "when") else {
                            continue;
                        };
                        let cond = bf
                            .take_value("if")
                            .and_then(|n| self.string(n, "if").map(|s| (s, n.span)));
                        let to = bf.take_value("to").and_then(|n| self.target(n, "to"));
                        self.finish(&bf, &["if", "to"], "when");
                        match (cond, to) {
                            (Some((source, span)), Some(target)) => branches.push(Branch {
                                condition: Expr::new(&source, span),
                                target,
                            }),
                            _ => self.err(
                                Diagnostic::new(
                                    Code::MissingKey,
                                    it.span,
                                    "a `when` branch needs `if` and `to`",
                                )
                                .label("incomplete branch")
                                .help("write `- if: data.approved\n  to: issue`"),
                            ),
                        }
                    }
                }
                let default = f.take_value("else").and_then(|n| self.target(n, "else"));
                StepKind::Decision { branches, default }
            }
            "parallel" => {
                let lead = f.take_value("lead").and_then(|n| self.string(n, "lead"));
                let join = f
                    .take_value("join")
                    .and_then(|n| self.join(n))
                    .unwrap_or(Join::All);
                let mut lanes = Vec::new();
                if let Some(b) = f.take_value("branches") {
                    let items = self.list(b, "branches");
                    for it in items {
                        if let Some(lane) = self.lane(it) {
                            lanes.push(lane);
                        }
                    }
                }
                StepKind::Parallel { lead, join, lanes }
            }
            "joint_review" => {
                let lead = f.take_value("lead").and_then(|n| self.string(n, "lead"));
                let reports = f
                    .take_value("reports")
                    .map(|n| self.strings(n, "reports"))
                    .unwrap_or_default();
                let reviews = match f.take_value("reviews") {
                    Some(r) => {
                        let items = self.list(r, "reviews");
                        self.sequence_parallel(items)
                    }
                    None => Vec::new(),
                };
                let consolidate = match f.take_value("consolidate") {
                    Some(c) => {
                        let cf = self.fields(c, "consolidate");
                        match cf {
                            Some(mut cf) => {
                                let by = cf.take_value("by").and_then(|n| self.assignee(n));
                                let within = cf
                                    .take_value("within")
                                    .and_then(|n| self.limit(n, "within"));
                                self.finish(&cf, &["by", "within"], "consolidate");
                                by.map(|by| Consolidate { by, within })
                            }
                            None => None,
                        }
                    }
                    None => None,
                };
                let resubmit_within = f
                    .take_value("resubmit_within")
                    .and_then(|n| self.limit(n, "resubmit_within"));
                let consolidate = match consolidate {
                    Some(c) => c,
                    None => {
                        self.err(
                            Diagnostic::new(
                                Code::MissingKey,
                                id_span,
                                format!("joint review `{id}` has no `consolidate` step"),
                            )
                            .label("who writes the consolidated opinion (统一整改意见)?")
                            .help("add `consolidate by DEPARTMENT within 3 workdays`"),
                        );
                        Consolidate {
                            by: Assignee {
                                department: String::new(),
                                role: None,
                                span: id_span,
                            },
                            within: None,
                        }
                    }
                };
                if reviews.is_empty() {
                    self.err(
                        Diagnostic::new(
                            Code::EmptyBlock,
                            id_span,
                            format!("joint review `{id}` has no reviews"),
                        )
                        .label("no reviews")
                        .help("add one `task` per reviewing department inside the block"),
                    );
                }
                StepKind::JointReview {
                    lead,
                    reports,
                    reviews,
                    consolidate,
                    resubmit_within,
                }
            }
            "subflow" => {
                let items = f
                    .take_value("items")
                    .map(|n| self.strings(n, "items"))
                    .unwrap_or_default();
                if items.is_empty() {
                    self.err(
                        Diagnostic::new(
                            Code::MissingKey,
                            id_span,
                            format!("subflow `{id}` starts no items"),
                        )
                        .label("no `items`")
                        .help(
                            "add `items [flow_a, flow_b]`: the flows whose cases this stage starts",
                        ),
                    );
                }
                let join = f
                    .take_value("join")
                    .and_then(|n| self.join(n))
                    .unwrap_or(Join::All);
                let lead = f.take_value("lead").and_then(|n| self.string(n, "lead"));
                let pauses_for = f
                    .take_value("pauses_for")
                    .map(|n| self.strings(n, "pauses_for"))
                    .unwrap_or_default();
                let pauses_for_basis = f
                    .take_value("pauses_for_basis")
                    .and_then(|n| self.string(n, "pauses_for_basis"));
                StepKind::Subflow {
                    lead,
                    items,
                    join,
                    pauses_for,
                    pauses_for_basis,
                }
            }
            "wait" => {
                let timer = f.take_value("for").and_then(|n| self.limit(n, "for"));
                let event = f.take_value("event").and_then(|n| self.string(n, "event"));
                if timer.is_none() && event.is_none() {
                    self.err(
                        Diagnostic::new(Code::MissingKey, id_span, format!("wait step `{id}` waits for nothing"))
                            .label("no `for` or `event`")
                            .help("add `for 5 workdays` (a timer) or `event 缴费完成` (an external event)"),
                    );
                }
                StepKind::Wait { timer, event }
            }
            _ => return None,
        };
        self.finish(&f, allowed, &kind_name);
        let explicit_next = next.is_some();
        Some(Raw {
            step: Step {
                id,
                name,
                kind,
                within,
                visit,
                risk_point,
                starts_clock,
                decides,
                special,
                next,
                span: id_span,
            },
            explicit_next,
        })
    }

    /// Review steps of a joint review: each one is its own branch, ending at the join.
    fn sequence_parallel(&mut self, nodes: &[Node]) -> Vec<Step> {
        let mut out = Vec::new();
        for n in nodes {
            if let Some(mut raw) = self.step(n) {
                if !raw.explicit_next {
                    raw.step.next = Some(Transition {
                        target: Target::Join,
                        span: raw.step.span,
                    });
                }
                out.push(raw.step);
            }
        }
        out
    }

    fn lane(&mut self, node: &Node) -> Option<Lane> {
        if node.get("branch").is_some() {
            let mut f = self.fields(node, "branch")?;
            let idn = f.take_value("branch")?;
            let id = self.ident(idn, "branch id")?;
            let name = f
                .take_value("name")
                .and_then(|n| self.string(n, "name"))
                .unwrap_or_else(|| id.clone());
            let steps = match f.take_value("steps") {
                Some(s) => {
                    let items = self.list(s, "steps");
                    self.sequence(items, Target::Join, true)
                }
                None => Vec::new(),
            };
            self.finish(&f, &["branch", "name", "steps"], "branch");
            if steps.is_empty() {
                self.err(
                    Diagnostic::new(
                        Code::EmptyBlock,
                        idn.span,
                        format!("branch `{id}` has no steps"),
                    )
                    .label("empty branch")
                    .help("add the steps this branch runs"),
                );
            }
            return Some(Lane {
                id,
                name,
                steps,
                span: idn.span,
            });
        }
        let steps = self.sequence(std::slice::from_ref(node), Target::Join, true);
        let first = steps.first()?;
        Some(Lane {
            id: first.id.clone(),
            name: first.name.clone(),
            span: first.span,
            steps,
        })
    }

    fn special(&mut self, node: &Node) -> Vec<String> {
        let items = self.list(node, "special");
        let mut out = Vec::new();
        for it in items {
            let Some(s) = self.string(it, "special") else {
                continue;
            };
            let known =
                SPECIAL_EXTENSION.contains(&s.as_str()) || SPECIAL_SUSPENDING.contains(&s.as_str());
            if !known {
                let help = match did_you_mean(
                    &s,
                    SPECIAL_EXTENSION.iter().chain(SPECIAL_SUSPENDING).copied(),
                ) {
                    Some(m) => format!("did you mean `{m}`?"),
                    None => format!(
                        "special procedures: A {} (extension); B {} (suspend the clock)",
                        SPECIAL_EXTENSION.join(", "),
                        SPECIAL_SUSPENDING.join(", ")
                    ),
                };
                self.err(
                    Diagnostic::new(
                        Code::InvalidValue,
                        it.span,
                        format!("`{s}` is not a special procedure"),
                    )
                    .label("unknown special procedure")
                    .help(help),
                );
                continue;
            }
            out.push(s);
        }
        out
    }
}

impl Default for Lower {
    fn default() -> Self {
        Self::new()
    }
}

//! Supervision rule files (电子监察规则): YAML (`*.rules.yaml`) or DSL
//! (`*.rules`), read into one `Node` shape and lowered to one IR, with the same
//! diagnostics as flows.
//!
//! ```text
//! rule case_deadline "办件时效" {
//!   class timeliness  subtype case_overdue  scope case
//!   notice when promised_left <= 2
//!   yellow when promised_left < 0
//!   red when statutory_left < 0
//!   schedule ["on events", "at 00:00 on workdays"]
//!   order { to responsible  within 5 workdays }
//!   notify [supervisor]
//! }
//! ```
//!
//! Why this file is long: the rule language's two readers, its lowering and
//! its checks share one diagnostics vocabulary; split as the flow language is
//! (text / lower / validate) when the rule language grows again.

use crate::Syntax;
use crate::diag::{Code, Diagnostic, Report, did_you_mean};
use crate::ir::{Expr, Limit, Unit};
use crate::node::{Entry, Node};
use crate::span::{SourceFile, Span};
use crate::text::Atom;
use serde::Serialize;

/// A class: its key, its Chinese name, and its sub-types (key, Chinese name).
pub type Class = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The five classes of supervision indicators, with their sub-types.
pub const CLASSES: &[Class] = &[
    (
        "timeliness",
        "时效异常",
        &[
            ("approaching", "临近时限预警"),
            ("step_overdue", "环节超期"),
            ("case_overdue", "办理超期"),
            ("acceptance_overdue", "受理超期：逾期未告知补正，视为受理"),
            (
                "issue_overdue",
                "颁发、送达证件超期（行政许可法第四十四条）",
            ),
            ("special_overrun", "特别程序超期"),
            ("prereview_overdue", "网上预审超期"),
            ("reply_overdue", "督办、投诉回复超期"),
        ],
    ),
    (
        "process",
        "流程异常",
        &[
            ("suspended", "过程异常：挂起"),
            ("terminated", "结果异常：中止"),
            ("not_accepted", "结果异常：不予受理"),
            ("denied", "决定异常：不予许可"),
            ("returned", "退回次数异常"),
            ("visits", "跑动次数超出办理模式上限（最多跑一次）"),
        ],
    ),
    (
        "content",
        "内容异常",
        &[
            ("incomplete", "完整性：字段、材料或附件为空"),
            ("inconsistent", "一致性：前后环节数据不一致"),
        ],
    ),
    (
        "fee",
        "裁量（收费）异常",
        &[
            ("basis_mismatch", "收费依据与事项库不一致"),
            ("amount_mismatch", "收费金额与标准不一致"),
        ],
    ),
    (
        "integrity",
        "廉政风险点",
        &[
            ("risk_point", "风险点环节、人员"),
            ("complaints", "投诉关联"),
            ("repeated_anomalies", "反复异常"),
        ],
    ),
];

/// What a rule looks at, and the objects its condition may name with a
/// `name.field` path. The case's own figures are plain variables
/// (`promised_left`, `statutory_left`, `status`, `returns` …; see
/// docs/rule-language.md) — `case` is a rhai keyword.
pub const SCOPES: &[(&str, &[&str])] = &[
    ("case", &["item", "data", "fee", "materials", "staff"]),
    (
        "step",
        &["item", "data", "fee", "materials", "staff", "step"],
    ),
    ("special", &["item", "data", "staff", "special"]),
    ("order", &["order"]),
    ("complaint", &["complaint"]),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 预警
    Notice,
    /// 黄牌
    Yellow,
    /// 红牌
    Red,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "notice" | "预警" | "warning" => Level::Notice,
            "yellow" | "黄牌" => Level::Yellow,
            "red" | "红牌" => Level::Red,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Notice => "notice",
            Level::Yellow => "yellow",
            Level::Red => "red",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// Evaluated when a case of the scope changes.
    OnEvents,
    /// Every N minutes.
    Every { minutes: u32 },
    /// At HH:MM, on working days only or every day.
    At {
        hour: u32,
        minute: u32,
        workdays: bool,
    },
}

impl Schedule {
    pub fn parse(s: &str) -> Option<Schedule> {
        let s = s.trim();
        if s == "on events" || s == "on_events" || s == "事件触发" {
            return Some(Schedule::OnEvents);
        }
        if let Some(rest) = s.strip_prefix("every ") {
            let rest = rest.trim();
            let (num, unit) = rest.split_at(
                rest.find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(rest.len()),
            );
            let n: u32 = num.parse().ok().filter(|n| *n > 0)?;
            let minutes = match unit.trim() {
                "m" | "min" | "minute" | "minutes" => n,
                "h" | "hour" | "hours" => n.checked_mul(60)?,
                _ => return None,
            };
            return Some(Schedule::Every { minutes });
        }
        if let Some(rest) = s.strip_prefix("at ") {
            let (time, days) = match rest.split_once(" on ") {
                Some((t, d)) => (t.trim(), Some(d.trim())),
                None => (rest.trim(), None),
            };
            let (h, m) = time.split_once(':')?;
            let (hour, minute): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            if hour > 23 || minute > 59 {
                return None;
            }
            let workdays = match days {
                None | Some("every day") | Some("days") => false,
                Some("workdays") | Some("working days") | Some("工作日") => true,
                Some(_) => return None,
            };
            return Some(Schedule::At {
                hour,
                minute,
                workdays,
            });
        }
        None
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Order {
    /// Who must reply: `responsible` (the department that handles the step or case) or a department name.
    pub to: String,
    pub within: Limit,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub id: String,
    pub name: String,
    pub class: String,
    pub subtype: String,
    pub scope: String,
    /// Conditions by card level, lowest first; a single-level rule has one.
    pub levels: Vec<(Level, Expr)>,
    pub schedule: Vec<Schedule>,
    pub order: Option<Order>,
    pub notify: Vec<String>,
    pub description: Option<String>,
    #[serde(skip)]
    pub span: Span,
    #[serde(skip)]
    pub id_span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub struct LoadedRules {
    pub rules: Option<RuleSet>,
    pub report: Report,
}

impl LoadedRules {
    pub fn has_errors(&self) -> bool {
        self.report.has_errors()
    }
}

/// `.rules` files are DSL; `.rules.yaml`/`.rules.yml` are YAML.
pub fn is_rule_file(name: &str) -> bool {
    name.ends_with(".rules") || name.ends_with(".rules.yaml") || name.ends_with(".rules.yml")
}

/// Loads a rule file.
pub fn load_rules(name: &str, text: &str, syntax: Syntax) -> LoadedRules {
    let file = SourceFile::new(name, text);
    let (node, mut diags) = match syntax {
        Syntax::Yaml => match crate::yaml::parse(text) {
            Ok(n) => (Some(n), Vec::new()),
            Err(d) => (
                None,
                vec![Diagnostic::new(Code::RuleSyntax, d.span, d.message).label("here")],
            ),
        },
        Syntax::Dsl => read_dsl(text),
    };
    let rules = node.map(|n| {
        let mut l = Lower { diags: Vec::new() };
        let set = l.file(&n, text.len());
        diags.append(&mut l.diags);
        set
    });
    if let Some(set) = &rules {
        check(set, &file, &mut diags);
    }
    let has_errors = diags.iter().any(Diagnostic::is_error);
    LoadedRules {
        rules: if has_errors { None } else { rules },
        report: Report::new(file, diags),
    }
}

pub fn load_rules_path(path: &std::path::Path) -> LoadedRules {
    let name = path.display().to_string();
    let syntax = if name.ends_with(".rules") {
        Syntax::Dsl
    } else {
        Syntax::Yaml
    };
    match std::fs::read_to_string(path) {
        Ok(text) => load_rules(&name, &text, syntax),
        Err(e) => LoadedRules {
            rules: None,
            report: Report::new(
                SourceFile::new(name, ""),
                vec![Diagnostic::new(
                    Code::Io,
                    Span::new(0, 0),
                    format!("cannot read the file: {e}"),
                )],
            ),
        },
    }
}

// ---------------------------------------------------------------- DSL reader

pub(crate) const DSL_KEYS: &[&str] = &[
    "class",
    "subtype",
    "scope",
    "severity",
    "when",
    "notice",
    "yellow",
    "red",
    "schedule",
    "order",
    "notify",
    "description",
];

fn str_node(a: &Atom) -> Option<Node> {
    match a {
        Atom::Word(w, s) | Atom::Num(w, s) => Some(Node::str(w.clone(), *s)),
        Atom::Str(t, s) => Some(Node::quoted(t.clone(), *s)),
        _ => None,
    }
}

fn list_node(a: &Atom) -> Option<Node> {
    match a {
        Atom::List(items, s) => Some(Node::list(items.iter().filter_map(str_node).collect(), *s)),
        other => str_node(other).map(|n| {
            let s = n.span;
            Node::list(vec![n], s)
        }),
    }
}

fn read_dsl(text: &str) -> (Option<Node>, Vec<Diagnostic>) {
    let atoms = match crate::text::atoms(text) {
        Ok(a) => a,
        Err(d) => {
            return (
                None,
                vec![
                    Diagnostic::new(
                        Code::RuleSyntax,
                        d.span,
                        d.message.replace("flow syntax", "rule syntax"),
                    )
                    .label(d.label),
                ],
            );
        }
    };
    let mut diags = Vec::new();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < atoms.len() {
        let a = &atoms[i];
        if a.word_is("rule") {
            let start = a.span();
            let id = atoms.get(i + 1).and_then(str_node);
            let (name, block) = match (atoms.get(i + 2), atoms.get(i + 3)) {
                (Some(Atom::Str(n, s)), Some(Atom::Block(b, bs))) => {
                    (Some(Node::quoted(n.clone(), *s)), Some((b, *bs)))
                }
                (Some(Atom::Block(b, bs)), _) => (None, Some((b, *bs))),
                _ => (None, None),
            };
            let Some((body, body_span)) = block else {
                diags.push(
                    Diagnostic::new(
                        Code::RuleSyntax,
                        start,
                        "a rule is `rule ID \"name\" { … }`",
                    )
                    .label("incomplete rule"),
                );
                break;
            };
            let mut entries = Vec::new();
            if let Some(id) = id {
                entries.push(Entry::new("rule", id.span, id));
            }
            if let Some(n) = name {
                entries.push(Entry::new("name", n.span, n));
            }
            let mut ladder = Vec::new();
            read_rule_body(body, &mut entries, &mut ladder, &mut diags);
            if !ladder.is_empty() {
                let s = ladder.first().map_or(body_span, |e: &Entry| e.key_span);
                entries.push(Entry::new("levels", s, Node::map(ladder, s)));
            }
            rules.push(Node::map(entries, start.to(body_span)));
            i += if matches!(atoms.get(i + 2), Some(Atom::Str(..))) {
                4
            } else {
                3
            };
        } else {
            diags.push(
                Diagnostic::new(
                    Code::RuleSyntax,
                    a.span(),
                    format!("expected `rule`, found {}", a.describe()),
                )
                .label("here")
                .help("a rule file is a list of `rule ID \"name\" { … }` blocks"),
            );
            i += 1;
        }
    }
    let span = Span::new(0, text.len());
    (
        Some(Node::map(
            vec![Entry::new("rules", span, Node::list(rules, span))],
            span,
        )),
        diags,
    )
}

fn read_rule_body(
    body: &[Atom],
    entries: &mut Vec<Entry>,
    ladder: &mut Vec<Entry>,
    diags: &mut Vec<Diagnostic>,
) {
    let mut i = 0;
    while i < body.len() {
        let a = &body[i];
        match a {
            Atom::When {
                cond,
                cond_span,
                span,
            } => {
                entries.push(Entry::new(
                    "when",
                    *span,
                    Node::quoted(cond.clone(), *cond_span),
                ));
                i += 1;
            }
            Atom::Word(w, ws)
                if ["notice", "yellow", "red", "预警", "黄牌", "红牌"].contains(&w.as_str()) =>
            {
                match body.get(i + 1) {
                    Some(Atom::When {
                        cond, cond_span, ..
                    }) => {
                        ladder.push(Entry::new(
                            w.clone(),
                            *ws,
                            Node::quoted(cond.clone(), *cond_span),
                        ));
                        i += 2;
                    }
                    _ => {
                        diags.push(
                            Diagnostic::new(
                                Code::RuleSyntax,
                                *ws,
                                format!("`{w}` needs a condition: `{w} when …`"),
                            )
                            .label("no `when`"),
                        );
                        i += 1;
                    }
                }
            }
            Atom::Word(w, ws) => {
                let value = body.get(i + 1);
                let node = match (w.as_str(), value) {
                    ("schedule" | "notify", Some(v)) => list_node(v),
                    ("order", Some(Atom::Block(b, bs))) => {
                        let mut es = Vec::new();
                        let mut j = 0;
                        while j < b.len() {
                            match (&b[j], b.get(j + 1), b.get(j + 2)) {
                                (
                                    Atom::Word(k, ks),
                                    Some(Atom::Num(n, ns)),
                                    Some(Atom::Word(u, us)),
                                ) if k == "within" => {
                                    es.push(Entry::new(
                                        "within",
                                        *ks,
                                        Node::str(format!("{n} {u}"), ns.to(*us)),
                                    ));
                                    j += 3;
                                }
                                (Atom::Word(k, ks), Some(v), _) => {
                                    if let Some(n) = str_node(v) {
                                        es.push(Entry::new(k.clone(), *ks, n));
                                    }
                                    j += 2;
                                }
                                (other, _, _) => {
                                    diags.push(
                                        Diagnostic::new(
                                            Code::RuleSyntax,
                                            other.span(),
                                            format!("unexpected {} in `order`", other.describe()),
                                        )
                                        .help(
                                            "write `order { to responsible  within 5 workdays }`",
                                        ),
                                    );
                                    j += 1;
                                }
                            }
                        }
                        Some(Node::map(es, *bs))
                    }
                    (_, Some(v)) => str_node(v),
                    (_, None) => None,
                };
                match node {
                    Some(n) => {
                        entries.push(Entry::new(w.clone(), *ws, n));
                        i += 2;
                    }
                    None => {
                        let mut d =
                            Diagnostic::new(Code::RuleSyntax, *ws, format!("`{w}` needs a value"))
                                .label("no value");
                        if !DSL_KEYS.contains(&w.as_str())
                            && let Some(s) = did_you_mean(w, DSL_KEYS.iter().copied())
                        {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        diags.push(d);
                        i += 1;
                    }
                }
            }
            other => {
                diags.push(
                    Diagnostic::new(
                        Code::RuleSyntax,
                        other.span(),
                        format!("unexpected {}", other.describe()),
                    )
                    .label("here")
                    .help(format!("a rule takes: {}", DSL_KEYS.join(", "))),
                );
                i += 1;
            }
        }
    }
}

// ---------------------------------------------------------------- lowering

const RULE_KEYS: &[&str] = &[
    "rule",
    "name",
    "class",
    "subtype",
    "scope",
    "severity",
    "when",
    "levels",
    "schedule",
    "order",
    "notify",
    "description",
];

struct Lower {
    diags: Vec<Diagnostic>,
}

impl Lower {
    fn err(&mut self, code: Code, span: Span, msg: impl Into<String>) -> &mut Diagnostic {
        self.diags
            .push(Diagnostic::new(code, span, msg).label("here"));
        let n = self.diags.len() - 1;
        &mut self.diags[n]
    }

    fn file(&mut self, n: &Node, end: usize) -> RuleSet {
        let mut rules = Vec::new();
        let list = match n.get("rules") {
            Some(l) => l,
            None => {
                self.err(
                    Code::RuleMissingKey,
                    Span::new(end, end),
                    "a rule file has no `rules`",
                )
                .help = Some("write `rules:` followed by a list of rules".into());
                return RuleSet { rules };
            }
        };
        for e in n.as_map().unwrap_or(&[]) {
            if e.key != "rules" {
                self.err(
                    Code::RuleUnknownKey,
                    e.key_span,
                    format!("unknown key `{}`", e.key),
                )
                .help = Some("a rule file has one key, `rules`".into());
            }
        }
        let Some(items) = list.as_list() else {
            self.err(Code::RuleInvalidValue, list.span, "`rules` must be a list");
            return RuleSet { rules };
        };
        for item in items {
            if let Some(r) = self.rule(item) {
                rules.push(r);
            }
        }
        RuleSet { rules }
    }

    fn text(&mut self, n: &Node, key: &str) -> Option<(String, Span)> {
        match n.get(key) {
            Some(v) => match v.as_str() {
                Some(s) if !s.trim().is_empty() => Some((s.to_string(), v.span)),
                _ => {
                    self.err(
                        Code::RuleInvalidValue,
                        v.span,
                        format!("`{key}` must be text, not {}", v.kind_name()),
                    );
                    None
                }
            },
            None => None,
        }
    }

    fn required(&mut self, n: &Node, key: &str, hint: &str) -> Option<(String, Span)> {
        let v = self.text(n, key);
        if v.is_none() && n.get(key).is_none() {
            let at = Span::new(n.span.start, n.span.start);
            self.err(Code::RuleMissingKey, at, format!("the rule has no `{key}`"))
                .help = Some(hint.into());
        }
        v
    }

    fn rule(&mut self, n: &Node) -> Option<Rule> {
        let Some(entries) = n.as_map() else {
            self.err(
                Code::RuleInvalidValue,
                n.span,
                "a rule is a map of its elements",
            );
            return None;
        };
        for e in entries {
            if !RULE_KEYS.contains(&e.key.as_str()) {
                let d = self.err(
                    Code::RuleUnknownKey,
                    e.key_span,
                    format!("unknown rule key `{}`", e.key),
                );
                d.help = Some(match did_you_mean(&e.key, RULE_KEYS.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("a rule takes: {}", RULE_KEYS.join(", ")),
                });
            }
        }
        let id = self.required(n, "rule", "give the rule an id: `rule: case_deadline`");
        let name = self.required(n, "name", "give the rule a name: `name: 办件时效`");
        let class = self.required(
            n,
            "class",
            "one of timeliness, process, content, fee, integrity",
        );
        let subtype = self.required(n, "subtype", "the class's sub-type, e.g. `case_overdue`");
        let scope = self.required(n, "scope", "one of case, step, special, order, complaint");
        let description = self.text(n, "description").map(|(s, _)| s);
        // Class, sub-type, scope.
        if let Some((c, cs)) = &class {
            match CLASSES.iter().find(|(k, ..)| k == c) {
                None => {
                    let d = self.err(Code::RuleInvalidValue, *cs, format!("unknown class `{c}`"));
                    d.help = Some(match did_you_mean(c, CLASSES.iter().map(|(k, ..)| *k)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "the classes are timeliness (时效), process (流程), content (内容), fee (裁量/收费), integrity (廉政风险)".into(),
                    });
                }
                Some((_, _, subs)) => {
                    if let Some((st, ss)) = &subtype
                        && !subs.iter().any(|(k, _)| k == st)
                    {
                        let names: Vec<&str> = subs.iter().map(|(k, _)| *k).collect();
                        let d = self.err(
                            Code::RuleInvalidValue,
                            *ss,
                            format!("`{st}` is not a sub-type of {c}"),
                        );
                        d.help = Some(match did_you_mean(st, names.iter().copied()) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => format!("{c} sub-types: {}", names.join(", ")),
                        });
                    }
                }
            }
        }
        if let Some((sc, ss)) = &scope
            && !SCOPES.iter().any(|(k, _)| k == sc)
        {
            let d = self.err(Code::RuleInvalidValue, *ss, format!("unknown scope `{sc}`"));
            d.help = Some("scopes: case, step, special, order, complaint".into());
        }
        // Levels: `when` with `severity`, or a ladder.
        let mut levels = Vec::new();
        match (n.get("when"), n.get("levels")) {
            (Some(w), None) => {
                let sev = match self.text(n, "severity") {
                    Some((s, sp)) => match Level::parse(&s) {
                        Some(l) => Some(l),
                        None => {
                            self.err(
                                Code::RuleInvalidValue,
                                sp,
                                format!("unknown severity `{s}`"),
                            )
                            .help = Some("notice (预警), yellow (黄牌) or red (红牌)".into());
                            None
                        }
                    },
                    None => {
                        let at = Span::new(w.span.start, w.span.start);
                        self.err(Code::RuleMissingKey, at, "a rule with `when` needs a `severity`").help =
                            Some("add `severity: yellow`, or give a ladder: `levels: {notice: …, yellow: …, red: …}`".into());
                        None
                    }
                };
                // Without a valid severity the rule is in error anyway; keep the
                // condition so its own problems are reported too.
                if let Some(c) = w.as_str() {
                    levels.push((sev.unwrap_or(Level::Yellow), Expr::new(c, w.span)));
                }
            }
            (None, Some(ladder)) => {
                for e in ladder.as_map().unwrap_or(&[]) {
                    match (Level::parse(&e.key), e.value.as_str()) {
                        (Some(l), Some(c)) => levels.push((l, Expr::new(c, e.value.span))),
                        (None, _) => {
                            self.err(
                                Code::RuleInvalidValue,
                                e.key_span,
                                format!("unknown card level `{}`", e.key),
                            )
                            .help =
                                Some("levels are notice (预警), yellow (黄牌), red (红牌)".into());
                        }
                        (_, None) => {
                            self.err(
                                Code::RuleInvalidValue,
                                e.value.span,
                                "a level's condition is a rhai expression",
                            );
                        }
                    }
                }
                levels.sort_by_key(|(l, _)| *l);
            }
            (Some(w), Some(_)) => {
                self.err(
                    Code::RuleInvalidValue,
                    w.span,
                    "a rule has either `when` (one level) or `levels` (a ladder), not both",
                );
            }
            (None, None) => {
                let at = Span::new(n.span.start, n.span.start);
                self.err(Code::RuleMissingKey, at, "the rule has no condition").help =
                    Some("add `when: …` with a `severity`, or `levels:` with notice/yellow/red conditions".into());
            }
        }
        // Schedule, order, notify.
        let mut schedule = Vec::new();
        match n.get("schedule") {
            None => schedule.push(Schedule::OnEvents),
            Some(s) => {
                let items: Vec<&Node> = match s.as_list() {
                    Some(l) => l.iter().collect(),
                    None => vec![s],
                };
                for it in items {
                    match it.as_str().and_then(Schedule::parse) {
                        Some(x) => schedule.push(x),
                        None => {
                            self.err(Code::RuleInvalidValue, it.span, "unknown schedule").help = Some(
                                "write `on events`, `every 1h`, `every 30m` or `at 09:00 on workdays`".into(),
                            );
                        }
                    }
                }
            }
        }
        let order = match n.get("order") {
            None => None,
            Some(o) => {
                let to = o
                    .get("to")
                    .and_then(Node::as_str)
                    .unwrap_or("responsible")
                    .to_string();
                let within = match o.get("within") {
                    None => Some(Limit {
                        value: 5,
                        unit: Unit::Workdays,
                        span: o.span,
                    }),
                    Some(w) => match w.as_str().and_then(parse_limit) {
                        Some((value, unit)) => Some(Limit {
                            value,
                            unit,
                            span: w.span,
                        }),
                        None => {
                            self.err(
                                Code::RuleInvalidValue,
                                w.span,
                                "a reply limit is `N workdays|days|hours`",
                            );
                            None
                        }
                    },
                };
                within.map(|within| Order { to, within })
            }
        };
        let notify = match n.get("notify") {
            None => Vec::new(),
            Some(v) => match v.as_list() {
                Some(l) => l
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                None => v.as_str().map(|s| vec![s.to_string()]).unwrap_or_default(),
            },
        };
        let (id, id_span) = id?;
        Some(Rule {
            id,
            id_span,
            name: name?.0,
            class: class?.0,
            subtype: subtype?.0,
            scope: scope?.0,
            levels,
            schedule,
            order,
            notify,
            description,
            span: n.span,
        })
    }
}

fn parse_limit(s: &str) -> Option<(u32, Unit)> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let value = s[..split].parse().ok()?;
    Some((value, Unit::parse(s[split..].trim())?))
}

// ---------------------------------------------------------------- checks

fn check(set: &RuleSet, file: &SourceFile, diags: &mut Vec<Diagnostic>) {
    let engine = crate::rhai_sandbox::engine();
    let mut seen: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
    for r in &set.rules {
        if let Some(first) = seen.insert(&r.id, r.id_span) {
            diags.push(
                Diagnostic::new(
                    Code::RuleDuplicateId,
                    r.id_span,
                    format!("two rules are called `{}`", r.id),
                )
                .label("second rule")
                .related(first, "first rule")
                .help("rule ids are unique within a file"),
            );
        }
        let facts = SCOPES
            .iter()
            .find(|(k, _)| *k == r.scope)
            .map_or(&[][..], |(_, f)| *f);
        for (_, e) in &r.levels {
            if let Err(err) = engine.compile_expression(&e.raw.0) {
                let (msg, pos) = crate::rhai_sandbox::describe(&err);
                let at = crate::rhai_sandbox::map_position(file, e.span, &e.raw.0, pos);
                diags.push(
                    Diagnostic::new(Code::RuleRhaiSyntax, at, format!("the condition does not compile: {msg}"))
                        .label("here")
                        .help("conditions are rhai expressions over the scope's facts, e.g. `promised_left < 0`"),
                );
                continue;
            }
            // Every `name.` at the start of a path must be a fact of the scope
            // (or a closure's parameter: `|x| x.len()`).
            let params = closure_params(&e.raw.0);
            for (root, offset) in roots(&e.raw.0) {
                if !facts.contains(&root.as_str()) && !params.contains(&root) {
                    let start = e.span.start + offset;
                    let mut d = Diagnostic::new(
                        Code::RuleUnknownFact,
                        Span::new(start, start + root.len()),
                        format!("`{root}` is not a fact of scope `{}`", r.scope),
                    )
                    .label("unknown fact");
                    d = d.help(match did_you_mean(&root, facts.iter().copied()) {
                        Some(s) => {
                            format!("did you mean `{s}`? (see docs/rule-language.md for the facts)")
                        }
                        None => format!("scope `{}` provides: {}", r.scope, facts.join(", ")),
                    });
                    diags.push(d);
                }
            }
        }
    }
}

/// The parameter names of the closures in an expression (`|a, b| …`).
fn closure_params(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let parts: Vec<&str> = src.split('|').collect();
    // Between two bars: a parameter list when it is only identifiers and commas.
    for p in parts
        .iter()
        .skip(1)
        .step_by(2)
        .take(parts.len().saturating_sub(1) / 2)
    {
        let names: Vec<&str> = p.split(',').map(str::trim).collect();
        if names
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || c == '_'))
        {
            out.extend(names.iter().map(|n| n.to_string()));
        }
    }
    out
}

/// The identifiers that start a `name.field` path in an expression (outside
/// strings), with their byte offsets.
fn roots(src: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = src.char_indices().collect();
    let mut i = 0;
    let mut in_str: Option<char> = None;
    while i < chars.len() {
        let (off, c) = chars[i];
        if let Some(q) = in_str {
            if c == q {
                in_str = None;
            }
            i += 1;
            continue;
        }
        if c == '"' || c == '\'' || c == '`' {
            in_str = Some(c);
            i += 1;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let prev = if i == 0 { None } else { Some(chars[i - 1].1) };
            let start = i;
            while i < chars.len() && (chars[i].1.is_alphanumeric() || chars[i].1 == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().map(|(_, c)| *c).collect();
            let after_dot = prev == Some('.');
            if !after_dot && i < chars.len() && chars[i].1 == '.' {
                out.push((word, off));
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSL: &str = r#"// 办件时效
rule case_deadline "办件时效" {
  class timeliness  subtype case_overdue  scope case
  notice when promised_left <= 2
  yellow when promised_left < 0
  red when statutory_left < 0
  schedule ["on events", "at 00:00 on workdays"]
  order { to responsible  within 5 workdays }
  notify [supervisor]
}
"#;

    const YAML: &str = r#"rules:
  - rule: case_deadline
    name: 办件时效
    class: timeliness
    subtype: case_overdue
    scope: case
    levels:
      notice: promised_left <= 2
      yellow: promised_left < 0
      red: statutory_left < 0
    schedule: [on events, at 00:00 on workdays]
    order: { to: responsible, within: 5 workdays }
    notify: [supervisor]
"#;

    #[test]
    fn both_syntaxes_give_one_ir() {
        let d = load_rules("a.rules", DSL, Syntax::Dsl);
        let y = load_rules("a.rules.yaml", YAML, Syntax::Yaml);
        assert!(!d.has_errors(), "{}", d.report.render(false));
        assert!(!y.has_errors(), "{}", y.report.render(false));
        assert_eq!(d.rules, y.rules);
        let r = &d.rules.unwrap().rules[0];
        assert_eq!(r.levels.len(), 3);
        assert_eq!(
            r.schedule[1],
            Schedule::At {
                hour: 0,
                minute: 0,
                workdays: true
            }
        );
    }

    #[test]
    fn mistakes_are_reported_with_places() {
        let bad = DSL
            .replace("timeliness", "timelines")
            .replace("red when statutory_left < 0", "red when iten.statutory > 0")
            .replace("subtype case_overdue", "subtype case_overdue  colour red");
        let l = load_rules("a.rules", &bad, Syntax::Dsl);
        let json = l.report.to_json();
        let codes: Vec<(&str, usize, usize)> =
            json.iter().map(|d| (d.code, d.line, d.column)).collect();
        assert!(codes.contains(&("rule::invalid_value", 3, 9)), "{codes:?}");
        assert!(codes.contains(&("rule::unknown_fact", 6, 12)), "{codes:?}");
        assert!(
            codes
                .iter()
                .any(|c| c.0 == "rule::unknown_key" || c.0 == "rule::syntax"),
            "{codes:?}"
        );
        let help: Vec<_> = json.iter().filter_map(|d| d.help.clone()).collect();
        assert!(
            help.iter().any(|h| h.contains("did you mean `timeliness`")),
            "{help:?}"
        );
        assert!(
            help.iter().any(|h| h.contains("did you mean `item`")),
            "{help:?}"
        );
    }
}

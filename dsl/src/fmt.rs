//! Prints the IR in canonical layout, in either syntax.
//!
//! Comments are kept: each full-line comment travels with the step, end,
//! department or material that follows it, and an end-of-line comment with the
//! element whose line it is on (printed on the line before it). Comments at the
//! top of the file stay at the top.
//!
//! Why this file is long: one printer for both syntaxes and every element of
//! a flow, with the comments carried along; the layout rules of the two
//! syntaxes must agree, so they are kept side by side.

use crate::Syntax;
use crate::ir::*;
use crate::span::SourceFile;
use std::collections::HashMap;
use std::fmt::Write;

/// Prints `flow` in `syntax`; `source` supplies the comments to keep.
pub fn print(flow: &Flow, syntax: Syntax, source: &SourceFile) -> String {
    let comments = Comments::collect(flow, source);
    let mut p = Printer {
        out: String::new(),
        comments,
        syntax,
    };
    match syntax {
        Syntax::Dsl => p.dsl(flow),
        Syntax::Yaml => p.yaml(flow),
    }
    p.out
}

/// Prints without comments.
pub fn print_plain(flow: &Flow, syntax: Syntax) -> String {
    print(flow, syntax, &SourceFile::new("", ""))
}

#[derive(Default)]
struct Comments {
    header: Vec<String>,
    by_anchor: HashMap<String, Vec<String>>,
    trailer: Vec<String>,
}

impl Comments {
    fn collect(flow: &Flow, src: &SourceFile) -> Comments {
        let text = &*src.text;
        if text.is_empty() {
            return Comments::default();
        }
        let yaml = !src.name.ends_with(".flow");
        let mut anchors: Vec<(usize, String)> = Vec::new();
        for s in flow.all_steps() {
            anchors.push((src.line_col(s.span.start).0, format!("step:{}", s.id)));
        }
        let lines: Vec<&str> = text.lines().collect();
        let line_text = |n: usize| {
            lines
                .get(n.saturating_sub(1))
                .map_or("", |l| l.trim_start())
        };
        for e in flow.ends.values() {
            // Only ends written as their own statement anchor comments; an
            // inline `-> end x` sits inside another step's body.
            let n = src.line_col(e.span.start).0;
            let l = line_text(n);
            if l.starts_with("end ") || l.starts_with("- end:") {
                anchors.push((n, format!("end:{}", e.id)));
            }
        }
        for (i, l) in lines.iter().enumerate() {
            let l = l.trim_start();
            for sec in ["item", "departments", "materials", "steps:"] {
                if l.starts_with(sec) {
                    let key = if sec == "item" {
                        "item".to_string()
                    } else {
                        format!("sec:{}", sec.trim_end_matches(':'))
                    };
                    anchors.push((i + 1, key));
                }
            }
        }
        for d in &flow.departments {
            anchors.push((src.line_col(d.span.start).0, format!("dept:{}", d.id)));
        }
        for m in &flow.materials {
            anchors.push((src.line_col(m.span.start).0, format!("mat:{}", m.id)));
        }
        anchors.sort();
        // The item block's line range: comments inside it stay with the item.
        let item_start = anchors.iter().find(|(_, a)| a == "item").map(|(l, _)| *l);
        let item_end = item_start.map(|start| {
            let mut depth = 0i32;
            for (i, l) in lines.iter().enumerate().skip(start - 1) {
                if yaml {
                    if i + 1 > start && !l.is_empty() && !l.starts_with([' ', '#', '\t']) {
                        return i;
                    }
                } else {
                    let code = crate::span::strip_line_comment(l);
                    depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
                    if depth <= 0 && code.contains('}') {
                        return i + 1;
                    }
                }
            }
            lines.len()
        });
        let in_item =
            |n: usize| matches!((item_start, item_end), (Some(a), Some(b)) if n > a && n <= b);
        let mut c = Comments::default();
        let mut seen_code = false;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let trimmed = line.trim_start();
            let marker = if yaml { "#" } else { "//" };
            if let Some(body) = trimmed.strip_prefix(marker) {
                let body = body
                    .strip_prefix(' ')
                    .unwrap_or(body)
                    .trim_end()
                    .to_string();
                if !seen_code {
                    c.header.push(body);
                } else if in_item(n) {
                    c.by_anchor.entry("item".into()).or_default().push(body);
                } else if let Some((_, a)) = anchors.iter().find(|(l, _)| *l >= n) {
                    c.by_anchor.entry(a.clone()).or_default().push(body);
                } else {
                    c.trailer.push(body);
                }
                continue;
            }
            if !trimmed.is_empty() {
                let first_code_line = !seen_code;
                seen_code = true;
                if first_code_line {
                    if let Some(pos) = inline_comment(line, yaml) {
                        c.header.push(line[pos + marker.len()..].trim().to_string());
                    }
                    continue;
                }
                if let Some(pos) = inline_comment(line, yaml) {
                    let body = line[pos + marker.len()..].trim().to_string();
                    match anchors.iter().rev().find(|(l, _)| *l <= n) {
                        Some((_, a)) => c.by_anchor.entry(a.clone()).or_default().push(body),
                        None => c.by_anchor.entry("item".into()).or_default().push(body),
                    }
                }
            }
        }
        c
    }
}

/// Byte position of an end-of-line comment outside quotes, if any.
fn inline_comment(line: &str, yaml: bool) -> Option<usize> {
    let mut in_str: Option<char> = None;
    let mut prev = ' ';
    for (i, ch) in line.char_indices() {
        match in_str {
            Some(q) if ch == q && prev != '\\' => in_str = None,
            Some(_) => {}
            None => {
                if ch == '"' || (yaml && ch == '\'' && prev.is_whitespace()) {
                    in_str = Some(ch);
                } else if (yaml && ch == '#' && prev.is_whitespace())
                    || (!yaml && ch == '/' && line[i..].starts_with("//"))
                {
                    return Some(i);
                }
            }
        }
        prev = ch;
    }
    None
}

struct Printer {
    out: String,
    comments: Comments,
    syntax: Syntax,
}

const DSL_KEYWORDS: &[&str] = &[
    "flow",
    "item",
    "departments",
    "materials",
    "task",
    "auto",
    "decision",
    "parallel",
    "joint_review",
    "subflow",
    "wait",
    "end",
    "branch",
    "on",
    "when",
    "else",
    "set",
    "by",
    "within",
    "next",
    "roles",
    "consolidate",
    "of",
];

fn is_word(s: &str) -> bool {
    let mut chars = s.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
    first_ok && s.chars().all(|c| c.is_alphanumeric() || c == '_') && !DSL_KEYWORDS.contains(&s)
}

/// A DSL value: bare when it is a plain word, quoted otherwise.
fn dsl_value(s: &str) -> String {
    if is_word(s) {
        s.to_string()
    } else {
        crate::text::quote(s)
    }
}

/// A YAML scalar: plain where YAML reads it back as the same string, else double-quoted.
fn yaml_scalar(s: &str, in_flow: bool) -> String {
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "" | "~" | "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
    );
    let numeric = s.parse::<f64>().is_ok()
        || s.starts_with(|c: char| c.is_ascii_digit())
            && s.chars()
                .all(|c| c.is_ascii_digit() || "._:+-eE".contains(c));
    let bad_start =
        s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c) || c.is_whitespace());
    let bad_inner = s.contains(": ")
        || s.contains(" #")
        || s.ends_with(':')
        || s.ends_with(char::is_whitespace)
        || s.contains(['\n', '\t', '\r'])
        || s.chars().any(char::is_control)
        || (in_flow && s.contains([',', '[', ']', '{', '}']));
    if reserved || numeric || bad_start || bad_inner {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    } else {
        s.to_string()
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Printer {
    fn line(&mut self, indent: usize, text: &str) {
        for _ in 0..indent {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn comments_for(&mut self, indent: usize, anchor: &str) {
        if let Some(cs) = self.comments.by_anchor.remove(anchor) {
            let marker = if self.syntax == Syntax::Dsl {
                "//"
            } else {
                "#"
            };
            for c in cs {
                if c.is_empty() {
                    self.line(indent, marker);
                } else {
                    self.line(indent, &format!("{marker} {c}"));
                }
            }
        }
    }

    fn header_comments(&mut self, marker: &str) {
        for c in std::mem::take(&mut self.comments.header) {
            let l = if c.is_empty() {
                marker.to_string()
            } else {
                format!("{marker} {c}")
            };
            self.line(0, &l);
        }
    }

    fn trailer_comments(&mut self, indent: usize, marker: &str) {
        let mut rest = std::mem::take(&mut self.comments.trailer);
        // Anything not placed (an anchor that vanished) goes at the end, never lost.
        let mut leftover: Vec<_> = std::mem::take(&mut self.comments.by_anchor)
            .into_iter()
            .collect();
        leftover.sort();
        for (_, cs) in leftover {
            rest.extend(cs);
        }
        for c in rest {
            let l = if c.is_empty() {
                marker.to_string()
            } else {
                format!("{marker} {c}")
            };
            self.line(indent, &l);
        }
    }

    // ---------------------------------------------------------------- DSL

    fn dsl(&mut self, f: &Flow) {
        self.header_comments("//");
        self.line(
            0,
            &format!(
                "flow {} {} version {} {{",
                f.id,
                crate::text::quote(&f.name),
                f.version
            ),
        );
        self.dsl_item(&f.item);
        if !f.departments.is_empty() {
            self.out.push('\n');
            self.comments_for(1, "sec:departments");
            self.line(1, "departments {");
            for d in &f.departments {
                self.comments_for(2, &format!("dept:{}", d.id));
                let from = d
                    .from
                    .as_ref()
                    .map_or(String::new(), |f| format!(" from {f}"));
                if d.roles.is_empty() {
                    self.line(
                        2,
                        &format!("{} {}{from}", d.id, crate::text::quote(&d.name)),
                    );
                } else {
                    let roles: Vec<String> = d
                        .roles
                        .iter()
                        .map(|r| format!("{} {}", r.id, crate::text::quote(&r.name)))
                        .collect();
                    self.line(
                        2,
                        &format!(
                            "{} {}{from} {{ roles {{ {} }} }}",
                            d.id,
                            crate::text::quote(&d.name),
                            roles.join("  ")
                        ),
                    );
                }
            }
            self.line(1, "}");
        }
        if !f.materials.is_empty() {
            self.out.push('\n');
            self.comments_for(1, "sec:materials");
            self.line(1, "materials {");
            for m in &f.materials {
                self.comments_for(2, &format!("mat:{}", m.id));
                let mut l = format!("{} {}", m.id, crate::text::quote(&m.name));
                l.push_str(if m.required { " required" } else { " optional" });
                if m.deferrable {
                    l.push_str(" deferrable");
                }
                if !(m.paper && m.electronic) {
                    if m.paper {
                        l.push_str(" paper");
                    }
                    if m.electronic {
                        l.push_str(" electronic");
                    }
                }
                if let Some(s) = &m.source {
                    let _ = write!(l, " source {}", dsl_value(s));
                }
                if !m.trust.is_empty() {
                    let _ = write!(l, " trust [{}]", m.trust.join(", "));
                }
                self.line(2, &l);
            }
            self.line(1, "}");
        }
        let ends = ends_in_print_order(f);
        let first_end = ends.first().map(|e| Target::End(e.id.clone()));
        self.dsl_sequence(1, &f.steps, first_end);
        if !f.ends.is_empty() {
            self.out.push('\n');
        }
        for e in ends {
            self.comments_for(1, &format!("end:{}", e.id));
            let mut l = format!("end {} {}", e.id, crate::text::quote(&e.name));
            if e.result != e.name {
                let _ = write!(l, " result {}", dsl_value(&e.result));
            }
            self.line(1, &l);
        }
        self.trailer_comments(1, "//");
        self.line(0, "}");
    }

    fn dsl_item(&mut self, i: &Item) {
        self.line(1, "item {");
        self.comments_for(2, "item");
        let mut kv = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                self.line(2, &format!("{k} {v}"));
            }
        };
        kv(
            "basic_code",
            i.basic_code.as_deref().map(crate::text::quote),
        );
        kv("impl_code", i.impl_code.as_deref().map(crate::text::quote));
        kv("type", i.item_type.as_deref().map(dsl_value));
        kv("statutory", i.statutory.map(|l| l.to_string()));
        kv(
            "kind",
            Some(match i.kind {
                CaseKind::Promised => "promised".into(),
                CaseKind::Immediate => "immediate".into(),
            }),
        );
        kv("promised", i.promised.map(|l| l.to_string()));
        kv(
            "correction_within",
            i.correction_within.map(|l| l.to_string()),
        );
        kv("mode", Some(i.mode.as_str().to_string()));
        kv(
            "fee",
            Some(if i.fee == Fee::default() {
                "none".to_string()
            } else {
                let mut s = format!("{{ charged {}", i.fee.charged);
                if let Some(st) = &i.fee.standard {
                    let _ = write!(s, " standard {}", crate::text::quote(st));
                }
                if let Some(b) = &i.fee.basis {
                    let _ = write!(s, " basis {}", crate::text::quote(b));
                }
                s.push_str(" }");
                s
            }),
        );
        let list = |v: &[String]| {
            if v.is_empty() {
                None
            } else {
                Some(format!(
                    "[{}]",
                    v.iter()
                        .map(|s| dsl_value(s))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        };
        kv("served", list(&i.served));
        kv("scope", i.scope.as_deref().map(dsl_value));
        kv("version", i.version.map(|v| v.to_string()));
        kv("status", i.status.as_deref().map(dsl_value));
        kv("level", i.level.as_deref().map(dsl_value));
        kv("body_nature", i.body_nature.as_deref().map(dsl_value));
        kv("change_type", i.change_type.as_deref().map(dsl_value));
        kv("running_system", i.running_system.as_deref().map(dsl_value));
        kv("appointment", i.appointment.map(|b| b.to_string()));
        kv(
            "correction_on_site",
            i.correction_on_site.then(|| "true".to_string()),
        );
        kv("online_payment", i.online_payment.map(|b| b.to_string()));
        kv("delivery", i.delivery.map(|b| b.to_string()));
        kv("co_handling", list(&i.co_handling));
        kv("stops_statutory", list(&i.stops_statutory));
        kv(
            "stops_statutory_basis",
            i.stops_statutory_basis.as_deref().map(crate::text::quote),
        );
        kv(
            "stops_promised",
            i.stops_promised
                .as_ref()
                .map(|v| list(v).unwrap_or_else(|| "[]".into())),
        );
        for k in crate::schema::ITEM_TEXT_KEYS {
            if let Some(v) = i.text.get(*k) {
                kv(k, Some(crate::text::quote(v)));
            }
        }
        self.line(1, "}");
    }

    fn dsl_target(t: &Target) -> String {
        match t {
            Target::Step(s) | Target::End(s) => s.clone(),
            Target::Join => "join".into(),
        }
    }

    /// Prints a sequence; `after` is what the last step falls through to.
    fn dsl_sequence(&mut self, indent: usize, steps: &[Step], after: Option<Target>) {
        for (i, s) in steps.iter().enumerate() {
            let follow = steps
                .get(i + 1)
                .map(|n| Target::Step(n.id.clone()))
                .or_else(|| after.clone());
            self.out.push('\n');
            self.dsl_step(indent, s, follow.as_ref());
        }
    }

    fn dsl_step(&mut self, indent: usize, s: &Step, follow: Option<&Target>) {
        self.comments_for(indent, &format!("step:{}", s.id));
        let mut head = format!(
            "{} {} {}",
            s.kind.keyword(),
            s.id,
            crate::text::quote(&s.name)
        );
        let mut body: Vec<String> = Vec::new();
        match &s.kind {
            StepKind::Task { by, .. } => {
                let _ = write!(head, " by {by}");
            }
            StepKind::Parallel { lead, join, .. } => {
                if let Some(l) = lead {
                    let _ = write!(head, " lead {l}");
                }
                head.push_str(
                    &join_text(*join)
                        .map(|j| format!(" join {j}"))
                        .unwrap_or_default(),
                );
            }
            StepKind::JointReview { lead: Some(l), .. } => {
                let _ = write!(head, " lead {l}");
            }
            StepKind::Subflow {
                lead,
                items,
                join,
                pauses_for,
                pauses_for_basis,
            } => {
                if let Some(l) = lead {
                    let _ = write!(head, " lead {l}");
                }
                let _ = write!(
                    head,
                    " items [{}]",
                    items
                        .iter()
                        .map(|i| dsl_value(i))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                head.push_str(
                    &join_text(*join)
                        .map(|j| format!(" join {j}"))
                        .unwrap_or_default(),
                );
                if !pauses_for.is_empty() {
                    let _ = write!(
                        head,
                        " pauses_for [{}]",
                        pauses_for
                            .iter()
                            .map(|i| dsl_value(i))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                if let Some(b) = pauses_for_basis {
                    let _ = write!(head, " pauses_for_basis {}", crate::text::quote(b));
                }
            }
            StepKind::Wait { timer, event } => {
                if let Some(t) = timer {
                    let _ = write!(head, " for {t}");
                }
                if let Some(e) = event {
                    let _ = write!(head, " event {}", dsl_value(e));
                }
            }
            _ => {}
        }
        if let Some(w) = s.within {
            let _ = write!(head, " within {w}");
        }
        for (flag, on) in [
            ("visit", s.visit),
            ("risk_point", s.risk_point),
            ("starts_clock", s.starts_clock),
            ("decides", s.decides),
        ] {
            if on {
                head.push(' ');
                head.push_str(flag);
            }
        }
        if !s.special.is_empty() {
            let _ = write!(
                head,
                " special [{}]",
                s.special
                    .iter()
                    .map(|x| dsl_value(x))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let implicit_next = match (&s.kind, &s.next) {
            (StepKind::Decision { .. }, _) => true,
            (_, None) => follow.is_none(),
            (_, Some(n)) => follow == Some(&n.target),
        };
        if !implicit_next && let Some(n) = &s.next {
            let _ = write!(head, " next {}", Self::dsl_target(&n.target));
        }
        match &s.kind {
            StepKind::Task {
                actions, materials, ..
            } => {
                if !materials.is_empty() {
                    let _ = write!(head, " materials [{}]", materials.join(", "));
                }
                for a in actions {
                    body.push(format!(
                        "on {} -> {}",
                        dsl_value(a.kind.as_str()),
                        Self::dsl_target(&a.target.target)
                    ));
                }
            }
            StepKind::Auto { set } => {
                for a in set {
                    body.push(format!("set {} = {}", a.field, one_line(&a.expr.source)));
                }
            }
            StepKind::Decision { branches, default } => {
                for b in branches {
                    body.push(format!(
                        "when {} -> {}",
                        one_line(&b.condition.source),
                        Self::dsl_target(&b.target.target)
                    ));
                }
                if let Some(d) = default {
                    body.push(format!("else -> {}", Self::dsl_target(&d.target)));
                }
            }
            _ => {}
        }
        let nested = matches!(
            s.kind,
            StepKind::Parallel { .. } | StepKind::JointReview { .. }
        );
        if body.is_empty() && !nested {
            self.line(indent, &head);
            return;
        }
        self.line(indent, &format!("{head} {{"));
        for b in body {
            self.line(indent + 1, &b);
        }
        match &s.kind {
            StepKind::Parallel { lanes, .. } => {
                for l in lanes {
                    let single =
                        l.steps.len() == 1 && l.steps[0].id == l.id && l.steps[0].name == l.name;
                    if single {
                        self.dsl_step(indent + 1, &l.steps[0], Some(&Target::Join));
                    } else {
                        self.line(
                            indent + 1,
                            &format!("branch {} {} {{", l.id, crate::text::quote(&l.name)),
                        );
                        for (i, st) in l.steps.iter().enumerate() {
                            let follow = l
                                .steps
                                .get(i + 1)
                                .map(|n| Target::Step(n.id.clone()))
                                .unwrap_or(Target::Join);
                            self.dsl_step(indent + 2, st, Some(&follow));
                        }
                        self.line(indent + 1, "}");
                    }
                }
            }
            StepKind::JointReview {
                reports,
                reviews,
                consolidate,
                resubmit_within,
                ..
            } => {
                if !reports.is_empty() {
                    self.line(
                        indent + 1,
                        &format!(
                            "reports [{}]",
                            reports
                                .iter()
                                .map(|r| dsl_value(r))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
                for r in reviews {
                    self.dsl_step(indent + 1, r, Some(&Target::Join));
                }
                let mut c = format!("consolidate by {}", consolidate.by);
                if let Some(w) = consolidate.within {
                    let _ = write!(c, " within {w}");
                }
                self.line(indent + 1, &c);
                if let Some(r) = resubmit_within {
                    self.line(indent + 1, &format!("resubmit_within {r}"));
                }
            }
            _ => {}
        }
        self.line(indent, "}");
    }

    // ---------------------------------------------------------------- YAML

    fn yaml(&mut self, f: &Flow) {
        self.header_comments("#");
        self.line(0, &format!("flow: {}", yaml_scalar(&f.id, false)));
        self.line(0, &format!("name: {}", yaml_scalar(&f.name, false)));
        self.line(0, &format!("version: {}", f.version));
        self.yaml_item(&f.item);
        if !f.departments.is_empty() {
            self.comments_for(0, "sec:departments");
            self.line(0, "departments:");
            for d in &f.departments {
                self.comments_for(1, &format!("dept:{}", d.id));
                if d.roles.is_empty() && d.from.is_none() {
                    self.line(
                        1,
                        &format!(
                            "{}: {}",
                            yaml_scalar(&d.id, false),
                            yaml_scalar(&d.name, false)
                        ),
                    );
                } else {
                    self.line(1, &format!("{}:", yaml_scalar(&d.id, false)));
                    self.line(2, &format!("name: {}", yaml_scalar(&d.name, false)));
                    if let Some(f) = &d.from {
                        self.line(2, &format!("from: {}", yaml_scalar(f, false)));
                    }
                }
                if !d.roles.is_empty() {
                    self.line(2, "roles:");
                    for r in &d.roles {
                        self.line(
                            3,
                            &format!(
                                "{}: {}",
                                yaml_scalar(&r.id, false),
                                yaml_scalar(&r.name, false)
                            ),
                        );
                    }
                }
            }
        }
        if !f.materials.is_empty() {
            self.comments_for(0, "sec:materials");
            self.line(0, "materials:");
            for m in &f.materials {
                self.comments_for(1, &format!("mat:{}", m.id));
                self.line(1, &format!("{}:", yaml_scalar(&m.id, false)));
                self.line(2, &format!("name: {}", yaml_scalar(&m.name, false)));
                self.line(2, &format!("required: {}", m.required));
                if m.deferrable {
                    self.line(2, "deferrable: true");
                }
                if !(m.paper && m.electronic) {
                    self.line(2, &format!("paper: {}", m.paper));
                    self.line(2, &format!("electronic: {}", m.electronic));
                }
                if let Some(s) = &m.source {
                    self.line(2, &format!("source: {}", yaml_scalar(s, false)));
                }
                if !m.trust.is_empty() {
                    self.line(2, &format!("trust: {}", yaml_list(&m.trust)));
                }
            }
        }
        self.comments_for(0, "sec:steps");
        self.line(0, "steps:");
        let ends = ends_in_print_order(f);
        let first_end = ends.first().map(|e| Target::End(e.id.clone()));
        self.yaml_sequence(1, &f.steps, first_end);
        for e in ends {
            self.comments_for(1, &format!("end:{}", e.id));
            self.line(1, &format!("- end: {}", yaml_scalar(&e.id, false)));
            self.line(2, &format!("name: {}", yaml_scalar(&e.name, false)));
            if e.result != e.name {
                self.line(2, &format!("result: {}", yaml_scalar(&e.result, false)));
            }
        }
        self.trailer_comments(0, "#");
    }

    fn yaml_item(&mut self, i: &Item) {
        self.line(0, "item:");
        self.comments_for(1, "item");
        let mut kv = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                self.line(1, &format!("{k}: {v}"));
            }
        };
        let q = |s: &str| yaml_scalar(s, false);
        kv(
            "basic_code",
            i.basic_code
                .as_deref()
                .map(|s| serde_json::to_string(s).unwrap_or_default()),
        );
        kv(
            "impl_code",
            i.impl_code
                .as_deref()
                .map(|s| serde_json::to_string(s).unwrap_or_default()),
        );
        kv("type", i.item_type.as_deref().map(q));
        kv("statutory", i.statutory.map(|l| l.to_string()));
        kv(
            "kind",
            Some(match i.kind {
                CaseKind::Promised => "promised".into(),
                CaseKind::Immediate => "immediate".into(),
            }),
        );
        kv("promised", i.promised.map(|l| l.to_string()));
        kv(
            "correction_within",
            i.correction_within.map(|l| l.to_string()),
        );
        kv("mode", Some(i.mode.as_str().to_string()));
        if i.fee == Fee::default() {
            kv("fee", Some("none".into()));
        } else {
            kv("fee", Some(String::new()));
            if let Some(last) = self.out.strip_suffix(" \n") {
                self.out = format!("{last}\n");
            }
            self.line(2, &format!("charged: {}", i.fee.charged));
            if let Some(s) = &i.fee.standard {
                self.line(2, &format!("standard: {}", q(s)));
            }
            if let Some(b) = &i.fee.basis {
                self.line(2, &format!("basis: {}", q(b)));
            }
        }
        let mut kv = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                self.line(1, &format!("{k}: {v}"));
            }
        };
        let list = |v: &[String]| {
            if v.is_empty() {
                None
            } else {
                Some(yaml_list(v))
            }
        };
        kv("served", list(&i.served));
        kv("scope", i.scope.as_deref().map(q));
        kv("version", i.version.map(|v| v.to_string()));
        kv("status", i.status.as_deref().map(q));
        kv("level", i.level.as_deref().map(q));
        kv("body_nature", i.body_nature.as_deref().map(q));
        kv("change_type", i.change_type.as_deref().map(q));
        kv("running_system", i.running_system.as_deref().map(q));
        kv("appointment", i.appointment.map(|b| b.to_string()));
        kv(
            "correction_on_site",
            i.correction_on_site.then(|| "true".to_string()),
        );
        kv("online_payment", i.online_payment.map(|b| b.to_string()));
        kv("delivery", i.delivery.map(|b| b.to_string()));
        kv("co_handling", list(&i.co_handling));
        kv("stops_statutory", list(&i.stops_statutory));
        kv(
            "stops_statutory_basis",
            i.stops_statutory_basis.as_deref().map(q),
        );
        kv(
            "stops_promised",
            i.stops_promised
                .as_ref()
                .map(|v| list(v).unwrap_or_else(|| "[]".into())),
        );
        for k in crate::schema::ITEM_TEXT_KEYS {
            if let Some(v) = i.text.get(*k) {
                kv(k, Some(q(v)));
            }
        }
    }

    fn yaml_target(t: &Target) -> String {
        match t {
            Target::Step(s) | Target::End(s) => yaml_scalar(s, false),
            Target::Join => "join".into(),
        }
    }

    fn yaml_sequence(&mut self, indent: usize, steps: &[Step], after: Option<Target>) {
        for (i, s) in steps.iter().enumerate() {
            let follow = steps
                .get(i + 1)
                .map(|n| Target::Step(n.id.clone()))
                .or_else(|| after.clone());
            self.yaml_step(indent, s, follow.as_ref());
        }
    }

    fn yaml_step(&mut self, indent: usize, s: &Step, follow: Option<&Target>) {
        self.comments_for(indent, &format!("step:{}", s.id));
        self.line(
            indent,
            &format!("- {}: {}", s.kind.keyword(), yaml_scalar(&s.id, false)),
        );
        let i = indent + 1;
        self.line(i, &format!("name: {}", yaml_scalar(&s.name, false)));
        match &s.kind {
            StepKind::Task { by, .. } => {
                self.line(i, &format!("by: {}", yaml_scalar(&by.to_string(), false)))
            }
            StepKind::Parallel { lead, join, .. } => {
                if let Some(l) = lead {
                    self.line(i, &format!("lead: {}", yaml_scalar(l, false)));
                }
                if let Some(j) = join_text(*join) {
                    self.line(i, &format!("join: {j}"));
                }
            }
            StepKind::JointReview { lead: Some(l), .. } => {
                self.line(i, &format!("lead: {}", yaml_scalar(l, false)))
            }
            StepKind::Subflow {
                lead,
                items,
                join,
                pauses_for,
                pauses_for_basis,
            } => {
                if let Some(l) = lead {
                    self.line(i, &format!("lead: {}", yaml_scalar(l, false)));
                }
                self.line(i, &format!("items: {}", yaml_list(items)));
                if let Some(j) = join_text(*join) {
                    self.line(i, &format!("join: {j}"));
                }
                if !pauses_for.is_empty() {
                    self.line(i, &format!("pauses_for: {}", yaml_list(pauses_for)));
                }
                if let Some(b) = pauses_for_basis {
                    self.line(i, &format!("pauses_for_basis: {}", yaml_scalar(b, false)));
                }
            }
            StepKind::Wait { timer, event } => {
                if let Some(t) = timer {
                    self.line(i, &format!("for: {t}"));
                }
                if let Some(e) = event {
                    self.line(i, &format!("event: {}", yaml_scalar(e, false)));
                }
            }
            _ => {}
        }
        if let Some(w) = s.within {
            self.line(i, &format!("within: {w}"));
        }
        for (flag, on) in [
            ("visit", s.visit),
            ("risk_point", s.risk_point),
            ("starts_clock", s.starts_clock),
            ("decides", s.decides),
        ] {
            if on {
                self.line(i, &format!("{flag}: true"));
            }
        }
        if !s.special.is_empty() {
            self.line(i, &format!("special: {}", yaml_list(&s.special)));
        }
        let implicit_next = match (&s.kind, &s.next) {
            (StepKind::Decision { .. }, _) => true,
            (_, None) => follow.is_none(),
            (_, Some(n)) => follow == Some(&n.target),
        };
        if !implicit_next && let Some(n) = &s.next {
            self.line(i, &format!("next: {}", Self::yaml_target(&n.target)));
        }
        match &s.kind {
            StepKind::Task {
                actions, materials, ..
            } => {
                if !materials.is_empty() {
                    self.line(i, &format!("materials: {}", yaml_list(materials)));
                }
                if !actions.is_empty() {
                    self.line(i, "on:");
                    for a in actions {
                        self.line(
                            i + 1,
                            &format!(
                                "{}: {}",
                                yaml_scalar(a.kind.as_str(), false),
                                Self::yaml_target(&a.target.target)
                            ),
                        );
                    }
                }
            }
            StepKind::Auto { set } => {
                self.line(i, "set:");
                for a in set {
                    self.line(
                        i + 1,
                        &format!(
                            "{}: {}",
                            yaml_scalar(&a.field, false),
                            yaml_scalar(&a.expr.source, false)
                        ),
                    );
                }
            }
            StepKind::Decision { branches, default } => {
                if !branches.is_empty() {
                    self.line(i, "when:");
                    for b in branches {
                        self.line(
                            i + 1,
                            &format!("- if: {}", yaml_scalar(&b.condition.source, false)),
                        );
                        self.line(
                            i + 2,
                            &format!("to: {}", Self::yaml_target(&b.target.target)),
                        );
                    }
                }
                if let Some(d) = default {
                    self.line(i, &format!("else: {}", Self::yaml_target(&d.target)));
                }
            }
            StepKind::Parallel { lanes, .. } => {
                self.line(i, "branches:");
                for l in lanes {
                    let single =
                        l.steps.len() == 1 && l.steps[0].id == l.id && l.steps[0].name == l.name;
                    if single {
                        self.yaml_step(i + 1, &l.steps[0], Some(&Target::Join));
                    } else {
                        self.line(i + 1, &format!("- branch: {}", yaml_scalar(&l.id, false)));
                        self.line(i + 2, &format!("name: {}", yaml_scalar(&l.name, false)));
                        self.line(i + 2, "steps:");
                        for (k, st) in l.steps.iter().enumerate() {
                            let follow = l
                                .steps
                                .get(k + 1)
                                .map(|n| Target::Step(n.id.clone()))
                                .unwrap_or(Target::Join);
                            self.yaml_step(i + 3, st, Some(&follow));
                        }
                    }
                }
            }
            StepKind::JointReview {
                reports,
                reviews,
                consolidate,
                resubmit_within,
                ..
            } => {
                if !reports.is_empty() {
                    self.line(i, &format!("reports: {}", yaml_list(reports)));
                }
                self.line(i, "reviews:");
                for r in reviews {
                    self.yaml_step(i + 1, r, Some(&Target::Join));
                }
                self.line(i, "consolidate:");
                self.line(
                    i + 1,
                    &format!("by: {}", yaml_scalar(&consolidate.by.to_string(), false)),
                );
                if let Some(w) = consolidate.within {
                    self.line(i + 1, &format!("within: {w}"));
                }
                if let Some(r) = resubmit_within {
                    self.line(i, &format!("resubmit_within: {r}"));
                }
            }
            _ => {}
        }
    }
}

/// Ends are printed after the steps: first the one the last step falls
/// through to, then the others by id.
fn ends_in_print_order(f: &Flow) -> Vec<&End> {
    let first = f.steps.last().and_then(|s| match &s.next {
        Some(Transition {
            target: Target::End(e),
            ..
        }) => Some(e.as_str()),
        _ => None,
    });
    let mut out: Vec<&End> = f
        .ends
        .values()
        .filter(|e| Some(e.id.as_str()) == first)
        .collect();
    out.extend(f.ends.values().filter(|e| Some(e.id.as_str()) != first));
    out
}

fn yaml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| yaml_scalar(s, true))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The join policy as written, or `None` for the default (`all`).
fn join_text(j: Join) -> Option<String> {
    match j {
        Join::All => None,
        Join::Any => Some("any".into()),
        Join::NOfM { n, m } => Some(format!("{n} of {m}")),
    }
}

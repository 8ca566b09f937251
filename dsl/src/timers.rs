//! Every deadline written in a flow (case limits, step limits, wait timers,
//! reply limits), with where its literal sits in the source, and a rewrite
//! that changes one literal and nothing else — comments and layout stay.
//!
//! This is what the studio's timers panel shows and edits.

use crate::ir::{Flow, Limit, Step, StepKind, Unit};
use crate::span::SourceFile;
use serde::Serialize;

/// One deadline of a flow.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timer {
    /// Stable within one text: `item.statutory`, `step.review.within`,
    /// `step.wait_fix.timer`, `step.joint.resubmit`, `step.joint.consolidate`.
    pub key: String,
    /// What kind of deadline: `statutory`, `promised`, `step`, `wait`,
    /// `resubmit`, `consolidate`.
    pub kind: &'static str,
    /// The step's id (`None` for the case limits).
    pub step: Option<String>,
    /// The step's display name, or the limit's name.
    pub label: String,
    pub value: u32,
    pub unit: Unit,
    /// 1-based line and column of the literal.
    pub line: usize,
    pub column: usize,
    /// Byte offsets of the literal in the source.
    pub start: usize,
    pub end: usize,
}

/// The deadlines of `flow`, in source order. `source` must be the text the
/// flow was read from (the spans point into it).
pub fn timers(flow: &Flow, source: &str) -> Vec<Timer> {
    let file = SourceFile::new("timers", source);
    let mut out = Vec::new();
    let mut push =
        |key: String, kind: &'static str, step: Option<&Step>, label: &str, l: &Limit| {
            // A limit without a position (built in code) cannot be edited.
            if l.span.end <= l.span.start || l.span.end > source.len() {
                return;
            }
            let (line, column) = file.line_col(l.span.start);
            out.push(Timer {
                key,
                kind,
                step: step.map(|s| s.id.clone()),
                label: label.to_string(),
                value: l.value,
                unit: l.unit,
                line,
                column,
                start: l.span.start,
                end: l.span.end,
            });
        };
    if let Some(l) = &flow.item.statutory {
        push("item.statutory".into(), "statutory", None, "法定时限", l);
    }
    if let Some(l) = &flow.item.promised {
        push("item.promised".into(), "promised", None, "承诺时限", l);
    }
    if let Some(l) = &flow.item.correction_within {
        push(
            "item.correction_within".into(),
            "correction",
            None,
            "补正告知时限",
            l,
        );
    }
    for s in flow.all_steps() {
        if let Some(l) = &s.within {
            push(format!("step.{}.within", s.id), "step", Some(s), &s.name, l);
        }
        match &s.kind {
            StepKind::Wait { timer: Some(l), .. } => {
                push(format!("step.{}.timer", s.id), "wait", Some(s), &s.name, l);
            }
            StepKind::JointReview {
                consolidate,
                resubmit_within,
                ..
            } => {
                if let Some(l) = &consolidate.within {
                    push(
                        format!("step.{}.consolidate", s.id),
                        "consolidate",
                        Some(s),
                        &s.name,
                        l,
                    );
                }
                if let Some(l) = resubmit_within {
                    push(
                        format!("step.{}.resubmit", s.id),
                        "resubmit",
                        Some(s),
                        &s.name,
                        l,
                    );
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|t| t.start);
    out
}

/// Why a rewrite was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SetError {
    #[error("no deadline `{0}` in this text")]
    Unknown(String),
    #[error("{0} is not a legal limit (1 to 3650)")]
    OutOfRange(u32),
}

/// Rewrites the literal of the deadline `key` to `value unit`, keeping every
/// other byte of `source` (quotes around a YAML scalar are kept too).
pub fn set(
    flow: &Flow,
    source: &str,
    key: &str,
    value: u32,
    unit: Unit,
) -> Result<String, SetError> {
    if !(1..=3650).contains(&value) {
        return Err(SetError::OutOfRange(value));
    }
    let t = timers(flow, source)
        .into_iter()
        .find(|t| t.key == key)
        .ok_or_else(|| SetError::Unknown(key.to_string()))?;
    let old = &source[t.start..t.end];
    let (open, close) = match old.chars().next() {
        Some(q @ ('"' | '\'')) if old.len() >= 2 && old.ends_with(q) => {
            (q.to_string(), q.to_string())
        }
        _ => (String::new(), String::new()),
    };
    // Keep the written unit's language: `工作日` stays Chinese.
    let chinese = !old.is_ascii();
    let unit_text = match (unit, chinese) {
        (Unit::Workdays, true) => "工作日",
        (Unit::Days, true) => "自然日",
        (Unit::Hours, true) => "小时",
        (Unit::Workdays, false) if value == 1 => "workday",
        (Unit::Days, false) if value == 1 => "day",
        (Unit::Hours, false) if value == 1 => "hour",
        (u, false) => u.as_str(),
    };
    let sep = if chinese && !old.contains(' ') {
        ""
    } else {
        " "
    };
    let mut out = String::with_capacity(source.len() + 8);
    out.push_str(&source[..t.start]);
    out.push_str(&format!("{open}{value}{sep}{unit_text}{close}"));
    out.push_str(&source[t.end..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Syntax;

    const DSL: &str = r#"// a comment that must stay
flow t "测试" version 1 {
  item {
    statutory 20 workdays  // 法定
    promised 10 workdays
  }
  departments { a "甲" }
  task one "受理" by a within 1 workday starts_clock  // keep me
  wait pause "等待" for 3 days
  task two "审查" by a within 5 workdays
  end done "办结"
}
"#;

    fn flow(text: &str, syntax: Syntax) -> Flow {
        // The item lacks keys a deployable flow needs; the IR is built anyway.
        let l = crate::load("t", text, syntax);
        l.flow
            .unwrap_or_else(|| panic!("no flow: {}", l.report.render(false)))
    }

    #[test]
    fn lists_every_deadline_with_its_position() {
        let f = flow(DSL, Syntax::Dsl);
        let ts = timers(&f, DSL);
        let keys: Vec<_> = ts
            .iter()
            .map(|t| format!("{} {}:{} {}", t.key, t.line, t.column, &DSL[t.start..t.end]))
            .collect();
        assert_eq!(
            keys,
            [
                "item.statutory 4:15 20 workdays",
                "item.promised 5:14 10 workdays",
                "step.one.within 8:29 1 workday",
                "step.pause.timer 9:23 3 days",
                "step.two.within 10:29 5 workdays"
            ]
        );
    }

    #[test]
    fn a_rewrite_changes_only_the_literal() {
        let f = flow(DSL, Syntax::Dsl);
        let out = set(&f, DSL, "step.one.within", 3, Unit::Workdays).unwrap_or_default();
        assert_eq!(
            out,
            DSL.replace(
                "within 1 workday starts_clock",
                "within 3 workdays starts_clock"
            )
        );
        assert!(out.contains("// keep me") && out.contains("// a comment that must stay"));
        assert_eq!(
            set(&f, DSL, "step.nope.within", 3, Unit::Days),
            Err(SetError::Unknown("step.nope.within".into()))
        );
        assert_eq!(
            set(&f, DSL, "item.promised", 0, Unit::Days),
            Err(SetError::OutOfRange(0))
        );
    }

    #[test]
    fn yaml_keeps_quotes_and_chinese_units() {
        let yaml = "# 注释\nflow: t\nname: 测试\nversion: 1\nitem:\n  statutory: \"20 workdays\" # 法定\n  promised: 10工作日\ndepartments:\n  a: 甲\nsteps:\n  - task: one\n    name: 受理\n    by: a\n    within: 1 workday # keep\n    starts_clock: true\nends:\n  done: 办结\n";
        let f = flow(yaml, Syntax::Yaml);
        let out = set(&f, yaml, "item.statutory", 15, Unit::Workdays).unwrap_or_default();
        assert!(out.contains("statutory: \"15 workdays\" # 法定"), "{out}");
        let out = set(&f, &out, "item.promised", 8, Unit::Workdays).unwrap_or_default();
        assert!(out.contains("promised: 8工作日\n"), "{out}");
        let f2 = flow(&out, Syntax::Yaml);
        assert_eq!(f2.item.promised.map(|l| l.value), Some(8));
        assert!(out.starts_with("# 注释\n") && out.contains("within: 1 workday # keep"));
    }
}

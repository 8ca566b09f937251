//! Efficiency assessment (效能考核): indicators defined in a file, each a rhai
//! formula over a department's figures for a period, clamped to its range;
//! the clamped values plus manual adjustments give a score, graded
//! 优秀 / 良好 / 合格 / 不合格 by thresholds in the same file.
//!
//! ```yaml
//! grades: { 优秀: 90, 良好: 75, 合格: 60 }
//! indicators:
//!   - id: on_time
//!     name: 按时办结
//!     formula: 40.0 * (1.0 - overdue_rate)
//!     range: [0, 40]
//! ```
//!
//! Figures a formula may name: `cases`, `finished`, `tasks` (completed),
//! `overdue`, `overdue_rate` (0–1), `avg_working_days`, `notice`, `yellow`,
//! `red`, `ratings`, `satisfaction` (average 1–5; 0 without ratings),
//! `complaints` (substantiated). All are floats.

use crate::supervision::stats::Row;
use govflow_dsl::node::Node;
use govflow_dsl::span::SourceFile;
use serde::Serialize;

pub const FIGURES: &[&str] = &[
    "cases",
    "finished",
    "tasks",
    "overdue",
    "overdue_rate",
    "avg_working_days",
    "notice",
    "yellow",
    "red",
    "ratings",
    "satisfaction",
    "complaints",
];

#[derive(Clone, Debug, Serialize)]
pub struct Indicator {
    pub id: String,
    pub name: String,
    pub formula: String,
    pub min: f64,
    pub max: f64,
}

pub struct Scheme {
    pub indicators: Vec<Indicator>,
    asts: Vec<rhai::AST>,
    /// (grade, lowest score), highest first; below the last is 不合格.
    pub grades: Vec<(String, f64)>,
    engine: rhai::Engine,
}

/// An error in an efficiency file, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct SchemeError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One department's assessment.
#[derive(Clone, Debug, Serialize)]
pub struct Assessment {
    pub department: String,
    pub name: String,
    /// (indicator id, value after clamping)
    pub indicators: Vec<(String, f64)>,
    pub adjustments: f64,
    pub score: f64,
    pub grade: String,
    /// Formulas that failed (a wrong type, the sandbox's limits): they count 0.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

fn num(n: &Node) -> Option<f64> {
    n.as_str().and_then(|s| s.trim().parse::<f64>().ok())
}

impl Scheme {
    pub fn parse(name: &str, text: &str) -> Result<Scheme, SchemeError> {
        let file = SourceFile::new(name, text);
        let err = |span: govflow_dsl::span::Span, message: String| {
            let (line, column) = file.line_col(span.start);
            SchemeError {
                file: name.to_string(),
                line,
                column,
                message,
            }
        };
        let root = govflow_dsl::yaml::parse(text).map_err(|d| err(d.span, d.message.clone()))?;
        let engine = govflow_dsl::rhai_sandbox::engine();
        let mut grades = Vec::new();
        match root.get("grades").and_then(Node::as_map) {
            Some(m) => {
                for e in m {
                    let v = num(&e.value).ok_or_else(|| {
                        err(
                            e.value.span,
                            format!("grade `{}` needs a number (the lowest score)", e.key),
                        )
                    })?;
                    grades.push((e.key.clone(), v));
                }
            }
            None => {
                return Err(err(
                    root.span,
                    "missing `grades: { 优秀: 90, 良好: 75, 合格: 60 }`".into(),
                ));
            }
        }
        grades.sort_by(|a, b| b.1.total_cmp(&a.1));
        let Some(list) = root.get("indicators").and_then(Node::as_list) else {
            return Err(err(root.span, "missing `indicators:` (a list)".into()));
        };
        let mut indicators = Vec::new();
        let mut asts = Vec::new();
        for n in list {
            let field = |k: &str| n.get(k).and_then(Node::as_str).map(str::to_string);
            let id = field("id").ok_or_else(|| err(n.span, "an indicator needs an `id`".into()))?;
            let formula = field("formula")
                .ok_or_else(|| err(n.span, format!("indicator `{id}` needs a `formula`")))?;
            let fnode = n.get("formula").map_or(n.span, |f| f.span);
            let ast = engine.compile_expression(&formula).map_err(|e| {
                err(
                    fnode,
                    format!("indicator `{id}`: the formula does not parse: {e}"),
                )
            })?;
            // Names the formula uses must be figures.
            let mut word = String::new();
            for c in formula.chars().chain([' ']) {
                if c.is_alphanumeric() || c == '_' || c == '.' {
                    word.push(c);
                } else if !word.is_empty() {
                    let w = std::mem::take(&mut word);
                    let starts_alpha = w
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_');
                    if starts_alpha
                        && !FIGURES.contains(&w.as_str())
                        && !["if", "else", "true", "false"].contains(&w.as_str())
                    {
                        return Err(err(
                            fnode,
                            format!(
                                "indicator `{id}`: unknown figure `{w}`; figures: {}",
                                FIGURES.join(", ")
                            ),
                        ));
                    }
                }
            }
            let (min, max) = match n.get("range").and_then(Node::as_list) {
                Some([a, b]) => match (num(a), num(b)) {
                    (Some(a), Some(b)) if a <= b => (a, b),
                    _ => {
                        return Err(err(
                            n.span,
                            format!("indicator `{id}`: `range` is [low, high]"),
                        ));
                    }
                },
                _ => {
                    return Err(err(
                        n.span,
                        format!("indicator `{id}` needs `range: [low, high]`"),
                    ));
                }
            };
            indicators.push(Indicator {
                name: field("name").unwrap_or_else(|| id.clone()),
                id,
                formula,
                min,
                max,
            });
            asts.push(ast);
        }
        Ok(Scheme {
            indicators,
            asts,
            grades,
            engine,
        })
    }

    pub fn grade(&self, score: f64) -> String {
        self.grades
            .iter()
            .find(|(_, low)| score >= *low)
            .map_or_else(|| "不合格".to_string(), |(g, _)| g.clone())
    }

    /// Assesses one department from its statistics row, its substantiated
    /// complaints and the sum of its manual adjustments.
    pub fn assess(&self, row: &Row, complaints: u64, adjustments: f64) -> Assessment {
        let card = |level: &str| -> f64 {
            row.cards
                .values()
                .map(|m| m.get(level).copied().unwrap_or(0))
                .sum::<u64>() as f64
        };
        let mut scope = rhai::Scope::new();
        let figures: [(&str, f64); 12] = [
            ("cases", row.cases as f64),
            ("finished", row.finished as f64),
            ("tasks", row.measured as f64),
            ("overdue", row.overdue as f64),
            ("overdue_rate", row.overdue_rate.unwrap_or(0.0)),
            ("avg_working_days", row.avg_working_days.unwrap_or(0.0)),
            ("notice", card("notice")),
            ("yellow", card("yellow")),
            ("red", card("red")),
            ("ratings", row.ratings as f64),
            ("satisfaction", row.satisfaction.unwrap_or(0.0)),
            ("complaints", complaints as f64),
        ];
        for (k, v) in figures {
            scope.push_constant(k, v);
        }
        let mut values = Vec::new();
        let mut errors = Vec::new();
        for (ind, ast) in self.indicators.iter().zip(&self.asts) {
            let v = match govflow_dsl::rhai_sandbox::eval(&self.engine, &mut scope.clone(), ast) {
                Ok(d) => match (d.as_float(), d.as_int()) {
                    (Ok(f), _) => f,
                    (_, Ok(i)) => i as f64,
                    _ => {
                        errors.push(format!(
                            "{}: gave a {}, not a number",
                            ind.id,
                            d.type_name()
                        ));
                        0.0
                    }
                },
                Err(e) => {
                    errors.push(format!(
                        "{}: {}",
                        ind.id,
                        govflow_dsl::rhai_sandbox::explain(&e)
                    ));
                    0.0
                }
            };
            let v = if v.is_finite() {
                v.clamp(ind.min, ind.max)
            } else {
                ind.min
            };
            values.push((ind.id.clone(), (v * 100.0).round() / 100.0));
        }
        let score = values.iter().map(|(_, v)| v).sum::<f64>() + adjustments;
        let score = (score * 100.0).round() / 100.0;
        Assessment {
            department: row.key.clone(),
            name: row.name.clone(),
            indicators: values,
            adjustments,
            grade: self.grade(score),
            score,
            errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "grades: { 优秀: 90, 良好: 75, 合格: 60 }\nindicators:\n  - id: on_time\n    name: 按时办结\n    formula: 60.0 * (1.0 - overdue_rate)\n    range: [0, 60]\n  - id: cards\n    formula: 40.0 - yellow * 5.0 - red * 10.0\n    range: [0, 40]\n";

    #[test]
    fn clamps_and_grades() {
        let s = Scheme::parse("e.yaml", FILE).unwrap();
        let mut row = Row {
            key: "env".into(),
            overdue_rate: Some(0.1),
            ..Row::default()
        };
        row.cards
            .entry("timeliness".into())
            .or_default()
            .insert("red".into(), 5);
        let a = s.assess(&row, 0, 0.0);
        // 54 + clamp(40 - 50) = 54 + 0
        assert_eq!(
            a.indicators,
            vec![("on_time".into(), 54.0), ("cards".into(), 0.0)]
        );
        assert_eq!(a.grade, "不合格");
        let a = s.assess(&row, 0, 10.0);
        assert_eq!((a.score, a.grade.as_str()), (64.0, "合格"));
    }

    #[test]
    fn unknown_figure_is_located() {
        let bad = FILE.replace("overdue_rate)", "overdue_ratio)");
        let e = Scheme::parse("e.yaml", &bad).err().unwrap();
        assert_eq!((e.line, e.file.as_str()), (5, "e.yaml"));
        assert!(e.message.contains("unknown figure `overdue_ratio`"), "{e}");
    }
}

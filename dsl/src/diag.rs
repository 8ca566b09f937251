//! Diagnostics as plain data, with a terminal renderer (miette) and a JSON renderer.
//!
//! A diagnostic has a stable code, a severity, a message (lowercase, no final
//! period, user input in backticks), a primary span with its label, optional
//! secondary labels and a help line.

use crate::span::{SourceFile, Span};
use serde::Serialize;
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

macro_rules! codes {
    ($($variant:ident => $s:literal, $sev:ident, $doc:literal;)*) => {
        /// Every diagnostic code govflow emits. The strings are stable: tools match on them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $(#[doc = $doc] $variant,)* }
        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $s,)* } }
            pub fn severity(self) -> Severity { match self { $(Code::$variant => Severity::$sev,)* } }
            pub fn describe(self) -> &'static str { match self { $(Code::$variant => $doc,)* } }
        }
    };
}

codes! {
    Syntax => "flow::syntax", Error, "the file is not well-formed YAML or DSL";
    Io => "flow::io", Error, "the file could not be read or is not UTF-8 text";
    UnknownKey => "flow::unknown_key", Error, "a key or keyword that the flow language does not know";
    MissingKey => "flow::missing_key", Error, "a required key or element is absent";
    InvalidValue => "flow::invalid_value", Error, "a value of the wrong type or outside its allowed set";
    MalformedCode => "flow::malformed_code", Error, "a 基本编码 or 实施编码 that does not follow its format";
    MalformedLimit => "flow::malformed_limit", Error, "a time limit that is not `N workdays|days|hours`";
    DuplicateId => "flow::duplicate_id", Error, "two steps, departments, roles or materials share an id";
    UnknownStep => "flow::unknown_step", Error, "a reference to a step that does not exist";
    UnknownDepartment => "flow::unknown_department", Error, "a reference to a department that is not declared";
    UnknownRole => "flow::unknown_role", Error, "a reference to a role its department does not declare";
    UnknownMaterial => "flow::unknown_material", Error, "a reference to a material that is not declared";
    ReturnNotEarlier => "flow::return_not_earlier", Error, "a `return` action whose target is not an earlier step";
    UnreachableStep => "flow::unreachable_step", Error, "a step that no path from the start reaches";
    NoEndReachable => "flow::no_end_reachable", Error, "a step from which no end can be reached";
    BranchEscapesParallel => "flow::branch_escapes_parallel", Error, "a branch of a parallel block that jumps outside it";
    JoinNeverCompletes => "flow::join_never_completes", Error, "a join whose policy cannot be met by its branches";
    LeadNotInParallel => "flow::lead_not_in_parallel", Warning, "a lead department that handles none of the branches";
    DecisionWithoutDefault => "flow::decision_without_default", Error, "a decision without an `else` branch";
    NoClockStart => "flow::no_clock_start", Error, "a promised item without a step marked `starts_clock`";
    LimitsExceedPromised => "flow::limits_exceed_promised", Warning, "step limits on some path add up to more than the promised limit";
    LimitsExceedStatutory => "flow::limits_exceed_statutory", Error, "step limits on some path from acceptance add up to more than the statutory limit";
    PromisedOverStatutory => "flow::promised_over_statutory", Error, "a promised limit longer than the statutory limit";
    CorrectionWindowTooLong => "flow::correction_window_too_long", Error, "a correction notice window longer than the law's five working days";
    MissingLegalBasis => "flow::missing_legal_basis", Error, "procedures declared to stop the statutory clock without the law that says so";
    VisitBoundExceeded => "flow::visit_bound_exceeded", Error, "a path with more on-site visits than the online mode allows";
    RhaiSyntax => "flow::rhai_syntax", Error, "a rhai expression that does not compile";
    EmptyBlock => "flow::empty_block", Error, "a flow, parallel block or branch without steps";
    PackSyntax => "pack::syntax", Error, "a pack manifest that is not well-formed YAML";
    PackUnknownKey => "pack::unknown_key", Error, "a key a pack manifest does not take";
    PackMissingKey => "pack::missing_key", Error, "a required manifest key is absent (pack, name, department, version, flows)";
    PackInvalidValue => "pack::invalid_value", Error, "a manifest value of the wrong type";
    PackMissingFile => "pack::missing_file", Error, "a file the manifest lists is not in the pack";
    PackUnlistedFile => "pack::unlisted_file", Warning, "a flow file in the pack folder that the manifest does not list";
    PackDuplicateFlow => "pack::duplicate_flow", Error, "two files of a pack define the same flow id";
    RuleSyntax => "rule::syntax", Error, "a rule file that is not well-formed YAML or DSL";
    RuleUnknownKey => "rule::unknown_key", Error, "a key a rule does not take";
    RuleMissingKey => "rule::missing_key", Error, "a required rule element is absent (id, name, class, subtype, scope, a condition)";
    RuleInvalidValue => "rule::invalid_value", Error, "an unknown class, sub-type, scope, severity, schedule or limit";
    RuleDuplicateId => "rule::duplicate_id", Error, "two rules share an id";
    RuleRhaiSyntax => "rule::rhai_syntax", Error, "a rule condition that does not compile";
    RuleUnknownFact => "rule::unknown_fact", Error, "a condition names a fact the rule's scope does not provide";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A labelled secondary span.
#[derive(Clone, Debug)]
pub struct Label {
    pub span: Span,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub span: Span,
    pub label: String,
    pub help: Option<String>,
    pub related: Vec<Label>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            span,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }
    pub fn label(mut self, text: impl Into<String>) -> Self {
        self.label = text.into();
        self
    }
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.help = Some(text.into());
        self
    }
    pub fn related(mut self, span: Span, text: impl Into<String>) -> Self {
        self.related.push(Label {
            span,
            text: text.into(),
        });
        self
    }
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one file, sorted by position.
#[derive(Clone, Debug)]
pub struct Report {
    pub file: SourceFile,
    pub diagnostics: Vec<Diagnostic>,
}

/// One diagnostic in the `--format json` shape (lines and columns 1-based).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JsonDiagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
}

impl Report {
    pub fn new(file: SourceFile, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| (d.span.start, d.code, d.message.clone()));
        diagnostics.dedup_by(|a, b| {
            a.code == b.code && a.span.start == b.span.start && a.message == b.message
        });
        Report { file, diagnostics }
    }
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        self.diagnostics
            .iter()
            .map(|d| {
                let (line, column) = self.file.line_col(d.span.start);
                let (end_line, end_column) = self.file.line_col(d.span.end);
                JsonDiagnostic {
                    file: self.file.name.clone(),
                    line,
                    column,
                    end_line,
                    end_column,
                    severity: d.severity,
                    code: d.code.as_str(),
                    message: d.message.clone(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }
    /// The human rendering (miette's graphical handler), as `govflow check` prints it.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        for d in self.to_miette() {
            let _ = handler.render_report(&mut out, &d);
            out.push('\n');
        }
        out
    }

    /// miette values, one per diagnostic, for terminal rendering.
    pub fn to_miette(&self) -> Vec<MietteDiagnostic> {
        let source = std::sync::Arc::new(CharSource {
            name: self.file.name.clone(),
            text: self.file.text.to_string(),
        });
        self.diagnostics
            .iter()
            .map(|d| MietteDiagnostic {
                message: d.message.clone(),
                code: d.code,
                severity: d.severity,
                help: d.help.clone(),
                source: source.clone(),
                labels: std::iter::once((d.span, d.label.clone()))
                    .chain(d.related.iter().map(|l| (l.span, l.text.clone())))
                    .map(|(s, t)| {
                        let start = self.file.floor_char(s.start);
                        let end = self.file.floor_char(s.end).max(start);
                        miette::LabeledSpan::new(
                            if t.is_empty() { None } else { Some(t) },
                            start,
                            end - start,
                        )
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A diagnostic ready for miette's graphical handler.
#[derive(Debug)]
pub struct MietteDiagnostic {
    message: String,
    code: Code,
    severity: Severity,
    help: Option<String>,
    source: std::sync::Arc<CharSource>,
    labels: Vec<miette::LabeledSpan>,
}

/// A named source whose reported columns count characters, not bytes, so the
/// `[file:line:column]` header agrees with `--format json` on Chinese text.
#[derive(Debug)]
pub struct CharSource {
    name: String,
    text: String,
}

impl miette::SourceCode for CharSource {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let inner = self.text.as_str().read_span(span, before, after)?;
        let mut column = inner.column();
        if before == 0 {
            let off = span.offset().min(self.text.len());
            let line_start = self.text[..off].rfind('\n').map_or(0, |i| i + 1);
            if let Some(prefix) = self.text.get(line_start..off) {
                column = prefix.chars().count();
            }
        }
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

impl fmt::Display for MietteDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for MietteDiagnostic {}

impl miette::Diagnostic for MietteDiagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.as_str()))
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.as_str()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.source)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }
}

/// "did you mean" suggestion by edit distance over characters.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(word, c);
        let limit = (word.chars().count().max(c.chars().count()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

/// Edit distance counting an adjacent transposition (`stpe` → `step`) as one
/// edit (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        assert_eq!(
            did_you_mean("reveiw", ["review", "accept"]),
            Some("review".into())
        );
        assert_eq!(did_you_mean("zzz", ["review", "accept"]), None);
        assert_eq!(did_you_mean("受里", ["受理", "决定"]), Some("受理".into()));
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {c}");
        }
    }
}

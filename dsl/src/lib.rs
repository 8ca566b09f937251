//! govflow-dsl: the flow language.
//!
//! Flows are written in YAML or in a text DSL. Both are read into a
//! syntax-neutral `Node` tree (yaml.rs, text.rs), lowered to the one IR
//! (lower.rs, ir.rs) and checked (validate.rs). Diagnostics are plain data
//! (diag.rs) rendered by miette or as JSON. fmt.rs prints the IR in either
//! syntax; graph.rs draws it.
//!
//! Start reading at [`load`].

pub mod diag;
pub mod fmt;
pub mod graph;
pub mod ir;
pub mod lower;
pub mod node;
pub mod pack;
pub mod rhai_sandbox;
pub mod rule;
pub mod schema;
pub mod span;
pub mod text;
pub mod timers;
pub mod validate;
pub mod yaml;

pub use diag::{Code, Diagnostic, Report, Severity};
pub use ir::Flow;
pub use span::{SourceFile, Span};

/// Which syntax a file is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    Dsl,
}

impl Syntax {
    /// `.flow` files are DSL; `.yaml`/`.yml` files are YAML.
    pub fn from_path(path: &str) -> Option<Syntax> {
        if path.ends_with(".flow") {
            Some(Syntax::Dsl)
        } else if path.ends_with(".yaml") || path.ends_with(".yml") {
            Some(Syntax::Yaml)
        } else {
            None
        }
    }
}

/// The result of loading one flow file: the IR when it could be built, and
/// every diagnostic found.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub flow: Option<Flow>,
    pub report: Report,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.report.has_errors()
    }
    /// The flow, only when there are no errors.
    pub fn valid_flow(&self) -> Option<&Flow> {
        if self.has_errors() {
            None
        } else {
            self.flow.as_ref()
        }
    }
}

/// Deepest `{`/`[` nesting accepted; deeper input is rejected before parsing
/// so that no input can exhaust the stack.
pub const MAX_NESTING: usize = 64;
/// Largest flow file accepted, in bytes.
pub const MAX_FILE_SIZE: usize = 4 * 1024 * 1024;

/// Parses, lowers and validates one flow file.
pub fn load(name: &str, text: &str, syntax: Syntax) -> Loaded {
    let file = SourceFile::new(name, text);
    let mut diags = Vec::new();
    let node = if text.len() > MAX_FILE_SIZE {
        diags.push(
            Diagnostic::new(
                Code::Io,
                Span::new(0, 0),
                format!(
                    "the file is {} bytes; flows are limited to {MAX_FILE_SIZE}",
                    text.len()
                ),
            )
            .label("too large")
            .help("split the flow into subflows"),
        );
        None
    } else if let Some(at) = too_deep(text) {
        diags.push(
            Diagnostic::new(
                Code::Syntax,
                Span::new(at, at + 1),
                format!("nesting deeper than {MAX_NESTING} levels"),
            )
            .label("too deep")
            .help("flows are block-structured but never this deep; check for unbalanced brackets"),
        );
        None
    } else {
        match syntax {
            Syntax::Yaml => match yaml::parse(text) {
                Ok(n) => Some(n),
                Err(d) => {
                    diags.push(d);
                    None
                }
            },
            Syntax::Dsl => {
                let (n, d) = text::parse(text);
                diags.extend(d);
                n
            }
        }
    };
    let mut flow = None;
    if let Some(node) = node {
        let mut lw = lower::Lower::new();
        flow = lw.flow(&node);
        diags.extend(lw.diags);
    }
    if let Some(f) = &mut flow {
        validate::resolve_targets(f);
        diags.extend(validate::validate(f, &file));
    }
    Loaded {
        flow,
        report: Report::new(file, diags),
    }
}

/// Byte offset where bracket nesting (outside strings) first exceeds the limit.
/// YAML block nesting is bounded by the same count of indentation levels.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str: Option<char> = None;
    let mut prev = '\0';
    for (i, c) in text.char_indices() {
        match in_str {
            Some(q) => {
                if c == q && prev != '\\' {
                    in_str = None;
                }
                if c == '\n' {
                    in_str = None;
                }
            }
            None => match c {
                '"' => in_str = Some('"'),
                '{' | '[' => {
                    depth += 1;
                    if depth > MAX_NESTING {
                        return Some(i);
                    }
                }
                '}' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    // YAML: deep block nesting shows as many `- ` or indentation levels on a line.
    for line in text.lines() {
        let indent = line.len() - line.trim_start_matches([' ', '-']).len();
        if indent > MAX_NESTING * 8 {
            return Some(text.find(line).unwrap_or(0));
        }
    }
    None
}

/// Loads a file from disk, choosing the syntax by extension.
pub fn load_path(path: &std::path::Path) -> Loaded {
    let name = path.display().to_string();
    let syntax = Syntax::from_path(&name).unwrap_or(Syntax::Yaml);
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => load(&name, &text, syntax),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let file = SourceFile::new(name, lossy);
                let at = file.floor_char(at);
                Loaded {
                    flow: None,
                    report: Report::new(
                        file,
                        vec![
                            Diagnostic::new(
                                Code::Io,
                                Span::new(at, at),
                                format!("the file is not UTF-8 text (invalid byte at offset {at})"),
                            )
                            .label("invalid UTF-8")
                            .help("save the file as UTF-8"),
                        ],
                    ),
                }
            }
        },
        Err(e) => Loaded {
            flow: None,
            report: Report::new(
                SourceFile::new(name, ""),
                vec![
                    Diagnostic::new(
                        Code::Io,
                        Span::new(0, 0),
                        format!("cannot read the file: {e}"),
                    )
                    .help("check the path and its permissions"),
                ],
            ),
        },
    }
}

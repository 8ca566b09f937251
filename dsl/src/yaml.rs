//! YAML → `Node`, keeping the byte span of every key and value.
//!
//! serde-based YAML loses positions for anything but syntax errors, so flows
//! are read with yaml-rust2's event parser, whose markers carry byte offsets.

use crate::diag::{Code, Diagnostic};
use crate::node::{Entry, Node, Value};
use crate::span::Span;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Converts yaml-rust2 marker indexes (counted in characters) to byte offsets.
struct CharIndex {
    /// Byte offset of each character; empty when the text is ASCII (identity).
    offsets: Vec<u32>,
    len: usize,
}

impl CharIndex {
    fn new(text: &str) -> CharIndex {
        let offsets = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(i, _)| i as u32).collect()
        };
        CharIndex {
            offsets,
            len: text.len(),
        }
    }
    fn byte(&self, char_idx: usize) -> usize {
        if self.offsets.is_empty() {
            return char_idx.min(self.len);
        }
        self.offsets.get(char_idx).map_or(self.len, |&b| b as usize)
    }
}

/// Parses YAML text into a `Node`; a syntax error becomes one diagnostic.
pub fn parse(full: &str) -> Result<Node, Diagnostic> {
    // A byte-order mark (as Windows editors write) is not content.
    let bom = if full.starts_with('\u{FEFF}') { 3 } else { 0 };
    let text = &full[bom..];
    let mut node = parse_inner(text).map_err(|mut d| {
        d.span = Span::new(d.span.start + bom, d.span.end + bom);
        d
    })?;
    if bom > 0 {
        shift(&mut node, bom);
    }
    Ok(node)
}

fn shift(node: &mut Node, by: usize) {
    node.span = Span::new(node.span.start + by, node.span.end + by);
    match &mut node.value {
        Value::List(items) => items.iter_mut().for_each(|n| shift(n, by)),
        Value::Map(entries) => {
            for e in entries {
                e.key_span = Span::new(e.key_span.start + by, e.key_span.end + by);
                shift(&mut e.value, by);
            }
        }
        _ => {}
    }
}

fn parse_inner(text: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        index: CharIndex::new(text),
        text,
        stack: Vec::new(),
        root: None,
        anchors: Default::default(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let at = CharIndex::new(text).byte(e.marker().index());
        let msg = e.info().to_string();
        return Err(Diagnostic::new(
            Code::Syntax,
            Span::new(at, next_char_end(text, at)),
            format!("invalid YAML: {msg}"),
        )
        .label("here")
        .help("check the indentation and quoting around this position"));
    }
    if let Some(d) = builder.error {
        return Err(d);
    }
    Ok(builder.root.unwrap_or(Node {
        value: Value::Null,
        span: Span::new(0, 0),
    }))
}

fn next_char_end(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(at, |c| at + c.len_utf8())
}

enum Frame {
    Seq {
        start: usize,
        items: Vec<Node>,
        anchor: usize,
    },
    Map {
        start: usize,
        entries: Vec<Entry>,
        key: Option<(String, Span)>,
        anchor: usize,
    },
}

struct Builder<'a> {
    index: CharIndex,
    text: &'a str,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    error: Option<Diagnostic>,
}

impl Builder<'_> {
    fn scalar_span(&self, value: &str, style: TScalarStyle, mark: Marker) -> Span {
        let start = self.index.byte(mark.index());
        let rest = &self.text[start..];
        let end = match style {
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let q = if style == TScalarStyle::SingleQuoted {
                    '\''
                } else {
                    '"'
                };
                let mut chars = rest.char_indices();
                chars.next();
                let mut end = rest.len();
                let mut escaped = false;
                for (i, c) in chars {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && q == '"' {
                        escaped = true;
                    } else if c == q {
                        if q == '\'' && rest[i + 1..].starts_with('\'') {
                            escaped = true;
                            continue;
                        }
                        end = i + 1;
                        break;
                    }
                }
                start + end
            }
            TScalarStyle::Plain if rest.starts_with(value) => start + value.len(),
            TScalarStyle::Literal | TScalarStyle::Folded => {
                start + rest.find('\n').unwrap_or(rest.len())
            }
            _ => {
                let line = rest.split('\n').next().unwrap_or("");
                let line = line.split(" #").next().unwrap_or("");
                start + line.trim_end().len()
            }
        };
        Span::new(start, end)
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    let (k, span) = match &node.value {
                        Value::Str { text, .. } => (text.clone(), node.span),
                        _ => {
                            if self.error.is_none() {
                                self.error = Some(
                                    Diagnostic::new(
                                        Code::Syntax,
                                        node.span,
                                        "a map key must be a plain string",
                                    )
                                    .label("complex key")
                                    .help("write keys as plain words, such as `name:`"),
                                );
                            }
                            (String::new(), node.span)
                        }
                    };
                    *key = Some((k, span));
                }
                Some((k, key_span)) => entries.push(Entry::new(k, key_span, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = self.index.byte(mark.index());
        if self.stack.len() > crate::MAX_NESTING && self.error.is_none() {
            self.error = Some(
                Diagnostic::new(
                    Code::Syntax,
                    Span::new(at, at),
                    format!("nesting deeper than {} levels", crate::MAX_NESTING),
                )
                .label("too deep")
                .help("flows are block-structured but never this deep"),
            );
        }
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let span = self.scalar_span(&value, style, mark);
                let quoted = style != TScalarStyle::Plain;
                let node = if !quoted && matches!(value.as_str(), "" | "~" | "null") {
                    Node {
                        value: Value::Null,
                        span,
                    }
                } else {
                    Node {
                        value: Value::Str {
                            text: value,
                            quoted,
                        },
                        span,
                    }
                };
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                start: at,
                items: Vec::new(),
                anchor,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                start: at,
                entries: Vec::new(),
                key: None,
                anchor,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq {
                        start,
                        items,
                        anchor,
                    }) => {
                        let end = items.last().map_or(at, |n| n.span.end).max(start);
                        (Node::list(items, Span::new(start, end)), anchor)
                    }
                    Some(Frame::Map {
                        start,
                        entries,
                        anchor,
                        ..
                    }) => {
                        let end = entries.last().map_or(at, |e| e.value.span.end).max(start);
                        (Node::map(entries, Span::new(start, end)), anchor)
                    }
                    None => return,
                };
                self.push_value(node, anchor);
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().unwrap_or(Node {
                    value: Value::Null,
                    span: Span::new(at, at),
                });
                self.push_value(node, 0);
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "flow: 许可\nsteps:\n  - task: \"受理\"\n";
        let node = parse(text).expect("valid yaml");
        let steps = node.get("steps").expect("steps");
        let first = &steps.as_list().expect("list")[0];
        let task = first.get("task").expect("task");
        assert_eq!(&text[task.span.start..task.span.end], "\"受理\"");
        let flow = node.as_map().expect("map")[0].clone();
        assert_eq!(&text[flow.key_span.start..flow.key_span.end], "flow");
        assert_eq!(&text[flow.value.span.start..flow.value.span.end], "许可");
    }

    #[test]
    fn spans_are_bytes_after_chinese_text() {
        let text = "name: 受理审查\nflow: x\n";
        let node = parse(text).expect("valid yaml");
        let flow = node.get("flow").expect("flow");
        assert_eq!(&text[flow.span.start..flow.span.end], "x");
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let text = "\u{FEFF}flow: 许可\n";
        let node = parse(text).expect("valid yaml");
        let flow = node.get("flow").expect("flow");
        assert_eq!(&text[flow.span.start..flow.span.end], "许可");
    }

    #[test]
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: c").expect_err("invalid");
        assert_eq!(err.code, Code::Syntax);
    }
}

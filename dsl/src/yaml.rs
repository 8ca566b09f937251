//! YAML → `Node`, keeping the byte span of every key and value.
//!
//! serde-based YAML loses positions for anything but syntax errors, so flows
//! are read with yaml-rust2's event parser, whose markers carry byte offsets.

use crate::diag::{Code, Diagnostic};
use crate::node::{Entry, Node, Value};
use crate::span::Span;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Parses YAML text into a `Node`; a syntax error becomes one diagnostic.
pub fn parse(text: &str) -> Result<Node, Diagnostic> {
    let mut builder = Builder {
        text,
        stack: Vec::new(),
        root: None,
        anchors: Default::default(),
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, false) {
        let at = clamp(text, e.marker().index());
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

fn clamp(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
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
    text: &'a str,
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    error: Option<Diagnostic>,
}

impl Builder<'_> {
    fn scalar_span(&self, value: &str, style: TScalarStyle, mark: Marker) -> Span {
        let start = clamp(self.text, mark.index());
        let rest = &self.text[start..];
        let end = match style {
            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                let q = if style == TScalarStyle::SingleQuoted { '\'' } else { '"' };
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
        let at = clamp(self.text, mark.index());
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
    fn syntax_errors_have_positions() {
        let err = parse("a: [1, 2\nb: c").expect_err("invalid");
        assert_eq!(err.code, Code::Syntax);
    }
}

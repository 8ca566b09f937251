//! The syntax-neutral document tree that both YAML and the DSL produce.
//!
//! A `Node` is a string, a list or an ordered map, each with the span of the
//! text it came from. The lowering to the IR (lower.rs) reads only `Node`s, so
//! both syntaxes share every check and every diagnostic message.

use crate::span::Span;

#[derive(Clone, Debug)]
pub enum Value {
    /// A scalar; `quoted` says whether the source quoted it (YAML) or wrote it as a string (DSL).
    Str {
        text: String,
        quoted: bool,
    },
    List(Vec<Node>),
    Map(Vec<Entry>),
    Null,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    pub fn str(text: impl Into<String>, span: Span) -> Node {
        Node {
            value: Value::Str {
                text: text.into(),
                quoted: false,
            },
            span,
        }
    }
    pub fn quoted(text: impl Into<String>, span: Span) -> Node {
        Node {
            value: Value::Str {
                text: text.into(),
                quoted: true,
            },
            span,
        }
    }
    pub fn map(entries: Vec<Entry>, span: Span) -> Node {
        Node {
            value: Value::Map(entries),
            span,
        }
    }
    pub fn list(items: Vec<Node>, span: Span) -> Node {
        Node {
            value: Value::List(items),
            span,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } => Some(text),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(e) => Some(e),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Node]> {
        match &self.value {
            Value::List(l) => Some(l),
            _ => None,
        }
    }
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }
    pub fn kind_name(&self) -> &'static str {
        match self.value {
            Value::Str { .. } => "a string",
            Value::List(_) => "a list",
            Value::Map(_) => "a map",
            Value::Null => "nothing",
        }
    }
}

impl Entry {
    pub fn new(key: impl Into<String>, key_span: Span, value: Node) -> Entry {
        Entry {
            key: key.into(),
            key_span,
            value,
        }
    }
}

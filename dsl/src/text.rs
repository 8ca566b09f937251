//! The text DSL → `Node`.
//!
//! pest turns the text into atoms (words, strings, numbers, lists, blocks,
//! arrows, `when`/`set` clauses); this module reads the atoms by keyword,
//! using the arities in schema.rs, and builds the same `Node` tree YAML gives.
//!
//! Why this file is long: one short reader per keyword of the DSL (each step
//! kind, block and clause), all on the same atom cursor.

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::node::{Entry, Node, Value};
use crate::schema::{self, Arity, Keys};
use crate::span::Span;
use pest::Parser as _;
use pest::iterators::Pair;

#[derive(pest_derive::Parser)]
#[grammar = "flow.pest"]
struct FlowParser;

#[derive(Clone, Debug)]
pub(crate) enum Atom {
    Word(String, Span),
    Str(String, Span),
    Num(String, Span),
    Arrow(Span),
    Block(Vec<Atom>, Span),
    List(Vec<Atom>, Span),
    When {
        cond: String,
        cond_span: Span,
        span: Span,
    },
    Set {
        field: String,
        field_span: Span,
        expr: String,
        expr_span: Span,
    },
}

impl Atom {
    pub(crate) fn span(&self) -> Span {
        match self {
            Atom::Word(_, s)
            | Atom::Str(_, s)
            | Atom::Num(_, s)
            | Atom::Arrow(s)
            | Atom::Block(_, s)
            | Atom::List(_, s)
            | Atom::When { span: s, .. }
            | Atom::Set { expr_span: s, .. } => *s,
        }
    }
    pub(crate) fn describe(&self) -> String {
        match self {
            Atom::Word(w, _) => format!("`{w}`"),
            Atom::Str(s, _) => format!("the string \"{s}\""),
            Atom::Num(n, _) => format!("the number `{n}`"),
            Atom::Arrow(_) => "`->`".into(),
            Atom::Block(..) => "a `{ … }` block".into(),
            Atom::List(..) => "a `[ … ]` list".into(),
            Atom::When { .. } => "a `when` clause".into(),
            Atom::Set { .. } => "a `set` clause".into(),
        }
    }
    pub(crate) fn word_is(&self, w: &str) -> bool {
        matches!(self, Atom::Word(x, _) if x == w)
    }
    fn word(&self) -> Option<&str> {
        match self {
            Atom::Word(w, _) => Some(w),
            _ => None,
        }
    }
}

/// The atoms of a DSL text (flows and rule files share the lexical layer).
pub(crate) fn atoms(text: &str) -> Result<Vec<Atom>, Diagnostic> {
    let pairs = FlowParser::parse(Rule::file, text).map_err(|e| syntax_error(text, &e))?;
    let mut atoms = Vec::new();
    for pair in pairs {
        if pair.as_rule() == Rule::file {
            for p in pair.into_inner() {
                if p.as_rule() != Rule::EOI {
                    atoms.push(to_atom(p));
                }
            }
        }
    }
    Ok(atoms)
}

/// Parses DSL text into a `Node`, with every problem found on the way.
pub fn parse(text: &str) -> (Option<Node>, Vec<Diagnostic>) {
    let pairs = match FlowParser::parse(Rule::file, text) {
        Ok(p) => p,
        Err(e) => return (None, vec![syntax_error(text, &e)]),
    };
    let mut atoms = Vec::new();
    for pair in pairs {
        if pair.as_rule() == Rule::file {
            for p in pair.into_inner() {
                if p.as_rule() != Rule::EOI {
                    atoms.push(to_atom(p));
                }
            }
        }
    }
    let mut r = Reader { diags: Vec::new() };
    let node = r.flow(&atoms, text.len());
    (node, r.diags)
}

fn syntax_error(text: &str, e: &pest::error::Error<Rule>) -> Diagnostic {
    let start = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    }
    .min(text.len());
    let end = text[start..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    let found = text[start..].chars().next();
    let what = match found {
        None => "the file ends too early".to_string(),
        Some(c) if c.is_control() && c != '\n' => {
            format!("unexpected control character U+{:04X}", c as u32)
        }
        Some(c) => format!("unexpected `{}`", c.escape_debug()),
    };
    let expected = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(rule_name).collect();
            names.sort_unstable();
            names.dedup();
            names.join(", ")
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    Diagnostic::new(
        Code::Syntax,
        Span::new(start, end),
        format!("invalid flow syntax: {what}"),
    )
    .label(if expected.is_empty() {
        "here".to_string()
    } else {
        format!("expected {expected}")
    })
    .help("check for an unclosed `{`, `[` or `\"` before this point")
}

fn rule_name(r: &Rule) -> &'static str {
    match r {
        Rule::block => "`{`",
        Rule::list => "`[`",
        Rule::arrow => "`->`",
        Rule::string | Rule::str_inner => "a string",
        Rule::number => "a number",
        Rule::path | Rule::ident => "a word",
        Rule::cond => "a condition",
        Rule::expr_line => "an expression",
        Rule::EOI => "end of file",
        _ => "a flow element",
    }
}

fn span_of(p: &Pair<'_, Rule>) -> Span {
    Span::new(p.as_span().start(), p.as_span().end())
}

fn to_atom(p: Pair<'_, Rule>) -> Atom {
    let span = span_of(&p);
    match p.as_rule() {
        Rule::block => Atom::Block(p.into_inner().map(to_atom).collect(), span),
        Rule::list => Atom::List(p.into_inner().map(to_atom).collect(), span),
        Rule::arrow => Atom::Arrow(span),
        Rule::string => Atom::Str(unescape(p.into_inner().as_str()), span),
        Rule::number => Atom::Num(p.as_str().to_string(), span),
        Rule::when_clause => {
            let cond = p.into_inner().next();
            let (text, cs) = cond
                .map(|c| (c.as_str().to_string(), span_of(&c)))
                .unwrap_or_default();
            let trimmed = crate::span::strip_line_comment(&text).trim_end();
            Atom::When {
                cond: trimmed.to_string(),
                cond_span: Span::new(cs.start, cs.start + trimmed.len()),
                span,
            }
        }
        Rule::set_clause => {
            let mut inner = p.into_inner();
            let (field, field_span) = inner
                .next()
                .map(|f| (f.as_str().to_string(), span_of(&f)))
                .unwrap_or_default();
            let (expr, es) = inner
                .next()
                .map(|e| (e.as_str().to_string(), span_of(&e)))
                .unwrap_or_default();
            let trimmed = crate::span::strip_line_comment(&expr).trim_end();
            Atom::Set {
                field,
                field_span,
                expr: trimmed.to_string(),
                expr_span: Span::new(es.start, es.start + trimmed.len()),
            }
        }
        _ => Atom::Word(p.as_str().to_string(), span),
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Escapes a string for the DSL (the inverse of `unescape`).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

struct Reader {
    diags: Vec<Diagnostic>,
}

/// Words that start a statement (a step, a section or a body statement).
fn is_statement(w: &str) -> bool {
    schema::STEP_KINDS.contains(&w)
        || BODY_STATEMENTS.contains(&w)
        || matches!(
            w,
            "item"
                | "departments"
                | "materials"
                | "name"
                | "version"
                | "reports"
                | "resubmit_within"
        )
}

/// Words with a meaning of their own anywhere in a flow.
fn is_keyword(w: &str) -> bool {
    is_statement(w)
        || schema::arity(schema::STEP_KEYS, w).is_some()
        || schema::arity(schema::ITEM_KEYS, w).is_some()
        || schema::arity(schema::MATERIAL_KEYS, w).is_some()
}

/// Statements that may start a new entry in a step body.
const BODY_STATEMENTS: &[&str] = &["on", "else", "consolidate", "branch"];

impl Reader {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn unexpected(&mut self, atom: &Atom, expected: &str, help: &str) {
        self.err(
            Diagnostic::new(
                Code::Syntax,
                atom.span(),
                format!(
                    "unexpected {} where {expected} was expected",
                    atom.describe()
                ),
            )
            .label(format!("expected {expected}"))
            .help(help.to_string()),
        );
    }

    fn flow(&mut self, atoms: &[Atom], len: usize) -> Option<Node> {
        let mut i = 0;
        let Some(first) = atoms.first() else {
            self.err(
                Diagnostic::new(
                    Code::Syntax,
                    Span::new(0, len.min(1)),
                    "the file has no flow",
                )
                .label("empty")
                .help("a flow file starts with `flow ID \"name\" { … }`"),
            );
            return None;
        };
        if first.word() != Some("flow") {
            self.unexpected(
                first,
                "`flow`",
                "a flow file starts with `flow ID \"name\" { … }`",
            );
            return None;
        }
        let kw_span = first.span();
        i += 1;
        let mut entries = Vec::new();
        match atoms.get(i) {
            Some(Atom::Word(id, s)) => {
                entries.push(Entry::new("flow", kw_span, Node::str(id.clone(), *s)));
                i += 1;
            }
            Some(a) => {
                self.unexpected(a, "the flow id", "write `flow my_flow \"名称\" { … }`");
                return None;
            }
            None => {
                self.err(
                    Diagnostic::new(Code::Syntax, kw_span, "the flow has no id")
                        .label("here")
                        .help("write `flow my_flow \"名称\" { … }`"),
                );
                return None;
            }
        }
        if let Some(Atom::Str(name, s)) = atoms.get(i) {
            entries.push(Entry::new("name", *s, Node::quoted(name.clone(), *s)));
            i += 1;
        }
        let mut steps = Vec::new();
        let mut steps_span: Option<Span> = None;
        while i < atoms.len() {
            match &atoms[i] {
                Atom::Word(w, ws) if w == "version" => {
                    i += 1;
                    if let Some(n) = self.one(atoms, &mut i, *ws, "version") {
                        entries.push(Entry::new("version", *ws, n));
                    }
                }
                Atom::Block(body, _) => {
                    i += 1;
                    self.flow_body(body, &mut entries, &mut steps, &mut steps_span);
                }
                other => {
                    self.unexpected(
                        other,
                        "`version` or the flow's `{ … }` body",
                        "write `flow my_flow \"名称\" version 1 { … }`",
                    );
                    i += 1;
                }
            }
        }
        let span = Span::new(0, len);
        entries.push(Entry::new(
            "steps",
            steps_span.unwrap_or(kw_span),
            Node::list(steps, steps_span.unwrap_or(kw_span)),
        ));
        Some(Node::map(entries, span))
    }

    fn flow_body(
        &mut self,
        atoms: &[Atom],
        entries: &mut Vec<Entry>,
        steps: &mut Vec<Node>,
        steps_span: &mut Option<Span>,
    ) {
        let mut i = 0;
        while i < atoms.len() {
            let atom = &atoms[i];
            match atom.word() {
                Some("item") => {
                    i += 1;
                    let node = self.block_of(atoms, &mut i, atom.span(), "item", |r, a| {
                        r.attributes(a, schema::ITEM_KEYS, "item")
                    });
                    entries.push(Entry::new("item", atom.span(), node));
                }
                Some("departments") => {
                    i += 1;
                    let node = self.block_of(atoms, &mut i, atom.span(), "departments", |r, a| {
                        r.declarations(a, schema::DEPARTMENT_KEYS, "department")
                    });
                    entries.push(Entry::new("departments", atom.span(), node));
                }
                Some("materials") => {
                    i += 1;
                    let node = self.block_of(atoms, &mut i, atom.span(), "materials", |r, a| {
                        r.declarations(a, schema::MATERIAL_KEYS, "material")
                    });
                    entries.push(Entry::new("materials", atom.span(), node));
                }
                Some("name") | Some("version") => {
                    let key = atom.word().unwrap_or_default().to_string();
                    i += 1;
                    if let Some(n) = self.one(atoms, &mut i, atom.span(), &key) {
                        entries.push(Entry::new(key, atom.span(), n));
                    }
                }
                Some(w) if schema::STEP_KINDS.contains(&w) => {
                    let step = self.step(atoms, &mut i);
                    *steps_span = Some(steps_span.map_or(step.span, |s| s.to(step.span)));
                    steps.push(step);
                }
                Some(w) => {
                    let suggestion = did_you_mean(
                        w,
                        ["item", "departments", "materials", "name", "version"]
                            .into_iter()
                            .chain(schema::STEP_KINDS.iter().copied()),
                    );
                    self.err(
                        Diagnostic::new(Code::UnknownKey, atom.span(), format!("unknown keyword `{w}` in the flow body"))
                            .label("not a flow element")
                            .help(match suggestion {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => "the flow body holds `item`, `departments`, `materials` and steps (`task`, `auto`, `decision`, `parallel`, `joint_review`, `subflow`, `wait`, `end`)".into(),
                            }),
                    );
                    i += 1;
                    self.skip_to_statement(atoms, &mut i);
                }
                None => {
                    self.unexpected(
                        atom,
                        "a section or a step",
                        "the flow body holds `item`, `departments`, `materials` and steps",
                    );
                    i += 1;
                }
            }
        }
    }

    /// Skips atoms until the next word that can start a statement.
    fn skip_to_statement(&mut self, atoms: &[Atom], i: &mut usize) {
        while let Some(a) = atoms.get(*i) {
            if let Some(w) = a.word()
                && (schema::STEP_KINDS.contains(&w) || BODY_STATEMENTS.contains(&w))
            {
                return;
            }
            if matches!(a, Atom::When { .. } | Atom::Set { .. }) {
                return;
            }
            *i += 1;
        }
    }

    fn block_of(
        &mut self,
        atoms: &[Atom],
        i: &mut usize,
        kw: Span,
        what: &str,
        f: impl FnOnce(&mut Reader, &[Atom]) -> Node,
    ) -> Node {
        match atoms.get(*i) {
            Some(Atom::Block(body, span)) => {
                *i += 1;
                let mut n = f(self, body);
                n.span = *span;
                n
            }
            other => {
                let at = other.map_or(kw, Atom::span);
                self.err(
                    Diagnostic::new(
                        Code::Syntax,
                        at,
                        format!("`{what}` needs a `{{ … }}` block"),
                    )
                    .label("expected `{`")
                    .help(format!("write `{what} {{ … }}`")),
                );
                Node::map(Vec::new(), kw)
            }
        }
    }

    /// One value: a word, number or string.
    fn one(&mut self, atoms: &[Atom], i: &mut usize, kw: Span, key: &str) -> Option<Node> {
        match atoms.get(*i) {
            Some(Atom::Word(w, s)) | Some(Atom::Num(w, s)) => {
                *i += 1;
                Some(Node::str(w.clone(), *s))
            }
            Some(Atom::Str(w, s)) => {
                *i += 1;
                Some(Node::quoted(w.clone(), *s))
            }
            other => {
                let at = other.map_or(kw, Atom::span);
                self.err(
                    Diagnostic::new(Code::Syntax, at, format!("`{key}` needs a value"))
                        .label("expected a word, number or string")
                        .help(format!("write `{key} VALUE`")),
                );
                None
            }
        }
    }

    fn value_of(&mut self, a: &Atom) -> Option<Node> {
        match a {
            Atom::Word(w, s) | Atom::Num(w, s) => Some(Node::str(w.clone(), *s)),
            Atom::Str(w, s) => Some(Node::quoted(w.clone(), *s)),
            other => {
                self.unexpected(
                    other,
                    "a word, number or string",
                    "list items are words, numbers or strings",
                );
                None
            }
        }
    }

    /// Reads the value of `key` with the given arity.
    fn value(
        &mut self,
        atoms: &[Atom],
        i: &mut usize,
        kw: Span,
        key: &str,
        arity: Arity,
        ctx: &str,
    ) -> Option<Node> {
        match arity {
            Arity::Flag => Some(Node::str("true", kw)),
            Arity::One => self.one(atoms, i, kw, key),
            Arity::Limit => match (atoms.get(*i), atoms.get(*i + 1)) {
                (Some(Atom::Num(n, ns)), Some(Atom::Word(u, us)))
                    if crate::ir::Unit::parse(u).is_some() || !is_keyword(u) =>
                {
                    *i += 2;
                    Some(Node::str(format!("{n} {u}"), ns.to(*us)))
                }
                (Some(Atom::Num(n, ns)), _) => {
                    *i += 1;
                    Some(Node::str(n.clone(), *ns))
                }
                (Some(Atom::Str(s, ss)), _) => {
                    *i += 1;
                    Some(Node::quoted(s.clone(), *ss))
                }
                (other, _) => {
                    let at = other.map_or(kw, Atom::span);
                    self.err(
                        Diagnostic::new(
                            Code::MalformedLimit,
                            at,
                            format!("`{key}` needs a time limit"),
                        )
                        .label("expected `N workdays`, `N days` or `N hours`")
                        .help(format!("write `{key} 5 workdays`")),
                    );
                    None
                }
            },
            Arity::List => match atoms.get(*i) {
                Some(Atom::List(items, s)) => {
                    *i += 1;
                    let nodes = items.iter().filter_map(|a| self.value_of(a)).collect();
                    Some(Node::list(nodes, *s))
                }
                Some(a @ (Atom::Word(..) | Atom::Str(..) | Atom::Num(..))) => {
                    *i += 1;
                    let n = self.value_of(a)?;
                    let s = n.span;
                    Some(Node::list(vec![n], s))
                }
                other => {
                    let at = other.map_or(kw, Atom::span);
                    self.err(
                        Diagnostic::new(Code::Syntax, at, format!("`{key}` needs a list"))
                            .label("expected `[ … ]`")
                            .help(format!("write `{key} [a, b]`")),
                    );
                    None
                }
            },
            Arity::Block | Arity::OneOrBlock => match atoms.get(*i) {
                Some(Atom::Block(body, s)) => {
                    *i += 1;
                    let keys = match (ctx, key) {
                        ("item", "fee") => schema::FEE_KEYS,
                        (_, "consolidate") => schema::CONSOLIDATE_KEYS,
                        (_, "roles") => &[],
                        _ => &[],
                    };
                    let mut n = if key == "roles" {
                        self.declarations(body, &[], "role")
                    } else {
                        self.attributes(body, keys, key)
                    };
                    n.span = *s;
                    Some(n)
                }
                _ if arity == Arity::OneOrBlock => self.one(atoms, i, kw, key),
                other => {
                    let at = other.map_or(kw, Atom::span);
                    self.err(
                        Diagnostic::new(
                            Code::Syntax,
                            at,
                            format!("`{key}` needs a `{{ … }}` block"),
                        )
                        .label("expected `{`")
                        .help(format!("write `{key} {{ … }}`")),
                    );
                    None
                }
            },
            Arity::Join => match (atoms.get(*i), atoms.get(*i + 1), atoms.get(*i + 2)) {
                (Some(Atom::Num(n, ns)), Some(Atom::Word(of, _)), Some(Atom::Num(m, ms)))
                    if of == "of" =>
                {
                    *i += 3;
                    Some(Node::str(format!("{n} of {m}"), ns.to(*ms)))
                }
                _ => self.one(atoms, i, kw, key),
            },
            Arity::Target => {
                if let Some(Atom::Arrow(_)) = atoms.get(*i) {
                    *i += 1;
                }
                self.target(atoms, i, kw)
            }
        }
    }

    /// `key value key value …` with keys from `keys`.
    fn attributes(&mut self, atoms: &[Atom], keys: Keys, ctx: &str) -> Node {
        let mut entries = Vec::new();
        let mut i = 0;
        while i < atoms.len() {
            let atom = &atoms[i];
            i += 1;
            let Some(w) = atom.word() else {
                self.unexpected(
                    atom,
                    &format!("a key of `{ctx}`"),
                    &format!("`{ctx}` holds `key value` pairs"),
                );
                continue;
            };
            match schema::arity(keys, w) {
                Some(arity) => {
                    if let Some(v) = self.value(atoms, &mut i, atom.span(), w, arity, ctx) {
                        entries.push(Entry::new(w, atom.span(), v));
                    }
                }
                None => {
                    self.unknown_key(w, atom.span(), keys, ctx);
                    // Skip the value that probably follows.
                    if matches!(
                        atoms.get(i),
                        Some(Atom::Str(..) | Atom::Num(..) | Atom::List(..) | Atom::Block(..))
                    ) {
                        i += 1;
                    }
                }
            }
        }
        let span = atoms.first().map_or(Span::default(), Atom::span);
        Node::map(entries, span)
    }

    fn unknown_key(&mut self, w: &str, span: Span, keys: Keys, ctx: &str) {
        let help = match did_you_mean(w, schema::names(keys)) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "`{ctx}` accepts: {}",
                schema::names(keys).collect::<Vec<_>>().join(", ")
            ),
        };
        self.err(
            Diagnostic::new(
                Code::UnknownKey,
                span,
                format!("unknown key `{w}` in `{ctx}`"),
            )
            .label("unknown key")
            .help(help),
        );
    }

    /// `ID "name" attrs… { … }?` repeated (departments, roles, materials).
    fn declarations(&mut self, atoms: &[Atom], keys: Keys, what: &str) -> Node {
        let mut entries = Vec::new();
        let mut i = 0;
        while i < atoms.len() {
            let atom = &atoms[i];
            i += 1;
            let Some(id) = atom.word() else {
                self.unexpected(
                    atom,
                    &format!("a {what} id"),
                    &format!("declare a {what} as `id \"名称\"`"),
                );
                continue;
            };
            let mut fields = Vec::new();
            if let Some(Atom::Str(name, s)) = atoms.get(i) {
                fields.push(Entry::new("name", *s, Node::quoted(name.clone(), *s)));
                i += 1;
            }
            // Attributes until the next word that is not one of ours.
            loop {
                match atoms.get(i) {
                    Some(Atom::Word(w, ws)) if schema::arity(keys, w).is_some() => {
                        i += 1;
                        let arity = schema::arity(keys, w).unwrap_or(Arity::One);
                        if let Some(v) = self.value(atoms, &mut i, *ws, w, arity, what) {
                            fields.push(Entry::new(w.clone(), *ws, v));
                        }
                    }
                    Some(Atom::Block(body, bs)) if what == "department" => {
                        i += 1;
                        let inner = self.attributes(body, schema::DEPARTMENT_KEYS, "department");
                        if let Some(m) = inner.as_map() {
                            fields.extend(m.iter().cloned());
                        }
                        let _ = bs;
                    }
                    _ => break,
                }
            }
            let span = atom.span();
            let value = if what == "role" {
                fields
                    .into_iter()
                    .find(|e| e.key == "name")
                    .map(|e| e.value)
                    .unwrap_or(Node {
                        value: Value::Null,
                        span,
                    })
            } else {
                Node::map(fields, span)
            };
            entries.push(Entry::new(id, span, value));
        }
        Node::map(entries, atoms.first().map_or(Span::default(), Atom::span))
    }

    /// `-> ID` or `-> end ID "name"`.
    fn target(&mut self, atoms: &[Atom], i: &mut usize, at: Span) -> Option<Node> {
        match atoms.get(*i) {
            Some(Atom::Word(w, ws)) if w == "end" => {
                *i += 1;
                let Some(Atom::Word(id, ids)) = atoms.get(*i) else {
                    self.err(
                        Diagnostic::new(Code::Syntax, *ws, "`end` needs an id")
                            .label("expected an id")
                            .help("write `-> end denied \"不予许可\"`"),
                    );
                    return None;
                };
                *i += 1;
                let mut entries = vec![Entry::new("end", *ws, Node::str(id.clone(), *ids))];
                let mut span = ws.to(*ids);
                if let Some(Atom::Str(name, ns)) = atoms.get(*i) {
                    *i += 1;
                    span = span.to(*ns);
                    entries.push(Entry::new("name", *ns, Node::quoted(name.clone(), *ns)));
                }
                Some(Node::map(entries, span))
            }
            Some(Atom::Word(w, ws)) => {
                *i += 1;
                Some(Node::str(w.clone(), *ws))
            }
            other => {
                let s = other.map_or(at, Atom::span);
                self.err(
                    Diagnostic::new(Code::Syntax, s, "expected a target step")
                        .label("expected a step id or `end ID`")
                        .help("write `-> review` or `-> end denied \"不予许可\"`"),
                );
                None
            }
        }
    }

    fn expect_arrow(&mut self, atoms: &[Atom], i: &mut usize, at: Span) -> bool {
        if let Some(Atom::Arrow(_)) = atoms.get(*i) {
            *i += 1;
            true
        } else {
            let s = atoms.get(*i).map_or(at, Atom::span);
            self.err(
                Diagnostic::new(Code::Syntax, s, "expected `->`")
                    .label("expected `->`")
                    .help("a transition is written `… -> target`"),
            );
            false
        }
    }

    /// A step: `KIND ID "name"? attrs… { body }?`.
    fn step(&mut self, atoms: &[Atom], i: &mut usize) -> Node {
        let kw = &atoms[*i];
        let kind = kw.word().unwrap_or_default().to_string();
        let kw_span = kw.span();
        *i += 1;
        let mut entries = Vec::new();
        let mut span = kw_span;
        match atoms.get(*i) {
            Some(Atom::Word(id, s)) if !schema::STEP_KINDS.contains(&id.as_str()) => {
                *i += 1;
                span = span.to(*s);
                entries.push(Entry::new(kind.clone(), kw_span, Node::str(id.clone(), *s)));
            }
            other => {
                let at = other.map_or(kw_span, Atom::span);
                self.err(
                    Diagnostic::new(Code::Syntax, at, format!("`{kind}` needs a step id"))
                        .label("expected an id")
                        .help(format!("write `{kind} my_step \"名称\"`")),
                );
                entries.push(Entry::new(
                    kind.clone(),
                    kw_span,
                    Node::str(String::new(), kw_span),
                ));
            }
        }
        if let Some(Atom::Str(name, s)) = atoms.get(*i) {
            *i += 1;
            entries.push(Entry::new("name", *s, Node::quoted(name.clone(), *s)));
        }
        let mut children: Vec<Node> = Vec::new();
        let mut on: Vec<Entry> = Vec::new();
        let mut when: Vec<Node> = Vec::new();
        let mut set: Vec<Entry> = Vec::new();
        // Header attributes.
        while let Some(Atom::Word(w, ws)) = atoms.get(*i) {
            let Some(arity) = schema::arity(schema::STEP_KEYS, w) else {
                if is_statement(w) {
                    break;
                }
                // A misspelt attribute: report it here, where the step is known,
                // and skip its value.
                let help = match did_you_mean(w, schema::names(schema::STEP_KEYS)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "a `{kind}` step accepts: {}",
                        schema::names(schema::STEP_KEYS)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                };
                self.err(
                    Diagnostic::new(
                        Code::UnknownKey,
                        *ws,
                        format!("unknown key `{w}` in `{kind}` step"),
                    )
                    .label("unknown key")
                    .help(help),
                );
                *i += 1;
                while let Some(a) = atoms.get(*i) {
                    match a {
                        Atom::Num(..) | Atom::Str(..) | Atom::List(..) => *i += 1,
                        Atom::Word(u, _) if crate::ir::Unit::parse(u).is_some() => *i += 1,
                        _ => break,
                    }
                }
                continue;
            };
            if matches!(
                w.as_str(),
                "on" | "when" | "set" | "branches" | "reviews" | "consolidate"
            ) {
                break;
            }
            *i += 1;
            span = span.to(*ws);
            if let Some(v) = self.value(atoms, i, *ws, w, arity, "step") {
                span = span.to(v.span);
                entries.push(Entry::new(w.clone(), *ws, v));
            }
        }
        if let Some(Atom::Block(body, bs)) = atoms.get(*i) {
            *i += 1;
            span = span.to(*bs);
            self.step_body(
                &kind,
                body,
                &mut entries,
                &mut children,
                &mut on,
                &mut when,
                &mut set,
            );
        }
        let list_span = |v: &[Node]| v.iter().map(|n| n.span).reduce(Span::to).unwrap_or(kw_span);
        if !on.is_empty() {
            let s = on
                .iter()
                .map(|e| e.key_span.to(e.value.span))
                .reduce(Span::to)
                .unwrap_or(kw_span);
            entries.push(Entry::new("on", s, Node::map(on, s)));
        }
        if !when.is_empty() {
            let s = list_span(&when);
            entries.push(Entry::new("when", s, Node::list(when, s)));
        }
        if !set.is_empty() {
            let s = set
                .iter()
                .map(|e| e.key_span.to(e.value.span))
                .reduce(Span::to)
                .unwrap_or(kw_span);
            entries.push(Entry::new("set", s, Node::map(set, s)));
        }
        if !children.is_empty() || kind == "parallel" || kind == "joint_review" {
            let key = if kind == "joint_review" {
                "reviews"
            } else {
                "branches"
            };
            let s = list_span(&children);
            entries.push(Entry::new(key, s, Node::list(children, s)));
        }
        Node::map(entries, span)
    }

    #[allow(clippy::too_many_arguments)]
    fn step_body(
        &mut self,
        kind: &str,
        atoms: &[Atom],
        entries: &mut Vec<Entry>,
        children: &mut Vec<Node>,
        on: &mut Vec<Entry>,
        when: &mut Vec<Node>,
        set: &mut Vec<Entry>,
    ) {
        let mut i = 0;
        while i < atoms.len() {
            let atom = &atoms[i];
            match atom {
                Atom::When {
                    cond,
                    cond_span,
                    span,
                } => {
                    i += 1;
                    if !self.expect_arrow(atoms, &mut i, *span) {
                        continue;
                    }
                    if let Some(t) = self.target(atoms, &mut i, *span) {
                        let s = span.to(t.span);
                        when.push(Node::map(
                            vec![
                                Entry::new(
                                    "if",
                                    *cond_span,
                                    Node::quoted(cond.clone(), *cond_span),
                                ),
                                Entry::new("to", t.span, t),
                            ],
                            s,
                        ));
                    }
                }
                Atom::Set {
                    field,
                    field_span,
                    expr,
                    expr_span,
                } => {
                    i += 1;
                    set.push(Entry::new(
                        field.clone(),
                        *field_span,
                        Node::quoted(expr.clone(), *expr_span),
                    ));
                }
                Atom::Word(w, ws) => match w.as_str() {
                    "on" => {
                        i += 1;
                        let action = match atoms.get(i) {
                            Some(Atom::Word(a, s)) | Some(Atom::Str(a, s)) => {
                                i += 1;
                                Some((a.clone(), *s))
                            }
                            other => {
                                let at = other.map_or(*ws, Atom::span);
                                self.err(
                                    Diagnostic::new(Code::Syntax, at, "`on` needs an action")
                                        .label("expected an action name")
                                        .help(
                                            "write `on 退回 -> accept` or `on deny -> end denied`",
                                        ),
                                );
                                None
                            }
                        };
                        if let Some((a, s)) = action
                            && self.expect_arrow(atoms, &mut i, s)
                            && let Some(t) = self.target(atoms, &mut i, s)
                        {
                            on.push(Entry::new(a, s, t));
                        }
                    }
                    "else" => {
                        i += 1;
                        if self.expect_arrow(atoms, &mut i, *ws)
                            && let Some(t) = self.target(atoms, &mut i, *ws)
                        {
                            entries.push(Entry::new("else", *ws, t));
                        }
                    }
                    "branch" if kind == "parallel" => {
                        i += 1;
                        children.push(self.branch(atoms, &mut i, *ws));
                    }
                    "consolidate" => {
                        i += 1;
                        let mut fields = Vec::new();
                        while let Some(Atom::Word(k, ks)) = atoms.get(i) {
                            let Some(arity) = schema::arity(schema::CONSOLIDATE_KEYS, k) else {
                                break;
                            };
                            i += 1;
                            if let Some(v) = self.value(atoms, &mut i, *ks, k, arity, "consolidate")
                            {
                                fields.push(Entry::new(k.clone(), *ks, v));
                            }
                        }
                        entries.push(Entry::new("consolidate", *ws, Node::map(fields, *ws)));
                    }
                    w if schema::STEP_KINDS.contains(&w) => {
                        children.push(self.step(atoms, &mut i));
                    }
                    w => match schema::arity(schema::STEP_KEYS, w) {
                        Some(arity)
                            if !matches!(w, "on" | "when" | "set" | "branches" | "reviews") =>
                        {
                            i += 1;
                            if let Some(v) = self.value(atoms, &mut i, *ws, w, arity, "step") {
                                entries.push(Entry::new(w, *ws, v));
                            }
                        }
                        _ => {
                            let help = match did_you_mean(w, schema::names(schema::STEP_KEYS).chain(schema::STEP_KINDS.iter().copied()).chain(["branch"])) {
                                Some(s) => format!("did you mean `{s}`?"),
                                None => "a step body holds attributes, `on ACTION -> target`, `when COND -> target`, `else -> target`, `set FIELD = EXPR` and, in blocks, nested steps".into(),
                            };
                            self.err(
                                Diagnostic::new(
                                    Code::UnknownKey,
                                    *ws,
                                    format!("unknown key `{w}` in `{kind}` step"),
                                )
                                .label("unknown key")
                                .help(help),
                            );
                            i += 1;
                            self.skip_to_statement(atoms, &mut i);
                        }
                    },
                },
                other => {
                    self.unexpected(other, "a statement", "a step body holds attributes, `on …`, `when …`, `else …`, `set …` and nested steps");
                    i += 1;
                }
            }
        }
    }

    /// `branch ID "name" { steps }` inside a parallel block.
    fn branch(&mut self, atoms: &[Atom], i: &mut usize, kw: Span) -> Node {
        let mut entries = Vec::new();
        match atoms.get(*i) {
            Some(Atom::Word(id, s)) => {
                *i += 1;
                entries.push(Entry::new("branch", kw, Node::str(id.clone(), *s)));
            }
            other => {
                let at = other.map_or(kw, Atom::span);
                self.err(
                    Diagnostic::new(Code::Syntax, at, "`branch` needs an id")
                        .label("expected an id")
                        .help("write `branch my_branch \"名称\" { … }`"),
                );
            }
        }
        if let Some(Atom::Str(name, s)) = atoms.get(*i) {
            *i += 1;
            entries.push(Entry::new("name", *s, Node::quoted(name.clone(), *s)));
        }
        let mut steps = Vec::new();
        let mut span = kw;
        if let Some(Atom::Block(body, bs)) = atoms.get(*i) {
            *i += 1;
            span = span.to(*bs);
            let mut j = 0;
            while j < body.len() {
                match body[j].word() {
                    Some(w) if schema::STEP_KINDS.contains(&w) => {
                        steps.push(self.step(body, &mut j))
                    }
                    _ => {
                        self.unexpected(&body[j], "a step", "a branch holds steps");
                        j += 1;
                    }
                }
            }
        } else {
            self.err(
                Diagnostic::new(Code::Syntax, kw, "`branch` needs a `{ … }` block of steps")
                    .label("expected `{`")
                    .help("write `branch my_branch \"名称\" { task … }`"),
            );
        }
        let s = steps
            .iter()
            .map(|n: &Node| n.span)
            .reduce(Span::to)
            .unwrap_or(kw);
        entries.push(Entry::new("steps", s, Node::list(steps, s)));
        Node::map(entries, span)
    }
}

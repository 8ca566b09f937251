//! The one place where govflow builds a rhai engine.
//!
//! INVARIANT: every rhai engine in govflow comes from `engine()`: operation,
//! call-depth, expression-depth and size limits set; no module resolver, so no
//! file access; no network functions exist in rhai's standard packages.

use crate::span::{SourceFile, Span};

/// Limits applied to every rhai evaluation.
pub const MAX_OPERATIONS: u64 = 100_000;
pub const MAX_CALL_DEPTH: usize = 32;
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_STRING_SIZE: usize = 64 * 1024;
pub const MAX_ARRAY_SIZE: usize = 10_000;
pub const MAX_MAP_SIZE: usize = 10_000;

pub fn engine() -> rhai::Engine {
    let mut e = rhai::Engine::new();
    e.set_max_operations(MAX_OPERATIONS);
    e.set_max_call_levels(MAX_CALL_DEPTH);
    e.set_max_expr_depths(MAX_EXPR_DEPTH, MAX_EXPR_DEPTH);
    e.set_max_string_size(MAX_STRING_SIZE);
    e.set_max_array_size(MAX_ARRAY_SIZE);
    e.set_max_map_size(MAX_MAP_SIZE);
    e.set_strict_variables(false);
    e.disable_symbol("eval");
    // rhai counts operations afresh inside each closure call (`list.all(|x| …)`),
    // so its own limit does not bound nested closures; this budget, set by
    // `eval` for the whole evaluation, does.
    e.on_progress(|_| {
        BUDGET.with(|b| {
            let left = b.get();
            if left == 0 {
                Some(rhai::Dynamic::from("govflow: operation budget spent"))
            } else {
                b.set(left - 1);
                None
            }
        })
    });
    e
}

thread_local! {
    static BUDGET: std::cell::Cell<u64> = const { std::cell::Cell::new(MAX_OPERATIONS) };
}

/// Evaluates a compiled expression with the whole evaluation (closures
/// included) held to `MAX_OPERATIONS`. Every evaluation in govflow goes
/// through here.
pub fn eval(
    engine: &rhai::Engine,
    scope: &mut rhai::Scope,
    ast: &rhai::AST,
) -> Result<rhai::Dynamic, Box<rhai::EvalAltResult>> {
    BUDGET.with(|b| b.set(MAX_OPERATIONS));
    engine.eval_ast_with_scope::<rhai::Dynamic>(scope, ast)
}

/// The message and the 1-based (line, column) of a rhai parse error.
pub fn describe(err: &rhai::ParseError) -> (String, Option<(usize, usize)>) {
    let msg = err.err_type().to_string();
    let pos = err.position();
    let at = match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => Some((l, c)),
        (Some(l), None) => Some((l, 1)),
        _ => None,
    };
    (msg, at)
}

/// Maps a position inside an expression back to the file.
///
/// The expression text may have been unquoted or unindented by YAML, so each
/// of its lines is looked up in the file after the expression's start.
pub fn map_position(
    file: &SourceFile,
    span: Span,
    source: &str,
    pos: Option<(usize, usize)>,
) -> Span {
    let Some((mut line, mut col)) = pos else {
        return span;
    };
    let lines: Vec<&str> = source.split('\n').collect();
    // An error at the very end (an unfinished expression) points past the last
    // line: report it at the end of the last non-empty line instead.
    let last = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(0);
    if line > last + 1
        || lines
            .get(line.saturating_sub(1))
            .is_none_or(|l| l.trim().is_empty())
    {
        line = last + 1;
        col = lines
            .get(last)
            .map_or(1, |l| l.trim_end().chars().count().max(1));
    }
    let Some(line_text) = lines.get(line.saturating_sub(1)).copied() else {
        return span;
    };
    let hay = file.text.get(span.start..).unwrap_or("");
    let mut from = 0;
    // Find the earlier lines first so that repeated text maps to the right place.
    for l in source.split('\n').take(line.saturating_sub(1)) {
        if l.trim().is_empty() {
            continue;
        }
        if let Some(i) = hay[from..].find(l) {
            from += i + l.len();
        }
    }
    let found = if line_text.is_empty() {
        None
    } else {
        hay[from..].find(line_text)
    };
    let Some(i) = found else { return span };
    let line_start = span.start + from + i;
    let off: usize = line_text
        .chars()
        .take(col.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    let start = (line_start + off).min(file.text.len());
    let end = file.text[start..]
        .chars()
        .next()
        .map_or(start, |c| start + c.len_utf8());
    Span::new(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runaway_scripts_stop() {
        let e = engine();
        let r = e.eval::<i64>("let x = 0; loop { x += 1; }");
        assert!(r.is_err());
    }

    #[test]
    fn positions_map_back() {
        let text = "decision d {\n  when data.a > > 1 -> x\n}";
        let file = SourceFile::new("t.flow", text);
        let start = text.find("data.a").unwrap_or(0);
        let src = "data.a > > 1";
        let e = engine();
        let err = e.compile_expression(src).expect_err("bad");
        let (_, pos) = describe(&err);
        let span = map_position(&file, Span::new(start, start + src.len()), src, pos);
        let (l, _) = file.line_col(span.start);
        assert_eq!(l, 2);
    }
}

/// Says, for a person, why an evaluation failed: the sandbox's limits are
/// named as such (a condition that runs away is stopped, never waited for).
pub fn explain(err: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    match err {
        E::ErrorTooManyOperations(pos) | E::ErrorTerminated(_, pos) => format!(
            "stopped by the sandbox after {MAX_OPERATIONS} operations (a condition that does not finish){}",
            at(*pos)
        ),
        E::ErrorStackOverflow(pos) => format!(
            "stopped by the sandbox: calls nested deeper than {MAX_CALL_DEPTH} (a condition that calls itself without end){}",
            at(*pos)
        ),
        E::ErrorDataTooLarge(what, pos) => format!(
            "stopped by the sandbox: {what} over its limit (strings {MAX_STRING_SIZE} bytes, arrays and maps {MAX_ARRAY_SIZE} items){}",
            at(*pos)
        ),
        E::ErrorInFunctionCall(_, _, inner, _) => explain(inner),
        other => other.to_string(),
    }
}

fn at(pos: rhai::Position) -> String {
    match (pos.line(), pos.position()) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod budget_tests {
    /// Nested closures count against one budget: rhai's own limit restarts
    /// inside each closure call and would let this run for seconds.
    #[test]
    fn nested_closures_are_stopped() {
        let e = super::engine();
        let a = format!(
            "[{}]",
            (0..30).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        );
        let src = format!("{a}.all(|x| {a}.all(|y| {a}.all(|z| {a}.all(|w| x + y + z + w >= 0))))");
        let ast = e.compile_expression(&src).unwrap();
        let t0 = std::time::Instant::now();
        let err = super::eval(&e, &mut rhai::Scope::new(), &ast).unwrap_err();
        assert!(
            super::explain(&err).contains("stopped by the sandbox after 100000 operations"),
            "{err}"
        );
        assert!(t0.elapsed().as_secs() < 5);
        // A small one runs to the end, with a fresh budget each time.
        let ok = e.compile_expression("[1, 2, 3].all(|x| x > 0)").unwrap();
        for _ in 0..3 {
            assert!(
                super::eval(&e, &mut rhai::Scope::new(), &ok)
                    .unwrap()
                    .as_bool()
                    .unwrap()
            );
        }
    }

    #[test]
    fn self_calls_are_stopped() {
        let e = super::engine();
        let ast = e
            .compile_expression("(|g| g.call(g)).call(|g| g.call(g))")
            .unwrap();
        let err = super::eval(&e, &mut rhai::Scope::new(), &ast).unwrap_err();
        assert!(
            super::explain(&err).contains("calls nested deeper than 32"),
            "{err}"
        );
    }
}

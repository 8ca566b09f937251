//! A fast path for the most common supervision conditions: integer
//! arithmetic and comparisons over the case's numeric figures
//! (`elapsed * 10 > promised_days * 8`, `promised_left <= 2 && promised_left >= 0`).
//! A condition outside this small language — or one whose arithmetic
//! overflows — is left to rhai, so the two never disagree.

/// The case figures a fast condition may name, in a fixed order.
pub const NAMES: &[&str] = &[
    "promised_left",
    "statutory_left",
    "elapsed",
    "promised_days",
    "statutory_days",
    "returns",
    "corrections",
    "visits",
];

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Num(i64),
    Var(usize),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(Op, Box<Node>, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
}

#[derive(Clone, Debug, PartialEq)]
enum Value {
    Int(i64),
    Bool(bool),
}

/// A compiled condition.
#[derive(Clone, Debug)]
pub struct Fast(Node);

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(i64),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
}

fn lex(src: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < cs.len() && cs[i].is_ascii_digit() {
                i += 1;
            }
            let s: String = cs[start..i].iter().collect();
            out.push(Tok::Num(s.parse().ok()?));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let op = ["<=", ">=", "==", "!=", "&&", "||"]
                .into_iter()
                .find(|o| *o == two);
            match op {
                Some(o) => {
                    out.push(Tok::Op(o));
                    i += 2;
                }
                None => {
                    let one = ["<", ">", "+", "-", "*", "!"]
                        .into_iter()
                        .find(|o| o.starts_with(c))?;
                    out.push(Tok::Op(one));
                    i += 1;
                }
            }
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

fn prec(op: &str) -> Option<(u8, Op)> {
    Some(match op {
        "||" => (1, Op::Or),
        "&&" => (2, Op::And),
        "==" => (3, Op::Eq),
        "!=" => (3, Op::Ne),
        "<" => (4, Op::Lt),
        "<=" => (4, Op::Le),
        ">" => (4, Op::Gt),
        ">=" => (4, Op::Ge),
        "+" => (5, Op::Add),
        "-" => (5, Op::Sub),
        "*" => (6, Op::Mul),
        _ => return None,
    })
}

impl Parser {
    fn expr(&mut self, min: u8) -> Option<Node> {
        let mut lhs = self.unary()?;
        while let Some(Tok::Op(o)) = self.toks.get(self.pos) {
            let (p, op) = prec(o)?;
            if p < min {
                break;
            }
            self.pos += 1;
            let rhs = self.expr(p + 1)?;
            lhs = Node::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Node> {
        let t = self.toks.get(self.pos)?.clone();
        self.pos += 1;
        match t {
            Tok::Num(n) => Some(Node::Num(n)),
            Tok::Ident(name) => NAMES.iter().position(|n| *n == name).map(Node::Var),
            Tok::Op("-") => Some(Node::Neg(Box::new(self.unary()?))),
            Tok::Op("!") => Some(Node::Not(Box::new(self.unary()?))),
            Tok::Open => {
                let e = self.expr(0)?;
                match self.toks.get(self.pos) {
                    Some(Tok::Close) => {
                        self.pos += 1;
                        Some(e)
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

impl Fast {
    /// Compiles `src` when it is within the fast language and yields a
    /// boolean; `None` otherwise.
    pub fn compile(src: &str) -> Option<Fast> {
        let toks = lex(src)?;
        let mut p = Parser { toks, pos: 0 };
        let node = p.expr(0)?;
        if p.pos != p.toks.len() {
            return None;
        }
        let f = Fast(node);
        // Type-check with zeros: the result must be a boolean.
        matches!(eval(&f.0, &[0; 8]), Some(Value::Bool(_)) | None).then_some(f)
    }

    /// The condition's value over the figures (in `NAMES` order); `None` when
    /// the arithmetic overflows or types do not fit (then rhai decides).
    pub fn eval(&self, vars: &[i64; 8]) -> Option<bool> {
        match eval(&self.0, vars)? {
            Value::Bool(b) => Some(b),
            Value::Int(_) => None,
        }
    }
}

fn eval(n: &Node, vars: &[i64; 8]) -> Option<Value> {
    use Value::*;
    Some(match n {
        Node::Num(v) => Int(*v),
        Node::Var(i) => Int(*vars.get(*i)?),
        Node::Neg(e) => match eval(e, vars)? {
            Int(v) => Int(v.checked_neg()?),
            Bool(_) => return None,
        },
        Node::Not(e) => match eval(e, vars)? {
            Bool(b) => Bool(!b),
            Int(_) => return None,
        },
        Node::Bin(op, a, b) => {
            // && and || short-circuit like rhai.
            if matches!(op, Op::And | Op::Or) {
                let Bool(x) = eval(a, vars)? else { return None };
                if (*op == Op::And && !x) || (*op == Op::Or && x) {
                    return Some(Bool(x));
                }
                let Bool(y) = eval(b, vars)? else { return None };
                return Some(Bool(y));
            }
            let (Int(x), Int(y)) = (eval(a, vars)?, eval(b, vars)?) else {
                return None;
            };
            match op {
                Op::Add => Int(x.checked_add(y)?),
                Op::Sub => Int(x.checked_sub(y)?),
                Op::Mul => Int(x.checked_mul(y)?),
                Op::Lt => Bool(x < y),
                Op::Le => Bool(x <= y),
                Op::Gt => Bool(x > y),
                Op::Ge => Bool(x >= y),
                Op::Eq => Bool(x == y),
                Op::Ne => Bool(x != y),
                Op::And | Op::Or => return None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_rhai() {
        let engine = govflow_dsl::rhai_sandbox::engine();
        let exprs = [
            "elapsed * 10 > promised_days * 8",
            "promised_left <= 2 && promised_left >= 0",
            "promised_left < 0",
            "statutory_left < -2 || returns >= 4",
            "!(visits > 2) && (corrections + returns) >= 3",
            "-promised_left > 1",
            "returns - corrections * 2 != 0",
        ];
        let samples: [[i64; 8]; 4] = [
            [2, 10, 8, 10, 20, 0, 0, 1],
            [-3, -1, 12, 10, 20, 4, 1, 3],
            [0, 5, 0, 9999, 9999, 1, 2, 0],
            [9999, 9999, 25, 10, 20, 2, 2, 2],
        ];
        for src in exprs {
            let fast = Fast::compile(src).unwrap_or_else(|| panic!("{src} should compile"));
            let ast = engine.compile_expression(src).unwrap();
            for vars in &samples {
                let mut scope = rhai::Scope::new();
                for (n, v) in NAMES.iter().zip(vars) {
                    scope.push_constant(*n, *v);
                }
                let want: bool = engine.eval_ast_with_scope(&mut scope, &ast).unwrap();
                assert_eq!(fast.eval(vars), Some(want), "{src} on {vars:?}");
            }
        }
    }

    #[test]
    fn other_conditions_are_left_to_rhai() {
        for src in [
            "status == \"completed\"",
            "data.area > 100",
            "elapsed / 2 > 1",
            "step.left < 0",
            "elapsed * 10",
            "returns >= 2 &&",
        ] {
            assert!(Fast::compile(src).is_none(), "{src}");
        }
        // Overflow falls back instead of wrapping.
        let f = Fast::compile("elapsed * 4611686018427387904 > 0").unwrap();
        assert_eq!(f.eval(&[0, 0, 4, 0, 0, 0, 0, 0]), None);
    }
}

//! Property test: for generated flows `f`, `ir(dsl(f)) == ir(yaml(f)) == f`.
//!
//! The generator builds IR values directly (in the normal form the lowering
//! produces), prints them in both syntaxes and loads the text back. It uses a
//! seeded xorshift generator, so a failure names the seed that reproduces it.

use govflow_dsl::Syntax;
use govflow_dsl::ir::*;
use govflow_dsl::span::Span;
use std::collections::BTreeMap;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

const NAME_PARTS: &[&str] = &[
    "受理",
    "审查",
    "决定",
    "发证",
    "核查",
    "review",
    "Final check",
    "引号\"",
    "反斜杠\\",
    "a: b",
    "# 注释",
    "- dash",
    "yes",
    "123",
    "空 格",
];
const SPECIALS: &[&str] = &["延长审批", "听证", "实地核查", "专家评审", "检验检测"];
const CONDS: &[&str] = &[
    "data.approved",
    "data.area > 100",
    "data.kind == \"A\"",
    "data.count >= 3 && !data.flag",
    "data.list.len() > 0",
];
const EXPRS: &[&str] = &[
    "data.area * 2",
    "if data.area > 10 { \"high\" } else { \"low\" }",
    "#{a: 1}",
    "[1, 2, 3]",
    "\"文本\"",
];

struct Gen {
    rng: Rng,
    n: usize,
    depts: Vec<Department>,
    ends: Vec<String>,
}

impl Gen {
    fn id(&mut self, prefix: &str) -> String {
        self.n += 1;
        if self.rng.chance(30) {
            format!("{prefix}步骤{}", self.n)
        } else {
            format!("{prefix}_{}", self.n)
        }
    }
    fn name(&mut self) -> String {
        let a = self.rng.pick(NAME_PARTS);
        let b = self.rng.pick(NAME_PARTS);
        format!("{a}{b}")
    }
    fn limit(&mut self) -> Option<Limit> {
        if self.rng.chance(50) {
            let unit = self.rng.pick(&[Unit::Workdays, Unit::Days, Unit::Hours]);
            Some(Limit {
                value: 1 + self.rng.below(30) as u32,
                unit,
                span: Span::default(),
            })
        } else {
            None
        }
    }
    fn assignee(&mut self) -> Assignee {
        let d = self.rng.below(self.depts.len());
        let dept = &self.depts[d];
        let role = if !dept.roles.is_empty() && self.rng.chance(50) {
            Some(dept.roles[self.rng.below(dept.roles.len())].id.clone())
        } else {
            None
        };
        Assignee {
            department: dept.id.clone(),
            role,
            span: Span::default(),
        }
    }
    fn t(target: Target) -> Transition {
        Transition {
            target,
            span: Span::default(),
        }
    }
    fn end_target(&mut self) -> Target {
        Target::End(self.ends[self.rng.below(self.ends.len())].clone())
    }

    /// A sequence; `ids` are the step ids it may jump to (same block).
    fn sequence(&mut self, len: usize, depth: usize, in_lane: bool) -> Vec<Step> {
        let mut steps: Vec<Step> = (0..len).map(|_| self.step(depth)).collect();
        let ids: Vec<String> = steps.iter().map(|s| s.id.clone()).collect();
        for (i, s) in steps.iter_mut().enumerate() {
            let local = |g: &mut Gen| -> Target {
                if in_lane {
                    if g.rng.chance(50) || ids.len() == 1 {
                        Target::Join
                    } else {
                        Target::Step(ids[g.rng.below(ids.len())].clone())
                    }
                } else if g.rng.chance(40) {
                    g.end_target()
                } else {
                    Target::Step(ids[g.rng.below(ids.len())].clone())
                }
            };
            let follow = match ids.get(i + 1) {
                Some(n) => Target::Step(n.clone()),
                None if in_lane => Target::Join,
                None => self.end_target(),
            };
            match &mut s.kind {
                StepKind::Decision { branches, default } => {
                    for b in branches.iter_mut() {
                        b.target = Self::t(local(self));
                    }
                    *default = Some(Self::t(local(self)));
                    s.next = None;
                }
                kind => {
                    if let StepKind::Task { actions, .. } = kind {
                        for a in actions.iter_mut() {
                            a.target = Self::t(local(self));
                        }
                    }
                    s.next = Some(Self::t(if self.rng.chance(70) {
                        follow
                    } else {
                        local(self)
                    }));
                }
            }
        }
        steps
    }

    fn step(&mut self, depth: usize) -> Step {
        let id = self.id("s");
        let name = if self.rng.chance(20) {
            id.clone()
        } else {
            self.name()
        };
        let roll = self.rng.below(if depth > 1 { 5 } else { 8 });
        let kind = match roll {
            0 | 1 => {
                let mut kinds = vec![
                    ActionKind::Return,
                    ActionKind::Correct,
                    ActionKind::Refuse,
                    ActionKind::Deny,
                    ActionKind::Custom("转办".into()),
                ];
                let n = self.rng.below(3);
                let mut actions = Vec::new();
                for _ in 0..n {
                    let k = kinds.remove(self.rng.below(kinds.len()));
                    actions.push(Action {
                        kind: k,
                        target: Self::t(Target::Join),
                        span: Span::default(),
                    });
                }
                StepKind::Task {
                    by: self.assignee(),
                    actions,
                    materials: Vec::new(),
                }
            }
            2 => StepKind::Auto {
                set: (0..1 + self.rng.below(2))
                    .map(|i| Assign {
                        field: format!("f{i}"),
                        expr: Expr::new(self.rng.pick(EXPRS), Span::default()),
                    })
                    .collect(),
            },
            3 => StepKind::Decision {
                branches: (0..1 + self.rng.below(2))
                    .map(|_| Branch {
                        condition: Expr::new(self.rng.pick(CONDS), Span::default()),
                        target: Self::t(Target::Join),
                    })
                    .collect(),
                default: None,
            },
            4 => {
                if self.rng.chance(50) {
                    StepKind::Wait {
                        timer: Some(Limit {
                            value: 3,
                            unit: Unit::Workdays,
                            span: Span::default(),
                        }),
                        event: None,
                    }
                } else {
                    StepKind::Wait {
                        timer: None,
                        event: Some("缴费完成".into()),
                    }
                }
            }
            5 => {
                let lanes_n = 1 + self.rng.below(3);
                let lanes: Vec<Lane> = (0..lanes_n)
                    .map(|_| {
                        if self.rng.chance(50) {
                            let mut st = self.sequence(1, depth + 1, true);
                            st[0].next = Some(Self::t(Target::Join));
                            if let StepKind::Decision { .. } = st[0].kind {
                                st[0].next = None;
                            }
                            Lane {
                                id: st[0].id.clone(),
                                name: st[0].name.clone(),
                                steps: st,
                                span: Span::default(),
                            }
                        } else {
                            let id = self.id("b");
                            let len = 1 + self.rng.below(3);
                            let steps = self.sequence(len, depth + 1, true);
                            Lane {
                                id,
                                name: self.name(),
                                steps,
                                span: Span::default(),
                            }
                        }
                    })
                    .collect();
                let join = match self.rng.below(3) {
                    0 => Join::All,
                    1 => Join::Any,
                    _ => Join::NOfM {
                        n: 1,
                        m: lanes_n as u32,
                    },
                };
                let lead = if self.rng.chance(50) {
                    Some(self.depts[0].id.clone())
                } else {
                    None
                };
                StepKind::Parallel { lead, join, lanes }
            }
            6 => {
                let reviews = (0..1 + self.rng.below(3))
                    .map(|_| {
                        let id = self.id("r");
                        Step {
                            id,
                            name: self.name(),
                            kind: StepKind::Task {
                                by: self.assignee(),
                                actions: Vec::new(),
                                materials: Vec::new(),
                            },
                            within: self.limit(),
                            visit: false,
                            risk_point: self.rng.chance(30),
                            starts_clock: false,
                            decides: false,
                            special: Vec::new(),
                            next: Some(Self::t(Target::Join)),
                            span: Span::default(),
                        }
                    })
                    .collect();
                StepKind::JointReview {
                    lead: Some(self.depts[0].id.clone()),
                    reports: vec!["环评".into(), "安评".into()],
                    reviews,
                    consolidate: Consolidate {
                        by: self.assignee(),
                        within: self.limit(),
                    },
                    resubmit_within: self.limit(),
                }
            }
            _ => StepKind::Subflow {
                lead: if self.rng.chance(50) {
                    Some(self.depts[0].id.clone())
                } else {
                    None
                },
                items: vec!["item_a".into(), "立项".into()],
                pauses_for: if self.rng.chance(50) {
                    vec!["专家评审".into()]
                } else {
                    Vec::new()
                },
                pauses_for_basis: Some("《某某办法》第八条".into()),
                join: if self.rng.chance(50) {
                    Join::All
                } else {
                    Join::Any
                },
            },
        };
        let is_decision = matches!(kind, StepKind::Decision { .. });
        Step {
            id,
            name,
            within: if is_decision { None } else { self.limit() },
            visit: !is_decision && self.rng.chance(20),
            risk_point: self.rng.chance(20),
            starts_clock: !is_decision && self.rng.chance(20),
            decides: matches!(kind, StepKind::Task { .. }) && self.rng.chance(20),
            special: if !is_decision && self.rng.chance(30) {
                vec![self.rng.pick(SPECIALS).to_string()]
            } else {
                Vec::new()
            },
            kind,
            next: None,
            span: Span::default(),
        }
    }
}

fn generate(seed: u64) -> Flow {
    let mut g = Gen {
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        n: 0,
        depts: Vec::new(),
        ends: Vec::new(),
    };
    for i in 0..1 + g.rng.below(3) {
        let roles = if g.rng.chance(50) {
            vec![
                Role {
                    id: "clerk".into(),
                    name: "窗口".into(),
                    span: Span::default(),
                },
                Role {
                    id: "审批员".into(),
                    name: "审批 员".into(),
                    span: Span::default(),
                },
            ]
        } else {
            Vec::new()
        };
        let name = g.name();
        // Now and then a department chosen per case (`from FIELD`).
        let from = g.rng.chance(15).then(|| format!("addressee{i}"));
        g.depts.push(Department {
            id: format!("dept{i}"),
            name,
            roles,
            from,
            span: Span::default(),
        });
    }
    let mut ends = BTreeMap::new();
    for (id, name, result) in [
        ("granted", "准予许可", "准予许可"),
        ("denied", "不予许可", "不予许可"),
        ("转报", "转报上级", "转报"),
    ] {
        if g.rng.chance(70) || ends.is_empty() {
            ends.insert(
                id.to_string(),
                End {
                    id: id.into(),
                    name: name.into(),
                    result: result.into(),
                    span: Span::default(),
                },
            );
        }
    }
    g.ends = ends.keys().cloned().collect();
    let len = 1 + g.rng.below(6);
    let steps = g.sequence(len, 0, false);
    let kind = if g.rng.chance(70) {
        CaseKind::Promised
    } else {
        CaseKind::Immediate
    };
    let mut text = BTreeMap::new();
    if g.rng.chance(50) {
        text.insert(
            "legal_basis".to_string(),
            "《行政许可法》第42条: \"二十日\"".to_string(),
        );
    }
    Flow {
        id: g.id("flow"),
        name: g.name(),
        version: 1 + g.rng.below(9) as u32,
        item: Item {
            basic_code: Some("0102345000".into()),
            impl_code: if g.rng.chance(50) {
                Some("11010000000000000000000A".into())
            } else {
                None
            },
            item_type: Some("行政许可".into()),
            statutory: Some(Limit {
                value: 20,
                unit: Unit::Workdays,
                span: Span::default(),
            }),
            promised: if kind == CaseKind::Promised {
                Some(Limit {
                    value: 10,
                    unit: Unit::Workdays,
                    span: Span::default(),
                })
            } else {
                None
            },
            correction_within: g.rng.chance(30).then_some(Limit {
                value: 3,
                unit: Unit::Workdays,
                span: Span::default(),
            }),
            kind,
            mode: g.rng.pick(&[
                Mode::Window,
                Mode::PreReview,
                Mode::Verification,
                Mode::FullOnline,
            ]),
            fee: if g.rng.chance(50) {
                Fee::default()
            } else {
                Fee {
                    charged: true,
                    standard: Some("每件 50 元".into()),
                    basis: Some("发改价格〔2017〕1号".into()),
                }
            },
            served: vec!["法人".into()],
            scope: Some("跨市".into()),
            version: Some(2),
            status: Some("在用".into()),
            level: None,
            body_nature: None,
            change_type: None,
            running_system: None,
            appointment: Some(g.rng.chance(50)),
            online_payment: None,
            delivery: None,
            co_handling: Vec::new(),
            correction_on_site: g.rng.chance(20),
            stops_statutory: if g.rng.chance(30) {
                vec!["实地核查".into()]
            } else {
                Vec::new()
            },
            stops_statutory_basis: Some("《某某条例》第十条".into()),
            stops_promised: match g.rng.below(3) {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(vec!["听证".into(), "专家评审".into()]),
            },
            text,
        },
        departments: g.depts.clone(),
        materials: vec![Material {
            id: "申请表".into(),
            name: "申请表".into(),
            required: true,
            deferrable: g.rng.chance(50),
            source: None,
            paper: true,
            electronic: true,
            trust: vec!["A".into()],
            span: Span::default(),
        }],
        steps,
        ends,
        span: Span::default(),
    }
}

#[test]
fn ir_of_dsl_equals_ir_of_yaml_equals_flow() {
    let cases = std::env::var("GOVFLOW_PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300u64);
    for seed in 1..=cases {
        let f = generate(seed);
        for syntax in [Syntax::Dsl, Syntax::Yaml] {
            let text = govflow_dsl::fmt::print_plain(&f, syntax);
            let name = if syntax == Syntax::Dsl {
                "gen.flow"
            } else {
                "gen.flow.yaml"
            };
            let loaded = govflow_dsl::load(name, &text, syntax);
            let back = loaded.flow.as_ref().unwrap_or_else(|| {
                panic!(
                    "seed {seed}: {name} did not lower:\n{}\n{text}",
                    loaded.report.render(false)
                )
            });
            let syntax_errors: Vec<_> = loaded
                .report
                .diagnostics
                .iter()
                .filter(|d| {
                    matches!(
                        d.code,
                        govflow_dsl::Code::Syntax
                            | govflow_dsl::Code::UnknownKey
                            | govflow_dsl::Code::InvalidValue
                            | govflow_dsl::Code::RhaiSyntax
                    )
                })
                .collect();
            assert!(
                syntax_errors.is_empty(),
                "seed {seed}: {name}:\n{}\n{text}",
                loaded.report.render(false)
            );
            if back != &f {
                let a = f.to_canonical_json();
                let b = back.to_canonical_json();
                panic!(
                    "seed {seed}: {name} changed the flow\n--- text ---\n{text}\n--- expected ---\n{a}\n--- got ---\n{b}"
                );
            }
        }
    }
}

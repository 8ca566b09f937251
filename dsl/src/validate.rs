//! Whole-flow checks on the IR: references, structure, soundness, clocks,
//! visit bounds and rhai expressions. Every problem is reported; nothing stops
//! at the first one.

use crate::diag::{Code, Diagnostic, did_you_mean};
use crate::ir::*;
use crate::span::{SourceFile, Span};
use std::collections::{BTreeSet, HashMap, HashSet};

/// Where a step sits in the block structure.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Place {
    Top,
    /// (parallel or joint-review step id, lane index)
    Lane(String, usize),
}

/// A node of the control-flow graph used for the soundness checks.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GNode {
    Step(String),
    End(String),
    /// The join of the named parallel or joint-review step.
    Join(String),
}

/// The control-flow graph of a flow, with the source order of its steps.
pub struct FlowGraph {
    pub succ: HashMap<GNode, Vec<GNode>>,
    pub order: HashMap<String, usize>,
    pub start: Option<GNode>,
}

struct Ctx<'f> {
    flow: &'f Flow,
    place: HashMap<String, Place>,
    order: HashMap<String, usize>,
    diags: Vec<Diagnostic>,
}

/// Turns `Target::Step(x)` into `Target::End(x)` where `x` names an end and no step.
pub fn resolve_targets(flow: &mut Flow) {
    let step_ids: HashSet<String> = flow.all_steps().iter().map(|s| s.id.clone()).collect();
    let ends: HashSet<String> = flow.ends.keys().cloned().collect();
    fn fix(t: &mut Transition, steps: &HashSet<String>, ends: &HashSet<String>) {
        if let Target::Step(id) = &t.target {
            if !steps.contains(id) && ends.contains(id) {
                t.target = Target::End(id.clone());
            }
        }
    }
    fn walk(steps: &mut [Step], ids: &HashSet<String>, ends: &HashSet<String>) {
        for s in steps {
            if let Some(n) = &mut s.next {
                fix(n, ids, ends);
            }
            match &mut s.kind {
                StepKind::Task { actions, .. } => actions.iter_mut().for_each(|a| fix(&mut a.target, ids, ends)),
                StepKind::Decision { branches, default } => {
                    branches.iter_mut().for_each(|b| fix(&mut b.target, ids, ends));
                    if let Some(d) = default {
                        fix(d, ids, ends);
                    }
                }
                StepKind::Parallel { lanes, .. } => lanes.iter_mut().for_each(|l| walk(&mut l.steps, ids, ends)),
                StepKind::JointReview { reviews, .. } => walk(reviews, ids, ends),
                _ => {}
            }
        }
    }
    walk(&mut flow.steps, &step_ids, &ends);
}

/// Every transition of a step: (target, span, what it is).
pub fn transitions(step: &Step) -> Vec<(&Transition, String)> {
    let mut out = Vec::new();
    if let Some(n) = &step.next {
        out.push((n, "next".to_string()));
    }
    match &step.kind {
        StepKind::Task { actions, .. } => {
            for a in actions {
                out.push((&a.target, format!("on {}", a.kind.as_str())));
            }
        }
        StepKind::Decision { branches, default } => {
            for b in branches {
                out.push((&b.target, format!("when {}", b.condition.source)));
            }
            if let Some(d) = default {
                out.push((d, "else".to_string()));
            }
        }
        _ => {}
    }
    out
}

impl FlowGraph {
    pub fn build(flow: &Flow) -> FlowGraph {
        let mut succ: HashMap<GNode, Vec<GNode>> = HashMap::new();
        let mut order = HashMap::new();
        for (i, s) in flow.all_steps().iter().enumerate() {
            order.entry(s.id.clone()).or_insert(i);
        }
        fn add(
            steps: &[Step],
            join: Option<&GNode>,
            succ: &mut HashMap<GNode, Vec<GNode>>,
        ) {
            for s in steps {
                let me = GNode::Step(s.id.clone());
                let mut out = Vec::new();
                let to = |t: &Target| match t {
                    Target::Step(id) => Some(GNode::Step(id.clone())),
                    Target::End(id) => Some(GNode::End(id.clone())),
                    Target::Join => join.cloned(),
                };
                match &s.kind {
                    StepKind::Parallel { lanes, .. } => {
                        let j = GNode::Join(s.id.clone());
                        for l in lanes {
                            if let Some(first) = l.steps.first() {
                                out.push(GNode::Step(first.id.clone()));
                            }
                            add(&l.steps, Some(&j), succ);
                        }
                        let after: Vec<GNode> = s.next.iter().filter_map(|n| to(&n.target)).collect();
                        succ.entry(j).or_default().extend(after);
                    }
                    StepKind::JointReview { reviews, .. } => {
                        let j = GNode::Join(s.id.clone());
                        for r in reviews {
                            out.push(GNode::Step(r.id.clone()));
                        }
                        add(reviews, Some(&j), succ);
                        let mut after: Vec<GNode> = s.next.iter().filter_map(|n| to(&n.target)).collect();
                        // Not passed: the applicant resubmits and the reviews run again.
                        after.push(me.clone());
                        succ.entry(j).or_default().extend(after);
                    }
                    _ => {
                        for (t, _) in transitions(s) {
                            if let Some(n) = to(&t.target) {
                                out.push(n);
                            }
                        }
                    }
                }
                if let StepKind::Task { actions, .. } = &s.kind {
                    let _ = actions;
                }
                succ.entry(me).or_default().extend(out);
            }
        }
        add(&flow.steps, None, &mut succ);
        FlowGraph {
            succ,
            order,
            start: flow.steps.first().map(|s| GNode::Step(s.id.clone())),
        }
    }

    pub fn reachable_from(&self, start: &GNode) -> HashSet<GNode> {
        let mut seen = HashSet::new();
        let mut stack = vec![start.clone()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(next) = self.succ.get(&n) {
                stack.extend(next.iter().cloned());
            }
        }
        seen
    }

    /// Nodes from which some end is reachable.
    pub fn reaching_end(&self) -> HashSet<GNode> {
        let mut pred: HashMap<&GNode, Vec<&GNode>> = HashMap::new();
        let mut ends = Vec::new();
        for (from, tos) in &self.succ {
            for t in tos {
                pred.entry(t).or_default().push(from);
                if matches!(t, GNode::End(_)) {
                    ends.push(t);
                }
            }
        }
        let mut seen: HashSet<GNode> = HashSet::new();
        let mut stack = ends;
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            if let Some(p) = pred.get(n) {
                stack.extend(p.iter().copied());
            }
        }
        seen
    }
}

/// Runs every check; `file` is used to map rhai error positions.
pub fn validate(flow: &Flow, file: &SourceFile) -> Vec<Diagnostic> {
    let mut ctx = Ctx {
        flow,
        place: HashMap::new(),
        order: HashMap::new(),
        diags: Vec::new(),
    };
    ctx.index();
    ctx.duplicates();
    ctx.references();
    ctx.structure();
    let graph = FlowGraph::build(flow);
    ctx.soundness(&graph);
    ctx.clock();
    ctx.paths();
    ctx.rhai(file);
    ctx.diags
}

impl Ctx<'_> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn index(&mut self) {
        fn walk(steps: &[Step], place: Place, out: &mut HashMap<String, Place>, order: &mut HashMap<String, usize>) {
            for s in steps {
                let n = order.len();
                order.entry(s.id.clone()).or_insert(n);
                out.entry(s.id.clone()).or_insert(place.clone());
                match &s.kind {
                    StepKind::Parallel { lanes, .. } => {
                        for (i, l) in lanes.iter().enumerate() {
                            walk(&l.steps, Place::Lane(s.id.clone(), i), out, order);
                        }
                    }
                    StepKind::JointReview { reviews, .. } => {
                        for (i, r) in reviews.iter().enumerate() {
                            walk(std::slice::from_ref(r), Place::Lane(s.id.clone(), i), out, order);
                        }
                    }
                    _ => {}
                }
            }
        }
        walk(&self.flow.steps, Place::Top, &mut self.place, &mut self.order);
    }

    fn duplicates(&mut self) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut dups = Vec::new();
        for s in self.flow.all_steps() {
            if let Some(first) = seen.get(s.id.as_str()) {
                dups.push((s.id.clone(), s.span, *first, "step"));
            } else {
                seen.insert(&s.id, s.span);
            }
        }
        for e in self.flow.ends.values() {
            if let Some(first) = seen.get(e.id.as_str()) {
                dups.push((e.id.clone(), e.span, *first, "end"));
            }
        }
        let mut depts: HashMap<&str, Span> = HashMap::new();
        for d in &self.flow.departments {
            if let Some(first) = depts.get(d.id.as_str()) {
                dups.push((d.id.clone(), d.span, *first, "department"));
            } else {
                depts.insert(&d.id, d.span);
            }
            let mut roles: HashMap<&str, Span> = HashMap::new();
            for r in &d.roles {
                if let Some(first) = roles.get(r.id.as_str()) {
                    dups.push((r.id.clone(), r.span, *first, "role"));
                } else {
                    roles.insert(&r.id, r.span);
                }
            }
        }
        let mut mats: HashMap<&str, Span> = HashMap::new();
        for m in &self.flow.materials {
            if let Some(first) = mats.get(m.id.as_str()) {
                dups.push((m.id.clone(), m.span, *first, "material"));
            } else {
                mats.insert(&m.id, m.span);
            }
        }
        for (id, span, first, what) in dups {
            self.err(
                Diagnostic::new(Code::DuplicateId, span, format!("duplicate {what} id `{id}`"))
                    .label("second definition")
                    .related(first, "first defined here")
                    .help(format!("ids must be unique in a flow; rename one of the `{id}`s")),
            );
        }
    }

    fn department(&mut self, id: &str, span: Span, role: Option<&str>) {
        let Some(d) = self.flow.departments.iter().find(|d| d.id == id) else {
            let help = match did_you_mean(id, self.flow.departments.iter().map(|d| d.id.as_str())) {
                Some(s) => format!("did you mean `{s}`?"),
                None if self.flow.departments.is_empty() => "declare it in a `departments` block".to_string(),
                None => format!(
                    "declared departments: {}",
                    self.flow.departments.iter().map(|d| d.id.as_str()).collect::<Vec<_>>().join(", ")
                ),
            };
            self.err(
                Diagnostic::new(Code::UnknownDepartment, span, format!("unknown department `{id}`"))
                    .label("not declared")
                    .help(help),
            );
            return;
        };
        if let Some(role) = role {
            if !d.roles.iter().any(|r| r.id == role) {
                let help = match did_you_mean(role, d.roles.iter().map(|r| r.id.as_str())) {
                    Some(s) => format!("did you mean `{id}.{s}`?"),
                    None => format!("declare the role under department `{id}`: `roles {{ {role} \"名称\" }}`"),
                };
                self.err(
                    Diagnostic::new(Code::UnknownRole, span, format!("department `{id}` has no role `{role}`"))
                        .label("unknown role")
                        .help(help),
                );
            }
        }
    }

    fn references(&mut self) {
        let flow = self.flow;
        for s in flow.all_steps() {
            match &s.kind {
                StepKind::Task { by, materials, .. } => {
                    if !by.department.is_empty() {
                        self.department(&by.department, by.span, by.role.as_deref());
                    }
                    for m in materials {
                        if !flow.materials.iter().any(|x| &x.id == m) {
                            let help = match did_you_mean(m, flow.materials.iter().map(|x| x.id.as_str())) {
                                Some(sug) => format!("did you mean `{sug}`?"),
                                None => "declare it in the `materials` block".to_string(),
                            };
                            self.err(
                                Diagnostic::new(Code::UnknownMaterial, s.span, format!("step `{}` checks unknown material `{m}`", s.id))
                                    .label("unknown material")
                                    .help(help),
                            );
                        }
                    }
                }
                StepKind::Parallel { lead: Some(lead), .. } | StepKind::JointReview { lead: Some(lead), .. } => {
                    self.department(lead, s.span, None);
                }
                _ => {}
            }
            if let StepKind::JointReview { consolidate, .. } = &s.kind {
                if !consolidate.by.department.is_empty() {
                    self.department(&consolidate.by.department, consolidate.by.span, consolidate.by.role.as_deref());
                }
            }
            for (t, _) in transitions(s) {
                if let Target::Step(id) = &t.target {
                    if !self.order.contains_key(id) {
                        let candidates: Vec<&str> = self
                            .order
                            .keys()
                            .map(String::as_str)
                            .chain(flow.ends.keys().map(String::as_str))
                            .collect();
                        let help = match did_you_mean(id, candidates.iter().copied()) {
                            Some(sug) => format!("did you mean `{sug}`?"),
                            None => "the target must be the id of a step or an end in this flow".to_string(),
                        };
                        self.err(
                            Diagnostic::new(Code::UnknownStep, t.span, format!("unknown step `{id}`"))
                                .label("no step with this id")
                                .help(help),
                        );
                    }
                }
            }
            if let StepKind::Task { actions, .. } = &s.kind {
                for a in actions {
                    if a.kind != ActionKind::Return {
                        continue;
                    }
                    if let Target::Step(id) = &a.target.target {
                        if let (Some(&to), Some(&from)) = (self.order.get(id), self.order.get(&s.id)) {
                            if to >= from {
                                self.err(
                                    Diagnostic::new(Code::ReturnNotEarlier, a.target.span, format!("`return` goes to `{id}`, which is not earlier than `{}`", s.id))
                                        .label("not an earlier step")
                                        .help("a return (退回) sends the case back to a step before this one; use a custom action for other jumps"),
                                );
                            }
                        }
                    } else {
                        self.err(
                            Diagnostic::new(Code::ReturnNotEarlier, a.target.span, "`return` must go back to an earlier step, not to an end")
                                .label("not a step")
                                .help("name the earlier step the case goes back to"),
                        );
                    }
                }
            }
        }
    }

    fn structure(&mut self) {
        let flow = self.flow;
        for s in flow.all_steps() {
            let here = self.place.get(&s.id).cloned().unwrap_or(Place::Top);
            for (t, what) in transitions(s) {
                let bad = match (&here, &t.target) {
                    (Place::Lane(..), Target::End(_)) => Some("ends the case from inside a parallel branch".to_string()),
                    (Place::Lane(p, i), Target::Step(id)) => match self.place.get(id) {
                        Some(Place::Lane(q, j)) if q == p && i == j => None,
                        Some(_) => Some(format!("leaves its branch of `{p}` for `{id}`")),
                        None => None,
                    },
                    (Place::Top, Target::Step(id)) => match self.place.get(id) {
                        Some(Place::Lane(q, _)) => Some(format!("jumps into a branch of `{q}` at `{id}`")),
                        _ => None,
                    },
                    (Place::Top, Target::Join) => Some("goes to a join outside any parallel block".to_string()),
                    _ => None,
                };
                if let Some(why) = bad {
                    self.err(
                        Diagnostic::new(Code::BranchEscapesParallel, t.span, format!("`{what}` of step `{}` {why}", s.id))
                            .label("crosses a parallel block")
                            .help("branches of a parallel block meet only at its join: finish the branch and decide after the join"),
                    );
                }
            }
            match &s.kind {
                StepKind::Parallel { lead, join, lanes } => {
                    if lanes.is_empty() {
                        self.err(
                            Diagnostic::new(Code::EmptyBlock, s.span, format!("parallel block `{}` has no branches", s.id))
                                .label("no branches")
                                .help("put the steps that run in parallel inside the block"),
                        );
                    }
                    self.check_join(s, *join, lanes.len());
                    if let Some(lead) = lead {
                        let handles = lanes.iter().flat_map(|l| l.steps.iter()).any(|st| match &st.kind {
                            StepKind::Task { by, .. } => &by.department == lead,
                            _ => false,
                        });
                        if !handles && flow.departments.iter().any(|d| &d.id == lead) {
                            self.err(
                                Diagnostic::new(Code::LeadNotInParallel, s.span, format!("lead department `{lead}` handles none of the branches of `{}`", s.id))
                                    .label("lead without a branch")
                                    .help("the lead department (牵头部门) usually reviews too; check that this is the right department"),
                            );
                        }
                    }
                }
                StepKind::Subflow { items, join } => self.check_join(s, *join, items.len()),
                _ => {}
            }
        }
    }

    fn check_join(&mut self, s: &Step, join: Join, branches: usize) {
        if let Join::NOfM { n, m } = join {
            let why = if n == 0 {
                Some("it needs 0 branches, so it completes before anything runs".to_string())
            } else if m as usize != branches {
                Some(format!("it says {m} branches but `{}` has {branches}", s.id))
            } else if n > m {
                Some(format!("it waits for {n} of only {m} branches"))
            } else {
                None
            };
            if let Some(why) = why {
                self.err(
                    Diagnostic::new(Code::JoinNeverCompletes, s.span, format!("join `{n} of {m}` of `{}` is impossible: {why}", s.id))
                        .label("impossible join")
                        .help(format!("with {branches} branches, write `join N of {branches}` with 1 ≤ N ≤ {branches}, or `join all`")),
                );
            }
        }
    }

    fn soundness(&mut self, g: &FlowGraph) {
        let flow = self.flow;
        let Some(start) = &g.start else { return };
        let reached = g.reachable_from(start);
        let to_end = g.reaching_end();
        for s in flow.all_steps() {
            let me = GNode::Step(s.id.clone());
            if !reached.contains(&me) {
                // Report only the first unreachable step of a block, not its children.
                let parent_unreached = match self.place.get(&s.id) {
                    Some(Place::Lane(p, _)) => !reached.contains(&GNode::Step(p.clone())),
                    _ => false,
                };
                if !parent_unreached {
                    self.err(
                        Diagnostic::new(Code::UnreachableStep, s.span, format!("step `{}` can never be reached", s.id))
                            .label("unreachable")
                            .help("no transition leads here from the first step; add one (a `next`, an action target or a decision branch) or remove the step"),
                    );
                }
                continue;
            }
            if !to_end.contains(&me) {
                let last = s.next.is_none() && !matches!(s.kind, StepKind::Decision { .. });
                let msg = if last {
                    format!("step `{}` is the last step and leads nowhere", s.id)
                } else {
                    format!("no end can be reached from step `{}`", s.id)
                };
                self.err(
                    Diagnostic::new(Code::NoEndReachable, s.span, msg)
                        .label("dead end")
                        .help("every path must finish at an `end` (准予许可, 不予许可 …); add an end after this step or a transition to one"),
                );
            }
        }
        // Joins: which branches can reach their join?
        for s in flow.all_steps() {
            let (lanes, join): (Vec<&[Step]>, Join) = match &s.kind {
                StepKind::Parallel { lanes, join, .. } => (lanes.iter().map(|l| l.steps.as_slice()).collect(), *join),
                StepKind::JointReview { reviews, .. } => (reviews.iter().map(std::slice::from_ref).collect(), Join::All),
                _ => continue,
            };
            if !reached.contains(&GNode::Step(s.id.clone())) {
                continue;
            }
            let j = GNode::Join(s.id.clone());
            let mut stuck = Vec::new();
            for lane in &lanes {
                let Some(first) = lane.first() else { continue };
                if !g.reachable_from(&GNode::Step(first.id.clone())).contains(&j) {
                    stuck.push(first);
                }
            }
            let completing = lanes.len() - stuck.len();
            let needed = match join {
                Join::All => lanes.len(),
                Join::Any => 1,
                Join::NOfM { n, .. } => n as usize,
            };
            if !stuck.is_empty() && completing < needed {
                let mut d = Diagnostic::new(
                    Code::JoinNeverCompletes,
                    s.span,
                    format!(
                        "the join of `{}` can never complete: {} of its branches never reach it",
                        s.id,
                        stuck.len()
                    ),
                )
                .label(format!("needs {needed}, at most {completing} can arrive"))
                .help("make every branch finish by falling through to the end of its block");
                for st in stuck {
                    d = d.related(st.span, "this branch never reaches the join");
                }
                self.err(d);
            }
        }
        for s in flow.all_steps() {
            if let StepKind::Decision { default: None, .. } = &s.kind {
                self.err(
                    Diagnostic::new(Code::DecisionWithoutDefault, s.span, format!("decision `{}` has no default branch", s.id))
                        .label("no `else`")
                        .help("add `else -> STEP` so that a case whose conditions are all false still goes somewhere"),
                );
            }
        }
    }

    fn clock(&mut self) {
        let flow = self.flow;
        if flow.item.kind != CaseKind::Promised {
            return;
        }
        if !flow.all_steps().iter().any(|s| s.starts_clock) {
            let span = flow.item.promised.map_or_else(
                || flow.steps.first().map_or(flow.span, |s| s.span),
                |p| p.span,
            );
            self.err(
                Diagnostic::new(Code::NoClockStart, span, "a promised item has no step that starts the clock")
                    .label("the promised limit never starts")
                    .help("mark the acceptance step (受理) with `starts_clock`"),
            );
        }
    }

    /// Longest paths (ignoring loops) by step limits and by on-site visits.
    fn paths(&mut self) {
        let flow = self.flow;
        let by_id: HashMap<&str, &Step> = flow.all_steps().into_iter().map(|s| (s.id.as_str(), s)).collect();
        let Some(first) = flow.steps.first() else { return };
        let order = self.order.clone();
        let mut w = Walker {
            by_id: &by_id,
            order: &order,
            memo: HashMap::new(),
            visiting: HashSet::new(),
        };
        if let Some(promised) = flow.item.promised {
            let best = w.best(&first.id, None, Metric::Limit);
            if best.value > promised.approx_workdays() + 1e-9 {
                let path = best.path.iter().map(|(id, v)| format!("{id} ({v})")).collect::<Vec<_>>().join(" → ");
                let mut d = Diagnostic::new(
                    Code::LimitsExceedPromised,
                    promised.span,
                    format!(
                        "step limits on one path add up to {} working days, more than the promised {}",
                        fmt_num(best.value),
                        promised
                    ),
                )
                .label("promised limit")
                .help(format!("path: {path}; shorten the step limits or raise the promised limit"));
                for (id, _) in &best.path {
                    if let Some(st) = by_id.get(id.as_str()) {
                        if let Some(l) = st.within {
                            d = d.related(l.span, format!("`{id}`: {l}"));
                        }
                    }
                }
                self.err(d);
            }
        }
        if let Some(bound) = flow.item.mode.visit_bound() {
            w.memo.clear();
            let best = w.best(&first.id, None, Metric::Visits);
            if best.value > f64::from(bound) + 1e-9 {
                let visits: Vec<&str> = best.path.iter().map(|(id, _)| id.as_str()).collect();
                let full = w.full_path(&first.id, None, Metric::Visits);
                let mut d = Diagnostic::new(
                    Code::VisitBoundExceeded,
                    by_id.get(visits[visits.len().saturating_sub(1)]).map_or(first.span, |s| s.span),
                    format!(
                        "a path has {} on-site visits, but mode `{}` allows at most {bound}",
                        fmt_num(best.value),
                        flow.item.mode.as_str()
                    ),
                )
                .label("visit over the bound")
                .help(format!(
                    "path: {}; visits at {}; move a visit online or change the mode",
                    full.join(" → "),
                    visits.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                ));
                for v in &visits {
                    if let Some(st) = by_id.get(v) {
                        d = d.related(st.span, "on-site visit");
                    }
                }
                self.err(d);
            }
        }
    }

    fn rhai(&mut self, file: &SourceFile) {
        let engine = crate::rhai_sandbox::engine();
        for s in self.flow.all_steps() {
            let exprs: Vec<&Expr> = match &s.kind {
                StepKind::Decision { branches, .. } => branches.iter().map(|b| &b.condition).collect(),
                StepKind::Auto { set } => set.iter().map(|a| &a.expr).collect(),
                _ => continue,
            };
            for e in exprs {
                if let Err(err) = engine.compile_expression(&e.source) {
                    let (msg, pos) = crate::rhai_sandbox::describe(&err);
                    let at = crate::rhai_sandbox::map_position(file, e.span, &e.source, pos);
                    self.err(
                        Diagnostic::new(Code::RhaiSyntax, at, format!("rhai expression does not compile: {msg}"))
                            .label("here")
                            .help("conditions and `set` values are rhai expressions over `data`, such as `data.area > 100`"),
                    );
                }
            }
        }
    }
}

fn fmt_num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        format!("{v:.1}")
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Metric {
    Limit,
    Visits,
}

#[derive(Clone, Debug, Default)]
struct Best {
    value: f64,
    /// Contributing steps on the best path, with their contribution.
    path: Vec<(String, String)>,
}

struct Walker<'a> {
    by_id: &'a HashMap<&'a str, &'a Step>,
    order: &'a HashMap<String, usize>,
    memo: HashMap<(String, Option<String>, Metric), Best>,
    visiting: HashSet<String>,
}

impl Walker<'_> {
    /// Successors of a step that move forward in source order (loops are ignored).
    fn forward(&self, s: &Step) -> Vec<Target> {
        let me = self.order.get(&s.id).copied().unwrap_or(0);
        transitions(s)
            .into_iter()
            .map(|(t, _)| t.target.clone())
            .filter(|t| match t {
                Target::Step(id) => self.order.get(id).is_some_and(|&o| o > me),
                _ => true,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn contribution(&mut self, s: &Step, metric: Metric) -> Best {
        match (&s.kind, metric) {
            (StepKind::Parallel { lanes, .. }, _) => {
                let inner: Vec<Best> = lanes
                    .iter()
                    .filter_map(|l| l.steps.first())
                    .map(|f| self.best(&f.id, Some(&s.id), metric))
                    .collect();
                self.combine(s, inner, metric)
            }
            (StepKind::JointReview { reviews, consolidate, .. }, _) => {
                let inner: Vec<Best> = reviews.iter().map(|r| self.best(&r.id, Some(&s.id), metric)).collect();
                let mut b = self.combine(s, inner, metric);
                if metric == Metric::Limit && s.within.is_none() {
                    if let Some(l) = consolidate.within {
                        b.value += l.approx_workdays();
                        b.path.push((format!("{}.consolidate", s.id), l.to_string()));
                    }
                }
                b
            }
            (_, Metric::Limit) => match s.within {
                Some(l) => Best { value: l.approx_workdays(), path: vec![(s.id.clone(), l.to_string())] },
                None => Best::default(),
            },
            (_, Metric::Visits) if s.visit => Best { value: 1.0, path: vec![(s.id.clone(), "visit".into())] },
            _ => Best::default(),
        }
    }

    fn combine(&mut self, s: &Step, inner: Vec<Best>, metric: Metric) -> Best {
        match metric {
            Metric::Limit => match s.within {
                Some(l) => Best { value: l.approx_workdays(), path: vec![(s.id.clone(), l.to_string())] },
                None => inner.into_iter().max_by(|a, b| a.value.total_cmp(&b.value)).unwrap_or_default(),
            },
            Metric::Visits => {
                let mut total = Best::default();
                if s.visit {
                    total.value += 1.0;
                    total.path.push((s.id.clone(), "visit".into()));
                }
                for b in inner {
                    total.value += b.value;
                    total.path.extend(b.path);
                }
                total
            }
        }
    }

    /// The best value from `id` to the join of `stop` (or to an end).
    fn best(&mut self, id: &str, stop: Option<&str>, metric: Metric) -> Best {
        let key = (id.to_string(), stop.map(str::to_string), metric);
        if let Some(b) = self.memo.get(&key) {
            return b.clone();
        }
        let Some(s) = self.by_id.get(id).copied() else { return Best::default() };
        if !self.visiting.insert(id.to_string()) {
            return Best::default();
        }
        let own = self.contribution(s, metric);
        let mut tail = Best::default();
        for t in self.forward(s) {
            let b = match t {
                Target::Step(next) => self.best(&next, stop, metric),
                _ => Best::default(),
            };
            if b.value > tail.value || tail.path.is_empty() && b.value >= tail.value {
                tail = b;
            }
        }
        self.visiting.remove(id);
        let mut out = own;
        out.value += tail.value;
        out.path.extend(tail.path);
        self.memo.insert(key, out.clone());
        out
    }

    /// Every step id along the best path (for messages), not just the contributing ones.
    fn full_path(&mut self, id: &str, stop: Option<&str>, metric: Metric) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(id.to_string());
        let mut guard = 0;
        while let Some(c) = cur.take() {
            guard += 1;
            if guard > 10_000 {
                break;
            }
            let Some(s) = self.by_id.get(c.as_str()).copied() else {
                out.push(c);
                break;
            };
            match &s.kind {
                StepKind::Parallel { lanes, .. } => {
                    let parts: Vec<String> = lanes
                        .iter()
                        .filter_map(|l| l.steps.first())
                        .map(|f| self.full_path(&f.id, Some(&s.id), metric).join(" → "))
                        .collect();
                    out.push(format!("{} [{}]", s.id, parts.join(" ‖ ")));
                }
                StepKind::JointReview { reviews, .. } => {
                    let parts: Vec<String> = reviews.iter().map(|r| r.id.clone()).collect();
                    out.push(format!("{} [{}]", s.id, parts.join(" ‖ ")));
                }
                _ => out.push(s.id.clone()),
            }
            let mut best: Option<(f64, Target)> = None;
            for t in self.forward(s) {
                let v = match &t {
                    Target::Step(n) => self.best(n, stop, metric).value,
                    _ => 0.0,
                };
                if best.as_ref().is_none_or(|(bv, _)| v > *bv) {
                    best = Some((v, t));
                }
            }
            cur = match best {
                Some((_, Target::Step(n))) => Some(n),
                Some((_, Target::End(e))) => {
                    out.push(format!("end {e}"));
                    None
                }
                _ => None,
            };
        }
        out
    }
}

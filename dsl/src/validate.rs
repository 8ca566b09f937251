//! Whole-flow checks on the IR: references, structure, soundness, clocks,
//! visit bounds and rhai expressions. Every problem is reported; nothing stops
//! at the first one.
//!
//! Why this file is long: the checks share one control-flow graph and one
//! longest-path walker (limits, visits); they are grouped by concern below.

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
        if let Target::Step(id) = &t.target
            && !steps.contains(id)
            && ends.contains(id)
        {
            t.target = Target::End(id.clone());
        }
    }
    fn walk(steps: &mut [Step], ids: &HashSet<String>, ends: &HashSet<String>) {
        for s in steps {
            if let Some(n) = &mut s.next {
                fix(n, ids, ends);
            }
            match &mut s.kind {
                StepKind::Task { actions, .. } => actions
                    .iter_mut()
                    .for_each(|a| fix(&mut a.target, ids, ends)),
                StepKind::Decision { branches, default } => {
                    branches
                        .iter_mut()
                        .for_each(|b| fix(&mut b.target, ids, ends));
                    if let Some(d) = default {
                        fix(d, ids, ends);
                    }
                }
                StepKind::Parallel { lanes, .. } => {
                    lanes.iter_mut().for_each(|l| walk(&mut l.steps, ids, ends))
                }
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
        fn add(steps: &[Step], join: Option<&GNode>, succ: &mut HashMap<GNode, Vec<GNode>>) {
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
                        if lanes.is_empty() {
                            // Reported as an empty block; keep the graph connected.
                            out.push(j.clone());
                        }
                        for l in lanes {
                            match l.steps.first() {
                                Some(first) => out.push(GNode::Step(first.id.clone())),
                                // An empty branch (reported) completes at once.
                                None => out.push(j.clone()),
                            }
                            add(&l.steps, Some(&j), succ);
                        }
                        let after: Vec<GNode> =
                            s.next.iter().filter_map(|n| to(&n.target)).collect();
                        succ.entry(j).or_default().extend(after);
                    }
                    StepKind::JointReview { reviews, .. } => {
                        let j = GNode::Join(s.id.clone());
                        for r in reviews {
                            out.push(GNode::Step(r.id.clone()));
                        }
                        add(reviews, Some(&j), succ);
                        let mut after: Vec<GNode> =
                            s.next.iter().filter_map(|n| to(&n.target)).collect();
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

    /// Whether `target` is reachable from `start` through nodes accepted by `inside`.
    pub fn reaches_within(
        &self,
        start: &GNode,
        target: &GNode,
        inside: impl Fn(&GNode) -> bool,
    ) -> bool {
        let mut seen = HashSet::new();
        let mut stack = vec![start];
        while let Some(n) = stack.pop() {
            if n == target {
                return true;
            }
            if !inside(n) || !seen.insert(n) {
                continue;
            }
            if let Some(next) = self.succ.get(n) {
                stack.extend(next.iter());
            }
        }
        false
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
        fn walk(
            steps: &[Step],
            place: Place,
            out: &mut HashMap<String, Place>,
            order: &mut HashMap<String, usize>,
        ) {
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
                            walk(
                                std::slice::from_ref(r),
                                Place::Lane(s.id.clone(), i),
                                out,
                                order,
                            );
                        }
                    }
                    _ => {}
                }
            }
        }
        walk(
            &self.flow.steps,
            Place::Top,
            &mut self.place,
            &mut self.order,
        );
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
                Diagnostic::new(
                    Code::DuplicateId,
                    span,
                    format!("duplicate {what} id `{id}`"),
                )
                .label("second definition")
                .related(first, "first defined here")
                .help(format!(
                    "ids must be unique in a flow; rename one of the `{id}`s"
                )),
            );
        }
    }

    fn department(&mut self, id: &str, span: Span, role: Option<&str>) {
        let Some(d) = self.flow.departments.iter().find(|d| d.id == id) else {
            let help = match did_you_mean(id, self.flow.departments.iter().map(|d| d.id.as_str())) {
                Some(s) => format!("did you mean `{s}`?"),
                None if self.flow.departments.is_empty() => {
                    "declare it in a `departments` block".to_string()
                }
                None => format!(
                    "declared departments: {}",
                    self.flow
                        .departments
                        .iter()
                        .map(|d| d.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            self.err(
                Diagnostic::new(
                    Code::UnknownDepartment,
                    span,
                    format!("unknown department `{id}`"),
                )
                .label("not declared")
                .help(help),
            );
            return;
        };
        if let Some(role) = role
            && !d.roles.iter().any(|r| r.id == role)
        {
            let help = match did_you_mean(role, d.roles.iter().map(|r| r.id.as_str())) {
                Some(s) => format!("did you mean `{id}.{s}`?"),
                None => format!(
                    "declare the role under department `{id}`: `roles {{ {role} \"名称\" }}`"
                ),
            };
            self.err(
                Diagnostic::new(
                    Code::UnknownRole,
                    span,
                    format!("department `{id}` has no role `{role}`"),
                )
                .label("unknown role")
                .help(help),
            );
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
                            let help =
                                match did_you_mean(m, flow.materials.iter().map(|x| x.id.as_str()))
                                {
                                    Some(sug) => format!("did you mean `{sug}`?"),
                                    None => "declare it in the `materials` block".to_string(),
                                };
                            self.err(
                                Diagnostic::new(
                                    Code::UnknownMaterial,
                                    s.span,
                                    format!("step `{}` checks unknown material `{m}`", s.id),
                                )
                                .label("unknown material")
                                .help(help),
                            );
                        }
                    }
                }
                StepKind::Parallel {
                    lead: Some(lead), ..
                }
                | StepKind::JointReview {
                    lead: Some(lead), ..
                }
                | StepKind::Subflow {
                    lead: Some(lead), ..
                } => {
                    self.department(lead, s.span, None);
                }
                _ => {}
            }
            if let StepKind::JointReview { consolidate, .. } = &s.kind
                && !consolidate.by.department.is_empty()
            {
                self.department(
                    &consolidate.by.department,
                    consolidate.by.span,
                    consolidate.by.role.as_deref(),
                );
            }
            for (t, _) in transitions(s) {
                if let Target::Step(id) = &t.target
                    && !self.order.contains_key(id)
                {
                    let candidates: Vec<&str> = self
                        .order
                        .keys()
                        .map(String::as_str)
                        .chain(flow.ends.keys().map(String::as_str))
                        .collect();
                    let help = match did_you_mean(id, candidates.iter().copied()) {
                        Some(sug) => format!("did you mean `{sug}`?"),
                        None => {
                            "the target must be the id of a step or an end in this flow".to_string()
                        }
                    };
                    self.err(
                        Diagnostic::new(Code::UnknownStep, t.span, format!("unknown step `{id}`"))
                            .label("no step with this id")
                            .help(help),
                    );
                }
            }
            if let StepKind::Task { actions, .. } = &s.kind {
                for a in actions {
                    if a.kind != ActionKind::Return {
                        continue;
                    }
                    if let Target::Step(id) = &a.target.target {
                        if let (Some(&to), Some(&from)) =
                            (self.order.get(id), self.order.get(&s.id))
                            && to >= from
                        {
                            self.err(
                                    Diagnostic::new(Code::ReturnNotEarlier, a.target.span, format!("`return` goes to `{id}`, which is not earlier than `{}`", s.id))
                                        .label("not an earlier step")
                                        .help("a return (退回) sends the case back to a step before this one; use a custom action for other jumps"),
                                );
                        }
                    } else {
                        self.err(
                            Diagnostic::new(
                                Code::ReturnNotEarlier,
                                a.target.span,
                                "`return` must go back to an earlier step, not to an end",
                            )
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
                    (Place::Lane(..), Target::End(_)) => {
                        Some("ends the case from inside a parallel branch".to_string())
                    }
                    (Place::Lane(p, i), Target::Step(id)) => match self.place.get(id) {
                        Some(Place::Lane(q, j)) if q == p && i == j => None,
                        Some(_) => Some(format!("leaves its branch of `{p}` for `{id}`")),
                        None => None,
                    },
                    (Place::Top, Target::Step(id)) => match self.place.get(id) {
                        Some(Place::Lane(q, _)) => {
                            Some(format!("jumps into a branch of `{q}` at `{id}`"))
                        }
                        _ => None,
                    },
                    (Place::Top, Target::Join) => {
                        Some("goes to a join outside any parallel block".to_string())
                    }
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
                            Diagnostic::new(
                                Code::EmptyBlock,
                                s.span,
                                format!("parallel block `{}` has no branches", s.id),
                            )
                            .label("no branches")
                            .help("put the steps that run in parallel inside the block"),
                        );
                    }
                    self.check_join(s, *join, lanes.len());
                    if let Some(lead) = lead {
                        let handles = lanes.iter().flat_map(|l| l.steps.iter()).any(|st| match &st
                            .kind
                        {
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
                StepKind::Subflow { items, join, .. } => self.check_join(s, *join, items.len()),
                _ => {}
            }
        }
    }

    fn check_join(&mut self, s: &Step, join: Join, branches: usize) {
        if let Join::NOfM { n, m } = join {
            let why = if n == 0 {
                Some("it needs 0 branches, so it completes before anything runs".to_string())
            } else if m as usize != branches {
                Some(format!(
                    "it says {m} branches but `{}` has {branches}",
                    s.id
                ))
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
                StepKind::Parallel { lanes, join, .. } => {
                    (lanes.iter().map(|l| l.steps.as_slice()).collect(), *join)
                }
                StepKind::JointReview { reviews, .. } => (
                    reviews.iter().map(std::slice::from_ref).collect(),
                    Join::All,
                ),
                _ => continue,
            };
            if !reached.contains(&GNode::Step(s.id.clone())) {
                continue;
            }
            let j = GNode::Join(s.id.clone());
            let mut stuck = Vec::new();
            for (li, lane) in lanes.iter().enumerate() {
                let Some(first) = lane.first() else { continue };
                // Search only inside this branch: its steps may reach the join
                // or leave the block (an escape, reported elsewhere).
                let lane_place = Place::Lane(s.id.clone(), li);
                let inside = |n: &GNode| matches!(n, GNode::Step(id) if self.place.get(id) == Some(&lane_place));
                if !g.reaches_within(&GNode::Step(first.id.clone()), &j, inside) {
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
                        "the join of `{}` can never complete: {} of its branches never {} it",
                        s.id,
                        stuck.len(),
                        if stuck.len() == 1 { "reaches" } else { "reach" }
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
                Diagnostic::new(
                    Code::NoClockStart,
                    span,
                    "a promised item has no step that starts the clock",
                )
                .label("the promised limit never starts")
                .help("mark the acceptance step (受理) with `starts_clock`"),
            );
        }
    }

    /// Longest paths (ignoring loops) by step limits and by on-site visits.
    fn paths(&mut self) {
        let flow = self.flow;
        // The first definition wins when ids are duplicated (reported elsewhere).
        let mut by_id: HashMap<&str, &Step> = HashMap::new();
        for s in flow.all_steps() {
            by_id.entry(s.id.as_str()).or_insert(s);
        }
        let Some(first) = flow.steps.first() else {
            return;
        };
        let order = self.order.clone();
        let place = self.place.clone();
        let mut w = Walker {
            by_id: &by_id,
            order: &order,
            place: &place,
            memo: HashMap::new(),
            correction_visits: flow.item.correction_on_site,
        };
        // Limits count from acceptance: the step that starts the clock (the
        // first step when none is marked).
        let clock_start = flow
            .all_steps()
            .into_iter()
            .find(|s| s.starts_clock)
            .map_or(first.id.as_str(), |s| s.id.as_str());
        for (key, names) in [
            ("stops_statutory", &flow.item.stops_statutory),
            (
                "stops_promised",
                &flow.item.stops_promised.clone().unwrap_or_default(),
            ),
        ] {
            for n in names.iter() {
                if !SPECIAL_SUSPENDING.contains(&n.as_str()) {
                    let help = match did_you_mean(n, SPECIAL_SUSPENDING.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "class-B special procedures: {}",
                            SPECIAL_SUSPENDING.join(", ")
                        ),
                    };
                    self.err(
                        Diagnostic::new(
                            Code::InvalidValue,
                            flow.span,
                            format!(
                                "`{key}` names `{n}`, which is not a class-B special procedure"
                            ),
                        )
                        .label("unknown special procedure")
                        .help(help),
                    );
                }
            }
        }
        for s in flow.all_steps() {
            if let StepKind::Subflow {
                pauses_for,
                pauses_for_basis,
                ..
            } = &s.kind
            {
                for n in pauses_for {
                    if !SPECIAL_SUSPENDING.contains(&n.as_str()) {
                        self.err(
                            Diagnostic::new(
                                Code::InvalidValue,
                                s.span,
                                format!("`pauses_for` names `{n}`, which is not a class-B special procedure"),
                            )
                            .label("unknown special procedure")
                            .help(format!("class-B special procedures: {}", SPECIAL_SUSPENDING.join(", "))),
                        );
                    }
                }
                if !pauses_for.is_empty() && pauses_for_basis.is_none() {
                    self.err(
                        Diagnostic::new(
                            Code::MissingLegalBasis,
                            s.span,
                            format!("stage `{}` pauses for its items' procedures without naming the rule that says so", s.id),
                        )
                        .label("no `pauses_for_basis`")
                        .help("add `pauses_for_basis \"《…》第…条\"`: the rule under which the stage's clock follows its item cases"),
                    );
                }
            }
        }
        if !flow.item.stops_statutory.is_empty() && flow.item.stops_statutory_basis.is_none() {
            self.err(
                Diagnostic::new(
                    Code::MissingLegalBasis,
                    flow.span,
                    format!(
                        "`stops_statutory [{}]` stops the statutory clock beyond 行政许可法第四十五条 without naming the law that says so",
                        flow.item.stops_statutory.join(", ")
                    ),
                )
                .label("no `stops_statutory_basis`")
                .help("add `stops_statutory_basis \"《…》第…条\"`: only a law or regulation can exclude more time from the statutory period (第四十五条)"),
            );
        }
        if let Some(w) = flow.item.correction_within
            && w.approx_days() > Limit::CORRECTION_LAW.approx_days() + 1e-9
        {
            self.err(
                Diagnostic::new(
                    Code::CorrectionWindowTooLong,
                    w.span,
                    format!("a correction notice within {w} is later than the law allows (5 working days)"),
                )
                .label("correction window")
                .help("行政许可法第三十二条: the notice goes out on the spot or within five working days of receipt; a flow may only shorten that"),
            );
        }
        if let (Some(promised), Some(statutory)) = (flow.item.promised, flow.item.statutory)
            && promised.approx_days() > statutory.approx_days() + 1e-9
        {
            self.err(
                Diagnostic::new(
                    Code::PromisedOverStatutory,
                    promised.span,
                    format!("the promised limit {promised} is longer than the statutory limit {statutory}"),
                )
                .label("promised limit")
                .related(statutory.span, format!("statutory limit: {statutory}"))
                .help("the office's commitment (承诺时限) may only shorten the legal period (法定时限): lower the promised limit"),
            );
        }
        // The clock starts when the acceptance step completes: its own limit
        // is not part of the period.
        let from_acceptance = |w: &mut Walker| {
            let mut best = w.best(clock_start, Metric::Limit);
            let own = flow
                .all_steps()
                .into_iter()
                .find(|s| s.starts_clock && s.id == clock_start)
                .and_then(|s| s.within);
            if let Some(l) = own
                && best.path.first().is_some_and(|(id, _)| id == clock_start)
            {
                best.path.remove(0);
                best.value -= l.approx_workdays();
            }
            best
        };
        // A path from acceptance whose step limits add up past a case limit:
        // the statutory one is an error, the promised one a warning.
        let checks = [
            (
                flow.item.statutory,
                Code::LimitsExceedStatutory,
                "statutory",
                "from acceptance ",
                "a case handled within every step limit would still break the law: shorten the step limits",
            ),
            (
                flow.item.promised,
                Code::LimitsExceedPromised,
                "promised",
                "",
                "shorten the step limits or raise the promised limit",
            ),
        ];
        for (limit, code, which, from, advice) in checks {
            let Some(limit) = limit else { continue };
            let best = from_acceptance(&mut w);
            if best.value <= limit.approx_workdays() + 1e-9 {
                continue;
            }
            let path = best
                .path
                .iter()
                .map(|(id, v)| format!("{id} ({v})"))
                .collect::<Vec<_>>()
                .join(" → ");
            let mut d = Diagnostic::new(
                code,
                limit.span,
                format!(
                    "step limits on one path {from}add up to {} working days, more than the {which} {limit}",
                    fmt_num(best.value)
                ),
            )
            .label(format!("{which} limit"))
            .help(format!("path: {path}; {advice}"));
            for (id, _) in &best.path {
                if let Some(st) = by_id.get(id.as_str())
                    && let Some(l) = st.within
                {
                    d = d.related(l.span, format!("`{id}`: {l}"));
                }
            }
            self.err(d);
        }
        if let Some(bound) = flow.item.mode.visit_bound() {
            let best = w.best(&first.id, Metric::Visits);
            if best.value > f64::from(bound) + 1e-9 {
                let visits: Vec<&str> = best.path.iter().map(|(id, _)| id.as_str()).collect();
                let full = w.full_path(&first.id, Metric::Visits, 0);
                let mut d = Diagnostic::new(
                    Code::VisitBoundExceeded,
                    by_id
                        .get(visits[visits.len().saturating_sub(1)])
                        .map_or(first.span, |s| s.span),
                    format!(
                        "a path has {} on-site visit{}, but mode `{}` allows at most {bound}",
                        fmt_num(best.value),
                        if (best.value - 1.0).abs() < 1e-9 {
                            ""
                        } else {
                            "s"
                        },
                        flow.item.mode.as_str()
                    ),
                )
                .label("visit over the bound")
                .help(format!(
                    "path: {}; visits at {}; move a visit online or change the mode",
                    full.join(" → "),
                    best.path
                        .iter()
                        .map(|(id, kind)| if kind == "visit" {
                            format!("`{id}`")
                        } else {
                            format!("`{id}` ({kind})")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                for (id, kind) in &best.path {
                    if let Some(st) = by_id.get(id.as_str()) {
                        let what = if kind == "visit" {
                            "on-site visit"
                        } else {
                            "on-site correction"
                        };
                        d = d.related(st.span, what);
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
                StepKind::Decision { branches, .. } => {
                    branches.iter().map(|b| &b.condition).collect()
                }
                StepKind::Auto { set } => set.iter().map(|a| &a.expr).collect(),
                _ => continue,
            };
            for e in exprs {
                if let Err(err) = engine.compile_expression(&e.raw.0) {
                    let (msg, pos) = crate::rhai_sandbox::describe(&err);
                    let at = crate::rhai_sandbox::map_position(file, e.span, &e.raw.0, pos);
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

/// Best value from each step to the end of its block, and the successor chosen.
#[derive(Clone, Debug, Default)]
struct Val {
    value: f64,
    choice: Option<Target>,
}

/// Longest-path computations over the forward edges (loops ignored).
///
/// Forward edges stay within a block and go to a later step in source order,
/// so processing steps in reverse source order sees every successor first:
/// no recursion over path length, linear in the number of transitions.
struct Walker<'a> {
    by_id: &'a HashMap<&'a str, &'a Step>,
    order: &'a HashMap<String, usize>,
    place: &'a HashMap<String, Place>,
    memo: HashMap<(String, Metric), Val>,
    /// The item's corrections need the applicant on site: a step that can send
    /// a correction notice counts one more visit.
    correction_visits: bool,
}

/// A task that can send a correction notice (补齐补正).
fn corrects(s: &Step) -> bool {
    matches!(&s.kind, StepKind::Task { actions, .. } if actions.iter().any(|a| a.kind == ActionKind::Correct))
}

impl Walker<'_> {
    /// Successors of a step that move forward in source order within its block.
    fn forward(&self, s: &Step) -> Vec<Target> {
        let me = self.order.get(&s.id).copied().unwrap_or(0);
        let here = self.place.get(&s.id);
        transitions(s)
            .into_iter()
            .map(|(t, _)| t.target.clone())
            .filter(|t| match t {
                // Escapes from a block are reported elsewhere; they do not count here.
                Target::Step(id) => {
                    self.order.get(id).is_some_and(|&o| o > me) && self.place.get(id) == here
                }
                _ => true,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn val(&self, id: &str, metric: Metric) -> f64 {
        self.memo
            .get(&(id.to_string(), metric))
            .map_or(0.0, |v| v.value)
    }

    fn inner_firsts(s: &Step) -> Vec<&Step> {
        match &s.kind {
            StepKind::Parallel { lanes, .. } => {
                lanes.iter().filter_map(|l| l.steps.first()).collect()
            }
            StepKind::JointReview { reviews, .. } => reviews.iter().collect(),
            _ => Vec::new(),
        }
    }

    /// The step's own contribution (its block's, for parallel and joint review).
    fn own(&self, s: &Step, metric: Metric) -> f64 {
        let inner: Vec<f64> = Self::inner_firsts(s)
            .iter()
            .map(|f| self.val(&f.id, metric))
            .collect();
        let block = matches!(
            s.kind,
            StepKind::Parallel { .. } | StepKind::JointReview { .. }
        );
        match metric {
            Metric::Limit => {
                if let Some(l) = s.within {
                    return l.approx_workdays();
                }
                if !block {
                    return 0.0;
                }
                let mut v = inner.into_iter().fold(0.0, f64::max);
                if let StepKind::JointReview { consolidate, .. } = &s.kind {
                    v += consolidate.within.map_or(0.0, |l| l.approx_workdays());
                }
                v
            }
            Metric::Visits => {
                f64::from(u8::from(s.visit))
                    + f64::from(u8::from(self.correction_visits && corrects(s)))
                    + inner.into_iter().sum::<f64>()
            }
        }
    }

    fn compute(&mut self, metric: Metric) {
        let mut ids: Vec<(&String, usize)> = self.order.iter().map(|(k, v)| (k, *v)).collect();
        ids.sort_by_key(|x| std::cmp::Reverse(x.1));
        for (id, _) in ids {
            let Some(s) = self.by_id.get(id.as_str()).copied() else {
                continue;
            };
            let own = self.own(s, metric);
            let mut best: Option<(f64, Target)> = None;
            for t in self.forward(s) {
                let v = match &t {
                    Target::Step(n) => self.val(n, metric),
                    _ => 0.0,
                };
                if best.as_ref().is_none_or(|(bv, _)| v > *bv) {
                    best = Some((v, t));
                }
            }
            let (tail, choice) = best.map_or((0.0, None), |(v, t)| (v, Some(t)));
            self.memo.insert(
                (id.clone(), metric),
                Val {
                    value: own + tail,
                    choice,
                },
            );
        }
    }

    /// The best value from `id` and the steps contributing to it.
    fn best(&mut self, id: &str, metric: Metric) -> Best {
        if !self.memo.keys().any(|(_, m)| *m == metric) {
            self.compute(metric);
        }
        let mut out = Best {
            value: self.val(id, metric),
            path: Vec::new(),
        };
        self.contributions(id, metric, &mut out.path, 0);
        out
    }

    fn contributions(
        &self,
        id: &str,
        metric: Metric,
        out: &mut Vec<(String, String)>,
        depth: usize,
    ) {
        let mut cur = Some(id.to_string());
        let mut guard = 0;
        while let Some(c) = cur.take() {
            guard += 1;
            let Some(s) = self.by_id.get(c.as_str()).copied() else {
                break;
            };
            if guard > self.order.len() + 1 || depth > crate::MAX_NESTING {
                break;
            }
            let firsts = Self::inner_firsts(s);
            match metric {
                Metric::Limit => {
                    if let Some(l) = s.within {
                        out.push((s.id.clone(), l.to_string()));
                    } else if !firsts.is_empty() {
                        let best = firsts.iter().max_by(|a, b| {
                            self.val(&a.id, metric).total_cmp(&self.val(&b.id, metric))
                        });
                        if let Some(f) = best {
                            self.contributions(&f.id, metric, out, depth + 1);
                        }
                        if let StepKind::JointReview {
                            consolidate:
                                Consolidate {
                                    within: Some(l), ..
                                },
                            ..
                        } = &s.kind
                        {
                            out.push((format!("{}.consolidate", s.id), l.to_string()));
                        }
                    }
                }
                Metric::Visits => {
                    if s.visit {
                        out.push((s.id.clone(), "visit".into()));
                    }
                    if self.correction_visits && corrects(s) {
                        out.push((s.id.clone(), "on-site correction".into()));
                    }
                    for f in firsts {
                        self.contributions(&f.id, metric, out, depth + 1);
                    }
                }
            }
            cur = match self.memo.get(&(c, metric)).and_then(|v| v.choice.clone()) {
                Some(Target::Step(n)) => Some(n),
                _ => None,
            };
        }
    }

    /// Every step id along the best path (for messages), blocks shown with their branches.
    fn full_path(&self, id: &str, metric: Metric, depth: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = Some(id.to_string());
        let mut guard = 0;
        while let Some(c) = cur.take() {
            guard += 1;
            if guard > self.order.len() + 1 || depth > crate::MAX_NESTING {
                break;
            }
            let Some(s) = self.by_id.get(c.as_str()).copied() else {
                break;
            };
            let firsts = Self::inner_firsts(s);
            if firsts.is_empty() {
                out.push(s.id.clone());
            } else {
                let parts: Vec<String> = firsts
                    .iter()
                    .map(|f| self.full_path(&f.id, metric, depth + 1).join(" → "))
                    .collect();
                out.push(format!("{} [{}]", s.id, parts.join(" ‖ ")));
            }
            cur = match self.memo.get(&(c, metric)).and_then(|v| v.choice.clone()) {
                Some(Target::Step(n)) => Some(n),
                Some(Target::End(e)) => {
                    out.push(format!("end {e}"));
                    None
                }
                _ => None,
            };
        }
        out
    }
}

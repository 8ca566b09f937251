//! The flow diagram: one model, rendered as SVG (studio, `govflow graph`) or DOT.
//!
//! Layout is layered (top to bottom): loops are ignored to get a DAG, each node
//! sits one layer below its deepest forward predecessor, and parallel blocks
//! are drawn as dashed groups around their branches.

use crate::ir::*;
use crate::validate::{FlowGraph, GNode};
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Task,
    Auto,
    Decision,
    Split,
    Join,
    Wait,
    Subflow,
    End,
}

#[derive(Clone, Debug)]
pub struct DNode {
    pub key: GNode,
    pub id: String,
    pub label: String,
    pub sub: String,
    pub shape: Shape,
    pub visit: bool,
    pub risk: bool,
    pub clock: bool,
    pub layer: usize,
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

#[derive(Clone, Debug)]
pub struct DEdge {
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub back: bool,
}

#[derive(Clone, Debug)]
pub struct Group {
    pub label: String,
    pub members: Vec<usize>,
}

#[derive(Clone, Debug)]
pub struct Diagram {
    pub title: String,
    pub nodes: Vec<DNode>,
    pub edges: Vec<DEdge>,
    pub groups: Vec<Group>,
    pub width: f64,
    pub height: f64,
}

/// Approximate rendered width of a label: CJK characters are twice as wide.
fn text_width(s: &str, size: f64) -> f64 {
    s.chars()
        .map(|c| {
            if (c as u32) > 0x2E80 {
                size
            } else {
                size * 0.6
            }
        })
        .sum()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Every step of a sequence, blocks' inner steps included.
fn nested(steps: &[Step]) -> Vec<&Step> {
    let mut out = Vec::new();
    let mut stack: Vec<&Step> = steps.iter().rev().collect();
    while let Some(s) = stack.pop() {
        out.push(s);
        match &s.kind {
            StepKind::Parallel { lanes, .. } => {
                for l in lanes.iter().rev() {
                    stack.extend(l.steps.iter().rev());
                }
            }
            StepKind::JointReview { reviews, .. } => stack.extend(reviews.iter().rev()),
            _ => {}
        }
    }
    out
}

impl Diagram {
    pub fn build(flow: &Flow) -> Diagram {
        let g = FlowGraph::build(flow);
        let mut nodes: Vec<DNode> = Vec::new();
        let mut index: HashMap<GNode, usize> = HashMap::new();
        let mut groups = Vec::new();
        let push = |nodes: &mut Vec<DNode>,
                    index: &mut HashMap<GNode, usize>,
                    key: GNode,
                    id: String,
                    label: String,
                    sub: String,
                    shape: Shape,
                    s: Option<&Step>| {
            let i = nodes.len();
            index.insert(key.clone(), i);
            nodes.push(DNode {
                key,
                id,
                label,
                sub,
                shape,
                visit: s.is_some_and(|s| s.visit),
                risk: s.is_some_and(|s| s.risk_point),
                clock: s.is_some_and(|s| s.starts_clock),
                layer: 0,
                x: 0.0,
                y: 0.0,
                w: 0.0,
                h: 0.0,
            });
            i
        };
        for s in flow.all_steps() {
            let limit = s.within.map(|l| format!(" · {l}")).unwrap_or_default();
            let (shape, sub) = match &s.kind {
                StepKind::Task { by, .. } => (Shape::Task, format!("{by}{limit}")),
                StepKind::Auto { .. } => (Shape::Auto, format!("auto{limit}")),
                StepKind::Decision { .. } => (Shape::Decision, String::new()),
                StepKind::Parallel { lead, join, .. } => {
                    let j = match join {
                        Join::All => "all".to_string(),
                        Join::Any => "any".to_string(),
                        Join::NOfM { n, m } => format!("{n} of {m}"),
                    };
                    let lead = lead
                        .as_ref()
                        .map(|l| format!(" · 牵头 {l}"))
                        .unwrap_or_default();
                    (Shape::Split, format!("join {j}{lead}{limit}"))
                }
                StepKind::JointReview { lead, .. } => {
                    let lead = lead
                        .as_ref()
                        .map(|l| format!(" · 牵头 {l}"))
                        .unwrap_or_default();
                    (Shape::Split, format!("多评合一{lead}{limit}"))
                }
                StepKind::Subflow { items, .. } => {
                    (Shape::Subflow, format!("{}{limit}", items.join(", ")))
                }
                StepKind::Wait { timer, event } => (
                    Shape::Wait,
                    match (timer, event) {
                        (Some(t), _) => format!("wait {t}"),
                        (None, Some(e)) => format!("wait {e}"),
                        _ => String::new(),
                    },
                ),
            };
            let i = push(
                &mut nodes,
                &mut index,
                GNode::Step(s.id.clone()),
                s.id.clone(),
                s.name.clone(),
                sub,
                shape,
                Some(s),
            );
            match &s.kind {
                StepKind::Parallel { .. } => {
                    push(
                        &mut nodes,
                        &mut index,
                        GNode::Join(s.id.clone()),
                        format!("{}#join", s.id),
                        String::new(),
                        String::new(),
                        Shape::Join,
                        None,
                    );
                    groups.push((s.id.clone(), s.name.clone(), i));
                }
                StepKind::JointReview { consolidate, .. } => {
                    let sub = consolidate
                        .within
                        .map(|l| format!("{} · {l}", consolidate.by))
                        .unwrap_or_else(|| consolidate.by.to_string());
                    push(
                        &mut nodes,
                        &mut index,
                        GNode::Join(s.id.clone()),
                        format!("{}#consolidate", s.id),
                        "统一整改意见".into(),
                        sub,
                        Shape::Task,
                        None,
                    );
                    groups.push((s.id.clone(), s.name.clone(), i));
                }
                _ => {}
            }
        }
        for e in flow.ends.values() {
            push(
                &mut nodes,
                &mut index,
                GNode::End(e.id.clone()),
                e.id.clone(),
                e.name.clone(),
                String::new(),
                Shape::End,
                None,
            );
        }
        // Edges with labels.
        let mut edges = Vec::new();
        // A block's join comes after every step inside the block: edges from
        // the lanes into it are forward edges, not loops.
        let mut join_after: HashMap<&str, usize> = HashMap::new();
        for s in flow.all_steps() {
            let inner: Vec<&Step> = match &s.kind {
                StepKind::Parallel { lanes, .. } => {
                    lanes.iter().flat_map(|l| nested(&l.steps)).collect()
                }
                StepKind::JointReview { reviews, .. } => nested(reviews),
                _ => continue,
            };
            let last = inner
                .iter()
                .filter_map(|st| g.order.get(&st.id).copied())
                .chain(g.order.get(&s.id).copied())
                .max()
                .unwrap_or(0);
            join_after.insert(s.id.as_str(), last);
        }
        let order = |k: &GNode| -> usize {
            match k {
                GNode::Step(s) => g.order.get(s).copied().unwrap_or(0) * 2,
                GNode::Join(s) => {
                    join_after
                        .get(s.as_str())
                        .copied()
                        .or_else(|| g.order.get(s).copied())
                        .unwrap_or(0)
                        * 2
                        + 1
                }
                GNode::End(_) => usize::MAX,
            }
        };
        let labels = edge_labels(flow);
        let mut keys: Vec<&GNode> = g.succ.keys().collect();
        keys.sort();
        for from in keys {
            let Some(&fi) = index.get(from) else { continue };
            let mut seen = std::collections::HashSet::new();
            for to in &g.succ[from] {
                let Some(&ti) = index.get(to) else { continue };
                if !seen.insert(ti) {
                    continue;
                }
                // A back edge goes to an earlier step, or from a consolidation back to its review.
                let back = order(to) <= order(from) && !matches!(to, GNode::End(_));
                let label = labels
                    .get(&(from.clone(), to.clone()))
                    .cloned()
                    .unwrap_or_default();
                edges.push(DEdge {
                    from: fi,
                    to: ti,
                    label,
                    back,
                });
            }
        }
        let groups = groups
            .into_iter()
            .map(|(id, name, _)| {
                let members = flow
                    .step(&id)
                    .map(|s| match &s.kind {
                        StepKind::Parallel { lanes, .. } => lanes
                            .iter()
                            .flat_map(|l| l.steps.iter())
                            .collect::<Vec<_>>(),
                        StepKind::JointReview { reviews, .. } => reviews.iter().collect(),
                        _ => Vec::new(),
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|st| index.get(&GNode::Step(st.id.clone())).copied())
                    .chain(index.get(&GNode::Step(id.clone())).copied())
                    .chain(index.get(&GNode::Join(id.clone())).copied())
                    .collect();
                Group {
                    label: name,
                    members,
                }
            })
            .collect();
        let mut d = Diagram {
            title: format!("{} (v{})", flow.name, flow.version),
            nodes,
            edges,
            groups,
            width: 0.0,
            height: 0.0,
        };
        d.layout(
            index
                .get(&g.start.clone().unwrap_or(GNode::End(String::new())))
                .copied(),
        );
        d
    }

    fn layout(&mut self, start: Option<usize>) {
        let n = self.nodes.len();
        let mut indeg = vec![0usize; n];
        let mut succ: Vec<Vec<usize>> = vec![Vec::new(); n];
        for e in &self.edges {
            if !e.back {
                succ[e.from].push(e.to);
                indeg[e.to] += 1;
            }
        }
        // Longest-path layering over the forward edges (Kahn order).
        let mut layer = vec![0usize; n];
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        if let Some(s) = start
            && let Some(pos) = queue.iter().position(|&x| x == s)
        {
            queue.remove(pos);
            queue.push_front(s);
        }
        let mut seen_order = Vec::new();
        let mut indeg2 = indeg.clone();
        while let Some(u) = queue.pop_front() {
            seen_order.push(u);
            for &v in &succ[u] {
                layer[v] = layer[v].max(layer[u] + 1);
                indeg2[v] -= 1;
                if indeg2[v] == 0 {
                    queue.push_back(v);
                }
            }
        }
        // Nodes left in a cycle of forward edges (should not happen) go last.
        let max_layer = layer.iter().copied().max().unwrap_or(0);
        let placed: std::collections::HashSet<usize> = seen_order.iter().copied().collect();
        for (i, l) in layer.iter_mut().enumerate() {
            if !placed.contains(&i) {
                *l = max_layer + 1;
                seen_order.push(i);
            }
        }
        // Ends sit on the bottom layer.
        let bottom = layer.iter().copied().max().unwrap_or(0);
        for (i, node) in self.nodes.iter().enumerate() {
            if node.shape == Shape::End {
                layer[i] = layer[i].max(bottom);
            }
        }
        let layers = layer.iter().copied().max().unwrap_or(0) + 1;
        let mut rows: Vec<Vec<usize>> = vec![Vec::new(); layers];
        for &i in &seen_order {
            rows[layer[i]].push(i);
        }
        for (i, node) in self.nodes.iter_mut().enumerate() {
            node.layer = layer[i];
            let (w, h) = match node.shape {
                Shape::Split | Shape::Join if node.label.is_empty() => (36.0, 36.0),
                Shape::Decision => ((text_width(&node.label, 13.0) + 50.0).max(90.0), 56.0),
                _ => {
                    let tw = text_width(&node.label, 14.0).max(text_width(&node.sub, 11.0));
                    (
                        (tw + 28.0).max(90.0),
                        if node.sub.is_empty() { 38.0 } else { 50.0 },
                    )
                }
            };
            node.w = w;
            node.h = h;
        }
        let gap_x = 36.0;
        let gap_y = 74.0;
        let row_w: Vec<f64> = rows
            .iter()
            .map(|r| {
                r.iter().map(|&i| self.nodes[i].w).sum::<f64>()
                    + gap_x * (r.len().saturating_sub(1)) as f64
            })
            .collect();
        let width = row_w.iter().copied().fold(0.0, f64::max) + 120.0;
        let mut y = 70.0;
        for (ri, r) in rows.iter().enumerate() {
            let mut x = (width - row_w[ri]) / 2.0;
            let h = r.iter().map(|&i| self.nodes[i].h).fold(0.0, f64::max);
            for &i in r {
                let node = &mut self.nodes[i];
                node.x = x + node.w / 2.0;
                node.y = y + h / 2.0;
                x += node.w + gap_x;
            }
            y += h + gap_y;
        }
        self.width = width.max(320.0) + 80.0;
        self.height = y + 10.0;
    }

    pub fn to_svg(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="'Noto Sans CJK SC','Source Han Sans SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif" role="img" aria-label="{t}">"#,
            w = self.width,
            h = self.height,
            t = esc(&self.title)
        );
        s.push_str(r##"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>
<style>.n{fill:#fff;stroke:#3b5b92;stroke-width:1.5}.auto{fill:#eef4ff}.wait{fill:#fff8e6}.end{fill:#eaf7ea;stroke:#2e7d32}.risk{stroke:#c62828;stroke-width:2.5}.lbl{font-size:14px;fill:#1a1a1a}.sub{font-size:11px;fill:#555}.e{stroke:#555;stroke-width:1.3;fill:none}.back{stroke-dasharray:5 4;stroke:#b26a00}.el{font-size:11px;fill:#7a4b00}.grp{fill:#f5f8fc;stroke:#8aa4cc;stroke-dasharray:6 4}.badge{font-size:10px}</style>
"##);
        let _ = writeln!(
            s,
            r#"<text x="20" y="30" font-size="18" font-weight="bold">{}</text>"#,
            esc(&self.title)
        );
        for g in &self.groups {
            let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
            for &m in &g.members {
                let n = &self.nodes[m];
                x0 = x0.min(n.x - n.w / 2.0);
                y0 = y0.min(n.y - n.h / 2.0);
                x1 = x1.max(n.x + n.w / 2.0);
                y1 = y1.max(n.y + n.h / 2.0);
            }
            if x0 < x1 {
                let _ = writeln!(
                    s,
                    r#"<g class="group"><rect class="grp" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="10"/><text class="sub" x="{:.1}" y="{:.1}">{}</text></g>"#,
                    x0 - 14.0,
                    y0 - 22.0,
                    x1 - x0 + 28.0,
                    y1 - y0 + 36.0,
                    x0 - 8.0,
                    y0 - 8.0,
                    esc(&g.label)
                );
            }
        }
        for e in &self.edges {
            let a = &self.nodes[e.from];
            let b = &self.nodes[e.to];
            let cls = if e.back { "e back" } else { "e" };
            let path = if e.back {
                let x = a.x.max(b.x) + a.w.max(b.w) / 2.0 + 30.0;
                format!(
                    "M{:.1},{:.1} C{x:.1},{:.1} {x:.1},{:.1} {:.1},{:.1}",
                    a.x + a.w / 2.0,
                    a.y,
                    a.y,
                    b.y,
                    b.x + b.w / 2.0,
                    b.y
                )
            } else {
                format!(
                    "M{:.1},{:.1} L{:.1},{:.1}",
                    a.x,
                    a.y + a.h / 2.0,
                    b.x,
                    b.y - b.h / 2.0
                )
            };
            let _ = writeln!(
                s,
                r#"<path class="{cls}" d="{path}" marker-end="url(#arrow)"/>"#
            );
            if !e.label.is_empty() {
                let (lx, ly) = if e.back {
                    (a.x.max(b.x) + a.w.max(b.w) / 2.0 + 24.0, (a.y + b.y) / 2.0)
                } else {
                    (
                        (a.x + b.x) / 2.0 + 6.0,
                        (a.y + a.h / 2.0 + b.y - b.h / 2.0) / 2.0 + 4.0,
                    )
                };
                let _ = writeln!(
                    s,
                    r#"<text class="el" x="{lx:.1}" y="{ly:.1}">{}</text>"#,
                    esc(&e.label)
                );
            }
        }
        for n in &self.nodes {
            let risk = if n.risk { " risk" } else { "" };
            let _ = write!(s, r#"<g class="node" data-id="{}">"#, esc(&n.id));
            match n.shape {
                Shape::Decision | Shape::Split | Shape::Join
                    if n.label.is_empty() || n.shape == Shape::Decision =>
                {
                    let (hw, hh) = (n.w / 2.0, n.h / 2.0);
                    let _ = write!(
                        s,
                        r#"<polygon class="n{risk}" points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}"/>"#,
                        n.x,
                        n.y - hh,
                        n.x + hw,
                        n.y,
                        n.x,
                        n.y + hh,
                        n.x - hw,
                        n.y
                    );
                    if n.shape == Shape::Join {
                        let _ = write!(
                            s,
                            r#"<text class="lbl" x="{:.1}" y="{:.1}" text-anchor="middle">+</text>"#,
                            n.x,
                            n.y + 5.0
                        );
                    }
                }
                Shape::Split => {
                    let _ = write!(
                        s,
                        r#"<rect class="n{risk}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="18"/>"#,
                        n.x - n.w / 2.0,
                        n.y - n.h / 2.0,
                        n.w,
                        n.h
                    );
                }
                Shape::End => {
                    let _ = write!(
                        s,
                        r#"<rect class="n end" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="{:.1}"/>"#,
                        n.x - n.w / 2.0,
                        n.y - n.h / 2.0,
                        n.w,
                        n.h,
                        n.h / 2.0
                    );
                }
                _ => {
                    let extra = match n.shape {
                        Shape::Auto => " auto",
                        Shape::Wait => " wait",
                        _ => "",
                    };
                    let dash = if n.shape == Shape::Subflow {
                        r#" stroke-dasharray="8 3""#
                    } else {
                        ""
                    };
                    let _ = write!(
                        s,
                        r#"<rect class="n{extra}{risk}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" rx="6"{dash}/>"#,
                        n.x - n.w / 2.0,
                        n.y - n.h / 2.0,
                        n.w,
                        n.h
                    );
                }
            }
            if !n.label.is_empty() {
                let ly = if n.sub.is_empty() {
                    n.y + 5.0
                } else {
                    n.y - 2.0
                };
                let _ = write!(
                    s,
                    r#"<text class="lbl" x="{:.1}" y="{ly:.1}" text-anchor="middle">{}</text>"#,
                    n.x,
                    esc(&n.label)
                );
            }
            if !n.sub.is_empty() {
                let _ = write!(
                    s,
                    r#"<text class="sub" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    n.x,
                    n.y + 15.0,
                    esc(&n.sub)
                );
            }
            let mut bx = n.x + n.w / 2.0 + 4.0;
            for (on, text, color) in [
                (n.visit, "到现场", "#e65100"),
                (n.risk, "风险点", "#c62828"),
                (n.clock, "计时", "#2e7d32"),
            ] {
                if on {
                    let w = text_width(text, 10.0) + 8.0;
                    let _ = write!(
                        s,
                        r##"<g class="badge"><rect x="{bx:.1}" y="{:.1}" width="{w:.1}" height="15" rx="7" fill="{color}"/><text x="{:.1}" y="{:.1}" fill="#fff" font-size="10" text-anchor="middle">{text}</text></g>"##,
                        n.y - n.h / 2.0 - 2.0,
                        bx + w / 2.0,
                        n.y - n.h / 2.0 + 9.0
                    );
                    bx += w + 3.0;
                }
            }
            s.push_str("</g>\n");
        }
        s.push_str("</svg>\n");
        s
    }

    pub fn to_dot(&self) -> String {
        let mut s = String::new();
        let q = |x: &str| format!("\"{}\"", x.replace('\\', "\\\\").replace('"', "\\\""));
        let _ = writeln!(
            s,
            "digraph flow {{\n  label={};\n  labelloc=t;\n  rankdir=TB;\n  node [fontname=\"Noto Sans CJK SC\"];",
            q(&self.title)
        );
        for (gi, g) in self.groups.iter().enumerate() {
            let _ = writeln!(
                s,
                "  subgraph cluster_{gi} {{ label={}; style=dashed;",
                q(&g.label)
            );
            for &m in &g.members {
                let _ = writeln!(s, "    {};", q(&self.nodes[m].id));
            }
            s.push_str("  }\n");
        }
        for n in &self.nodes {
            let shape = match n.shape {
                Shape::Decision => "diamond",
                Shape::Join => "diamond",
                Shape::Split => "box, style=rounded",
                Shape::End => "ellipse",
                Shape::Wait => "box, style=dashed",
                Shape::Subflow => "box3d",
                Shape::Task | Shape::Auto => "box",
            };
            let mut label = n.label.clone();
            if !n.sub.is_empty() {
                label = format!("{label}\\n{}", n.sub);
            }
            let mut badges = Vec::new();
            if n.visit {
                badges.push("到现场");
            }
            if n.risk {
                badges.push("风险点");
            }
            if n.clock {
                badges.push("计时");
            }
            if !badges.is_empty() {
                label = format!("{label}\\n[{}]", badges.join(" "));
            }
            let color = if n.risk {
                ", color=red, penwidth=2"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  {} [shape={shape}, label=\"{}\"{color}];",
                q(&n.id),
                label.replace('"', "\\\"")
            );
        }
        for e in &self.edges {
            let style = if e.back {
                ", style=dashed, constraint=false"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "  {} -> {} [label={}{style}];",
                q(&self.nodes[e.from].id),
                q(&self.nodes[e.to].id),
                q(&e.label)
            );
        }
        s.push_str("}\n");
        s
    }
}

/// Labels for edges: action names, decision conditions, `else`.
fn edge_labels(flow: &Flow) -> HashMap<(GNode, GNode), String> {
    let mut out: HashMap<(GNode, GNode), String> = HashMap::new();
    for s in flow.all_steps() {
        let from = GNode::Step(s.id.clone());
        let to = |t: &Target| match t {
            Target::Step(x) => Some(GNode::Step(x.clone())),
            Target::End(x) => Some(GNode::End(x.clone())),
            Target::Join => None,
        };
        match &s.kind {
            StepKind::Task { actions, .. } => {
                for a in actions {
                    if let Some(t) = to(&a.target.target) {
                        let e = out.entry((from.clone(), t)).or_default();
                        if !e.is_empty() {
                            e.push_str(" / ");
                        }
                        e.push_str(action_label(&a.kind));
                    }
                }
            }
            StepKind::Decision { branches, default } => {
                for b in branches {
                    if let Some(t) = to(&b.target.target) {
                        out.insert((from.clone(), t), b.condition.source.clone());
                    }
                }
                if let Some(d) = default
                    && let Some(t) = to(&d.target)
                {
                    out.entry((from.clone(), t))
                        .or_insert_with(|| "否则".into());
                }
            }
            StepKind::JointReview { .. } => {
                out.insert(
                    (GNode::Join(s.id.clone()), from.clone()),
                    "整改后重新评审".into(),
                );
            }
            _ => {}
        }
    }
    out
}

fn action_label(k: &ActionKind) -> &str {
    match k {
        ActionKind::Pass => "通过",
        ActionKind::Return => "退回",
        ActionKind::Correct => "补正",
        ActionKind::Refuse => "不予受理",
        ActionKind::Deny => "不予许可",
        ActionKind::Custom(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lanes of a parallel block flow down into its join, and the join
    /// sits below every lane: only real loops (a return, a correction) are
    /// drawn as back edges.
    #[test]
    fn lanes_flow_into_their_join() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../flows/reference/parallel_approval.flow"
        ))
        .unwrap_or_default();
        let l = crate::load("parallel_approval.flow", &text, crate::Syntax::Dsl);
        let Some(flow) = l.valid_flow() else {
            panic!("{}", l.report.render(false));
        };
        let d = Diagram::build(flow);
        let at = |id: &str| {
            d.nodes
                .iter()
                .position(|n| n.id == id)
                .unwrap_or_else(|| panic!("no node {id}"))
        };
        let join = at("review#join");
        for lane in ["dev_review", "planning_review", "env_review"] {
            let e = d
                .edges
                .iter()
                .find(|e| e.from == at(lane) && e.to == join)
                .unwrap_or_else(|| panic!("no edge {lane} → join"));
            assert!(!e.back, "{lane} → join drawn as a loop");
            assert!(d.nodes[join].layer > d.nodes[at(lane)].layer);
        }
        assert!(d.nodes[at("decide")].layer > d.nodes[join].layer);
        let backs: Vec<(&str, &str)> = d
            .edges
            .iter()
            .filter(|e| e.back)
            .map(|e| (d.nodes[e.from].id.as_str(), d.nodes[e.to].id.as_str()))
            .collect();
        assert_eq!(backs, [("accept", "accept"), ("decide", "review")]);
    }
}

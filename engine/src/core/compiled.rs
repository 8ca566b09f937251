//! A flow version prepared for execution: steps indexed by id, each step's
//! enclosing block known, every rhai expression compiled once.

use govflow_dsl::ir::{Flow, Step, StepKind};
use std::collections::HashMap;
use std::sync::Arc;

/// Where a step sits: at the top level, in a lane of a parallel step, or among
/// the reviews of a joint review.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parent {
    Top,
    Lane { parallel: String, lane: String },
    Review { joint: String },
}

pub struct CompiledFlow {
    pub flow: Arc<Flow>,
    steps: HashMap<String, (Step, Parent)>,
    engine: rhai::Engine,
    asts: HashMap<String, rhai::AST>,
    acceptance: Option<String>,
    joint_handling: bool,
    revision: u32,
}

impl std::fmt::Debug for CompiledFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CompiledFlow({} v{})", self.flow.id, self.flow.version)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("flow `{flow}`, step `{step}`: expression `{source_text}` does not compile: {message}")]
pub struct CompileError {
    pub flow: String,
    pub step: String,
    pub source_text: String,
    pub message: String,
}

impl CompiledFlow {
    pub fn new(flow: Flow) -> Result<CompiledFlow, CompileError> {
        let engine = govflow_dsl::rhai_sandbox::engine();
        let mut steps = HashMap::new();
        let mut asts = HashMap::new();
        let mut joint_handling = false;
        fn index(
            list: &[Step],
            parent: &Parent,
            steps: &mut HashMap<String, (Step, Parent)>,
            joint: &mut bool,
        ) {
            for s in list {
                steps.insert(s.id.clone(), (s.clone(), parent.clone()));
                match &s.kind {
                    StepKind::Parallel { lanes, .. } => {
                        *joint = true;
                        for l in lanes {
                            let p = Parent::Lane {
                                parallel: s.id.clone(),
                                lane: l.id.clone(),
                            };
                            index(&l.steps, &p, steps, joint);
                        }
                    }
                    StepKind::JointReview { reviews, .. } => {
                        *joint = true;
                        let p = Parent::Review {
                            joint: s.id.clone(),
                        };
                        index(reviews, &p, steps, joint);
                    }
                    StepKind::Subflow { .. } => *joint = true,
                    _ => {}
                }
            }
        }
        index(&flow.steps, &Parent::Top, &mut steps, &mut joint_handling);
        for (id, (step, _)) in &steps {
            let exprs: Vec<(String, &str)> = match &step.kind {
                StepKind::Decision { branches, .. } => branches
                    .iter()
                    .enumerate()
                    .map(|(i, b)| (format!("{id}#{i}"), b.condition.source.as_str()))
                    .collect(),
                StepKind::Auto { set } => set
                    .iter()
                    .enumerate()
                    .map(|(i, a)| (format!("{id}#{i}"), a.expr.source.as_str()))
                    .collect(),
                _ => Vec::new(),
            };
            for (key, src) in exprs {
                let ast = engine.compile_expression(src).map_err(|e| CompileError {
                    flow: flow.id.clone(),
                    step: id.clone(),
                    source_text: src.to_string(),
                    message: e.to_string(),
                })?;
                asts.insert(key, ast);
            }
        }
        // The step whose `pass` is acceptance (受理): the one marked
        // `starts_clock`, else the flow's first step when it is a task.
        let acceptance = flow
            .all_steps()
            .into_iter()
            .find(|s| s.starts_clock)
            .or_else(|| {
                flow.steps
                    .first()
                    .filter(|s| matches!(s.kind, StepKind::Task { .. }))
            })
            .map(|s| s.id.clone());
        let revision = flow.version;
        Ok(CompiledFlow {
            revision,
            flow: Arc::new(flow),
            steps,
            engine,
            asts,
            acceptance,
            joint_handling,
        })
    }

    /// The deployment revision cases of this flow record (the file's
    /// declared version unless a deployment numbered it).
    pub fn revision(&self) -> u32 {
        self.revision
    }

    pub fn with_revision(mut self, revision: u32) -> CompiledFlow {
        self.revision = revision;
        self
    }

    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.get(id).map(|(s, _)| s)
    }

    pub fn parent(&self, id: &str) -> Option<&Parent> {
        self.steps.get(id).map(|(_, p)| p)
    }

    /// Whether `step` lies inside the block of `ancestor` (lanes or reviews, at any depth).
    pub fn is_within(&self, step: &str, ancestor: &str) -> bool {
        let mut cur = step;
        loop {
            match self.parent(cur) {
                Some(Parent::Lane { parallel, .. }) => {
                    if parallel == ancestor {
                        return true;
                    }
                    cur = parallel;
                }
                Some(Parent::Review { joint }) => {
                    if joint == ancestor {
                        return true;
                    }
                    cur = joint;
                }
                _ => return false,
            }
        }
    }

    /// The step whose `pass` accepts the case (starts the clocks): the step
    /// marked `starts_clock`, else the first step when it is a task. Without
    /// one a case is accepted when it is registered.
    pub fn acceptance_step(&self) -> Option<&str> {
        self.acceptance.as_deref()
    }

    /// Joint or centralised handling (parallel, joint review or subflow steps):
    /// art. 42 allows 45 + 15 working days instead of 20 + 10.
    pub fn is_joint_handling(&self) -> bool {
        self.joint_handling
    }

    pub(crate) fn eval(
        &self,
        key: &str,
        scope: &mut rhai::Scope<'static>,
    ) -> Result<rhai::Dynamic, String> {
        let ast = self
            .asts
            .get(key)
            .ok_or_else(|| format!("no compiled expression `{key}`"))?;
        govflow_dsl::rhai_sandbox::eval(&self.engine, scope, ast)
            .map_err(|e| govflow_dsl::rhai_sandbox::explain(&e))
    }
}

/// serde_json → rhai.
pub fn to_dynamic(v: &serde_json::Value) -> rhai::Dynamic {
    use serde_json::Value;
    match v {
        Value::Null => rhai::Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => a.iter().map(to_dynamic).collect::<rhai::Array>().into(),
        Value::Object(o) => {
            let mut m = rhai::Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), to_dynamic(v));
            }
            m.into()
        }
    }
}

/// rhai → serde_json (values a script can produce; others become strings).
pub fn from_dynamic(d: &rhai::Dynamic) -> serde_json::Value {
    use serde_json::Value;
    if d.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = d.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = d.as_int() {
        return Value::from(i);
    }
    if let Ok(f) = d.as_float() {
        return serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if d.is_string() {
        return Value::String(d.to_string());
    }
    if let Some(a) = d.read_lock::<rhai::Array>() {
        return Value::Array(a.iter().map(from_dynamic).collect());
    }
    if let Some(m) = d.read_lock::<rhai::Map>() {
        return Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_string(), from_dynamic(v)))
                .collect(),
        );
    }
    Value::String(d.to_string())
}

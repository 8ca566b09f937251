//! Deploying — flows, rule files, packs, calendar years — through one code
//! path, and keeping every node in step with what is deployed.
//!
//! The store's `deployments` table is the one registry. A deployment is
//! checked here, recorded in the store, and then put in force by
//! [`Engine::sync_deployments`], which every node also runs before each
//! command and timer claim: it compares one marker (the newest deployment
//! row, the newest pack manifest) and loads only the rows it has not seen.
//! So a flow or rule file deployed on node A is in force on node B for B's
//! next command or timer, and the server adds no second list of its own.

use super::Engine;
use crate::core::CompiledFlow;
use crate::store::{Deployment, StoreError};
use crate::supervision::{RULES_DEPLOYMENT, RuleBook};
use govflow_dsl::pack::Manifest;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why nothing was deployed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The text has errors (every diagnostic in `diagnostics`), or does not
    /// compile, or the rule book with it does not build.
    #[error("{message}")]
    Invalid {
        /// `flow.invalid`, `rules.invalid`, `pack.invalid`.
        code: &'static str,
        message: String,
        diagnostics: serde_json::Value,
    },
    #[error("the text is flow `{found}`, not `{expected}`")]
    IdMismatch { found: String, expected: String },
    #[error("`{0}` is not a rule file name (*.rules, *.rules.yaml)")]
    NotRuleFile(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeployError {
    fn invalid(code: &'static str, what: &str, report: &govflow_dsl::Report) -> DeployError {
        let errors = report.diagnostics.iter().filter(|d| d.is_error()).count();
        DeployError::Invalid {
            code,
            message: format!("{what} has {errors} error(s); nothing was deployed"),
            diagnostics: serde_json::to_value(report.to_json()).unwrap_or_default(),
        }
    }

    fn plain(code: &'static str, message: impl Into<String>) -> DeployError {
        DeployError::Invalid {
            code,
            message: message.into(),
            diagnostics: serde_json::Value::Array(Vec::new()),
        }
    }
}

/// A flow deployed: its row, whether the text was new, the warnings.
#[derive(Debug)]
pub struct FlowDeployed {
    pub deployment: Deployment,
    pub new: bool,
    pub warnings: serde_json::Value,
}

/// A pack deployed as a unit.
#[derive(Debug)]
pub struct PackDeployed {
    pub manifest: Manifest,
    pub flows: Vec<(Deployment, bool)>,
    pub warnings: serde_json::Value,
}

/// What one `sync_deployments` put in force.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// Flow versions loaded.
    pub flows: usize,
    pub rules: bool,
    pub calendar: bool,
    pub packs: bool,
}

/// This node's view of the registry.
#[derive(Default)]
pub(crate) struct DeployCell {
    /// The marker last loaded: (newest deployment row, the packs' stamp:
    /// their count, their manifests' total length, the newest instant).
    seen: std::sync::Mutex<(i64, String)>,
    /// One sync at a time per node.
    running: tokio::sync::Mutex<()>,
    packs: std::sync::RwLock<BTreeMap<String, Manifest>>,
    /// Stored deployments this node could not load, with why.
    problems: std::sync::RwLock<Vec<String>>,
}

impl DeployCell {
    fn seen(&self) -> (i64, String) {
        match self.seen.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

fn read<T: Clone>(l: &std::sync::RwLock<T>) -> T {
    match l.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

fn write<T>(l: &std::sync::RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(p) => *p.into_inner() = v,
    }
}

/// Whether a file name is a rule file's.
fn rule_syntax(file: &str) -> govflow_dsl::Syntax {
    if file.ends_with(".rules") {
        govflow_dsl::Syntax::Dsl
    } else {
        govflow_dsl::Syntax::Yaml
    }
}

/// Compiles one stored flow deployment.
fn compile_stored(d: &Deployment, source: &str) -> Result<CompiledFlow, String> {
    let syntax = govflow_dsl::Syntax::from_path(&d.file).unwrap_or(govflow_dsl::Syntax::Dsl);
    let loaded = govflow_dsl::load(&d.file, source, syntax);
    match loaded.valid_flow().cloned().map(CompiledFlow::new) {
        Some(Ok(f)) => Ok(f.with_revision(d.version as u32)),
        Some(Err(e)) => Err(format!("{} v{}: {e}", d.flow_id, d.version)),
        None => Err(format!(
            "{} v{}: stored source no longer loads",
            d.flow_id, d.version
        )),
    }
}

/// Loads stored flow deployments into `reg`; the problems of those that
/// would not load. Deployments of other kinds are named with a path
/// (`rules/FILE`, `calendar/REGION/YEAR`); a flow id has no `/`.
pub(crate) fn load_flows<'a>(
    reg: &crate::app::registry::Registry,
    rows: impl IntoIterator<Item = (&'a Deployment, &'a str)>,
) -> (usize, Vec<String>) {
    let (mut loaded, mut problems) = (0, Vec::new());
    for (d, source) in rows {
        if d.flow_id.contains('/') {
            continue;
        }
        match compile_stored(d, source) {
            Ok(f) => {
                reg.insert_deployed(f, &d.file, source);
                loaded += 1;
            }
            Err(p) => problems.push(p),
        }
    }
    (loaded, problems)
}

impl Engine {
    /// Brings this node in step with the store's deployments: one marker
    /// lookup, and when something was deployed (here or on another node),
    /// loads the new flow versions, rebuilds the rule book if a rule file
    /// changed, puts a new calendar in force (its provisional deadlines are
    /// then recomputed in the background) and rereads the pack manifests.
    /// A failure is logged and leaves this node as it was; the next call
    /// tries again.
    pub async fn sync_deployments(&self) -> Synced {
        match self.try_sync().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("deployments: cannot read what is deployed: {e}");
                Synced::default()
            }
        }
    }

    async fn try_sync(&self) -> Result<Synced, StoreError> {
        let marker = self.store.deployment_marker().await?;
        if marker == self.deployed.seen() {
            return Ok(Synced::default());
        }
        let _one = self.deployed.running.lock().await;
        let seen = self.deployed.seen();
        if marker == seen {
            return Ok(Synced::default());
        }
        let rows = self.store.deployments_after(seen.0).await?;
        let (flows, problems) =
            load_flows(&self.flows, rows.iter().map(|(_, d, s)| (d, s.as_str())));
        for p in &problems {
            eprintln!("warning: deployment not loaded: {p}");
        }
        if !problems.is_empty() {
            let mut all = read(&self.deployed.problems);
            all.extend(problems);
            write(&self.deployed.problems, all);
        }
        let mut synced = Synced {
            flows,
            ..Synced::default()
        };
        if rows
            .iter()
            .any(|(_, d, _)| d.flow_id.starts_with(RULES_DEPLOYMENT))
        {
            let texts: Vec<(String, String)> = self
                .latest_rule_files()
                .await?
                .into_iter()
                .map(|(name, _, text)| (name, text))
                .collect();
            match RuleBook::from_texts(&texts) {
                Ok(book) => {
                    self.set_rules((!book.is_empty()).then(|| Arc::new(book)));
                    synced.rules = true;
                }
                Err(e) => eprintln!("rules: the deployed rule files do not build: {e}"),
            }
        }
        if rows
            .iter()
            .any(|(_, d, _)| crate::calendar::deployments::parse_id(&d.flow_id).is_some())
        {
            self.load_calendar(false).await?;
            // The sweep runs on the timer service's task (`spawn_timers`).
            self.calendars.changed.notify_one();
            synced.calendar = true;
        }
        if marker.1 != seen.1 || !rows.is_empty() {
            let mut packs = BTreeMap::new();
            for (id, json) in self.store.pack_manifests().await? {
                match serde_json::from_str::<Manifest>(&json) {
                    Ok(m) => {
                        packs.insert(id, m);
                    }
                    Err(e) => eprintln!("warning: pack `{id}`: stored manifest unreadable: {e}"),
                }
            }
            write(&self.deployed.packs, packs);
            synced.packs = true;
        }
        // Rows deployed after the marker was read are picked up next time.
        let newest = rows
            .last()
            .map_or(marker.0, |(id, _, _)| (*id).max(marker.0));
        match self.deployed.seen.lock() {
            Ok(mut g) => *g = (newest, marker.1),
            Err(p) => *p.into_inner() = (newest, marker.1),
        }
        Ok(synced)
    }

    /// The packs deployed (their manifests, by id).
    pub fn packs(&self) -> BTreeMap<String, Manifest> {
        read(&self.deployed.packs)
    }

    /// Stored deployments this node could not load.
    pub fn deployment_problems(&self) -> Vec<String> {
        read(&self.deployed.problems)
    }

    /// The latest version of every deployed rule file: (file name, deployment, text).
    pub async fn latest_rule_files(&self) -> Result<Vec<(String, Deployment, String)>, StoreError> {
        let mut latest: BTreeMap<String, (Deployment, String)> = BTreeMap::new();
        for (d, source) in self.store.deployment_sources().await? {
            if let Some(name) = d.flow_id.strip_prefix(RULES_DEPLOYMENT) {
                // Oldest first: later versions replace earlier ones.
                latest.insert(name.to_string(), (d, source));
            }
        }
        Ok(latest.into_iter().map(|(n, (d, s))| (n, d, s)).collect())
    }

    /// Deploys a flow text. It must be valid (and, with `expected`, be that
    /// flow); the same text deploys once; a new text is the flow's next
    /// version, in force on every node for its next new case.
    pub async fn deploy_flow(
        &self,
        source: &str,
        file: &str,
        expected: Option<&str>,
        by: &str,
    ) -> Result<FlowDeployed, DeployError> {
        let syntax = govflow_dsl::Syntax::from_path(file).unwrap_or(govflow_dsl::Syntax::Dsl);
        let loaded = govflow_dsl::load(file, source, syntax);
        let Some(flow) = loaded.valid_flow().cloned() else {
            return Err(DeployError::invalid(
                "flow.invalid",
                "the flow",
                &loaded.report,
            ));
        };
        if let Some(expected) = expected
            && flow.id != expected
        {
            return Err(DeployError::IdMismatch {
                found: flow.id,
                expected: expected.to_string(),
            });
        }
        CompiledFlow::new(flow.clone())
            .map_err(|e| DeployError::plain("flow.invalid", e.to_string()))?;
        let (deployment, new) = self
            .store
            .deploy(&flow.id, source, file, by, self.now())
            .await?;
        self.sync_deployments().await;
        Ok(FlowDeployed {
            deployment,
            new,
            warnings: serde_json::to_value(loaded.report.to_json()).unwrap_or_default(),
        })
    }

    /// Deploys rule files (a new file too): each must be valid, and the rule
    /// book of every file in force with these must build (rule ids unique
    /// across files). `files`: (file name, text, where it came from).
    pub async fn deploy_rule_files(
        &self,
        files: &[(String, String, String)],
        by: &str,
    ) -> Result<Vec<(Deployment, bool)>, DeployError> {
        for (name, text, _) in files {
            if !govflow_dsl::rule::is_rule_file(name) {
                return Err(DeployError::NotRuleFile(name.clone()));
            }
            let loaded = govflow_dsl::rule::load_rules(name, text, rule_syntax(name));
            if loaded.has_errors() {
                return Err(DeployError::invalid(
                    "rules.invalid",
                    "the rule file",
                    &loaded.report,
                ));
            }
        }
        let mut texts: Vec<(String, String)> = self
            .latest_rule_files()
            .await?
            .into_iter()
            .filter(|(n, _, _)| !files.iter().any(|(f, _, _)| f == n))
            .map(|(n, _, s)| (n, s))
            .collect();
        texts.extend(files.iter().map(|(n, t, _)| (n.clone(), t.clone())));
        RuleBook::from_texts(&texts).map_err(|e| DeployError::plain("rules.invalid", e))?;
        let mut out = Vec::new();
        let now = self.now();
        for (name, text, from) in files {
            let id = format!("{RULES_DEPLOYMENT}{name}");
            out.push(self.store.deploy(&id, text, from, by, now).await?);
        }
        self.sync_deployments().await;
        Ok(out)
    }

    /// Deploys a process pack as a unit: every file valid and compiled, then
    /// the manifest and all its flows in one transaction, or nothing.
    pub async fn deploy_pack(
        &self,
        manifest_text: &str,
        files: &BTreeMap<String, String>,
        by: &str,
    ) -> Result<PackDeployed, DeployError> {
        let loaded = govflow_dsl::pack::load_pack_texts("pack.yaml", manifest_text, files);
        let diagnostics: Vec<_> = loaded.reports().iter().flat_map(|r| r.to_json()).collect();
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == govflow_dsl::Severity::Error)
            .count();
        let warnings = serde_json::to_value(&diagnostics).unwrap_or_default();
        let manifest = match (&loaded.manifest, errors) {
            (Some(m), 0) => m.clone(),
            _ => {
                return Err(DeployError::Invalid {
                    code: "pack.invalid",
                    message: format!("the pack has {errors} error(s); nothing was deployed"),
                    diagnostics: warnings,
                });
            }
        };
        // Compile everything before writing anything.
        let mut items = Vec::new();
        for (file, text, l) in &loaded.flows {
            let Some(flow) = l.valid_flow().cloned() else {
                continue;
            };
            let id = flow.id.clone();
            CompiledFlow::new(flow)
                .map_err(|e| DeployError::plain("pack.invalid", e.to_string()))?;
            items.push((id, text.clone(), format!("pack:{}/{file}", manifest.id)));
        }
        let json = serde_json::to_string(&manifest)
            .map_err(|e| DeployError::plain("pack.invalid", e.to_string()))?;
        let flows = self
            .store
            .deploy_many(&manifest.id, &json, &items, by, self.now())
            .await?;
        self.sync_deployments().await;
        Ok(PackDeployed {
            manifest,
            flows,
            warnings,
        })
    }

    /// Deploys one year of a calendar for `region` (a rollback is a new
    /// version); in force on every node for its next command.
    pub async fn deploy_calendar_year(
        &self,
        region: &str,
        year: &crate::calendar::year::YearArrangement,
        file: &str,
        by: &str,
    ) -> Result<(Deployment, bool), StoreError> {
        let out = crate::calendar::deployments::deploy_year(
            &self.store,
            region,
            year,
            file,
            by,
            self.now(),
        )
        .await?;
        self.sync_deployments().await;
        Ok(out)
    }
}

/// Compiles every stored flow deployment into a registry (cases keep their
/// version even after the file changed); the problems of those that would
/// not load. The engine keeps its registry current with
/// `Engine::sync_deployments`; this is for tools and tests that start one.
pub async fn load_registry(
    store: &crate::store::Store,
) -> Result<(crate::app::registry::Registry, Vec<String>), StoreError> {
    let reg = crate::app::registry::Registry::new();
    let rows = store.deployment_sources().await?;
    let (_, problems) = load_flows(&reg, rows.iter().map(|(d, s)| (d, s.as_str())));
    Ok((reg, problems))
}

//! govflow-studio: the HTTP server behind `govflow serve`.
//!
//! This slice serves the deployed flows (list, source, IR, diagram) and a
//! validation endpoint, with bearer-token authentication, an audit log of
//! deployments, and a small read-only page at `/`. Cases, tasks and the full
//! studio are built on top of this by the engine and studio issues.
//!
//! API boundary: this crate is the only one that knows HTTP; it converts
//! library types into its own JSON shapes (`dto`).

// The bottom: no route module is imported by these.
mod error;
mod extract;
mod state;
mod throttle;
mod users;
// Principals, authentication and the per-route role check; users and login.
mod auth;
mod authz;
// The route modules.
mod calendar;
mod cases;
mod dto;
mod flows;
mod packs;
mod stats;
mod studio;
mod supervision;
// The top: the route table, and what is built from it.
mod offsets;
mod openapi;
mod privacy;
mod routes;
#[cfg(test)]
mod testkit;

pub use govflow_engine::store::{Deployment, Store, StoreError};
pub use routes::app;
pub use state::AppState;

use std::net::SocketAddr;
use std::path::PathBuf;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone, Debug)]
pub struct Config {
    pub db_url: String,
    pub flows_dir: PathBuf,
    pub rules_dir: PathBuf,
    pub addr: SocketAddr,
    /// Bearer token of the bootstrap administrator.
    pub admin_token: String,
    /// Region calendar files merged over the shipped calendar.
    pub calendars: Vec<PathBuf>,
    /// The 6-digit division code at the head of case numbers.
    pub region: String,
    /// How often the timer service looks for due timers.
    pub timer_poll: std::time::Duration,
    /// PostgreSQL only: the schema holding govflow's tables.
    pub db_schema: Option<String>,
    /// Seconds the wall clock is shifted by (drills; `GOVFLOW_CLOCK_OFFSET`).
    pub clock_offset: i64,
    /// The hash the event and audit logs are chained with (`--chain-hash`).
    pub chain_hash: govflow_engine::store::chain::ChainHash,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot open the database `{url}`: {source}")]
    Database {
        url: String,
        #[source]
        source: StoreError,
    },
    #[error(
        "{count} flow file(s) under {dir} have errors; fix them (`govflow check {dir}`) before serving"
    )]
    InvalidFlows { dir: String, count: usize },
    #[error("cannot read the flows folder {dir}: {source}")]
    FlowsDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the rule files under {dir} have errors; fix them (`govflow check {dir}`) before serving"
    )]
    InvalidRules { dir: String },
    #[error("calendar: {0}")]
    Calendar(String),
    #[error("cannot deploy {what}: {message}")]
    Deploy { what: String, message: String },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// A flow file that loaded without errors.
#[derive(Clone, Debug)]
pub struct LoadedFlow {
    pub path: String,
    pub source: String,
    pub flow: govflow_dsl::Flow,
}

/// Loads every flow file under `dir`; returns the valid ones and the reports
/// of the files with errors.
pub fn load_flows(
    dir: &std::path::Path,
) -> Result<(Vec<LoadedFlow>, Vec<govflow_dsl::Report>), std::io::Error> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let p = e?.path();
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if p.is_dir() {
                if !name.starts_with('.') && name != "snapshots" {
                    stack.push(p);
                }
            } else if name.ends_with(".flow") || name.ends_with(".flow.yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for f in files {
        let loaded = govflow_dsl::load_path(&f);
        if let (false, Some(flow)) = (loaded.has_errors(), loaded.flow.clone()) {
            ok.push(LoadedFlow {
                path: f.display().to_string(),
                source: loaded.report.file.text.to_string(),
                flow,
            });
        } else {
            bad.push(loaded.report);
        }
    }
    Ok((ok, bad))
}

/// Runs the server until Ctrl-C.
pub async fn serve(cfg: Config) -> Result<(), ServeError> {
    let (flows, bad) = load_flows(&cfg.flows_dir).map_err(|source| ServeError::FlowsDir {
        dir: cfg.flows_dir.display().to_string(),
        source,
    })?;
    if !bad.is_empty() {
        for r in &bad {
            eprint!("{}", r.render(false));
        }
        return Err(ServeError::InvalidFlows {
            dir: cfg.flows_dir.display().to_string(),
            count: bad.len(),
        });
    }
    let mut packs = Vec::new();
    for dir in govflow_dsl::pack::pack_dirs(&cfg.flows_dir) {
        match govflow_dsl::pack::load_pack_dir(&dir) {
            Ok(p) if !p.report.has_errors() => packs.extend(p.manifest),
            Ok(p) => {
                eprint!("{}", p.report.render(false));
                return Err(ServeError::InvalidFlows {
                    dir: dir.display().to_string(),
                    count: 1,
                });
            }
            Err(e) => {
                return Err(ServeError::FlowsDir {
                    dir: dir.display().to_string(),
                    source: e,
                });
            }
        }
    }
    // Region files (`--calendar FILE`, the `covers`/`off`/`work` format) become
    // calendar deployments of this node's division, one per year they touch.
    let mut overlays = Vec::new();
    for f in &cfg.calendars {
        let text = std::fs::read_to_string(f)
            .map_err(|e| ServeError::Calendar(format!("{}: {e}", f.display())))?;
        let mut data = govflow_engine::calendar::CalendarData::default();
        data.merge_text(&text)
            .map_err(|e| ServeError::Calendar(format!("{}: {e}", f.display())))?;
        for y in data.years() {
            overlays.push((f.display().to_string(), y));
        }
    }
    // Supervision rules under --rules (a folder without rule files means none).
    let invalid_rules = || ServeError::InvalidRules {
        dir: cfg.rules_dir.display().to_string(),
    };
    let mut rule_files = Vec::new();
    if cfg.rules_dir.is_dir() {
        govflow_engine::supervision::RuleBook::load_dir(&cfg.rules_dir).map_err(|report| {
            eprint!("{report}");
            invalid_rules()
        })?;
        let files = govflow_engine::supervision::rule_files(&cfg.rules_dir).map_err(|e| {
            eprintln!("{e}");
            invalid_rules()
        })?;
        for (rel, text) in files {
            let path = cfg.rules_dir.join(&rel).display().to_string();
            rule_files.push((rel, text, path));
        }
    }
    let db_err = |source| ServeError::Database {
        url: cfg.db_url.clone(),
        source,
    };
    let opts = govflow_engine::store::Options {
        region: cfg.region.clone(),
        pg_schema: cfg.db_schema.clone(),
        ..Default::default()
    };
    let store = Store::open(&cfg.db_url, &opts).await.map_err(db_err)?;
    let engine = govflow_engine::service::Engine::new(
        store,
        std::sync::Arc::new(govflow_engine::app::registry::Registry::new()),
        std::sync::Arc::new(govflow_engine::calendar::Calendar::china()),
        None,
    )
    .with_clock(std::sync::Arc::new(
        govflow_engine::app::clock::SystemClock::shifted(cfg.clock_offset),
    ));
    let now = engine.now();
    // The shipped files are deployed like any other (a new text is a new
    // version; the same text deploys once, so nodes starting together agree).
    // The latest version of each is in force: a version deployed from the
    // studio stays in force after a restart until the file's text changes.
    let deploy_err = |what: &str, e: govflow_engine::service::DeployError| ServeError::Deploy {
        what: what.to_string(),
        message: e.to_string(),
    };
    let mut new_versions = 0;
    for f in &flows {
        let out = engine
            .deploy_flow(&f.source, &f.path, None, "system")
            .await
            .map_err(|e| deploy_err(&f.path, e))?;
        new_versions += usize::from(out.new);
    }
    if !rule_files.is_empty() {
        engine
            .deploy_rule_files(&rule_files, "system")
            .await
            .map_err(|e| deploy_err(&cfg.rules_dir.display().to_string(), e))?;
    }
    for m in &packs {
        let json = serde_json::to_string(m).map_err(|e| ServeError::Deploy {
            what: m.id.clone(),
            message: e.to_string(),
        })?;
        engine
            .store
            .deploy_many(&m.id, &json, &[], "system", now)
            .await
            .map_err(db_err)?;
    }
    for (file, y) in &overlays {
        let id = govflow_engine::calendar::deployments::deployment_id(&cfg.region, y.year);
        engine
            .store
            .deploy(&id, &y.to_text(), file, "system", now)
            .await
            .map_err(db_err)?;
    }
    // The calendar in force: the deployed years (the shipped ones recorded
    // where a year has none yet), then the provisional rule.
    engine.load_calendar(true).await.map_err(db_err)?;
    engine.sync_deployments().await;
    let rule_count = engine.rules().map_or(0, |r| r.len());
    let in_force = engine.calendar_in_force();
    let covered = in_force.calendar.covered_until();
    let left = (covered - now.date()).num_days();
    if left < 0 {
        eprintln!(
            "warning: 工作日历的官方安排已于 {covered} 到期（{} 天前），现行期限按法定节假日临时计算并标注“临时”。请导入放假安排：govflow calendar import FILE --db URL --deploy\nwarning: the official working-day calendar ended on {covered} ({} days ago); deadlines are provisional. Load the arrangement: govflow calendar import FILE --db URL --deploy",
            -left, -left
        );
    } else if left < calendar::COVERAGE_WARNING_DAYS {
        eprintln!(
            "warning: 工作日历只覆盖到 {covered}（还有 {left} 天）；之后的期限按法定节假日临时计算并标注“临时”。请导入下一年国务院放假安排：govflow calendar import FILE --db URL --deploy\nwarning: the working-day calendar covers official arrangements up to {covered} ({left} days left); deadlines after that are provisional. Load next year's arrangement: govflow calendar import FILE --db URL --deploy"
        );
    }
    let timers = engine.spawn_timers(cfg.timer_poll);
    let sealer = engine.spawn_sealer(std::time::Duration::from_secs(1));
    // Hand-offs between cases that a crash may have cut short, then a
    // recomputation of provisional deadlines that a crash may have cut short
    // (each case once per calendar version).
    let recovering = engine.clone();
    tokio::spawn(async move {
        let n = recovering.recover().await;
        if n > 0 {
            eprintln!("recovered {n} hand-off(s) between cases");
        }
        recovering.recompute_provisional().await;
    });
    let state = AppState::new(engine, cfg.admin_token.clone());
    state.set_places(
        cfg.rules_dir.is_dir().then(|| cfg.rules_dir.clone()),
        cfg.calendars
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
    );
    // Efficiency indicators (效能考核) beside the rules.
    let scheme_path = cfg.rules_dir.join("efficiency.yaml");
    if scheme_path.is_file() {
        let text = std::fs::read_to_string(&scheme_path)?;
        match govflow_engine::supervision::efficiency::Scheme::parse(
            &scheme_path.display().to_string(),
            &text,
        ) {
            Ok(s) => state.set_efficiency(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Err(ServeError::InvalidRules {
                    dir: cfg.rules_dir.display().to_string(),
                });
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(cfg.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.addr,
            source,
        })?;
    let addr = listener.local_addr()?;
    eprintln!(
        "govflow serving {} flow(s) ({} new version(s); {} supervision rule(s) from {}) on http://{addr}/ with {}",
        state.flow_count(),
        new_versions,
        rule_count,
        cfg.rules_dir.display(),
        cfg.db_url
    );
    let store = state.engine().store.clone();
    // The client's address reaches the handlers (the login throttle keys on it).
    let served = axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    timers.abort();
    sealer.abort();
    // What the last moments wrote goes into the chains now, not at the next start.
    while let Ok(n) = store.seal_chains().await {
        if n == 0 {
            break;
        }
    }
    store.close().await;
    served?;
    Ok(())
}

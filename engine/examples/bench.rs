//! Engine benchmarks (docs/benchmarks.md). Workload: the reference
//! parallel-approval flow, each case driven to completion with seven
//! commands (start, accept, three reviews, decide, issue).
//!
//!   cargo run --release -p govflow-engine --example bench -- core [CASES]
//!   cargo run --release -p govflow-engine --example bench -- calendar [OPS]
//!   cargo run --release -p govflow-engine --example bench -- durable [CASES] [DIR]
//!   cargo run --release -p govflow-engine --example bench -- concurrent URL [CASES] [CLIENTS]
//!   cargo run --release -p govflow-engine --example bench -- fill URL [CASES] [CLIENTS]

use chrono::{NaiveDate, NaiveDateTime};
use govflow_engine::app::load_registry;
use govflow_engine::app::registry::Registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::ids::IdKind;
use govflow_engine::core::{
    Actor, CaseState, Command, CompiledFlow, MaterialIn, Person, Status, apply,
};
use govflow_engine::store::{Options, Request, Store};
use std::sync::Arc;
use std::time::Instant;

const FLOW: &str = include_str!("../../flows/reference/parallel_approval.flow");

fn at() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2025, 9, 26)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .unwrap_or_default()
}

fn start(case_no: &str) -> Command {
    Command::Start {
        case_no: case_no.to_string(),
        applicant: Person {
            name: "杭州示例科技有限公司".into(),
            id_kind: IdKind::CreditCode,
            id_number: "91110000600037341L".into(),
            legacy: false,
            phone: None,
            address: None,
            postcode: None,
            legal_representative: None,
        },
        agent: None,
        source: None,
        project_code: None,
        data: Default::default(),
        materials: ["application", "project_doc", "land_doc"]
            .iter()
            .map(|id| MaterialIn {
                id: id.to_string(),
                how: "upload".into(),
                count: 1,
            })
            .collect(),
    }
}

fn steps() -> Vec<Command> {
    [
        ("accept", "window", Some("clerk")),
        ("dev_review", "dev", None),
        ("planning_review", "planning", None),
        ("env_review", "env", None),
        ("decide", "dev", None),
        ("issue", "window", Some("clerk")),
    ]
    .iter()
    .map(|(step, dept, role)| Command::Complete {
        step: step.to_string(),
        action: "pass".into(),
        by: Actor {
            name: "办事员".into(),
            department: Some(dept.to_string()),
            role: role.map(str::to_string),
        },
        opinion: None,
        data: Default::default(),
        missing: vec![],
        defer: vec![],
        defer_within: None,
        document_no: None,
        fixes: Default::default(),
        on_site: None,
    })
    .collect()
}

fn compiled() -> CompiledFlow {
    let loaded = govflow_dsl::load("parallel_approval.flow", FLOW, govflow_dsl::Syntax::Dsl);
    let Some(flow) = loaded.valid_flow().cloned() else {
        eprintln!("{}", loaded.report.render(false));
        std::process::exit(1);
    };
    match CompiledFlow::new(flow) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn bench_core(cases: usize) {
    let flow = compiled();
    let cal = Calendar::china();
    let steps = steps();
    let t = at();
    let t0 = Instant::now();
    let mut events = 0usize;
    for i in 0..cases {
        let mut state = CaseState::default();
        let mut cmds = vec![start(&format!("C{i}"))];
        cmds.extend(steps.iter().cloned());
        for c in &cmds {
            let evs = match apply(&flow, &cal, Some(&state).filter(|s| s.version > 0), c, t) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("refused: {e}");
                    std::process::exit(1)
                }
            };
            events += evs.len();
            for e in &evs {
                state.apply(e);
            }
        }
        assert_eq!(state.status, Status::Completed);
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "core: {cases} cases ({} commands, {events} events) in {s:.2} s = {:.0} cases/s, {:.0} commands/s",
        cases * 7,
        cases as f64 / s,
        cases as f64 * 7.0 / s
    );
}

/// The supervision evaluator on one condition over many cases (issue 4's
/// workload: `now − accepted_at > promised_days × 0.8`).
fn bench_rules(evals: usize) {
    let rules = govflow_dsl::rule::load_rules(
        "bench.rules",
        "rule promised_80 \"承诺时限已用八成\" {\n  class timeliness  subtype approaching  scope case\n  severity notice\n  when elapsed * 10 > promised_days * 8\n}\n",
        govflow_dsl::Syntax::Dsl,
    );
    let Some(set) = rules.rules else {
        eprintln!("{}", rules.report.render(false));
        std::process::exit(1);
    };
    let book = match govflow_engine::supervision::RuleBook::new(&[set]) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let flow = compiled();
    let cal = Calendar::china();
    // 1,000 accepted cases, accepted on different days.
    let mut cases = Vec::new();
    for i in 0..1000u32 {
        let t = at() - chrono::Duration::days(i64::from(i % 30));
        let mut state = CaseState::default();
        for c in [start(&format!("C{i}")), steps()[0].clone()] {
            match apply(&flow, &cal, Some(&state).filter(|s| s.version > 0), &c, t) {
                Ok(evs) => evs.iter().for_each(|e| state.apply(e)),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1)
                }
            }
        }
        cases.push(state);
    }
    let now = at();
    let t0 = Instant::now();
    let mut hits = 0usize;
    for i in 0..evals {
        let v = book.evaluate(&cases[i % cases.len()], Some(&flow), &cal, now);
        hits += v.iter().filter(|v| v.level.is_some()).count();
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "rules: {evals} evaluations in {s:.2} s = {:.0} evaluations/s on one core ({hits} cards)",
        evals as f64 / s
    );
}

fn bench_calendar(ops: usize) {
    let cal = Calendar::china();
    let base = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let days: Vec<NaiveDate> = (0..1000).map(|i| base + chrono::Days::new(i)).collect();
    let t0 = Instant::now();
    let mut acc = 0i64;
    for i in 0..ops / 2 {
        let d = days[i % 1000];
        let n = (i % 45) as u32;
        match cal.add_workdays(d, n) {
            Ok(due) => {
                acc += cal.diff(d, due).unwrap_or(0);
            }
            Err(_) => acc -= 1,
        }
    }
    let s = t0.elapsed().as_secs_f64();
    println!(
        "calendar: {ops} operations (add + diff) in {s:.3} s = {:.1} million ops/s (checksum {acc})",
        ops as f64 / s / 1e6
    );
}

async fn open(url: &str) -> (Store, Arc<Registry>) {
    let store = match Store::open(url, &Options::default()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot open {url}: {e}");
            std::process::exit(1)
        }
    };
    if let Err(e) = store
        .deploy(
            "parallel_approval",
            FLOW,
            "parallel_approval.flow",
            "bench",
            at(),
        )
        .await
    {
        eprintln!("{e}");
        std::process::exit(1)
    }
    let reg = match load_registry(&store).await {
        Ok((r, _)) => r,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    (store, Arc::new(reg))
}

async fn drive(store: &Store, reg: &Registry, cal: &Calendar, steps: &[Command]) {
    let req = |case: Option<String>, cmd: Command| Request {
        case_no: case,
        flow_id: Some("parallel_approval".into()),
        command: cmd,
        idempotency_key: None,
        actor: "bench".into(),
        override_claims: false,
    };
    let out = match store.execute(&req(None, start("")), reg, cal, at()).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("start: {e}");
            std::process::exit(1)
        }
    };
    for c in steps {
        if let Err(e) = store
            .execute(&req(Some(out.case_no.clone()), c.clone()), reg, cal, at())
            .await
        {
            eprintln!("command: {e}");
            std::process::exit(1)
        }
    }
}

async fn raw_commits(dir: &std::path::Path, n: usize) -> f64 {
    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };
    use std::str::FromStr;
    let url = format!("sqlite://{}", dir.join("raw.db").display());
    let co = match SqliteConnectOptions::from_str(&url) {
        Ok(c) => c
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    let Ok(pool) = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(co)
        .await
    else {
        eprintln!("cannot open {url}");
        std::process::exit(1)
    };
    let _ = sqlx::query("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        .execute(&pool)
        .await;
    let t0 = Instant::now();
    for i in 0..n {
        let Ok(mut tx) = pool.begin().await else {
            break;
        };
        let _ = sqlx::query("INSERT INTO t (v) VALUES ($1)")
            .bind(format!("row {i}"))
            .execute(&mut *tx)
            .await;
        let _ = tx.commit().await;
    }
    n as f64 / t0.elapsed().as_secs_f64()
}

/// Alternates the raw commit loop and the engine loop (the disk's speed
/// drifts on a shared machine) and reports each round and the medians.
async fn bench_durable(cases: usize, dir: std::path::PathBuf) {
    let _ = std::fs::create_dir_all(&dir);
    let url = format!("sqlite://{}", dir.join("durable.db").display());
    let (store, reg) = open(&url).await;
    let cal = Calendar::china();
    let steps = steps();
    let mut raws = Vec::new();
    let mut ours = Vec::new();
    for round in 1..=5 {
        let raw = raw_commits(&dir, cases * 7).await;
        let t0 = Instant::now();
        for _ in 0..cases {
            drive(&store, &reg, &cal, &steps).await;
        }
        let s = t0.elapsed().as_secs_f64();
        let cmds = cases as f64 * 7.0 / s;
        println!(
            "  round {round}: raw one-row INSERT+COMMIT {raw:.0} tx/s; engine {:.0} cases/s = {cmds:.0} commands/s ({:.0}%)",
            cases as f64 / s,
            cmds / raw * 100.0
        );
        raws.push(raw);
        ours.push(cmds);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (raw, cmds) = (median(&mut raws), median(&mut ours));
    println!(
        "durable (SQLite, synchronous=FULL, one client), medians of 5 rounds of {cases} cases: {:.0} cases/s, {cmds:.0} commands/s; raw one-row INSERT+COMMIT {raw:.0} tx/s; commands reach {:.0}% of it",
        cmds / 7.0,
        cmds / raw * 100.0
    );
}

async fn bench_concurrent(url: String, cases: usize, clients: usize) {
    let (store, reg) = open(&url).await;
    let cal = Arc::new(Calendar::china());
    let steps = Arc::new(steps());
    let t0 = Instant::now();
    let per = cases / clients;
    let done_count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut handles = Vec::new();
    for _ in 0..clients {
        let (store, reg, cal, steps) = (store.clone(), reg.clone(), cal.clone(), steps.clone());
        let done_count = done_count.clone();
        handles.push(tokio::spawn(async move {
            for _ in 0..per {
                drive(&store, &reg, &cal, &steps).await;
                let n = done_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if n.is_multiple_of(100_000) {
                    println!(
                        "  {n} cases finished after {:.0} s; peak RSS so far {} MiB",
                        t0.elapsed().as_secs_f64(),
                        peak_rss_kib() / 1024
                    );
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
    let s = t0.elapsed().as_secs_f64();
    let done = per * clients;
    let (tx, cmds) = govflow_engine::store::sqlite::writer_stats();
    if tx > 0 {
        println!(
            "  SQLite writer: {tx} transactions, {:.1} commands each on average",
            cmds as f64 / tx as f64
        );
    }
    println!(
        "concurrent ({}, {clients} clients): {done} cases in {s:.2} s = {:.0} cases/s, {:.0} commands/s; peak RSS {} MiB",
        store.backend(),
        done as f64 / s,
        done as f64 * 7.0 / s,
        peak_rss_kib() / 1024
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let rt = || match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    };
    match args.first().map(String::as_str) {
        Some("core") => bench_core(arg(1, 200_000)),
        Some("calendar") => bench_calendar(arg(1, 10_000_000)),
        Some("rules") => bench_rules(arg(1, 200_000)),
        Some("durable") => {
            let dir = args
                .get(2)
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| std::env::temp_dir().join("govflow-bench"));
            rt().block_on(bench_durable(arg(1, 300), dir))
        }
        Some("concurrent") => {
            let url = args
                .get(1)
                .cloned()
                .unwrap_or_else(|| "sqlite:///tmp/govflow-bench-c.db".into());
            rt().block_on(bench_concurrent(url, arg(2, 2000), arg(3, 16)))
        }
        _ => {
            eprintln!(
                "usage: bench core [CASES] | calendar [OPS] | durable [CASES] [DIR] | concurrent URL [CASES] [CLIENTS]"
            );
            std::process::exit(2)
        }
    }
}

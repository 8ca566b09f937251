//! Supervision benchmarks (issue 4; figures in docs/benchmarks.md):
//!
//! ```text
//! cargo run --release -p govflow-engine --example bench_supervision -- CASES DIR
//! ```
//!
//! 1. Fills a SQLite database in DIR with CASES unfinished cases of the
//!    reference flow (accepted 0–29 days before 2025-12-15, so some are past
//!    their deadlines), unless it already holds them.
//! 2. Full scans with the whole rules/ pack: the first issues the cards, the
//!    second finds the steady state. Time, cases/s, cards/s.
//! 3. The evaluator alone on the same records, one condition
//!    (`now − accepted_at > promised_days × 0.8`), one core.
//! 4. Added latency per case event: commands through the engine with the
//!    rules and without, one client.

use chrono::{NaiveDate, NaiveDateTime};
use govflow_engine::app::load_registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::ids::IdKind;
use govflow_engine::core::{Actor, CaseState, Command, MaterialIn, Person};
use govflow_engine::service::Engine;
use govflow_engine::store::{Options, Request, Store};
use govflow_engine::supervision::RuleBook;
use std::sync::Arc;
use std::time::Instant;

const FLOW: &str = include_str!("../../flows/reference/parallel_approval.flow");
const ORDER_FLOW: &str = include_str!("../../flows/supervision/order.flow");

fn day(y: i32, m: u32, d: u32, h: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|d| d.and_hms_opt(h, 0, 0))
        .unwrap_or_default()
}

fn die(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}

fn start() -> Command {
    Command::Start {
        case_no: String::new(),
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

fn accept() -> Command {
    Command::Complete {
        step: "accept".into(),
        action: "pass".into(),
        by: Actor {
            name: "王芳".into(),
            department: Some("window".into()),
            role: Some("clerk".into()),
        },
        opinion: None,
        data: Default::default(),
        missing: vec![],
        defer: vec![],
        defer_within: None,
        document_no: None,
        fixes: Default::default(),
        on_site: None,
    }
}

fn req(case: Option<&str>, cmd: Command) -> Request {
    Request {
        case_no: case.map(str::to_string),
        flow_id: Some("parallel_approval".into()),
        command: cmd,
        idempotency_key: None,
        actor: "bench".into(),
        override_claims: false,
    }
}

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
        })
        .unwrap_or(0)
        / 1024
}

async fn open(url: &str) -> Store {
    let store = Store::open(url, &Options::default())
        .await
        .unwrap_or_else(|e| die(url, e));
    store
        .deploy(
            "parallel_approval",
            FLOW,
            "parallel_approval.flow",
            "bench",
            day(2025, 9, 1, 8),
        )
        .await
        .unwrap_or_else(|e| die("deploy", e));
    // Red cards issue supervision orders: the built-in order flow.
    store
        .deploy(
            "supervision_order",
            ORDER_FLOW,
            "supervision/order.flow",
            "bench",
            day(2025, 9, 1, 8),
        )
        .await
        .unwrap_or_else(|e| die("deploy", e));
    store
}

/// 30 accepted cases, one per acceptance day, as templates.
async fn templates(store: &Store, cal: &Calendar) -> Vec<CaseState> {
    let (reg, _) = load_registry(store)
        .await
        .unwrap_or_else(|e| die("registry", e));
    let mut out = Vec::new();
    for i in 0..30 {
        let t = day(2025, 12, 15, 10) - chrono::Duration::days(i);
        let o = store
            .execute(&req(None, start()), &reg, cal, t)
            .await
            .unwrap_or_else(|e| die("start", e));
        store
            .execute(&req(Some(&o.case_no), accept()), &reg, cal, t)
            .await
            .unwrap_or_else(|e| die("accept", e));
        if let Ok(Some(s)) = store.case(&o.case_no).await {
            out.push(s);
        }
    }
    out
}

/// Copies of the templates under fresh case numbers, straight into `cases`.
async fn fill(path: &std::path::Path, templates: &[CaseState], n: usize) {
    use sqlx::sqlite::SqliteConnectOptions;
    let co = SqliteConnectOptions::new()
        .filename(path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
    let pool = sqlx::SqlitePool::connect_with(co)
        .await
        .unwrap_or_else(|e| die("open for filling", e));
    let t0 = Instant::now();
    let date = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap_or_default();
    let mut i = 0usize;
    while i < n {
        let mut tx = pool.begin().await.unwrap_or_else(|e| die("begin", e));
        let batch = (n - i).min(500);
        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO cases (case_no, flow_id, flow_version, status, version, snapshot, created_at, updated_at) ",
        );
        let rows: Vec<(String, String, String)> = (i..i + batch)
            .map(|k| {
                let t = &templates[k % templates.len()];
                // 9,000,000 numbers a day: spread over days.
                let no = govflow_engine::core::ids::case_number(
                    "330100",
                    date + chrono::Duration::days((k / 9_000_000) as i64),
                    (k % 9_000_000) as u64 + 100,
                )
                .unwrap_or_default();
                let snap = serde_json::to_string(t)
                    .unwrap_or_default()
                    .replacen(&t.case_no, &no, 1);
                (no, snap, t.status.as_str().to_string())
            })
            .collect();
        q.push_values(&rows, |mut b, (no, snap, status)| {
            b.push_bind(no)
                .push_bind("parallel_approval")
                .push_bind(1_i64)
                .push_bind(status)
                .push_bind(3_i64)
                .push_bind(snap)
                .push_bind("2025-12-01T09:00:00")
                .push_bind("2025-12-01T09:00:00");
        });
        q.build()
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| die("insert", e));
        tx.commit().await.unwrap_or_else(|e| die("commit", e));
        i += batch;
        if i.is_multiple_of(200_000) {
            println!(
                "  {i} cases stored after {:.0} s",
                t0.elapsed().as_secs_f64()
            );
        }
    }
    pool.close().await;
    println!("filled {n} cases in {:.1} s", t0.elapsed().as_secs_f64());
}

fn rules() -> Arc<RuleBook> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules");
    Arc::new(RuleBook::load_dir(&dir).unwrap_or_else(|e| die("rules", e)))
}

async fn main_async(n: usize, dir: std::path::PathBuf) {
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("scan.db");
    let url = format!("sqlite://{}", path.display());
    let cal = Arc::new(Calendar::china());
    let store = open(&url).await;
    let have = store
        .count(govflow_engine::store::Table::Cases)
        .await
        .unwrap_or(0) as usize;
    if have < n {
        let t = templates(&store, &cal).await;
        store.close().await;
        drop(store);
        fill(&path, &t, n - have).await;
    } else {
        store.close().await;
    }
    let store = open(&url).await;
    let (reg, _) = load_registry(&store)
        .await
        .unwrap_or_else(|e| die("registry", e));
    let book = rules();
    println!("{} rules from rules/", book.len());
    let engine = Engine::new(store.clone(), Arc::new(reg), cal.clone(), Some(book));
    // 2. Full scans.
    let now = day(2025, 12, 15, 12);
    for round in [
        "first scan (issues the cards)",
        "second scan (cards from confirmed anomalies)",
        "third scan (steady state)",
    ] {
        let t0 = Instant::now();
        let st = engine.scan_stats(now).await;
        let s = t0.elapsed().as_secs_f64();
        println!(
            "{round}: {} cases, {} verdicts, {} changes ({} cards issued) in {s:.2} s = {:.0} cases/s, {:.0} cards/s; peak RSS {} MiB",
            st.cases,
            st.evaluations,
            st.changes,
            st.cards,
            st.cases as f64 / s,
            st.cards as f64 / s,
            peak_rss_mib()
        );
    }
    // 3. The evaluator alone on the same records.
    let one = govflow_dsl::rule::load_rules(
        "bench.rules",
        "rule promised_80 \"承诺时限已用八成\" {\n  class timeliness  subtype approaching  scope case\n  severity notice\n  when elapsed * 10 > promised_days * 8\n}\n",
        govflow_dsl::Syntax::Dsl,
    );
    let one = RuleBook::new(&[one.rules.unwrap_or_else(|| die("rule", "does not load"))])
        .unwrap_or_else(|e| die("rule", e));
    let flow = engine.flows.latest("parallel_approval");
    let (mut evals, mut hits, mut spent) = (0usize, 0usize, 0f64);
    let mut after = String::new();
    loop {
        let page = store
            .open_snapshots(&after, 20_000)
            .await
            .unwrap_or_else(|e| die("read", e));
        let Some(last) = page.last() else { break };
        after = last.0.clone();
        let states: Vec<CaseState> = page
            .iter()
            .filter_map(|(_, s)| serde_json::from_str(s).ok())
            .collect();
        let t0 = Instant::now();
        for s in &states {
            let v = one.evaluate(s, flow.as_deref(), &cal, now);
            hits += v.iter().filter(|v| v.level.is_some()).count();
        }
        spent += t0.elapsed().as_secs_f64();
        evals += states.len();
    }
    println!(
        "evaluator: `now − accepted_at > promised_days × 0.8` on {evals} stored cases: {:.0} evaluations/s on one core ({hits} hold)",
        evals as f64 / spent
    );
    // 4. Added latency per event: the same commands with and without the rules.
    let plain = Engine::new(store.clone(), engine.flows.clone(), cal.clone(), None);
    for (name, e) in [("without rules", &plain), ("with the rules/ pack", &engine)] {
        let rounds = 500;
        let t0 = Instant::now();
        for _ in 0..rounds {
            let o = e
                .execute(&req(None, start()))
                .await
                .unwrap_or_else(|x| die("start", x));
            e.execute(&req(Some(&o.case_no), accept()))
                .await
                .unwrap_or_else(|x| die("accept", x));
        }
        let per = t0.elapsed().as_secs_f64() * 1000.0 / (rounds as f64 * 2.0);
        println!(
            "per event, {name}: {per:.3} ms (one client, {} commands)",
            rounds * 2
        );
    }
    store.close().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.first().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let dir = args
        .get(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("govflow-bench-scan"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die("runtime", e));
    rt.block_on(main_async(n, dir));
}

//! Two `govflow serve` processes on one PostgreSQL database: cases made on
//! one node, timers that fall due fired by whichever node claims them —
//! each exactly once.

use super::server::{Server, call, complete_body, event_types, free_port, start_body};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

#[test]
fn two_servers_on_one_postgres_fire_each_timer_once() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node test skipped");
        return;
    };
    let schema = super::support::pg_schema("nodes");
    let schema_args = ["--db-schema", schema.as_str()];
    let (pa, pb) = (free_port(), free_port());
    // Node A registers and accepts 30 cases; node B serves too.
    let a = Server::start(&pg, pa, &schema_args, &[]);
    let b = Server::start(&pg, pb, &schema_args, &[]);
    let mut cases = Vec::new();
    for i in 0..30 {
        let port = if i % 2 == 0 { pa } else { pb };
        let (status, v) = call(
            port,
            "POST",
            "/api/cases",
            Some(&format!("s{i}")),
            Some(&start_body()),
        )
        .unwrap_or_else(|| panic!("node down"));
        assert_eq!(status, 201, "{v}");
        let no = v["case_no"].as_str().unwrap_or_default().to_string();
        let (status, v) = call(
            port,
            "POST",
            &format!("/api/cases/{no}/tasks/accept/complete"),
            None,
            Some(&complete_body("window", Some("clerk"))),
        )
        .unwrap_or_else(|| panic!("node down"));
        assert_eq!(status, 200, "{v}");
        cases.push(no);
    }
    let numbers: BTreeSet<&String> = cases.iter().collect();
    assert_eq!(numbers.len(), 30, "case numbers are unique across nodes");
    a.kill9();
    b.kill9();
    // Both nodes come back 40 days later: every case has six deadlines due
    // (three reviews, the parallel stage, promised, statutory).
    let offset = [("GOVFLOW_CLOCK_OFFSET", "3456000")];
    let _a = Server::start(&pg, pa, &schema_args, &offset);
    let _b = Server::start(&pg, pb, &schema_args, &offset);
    let t0 = Instant::now();
    let count = |no: &String| {
        event_types(pa, no)
            .iter()
            .filter(|e| e["type"] == "deadline_passed")
            .map(|e| format!("{}@{}", e["timer"], e["due"]))
            .collect::<Vec<_>>()
    };
    loop {
        let total: usize = cases.iter().map(|no| count(no).len()).sum();
        if total >= 30 * 6 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "only {total} of 180 timers fired"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    for no in &cases {
        let keys = count(no);
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(keys.len(), 6, "{no}: {keys:?}");
        assert_eq!(unique.len(), 6, "{no}: a timer fired twice: {keys:?}");
    }
    // Both nodes supervise: each case still has one card per (rule, subject).
    for no in &cases {
        let (_, v) = call(
            pa,
            "GET",
            &format!("/api/alarms?case={no}&state=open"),
            None,
            None,
        )
        .unwrap_or_else(|| panic!("node down"));
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let keys: BTreeSet<String> = items
            .iter()
            .map(|c| format!("{}/{}", c["rule"], c["subject"]))
            .collect();
        assert_eq!(keys.len(), items.len(), "{no}: duplicate cards: {items:?}");
        assert!(!items.is_empty(), "{no}: an overdue case has cards");
    }
}

const SHARED_FLOW: &str = r#"flow node_share "两节点共享部署" {
  item {
    basic_code "0101500000"
    type 行政许可
    statutory 20工作日
    promised 10工作日
    mode window
  }
  departments {
    窗口 "市政务服务中心"
    城管 "市城市管理局"
  }
  task 受理 "受理" by 窗口 within 1工作日 starts_clock
  task 决定 "决定" by 城管 within 2工作日
  end 准予许可 "准予许可"
}
"#;

const SHARED_RULES: &str = r#"rule node_share_started "两节点共享部署：有办件" {
  class content  subtype incomplete  scope case
  notice when item.name == "两节点共享部署"
}
"#;

/// A flow and a rule file deployed through node A are in force on node B
/// for B's very next request — no restart, no second registry — and the
/// timers of B's case fire exactly once although both nodes run timers.
/// A's clock runs ten days ahead (GOVFLOW_CLOCK_OFFSET), so A finds B's
/// timer due at once and B does not.
#[test]
fn what_one_node_deploys_the_other_uses_at_once() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node deployment test skipped");
        return;
    };
    let schema = super::support::pg_schema("deploys");
    let schema_args = ["--db-schema", schema.as_str()];
    let (pa, pb) = (free_port(), free_port());
    let _a = Server::start(&pg, pa, &schema_args, &[("GOVFLOW_CLOCK_OFFSET", "864000")]);
    let _b = Server::start(&pg, pb, &schema_args, &[]);
    let put = |port, path: &str, text: &str| {
        call(
            port,
            "PUT",
            path,
            None,
            Some(&serde_json::json!({ "source": text })),
        )
        .unwrap_or_else(|| panic!("node down"))
    };
    let (status, v) = put(pa, "/api/flows/node_share/source", SHARED_FLOW);
    assert_eq!((status, v["new"].as_bool()), (200, Some(true)), "{v}");
    let (status, v) = put(pa, "/api/rules/files/node_share.rules", SHARED_RULES);
    assert_eq!(status, 200, "{v}");
    // Node B: the flow is listed and takes a case, the rule judges it.
    let (status, v) = call(pb, "GET", "/api/flows/node_share", None, None).unwrap();
    assert_eq!(
        (status, v["deployed_version"].as_i64()),
        (200, Some(1)),
        "{v}"
    );
    let mut body = start_body();
    body["flow"] = serde_json::json!("node_share");
    body["materials"] = serde_json::json!([]);
    let (status, v) = call(pb, "POST", "/api/cases", Some("share-1"), Some(&body)).unwrap();
    assert_eq!(status, 201, "{v}");
    let no = v["case_no"].as_str().unwrap_or_default().to_string();
    let (_, cards) = call(
        pb,
        "GET",
        &format!("/api/alarms?case={no}&state=open"),
        None,
        None,
    )
    .unwrap();
    assert!(
        cards["items"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["rule"] == "node_share_started")),
        "the rule deployed on A judged B's case: {cards}"
    );
    // The step timer of B's case is due by A's clock: fired once.
    let fired = || {
        event_types(pb, &no)
            .iter()
            .filter(|e| e["type"] == "deadline_passed")
            .map(|e| format!("{}@{}", e["timer"], e["due"]))
            .collect::<Vec<_>>()
    };
    let t0 = Instant::now();
    while fired().is_empty() {
        assert!(t0.elapsed() < Duration::from_secs(30), "no timer fired");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let keys = fired();
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), unique.len(), "a timer fired twice: {keys:?}");
}

/// Two nodes started at the same moment on an empty schema: both come up
/// (the migrations run once, under the migrator's advisory lock; the shipped
/// files deploy once, under the deployment lock) and agree on every version.
#[test]
fn two_nodes_started_together_on_an_empty_schema_both_come_up() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node start-up test skipped");
        return;
    };
    let schema = super::support::pg_schema("together");
    let (pa, pb) = (free_port(), free_port());
    let starts: Vec<_> = [pa, pb]
        .into_iter()
        .map(|port| {
            let (pg, schema) = (pg.clone(), schema.clone());
            std::thread::spawn(move || Server::start(&pg, port, &["--db-schema", &schema], &[]))
        })
        .collect();
    let _nodes: Vec<Server> = starts
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| panic!("a node did not come up"))
        })
        .collect();
    let (_, a) = call(pa, "GET", "/api/flows", None, None).unwrap();
    let (_, b) = call(pb, "GET", "/api/flows", None, None).unwrap();
    assert_eq!(a["total"], b["total"]);
    assert!(a["total"].as_u64().is_some_and(|n| n >= 20), "{a}");
    for f in a["items"].as_array().cloned().unwrap_or_default() {
        assert_eq!(f["deployed_version"], 1, "{f}");
        let id = f["id"].as_str().unwrap_or_default();
        let (_, d) = call(
            pb,
            "GET",
            &format!("/api/flows/{id}/deployments"),
            None,
            None,
        )
        .unwrap();
        assert_eq!(d["items"].as_array().map(Vec::len), Some(1), "{id}: {d}");
    }
}

/// One idempotency key sent at once to two nodes by many clients: one
/// request runs, every other answers its outcome — never a 5xx, one case.
#[test]
fn one_key_sent_to_two_nodes_at_once_runs_once() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node same-key test skipped");
        return;
    };
    let schema = super::support::pg_schema("samekey");
    let schema_args = ["--db-schema", schema.as_str()];
    let (pa, pb) = (free_port(), free_port());
    let _a = Server::start(&pg, pa, &schema_args, &[]);
    let _b = Server::start(&pg, pb, &schema_args, &[]);
    for round in 0..3 {
        let key = format!("same-{round}");
        let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let key = key.clone();
                    s.spawn(move || {
                        let port = if i % 2 == 0 { pa } else { pb };
                        call(port, "POST", "/api/cases", Some(&key), Some(&start_body()))
                            .expect("an answer")
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (s, v) in &answers {
            assert!(*s < 500, "round {round}: {s} {v}");
            assert!(matches!(*s, 200 | 201), "round {round}: {s} {v}");
        }
        let nos: BTreeSet<&str> = answers
            .iter()
            .filter_map(|(_, v)| v["case_no"].as_str())
            .collect();
        assert_eq!(nos.len(), 1, "round {round}: {nos:?}");
        let fresh = answers
            .iter()
            .filter(|(_, v)| v["replayed"] == false)
            .count();
        assert_eq!(fresh, 1, "round {round}: one request ran the command");
    }
}

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

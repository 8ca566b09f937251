//! The calendar past its official years, through the real server: cases
//! accepted in the last days of the covered year get provisional deadlines
//! (never null); a TEST-ONLY arrangement of the next year is deployed through
//! the API on one node; the other node on the same PostgreSQL puts it in
//! force, the open cases' deadlines are recomputed once each and their timers
//! move. Without PostgreSQL the same runs on one SQLite node.

use super::server::{Server, call, complete_body, event_types, free_port, start_body};
use super::support::{pg_schema, temp_dir};
use chrono::Datelike;
use std::time::{Duration, Instant};

/// The first year the shipped calendar does not cover: what the test deploys.
fn next_year() -> i32 {
    govflow_engine::calendar::Calendar::china()
        .covered_until()
        .year()
        + 1
}

/// TEST-ONLY: not any year's official arrangement. 元旦 and a made-up
/// holiday 01-04..01-08, so that deadlines counted through January move.
/// The statutory holidays of the 2024 measures are there (an import without
/// them is refused); the made-up week is what moves deadlines.
pub fn test_only_year(y: i32) -> String {
    let mut s = format!("# TEST-ONLY fixture, not the official {y} arrangement\nyear {y}\n");
    for (d, name) in govflow_engine::calendar::statutory::holidays(y) {
        s.push_str(&format!("{d} off {name}\n"));
    }
    for day in 4..=8 {
        s.push_str(&format!("{y}-01-{day:02} off 测试假日（TEST-ONLY）\n"));
    }
    s
}

/// GOVFLOW_CLOCK_OFFSET that puts the server at 28 December of the last
/// covered year, 10:00 China Standard Time.
fn offset_to_year_end(y: i32) -> String {
    let target = chrono::NaiveDate::from_ymd_opt(y - 1, 12, 28)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .unwrap_or_default();
    let now = (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc();
    (target - now).num_seconds().to_string()
}

fn get(port: u16, path: &str) -> serde_json::Value {
    match call(port, "GET", path, None, None) {
        Some((200, v)) => v,
        other => panic!("GET {path}: {other:?}"),
    }
}

fn statutory(port: u16, no: &str) -> serde_json::Value {
    get(port, &format!("/api/cases/{no}"))["deadlines"]["statutory"].clone()
}

fn scenario(db: &str, extra: &[&str], two_nodes: bool) {
    let y = next_year();
    let offset = offset_to_year_end(y);
    let env = [("GOVFLOW_CLOCK_OFFSET", offset.as_str())];
    let (pa, pb) = (free_port(), free_port());
    let _a = Server::start(db, pa, extra, &env);
    let _b = two_nodes.then(|| Server::start(db, pb, extra, &env));
    let pb = if two_nodes { pb } else { pa };

    // How far the calendar reaches, and the warning (3 days left).
    let cal = get(pa, "/api/calendar");
    assert_eq!(cal["covered_until"], format!("{}-12-31", y - 1), "{cal}");
    assert_eq!(cal["warning"], true, "{cal}");
    assert!(
        cal["provisional_days"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x["date"] == format!("{y}-01-01"))),
        "the provisional rule's holidays are listed: {cal}"
    );

    // Three cases accepted on node A: their statutory deadlines (20 working
    // days) fall in the next year, provisionally — never null.
    let mut cases = Vec::new();
    for i in 0..3 {
        let (s, v) = call(
            pa,
            "POST",
            "/api/cases",
            Some(&format!("c{i}")),
            Some(&start_body()),
        )
        .unwrap_or_else(|| panic!("node down"));
        assert_eq!(s, 201, "{v}");
        let no = v["case_no"].as_str().unwrap_or_default().to_string();
        let (s, v) = call(
            pa,
            "POST",
            &format!("/api/cases/{no}/tasks/accept/complete"),
            None,
            Some(&complete_body("window", Some("clerk"))),
        )
        .unwrap_or_else(|| panic!("node down"));
        assert_eq!(s, 200, "{v}");
        cases.push(no);
    }
    let before = statutory(pb, &cases[0]);
    assert_eq!(before["provisional"], true, "{before}");
    assert_eq!(before["beyond_calendar"], false, "{before}");
    let d1 = before["due_date"].as_str().unwrap_or_default().to_string();
    assert!(d1.starts_with(&y.to_string()), "{before}");
    // Every instant the API gives carries its offset; dates stay dates.
    let case = get(pb, &format!("/api/cases/{}", cases[0]));
    assert!(
        case["accepted_at"]
            .as_str()
            .is_some_and(|t| t.len() == 25 && t.ends_with("+08:00")),
        "{case}"
    );
    assert!(
        before["due"]
            .as_str()
            .is_some_and(|t| t.ends_with("T00:00:00+08:00")),
        "{before}"
    );
    // The exchange record says so too.
    let acceptance = get(pb, &format!("/api/cases/{}/exchange", cases[0]))["受理信息"].clone();
    assert!(
        acceptance["受理时间"]
            .as_str()
            .is_some_and(|t| t.ends_with(" 10:00:00+08:00") || t.ends_with("+08:00")),
        "{acceptance}"
    );
    assert_eq!(acceptance["法定办结日期"], d1.as_str(), "{acceptance}");
    assert_eq!(acceptance["法定办结日期为临时计算"], "是", "{acceptance}");

    // A malformed file is refused with every problem; nothing changes.
    let bad = serde_json::json!({"text": format!("year {y}\n{y}-01-01 off 元旦\n{}-12-31 off x\n{y}-01-01 off again\n", y - 1)});
    let (s, v) = call(pa, "POST", "/api/calendar/years", None, Some(&bad)).unwrap_or_default();
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "calendar.invalid");
    let problems = v["details"]["problems"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let codes: Vec<(&str, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or(""),
                p["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        codes,
        [("calendar::not_in_year", 3), ("calendar::duplicate", 4)]
    );
    assert_eq!(
        get(pa, "/api/calendar")["covered_until"],
        format!("{}-12-31", y - 1)
    );

    // Preview, then deploy through the API on node A.
    let body = serde_json::json!({"text": test_only_year(y), "file": "test-only.txt"});
    let (s, preview) =
        call(pa, "POST", "/api/calendar/preview", None, Some(&body)).unwrap_or_default();
    assert_eq!(s, 200, "{preview}");
    assert_eq!(preview["replaces"], "provisional");
    assert!(
        preview["changes"].as_array().is_some_and(|c| !c.is_empty()),
        "{preview}"
    );
    let (s, v) = call(pa, "POST", "/api/calendar/years", None, Some(&body)).unwrap_or_default();
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["version"], 1);

    // Node B puts it in force (before its next timer claim) and the open
    // cases are recomputed: read on node B.
    let expected = get(pb, &format!("/api/calendar/add?date={}-12-28&n=20", y - 1));
    assert_eq!(expected["provisional"], false, "{expected}");
    let d2 = expected["due"].as_str().unwrap_or_default().to_string();
    assert!(
        d2 > d1,
        "the TEST-ONLY holidays move the deadline later: {d1} → {d2}"
    );
    let t0 = Instant::now();
    for no in &cases {
        loop {
            let now = statutory(pb, no);
            if now["provisional"] == false {
                assert_eq!(now["due_date"], d2.as_str(), "{no}: {now}");
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "{no} not recomputed: {now}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // The statutory timer moved with the deadline.
        let case = get(pb, &format!("/api/cases/{no}"));
        let timer = case["timers"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["key"] == "case:statutory").cloned())
            .unwrap_or_default();
        let next_day = chrono::NaiveDate::parse_from_str(&d2, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.succ_opt())
            .map(|d| format!("{d}T00:00:00+08:00"))
            .unwrap_or_default();
        assert_eq!(timer["due"], next_day.as_str(), "{no}: {case}");
    }
    let acceptance = get(pb, &format!("/api/cases/{}/exchange", cases[0]))["受理信息"].clone();
    assert_eq!(acceptance["法定办结日期"], d2.as_str(), "{acceptance}");
    assert!(
        acceptance.get("法定办结日期为临时计算").is_none(),
        "{acceptance}"
    );
    let cal = get(pb, "/api/calendar");
    assert_eq!(cal["covered_until"], format!("{y}-12-31"), "{cal}");
    assert_eq!(cal["warning"], false, "{cal}");
    // One recomputation event per case and calendar version, whichever node swept.
    std::thread::sleep(Duration::from_millis(600));
    for no in &cases {
        let events = event_types(pa, no);
        let recomputed: Vec<_> = events
            .iter()
            .filter(|e| e["type"] == "deadlines_recomputed")
            .collect();
        assert_eq!(recomputed.len(), 1, "{no}: {recomputed:?}");
        assert_eq!(recomputed[0]["calendar"], format!("calendar/CN/{y} v1"));
        let change = recomputed[0]["changes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["key"] == "case:statutory").cloned())
            .unwrap_or_default();
        assert_eq!(change["was"], d1.as_str());
        assert_eq!(change["deadline"]["due_date"], d2.as_str());
    }
    // The deployment is audited.
    let audit = get(pa, "/api/audit");
    assert!(
        audit["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["action"] == "deploy"
                && r["detail"]
                    .as_str()
                    .is_some_and(|d| d.contains(&format!("calendar/CN/{y}"))))),
        "{audit}"
    );
}

#[test]
fn a_deployed_year_settles_provisional_deadlines_on_sqlite() {
    let dir = temp_dir("calendar-sqlite");
    let db = format!("sqlite://{}", dir.join("c.db").display());
    scenario(&db, &[], false);
}

#[test]
fn a_year_deployed_on_one_postgres_node_is_used_by_the_other() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node calendar test skipped");
        return;
    };
    let schema = pg_schema("calendar");
    scenario(&pg, &["--db-schema", schema.as_str()], true);
}

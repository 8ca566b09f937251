//! Supervision cards in the running server: a case left untouched gets its
//! red card at the nightly scan, and completing it closes every card.

use super::server::{STEPS, Server, call, complete_body, free_port, start_body};
use super::support::temp_dir;

#[test]
fn overdue_cases_get_cards_and_completion_closes_them() {
    let dir = temp_dir("alarms");
    let db = format!("sqlite://{}", dir.join("a.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let (status, v) = call(port, "POST", "/api/cases", None, Some(&start_body())).unwrap();
    assert_eq!(status, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let accept = complete_body("window", Some("clerk"));
    let path = format!("/api/cases/{no}/tasks/accept/complete");
    assert_eq!(
        call(port, "POST", &path, None, Some(&accept)).unwrap().0,
        200
    );
    let alarms = |state: &str| {
        let (_, v) = call(
            port,
            "GET",
            &format!("/api/alarms?case={no}&state={state}"),
            None,
            None,
        )
        .unwrap();
        v["items"].as_array().cloned().unwrap_or_default()
    };
    assert!(alarms("open").is_empty(), "a fresh case has no cards");
    server.kill9();

    // 40 days later: the start-up scan finds the case past both deadlines.
    let _server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", "3456000")]);
    let t0 = std::time::Instant::now();
    let open = loop {
        let open = alarms("open");
        if open.iter().any(|c| c["rule"] == "case_deadline") || t0.elapsed().as_secs() > 20 {
            break open;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let case_card = open
        .iter()
        .find(|c| c["rule"] == "case_deadline")
        .unwrap_or_else(|| panic!("no case_deadline card: {open:?}"));
    assert_eq!(case_card["level"], "red", "{case_card}");
    assert_eq!(case_card["class"], "timeliness");
    let step_cards = open.iter().filter(|c| c["rule"] == "step_overdue").count();
    assert_eq!(step_cards, 3, "one per overdue review: {open:?}");

    // Completing the case closes every card; their history stays.
    for (step, dept, role) in &STEPS[1..] {
        let (s, v) = call(
            port,
            "POST",
            &format!("/api/cases/{no}/tasks/{step}/complete"),
            None,
            Some(&complete_body(dept, *role)),
        )
        .unwrap();
        assert_eq!(s, 200, "{step}: {v}");
    }
    assert!(alarms("open").is_empty(), "{:?}", alarms("open"));
    let closed = alarms("closed");
    // The case card, the three step cards and any other rule's (the pack grows).
    assert!(closed.len() >= 4, "{closed:?}");
    assert!(
        closed.iter().any(|c| c["rule"] == "case_deadline"),
        "{closed:?}"
    );
    assert!(
        closed
            .iter()
            .all(|c| c["history"].as_str().unwrap().contains("resolved"))
    );
}

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
            .all(|c| c["history"].to_string().contains("resolved"))
    );
}

/// Seconds to add to the server clock so that it reads `target` (Unix
/// seconds of a China Standard Time instant) now.
fn offset_to(target: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    (target - now).to_string()
}

/// 2026-02-09 10:00, 2026-03-16 09:00, 2026-03-25 09:00 (UTC+8).
const FEB_09: i64 = 1_770_602_400;
const MAR_16: i64 = 1_773_622_800;
const MAR_25: i64 = 1_774_400_400;

fn wait_for(what: &str, mut f: impl FnMut() -> Option<serde_json::Value>) -> serde_json::Value {
    let t0 = std::time::Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed().as_secs() < 30, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn get(port: u16, path: &str) -> serde_json::Value {
    let (s, v) = call(port, "GET", path, None, None).unwrap();
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

fn post(port: u16, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    call(port, "POST", path, None, Some(&body)).unwrap()
}

/// The supervision chain across server restarts on a moved clock: a case
/// accepted before the Spring Festival and left untouched gets its red card
/// once the statutory deadline (2026-03-13) passes; the red card issues a
/// supervision order to the responsible department; the order's reply, five
/// working days later still missing, raises its own card; the reply resolves
/// it. Appeals revoke a card for good; ratings, statistics and efficiency
/// grades see all of it.
#[test]
fn red_card_orders_and_late_reply_alarms() {
    let dir = temp_dir("orders");
    let db = format!("sqlite://{}", dir.join("o.db").display());
    let port = free_port();
    let feb = offset_to(FEB_09);
    let server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", &feb)]);
    let (status, v) = post(port, "/api/cases", start_body());
    assert_eq!(status, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let (s, v) = post(
        port,
        &format!("/api/cases/{no}/tasks/accept/complete"),
        complete_body("window", Some("clerk")),
    );
    assert_eq!(s, 200, "{v}");
    let case = get(port, &format!("/api/cases/{no}"));
    assert_eq!(
        case["deadlines"]["statutory"]["due_date"], "2026-03-13",
        "{case}"
    );
    assert_eq!(
        case["deadlines"]["promised"]["due_date"], "2026-02-28",
        "{case}"
    );
    // An order needs its addressee: without one the start is refused, not stored.
    let (s, v) = post(
        port,
        "/api/cases",
        serde_json::json!({"flow": "supervision_order",
            "applicant": {"name": "电子监察中心", "id_kind": "credit_code", "id_number": "11330100MB0000001R"}}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("task.no_assignee")),
        "{v}"
    );
    server.kill9();

    // 2026-03-16: past the statutory deadline. The start-up scan raises the red
    // card and the card's rule (`order { to responsible … }`) issues the order.
    let mar16 = offset_to(MAR_16);
    let server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", &mar16)]);
    let card = wait_for("the ordered red card", || {
        let v = get(port, &format!("/api/alarms?case={no}&rule=case_deadline"));
        v["items"]
            .as_array()
            .and_then(|a| a.first().cloned())
            .filter(|c| c["state"] == "ordered")
    });
    assert_eq!(card["level"], "red", "{card}");
    assert_eq!(
        card["department"], "dev",
        "the oldest open task is dev_review: {card}"
    );
    let order_no = card["order_case"].as_str().unwrap().to_string();
    let orders = get(port, "/api/orders");
    let order = orders["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|o| o["case_no"] == order_no.as_str())
                .cloned()
        })
        .unwrap_or_else(|| panic!("order {order_no} not listed: {orders}"));
    assert_eq!(order["addressee"], "dev", "{order}");
    assert_eq!(order["origin"]["case"], no.as_str(), "{order}");
    assert_eq!(order["open_steps"][0]["step"], "reply", "{order}");
    assert_eq!(
        order["open_steps"][0]["due_date"], "2026-03-23",
        "five working days from 03-16: {order}"
    );
    // Notifications: the red card went to the rule's `notify` (supervisor) and to dev.
    let notes = get(port, "/api/notifications?to=supervisor");
    assert!(
        notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["case_no"] == no.as_str()
                && n["rule"] == "case_deadline"
                && n["level"] == "red"),
        "{notes}"
    );
    let notes = get(port, "/api/notifications?to=dev");
    assert!(
        notes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["rule"] == "case_deadline"
                && n["message"].as_str().unwrap_or("").contains("红牌")),
        "{notes}"
    );
    // The order case itself has no card yet (five days to reply).
    let v = get(port, &format!("/api/alarms?case={order_no}&state=open"));
    assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "{v}");

    // Appeals: planning appeals its step card; a supervisor revokes it.
    let step_card = get(
        port,
        &format!("/api/alarms?case={no}&rule=step_overdue&department=planning"),
    )["items"][0]
        .clone();
    let id = step_card["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{step_card}"));
    let (s, v) = post(
        port,
        &format!("/api/alarms/{id}/appeal"),
        serde_json::json!({"by": {"name": "赵静", "department": "env"}, "reason": "不是我们"}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("alarm.wrong_department")),
        "{v}"
    );
    let (s, v) = post(
        port,
        &format!("/api/alarms/{id}/appeal"),
        serde_json::json!({"by": {"name": "赵静", "department": "planning"}, "reason": "申请人补充现场核查材料延误，已书面说明"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["appeal"]["state"], "pending", "{v}");
    let (s, v) = post(
        port,
        &format!("/api/alarms/{id}/decide"),
        serde_json::json!({"by": {"name": "周监", "department": "center"}, "outcome": "revoke"}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("alarm.not_supervisor")),
        "{v}"
    );
    let (s, v) = post(
        port,
        &format!("/api/alarms/{id}/decide"),
        serde_json::json!({"by": {"name": "周监", "department": "center", "role": "supervisor"}, "outcome": "revoke", "opinion": "情况属实"}),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["appeal"]["state"].as_str()),
        (Some("revoked"), Some("revoked")),
        "{v}"
    );
    // A supervisor closes env's step card after checking it (核实关闭).
    let env_card = get(
        port,
        &format!("/api/alarms?case={no}&rule=step_overdue&department=env"),
    )["items"][0]
        .clone();
    let env_id = env_card["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{env_card}"));
    let (s, v) = post(
        port,
        &format!("/api/alarms/{env_id}/close"),
        serde_json::json!({"by": {"name": "周监", "department": "center", "role": "supervisor"}, "opinion": "专家评审延期，已核实"}),
    );
    assert_eq!((s, v["state"].as_str()), (200, Some("verified")), "{v}");
    server.kill9();

    // 2026-03-25: the reply was due 03-23 and has not come. The order's own card.
    let mar25 = offset_to(MAR_25);
    let server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", &mar25)]);
    let late = wait_for("the late-reply card", || {
        let v = get(port, &format!("/api/alarms?case={order_no}&state=open"));
        v["items"].as_array().and_then(|a| a.first().cloned())
    });
    assert_eq!(late["rule"], "order_reply_overdue", "{late}");
    assert_eq!(late["level"], "red", "two working days late: {late}");
    assert_eq!(late["department"], "dev", "{late}");
    // The revoked step card stayed revoked through the scans.
    let again = get(port, &format!("/api/alarms/{id}"));
    assert_eq!(again["state"], "revoked", "{again}");
    let reraised = get(
        port,
        &format!("/api/alarms?case={no}&rule=step_overdue&department=planning&state=open"),
    );
    assert_eq!(
        reraised["items"].as_array().map(Vec::len),
        Some(0),
        "{reraised}"
    );
    let quiet = get(
        port,
        &format!("/api/alarms?case={no}&rule=step_overdue&department=env&state=open"),
    );
    assert_eq!(
        quiet["items"].as_array().map(Vec::len),
        Some(0),
        "verified stays quiet: {quiet}"
    );

    // Only the addressed department replies; the reply resolves the late card.
    let (s, _) = post(
        port,
        &format!("/api/orders/{order_no}/reply"),
        serde_json::json!({"by": {"name": "钱多", "department": "env"}, "reply": "x"}),
    );
    assert_eq!(s, 403);
    let (s, v) = post(
        port,
        &format!("/api/orders/{order_no}/reply"),
        serde_json::json!({"by": {"name": "李明", "department": "dev"}, "reply": "已督促审查，3 月 26 日前作出决定"}),
    );
    assert_eq!(s, 200, "{v}");
    let closed = get(port, &format!("/api/alarms/{}", late["id"]));
    assert_eq!(closed["state"], "closed", "{closed}");

    // Finish the case: its cards close; the order card keeps its history.
    for (step, dept, role) in &STEPS[1..] {
        let (s, v) = post(
            port,
            &format!("/api/cases/{no}/tasks/{step}/complete"),
            complete_body(dept, *role),
        );
        assert_eq!(s, 200, "{step}: {v}");
    }
    let red = get(port, &format!("/api/alarms/{}", card["id"]));
    assert_eq!(red["state"], "closed", "{red}");
    let lines: Vec<&str> = red["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h[1].as_str())
        .collect();
    assert!(lines[0].starts_with("issued"), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains(&order_no)), "{lines:?}");
    assert_eq!(lines.last(), Some(&"resolved"), "{lines:?}");

    // Ratings: 1–5, a reason for 1–2, one per account.
    let path = format!("/api/cases/{no}/rating");
    let (s, v) = post(
        port,
        &path,
        serde_json::json!({"account": "u1", "score": 2}),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("rating.reason_required")),
        "{v}"
    );
    let (s, v) = post(
        port,
        &path,
        serde_json::json!({"account": "u1", "score": 2, "reason": "超期一个多月"}),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = post(
        port,
        &path,
        serde_json::json!({"account": "u1", "score": 5}),
    );
    assert_eq!((s, v["code"].as_str()), (409, Some("rating.exists")), "{v}");

    // Statistics over February: the case, overdue, its cards and rating.
    let st = get(port, "/api/stats?by=item&from=2026-02-01&to=2026-02-28");
    let row = st["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["key"] == "parallel_approval").cloned())
        .unwrap_or_else(|| panic!("{st}"));
    assert_eq!(
        (row["cases"].as_i64(), row["overdue"].as_i64()),
        (Some(1), Some(1)),
        "{row}"
    );
    // case_deadline, and step_overdue for dev and env (planning's was revoked; env's verified still counts).
    assert_eq!(row["cards"]["timeliness"]["red"].as_i64(), Some(3), "{row}");
    assert_eq!(row["satisfaction"].as_f64(), Some(2.0), "{row}");
    assert_eq!(row["e2"]["statutory_rate"].as_f64(), Some(0.0), "{row}");
    let st = get(
        port,
        "/api/stats?by=department&from=2026-02-01&to=2026-02-28",
    );
    let dev = st["rows"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["key"] == "dev").cloned())
        .unwrap_or_else(|| panic!("{st}"));
    assert!(dev["overdue"].as_i64().unwrap_or(0) >= 1, "{dev}");
    // Efficiency: window rated 2, dev with cards; every department graded.
    let ef = get(port, "/api/efficiency?period=2026-02");
    let grades: Vec<&str> = ef["departments"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["grade"].as_str())
        .collect();
    assert!(!grades.is_empty(), "{ef}");
    assert!(
        grades
            .iter()
            .all(|g| ["优秀", "良好", "合格", "不合格"].contains(g)),
        "{ef}"
    );
    drop(server);
}

/// A rule whose condition runs away (calls itself without end, or loops a
/// million times through nested closures) is stopped by the sandbox; the
/// error is logged and shown on /api/rules; the server goes on serving and
/// the other rules go on working.
#[test]
fn runaway_rules_are_stopped_and_the_server_keeps_serving() {
    let dir = temp_dir("runaway");
    let rules = dir.join("rules");
    std::fs::create_dir_all(&rules).unwrap();
    let a = format!(
        "[{}]",
        (0..30).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    std::fs::write(
        rules.join("runaway.rules"),
        format!(
            "rule spin \"自己调用自己\" {{\n  class timeliness  subtype case_overdue  scope case\n  yellow when (|g| g.call(g)).call(|g| g.call(g))\n}}\n\
             rule churn \"近百万次循环\" {{\n  class timeliness  subtype case_overdue  scope case\n  yellow when {a}.all(|x| {a}.all(|y| {a}.all(|z| {a}.all(|w| x + y + z + w >= 0))))\n}}\n\
             rule fresh \"新办件提示\" {{\n  class process  subtype suspended  scope case\n  notice when status == \"accepted\"\n}}\n"
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.join("r.db").display());
    let port = free_port();
    let rules_arg = rules.display().to_string();
    let _server = Server::start(&db, port, &["--rules", &rules_arg], &[]);
    let t0 = std::time::Instant::now();
    let (status, v) = post(port, "/api/cases", start_body());
    assert_eq!(status, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let (s, v) = post(
        port,
        &format!("/api/cases/{no}/tasks/accept/complete"),
        complete_body("window", Some("clerk")),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        t0.elapsed().as_secs() < 10,
        "the runaway rules held the server up"
    );
    let listed = get(port, "/api/rules");
    let err = |id: &str| {
        listed["items"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["id"] == id))
            .map(|x| {
                x["last_error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default()
    };
    assert!(
        err("spin").contains("stopped by the sandbox: calls nested deeper than 32"),
        "{listed}"
    );
    assert!(
        err("churn").contains("stopped by the sandbox after 100000 operations"),
        "{listed}"
    );
    assert_eq!(err("fresh"), "", "{listed}");
    // The healthy rule still raised its card; the runaway ones raised none.
    let cards = get(port, &format!("/api/alarms?case={no}"));
    let rules: Vec<&str> = cards["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["rule"].as_str())
        .collect();
    assert_eq!(rules, ["fresh"], "{cards}");
    assert_eq!(call(port, "GET", "/api/health", None, None).unwrap().0, 200);

    // Bad requests to the supervision routes: JSON errors, never 500.
    for (method, path, body, status, code) in [
        ("GET", "/api/alarms/abc", None, 400, "bad_request"),
        ("GET", "/api/alarms?level=purple", None, 400, "bad_request"),
        ("GET", "/api/alarms?limit=-1", None, 400, "bad_request"),
        ("GET", "/api/orders?status=bogus", None, 400, "bad_request"),
        ("DELETE", "/api/alarms", None, 405, "method_not_allowed"),
        (
            "POST",
            "/api/complaints",
            Some(
                serde_json::json!({"complainant": {"name": "张三", "id_kind": "id_card", "id_number": "11010519491231002X"},
                "addressee": "nosuchdept", "content": "x"}),
            ),
            422,
            "complaint.unknown_department",
        ),
        (
            "POST",
            "/api/complaints",
            Some(
                serde_json::json!({"complainant": {"name": "张三", "id_kind": "id_card", "id_number": "11010519491231002X"},
                "addressee": "env", "case": "BOGUS", "content": "x"}),
            ),
            422,
            "complaint.unknown_case",
        ),
    ] {
        let (s, v) = call(port, method, path, None, body.as_ref()).unwrap();
        assert_eq!(
            (s, v["code"].as_str()),
            (status, Some(code)),
            "{method} {path}: {v}"
        );
    }
    // The OpenAPI document lists these routes.
    let doc = get(port, "/api/openapi.json");
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/api/alarms/{id}/appeal",
        "/api/complaints",
        "/api/efficiency",
        "/api/notifications",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing: {doc}");
    }
    // A complaint about a case shows the case as its origin.
    let (s, v) = post(
        port,
        "/api/complaints",
        serde_json::json!({"complainant": {"name": "张三", "id_kind": "id_card", "id_number": "11010519491231002X"},
            "addressee": "env", "case": no, "content": "环评审查拖延"}),
    );
    assert_eq!(s, 201, "{v}");
    let list = get(port, "/api/complaints");
    assert_eq!(list["items"][0]["origin"]["case"], no.as_str(), "{list}");
}

/// Every red card owed a supervision order gets exactly one, however the
/// server is killed: many cases go red at the start-up scan, the server is
/// killed (SIGKILL) while it is issuing their orders, and after a restart
/// each red card has its order — one order case per card, none twice.
#[test]
fn orders_survive_a_kill_during_card_issuing() {
    let dir = temp_dir("orders-kill");
    orders_survive(&format!("sqlite://{}", dir.join("o.db").display()), &[]);
    match std::env::var("GOVFLOW_TEST_POSTGRES_URL") {
        Ok(pg) if !pg.is_empty() => {
            let schema = super::support::pg_schema("orders");
            orders_survive(&pg, &["--db-schema", schema.as_str()]);
        }
        _ => eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped"),
    }
}

fn orders_survive(db: &str, extra: &[&str]) {
    let db = db.to_string();
    let port = free_port();
    let server = Server::start(&db, port, extra, &[]);
    const CASES: usize = 240;
    let accept = complete_body("window", Some("clerk"));
    for _ in 0..CASES {
        let (s, v) = call(port, "POST", "/api/cases", None, Some(&start_body())).unwrap();
        assert_eq!(s, 201, "{v}");
        let no = v["case_no"].as_str().unwrap().to_string();
        let path = format!("/api/cases/{no}/tasks/accept/complete");
        assert_eq!(
            call(port, "POST", &path, None, Some(&accept)).unwrap().0,
            200
        );
    }
    server.kill9();

    let list = |port: u16, path: &str| -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let sep = if path.contains('?') { '&' } else { '?' };
            let url = format!("{path}{sep}limit=500&offset={}", out.len());
            let Some((200, v)) = call(port, "GET", &url, None, None) else {
                return out;
            };
            let items = v["items"].as_array().cloned().unwrap_or_default();
            let more = v["more"].as_bool().unwrap_or(false);
            out.extend(items);
            if !more {
                return out;
            }
        }
    };
    // 40 days later every case is past its statutory deadline: red cards, orders.
    let env = [("GOVFLOW_CLOCK_OFFSET", "3456000")];
    let server = Server::start(&db, port, extra, &env);
    let t0 = std::time::Instant::now();
    let mut seen = 0;
    while t0.elapsed().as_secs() < 60 {
        seen = list(port, "/api/orders").len();
        if seen > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill9();
    assert!(
        seen > 0 && seen < CASES,
        "the kill must come while orders are being issued: {seen} of {CASES}"
    );

    let _server = Server::start(&db, port, extra, &env);
    let t0 = std::time::Instant::now();
    let (red, orders) = loop {
        let red = list(port, "/api/alarms?rule=case_deadline&level=red");
        let orders = list(port, "/api/orders");
        let done = red.len() == CASES && red.iter().all(|c| c["state"] == "ordered");
        if done || t0.elapsed().as_secs() > 90 {
            break (red, orders);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    eprintln!(
        "{db}: killed with {seen} of {CASES} orders issued; after the restart: {} red cards, {} orders",
        red.len(),
        orders.len()
    );
    assert_eq!(red.len(), CASES, "one red card per case");
    let unordered: Vec<_> = red.iter().filter(|c| c["state"] != "ordered").collect();
    assert!(
        unordered.is_empty(),
        "cards without their order: {unordered:?}"
    );
    // One order case per card, and each card names its own.
    let mut per_card = std::collections::BTreeMap::new();
    for o in &orders {
        let card = o["origin"]["alarm"].as_i64().unwrap_or(-1);
        *per_card.entry(card).or_insert(0) += 1;
    }
    assert_eq!(orders.len(), CASES, "orders: {per_card:?}");
    assert!(per_card.values().all(|n| *n == 1), "{per_card:?}");
    // Each red card's notification to the supervisors was written with the
    // card: once, none lost, none twice.
    let told = list(port, "/api/notifications?to=supervisor")
        .into_iter()
        .filter(|n| n["rule"] == "case_deadline" && n["level"] == "red")
        .count();
    assert_eq!(told, CASES, "notifications to the supervisors");
    for c in &red {
        let id = c["id"].as_i64().unwrap();
        assert_eq!(per_card.get(&id), Some(&1), "card {id}");
        let order = c["order_case"].as_str().unwrap_or_default();
        assert!(
            orders
                .iter()
                .any(|o| o["case_no"] == order && o["origin"]["alarm"] == id),
            "card {id} names order {order}"
        );
    }
}

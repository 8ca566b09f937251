//! The case API of the real server: start, read, work lists, complete,
//! refusals, special procedures, exchange records and `govflow export`.

use super::server::{STEPS, Server, call, complete_body, free_port, start_body};
use super::support::{govflow, temp_dir};
use serde_json::json;

#[test]
fn a_case_through_the_api() {
    let dir = temp_dir("cases-api");
    let db = format!("sqlite://{}", dir.join("api.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);

    // Without a token: 401.
    let raw = std::net::TcpStream::connect(("127.0.0.1", port)).map(|mut s| {
        use std::io::{Read, Write};
        let _ = s.write_all(b"GET /api/cases HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    });
    assert!(raw.unwrap_or_default().starts_with("HTTP/1.1 401"));

    // Malformed bodies: 400 with a message, never 500.
    let (status, v) = call(port, "POST", "/api/cases", None, Some(&json!({"flow": 3}))).unwrap();
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid request body"),
        "{v}"
    );
    // An invalid identifier: 422 naming the check character.
    let mut bad = start_body();
    bad["applicant"]["id_number"] = json!("91110000600037341X");
    let (status, v) = call(port, "POST", "/api/cases", None, Some(&bad)).unwrap();
    assert_eq!(
        (status, v["code"].as_str()),
        (422, Some("case.invalid_applicant")),
        "{v}"
    );
    // An unknown flow: 404.
    let mut unknown = start_body();
    unknown["flow"] = json!("no_such_flow");
    assert_eq!(
        call(port, "POST", "/api/cases", None, Some(&unknown))
            .unwrap()
            .0,
        404
    );

    let (status, v) = call(port, "POST", "/api/cases", Some("k-1"), Some(&start_body())).unwrap();
    assert_eq!(status, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    assert_eq!(no.len(), 22);
    // The same key again: the same case, nothing new.
    let (status, again) =
        call(port, "POST", "/api/cases", Some("k-1"), Some(&start_body())).unwrap();
    assert_eq!(
        (
            status,
            again["case_no"].as_str(),
            again["replayed"].as_bool()
        ),
        (200, Some(no.as_str()), Some(true))
    );

    // The window's work list has the acceptance task; another department's does not.
    let (_, list) = call(
        port,
        "GET",
        "/api/tasks?department=window&role=clerk",
        None,
        None,
    )
    .unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["case_no"] == no.as_str() && t["step"] == "accept")
    );
    let (_, list) = call(port, "GET", "/api/tasks?department=env", None, None).unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());

    // Another department cannot act on the window's task: 403, and nothing changes.
    let path = format!("/api/cases/{no}/tasks/accept/complete");
    let (status, v) = call(port, "POST", &path, None, Some(&complete_body("env", None))).unwrap();
    assert_eq!(
        (status, v["code"].as_str()),
        (403, Some("task.wrong_department")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("window.clerk"),
        "{v}"
    );
    // An unknown action: 422 listing the allowed ones.
    let mut body = complete_body("window", Some("clerk"));
    body["action"] = json!("approve");
    let (status, v) = call(port, "POST", &path, None, Some(&body)).unwrap();
    assert_eq!(status, 422, "{v}");
    assert!(v["message"].as_str().unwrap().contains("`refuse`"), "{v}");

    // Accept: the case clocks start.
    let (status, _) = call(
        port,
        "POST",
        &path,
        None,
        Some(&complete_body("window", Some("clerk"))),
    )
    .unwrap();
    assert_eq!(status, 200);
    let (_, case) = call(port, "GET", &format!("/api/cases/{no}"), None, None).unwrap();
    assert_eq!(case["status"], "accepted");
    assert_eq!(case["visits"], 1);
    let left = case["deadlines"]["statutory"]["working_days_left"].as_i64();
    assert!(left.is_some_and(|n| (19..=20).contains(&n)), "{case}");
    assert_eq!(case["tasks"].as_array().unwrap().len(), 3, "{case}");

    // A B special procedure suspends the case; ending it resumes.
    let sp = json!({"step": "planning_review", "kind": "实地核查", "reason": "核实用地现状", "days": 3,
                    "by": {"name": "赵静", "department": "planning"}});
    let (status, v) = call(
        port,
        "POST",
        &format!("/api/cases/{no}/special/start"),
        None,
        Some(&sp),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    let (_, case) = call(port, "GET", &format!("/api/cases/{no}"), None, None).unwrap();
    assert_eq!(case["status"], "suspended");
    let end = json!({"step": "planning_review", "kind": "实地核查", "result": "核查一致",
                     "by": {"name": "赵静", "department": "planning"}});
    let (status, v) = call(
        port,
        "POST",
        &format!("/api/cases/{no}/special/end"),
        None,
        Some(&end),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");

    for (step, dept, role) in &STEPS[1..] {
        let (status, v) = call(
            port,
            "POST",
            &format!("/api/cases/{no}/tasks/{step}/complete"),
            None,
            Some(&complete_body(dept, *role)),
        )
        .unwrap();
        assert_eq!(status, 200, "{step}: {v}");
    }
    let (_, case) = call(port, "GET", &format!("/api/cases/{no}"), None, None).unwrap();
    assert_eq!(
        (case["status"].as_str(), case["outcome"]["result"].as_str()),
        (Some("completed"), Some("准予许可"))
    );
    // A finished case refuses further commands: 409.
    let (status, v) = call(
        port,
        "POST",
        &format!("/api/cases/{no}/withdraw"),
        None,
        Some(&json!({"reason": "x"})),
    )
    .unwrap();
    assert_eq!(
        (status, v["code"].as_str()),
        (409, Some("case.finished")),
        "{v}"
    );

    // The exchange records: six types, from the event log.
    let (_, ex) = call(
        port,
        "GET",
        &format!("/api/cases/{no}/exchange"),
        None,
        None,
    )
    .unwrap();
    for k in [
        "申请信息",
        "申请材料信息",
        "受理信息",
        "办理环节信息",
        "特别程序信息",
        "办结信息",
    ] {
        assert!(!ex[k].is_null(), "{k} missing: {ex}");
    }
    assert_eq!(ex["办理环节信息"].as_array().unwrap().len(), 6);
    assert_eq!(ex["特别程序信息"][0]["特别程序种类"], "B");
    assert_eq!(ex["办结信息"]["办理结果"], "准予许可");
    drop(server);

    // The same records from the CLI, straight from the database.
    let out = govflow(&["export", &no, "--db", &db]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The API masks the applicant's ID number; the operator's CLI, reading the
    // database itself, does not. Otherwise the records are the same.
    assert_eq!(ex["申请信息"]["申请人证件号码"], "911***********341L");
    for key in ["申请人证件号码", "联系人/代理人证件号码"] {
        assert_eq!(cli["申请信息"][key], "91110000600037341L");
        cli["申请信息"][key] = "911***********341L".into();
    }
    assert_eq!(cli, ex);
    let out = govflow(&["export", "3301002025010100000010", "--db", &db]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_subflow_starts_its_items_cases_and_joins_when_they_finish() {
    let dir = temp_dir("subflow-api");
    let db = format!("sqlite://{}", dir.join("sub.db").display());
    let port = free_port();
    let _server = Server::start(&db, port, &["--flows", "tests/fixtures/subflow"], &[]);
    let mut body = start_body();
    body["flow"] = json!("stage");
    body["materials"] = json!([]);
    let (status, v) = call(port, "POST", "/api/cases", None, Some(&body)).unwrap();
    assert_eq!(status, 201, "{v}");
    let parent = v["case_no"].as_str().unwrap().to_string();
    let lead = json!({"by": {"name": "牵头人", "department": "lead"}});
    let (status, v) = call(
        port,
        "POST",
        &format!("/api/cases/{parent}/tasks/accept/complete"),
        None,
        Some(&lead),
    )
    .unwrap();
    assert_eq!(status, 200, "{v}");
    // Each item's case was started, naming its parent.
    let mut children = Vec::new();
    for (flow, dept) in [("child_a", "a"), ("child_b", "b")] {
        let (_, list) = call(port, "GET", &format!("/api/cases?flow={flow}"), None, None).unwrap();
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{flow}: {list}");
        let no = items[0]["case_no"].as_str().unwrap().to_string();
        let (_, case) = call(port, "GET", &format!("/api/cases/{no}"), None, None).unwrap();
        assert_eq!(case["data"]["parent"]["case"], parent.as_str(), "{case}");
        children.push((no, dept));
    }
    // Pages: one row asked, one given, and the list says more follow.
    let (_, page) = call(port, "GET", "/api/cases?limit=1", None, None).unwrap();
    assert_eq!(
        (
            page["items"].as_array().map(Vec::len),
            page["more"].as_bool(),
            page["next_offset"].as_i64()
        ),
        (Some(1), Some(true), Some(1)),
        "{page}"
    );
    let (_, last) = call(port, "GET", "/api/cases?limit=50&offset=2", None, None).unwrap();
    assert_eq!(
        (
            last["items"].as_array().map(Vec::len),
            last["more"].as_bool()
        ),
        (Some(1), Some(false)),
        "{last}"
    );
    // The first child finishing does not complete the stage (join all) …
    let (no, dept) = &children[0];
    let by = json!({"by": {"name": "审查员", "department": dept}});
    call(
        port,
        "POST",
        &format!("/api/cases/{no}/tasks/review/complete"),
        None,
        Some(&by),
    )
    .unwrap();
    let (_, case) = call(port, "GET", &format!("/api/cases/{parent}"), None, None).unwrap();
    assert!(case["tasks"].as_array().unwrap().is_empty(), "{case}");
    // … the second does: the parent moves on to its next task.
    let (no, dept) = &children[1];
    let mut deny = json!({"by": {"name": "审查员", "department": dept}});
    deny["action"] = json!("deny");
    call(
        port,
        "POST",
        &format!("/api/cases/{no}/tasks/review/complete"),
        None,
        Some(&deny),
    )
    .unwrap();
    let (_, case) = call(port, "GET", &format!("/api/cases/{parent}"), None, None).unwrap();
    assert_eq!(case["tasks"][0]["step"], "finish", "{case}");
    assert_eq!(case["data"]["results"]["child_a"], "准予许可", "{case}");
    assert_eq!(case["data"]["results"]["child_b"], "不予许可", "{case}");
}

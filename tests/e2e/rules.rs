//! Supervision rule files through `govflow check`: the shipped rules check
//! clean; a broken file gets every diagnostic with its line and column.

use super::support::govflow;

#[test]
fn shipped_rules_check_clean() {
    let o = govflow(&["check", "rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(": 0 errors, 0 warnings"), "{err}");
}

#[test]
fn a_broken_rule_file_gets_every_diagnostic() {
    let o = govflow(&[
        "check",
        "tests/fixtures/rules/broken.rules",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("rule::invalid_value".to_string(), 3, 9),
            ("rule::missing_key".to_string(), 8, 8),
            ("rule::unknown_fact".to_string(), 8, 8),
            ("rule::duplicate_id".to_string(), 10, 6),
        ]
    );
    let o = govflow(&["check", "tests/fixtures/rules/broken.rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did you mean `timeliness`?"), "{err}");
    assert!(err.contains("did you mean `step`?"), "{err}");
}

#[test]
fn a_broken_efficiency_scheme_is_located() {
    let dir = super::support::temp_dir("efficiency");
    let f = dir.join("efficiency.yaml");
    std::fs::write(
        &f,
        "grades: { 优秀: 90, 良好: 75, 合格: 60 }\nindicators:\n  - id: on_time\n    formula: 40.0 - overdue_ratio * 80.0\n    range: [0, 40]\n",
    )
    .unwrap();
    let path = f.display().to_string();
    let o = govflow(&["check", &path]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{path}:4:14")), "{err}");
    assert!(err.contains("unknown figure `overdue_ratio`"), "{err}");
    // The shipped scheme checks clean (it is part of `govflow check rules`).
    let o = govflow(&["check", "rules/efficiency.yaml"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Rule files deploy like flows: versions, a diff, a broken text refused with
/// its diagnostics, a new rule in force at once and after a restart.
#[test]
fn rule_files_deploy_versions_and_stay_in_force() {
    use super::server::{Server, call, free_port, start_body};
    use serde_json::json;
    let dir = super::support::temp_dir("rule-deploy");
    let db = format!("sqlite://{}", dir.join("r.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let (s, v) = call(port, "GET", "/api/rules/files", None, None).unwrap();
    assert_eq!(s, 200, "{v}");
    let files: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(
        files.contains(&"timeliness.rules") && files.contains(&"efficiency.yaml"),
        "{files:?}"
    );
    let (_, v) = call(port, "GET", "/api/rules", None, None).unwrap();
    let before = v["items"].as_array().unwrap().len();

    // A broken text: nothing deployed, every diagnostic with its line.
    let (s, v) = call(
        port,
        "PUT",
        "/api/rules/files/demo.rules",
        None,
        Some(&json!({"source": "rule x \"坏\" {\n  class nonsense\n}\n"})),
    )
    .unwrap();
    assert_eq!((s, v["code"].as_str()), (422, Some("rules.invalid")), "{v}");
    assert!(
        v["details"]["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["line"] == 2),
        "{v}"
    );
    // A rule id that another file already has: the whole book must build.
    let dup = "rule case_deadline \"重复\" {\n  class process  subtype suspended  scope case\n  notice when returns >= 1\n}\n";
    let (s, v) = call(
        port,
        "PUT",
        "/api/rules/files/demo.rules",
        None,
        Some(&json!({"source": dup})),
    )
    .unwrap();
    assert_eq!((s, v["code"].as_str()), (422, Some("rules.invalid")), "{v}");

    // A new rule file: a diff against nothing, then version 1, in force at once.
    let demo = "// 演示规则\nrule every_accepted \"演示：受理即提示\" {\n  class process  subtype suspended  scope case\n  notice when visits >= 1\n}\n";
    let (s, v) = call(
        port,
        "POST",
        "/api/rules/files/demo.rules/diff",
        None,
        Some(&json!({"source": demo})),
    )
    .unwrap();
    assert_eq!(
        (s, v["added"].as_u64(), v["removed"].as_u64()),
        (200, Some(5), Some(0)),
        "{v}"
    );
    let (s, v) = call(
        port,
        "PUT",
        "/api/rules/files/demo.rules",
        None,
        Some(&json!({"source": demo})),
    )
    .unwrap();
    assert_eq!(
        (s, v["version"].as_i64(), v["new"].as_bool()),
        (200, Some(1), Some(true)),
        "{v}"
    );
    let (_, v) = call(port, "GET", "/api/rules", None, None).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), before + 1, "{v}");
    let (s, v) = call(port, "POST", "/api/cases", None, Some(&start_body())).unwrap();
    assert_eq!(s, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let (_, v) = call(
        port,
        "POST",
        &format!("/api/cases/{no}/tasks/accept/complete"),
        None,
        Some(&json!({"by": {"name": "王", "department": "window", "role": "clerk"}})),
    )
    .unwrap();
    assert!(v["case_no"].is_string(), "{v}");
    let (_, v) = call(
        port,
        "GET",
        &format!("/api/alarms?case={no}&rule=every_accepted"),
        None,
        None,
    )
    .unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");

    // A second version; the history and the texts of both.
    let v2 = demo.replace("visits >= 1", "visits >= 2");
    let (_, v) = call(
        port,
        "PUT",
        "/api/rules/files/demo.rules",
        None,
        Some(&json!({"source": v2})),
    )
    .unwrap();
    assert_eq!(v["version"], 2, "{v}");
    let (_, v) = call(
        port,
        "GET",
        "/api/rules/files/demo.rules/versions",
        None,
        None,
    )
    .unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = call(
        port,
        "GET",
        "/api/rules/files/demo.rules/versions/1",
        None,
        None,
    )
    .unwrap();
    assert_eq!(v["source"], demo, "{v}");
    let (s, v) = call(
        port,
        "GET",
        "/api/rules/files/nope.txt/versions",
        None,
        None,
    )
    .unwrap();
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("rules.not_found")),
        "{v}"
    );

    // After a restart the deployed version is still in force.
    server.kill9();
    let _server = Server::start(&db, port, &[], &[]);
    let (_, v) = call(port, "GET", "/api/rules/files", None, None).unwrap();
    let demo_now = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "demo.rules")
        .cloned()
        .unwrap();
    assert_eq!(
        (demo_now["version"].as_i64(), demo_now["source"].as_str()),
        (Some(2), Some(v2.as_str())),
        "{demo_now}"
    );
    let (_, v) = call(port, "GET", "/api/rules", None, None).unwrap();
    let r = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "every_accepted")
        .cloned()
        .unwrap();
    assert_eq!(r["levels"][0]["when"], "visits >= 2", "{r}");
}

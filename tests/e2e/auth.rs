//! Users, roles and API tokens against the real server: staff act only for
//! their own departments, routes need their roles, the administrator's token
//! bootstraps everything, and every write is audited.

use super::server::{Server, call, call_as, complete_body, free_port, start_body};
use super::support::temp_dir;
use serde_json::json;

#[test]
fn staff_act_for_their_own_departments_only() {
    let dir = temp_dir("auth");
    let db = format!("sqlite://{}", dir.join("a.db").display());
    let port = free_port();
    let _server = Server::start(&db, port, &[], &[]);
    let admin = |method: &str, path: &str, body: Option<serde_json::Value>| {
        call(port, method, path, None, body.as_ref()).unwrap()
    };
    let users = [
        (
            "wangfang",
            "王芳",
            json!([{"role": "clerk", "department": "window", "position": "clerk"}]),
        ),
        (
            "sunqiang",
            "孙强",
            json!([{"role": "reviewer", "department": "env"}]),
        ),
        (
            "zhoujian",
            "周监",
            json!([{"role": "supervisor", "department": "center"}]),
        ),
    ];
    let mut tokens = std::collections::HashMap::new();
    for (login, name, roles) in &users {
        let (s, v) = admin(
            "POST",
            "/api/users",
            Some(json!({"login": login, "name": name, "roles": roles})),
        );
        assert_eq!(s, 201, "{v}");
        let (s, v) = admin(
            "POST",
            &format!("/api/users/{login}/tokens"),
            Some(json!({"label": "test"})),
        );
        assert_eq!(s, 201, "{v}");
        let t = v["token"].as_str().unwrap().to_string();
        assert_eq!(t.len(), 64, "{v}");
        tokens.insert(*login, t);
    }
    let (s, v) = admin(
        "POST",
        "/api/users",
        Some(json!({"login": "wangfang", "name": "x", "roles": []})),
    );
    assert_eq!((s, v["code"].as_str()), (409, Some("user.exists")), "{v}");
    let (s, v) = admin(
        "POST",
        "/api/users",
        Some(json!({"login": "x", "name": "x", "roles": [{"role": "boss"}]})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("user.unknown_role")),
        "{v}"
    );
    let as_ = |login: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        call_as(&tokens[login], port, method, path, None, body.as_ref()).unwrap()
    };

    // The clerk registers and accepts a case; the acting name is the user's.
    let (s, v) = as_("wangfang", "POST", "/api/cases", Some(start_body()));
    assert_eq!(s, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let mut body = complete_body("window", Some("clerk"));
    body["by"]["name"] = "冒名".into();
    let (s, v) = as_(
        "wangfang",
        "POST",
        &format!("/api/cases/{no}/tasks/accept/complete"),
        Some(body),
    );
    assert_eq!(s, 200, "{v}");
    let events = admin("GET", &format!("/api/cases/{no}/events"), None)
        .1
        .to_string();
    assert!(
        events.contains("王芳") && !events.contains("冒名"),
        "{events}"
    );
    // Nor can the clerk claim to be env.
    let (s, v) = as_(
        "wangfang",
        "POST",
        &format!("/api/cases/{no}/tasks/env_review/complete"),
        Some(complete_body("env", None)),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.wrong_department")),
        "{v}"
    );
    let (s, v) = as_(
        "sunqiang",
        "POST",
        &format!("/api/cases/{no}/tasks/env_review/complete"),
        Some(complete_body("env", None)),
    );
    assert_eq!(s, 200, "{v}");

    // Work lists: own department only.
    let (s, v) = as_("sunqiang", "GET", "/api/tasks", None);
    assert_eq!(s, 200, "{v}");
    assert!(
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["department"] == "env"),
        "{v}"
    );
    let (s, v) = as_("sunqiang", "GET", "/api/tasks?department=dev", None);
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.wrong_department")),
        "{v}"
    );

    // Roles per route.
    let (s, v) = as_("wangfang", "GET", "/api/users", None);
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.forbidden")),
        "{v}"
    );
    let (s, v) = as_(
        "wangfang",
        "POST",
        "/api/alarms/1/decide",
        Some(json!({"by": {"name": "x"}, "outcome": "revoke"})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.forbidden")),
        "{v}"
    );
    let (s, v) = as_("zhoujian", "POST", "/api/cases", Some(start_body()));
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.forbidden")),
        "a supervisor does not register cases: {v}"
    );
    let (s, _) = as_("zhoujian", "GET", "/api/alarms", None);
    assert_eq!(s, 200);

    // A supervisor acts as one by their role alone; the acting name is theirs.
    let adj = json!({"by": {"name": "冒名"}, "department": "env", "period": "2026-11", "delta": -2.0, "reason": "督办回复超期"});
    let (s, v) = as_(
        "zhoujian",
        "POST",
        "/api/efficiency/adjustments",
        Some(adj.clone()),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = as_("sunqiang", "POST", "/api/efficiency/adjustments", Some(adj));
    assert_eq!(
        (s, v["code"].as_str()),
        (403, Some("auth.forbidden")),
        "{v}"
    );
    // Tokens: a wrong one is 401; none is 401.
    let (s, v) = call_as("not-a-token", port, "GET", "/api/flows", None, None).unwrap();
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");

    // Every user and token made is in the audit log, with who made it.
    let audit = admin("GET", "/api/audit", None).1.to_string();
    assert!(
        audit.contains("user.create") && audit.contains("token.create"),
        "{audit}"
    );
    // The users list shows roles, never tokens.
    let list = admin("GET", "/api/users", None).1;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(3), "{list}");
    assert!(!list.to_string().contains(&tokens["wangfang"]));
}

/// A request with the given headers and no bearer token: (status, headers, body).
fn raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&serde_json::Value>,
) -> (u16, String, serde_json::Value) {
    let text = body.map(|b| b.to_string());
    super::server::raw(port, method, path, headers, text.as_deref())
}

/// Passwords (argon2), sessions in cookies with CSRF protection, and
/// repeated failed logins slowed down.
#[test]
fn login_sessions_need_csrf_and_failures_are_slowed() {
    let dir = temp_dir("login");
    let db = format!("sqlite://{}", dir.join("l.db").display());
    let port = free_port();
    let _server = Server::start(&db, port, &[], &[]);
    let user = json!({"login": "wangfang", "name": "王芳", "password": "correct horse battery",
        "roles": [{"role": "clerk", "department": "window", "position": "clerk"}]});
    let (s, v) = call(port, "POST", "/api/users", None, Some(&user)).unwrap();
    assert_eq!(s, 201, "{v}");
    assert!(
        !v.to_string().contains("correct horse"),
        "the password is never shown: {v}"
    );
    let weak = json!({"login": "x", "name": "x", "password": "short", "roles": []});
    let (s, v) = call(port, "POST", "/api/users", None, Some(&weak)).unwrap();
    assert_eq!(
        (s, v["code"].as_str()),
        (422, Some("user.weak_password")),
        "{v}"
    );

    let (s, head, v) = raw(
        port,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"login": "wangfang", "password": "correct horse battery"})),
    );
    assert_eq!(s, 200, "{v}");
    let cookie_line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie_line.contains(attr), "{cookie_line}");
    }
    let cookie = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = v["csrf"].as_str().unwrap().to_string();
    // Reads with the cookie work; writes need the CSRF token.
    let (s, _, v) = raw(port, "GET", "/api/tasks", &[("Cookie", &cookie)], None);
    assert_eq!(s, 200, "{v}");
    let (s, _, v) = raw(
        port,
        "POST",
        "/api/cases",
        &[("Cookie", &cookie)],
        Some(&start_body()),
    );
    assert_eq!((s, v["code"].as_str()), (403, Some("auth.csrf")), "{v}");
    let (s, _, v) = raw(
        port,
        "POST",
        "/api/cases",
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        Some(&start_body()),
    );
    assert_eq!(s, 201, "{v}");
    // Logging out ends the session.
    let (s, _, _) = raw(port, "POST", "/api/logout", &[("Cookie", &cookie)], None);
    assert_eq!(s, 204);
    let (s, _, v) = raw(port, "GET", "/api/tasks", &[("Cookie", &cookie)], None);
    assert_eq!((s, v["code"].as_str()), (401, Some("unauthorized")), "{v}");

    // Five attempts from one address at once (the login above and four wrong
    // passwords): the sixth waits, even with the right password.
    for _ in 0..4 {
        let (s, _, v) = raw(
            port,
            "POST",
            "/api/login",
            &[],
            Some(&json!({"login": "wangfang", "password": "wrong password"})),
        );
        assert_eq!(
            (s, v["code"].as_str()),
            (401, Some("auth.login_failed")),
            "{v}"
        );
    }
    let (s, head, v) = raw(
        port,
        "POST",
        "/api/login",
        &[],
        Some(&json!({"login": "wangfang", "password": "correct horse battery"})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (429, Some("auth.throttled")),
        "{v}"
    );
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // Logins, failed logins and logouts are in the audit log.
    let (_, v) = call(port, "GET", "/api/audit", None, None).unwrap();
    let seen: Vec<(String, String)> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap_or_default().to_string(),
                a["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for want in ["login", "logout"] {
        assert!(
            seen.iter().any(|(a, who)| a == want && who == "wangfang"),
            "{want} missing: {seen:?}"
        );
    }
    // A failed login is written by `anonymous`, never in the user's name,
    // with the login as typed in the detail.
    let failed: Vec<&serde_json::Value> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "login.failed")
        .collect();
    assert!(!failed.is_empty(), "{seen:?}");
    assert!(failed.iter().all(|a| a["actor"] == "anonymous"));
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("wangfang")
    );
}

/// Claims (认领): a claimed task is its holder's to complete; others of the
/// department get 409 until the holder (or a supervisor) releases it; other
/// departments cannot claim. On SQLite, and on PostgreSQL when it is set.
#[test]
fn claimed_tasks_belong_to_their_holder() {
    let dir = temp_dir("claims");
    let mut dbs = vec![(format!("sqlite://{}", dir.join("c.db").display()), vec![])];
    match std::env::var("GOVFLOW_TEST_POSTGRES_URL") {
        Ok(pg) => {
            dbs.push((
                pg,
                vec![
                    "--db-schema".to_string(),
                    super::support::pg_schema("claims"),
                ],
            ));
        }
        Err(_) => eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: claims on PostgreSQL skipped"),
    }
    for (db, extra) in dbs {
        let port = free_port();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let _server = Server::start(&db, port, &extra, &[]);
        let mut tokens = std::collections::HashMap::new();
        for (login, dept) in [("env1", "env"), ("env2", "env"), ("dev1", "dev")] {
            let (s, v) = call(port, "POST", "/api/users", None, Some(&json!({"login": login, "name": login.to_uppercase(), "roles": [{"role": "reviewer", "department": dept}]}))).unwrap();
            assert_eq!(s, 201, "{v}");
            let (_, v) = call(
                port,
                "POST",
                &format!("/api/users/{login}/tokens"),
                None,
                Some(&json!({"label": "t"})),
            )
            .unwrap();
            tokens.insert(login, v["token"].as_str().unwrap().to_string());
        }
        let as_ = |who: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
            call_as(&tokens[who], port, method, path, None, body.as_ref()).unwrap()
        };
        let (_, v) = call(port, "POST", "/api/cases", None, Some(&start_body())).unwrap();
        let no = v["case_no"].as_str().unwrap().to_string();
        let (s, v) = call(
            port,
            "POST",
            &format!("/api/cases/{no}/tasks/accept/complete"),
            None,
            Some(&complete_body("window", Some("clerk"))),
        )
        .unwrap();
        assert_eq!(s, 200, "{v}");
        let claim = format!("/api/cases/{no}/tasks/env_review/claim");
        let release = format!("/api/cases/{no}/tasks/env_review/release");
        let complete = format!("/api/cases/{no}/tasks/env_review/complete");

        let (s, v) = as_("dev1", "POST", &claim, None);
        assert_eq!(
            (s, v["code"].as_str()),
            (403, Some("auth.wrong_department")),
            "{db}: {v}"
        );
        let (s, v) = as_("env1", "POST", &claim, None);
        assert_eq!((s, v["login"].as_str()), (200, Some("env1")), "{db}: {v}");
        let (s, v) = as_("env1", "POST", &claim, None);
        assert_eq!(s, 200, "claiming again is idempotent: {v}");
        let (s, v) = as_("env2", "POST", &claim, None);
        assert_eq!(
            (s, v["code"].as_str()),
            (409, Some("task.claimed")),
            "{db}: {v}"
        );
        let (s, v) = as_("env2", "POST", &complete, Some(complete_body("env", None)));
        assert_eq!(
            (s, v["code"].as_str(), v["details"]["claimed_by"].as_str()),
            (409, Some("task.claimed"), Some("env1")),
            "{db}: {v}"
        );
        let (s, v) = as_("env2", "POST", &release, None);
        assert_eq!(
            (s, v["code"].as_str()),
            (403, Some("auth.forbidden")),
            "{db}: {v}"
        );
        // The work list shows who holds it.
        let (_, v) = as_("env2", "GET", "/api/tasks", None);
        let t = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["case_no"] == no.as_str())
            .cloned()
            .unwrap();
        assert_eq!(t["claimed_by"]["login"], "env1", "{db}: {t}");
        let (_, v) = call(port, "GET", &format!("/api/cases/{no}"), None, None).unwrap();
        let t = v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["step"] == "env_review")
            .cloned()
            .unwrap();
        assert_eq!(t["claimed_by"]["name"], "ENV1", "{db}: {t}");
        // Released, the other reviewer claims and completes it.
        let (s, v) = as_("env1", "POST", &release, None);
        assert_eq!(s, 200, "{db}: {v}");
        let (s, v) = as_("env2", "POST", &claim, None);
        assert_eq!(s, 200, "{db}: {v}");
        let (s, v) = as_("env2", "POST", &complete, Some(complete_body("env", None)));
        assert_eq!(s, 200, "{db}: {v}");
        let (s, v) = as_("env2", "POST", &claim, None);
        assert_eq!(
            (s, v["code"].as_str()),
            (409, Some("task.not_open")),
            "{db}: {v}"
        );
        let (_, v) = call(port, "GET", "/api/audit", None, None).unwrap();
        let actions: Vec<&str> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["action"].as_str())
            .filter(|a| a.starts_with("task."))
            .collect();
        assert_eq!(actions.len(), 3, "claim, release, claim: {actions:?}");
    }
}

//! Every route of the OpenAPI document against the real server: without a
//! token 401, with a role the route does not name 403, with a malformed body
//! 400 (with a JSON `{code, message}` naming the problem), with unknown ids a
//! 4xx — and never a 500.

use super::server::{Server, call, free_port};
use super::support::temp_dir;
use serde_json::{Value, json};

/// One request with an arbitrary body text; (status, JSON body or Null).
fn send(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, _, json) = super::server::raw(port, method, path, &headers, body);
    (status, json)
}

/// Path parameters filled with values that name nothing.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" => "999999",
            "{no}" => "3301002026010100000019",
            "{login}" => "nobody",
            "{version}" => "77",
            "{step}" => "nostep",
            "{action}" => "appeal",
            s if s.starts_with('{') => "x",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_answers_401_403_400_and_never_500() {
    let dir = temp_dir("sweep");
    let db = format!("sqlite://{}", dir.join("s.db").display());
    let port = free_port();
    let _server = Server::start(&db, port, &[], &[]);
    // The least privileged staff member: a clerk of one department.
    let (s, v) = call(port, "POST", "/api/users", None, Some(&json!({"login": "clerk1", "name": "窗口一", "roles": [{"role": "clerk", "department": "window"}]}))).unwrap();
    assert_eq!(s, 201, "{v}");
    let (_, v) = call(
        port,
        "POST",
        "/api/users/clerk1/tokens",
        None,
        Some(&json!({"label": "sweep"})),
    )
    .unwrap();
    let clerk = v["token"].as_str().unwrap().to_string();
    let (_, doc) = call(port, "GET", "/api/openapi.json", None, None).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 45, "{} paths", paths.len());
    let mut checked = (0, 0, 0, 0);
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let url = concrete(path);
            let public = op["security"] == json!([]);
            let writes = matches!(method.as_str(), "post" | "put");
            let body = writes.then_some("{}");
            // No token.
            let (s, v) = send(port, method, &url, None, body);
            assert_ne!(s, 500, "{method} {path} without a token: {v}");
            if !public {
                assert_eq!(
                    (s, v["code"].as_str()),
                    (401, Some("unauthorized")),
                    "{method} {path} without a token: {v}"
                );
                checked.0 += 1;
            }
            // A role the route does not name.
            let roles: Vec<&str> = op["x-roles"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let clerk_may = roles
                .iter()
                .any(|r| matches!(*r, "any" | "staff" | "clerk"));
            let (s, v) = send(port, method, &url, Some(&clerk), body);
            assert_ne!(s, 500, "{method} {path} as a clerk: {v}");
            if !public && !clerk_may {
                assert_eq!(
                    (s, v["code"].as_str()),
                    (403, Some("auth.forbidden")),
                    "{method} {path} as a clerk: {v}"
                );
                checked.1 += 1;
            }
            // The administrator with malformed bodies: not JSON, the wrong shape.
            if writes && op["requestBody"].is_object() {
                for bad in ["{\"oops\": ", "[1, 2, 3]"] {
                    let (s, v) = send(port, method, &url, Some("test-token"), Some(bad));
                    assert_eq!(s, 400, "{method} {path} with {bad:?}: {v}");
                    assert!(
                        v["code"].is_string()
                            && v["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "{method} {path}: {v}"
                    );
                    checked.2 += 1;
                }
            }
            // The administrator, well-formed but naming nothing: a 4xx or 2xx, never 500.
            let (s, v) = send(port, method, &url, Some("test-token"), body);
            assert!(s < 500, "{method} {path} as admin: {s} {v}");
            if s >= 400 {
                assert!(v["code"].is_string(), "{method} {path}: {s} not JSON: {v}");
            }
            checked.3 += 1;
        }
    }
    eprintln!(
        "checked: {} × 401, {} × 403, {} × 400, {} × admin",
        checked.0, checked.1, checked.2, checked.3
    );
    assert!(checked.1 >= 10 && checked.2 >= 40, "{checked:?}");
}

//! Running real `govflow serve` processes for the engine tests: start with
//! arguments and environment, talk HTTP, kill with SIGKILL.

use super::support::root;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "test-token";

pub struct Server {
    child: Option<Child>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

impl Server {
    /// Starts `govflow serve --db DB` on `port` with extra arguments and
    /// environment; returns once it listens.
    pub fn start(db: &str, port: u16, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let addr = format!("127.0.0.1:{port}");
        let mut args = vec![
            "serve",
            "--db",
            db,
            "--addr",
            &addr,
            "--timer-poll-ms",
            "100",
        ];
        args.extend_from_slice(extra);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_govflow"));
        cmd.args(&args)
            .current_dir(root())
            .env("GOVFLOW_ADMIN_TOKEN", TOKEN)
            .env_remove("GOVFLOW_CLOCK_OFFSET")
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start govflow serve: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            assert!(Instant::now() < deadline, "server did not start: {seen:?}");
            match lines.next() {
                Some(Ok(l)) if l.contains("govflow serving") => break,
                Some(Ok(l)) => seen.push(l),
                _ => panic!("server exited before listening: {seen:?}"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Server { child: Some(child) }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 request with the admin token; `None` when the connection
/// failed (server down).
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Option<(u16, serde_json::Value)> {
    call_as(TOKEN, port, method, path, key, body)
}

/// `call` with another bearer token.
pub fn call_as(
    token: &str,
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Option<(u16, serde_json::Value)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n"
    );
    if let Some(k) = key {
        req.push_str(&format!("Idempotency-Key: {k}\r\n"));
    }
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    Some((status, json))
}

/// One request with any headers and any body text (sent as JSON, unchecked):
/// (status, response head, JSON body or Null).
pub fn raw(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, String, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("{e}"));
    let mut req = format!(
        "{} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n",
        method.to_uppercase()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap_or_else(|e| panic!("{e}"));
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (
        status,
        head.to_string(),
        serde_json::from_str(rest).unwrap_or(serde_json::Value::Null),
    )
}

pub fn start_body() -> serde_json::Value {
    serde_json::json!({
        "flow": "parallel_approval",
        "applicant": {"name": "杭州示例科技有限公司", "id_kind": "credit_code", "id_number": "91110000600037341L"},
        "materials": [{"id": "application"}, {"id": "project_doc"}, {"id": "land_doc"}],
    })
}

/// The reference workload after `start`: (step, department, role).
pub const STEPS: &[(&str, &str, Option<&str>)] = &[
    ("accept", "window", Some("clerk")),
    ("dev_review", "dev", None),
    ("planning_review", "planning", None),
    ("env_review", "env", None),
    ("decide", "dev", None),
    ("issue", "window", Some("clerk")),
];

pub fn complete_body(dept: &str, role: Option<&str>) -> serde_json::Value {
    serde_json::json!({"by": {"name": "办事员", "department": dept, "role": role}})
}

/// Event types of a case, in order.
pub fn event_types(port: u16, case_no: &str) -> Vec<serde_json::Value> {
    match call(
        port,
        "GET",
        &format!("/api/cases/{case_no}/events"),
        None,
        None,
    ) {
        Some((200, v)) => v["items"].as_array().cloned().unwrap_or_default(),
        other => panic!("events of {case_no}: {other:?}"),
    }
}

//! The real `govflow serve` over HTTP on loopback, with a fresh SQLite file.

use super::support::{root, temp_dir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: &str) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_govflow"))
        .args(["serve", "--db", db, "--addr", &format!("127.0.0.1:{port}")])
        .current_dir(root())
        .env("GOVFLOW_ADMIN_TOKEN", "test-token")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start govflow serve: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "server did not start");
        match lines.next() {
            Some(Ok(l)) if l.contains("govflow serving") => break,
            Some(Ok(_)) => {}
            _ => panic!("server exited before listening"),
        }
    }
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, port }
}

/// A minimal HTTP/1.1 client: returns (status, body).
fn request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect: {e}"));
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())
        .unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn serve_answers_with_authentication_and_records_deployments() {
    let dir = temp_dir("serve");
    let db = format!("sqlite://{}", dir.join("govflow.db").display());
    let server = start(&db);
    let p = server.port;

    assert_eq!(request(p, "GET", "/api/health", None, None).0, 200);
    let (status, body) = request(p, "GET", "/api/flows", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"code\":\"unauthorized\""), "{body}");
    assert_eq!(request(p, "GET", "/api/flows", Some("wrong"), None).0, 401);

    let (status, body) = request(p, "GET", "/api/flows", Some("test-token"), None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let ids: Vec<&str> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert!(ids.contains(&"parallel_approval"), "{ids:?}");

    let (status, svg) = request(
        p,
        "GET",
        "/api/flows/parallel_approval/graph.svg",
        Some("test-token"),
        None,
    );
    assert_eq!(status, 200);
    assert!(svg.contains("<svg") && svg.contains("并联审查"));
    assert_eq!(
        request(p, "GET", "/api/flows/nope", Some("test-token"), None).0,
        404
    );

    let (status, body) = request(
        p,
        "POST",
        "/api/validate",
        Some("test-token"),
        Some(r#"{"source": "flow x {"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("flow::syntax"), "{body}");
    let (status, body) = request(
        p,
        "POST",
        "/api/validate",
        Some("test-token"),
        Some("{not json"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad_request"), "{body}");

    let (status, body) = request(
        p,
        "GET",
        "/api/flows/parallel_approval/deployments",
        Some("test-token"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"version\":1"), "{body}");
    let (_, audit) = request(p, "GET", "/api/audit", Some("test-token"), None);
    assert!(audit.contains("deploy"), "{audit}");

    // A restart on the same database deploys nothing new (same source, same hash).
    drop(server);
    let server = start(&db);
    let (_, body) = request(
        server.port,
        "GET",
        "/api/flows/parallel_approval/deployments",
        Some("test-token"),
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{body}");
}

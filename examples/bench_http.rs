//! Task completions under load, from a second process on loopback.
//!
//! Start a server in one terminal, then run this in another:
//!
//! ```sh
//! GOVFLOW_ADMIN_TOKEN=bench cargo run --release -- serve --db sqlite:///tmp/bench.db --addr 127.0.0.1:8090
//! cargo run --release --example bench_http -- http://127.0.0.1:8090 bench 2000 16
//! ```
//!
//! Arguments: the server, the admin token, the number of cases, the number of
//! concurrent clients (each a keep-alive connection). It registers the cases of
//! the reference flow (`parallel_approval`) and accepts them (not measured), then
//! completes their three parallel reviews — one request per task, every client
//! working its own cases — and prints requests/s and latency percentiles.
//! Every request must answer 200; anything else stops the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    host: String,
    token: String,
}

impl Conn {
    fn open(addr: &str, token: &str) -> Conn {
        let s =
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        let _ = s.set_nodelay(true);
        let w = s.try_clone().unwrap_or_else(|e| panic!("{e}"));
        Conn {
            r: BufReader::new(s),
            w,
            host: addr.to_string(),
            token: token.to_string(),
        }
    }

    /// One request on the kept-alive connection: (status, body).
    fn post(&mut self, path: &str, body: &str) -> (u16, String) {
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            self.token,
            body.len()
        );
        self.w
            .write_all(req.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut status = 0;
        let mut len = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("the server closed the connection");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if status == 0 {
                status = l
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
            } else if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; len];
        self.r
            .read_exact(&mut buf)
            .unwrap_or_else(|e| panic!("{e}"));
        (status, String::from_utf8_lossy(&buf).to_string())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().map_or("http://127.0.0.1:8090", String::as_str);
    let token = args.get(1).map_or("bench", String::as_str).to_string();
    let cases: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let clients: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();

    // Setup: register and accept the cases, spread over the clients.
    let t0 = Instant::now();
    let per = cases.div_ceil(clients);
    let setup: Vec<Vec<String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..clients)
            .map(|c| {
                let (addr, token) = (addr.clone(), token.clone());
                s.spawn(move || {
                    let mut conn = Conn::open(&addr, &token);
                    let mut mine = Vec::new();
                    for _ in 0..per.min(cases.saturating_sub(c * per)) {
                        let (st, body) = conn.post(
                            "/api/cases",
                            r#"{"flow":"parallel_approval","applicant":{"name":"基准测试公司","id_kind":"credit_code","id_number":"91330100MA2XXXXXX2"},"materials":[{"id":"application"},{"id":"project_doc"},{"id":"land_doc"}]}"#,
                        );
                        assert_eq!(st, 201, "start: {body}");
                        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                        let no = v["case_no"].as_str().unwrap_or_default().to_string();
                        let (st, body) = conn.post(
                            &format!("/api/cases/{no}/tasks/accept/complete"),
                            r#"{"by":{"name":"窗口","department":"window","role":"clerk"}}"#,
                        );
                        assert_eq!(st, 200, "accept: {body}");
                        mine.push(no);
                    }
                    mine
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    eprintln!(
        "setup: {} cases registered and accepted in {:.1} s",
        setup.iter().map(Vec::len).sum::<usize>(),
        t0.elapsed().as_secs_f64()
    );

    // Measured: every client completes the three reviews of its own cases.
    let reviews = [
        ("dev_review", "dev"),
        ("planning_review", "planning"),
        ("env_review", "env"),
    ];
    let start = Instant::now();
    let mut lat: Vec<Duration> = std::thread::scope(|s| {
        let hs: Vec<_> = setup
            .iter()
            .map(|mine| {
                let (addr, token) = (addr.clone(), token.clone());
                s.spawn(move || {
                    let mut conn = Conn::open(&addr, &token);
                    let mut out = Vec::with_capacity(mine.len() * 3);
                    for (step, dept) in reviews {
                        for no in mine {
                            let body = format!(r#"{{"by":{{"name":"审查员","department":"{dept}"}},"opinion":"同意"}}"#);
                            let t = Instant::now();
                            let (st, resp) = conn.post(&format!("/api/cases/{no}/tasks/{step}/complete"), &body);
                            out.push(t.elapsed());
                            assert_eq!(st, 200, "{step} of {no}: {resp}");
                        }
                    }
                    out
                })
            })
            .collect();
        hs.into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let wall = start.elapsed();
    lat.sort();
    let n = lat.len();
    if n == 0 {
        eprintln!("no requests were made");
        return;
    }
    println!(
        "{n} task completions, {clients} clients: {:.0} requests/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        n as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.90).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat[n - 1].as_secs_f64() * 1e3,
    );
}

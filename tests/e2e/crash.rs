//! Crash safety: concurrent clients, SIGKILL mid-load, restart. Every
//! acknowledged command is there, none is applied twice, and timers that fell
//! due while the server was down fire once after the restart.

use super::server::{STEPS, Server, call, complete_body, event_types, free_port, start_body};
use super::support::temp_dir;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One command a client sent: its key, body and where it went.
#[derive(Clone, Debug)]
struct Sent {
    key: String,
    path: String,
    body: serde_json::Value,
    /// `Some(version)` when the server acknowledged it.
    acked: Option<u64>,
    case_no: Option<String>,
}

const OFFSET_40_DAYS: &str = "3456000";

fn client(port: u16, id: usize, log: Arc<Mutex<Vec<Sent>>>) {
    for i in 0.. {
        let key = format!("t{id}-c{i}-start");
        let mut sent = Sent {
            key: key.clone(),
            path: "/api/cases".into(),
            body: start_body(),
            acked: None,
            case_no: None,
        };
        let Some((status, v)) = call(port, "POST", &sent.path, Some(&key), Some(&sent.body)) else {
            log.lock().unwrap().push(sent);
            return;
        };
        assert_eq!(status, 201, "{v}");
        let case_no = v["case_no"].as_str().unwrap_or_default().to_string();
        sent.acked = v["version"].as_u64();
        sent.case_no = Some(case_no.clone());
        log.lock().unwrap().push(sent);
        for (step, dept, role) in STEPS {
            let key = format!("t{id}-c{i}-{step}");
            let path = format!("/api/cases/{case_no}/tasks/{step}/complete");
            let body = complete_body(dept, *role);
            let r = call(port, "POST", &path, Some(&key), Some(&body));
            let mut sent = Sent {
                key,
                path,
                body,
                acked: None,
                case_no: Some(case_no.clone()),
            };
            match r {
                None => {
                    log.lock().unwrap().push(sent);
                    return;
                }
                Some((200, v)) => {
                    sent.acked = v["version"].as_u64();
                    log.lock().unwrap().push(sent);
                }
                Some(other) => panic!("{step}: {other:?}"),
            }
            // Leave some cases half-way, so they have open deadlines.
            if *step == "accept" && i % 2 == 1 {
                break;
            }
        }
    }
}

fn deadline_keys(port: u16, case_no: &str) -> Vec<String> {
    event_types(port, case_no)
        .iter()
        .filter(|e| e["type"] == "deadline_passed")
        .map(|e| format!("{}@{}", e["timer"], e["due"]))
        .collect()
}

#[test]
fn sigkill_mid_load_loses_nothing_and_applies_nothing_twice() {
    let dir = temp_dir("crash");
    let db = format!("sqlite://{}", dir.join("crash.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|id| {
            let log = log.clone();
            std::thread::spawn(move || client(port, id, log))
        })
        .collect();
    // Let the load run, then pull the plug.
    let t0 = Instant::now();
    while log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.acked.is_some())
        .count()
        < 120
    {
        assert!(t0.elapsed() < Duration::from_secs(60), "load too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill9();
    for c in clients {
        c.join().unwrap();
    }
    let sent = log.lock().unwrap().clone();
    let acked: Vec<&Sent> = sent.iter().filter(|s| s.acked.is_some()).collect();
    let in_flight = sent.len() - acked.len();
    eprintln!(
        "{} commands acknowledged, {in_flight} in flight at the kill",
        acked.len()
    );
    assert!(acked.len() >= 120);

    // Restart 40 days later: every deadline fell due while the server was down.
    let server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", OFFSET_40_DAYS)]);
    // Every acknowledged command is there: resending it is answered from the log.
    for s in &acked {
        let (status, v) = call(port, "POST", &s.path, Some(&s.key), Some(&s.body))
            .unwrap_or_else(|| panic!("server down"));
        assert!(status == 200 || status == 201, "{}: {status} {v}", s.key);
        assert_eq!(v["replayed"], true, "{} was lost", s.key);
        assert_eq!(v["version"].as_u64(), s.acked, "{}", s.key);
    }
    // Commands in flight may or may not have committed; resending settles them.
    for s in sent.iter().filter(|s| s.acked.is_none()) {
        let r = call(port, "POST", &s.path, Some(&s.key), Some(&s.body));
        let (status, v) = r.unwrap_or_else(|| panic!("server down"));
        assert!(matches!(status, 200 | 201 | 409), "{}: {status} {v}", s.key);
    }
    // None applied twice: one start and at most one completion per step per case.
    let cases: BTreeSet<String> = sent.iter().filter_map(|s| s.case_no.clone()).collect();
    for no in &cases {
        let events = event_types(port, no);
        let started = events
            .iter()
            .filter(|e| e["type"] == "case_started")
            .count();
        assert_eq!(started, 1, "{no}");
        let mut done: BTreeMap<String, usize> = BTreeMap::new();
        for e in events.iter().filter(|e| e["type"] == "task_completed") {
            *done
                .entry(e["step"].as_str().unwrap_or("").to_string())
                .or_default() += 1;
        }
        assert!(done.values().all(|n| *n == 1), "{no}: {done:?}");
    }
    // Timers that fell due while down fire, once each: the cases accepted
    // before the crash and still open (an acceptance replayed after the restart
    // starts its clocks 40 days later).
    let accepted_before: BTreeSet<String> = acked
        .iter()
        .filter(|s| s.key.ends_with("-accept"))
        .filter_map(|s| s.case_no.clone())
        .collect();
    let open: Vec<String> = accepted_before
        .iter()
        .filter(|no| {
            // Still before the decision: the statutory timer stops at the
            // decision (行政许可法第四十二条), so decided cases have none left.
            let events = event_types(port, no);
            !events
                .iter()
                .any(|e| e["type"] == "completed" || e["type"] == "decided")
        })
        .cloned()
        .collect();
    assert!(!open.is_empty(), "some cases must be left open");
    let t0 = Instant::now();
    loop {
        let all = open.iter().all(|no| {
            deadline_keys(port, no)
                .iter()
                .any(|k| k.starts_with("\"case:statutory\""))
        });
        if all {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "timers did not fire after restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut fired = BTreeMap::new();
    for no in &open {
        let keys = deadline_keys(port, no);
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(
            unique.len(),
            keys.len(),
            "{no}: a timer fired twice: {keys:?}"
        );
        fired.insert(no.clone(), keys.len());
    }
    // A second crash and restart fires nothing again.
    server.kill9();
    let _server = Server::start(&db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", OFFSET_40_DAYS)]);
    std::thread::sleep(Duration::from_millis(600));
    for no in &open {
        assert_eq!(
            deadline_keys(port, no).len(),
            fired[no],
            "{no}: fired again after restart"
        );
    }
    eprintln!(
        "{} open cases, {} timers fired after the restart",
        open.len(),
        fired.values().sum::<usize>()
    );
}

/// The restore drill: a backup taken while 8 clients write holds every
/// command acknowledged before it began; restored into a new file it passes
/// `govflow verify` (integrity, and every case's events rebuild its
/// snapshot), and a server on it answers those commands from its log.
#[test]
fn a_backup_under_load_restores_every_acknowledged_command() {
    use super::support::govflow;
    let dir = temp_dir("backup");
    let db = format!("sqlite://{}", dir.join("live.db").display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let log = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|id| {
            let log = log.clone();
            std::thread::spawn(move || client(port, id, log))
        })
        .collect();
    let acked = |log: &Arc<Mutex<Vec<Sent>>>| -> Vec<Sent> {
        log.lock()
            .unwrap()
            .iter()
            .filter(|s| s.acked.is_some())
            .cloned()
            .collect()
    };
    let t0 = Instant::now();
    while acked(&log).len() < 100 {
        assert!(t0.elapsed() < Duration::from_secs(60), "load too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Everything acknowledged before the backup begins must be in it.
    let before = acked(&log);
    let backup = dir.join("backup.db");
    let o = govflow(&["backup", "--db", &db, "--to", &backup.display().to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let during = acked(&log).len() - before.len();
    // A backup never overwrites.
    let again = govflow(&["backup", "--db", &db, "--to", &backup.display().to_string()]);
    assert_eq!(again.status.code(), Some(1));
    server.kill9();
    for c in clients {
        c.join().unwrap();
    }
    let restored = format!("sqlite://{}", dir.join("restored.db").display());
    let o = govflow(&[
        "restore",
        "--from",
        &backup.display().to_string(),
        "--db",
        &restored,
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("integrity ok") && out.contains(" 0 case(s) whose events"),
        "{out}"
    );
    // The backup's chains are whole (what was not sealed yet is counted, not broken).
    assert!(
        out.contains("chain event_log: ok") && out.contains("chain audit_log: ok"),
        "{out}"
    );
    // Restoring over an existing file needs --force.
    let o = govflow(&[
        "restore",
        "--from",
        &backup.display().to_string(),
        "--db",
        &restored,
    ]);
    assert_eq!(o.status.code(), Some(1));
    let o = govflow(&["verify", "--db", &restored]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    eprintln!(
        "{} commands acknowledged before the backup, {during} while it ran: {}",
        before.len(),
        String::from_utf8_lossy(&o.stdout).trim()
    );
    let _server = Server::start(&restored, port, &[], &[]);
    for s in &before {
        let (status, v) = call(port, "POST", &s.path, Some(&s.key), Some(&s.body))
            .unwrap_or_else(|| panic!("server down"));
        assert!(status == 200 || status == 201, "{}: {status} {v}", s.key);
        assert_eq!(v["replayed"], true, "{} is not in the backup", s.key);
        assert_eq!(v["version"].as_u64(), s.acked, "{}", s.key);
    }
}

/// The PostgreSQL procedure of docs/security.md, run: `pg_dump` while a node
/// serves, the schema lost, `pg_restore`, `govflow verify`, and a node on the
/// restored schema answers every acknowledged command from its log.
#[test]
fn a_postgres_dump_restores_every_acknowledged_command() {
    use super::support::govflow;
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: the PostgreSQL restore drill is skipped");
        return;
    };
    let run = |cmd: &str, args: &[&str]| {
        let o = std::process::Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert!(
            o.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    let dir = temp_dir("pgdump");
    let schema = super::support::pg_schema("drill");
    let schema_args = ["--db-schema", schema.as_str()];
    let port = free_port();
    let server = Server::start(&pg, port, &schema_args, &[]);
    let mut acked = Vec::new();
    for i in 0..20 {
        let key = format!("d{i}");
        let (s, v) = call(port, "POST", "/api/cases", Some(&key), Some(&start_body())).unwrap();
        assert_eq!(s, 201, "{v}");
        acked.push((
            "/api/cases".to_string(),
            key,
            start_body(),
            v["version"].as_u64(),
        ));
        let no = v["case_no"].as_str().unwrap().to_string();
        let (path, key) = (
            format!("/api/cases/{no}/tasks/accept/complete"),
            format!("d{i}-accept"),
        );
        let body = complete_body("window", Some("clerk"));
        let (s, v) = call(port, "POST", &path, Some(&key), Some(&body)).unwrap();
        assert_eq!(s, 200, "{v}");
        acked.push((path, key, body, v["version"].as_u64()));
    }
    let dump = dir.join("govflow.dump").display().to_string();
    run("pg_dump", &["-Fc", "-n", &schema, "-f", &dump, &pg]);
    server.kill9();
    run(
        "psql",
        &[&pg, "-qc", &format!("DROP SCHEMA {schema} CASCADE")],
    );
    run("pg_restore", &["-d", &pg, &dump]);
    let o = govflow(&["verify", "--db", &pg, "--db-schema", &schema]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("20 cases")
            && out.contains("integrity ok")
            && out.contains("chain event_log: ok")
            && out.contains("chain audit_log: ok"),
        "{out}"
    );
    let _server = Server::start(&pg, port, &schema_args, &[]);
    for (path, key, body, version) in &acked {
        let (s, v) = call(port, "POST", path, Some(key), Some(body)).unwrap();
        assert!(s == 200 || s == 201, "{key}: {s} {v}");
        assert_eq!(v["replayed"], true, "{key} is not in the dump");
        assert_eq!(v["version"].as_u64(), *version, "{key}");
    }
}

/// Tamper evidence, end to end: a server seals what it writes into the hash
/// chains within a moment; someone who then edits a sealed event in the file
/// is found by `govflow verify`, which names the case and event and exits 1.
#[test]
fn verify_names_an_event_changed_behind_the_servers_back() {
    use super::support::govflow;
    let dir = temp_dir("tamper");
    let file = dir.join("live.db");
    let db = format!("sqlite://{}", file.display());
    let port = free_port();
    let server = Server::start(&db, port, &[], &[]);
    let (s, v) = call(port, "POST", "/api/cases", Some("t1"), Some(&start_body())).unwrap();
    assert_eq!(s, 201, "{v}");
    let no = v["case_no"].as_str().unwrap().to_string();
    let path = format!("/api/cases/{no}/tasks/accept/complete");
    let body = complete_body("window", Some("clerk"));
    let (s, v) = call(port, "POST", &path, Some("t2"), Some(&body)).unwrap();
    assert_eq!(s, 200, "{v}");
    // The sealer runs every second.
    let t0 = Instant::now();
    let sealed = loop {
        let o = govflow(&["verify", "--db", &db]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        if out.contains("chain event_log: ok; ")
            && !out.contains(" 0 sealed")
            && out.matches(" 0 not sealed yet").count() == 2
        {
            break out;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "never sealed: {out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(sealed.contains("head "), "{sealed}");
    server.kill9();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let raw = sqlx::SqlitePool::connect(&db).await.unwrap();
        sqlx::query(
            "UPDATE event_log SET body = REPLACE(body, 'window', 'w1ndow') WHERE case_no = $1 AND seq > 1",
        )
        .bind(&no)
        .execute(&raw)
        .await
        .unwrap();
        raw.close().await;
    });
    let o = govflow(&["verify", "--db", &db]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("chain event_log: BROKEN")
            && out.contains(&format!("case {no} event "))
            && out.contains("在封存后被改动"),
        "{out}"
    );
    assert!(out.contains("chain audit_log: ok"), "{out}");
}

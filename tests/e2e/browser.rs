//! The studio in a real browser: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`). Logs in with the keyboard,
//! types an error into a flow and sees the marker at its line, fixes it,
//! changes a step limit in the timers panel (only that literal changes; every
//! comment stays), deploys with a diff, starts a case, completes tasks as two
//! departments and fails to act for a third, and sees a card on the board;
//! then the worklist and the case page at phone width.
//!
//! Screenshots go to `target/screenshots/` (`GOVFLOW_SCREENSHOTS` to move
//! them). Without chromedriver the test says it was skipped — unless `CI` is
//! set, where it fails: `.ci/run` installs the browser.

use super::server::{Server, call, free_port};
use super::support::{root, temp_dir};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";
const BACKSPACE: &str = "\u{E003}";
const CONTROL: &str = "\u{E009}";
const RELEASE: &str = "\u{E000}";

struct Driver {
    child: Child,
    port: u16,
    session: String,
    shots: PathBuf,
    /// Put in front of screenshot names (one run per database).
    prefix: std::cell::RefCell<String>,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = http(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 exchange with chromedriver (chunked bodies decoded).
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    // chromedriver keeps connections open: read the head, then exactly the body.
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).map_err(|e| e.to_string())? == 0 || l == "\r\n" {
            break;
        }
        head.push_str(&l.to_ascii_lowercase());
    }
    let mut payload = Vec::new();
    if head.contains("transfer-encoding: chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).map_err(|e| e.to_string())?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(|e| e.to_string())?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            payload.extend_from_slice(&chunk[..n]);
        }
    } else {
        let n: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("no content length")?;
        payload = vec![0; n];
        r.read_exact(&mut payload).map_err(|e| e.to_string())?;
    }
    let payload = String::from_utf8_lossy(&payload).to_string();
    let v: Value = serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?;
    if let Some(err) = v["value"]["error"].as_str() {
        return Err(format!("{err}: {}", v["value"]["message"]));
    }
    Ok(v["value"].clone())
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl Driver {
    fn start() -> Option<Driver> {
        let exe = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let port = free_port();
        let mut child = Command::new(exe)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let out = child.stdout.take()?;
        let mut lines = BufReader::new(out).lines();
        for l in lines.by_ref() {
            if l.ok()?.contains("started successfully") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--window-size=1440,1000", "--lang=zh-CN", "--force-device-scale-factor=1"]
            }
        }}});
        let v = match http(port, "POST", "/session", Some(&caps)) {
            Ok(v) => v,
            Err(e) => panic!("chromedriver could not start chromium: {e}"),
        };
        let session = v["sessionId"].as_str()?.to_string();
        let shots = std::env::var_os("GOVFLOW_SCREENSHOTS")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target/screenshots"));
        let _ = std::fs::create_dir_all(&shots);
        Some(Driver {
            child,
            port,
            session,
            shots,
            prefix: std::cell::RefCell::new(String::new()),
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let p = format!("/session/{}{path}", self.session);
        http(self.port, method, &p, body.as_ref())
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    fn js(&self, script: &str, args: Value) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// Waits until `script` returns something truthy; returns it.
    fn wait(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.js(script, json!([]));
            if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
                return v;
            }
            if Instant::now() > deadline {
                self.shot("timeout");
                let body = self.js("return document.body.innerText", json!([]));
                panic!(
                    "timed out waiting for {what}; the page says:\n{}",
                    body.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs an asynchronous script (it calls `done(value)`); returns the value as text.
    fn wait_async(&self, script: &str) -> String {
        let body = format!("const done = arguments[arguments.length - 1]; {script}");
        let v = self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": body, "args": []})),
        );
        v.as_str().map_or_else(|| v.to_string(), str::to_string)
    }

    fn find(&self, css: &str) -> String {
        self.wait(
            css,
            &format!("return document.querySelector({css:?}) !== null", css = css),
        );
        let v = self.cmd(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        );
        v[ELEMENT].as_str().unwrap_or_default().to_string()
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), Some(json!({})));
    }

    /// Real key events into the element (focused first; its caret kept when it already has focus).
    fn keys(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    /// Keys into whatever has focus.
    fn keys_active(&self, text: &str) {
        let v = self.cmd("GET", "/element/active", None);
        let e = v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no active element: {v}"))
            .to_string();
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn text(&self, css: &str) -> String {
        self.find(css);
        self.js(
            &format!("return document.querySelector({css:?}).innerText"),
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    }

    fn shot(&self, name: &str) -> PathBuf {
        let v = self.cmd("GET", "/screenshot", None);
        let png = b64decode(v.as_str().unwrap_or_default());
        let p = self
            .shots
            .join(format!("{}{name}.png", self.prefix.borrow()));
        let _ = std::fs::write(&p, png);
        p
    }

    fn size(&self, w: u32, h: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": w, "height": h})),
        );
    }

    /// Registers a case of the reference flow through the form on the cases page.
    fn register(&self, base: &str, applicant: &str) {
        self.goto(&format!("{base}/#/cases"));
        self.find("#new-materials input");
        self.js("document.querySelector('#new-flow').value = 'parallel_approval'; document.querySelector('#new-flow').dispatchEvent(new Event('change'))", json!([]));
        self.wait(
            "the materials",
            "return document.querySelector('#new-materials input[value=land_doc]')",
        );
        self.keys("#new-name", applicant);
        self.keys("#new-id", "91330100MA2XXXXXX2");
        self.click("#new-submit");
    }

    fn login(&self, base: &str, login: &str, password: &str) {
        self.goto(&format!("{base}/#/login"));
        // Log out first when a session is still there.
        self.js("sessionStorage.clear(); document.cookie = ''", json!([]));
        self.wait("the login form", "return document.querySelector('#login-name') && document.activeElement === document.querySelector('#login-name')");
        // Keyboard only: the name, Tab to the password, Enter submits.
        self.keys_active(&format!("{login}{TAB}"));
        self.keys_active(&format!("{password}{ENTER}"));
        self.wait("the studio after login", &format!(
            "return document.querySelector('#user') && document.querySelector('#user').innerText.includes('({login})')"
        ));
    }
}

#[test]
fn the_studio_in_a_browser() {
    let Some(d) = Driver::start() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install chromium and chromium-driver"
        );
        eprintln!("skipped: no chromedriver (apt-get install chromium chromium-driver)");
        return;
    };
    let dir = temp_dir("browser");
    let sqlite = format!("sqlite://{}", dir.join("b.db").display());
    studio_scenario(&d, &sqlite, &[], "");
    calendar_scenario(&d, &format!("sqlite://{}", dir.join("cal.db").display()));
    match std::env::var("GOVFLOW_TEST_POSTGRES_URL") {
        Ok(pg) => {
            let schema = super::support::pg_schema("browser");
            studio_scenario(&d, &pg, &["--db-schema", &schema], "pg-");
        }
        Err(_) => eprintln!(
            "GOVFLOW_TEST_POSTGRES_URL is not set: the browser test on PostgreSQL skipped"
        ),
    }
}

/// The whole scenario against one database; screenshots named with `shots`
/// in front.
fn studio_scenario(d: &Driver, db: &str, extra: &[&str], shots: &str) {
    d.prefix.replace(shots.to_string());
    d.size(1440, 1000);
    let port = free_port();
    let _server = Server::start(db, port, extra, &[]);
    let base = format!("http://127.0.0.1:{port}");
    let pw = "correct horse battery";
    for (login, name, roles) in [
        (
            "lihua",
            "李华",
            json!([{"role": "analyst"}, {"role": "deployer"}]),
        ),
        (
            "wangfang",
            "王芳",
            json!([{"role": "clerk", "department": "window", "position": "clerk"}]),
        ),
        (
            "zhaolei",
            "赵磊",
            json!([{"role": "reviewer", "department": "dev"}]),
        ),
        (
            "sunqiang",
            "孙强",
            json!([{"role": "reviewer", "department": "planning"}]),
        ),
        ("zhoujian", "周监", json!([{"role": "supervisor"}])),
        (
            "qianmin",
            "钱敏",
            json!([{"role": "reviewer", "department": "env"}]),
        ),
    ] {
        let (s, v) = call(
            port,
            "POST",
            "/api/users",
            None,
            Some(&json!({"login": login, "name": name, "roles": roles, "password": pw})),
        )
        .unwrap();
        assert_eq!(s, 201, "{v}");
    }

    // Not logged in: the studio asks for a login.
    d.goto(&format!("{base}/"));
    d.wait(
        "the login page",
        "return location.hash === '#/login' && document.querySelector('#login-name')",
    );

    // 0. The README's way in: the administrator pastes the token printed at
    // start, adds a user with the form and issues an API token for it.
    d.wait(
        "the login form",
        "return document.querySelector('#login-token')",
    );
    d.keys("#login-token", &format!("{}{ENTER}", super::server::TOKEN));
    d.wait(
        "the administrator",
        "return document.querySelector('#user')?.innerText.includes('(admin)')",
    );
    d.goto(&format!("{base}/#/users"));
    d.keys("#u-login", "chenjing");
    d.keys("#u-name", "陈静");
    d.keys("#u-password", pw);
    // Two roles: a reviewer of env, added first, and a supervisor.
    d.js(
        "document.querySelector('#u-role').value = 'reviewer'",
        json!([]),
    );
    d.keys("#u-dept", "env");
    d.click("#u-add-role");
    d.js(
        "document.querySelector('#u-role').value = 'supervisor'",
        json!([]),
    );
    d.keys("#u-name", ENTER);
    d.wait(
        "the new user",
        "return document.querySelector('main')?.innerText.includes('chenjing')",
    );
    d.wait("the token button", "return [...document.querySelectorAll('main tr')].find(r => r.innerText.includes('chenjing'))?.querySelector('button[data-action=token]')");
    d.js("[...document.querySelectorAll('main tr')].find(r => r.innerText.includes('chenjing')).querySelector('button[data-action=token]').click()", json!([]));
    let (_, v) = call(port, "GET", "/api/users", None, None).unwrap();
    let chen = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "chenjing")
        .cloned()
        .unwrap();
    assert_eq!(
        chen["roles"],
        json!([{"role": "reviewer", "department": "env"}, {"role": "supervisor"}]),
        "{chen}"
    );
    let token = d.wait(
        "the token",
        "return document.querySelector('code.token')?.innerText",
    );
    assert_eq!(token.as_str().map(str::len), Some(64), "{token}");
    d.shot("00-users");
    let (s, v) = super::server::call_as(
        token.as_str().unwrap_or_default(),
        port,
        "GET",
        "/api/tasks",
        None,
        None,
    )
    .unwrap();
    assert_eq!(s, 200, "the issued token works: {v}");

    // 1. The analyst opens a flow: no problems, a diagram, the deadlines.
    d.login(&base, "lihua", pw);
    // An analyst starts at the flows.
    d.wait("the flows", "return location.hash === '#/flows' && document.querySelector('main table') && !document.querySelector('main [role=alert]')");
    d.goto(&format!("{base}/#/flows/parallel_approval"));
    d.wait(
        "a clean check",
        "return document.querySelector('#diag-summary')?.innerText.includes('✓')",
    );
    d.wait(
        "the diagram",
        "return document.querySelectorAll('#diagram svg g.node').length",
    );
    let original =
        std::fs::read_to_string(root().join("flows/reference/parallel_approval.flow")).unwrap();
    let source = || {
        d.js(
            "return document.querySelector('textarea.source').value",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    assert_eq!(source(), original);
    d.shot("01-flow-editor");

    // 2. Type an error: `by dev` becomes `by devx` on the decide line.
    let line_no = original
        .lines()
        .position(|l| l.contains("task decide"))
        .unwrap()
        + 1;
    let decide_line = original.lines().nth(line_no - 1).unwrap();
    let offset: usize = original
        .lines()
        .take(line_no - 1)
        .map(|l| l.encode_utf16().count() + 1)
        .sum::<usize>()
        + decide_line[..decide_line.find("by dev").unwrap() + "by dev".len()]
            .encode_utf16()
            .count();
    d.js("const t = document.querySelector('textarea.source'); t.focus(); t.selectionStart = t.selectionEnd = arguments[0];", json!([offset]));
    d.keys("textarea.source", "x");
    let marker = d.wait("an error marker", &format!(
        "return document.querySelector('.gutter div.err[data-line=\"{line_no}\"]') && document.querySelector('.diags li.error[data-line=\"{line_no}\"]')?.innerText"
    ));
    let marker = marker.as_str().unwrap_or_default().to_string();
    assert!(
        marker.starts_with(&format!("{line_no}:")) && marker.contains("devx"),
        "{marker}"
    );
    // Exactly one line is marked.
    let marked = d.js(
        "return [...document.querySelectorAll('.gutter div.err')].map(e => e.dataset.line)",
        json!([]),
    );
    assert_eq!(marked, json!([line_no.to_string()]));
    d.shot("02-error-marker");

    // 3. Fix it.
    d.keys("textarea.source", BACKSPACE);
    d.wait("the fix", "return document.querySelector('#diag-summary')?.innerText.includes('✓') && !document.querySelector('.gutter div.err')");
    assert_eq!(source(), original);

    // 4. The decide step's limit, 2 → 3 working days, in the timers panel.
    let sel = "#timers tr[data-key='step.decide.within'] input";
    d.keys(sel, &format!("{CONTROL}a{RELEASE}3{TAB}"));
    d.wait("the rewritten source", "return document.querySelector('textarea.source').value.includes('by dev within 3 workdays risk_point')");
    let changed = source();
    let diff: Vec<(&str, &str)> = original
        .lines()
        .zip(changed.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(original.lines().count(), changed.lines().count());
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert_eq!(
        diff[0].0.replace("within 2 workdays", "within 3 workdays"),
        diff[0].1
    );
    let comments = |s: &str| {
        s.lines()
            .filter(|l| l.trim_start().starts_with("//"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(comments(&changed), comments(&original));
    assert!(comments(&original).len() >= 3);
    d.wait(
        "a clean check",
        "return document.querySelector('#diag-summary')?.innerText.includes('✓')",
    );
    d.shot("03-timers-panel");

    // 5. Deploy, seeing the diff first.
    d.click("#deploy");
    let diff = d.text("#diff");
    assert!(
        diff.contains("- ")
            && diff.contains("within 2 workdays")
            && diff.contains("+ ")
            && diff.contains("within 3 workdays"),
        "{diff}"
    );
    d.shot("04-deploy-diff");
    d.click("#confirm-deploy");
    d.wait("version 2", "return [...document.querySelectorAll('#toast .msg')].some(m => m.innerText.includes('v2'))");
    let (_, v) = call(port, "GET", "/api/flows/parallel_approval", None, None).unwrap();
    assert_eq!(v["deployed_version"], 2, "{v}");
    assert!(
        v["source"]
            .as_str()
            .unwrap()
            .contains("within 3 workdays risk_point")
    );

    // 6. A clerk registers a case and accepts it.
    d.login(&base, "wangfang", pw);
    d.register(&base, "杭州甲科技有限公司");
    let case_no = d.wait("the case page", "return location.hash.startsWith('#/cases/33') && document.querySelector('#case-no')?.innerText").as_str().unwrap().to_string();
    d.wait(
        "the accept task",
        "return document.querySelector('.task[data-step=accept] button[data-action=pass]')",
    );
    d.click(".task[data-step=accept] button[data-action=pass]");
    d.wait(
        "three parallel reviews",
        "return document.querySelectorAll('.task').length === 3",
    );
    d.shot("05-case-accepted");
    // The applicant's ID number is masked; the window's clerk sees it in full
    // after giving a reason (audited).
    let masked = d.text("#personal");
    assert!(masked.contains("913***********XXX2"), "{masked}");
    d.keys("#reveal-reason", "核对申请人证照");
    d.click("button[data-action=reveal]");
    d.wait(
        "the ID number in full",
        "return document.querySelector('#personal').innerText.includes('91330100MA2XXXXXX2')",
    );

    // 7. The development reviewer: the work list, the case, their task; not planning's.
    d.login(&base, "zhaolei", pw);
    d.goto(&format!("{base}/#/cases"));
    let work = d.text(".worklist");
    assert!(
        work.contains(&case_no) && work.contains("发改审查") && !work.contains("规划审查"),
        "{work}"
    );
    d.goto(&format!("{base}/#/cases/{case_no}"));
    // Planning's task is shown without actions; a request forged from this
    // browser session (its cookie and CSRF token) is refused by the server.
    d.wait(
        "planning's task, read-only",
        "return document.querySelector('.task[data-step=planning_review]') && !document.querySelector('.task[data-step=planning_review] button')",
    );
    let refused = d.wait_async(&format!(
        "fetch('/api/cases/{case_no}/tasks/planning_review/complete', {{method: 'POST', credentials: 'same-origin', \
           headers: {{'Content-Type': 'application/json', 'X-CSRF-Token': sessionStorage.getItem('govflow.csrf')}}, \
           body: JSON.stringify({{by: {{name: '赵磊', department: 'planning'}}}})}}) \
         .then(r => r.json().then(j => done(r.status + ' ' + j.code)))"
    ));
    assert_eq!(refused, "403 auth.wrong_department");
    d.shot("06-other-department-read-only");
    // Claim the task (认领) first: the box says it is mine.
    d.click(".task[data-step=dev_review] button[data-action=claim]");
    d.wait(
        "the claim",
        "return document.querySelector('.task[data-step=dev_review] button[data-action=release]')",
    );
    d.keys(".task[data-step=dev_review] textarea", "符合产业政策");
    d.click(".task[data-step=dev_review] button[data-action=pass]");
    d.wait("dev_review done", "return document.querySelectorAll('.task').length === 2 && document.querySelector('#case-diagram g.node.done[data-id=dev_review]')");

    // 8. Planning completes its review.
    d.login(&base, "sunqiang", pw);
    d.goto(&format!("{base}/#/cases/{case_no}"));
    // A site inspection (实地核查, a B procedure) stops the clock, then ends.
    d.click(".task[data-step=planning_review] details.special summary");
    d.keys(
        ".task[data-step=planning_review] .special-reason",
        "核查用地红线",
    );
    d.click(".task[data-step=planning_review] button[data-action=start-special]");
    d.wait("the clock stopped", "return document.querySelector('tr[data-kind=实地核查] button[data-action=end-special]') && document.body.innerText.includes('挂起中')");
    d.shot("07a-special-procedure");
    d.click("tr[data-kind=实地核查] button[data-action=end-special]");
    d.wait("the procedure ended", "return document.querySelector('tr[data-kind=实地核查]') && !document.querySelector('button[data-action=end-special]')");
    d.click(".task[data-step=planning_review] button[data-action=pass]");
    d.wait("planning_review done", "return document.querySelectorAll('.task').length === 1 && document.querySelector('.task[data-step=env_review]')");
    let (_, ev) = call(
        port,
        "GET",
        &format!("/api/cases/{case_no}/events"),
        None,
        None,
    )
    .unwrap();
    let by: Vec<String> = ev["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "task_completed")
        .map(|e| {
            format!(
                "{}:{}",
                e["step"].as_str().unwrap(),
                e["by"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        by,
        ["accept:王芳", "dev_review:赵磊", "planning_review:孙强"]
    );
    d.shot("07-case-two-departments");

    // 9. A second case refused at the window raises a process card (不予受理).
    d.login(&base, "wangfang", pw);
    d.register(&base, "杭州乙贸易有限公司");
    d.wait("the second case", &format!("return location.hash.startsWith('#/cases/33') && !location.hash.includes('{case_no}') && document.querySelector('.task[data-step=accept]')"));
    d.click(".task[data-step=accept] button[data-action=refuse]");
    // Refusing asks first.
    d.cmd("POST", "/alert/accept", Some(json!({})));
    d.wait("the refusal", "return document.querySelectorAll('.task').length === 0 && document.body.innerText.includes('不予受理')");

    // 10. The supervisor sees it on the board.
    d.login(&base, "zhoujian", pw);
    d.goto(&format!("{base}/#/board"));
    d.wait(
        "the card",
        "return document.querySelector('#cards tr[data-rule=case_not_accepted]')",
    );
    let cell = d.text("#matrix td[data-class=process][data-level=notice]");
    assert_eq!(cell.trim(), "1");
    d.wait(
        "the charts",
        "return document.querySelectorAll('.chart svg rect').length >= 4",
    );
    // The supervisor issues a supervision order (督办单) for it: the card is
    // ordered and the order, addressed to the window, waits for its reply.
    d.click("#cards tr[data-rule=case_not_accepted] button");
    d.wait("the order", "return document.querySelector('#orders tbody tr a') && document.querySelector('#orders').innerText.includes('回复督办')");
    d.shot("08-board");

    // 11. English, then the calendar.
    d.click("#lang");
    d.wait(
        "English",
        "return document.querySelector('nav').innerText.includes('Board')",
    );
    d.goto(&format!("{base}/#/calendar"));
    d.wait(
        "the calendar",
        "return document.querySelectorAll('.month td.off').length > 5",
    );
    d.shot("09-calendar-en");
    d.click("#lang");

    // 12. Phone width: the work list and the case page fit the screen.
    d.login(&base, "qianmin", pw);
    d.size(390, 844);
    d.goto(&format!("{base}/#/cases"));
    d.find(".worklist");
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
    assert_eq!(
        d.js(fits, json!([])),
        json!(true),
        "the work list is wider than a phone"
    );
    d.shot("10-phone-worklist");
    d.goto(&format!("{base}/#/cases/{case_no}"));
    d.find("#case-diagram svg");
    assert_eq!(
        d.js(fits, json!([])),
        json!(true),
        "the case page is wider than a phone"
    );
    d.shot("11-phone-case");
}

/// The calendar at the end of its last official year: the banner for the
/// administrator, a provisional deadline marked on the case page, a bad file
/// refused with its lines, a TEST-ONLY year previewed with its changes marked
/// and deployed, and the case's deadline recomputed.
fn calendar_scenario(d: &Driver, db: &str) {
    use chrono::Datelike;
    d.prefix.replace(String::new());
    d.size(1440, 1000);
    let y = govflow_engine::calendar::Calendar::china()
        .covered_until()
        .year()
        + 1;
    let target = chrono::NaiveDate::from_ymd_opt(y - 1, 12, 28)
        .and_then(|d| d.and_hms_opt(10, 0, 0))
        .unwrap_or_default();
    let offset = (target - (chrono::Utc::now() + chrono::Duration::hours(8)).naive_utc())
        .num_seconds()
        .to_string();
    let port = free_port();
    let _server = Server::start(db, port, &[], &[("GOVFLOW_CLOCK_OFFSET", &offset)]);
    let base = format!("http://127.0.0.1:{port}");
    let (s, v) = call(
        port,
        "POST",
        "/api/cases",
        None,
        Some(&super::server::start_body()),
    )
    .unwrap();
    assert_eq!(s, 201, "{v}");
    let no = v["case_no"].as_str().unwrap_or_default().to_string();
    let (s, v) = call(
        port,
        "POST",
        &format!("/api/cases/{no}/tasks/accept/complete"),
        None,
        Some(&super::server::complete_body("window", Some("clerk"))),
    )
    .unwrap();
    assert_eq!(s, 200, "{v}");

    // The administrator logs in: the banner says the calendar ends in 3 days.
    d.goto(&format!("{base}/#/login"));
    d.js(
        "sessionStorage.clear(); localStorage.setItem('govflow.lang', 'zh')",
        json!([]),
    );
    d.goto(&format!("{base}/#/login"));
    d.wait(
        "the login form",
        "return document.querySelector('#login-token')",
    );
    d.keys("#login-token", &format!("{}{ENTER}", super::server::TOKEN));
    d.wait(
        "the administrator",
        "return document.querySelector('#user')?.innerText.includes('(admin)')",
    );
    d.goto(&format!("{base}/#/cases/{no}"));
    let banner = d.wait(
        "the coverage banner",
        "const b = document.querySelector('#banner'); return b && !b.hidden && b.innerText",
    );
    assert!(
        banner
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{}-12-31", y - 1)),
        "{banner}"
    );
    // The statutory deadline is marked provisional, with its explanation.
    let mark = d.wait(
        "the provisional mark",
        "const p = document.querySelector('.fact .pill.provisional'); return p && p.getAttribute('title')",
    );
    assert!(
        mark.as_str().unwrap_or_default().contains("临时计算"),
        "{mark}"
    );
    d.shot("12-case-provisional");

    // The calendar page: next year follows the provisional rule.
    d.goto(&format!("{base}/#/calendar"));
    d.find("#cal-import");
    d.js(&format!("const s = document.querySelector('#cal-year'); s.value = '{y}'; s.dispatchEvent(new Event('change'))"), json!([]));
    d.wait(
        "the provisional holidays",
        "return document.querySelectorAll('.month td.off.provisional').length >= 13 && document.querySelector('.provisional-note')",
    );
    d.shot("13-calendar-provisional");

    // A malformed file: every problem with its line; nothing changes.
    let set_text = |text: &str| {
        d.js(
            "const t = document.querySelector('#cal-text'); t.value = arguments[0]; t.dispatchEvent(new Event('input'))",
            json!([text]),
        );
    };
    set_text(&format!(
        "year {y}\n{y}-01-01 off 元旦\n{}-12-31 off 跨年\n{y}-01-01 off 重复\n",
        y - 1
    ));
    d.click("#cal-preview-btn");
    let problems = d.wait(
        "the problems",
        "const l = document.querySelectorAll('#cal-problems li'); return l.length === 2 && [...l].map((x) => x.innerText).join('\\n')",
    );
    let problems = problems.as_str().unwrap_or_default().to_string();
    assert!(
        problems.contains("3:1") && problems.contains("calendar::not_in_year"),
        "{problems}"
    );
    assert!(
        problems.contains("4:1") && problems.contains("重复列出"),
        "{problems}"
    );
    d.js(
        "document.querySelector('#cal-import').scrollIntoView()",
        json!([]),
    );
    d.shot("14-calendar-problems");

    // A TEST-ONLY year: preview marks its changes, then deploy.
    let fixture = super::calendar::test_only_year(y);
    set_text(&fixture);
    d.click("#cal-preview-btn");
    let summary = d.wait(
        "the preview",
        "return document.querySelectorAll('.month td.changed').length > 0 && document.querySelector('#cal-summary')?.innerText",
    );
    assert!(
        summary.as_str().unwrap_or_default().contains("临时规则"),
        "{summary}"
    );
    d.js(
        "document.querySelector('#cal-summary').scrollIntoView()",
        json!([]),
    );
    d.shot("15-calendar-preview");
    d.click("#cal-deploy");
    d.wait(
        "the new coverage",
        &format!("return document.querySelector('#cal-coverage')?.innerText.includes('{y}-12-31')"),
    );
    d.wait(
        "no banner",
        "return document.querySelector('#banner').hidden",
    );
    d.shot("16-calendar-deployed");

    // The case's deadline was recomputed: no provisional mark any more.
    d.goto(&format!("{base}/#/cases/{no}"));
    d.find(".fact");
    let t0 = Instant::now();
    while d.js(
        "return document.querySelector('.fact .pill.provisional') !== null",
        json!([]),
    ) == json!(true)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the deadline stays provisional"
        );
        std::thread::sleep(Duration::from_millis(300));
        d.js("route()", json!([]));
        d.find(".fact");
    }
    let timeline = d.text(".timeline");
    assert!(timeline.contains("按新日历重算时限"), "{timeline}");
    d.shot("17-case-recomputed");
}

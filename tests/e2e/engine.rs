//! The engine through the binary: calendar arithmetic, scenarios and their
//! snapshots.

use super::support::{govflow, temp_dir};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn calendar_add_and_diff() {
    let o = govflow(&["calendar", "add", "2025-09-26", "20", "workdays"]);
    assert_eq!(stdout(&o), "2025-10-30\n");
    let o = govflow(&["calendar", "diff", "2025-09-26", "2025-10-30"]);
    assert_eq!(stdout(&o), "20\n");
    // 2025-09-26 + 5 calendar days is 10-01, a holiday: the period ends on 10-09.
    let o = govflow(&["calendar", "add", "2025-09-26", "5", "days"]);
    assert_eq!(stdout(&o), "2025-10-09\n");
    // Past the official years (2026): provisional, and said so — never an error, never silent.
    let o = govflow(&["calendar", "add", "2026-12-20", "20", "workdays"]);
    assert_eq!(stdout(&o), "2027-01-18\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("临时（provisional）"), "{err}");
    // 春节 2027 under the provisional rule: 除夕 02-05 to 初三 02-08 off.
    let o = govflow(&["calendar", "add", "2027-02-04", "1", "workdays"]);
    assert_eq!(stdout(&o), "2027-02-09\n");
    // A region file changes single days.
    let dir = temp_dir("calendar");
    let file = dir.join("region.txt");
    std::fs::write(
        &file,
        "covers 2025-10-01 2025-10-31\noff 2025-10-30 地方节日\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let o = govflow(&[
        "calendar",
        "add",
        "2025-09-26",
        "20",
        "workdays",
        "--calendar",
        &f,
    ]);
    assert_eq!(
        stdout(&o),
        "2025-10-31\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// TEST-ONLY fixture: NOT the official 2027 arrangement (which the State
/// Council has not published as these tests are written). It differs from the
/// provisional rule on purpose so that recomputation moves deadlines.
pub const TEST_ONLY_2027: &str = "# TEST-ONLY fixture, not the official 2027 arrangement\nyear 2027\n2027-01-01 off 元旦\n2027-01-02 off 元旦\n2027-01-03 off 元旦\n2027-01-04 off 元旦（测试）\n2027-02-05 off 春节\n2027-02-06 off 春节\n2027-02-07 off 春节\n2027-02-08 off 春节\n2027-02-09 off 春节\n2027-02-10 off 春节\n2027-02-11 off 春节\n2027-02-12 off 春节（测试）\n2027-02-20 work 春节调休（测试）\n2027-04-05 off 清明节\n2027-05-01 off 劳动节\n2027-05-02 off 劳动节\n2027-06-09 off 端午节\n2027-09-15 off 中秋节\n2027-10-01 off 国庆节\n2027-10-02 off 国庆节\n2027-10-03 off 国庆节\n";

#[test]
fn calendar_import_checks_a_year_and_lists_its_changes() {
    let dir = temp_dir("calendar-import");
    let good = dir.join("2027.txt");
    std::fs::write(&good, TEST_ONLY_2027).unwrap();
    let o = govflow(&["calendar", "import", &good.display().to_string()]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // 261 weekdays, off: 01-01, 01-04, 02-05, 02-08..02-12, 04-05, 06-09, 09-15, 10-01
    // (12 weekdays); +1 make-up day.
    assert!(out.contains("工作日 250 天"), "{out}");
    assert!(out.contains("replaces the provisional rule"), "{out}");
    assert!(out.contains("2027-01-04 周一 班→休"), "{out}");
    assert!(out.contains("2027-02-20 周六 休→班"), "{out}");
    // A malformed file: every problem with file:line:column and a hint; exit 1.
    let bad = dir.join("bad.txt");
    std::fs::write(
        &bad,
        "year 2027\n2027-01-01 off 元旦\n2028-01-01 off 元旦\n2027-01-01 off 重复\n2027-02-08 work 周一\n",
    )
    .unwrap();
    let o = govflow(&["calendar", "import", &bad.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in [
        "calendar::not_in_year",
        "bad.txt:3:1",
        "calendar::duplicate",
        "bad.txt:4:1",
        "calendar::workday_not_weekend",
        "bad.txt:5:1",
        "调休上班日只能是周六或周日",
        "3 个问题，未作任何更改",
    ] {
        assert!(err.contains(needle), "{needle} missing in:\n{err}");
    }
    // A national year without its statutory holidays is refused, with the days named.
    let thin = dir.join("thin.txt");
    std::fs::write(&thin, "year 2027\n2027-01-01 off 元旦\n").unwrap();
    let o = govflow(&["calendar", "import", &thin.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("calendar::holiday_missing") && err.contains("2027-02-08 春节"),
        "{err}"
    );
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{\"year\": 2027, \"days\": []}").unwrap();
    let o = govflow(&["calendar", "import", &empty.display().to_string()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("calendar::empty_year"));
    // Deploying needs a database, and a deployed year is in force there.
    let o = govflow(&[
        "calendar",
        "import",
        &good.display().to_string(),
        "--deploy",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let db = format!("sqlite://{}", dir.join("cal.db").display());
    // The database must exist: `serve` creates it; here an import against a fresh file is refused.
    let o = govflow(&["calendar", "status", "--db", &db]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let o = govflow(&["calendar", "status"]);
    let out = stdout(&o);
    assert!(out.contains("covered until / 覆盖至: 2026-12-31"), "{out}");
}

#[test]
fn shipped_scenarios_match_their_snapshots() {
    let o = govflow(&["test", "flows", "docs/tutorial", "rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("0 failed"), "{err}");
}

#[test]
fn run_prints_the_trace_and_a_changed_trace_fails_with_a_diff() {
    let o = govflow(&[
        "run",
        "flows/reference/parallel_approval.flow",
        "--scenario",
        "flows/reference/parallel_approval.granted.scenario.yaml",
    ]);
    let trace = stdout(&o);
    assert!(
        trace.contains("statutory: due 2025-10-30, 20 working days left"),
        "{trace}"
    );
    assert!(trace.contains("result: 准予许可"), "{trace}");

    let dir = temp_dir("scenario-diff");
    std::fs::copy(
        "flows/reference/parallel_approval.flow",
        dir.join("parallel_approval.flow"),
    )
    .unwrap();
    let sc =
        std::fs::read_to_string("flows/reference/parallel_approval.granted.scenario.yaml").unwrap();
    std::fs::write(dir.join("parallel_approval.granted.scenario.yaml"), &sc).unwrap();
    let d = dir.display().to_string();
    // No snapshot yet: fails and writes .snap.new; --accept writes it.
    assert_eq!(govflow(&["test", &d]).status.code(), Some(1));
    assert_eq!(govflow(&["test", "--accept", &d]).status.code(), Some(0));
    assert_eq!(govflow(&["test", &d]).status.code(), Some(0));
    // Change the scenario: one day later → a readable diff.
    std::fs::write(
        dir.join("parallel_approval.granted.scenario.yaml"),
        sc.replace("advance: 1 workday", "advance: 2 workdays"),
    )
    .unwrap();
    let o = govflow(&["test", &d]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("-- at: 2025-09-30 10:00") && err.contains("+- at: 2025-10-09 10:00"),
        "{err}"
    );
}

#[test]
fn a_refused_command_names_what_was_expected() {
    let dir = temp_dir("refused");
    std::fs::copy(
        "flows/reference/parallel_approval.flow",
        dir.join("parallel_approval.flow"),
    )
    .unwrap();
    std::fs::write(
        dir.join("parallel_approval.bad.scenario.yaml"),
        "start:\n  at: 2025-09-26 09:00\n  applicant: {name: 某公司, id_kind: credit_code, id_number: 91110000600037341L}\n  materials: [application, project_doc, land_doc]\nactions:\n  - complete: accept\n    by: 张三 @ env\nexpect:\n  status: completed\n",
    )
    .unwrap();
    let f = dir
        .join("parallel_approval.bad.scenario.yaml")
        .display()
        .to_string();
    let flow = dir.join("parallel_approval.flow").display().to_string();
    let o = govflow(&["run", &flow, "--scenario", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("bad.scenario.yaml:6:"), "{err}");
    assert!(err.contains("assigned to window.clerk"), "{err}");
    // An invalid credit code is refused with the expected check character.
    std::fs::write(
        dir.join("parallel_approval.bad.scenario.yaml"),
        "start:\n  at: 2025-09-26 09:00\n  applicant: {name: 某公司, id_kind: credit_code, id_number: 91110000600037341X}\nexpect:\n  status: applied\n",
    )
    .unwrap();
    let o = govflow(&["run", &flow, "--scenario", &f]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("first 17 characters give `L`"), "{err}");
}

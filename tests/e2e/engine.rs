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
    let o = govflow(&["calendar", "add", "2026-12-20", "20", "workdays"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("falls after 2026-12-31"));
    // A region file extends the range.
    let dir = temp_dir("calendar");
    let file = dir.join("2027.txt");
    std::fs::write(&file, "covers 2027-01-01 2027-02-28\noff 2027-01-01 元旦\n").unwrap();
    let f = file.display().to_string();
    let o = govflow(&[
        "calendar",
        "add",
        "2026-12-20",
        "20",
        "workdays",
        "--calendar",
        &f,
    ]);
    assert_eq!(
        stdout(&o),
        "2027-01-18\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
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
        err.contains("-  do: complete decide") || err.contains("+- at: \"2025-10-09"),
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

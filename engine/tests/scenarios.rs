//! The scenario runner as a library: every `*.scenario.yaml` under
//! engine/tests/scenarios (joint review rounds, n-of-m and any joins, waits,
//! sub-cases) must match its snapshot. `GOVFLOW_ACCEPT=1` rewrites them.

use govflow_engine::calendar::Calendar;
use govflow_engine::testing::scenario::{Checked, check_file, scenario_files};
use std::path::PathBuf;

#[test]
fn engine_scenarios_match_their_snapshots() {
    // Paths relative to the workspace root, as the snapshots' `source:` lines
    // are written (`GOVFLOW_ACCEPT=1` keeps them so).
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if std::env::set_current_dir(&root).is_err() {
        panic!("cannot enter {}", root.display());
    }
    let dir = PathBuf::from("engine/tests/scenarios");
    let cal = Calendar::china();
    let accept = std::env::var("GOVFLOW_ACCEPT").is_ok_and(|v| v == "1");
    let files = scenario_files(&[dir]);
    assert!(!files.is_empty(), "no scenarios found");
    let mut failures = Vec::new();
    for f in &files {
        match check_file(f, &cal, accept) {
            Checked::Matches => {}
            Checked::New { accepted: true } | Checked::Differs { accepted: true, .. } => {}
            Checked::New { accepted: false } => failures.push(format!(
                "{}: no snapshot yet (run with GOVFLOW_ACCEPT=1)",
                f.display()
            )),
            Checked::Differs { diff, .. } => failures.push(format!("{}:\n{diff}", f.display())),
            Checked::Failed(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

//! Everything shipped under flows/ checks clean, round-trips between the
//! syntaxes with identical IR, and is in canonical layout.

use super::fixtures::round_trip;
use super::support::{flow_files, govflow, rel, root};

#[test]
fn shipped_flows_round_trip() {
    let files = flow_files(&root().join("flows"));
    assert!(
        files.len() >= 4,
        "expected the starter flows, found {}",
        files.len()
    );
    for f in files {
        let loaded = govflow_dsl::load_path(&f);
        round_trip(&loaded, &rel(&f));
    }
}

#[test]
fn check_flows_exits_zero() {
    let out = govflow(&["check", "flows/"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 errors"), "{stderr}");
}

#[test]
fn shipped_flows_are_formatted() {
    let out = govflow(&["fmt", "--check", "flows/"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn both_syntaxes_are_represented() {
    let files = flow_files(&root().join("flows"));
    assert!(files.iter().any(|f| rel(f).ends_with(".flow")));
    assert!(files.iter().any(|f| rel(f).ends_with(".flow.yaml")));
}

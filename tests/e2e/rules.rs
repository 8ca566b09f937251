//! Supervision rule files through `govflow check`: the shipped rules check
//! clean; a broken file gets every diagnostic with its line and column.

use super::support::govflow;

#[test]
fn shipped_rules_check_clean() {
    let o = govflow(&["check", "rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(": 0 errors, 0 warnings"), "{err}");
}

#[test]
fn a_broken_rule_file_gets_every_diagnostic() {
    let o = govflow(&[
        "check",
        "tests/fixtures/rules/broken.rules",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let diags: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let got: Vec<(String, u64, u64)> = diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("rule::invalid_value".to_string(), 3, 9),
            ("rule::missing_key".to_string(), 8, 8),
            ("rule::unknown_fact".to_string(), 8, 8),
            ("rule::duplicate_id".to_string(), 10, 6),
        ]
    );
    let o = govflow(&["check", "tests/fixtures/rules/broken.rules"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did you mean `timeliness`?"), "{err}");
    assert!(err.contains("did you mean `step`?"), "{err}");
}

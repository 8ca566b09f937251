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

#[test]
fn a_broken_efficiency_scheme_is_located() {
    let dir = super::support::temp_dir("efficiency");
    let f = dir.join("efficiency.yaml");
    std::fs::write(
        &f,
        "grades: { 优秀: 90, 良好: 75, 合格: 60 }\nindicators:\n  - id: on_time\n    formula: 40.0 - overdue_ratio * 80.0\n    range: [0, 40]\n",
    )
    .unwrap();
    let path = f.display().to_string();
    let o = govflow(&["check", &path]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("{path}:4:14")), "{err}");
    assert!(err.contains("unknown figure `overdue_ratio`"), "{err}");
    // The shipped scheme checks clean (it is part of `govflow check rules`).
    let o = govflow(&["check", "rules/efficiency.yaml"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

//! The `govflow` binary: exit codes, JSON output, IR identity, graphs, and
//! broken input that must never crash it.

use super::support::{govflow, temp_dir};
use std::collections::BTreeSet;

const FIVE_DSL: &str = "tests/fixtures/invalid/five_problems.flow";
const FIVE_YAML: &str = "tests/fixtures/invalid/five_problems.flow.yaml";

fn json_diagnostics(path: &str) -> Vec<serde_json::Value> {
    let out = govflow(&["check", "--format", "json", path]);
    assert_eq!(out.status.code(), Some(1), "{path} must fail the check");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("bad JSON from check: {e}"));
    v.as_array().cloned().unwrap_or_default()
}

fn code_lines(diags: &[serde_json::Value]) -> BTreeSet<(String, u64)> {
    diags
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or_default().to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[test]
fn five_problems_in_one_run_dsl() {
    let diags = json_diagnostics(FIVE_DSL);
    let got = code_lines(&diags);
    let want: BTreeSet<(String, u64)> = [
        ("flow::unknown_step", 12),
        ("flow::branch_escapes_parallel", 17),
        ("flow::decision_without_default", 21),
        ("flow::visit_bound_exceeded", 24),
        ("flow::duplicate_id", 25),
    ]
    .into_iter()
    .map(|(c, l)| (c.to_string(), l))
    .collect();
    assert_eq!(got, want);
    for d in &diags {
        for key in [
            "file",
            "line",
            "column",
            "end_line",
            "end_column",
            "severity",
            "code",
            "message",
            "help",
        ] {
            assert!(d.get(key).is_some(), "missing {key} in {d}");
        }
    }
    // The unknown reference points exactly at `acept`.
    let unknown = diags
        .iter()
        .find(|d| d["code"] == "flow::unknown_step")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (unknown["column"].as_u64(), unknown["end_column"].as_u64()),
        (Some(19), Some(24))
    );
    assert_eq!(unknown["help"], "did you mean `accept`?");
}

#[test]
fn five_problems_in_one_run_yaml() {
    let diags = json_diagnostics(FIVE_YAML);
    let codes: BTreeSet<String> = diags
        .iter()
        .filter_map(|d| d["code"].as_str().map(String::from))
        .collect();
    for c in [
        "flow::unknown_step",
        "flow::branch_escapes_parallel",
        "flow::decision_without_default",
        "flow::visit_bound_exceeded",
        "flow::duplicate_id",
    ] {
        assert!(codes.contains(c), "{c} missing from {codes:?}");
    }
}

#[test]
fn human_report_names_file_line_and_column() {
    let out = govflow(&["check", FIVE_DSL]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("[{FIVE_DSL}:12:19]")), "{stderr}");
    assert!(stderr.contains("help: did you mean `accept`?"), "{stderr}");
    assert!(stderr.contains("checked 1 file: 5 errors"), "{stderr}");
}

#[test]
fn ir_is_identical_for_both_syntaxes() {
    let dir = temp_dir("ir");
    let yaml = dir.join("reference.flow.yaml");
    let out = govflow(&[
        "fmt",
        "--to",
        "yaml",
        "flows/reference/parallel_approval.flow",
    ]);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(&yaml, &out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let a = govflow(&["ir", "flows/reference/parallel_approval.flow"]);
    let b = govflow(&["ir", &yaml.display().to_string()]);
    assert_eq!(a.status.code(), Some(0));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout, "IR differs between DSL and YAML");
}

#[test]
fn graph_renders_svg_and_dot() {
    let svg = govflow(&["graph", "flows/reference/parallel_approval.flow"]);
    assert_eq!(svg.status.code(), Some(0));
    let s = String::from_utf8_lossy(&svg.stdout);
    assert!(s.starts_with("<svg"), "{s}");
    assert!(
        s.contains("并联审查") && s.contains("到现场") && s.contains("风险点"),
        "labels, visit and risk badges"
    );
    let dot = govflow(&[
        "graph",
        "--format",
        "dot",
        "flows/reference/parallel_approval.flow",
    ]);
    let d = String::from_utf8_lossy(&dot.stdout);
    assert!(d.starts_with("digraph") && d.contains("cluster_0"), "{d}");
}

#[test]
fn missing_path_is_a_usage_error() {
    let out = govflow(&["check", "no/such/file.flow"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Truncated, binary and random input gives diagnostics, never a panic.
#[test]
fn broken_input_never_crashes() {
    let dir = temp_dir("broken");
    let mut seeds: Vec<(String, Vec<u8>)> = Vec::new();
    for f in super::support::flow_files(&super::support::root().join("flows"))
        .into_iter()
        .chain(super::support::flow_files(
            &super::support::root().join("tests/fixtures"),
        ))
    {
        let bytes = std::fs::read(&f).unwrap_or_default();
        let ext = if f.display().to_string().ends_with(".yaml") {
            "flow.yaml"
        } else {
            "flow"
        };
        seeds.push((ext.to_string(), bytes));
    }
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut n = 0;
    for (ext, bytes) in &seeds {
        for _ in 0..4 {
            let cut = if bytes.is_empty() {
                0
            } else {
                (next() as usize) % bytes.len()
            };
            let mut b = bytes[..cut].to_vec();
            if next() % 2 == 0 && !b.is_empty() {
                let i = (next() as usize) % b.len();
                b[i] = (next() & 0xff) as u8;
            }
            std::fs::write(dir.join(format!("t{n}.{ext}")), &b).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    for i in 0..40 {
        let len = (next() % 400) as usize;
        let b: Vec<u8> = (0..len).map(|_| (next() & 0xff) as u8).collect();
        let ext = if i % 2 == 0 { "flow" } else { "flow.yaml" };
        std::fs::write(dir.join(format!("r{i}.{ext}")), &b).unwrap_or_else(|e| panic!("{e}"));
    }
    let d = dir.display().to_string();
    let human = govflow(&["check", &d]);
    assert_eq!(
        human.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    let json = govflow(&["check", "--format", "json", &d]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("bad JSON: {e}"));
    assert!(v.as_array().is_some_and(|a| !a.is_empty()));
    for sub in ["fmt", "ir", "graph"] {
        let args: Vec<String> = if sub == "fmt" {
            vec!["fmt".into(), "--check".into(), d.clone()]
        } else {
            vec![sub.into(), dir.join("t0.flow").display().to_string()]
        };
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let _ = govflow(&a);
    }
}

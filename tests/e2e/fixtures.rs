//! The fixture corpus: every invalid file's diagnostics are snapshotted (human
//! and JSON form); every valid file checks clean and round-trips.

use super::support::{flow_files, rel, root};
use govflow_dsl::{Code, Syntax};
use std::collections::BTreeSet;

fn load(path: &std::path::Path) -> govflow_dsl::Loaded {
    let name = rel(path);
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => govflow_dsl::load(
                &name,
                &text,
                Syntax::from_path(&name).unwrap_or(Syntax::Yaml),
            ),
            // Cargo runs tests from the package root, so the relative name resolves.
            Err(_) => govflow_dsl::load_path(std::path::Path::new(&name)),
        },
        Err(e) => panic!("cannot read {name}: {e}"),
    }
}

#[test]
fn invalid_fixtures_snapshot() {
    insta::glob!("../fixtures/invalid", "*.flow*", |path| {
        let loaded = load(path);
        assert!(
            loaded.has_errors() || !loaded.report.diagnostics.is_empty(),
            "{} should produce diagnostics",
            rel(path)
        );
        let json = serde_json::to_string_pretty(&loaded.report.to_json()).unwrap_or_default();
        let human = loaded.report.render(false);
        insta::assert_snapshot!(format!("{human}\n--- json ---\n{json}\n"));
    });
}

/// Every diagnostic code appears in the invalid corpus, in both syntaxes.
#[test]
fn every_code_is_covered_in_both_syntaxes() {
    let mut seen: BTreeSet<(&'static str, bool)> = BTreeSet::new();
    let files = flow_files(&root().join("tests/fixtures/invalid"));
    assert!(files.len() >= 40, "only {} invalid fixtures", files.len());
    for f in &files {
        let yaml = rel(f).ends_with(".yaml");
        for d in load(f).report.diagnostics {
            seen.insert((d.code.as_str(), yaml));
        }
    }
    let missing: Vec<String> = Code::ALL
        .iter()
        .filter(|c| c.as_str().starts_with("flow::"))
        .flat_map(|c| [(c.as_str(), false), (c.as_str(), true)])
        .filter(|k| !seen.contains(k))
        .map(|(c, y)| format!("{c} ({})", if y { "yaml" } else { "dsl" }))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}

#[test]
fn valid_fixtures_check_clean_and_round_trip() {
    let files = flow_files(&root().join("tests/fixtures/valid"));
    assert!(!files.is_empty());
    for f in files {
        round_trip(&load(&f), &rel(&f));
    }
}

/// Checks a loaded flow: no errors; printing it in either syntax and loading
/// the result gives the same IR; printing is idempotent.
pub fn round_trip(loaded: &govflow_dsl::Loaded, name: &str) {
    assert!(
        !loaded.has_errors(),
        "{name} has errors:\n{}",
        loaded.report.render(false)
    );
    let Some(flow) = &loaded.flow else {
        panic!("{name}: no IR")
    };
    let ir = flow.to_canonical_json();
    for syntax in [Syntax::Dsl, Syntax::Yaml] {
        let text = govflow_dsl::fmt::print(flow, syntax, &loaded.report.file);
        let ext = if syntax == Syntax::Dsl {
            "flow"
        } else {
            "flow.yaml"
        };
        let again = govflow_dsl::load(&format!("{name}.printed.{ext}"), &text, syntax);
        assert!(
            !again.has_errors(),
            "{name} printed as {ext} has errors:\n{}\n{text}",
            again.report.render(false)
        );
        let Some(f2) = &again.flow else {
            panic!("no IR")
        };
        assert_eq!(f2, flow, "{name}: IR changed through {ext}");
        assert_eq!(
            f2.to_canonical_json(),
            ir,
            "{name}: canonical JSON changed through {ext}"
        );
        let twice = govflow_dsl::fmt::print(f2, syntax, &again.report.file);
        assert_eq!(twice, text, "{name}: printing as {ext} is not idempotent");
    }
}

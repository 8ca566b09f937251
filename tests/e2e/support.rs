//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml of the `govflow` package is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the real `govflow` binary from the repository root.
pub fn govflow(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_govflow"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run govflow: {e}"));
    let code = out.status.code();
    assert_ne!(
        code,
        Some(101),
        "govflow {args:?} panicked:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        code.is_some(),
        "govflow {args:?} was killed by a signal (crash)"
    );
    out
}

/// A fresh, empty temporary folder for one test.
/// A PostgreSQL schema name no earlier run used: `gf_<what>_<pid>_<millis>`.
pub fn pg_schema(what: &str) -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("gf_{what}_{}_{millis}", std::process::id())
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("govflow-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// Path relative to the repository root, with `/` separators.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
        .replace('\\', "/")
}

/// Every flow file under a folder (recursive, sorted).
pub fn flow_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if p.is_dir() {
                if name != "snapshots" {
                    stack.push(p);
                }
            } else if name.ends_with(".flow") || name.ends_with(".flow.yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

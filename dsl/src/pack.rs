//! Process packs: a folder of flow (and, later, rule) files with a manifest,
//! `pack.yaml`, deployed as one unit.
//!
//! ```yaml
//! pack: food                      # id
//! name: 食品经营许可
//! department: 区市场监督管理局
//! version: 1.2.0
//! description: …                  # optional
//! flows: [food_business_license.flow]
//! rules: []                       # optional
//! ```
//!
//! A pack is valid when its manifest is and every file it lists loads
//! without errors; flow ids are unique within it.

use crate::diag::{Code, Diagnostic, Report};
use crate::node::Node;
use crate::span::{SourceFile, Span};
use crate::{Loaded, Syntax};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const MANIFEST: &str = "pack.yaml";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Manifest {
    pub id: String,
    pub name: String,
    pub department: String,
    pub version: String,
    pub description: Option<String>,
    pub flows: Vec<String>,
    pub rules: Vec<String>,
}

/// A loaded pack: the manifest (when it could be read), its report, and each
/// listed flow file loaded.
#[derive(Clone, Debug)]
pub struct PackLoaded {
    pub manifest: Option<Manifest>,
    pub report: Report,
    /// (file name as listed, its text, what loading it gave)
    pub flows: Vec<(String, String, Loaded)>,
}

impl PackLoaded {
    pub fn has_errors(&self) -> bool {
        self.report.has_errors() || self.flows.iter().any(|(_, _, l)| l.has_errors())
    }

    /// Every report: the manifest's, then each file's.
    pub fn reports(&self) -> Vec<&Report> {
        std::iter::once(&self.report)
            .chain(self.flows.iter().map(|(_, _, l)| &l.report))
            .collect()
    }
}

fn strings(n: &Node) -> Option<Vec<String>> {
    n.as_list()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Reads a manifest text; `files` maps the names the manifest may list to their
/// texts (a missing name is a `pack::missing_file`). `present` lists flow files
/// that exist in the pack but may be unlisted.
pub fn load_pack_texts(
    manifest_name: &str,
    manifest_text: &str,
    files: &BTreeMap<String, String>,
) -> PackLoaded {
    let file = SourceFile::new(manifest_name, manifest_text);
    let mut diags = Vec::new();
    let root = match crate::yaml::parse(manifest_text) {
        Ok(n) => n,
        Err(d) => {
            let d = Diagnostic::new(Code::PackSyntax, d.span, d.message).label("here");
            return PackLoaded {
                manifest: None,
                report: Report::new(file, vec![d]),
                flows: Vec::new(),
            };
        }
    };
    let known = [
        "pack",
        "name",
        "department",
        "version",
        "description",
        "flows",
        "rules",
    ];
    if let Some(entries) = root.as_map() {
        for e in entries {
            if !known.contains(&e.key.as_str()) {
                let mut d = Diagnostic::new(
                    Code::PackUnknownKey,
                    e.key_span,
                    format!("unknown manifest key `{}`", e.key),
                )
                .label("not a manifest key");
                if let Some(s) = crate::diag::did_you_mean(&e.key, known) {
                    d = d.help(format!("did you mean `{s}`?"));
                } else {
                    d = d.help(format!("a manifest takes: {}", known.join(", ")));
                }
                diags.push(d);
            }
        }
    } else {
        diags.push(
            Diagnostic::new(
                Code::PackInvalidValue,
                root.span,
                "a pack manifest is a map",
            )
            .help("write `pack: ID`, `name:`, `department:`, `version:` and `flows: [FILE, …]`"),
        );
    }
    let end = Span::new(manifest_text.len(), manifest_text.len());
    let mut text_key = |key: &str| -> Option<String> {
        match root.get(key) {
            Some(n) => match n.as_str() {
                Some(s) if !s.trim().is_empty() => Some(s.to_string()),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            Code::PackInvalidValue,
                            n.span,
                            format!("`{key}` must be a non-empty string, not {}", n.kind_name()),
                        )
                        .label("here"),
                    );
                    None
                }
            },
            None => {
                diags.push(
                    Diagnostic::new(
                        Code::PackMissingKey,
                        end,
                        format!("the manifest has no `{key}`"),
                    )
                    .help(format!("add `{key}: …`")),
                );
                None
            }
        }
    };
    let id = text_key("pack");
    let name = text_key("name");
    let department = text_key("department");
    let version = text_key("version");
    let description = root
        .get("description")
        .and_then(Node::as_str)
        .map(str::to_string);
    let list_key = |key: &str,
                    required: bool,
                    diags: &mut Vec<Diagnostic>|
     -> Vec<(String, Span)> {
        match root.get(key) {
            Some(n) => match (strings(n), n.as_list()) {
                (Some(v), Some(items)) => v.into_iter().zip(items.iter().map(|i| i.span)).collect(),
                _ => {
                    diags.push(
                        Diagnostic::new(
                            Code::PackInvalidValue,
                            n.span,
                            format!("`{key}` must be a list of file names"),
                        )
                        .label("here"),
                    );
                    Vec::new()
                }
            },
            None if required => {
                diags.push(
                    Diagnostic::new(
                        Code::PackMissingKey,
                        end,
                        format!("the manifest has no `{key}`"),
                    )
                    .help(format!("add `{key}: [FILE, …]`")),
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    };
    let flows = list_key("flows", true, &mut diags);
    let rules = list_key("rules", false, &mut diags);
    let mut loaded = Vec::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for (f, span) in &flows {
        let Some(text) = files.get(f) else {
            diags.push(
                Diagnostic::new(
                    Code::PackMissingFile,
                    *span,
                    format!("the pack lists `{f}`, which is not in it"),
                )
                .label("no such file")
                .help("add the file to the pack, or remove it from `flows`"),
            );
            continue;
        };
        let syntax = Syntax::from_path(f).unwrap_or(Syntax::Dsl);
        let l = crate::load(f, text, syntax);
        if let Some(flow) = &l.flow
            && let Some(other) = ids.insert(flow.id.clone(), f.clone())
        {
            diags.push(
                Diagnostic::new(
                    Code::PackDuplicateFlow,
                    *span,
                    format!("`{f}` and `{other}` both define flow `{}`", flow.id),
                )
                .label("second definition")
                .help("a flow id is unique within a pack"),
            );
        }
        loaded.push((f.clone(), text.clone(), l));
    }
    let listed: Vec<&String> = flows.iter().map(|(f, _)| f).collect();
    for name in files.keys() {
        let is_flow =
            name.ends_with(".flow") || name.ends_with(".flow.yaml") || name.ends_with(".flow.yml");
        if is_flow && !listed.contains(&name) {
            diags.push(
                Diagnostic::new(
                    Code::PackUnlistedFile,
                    root.get("flows").map_or(end, |n| n.span),
                    format!("`{name}` is in the pack folder but not in `flows`"),
                )
                .label("not listed here")
                .help("list it to deploy it with the pack, or move it out"),
            );
        }
    }
    let manifest = match (id, name, department, version) {
        (Some(id), Some(name), Some(department), Some(version)) => Some(Manifest {
            id,
            name,
            department,
            version,
            description,
            flows: flows.into_iter().map(|(f, _)| f).collect(),
            rules: rules.into_iter().map(|(f, _)| f).collect(),
        }),
        _ => None,
    };
    PackLoaded {
        manifest,
        report: Report::new(file, diags),
        flows: loaded,
    }
}

/// Loads the pack in `dir` (which holds `pack.yaml`). File names in the
/// reports are paths under `dir`.
pub fn load_pack_dir(dir: &Path) -> std::io::Result<PackLoaded> {
    let manifest_path = dir.join(MANIFEST);
    let manifest_text = std::fs::read_to_string(&manifest_path)?;
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        if p.is_file()
            && let Some(n) = p.file_name().and_then(|n| n.to_str())
            && (n.ends_with(".flow")
                || n.ends_with(".flow.yaml")
                || n.ends_with(".flow.yml")
                || n.ends_with(".rules")
                || n.ends_with(".rules.yaml"))
            && let Ok(text) = std::fs::read_to_string(&p)
        {
            files.insert(n.to_string(), text);
        }
    }
    let mut loaded = load_pack_texts(&manifest_path.display().to_string(), &manifest_text, &files);
    // Show paths, not bare names, in the flows' reports.
    for (name, _, l) in &mut loaded.flows {
        l.report.file.name = dir.join(&*name).display().to_string();
    }
    Ok(loaded)
}

/// Every folder under `root` (itself included) that holds a `pack.yaml`, sorted.
pub fn pack_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        if d.join(MANIFEST).is_file() {
            out.push(d.clone());
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if p.is_dir() && !name.starts_with('.') && name != "snapshots" && name != "target" {
                    stack.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

//! The keys each part of a flow accepts, shared by the DSL reader (which needs
//! their arity to read atoms) and the lowering (which reports unknown keys).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// A bare keyword meaning `true`.
    Flag,
    /// One word, number or string.
    One,
    /// `N unit`.
    Limit,
    /// `[a, b]` or a single value.
    List,
    /// `{ … }`.
    Block,
    /// One value or a block (`fee none` / `fee { … }`).
    OneOrBlock,
    /// `all`, `any` or `N of M`.
    Join,
    /// A step id or `end ID "name"`.
    Target,
}

pub type Keys = &'static [(&'static str, Arity)];

pub const FLOW_KEYS: Keys = &[
    ("flow", Arity::One),
    ("name", Arity::One),
    ("version", Arity::One),
    ("item", Arity::Block),
    ("departments", Arity::Block),
    ("materials", Arity::Block),
    ("steps", Arity::Block),
];

/// Item elements; the free-text ones are lowered into `Item::text`.
pub const ITEM_KEYS: Keys = &[
    ("basic_code", Arity::One),
    ("impl_code", Arity::One),
    ("type", Arity::One),
    ("statutory", Arity::Limit),
    ("promised", Arity::Limit),
    ("correction_within", Arity::Limit),
    ("kind", Arity::One),
    ("mode", Arity::One),
    ("fee", Arity::OneOrBlock),
    ("served", Arity::List),
    ("scope", Arity::One),
    ("version", Arity::One),
    ("status", Arity::One),
    ("level", Arity::One),
    ("body_nature", Arity::One),
    ("change_type", Arity::One),
    ("running_system", Arity::One),
    ("appointment", Arity::One),
    ("correction_on_site", Arity::One),
    ("online_payment", Arity::One),
    ("delivery", Arity::One),
    ("co_handling", Arity::List),
    ("stops_statutory", Arity::List),
    ("stops_statutory_basis", Arity::One),
    ("stops_promised", Arity::List),
    ("legal_basis", Arity::One),
    ("authority_division", Arity::One),
    ("content", Arity::One),
    ("body", Arity::One),
    ("acceptance_conditions", Arity::One),
    ("intermediary", Arity::One),
    ("quantity_limit", Arity::One),
    ("result_name", Arity::One),
    ("result_sample", Arity::One),
    ("address", Arity::One),
    ("hours", Arity::One),
    ("phone", Arity::One),
    ("faq", Arity::One),
    ("supervision_phone", Arity::One),
    ("internal_process", Arity::One),
    ("effective_from", Arity::One),
];

/// Free-text item elements (kept verbatim in `Item::text`).
pub const ITEM_TEXT_KEYS: &[&str] = &[
    "legal_basis",
    "authority_division",
    "content",
    "body",
    "acceptance_conditions",
    "intermediary",
    "quantity_limit",
    "result_name",
    "result_sample",
    "address",
    "hours",
    "phone",
    "faq",
    "supervision_phone",
    "internal_process",
    "effective_from",
];

pub const FEE_KEYS: Keys = &[
    ("charged", Arity::One),
    ("standard", Arity::One),
    ("basis", Arity::One),
];

pub const DEPARTMENT_KEYS: Keys = &[
    ("name", Arity::One),
    ("roles", Arity::Block),
    ("from", Arity::One),
];

pub const MATERIAL_KEYS: Keys = &[
    ("name", Arity::One),
    ("required", Arity::Flag),
    ("optional", Arity::Flag),
    ("deferrable", Arity::Flag),
    ("source", Arity::One),
    ("paper", Arity::Flag),
    ("electronic", Arity::Flag),
    ("trust", Arity::List),
];

pub const STEP_KINDS: &[&str] = &[
    "task",
    "auto",
    "decision",
    "parallel",
    "joint_review",
    "subflow",
    "wait",
    "end",
];

/// Keys a step may carry (besides its kind key). Which ones apply to which
/// kind is checked by the lowering.
pub const STEP_KEYS: Keys = &[
    ("name", Arity::One),
    ("by", Arity::One),
    ("within", Arity::Limit),
    ("visit", Arity::Flag),
    ("risk_point", Arity::Flag),
    ("starts_clock", Arity::Flag),
    ("decides", Arity::Flag),
    ("special", Arity::List),
    ("next", Arity::Target),
    ("materials", Arity::List),
    ("lead", Arity::One),
    ("join", Arity::Join),
    ("reports", Arity::List),
    ("items", Arity::List),
    ("pauses_for", Arity::List),
    ("pauses_for_basis", Arity::One),
    ("for", Arity::Limit),
    ("event", Arity::One),
    ("resubmit_within", Arity::Limit),
    ("result", Arity::One),
    ("consolidate", Arity::Block),
    // Written as statements in the DSL, as keys in YAML.
    ("on", Arity::Block),
    ("when", Arity::Block),
    ("else", Arity::Target),
    ("set", Arity::Block),
    ("branches", Arity::Block),
    ("reviews", Arity::Block),
];

pub const CONSOLIDATE_KEYS: Keys = &[("by", Arity::One), ("within", Arity::Limit)];

pub const BRANCH_KEYS: Keys = &[("name", Arity::One), ("steps", Arity::Block)];

pub fn arity(keys: Keys, key: &str) -> Option<Arity> {
    keys.iter().find(|(k, _)| *k == key).map(|(_, a)| *a)
}

pub fn names(keys: Keys) -> impl Iterator<Item = &'static str> {
    keys.iter().map(|(k, _)| *k)
}

/// The words the studio's editor highlights: every key and step kind of a
/// flow, every key of a rule, and the few bare words of the DSL. Served to
/// the editor (`/assets/js/keywords.js`) so the list cannot drift from the
/// language.
pub fn highlight_words() -> Vec<&'static str> {
    let tables: &[Keys] = &[
        FLOW_KEYS,
        ITEM_KEYS,
        FEE_KEYS,
        DEPARTMENT_KEYS,
        MATERIAL_KEYS,
        STEP_KEYS,
        CONSOLIDATE_KEYS,
        BRANCH_KEYS,
    ];
    let mut words: std::collections::BTreeSet<&'static str> = tables
        .iter()
        .flat_map(|t| t.iter().map(|(k, _)| *k))
        .collect();
    words.extend(STEP_KINDS.iter().copied());
    words.extend(crate::rule::DSL_KEYS.iter().copied());
    words.extend([
        "flow", "rule", "on", "when", "if", "else", "default", "join", "all", "any", "of", "to",
        "from", "true", "false", "none",
    ]);
    words.into_iter().collect()
}

#[cfg(test)]
mod highlight_tests {
    #[test]
    fn the_editor_highlights_every_step_kind_and_key() {
        let w = super::highlight_words();
        for k in [
            "task",
            "parallel",
            "joint_review",
            "within",
            "starts_clock",
            "statutory",
            "class",
        ] {
            assert!(w.contains(&k), "{k}");
        }
    }
}

//! Checking a database: the store's own consistency check, then every case's
//! events replayed and compared with its stored snapshot — the engine's
//! invariant that the event log alone rebuilds every case. `govflow verify`
//! runs it, and so does `govflow restore` after copying a backup in.

use crate::core::CaseState;
use crate::store::chain::ChainReport;
use crate::store::{Store, StoreError};
use serde::Serialize;

/// What a check found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub cases: usize,
    pub events: usize,
    /// The store's own problems (SQLite `integrity_check`).
    pub integrity: Vec<String>,
    /// Cases whose events do not rebuild their snapshot (the first 20).
    pub mismatched: Vec<String>,
    /// The event and audit hash chains (`store/chain.rs`).
    pub chains: Vec<ChainReport>,
}

impl CheckReport {
    pub fn is_sound(&self) -> bool {
        self.integrity.is_empty()
            && self.mismatched.is_empty()
            && self.chains.iter().all(|c| c.broken.is_none())
    }
}

/// Checks every case of `store`.
pub async fn check(store: &Store) -> Result<CheckReport, StoreError> {
    let mut report = CheckReport {
        integrity: store.integrity().await?,
        chains: store.verify_chains().await?,
        ..CheckReport::default()
    };
    let mut offset = 0;
    loop {
        let page = store.cases(None, None, None, 500, offset).await?;
        for row in &page {
            let Some(snapshot) = store.case(&row.case_no).await? else {
                continue;
            };
            let events = store.events(&row.case_no).await?;
            report.cases += 1;
            report.events += events.len();
            if CaseState::replay(&events) != snapshot && report.mismatched.len() < 20 {
                report.mismatched.push(row.case_no.clone());
            }
        }
        if page.len() < 500 {
            return Ok(report);
        }
        offset += 500;
    }
}

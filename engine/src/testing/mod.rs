//! Testing flows and rules: scenario files, their traces and snapshots
//! (`govflow run`, `govflow test`).

pub mod scenario;

//! govflow-engine: the case engine, in layers (see ARCHITECTURE.md):
//!
//! - `core` — pure: commands → events for cases and cards, the flow's compiled
//!   form, identity checks. No I/O, no clock.
//! - `calendar` — working days: the tables, the statutory rule, year imports,
//!   and calendars as deployments.
//! - `supervision` — the rule book and the card board (pure), statistics and
//!   efficiency indicators.
//! - `store` — durable storage: the versioned schema, cases, cards, claims,
//!   users, on SQLite or PostgreSQL.
//! - `app` — the application layer: `Engine` and every use case (commands,
//!   deploying, timers, recovery), the registry of deployments, the clock,
//!   exchange records.
//! - `testing` — scenario files, traces and snapshots (`govflow run/test`).

pub mod app;
pub mod calendar;
pub mod core;
pub mod store;
pub mod supervision;
pub mod testing;

/// The application layer under its earlier name.
pub use app as service;

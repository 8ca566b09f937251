//! govflow-engine: the case state machine over the flow IR, the working-day
//! calendar and legal clock, storage and the timer service.

pub mod alarms;
pub mod app;
pub mod calendar;
pub mod calendars;
pub mod claims;
pub mod clock;
pub mod core;
pub mod efficiency;
pub mod export;
pub mod fastcond;
pub mod ids;
pub mod registry;
pub mod scenario;
/// The application layer under its earlier name.
pub use app as service;
pub mod stats;
pub mod store;
pub mod supervision;
pub mod users;
pub mod yaml_out;

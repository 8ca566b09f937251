//! govflow-engine: the case state machine over the flow IR, the working-day
//! calendar and legal clock, storage and the timer service.

pub mod alarms;
pub mod calendar;
pub mod calendars;
pub mod claims;
pub mod core;
pub mod efficiency;
pub mod export;
pub mod fastcond;
pub mod ids;
pub mod registry;
pub mod scenario;
pub mod service;
pub mod stats;
pub mod store;
pub mod supervision;
pub mod users;
pub mod yaml_out;

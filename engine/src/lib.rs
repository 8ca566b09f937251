//! govflow-engine: the case state machine over the flow IR, the working-day
//! calendar and legal clock, storage and the timer service.

pub mod calendar;
pub mod core;
pub mod ids;
pub mod scenario;
pub mod yaml_out;

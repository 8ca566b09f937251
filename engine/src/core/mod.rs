//! The pure core: `apply(flow, calendar, state, command, now) → events` and
//! `evolve(state, event) → state`.
//!
//! INVARIANT: nothing in this module performs I/O or reads a clock. The
//! instant comes in as an argument; the calendar is data.

mod apply;
pub mod card;
mod clocks;
mod compiled;
mod evolve;
pub mod ids;
mod model;

pub use apply::{CommandError, apply};
pub use compiled::{CompileError, CompiledFlow, Parent, from_dynamic, to_dynamic};
pub use evolve::{evolve, fired_key};
pub use model::*;

#![allow(clippy::unwrap_used)]
//! End-to-end tests: the fixture corpus through the library, and the real
//! `govflow` binary over flows/ and over broken input.

mod e2e {
    pub mod alarms;
    pub mod api_sweep;
    pub mod auth;
    pub mod browser;
    pub mod calendar;
    pub mod cases_api;
    pub mod cli;
    pub mod crash;
    pub mod engine;
    pub mod fixtures;
    pub mod flows;
    pub mod nodes;
    pub mod packs;
    pub mod rules;
    pub mod serve;
    pub mod server;
    pub mod support;
}

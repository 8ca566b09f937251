//! End-to-end tests: the fixture corpus through the library, and the real
//! `govflow` binary over flows/ and over broken input.

mod e2e {
    pub mod cli;
    pub mod engine;
    pub mod fixtures;
    pub mod flows;
    pub mod serve;
    pub mod support;
}

//! Snapshot-test a flow from Rust with insta: run a scenario on the simulated
//! clock and compare its trace with the snapshot in examples/snapshots/. Put
//! the same lines in a `#[test]` of your own crate; `cargo insta review`
//! accepts a changed trace.
//!
//!   cargo run --example snapshot_flow

use govflow_engine::calendar::Calendar;
use govflow_engine::testing::scenario::run_file;

fn main() {
    let scenario =
        std::path::Path::new("flows/food/food_business_license.site_check.scenario.yaml");
    let trace = match run_file(scenario, &Calendar::china()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/examples/snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!("food_site_check", trace);
    });
    println!(
        "the trace of {} matches examples/snapshots/food_site_check.snap",
        scenario.display()
    );
}

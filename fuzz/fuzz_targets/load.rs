//! Fuzz target: any bytes, read as a DSL file and as a YAML file, through the
//! whole pipeline (parse, lower, validate), then printed back in both syntaxes
//! and drawn when the flow is valid.
#![no_main]

use govflow_dsl::Syntax;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for syntax in [Syntax::Dsl, Syntax::Yaml] {
        let loaded = govflow_dsl::load("fuzz", &text, syntax);
        let _ = loaded.report.to_json();
        let _ = loaded.report.render(false);
        if let Some(flow) = loaded.valid_flow() {
            let printed = govflow_dsl::fmt::print_plain(flow, syntax);
            let again = govflow_dsl::load("fuzz", &printed, syntax);
            assert!(!again.has_errors(), "a valid flow printed back must stay valid:\n{printed}");
            let _ = govflow_dsl::graph::Diagram::build(flow).to_svg();
        }
    }
});

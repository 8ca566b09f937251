//! Benchmark: parse + lower + validate a generated 2,000-step flow (both
//! syntaxes) and every flow under flows/.
//!
//! Run: `cargo run --release -p govflow-dsl --example bench_parse [STEPS]`

use govflow_dsl::Syntax;
use std::time::{Duration, Instant};

/// A DSL flow with `n` steps: tasks with step limits, a parallel block of three
/// reviews every 10 steps, a decision every 25 steps.
fn generate(n: usize) -> String {
    let mut s = String::from(
        "flow big \"大型流程\" version 1 {\n  item {\n    basic_code \"0102345000\"\n    type 行政许可\n    statutory 20 workdays\n    kind promised\n    promised 3000 workdays\n    mode window\n    fee none\n  }\n  departments {\n    window \"政务服务中心\"\n    a \"审查一处\"\n    b \"审查二处\"\n    c \"审查三处\"\n  }\n",
    );
    let mut count = 0;
    let mut i = 0;
    while count < n {
        i += 1;
        if i % 10 == 0 && count + 4 <= n {
            s.push_str(&format!(
                "  parallel p{i} \"并联{i}\" lead a within 3 workdays {{\n    task p{i}a \"审查甲{i}\" by a within 2 workdays\n    task p{i}b \"审查乙{i}\" by b within 2 workdays visit\n    task p{i}c \"审查丙{i}\" by c within 2 workdays\n  }}\n"
            ));
            count += 4;
        } else if i % 25 == 0 {
            s.push_str(&format!("  decision d{i} \"判断{i}\" {{\n    when data.x > {i} -> s{}\n    else -> s{}\n  }}\n", i + 1, i + 1));
            count += 1;
        } else {
            if count == 0 {
                s.push_str(&format!(
                    "  task s{i} \"环节{i}\" by window within 1 workday starts_clock\n"
                ));
            } else {
                s.push_str(&format!("  task s{i} \"环节{i}\" by window within 1 workday {{\n    on return -> s1\n  }}\n"));
            }
            count += 1;
        }
    }
    s.push_str("  end granted \"准予许可\"\n}\n");
    s
}

fn time<F: FnMut()>(mut f: F) -> Duration {
    // Median of several runs after a warm-up.
    f();
    let mut runs: Vec<Duration> = (0..15)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let dsl = generate(n);
    let first = govflow_dsl::load("big.flow", &dsl, Syntax::Dsl);
    if first.has_errors() {
        eprintln!("{}", first.report.render(false));
        std::process::exit(1);
    }
    let Some(flow) = first.flow.as_ref() else {
        std::process::exit(1)
    };
    let steps = flow.all_steps().len();
    if std::env::var_os("GOVFLOW_BENCH_PHASES").is_some() {
        phases(&dsl);
    }
    let yaml = govflow_dsl::fmt::print_plain(flow, Syntax::Yaml);
    let t_dsl = time(|| {
        let l = govflow_dsl::load("big.flow", &dsl, Syntax::Dsl);
        assert!(!l.has_errors());
    });
    let t_yaml = time(|| {
        let l = govflow_dsl::load("big.flow.yaml", &yaml, Syntax::Yaml);
        assert!(!l.has_errors());
    });
    println!(
        "generated flow: {steps} steps, DSL {} KiB, YAML {} KiB",
        dsl.len() / 1024,
        yaml.len() / 1024
    );
    println!(
        "parse+validate {steps}-step flow, DSL : {:.2} ms (median of 15)",
        t_dsl.as_secs_f64() * 1e3
    );
    println!(
        "parse+validate {steps}-step flow, YAML: {:.2} ms (median of 15)",
        t_yaml.as_secs_f64() * 1e3
    );

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../flows");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let name = p.display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if (name.ends_with(".flow") || name.ends_with(".flow.yaml"))
                && let Ok(text) = std::fs::read_to_string(&p)
            {
                files.push((name, text));
            }
        }
    }
    let t_all = time(|| {
        for (name, text) in &files {
            let l = govflow_dsl::load(name, text, Syntax::from_path(name).unwrap_or(Syntax::Yaml));
            assert!(!l.has_errors(), "{name}");
        }
    });
    println!(
        "parse+validate flows/ ({} files): {:.2} ms (median of 15)",
        files.len(),
        t_all.as_secs_f64() * 1e3
    );
}

#[allow(dead_code)]
fn phases(dsl: &str) {
    let t = Instant::now();
    let (node, _) = govflow_dsl::text::parse(dsl);
    let t1 = t.elapsed();
    let mut lw = govflow_dsl::lower::Lower::new();
    let Some(node) = node else { return };
    let mut flow = lw.flow(&node).expect("flow");
    let t2 = t.elapsed();
    govflow_dsl::validate::resolve_targets(&mut flow);
    let file = govflow_dsl::SourceFile::new("big.flow", dsl);
    let _ = govflow_dsl::validate::validate(&flow, &file);
    let t3 = t.elapsed();
    println!(
        "phases: parse {t1:?} lower {:?} validate {:?}",
        t2 - t1,
        t3 - t2
    );
}

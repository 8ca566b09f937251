//! The `govflow` command line: a thin shell over the library crates.

mod cli;
mod maintenance;

fn main() -> std::process::ExitCode {
    cli::run()
}

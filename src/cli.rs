//! Subcommands of `govflow`. Each one parses its arguments, calls a library,
//! prints, and turns the outcome into an exit code (0 ok, 1 problems found,
//! 2 usage or I/O error).
//!
//! Why this file is long: one function per subcommand (check, fmt, ir, graph,
//! run, test, serve, calendar, export …), each parsing, calling a library and
//! printing, sharing the output helpers.

use clap::{Parser, Subcommand, ValueEnum};
use govflow_dsl::{Loaded, Syntax};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "govflow",
    version,
    about = "Workflow-and-rules engine for government service approvals (政务服务)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CheckFormat {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum To {
    Yaml,
    Dsl,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum GraphFormat {
    Svg,
    Dot,
}

#[derive(Subcommand)]
enum Command {
    /// Validate flow files (files or folders); exit 1 when there is any error.
    Check {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        format: CheckFormat,
    },
    /// Format flow files in place, or convert them to the other syntax.
    Fmt {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print the files converted to this syntax on stdout instead of formatting in place.
        #[arg(long, value_enum)]
        to: Option<To>,
        /// Change nothing; exit 1 when a file is not in canonical layout.
        #[arg(long)]
        check: bool,
    },
    /// Print a flow's IR as canonical JSON.
    Ir { path: PathBuf },
    /// Run the server: load the flows, open the database, serve the API and the studio.
    Serve {
        /// Database URL.
        #[arg(long, default_value = "sqlite://govflow.db")]
        db: String,
        /// Folder of flow files (packs).
        #[arg(long, default_value = "flows")]
        flows: PathBuf,
        /// Folder of supervision rule files.
        #[arg(long, default_value = "rules")]
        rules: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Region calendar files merged over the shipped calendar.
        #[arg(long = "calendar")]
        calendars: Vec<PathBuf>,
        /// 6-digit administrative division code at the head of case numbers.
        #[arg(long, default_value = "330100")]
        region: String,
        /// Milliseconds between timer-service rounds.
        #[arg(long, default_value = "1000")]
        timer_poll_ms: u64,
        /// PostgreSQL only: keep govflow's tables in this schema (created if missing).
        #[arg(long)]
        db_schema: Option<String>,
        /// The hash that chains the event and audit logs: sha256, or sm3 (GB/T 32905) where a
        /// security review asks for the national algorithm.
        #[arg(long, default_value = "sha256", value_parser = parse_chain_hash)]
        chain_hash: govflow_engine::store::chain::ChainHash,
    },
    /// Print a case's exchange records (the six record types of the 2016 guideline) as JSON.
    Export {
        case: String,
        #[arg(long, default_value = "sqlite://govflow.db")]
        db: String,
    },
    /// The working-day calendar: arithmetic, how far it reaches, importing a year's arrangement.
    Calendar {
        #[command(subcommand)]
        op: CalendarOp,
        /// Region calendar files merged over the shipped one (same format as engine/calendar/cn.txt).
        #[arg(long = "calendar", global = true)]
        calendars: Vec<PathBuf>,
    },
    /// Run a scenario against a flow in memory and print the trace as YAML.
    Run {
        flow: PathBuf,
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long = "calendar")]
        calendars: Vec<PathBuf>,
    },
    /// Run every `*.scenario.yaml` (default: flows/) and compare each trace with its snapshot.
    Test {
        paths: Vec<PathBuf>,
        /// Write new and changed traces as the snapshots.
        #[arg(long)]
        accept: bool,
        #[arg(long = "calendar")]
        calendars: Vec<PathBuf>,
    },
    /// Back up a running (or stopped) SQLite database: a consistent copy and its blobs.
    Backup {
        #[arg(long, default_value = "sqlite://govflow.db")]
        db: String,
        /// The backup file to write (never overwritten).
        #[arg(long)]
        to: PathBuf,
    },
    /// Put a backup in place as a SQLite database, then check it (`verify`).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// Where the database goes (`sqlite://FILE`); the server must be stopped.
        #[arg(long)]
        db: String,
        /// Replace an existing database file.
        #[arg(long)]
        force: bool,
    },
    /// Check a database: its own integrity, and every case's events against its snapshot.
    Verify {
        #[arg(long, default_value = "sqlite://govflow.db")]
        db: String,
        /// PostgreSQL only: the schema govflow's tables are in.
        #[arg(long)]
        db_schema: Option<String>,
    },
    /// Draw a flow's diagram.
    Graph {
        path: PathBuf,
        #[arg(long, value_enum, default_value = "svg")]
        format: GraphFormat,
    },
}

#[derive(Subcommand)]
enum CalendarOp {
    /// The due date N working days (or calendar days) after DATE; DATE itself is not counted.
    Add {
        date: String,
        n: u32,
        /// `workdays` (工作日) or `days` (自然日; a period ending on a day off ends on the next working day).
        #[arg(default_value = "workdays")]
        unit: String,
    },
    /// Working days after FROM up to and including TO.
    Diff { from: String, to: String },
    /// Check a year's official arrangement (holiday-cn JSON, or plain text: `DATE off|work [name]` a
    /// line) and list its changes against the calendar in force; `--deploy` records it in the database.
    Import {
        file: PathBuf,
        /// `CN` (national) or a 6-digit division code for a region's own days.
        #[arg(long, default_value = "CN")]
        region: String,
        /// Compare with (and deploy to) the calendar in force in this database.
        #[arg(long)]
        db: Option<String>,
        /// Record the year as a calendar deployment (needs --db); running nodes pick it up before
        /// their next command and recompute provisional deadlines.
        #[arg(long)]
        deploy: bool,
        /// The division whose region overlays count as in force (with --db).
        #[arg(long, default_value = "330100")]
        division: String,
    },
    /// How far the calendar reaches: official years, their versions, the last covered day.
    Status {
        /// The calendar in force in this database (default: the shipped calendar).
        #[arg(long)]
        db: Option<String>,
        #[arg(long, default_value = "330100")]
        division: String,
    },
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check { paths, format } => check(&paths, format),
        Command::Fmt { paths, to, check } => fmt(&paths, to, check),
        Command::Ir { path } => ir(&path),
        Command::Graph { path, format } => graph(&path, format),
        Command::Calendar { op, calendars } => calendar(op, &calendars),
        Command::Run {
            flow,
            scenario,
            calendars,
        } => run_scenario(&flow, &scenario, &calendars),
        Command::Test {
            paths,
            accept,
            calendars,
        } => test(paths, accept, &calendars),
        Command::Serve {
            db,
            flows,
            rules,
            addr,
            calendars,
            region,
            timer_poll_ms,
            db_schema,
            chain_hash,
        } => serve(govflow_studio::Config {
            db_url: db,
            flows_dir: flows,
            rules_dir: rules,
            addr,
            admin_token: String::new(),
            calendars,
            region,
            timer_poll: std::time::Duration::from_millis(timer_poll_ms.max(10)),
            db_schema,
            clock_offset: 0,
            chain_hash,
        }),
        Command::Export { case, db } => export(&case, &db),
        Command::Backup { db, to } => crate::maintenance::backup(&db, &to),
        Command::Restore { from, db, force } => crate::maintenance::restore(&from, &db, force),
        Command::Verify { db, db_schema } => crate::maintenance::verify(&db, db_schema),
    }
}

fn parse_chain_hash(s: &str) -> Result<govflow_engine::store::chain::ChainHash, String> {
    govflow_engine::store::chain::ChainHash::parse(s)
        .ok_or_else(|| format!("`{s}`: 应为 sha256 或 sm3 / use sha256 or sm3"))
}

/// Rule files under the given paths: files as given (when named `*.rules` or
/// `*.rules.yaml`), folders walked, sorted.
fn rule_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if !name.starts_with('.') && name != "snapshots" && name != "target" {
                        walk(&e.path(), out);
                    }
                }
            }
        } else if govflow_dsl::rule::is_rule_file(&p.to_string_lossy()) {
            out.push(p.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out.sort();
    out
}

/// Files whose reader stops at the first problem (scenarios, the efficiency
/// scheme): what they are called in messages and diagnostics.
struct Plain {
    label: &'static str,
    code: &'static str,
    help: &'static str,
}

/// Reads each file with `parse` (name, text → (human text, line, column,
/// message) of its problem) and reports the problems like diagnostics.
fn check_plain(
    kind: &Plain,
    files: &[PathBuf],
    format: CheckFormat,
    errors: &mut usize,
    json: &mut Vec<govflow_dsl::diag::JsonDiagnostic>,
    parse: impl Fn(&str, &str) -> Option<(String, usize, usize, String)>,
) {
    for f in files {
        let name = f.display().to_string();
        let problem = match std::fs::read_to_string(f) {
            Ok(text) => parse(&name, &text),
            Err(e) => Some((format!("{name}: {e}"), 1, 1, e.to_string())),
        };
        let Some((human, line, column, message)) = problem else {
            continue;
        };
        *errors += 1;
        match format {
            CheckFormat::Human => eprintln!("{} error: {human}", kind.label),
            CheckFormat::Json => json.push(govflow_dsl::diag::JsonDiagnostic {
                file: name,
                line,
                column,
                end_line: line,
                end_column: column,
                severity: govflow_dsl::Severity::Error,
                code: kind.code,
                message,
                help: Some(kind.help.into()),
            }),
        }
    }
}

fn is_efficiency_file(p: &Path) -> bool {
    p.file_name().is_some_and(|n| n == "efficiency.yaml")
}

/// `efficiency.yaml` files under the given paths (files as given, folders walked).
fn efficiency_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if p.is_dir() {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().to_string();
                    if !name.starts_with('.') && name != "snapshots" && name != "target" {
                        walk(&e.path(), out);
                    }
                }
            }
        } else if is_efficiency_file(p) {
            out.push(p.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out);
    }
    out.sort();
    out
}

/// Flow files under the given paths: files as given, folders walked for
/// `*.flow` and `*.flow.yaml` (sorted, so output is stable).
pub fn flow_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out).map_err(|e| format!("cannot read folder {}: {e}", p.display()))?;
        } else if p.exists() {
            if !govflow_dsl::rule::is_rule_file(&p.to_string_lossy()) && !is_efficiency_file(p) {
                out.push(p.clone());
            }
        } else {
            return Err(format!("no such file or folder: {}", p.display()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "snapshots" {
                walk(&p, out)?;
            }
        } else if name.ends_with(".flow")
            || name.ends_with(".flow.yaml")
            || name.ends_with(".flow.yml")
        {
            out.push(p);
        }
    }
    Ok(())
}

fn render_human(loaded: &Loaded) -> String {
    render_report(&loaded.report)
}

/// A report for a person: colours only on a terminal, never with NO_COLOR.
fn render_report(report: &govflow_dsl::Report) -> String {
    let color = std::env::var_os("NO_COLOR").is_none()
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    report.render(color)
}

/// Counts a report's problems and prints it in the chosen format.
fn tally(
    report: &govflow_dsl::Report,
    format: CheckFormat,
    errors: &mut usize,
    warnings: &mut usize,
    json: &mut Vec<govflow_dsl::diag::JsonDiagnostic>,
) {
    for d in &report.diagnostics {
        if d.is_error() {
            *errors += 1;
        } else {
            *warnings += 1;
        }
    }
    match format {
        CheckFormat::Human => eprint!("{}", render_report(report)),
        CheckFormat::Json => json.extend(report.to_json()),
    }
}

fn check(paths: &[PathBuf], format: CheckFormat) -> ExitCode {
    let files = match flow_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut errors = 0;
    let mut warnings = 0;
    let mut json = Vec::new();
    // Pack manifests under the given folders: their own problems (a listed file
    // missing, an unlisted flow, a duplicate id); the flows are checked below.
    let mut manifests = 0;
    for p in paths.iter().filter(|p| p.is_dir()) {
        for dir in govflow_dsl::pack::pack_dirs(p) {
            manifests += 1;
            let report = match govflow_dsl::pack::load_pack_dir(&dir) {
                Ok(l) => l.report,
                Err(e) => {
                    eprintln!("error: cannot read the pack in {}: {e}", dir.display());
                    return ExitCode::from(2);
                }
            };
            tally(&report, format, &mut errors, &mut warnings, &mut json);
        }
    }
    // Scenario files: read (not run) — a malformed one is an error with its place.
    let scenarios = govflow_engine::testing::scenario::scenario_files(
        &paths
            .iter()
            .filter(|p| p.is_dir())
            .cloned()
            .collect::<Vec<_>>(),
    );
    let scenario = Plain {
        label: "scenario",
        code: "scenario::invalid",
        help: "see docs/scenarios.md",
    };
    check_plain(
        &scenario,
        &scenarios,
        format,
        &mut errors,
        &mut json,
        |name, text| {
            govflow_engine::testing::scenario::Scenario::parse(name, text)
                .err()
                .map(|e| (e.to_string(), e.line, e.column, e.message))
        },
    );
    // The efficiency scheme (`efficiency.yaml` beside the rules).
    let schemes = efficiency_files(paths);
    let efficiency = Plain {
        label: "efficiency",
        code: "efficiency::invalid",
        help: "see docs/rule-language.md, Efficiency",
    };
    check_plain(
        &efficiency,
        &schemes,
        format,
        &mut errors,
        &mut json,
        |name, text| {
            govflow_engine::supervision::efficiency::Scheme::parse(name, text)
                .err()
                .map(|e| (e.to_string(), e.line, e.column, e.message))
        },
    );
    // Supervision rule files (`*.rules`, `*.rules.yaml`).
    let rules = rule_files(paths);
    for f in &rules {
        let loaded = govflow_dsl::rule::load_rules_path(f);
        tally(
            &loaded.report,
            format,
            &mut errors,
            &mut warnings,
            &mut json,
        );
    }
    for f in &files {
        let loaded = govflow_dsl::load_path(f);
        tally(
            &loaded.report,
            format,
            &mut errors,
            &mut warnings,
            &mut json,
        );
    }
    match format {
        CheckFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_else(|_| "[]".into())
        ),
        CheckFormat::Human => eprintln!(
            "checked {} file{}{}: {errors} error{}, {warnings} warning{}",
            files.len() + rules.len() + schemes.len(),
            if files.len() + rules.len() + schemes.len() == 1 {
                ""
            } else {
                "s"
            },
            match (manifests, scenarios.len()) {
                (0, 0) => String::new(),
                (m, n) => format!(
                    ", {m} pack manifest{} and {n} scenario{}",
                    if m == 1 { "" } else { "s" },
                    if n == 1 { "" } else { "s" }
                ),
            },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" }
        ),
    }
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads one file and requires it to be free of errors.
fn load_valid(path: &Path) -> Result<(Loaded, govflow_dsl::Flow), ExitCode> {
    let loaded = govflow_dsl::load_path(path);
    if loaded.has_errors() {
        eprint!("{}", render_human(&loaded));
        eprintln!(
            "error: {} has errors; fix them first (`govflow check {}`)",
            path.display(),
            path.display()
        );
        return Err(ExitCode::from(1));
    }
    match loaded.flow.clone() {
        Some(f) => Ok((loaded, f)),
        None => Err(ExitCode::from(1)),
    }
}

fn fmt(paths: &[PathBuf], to: Option<To>, check: bool) -> ExitCode {
    let files = match flow_files(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut unformatted = 0;
    for f in &files {
        let (loaded, flow) = match load_valid(f) {
            Ok(x) => x,
            Err(code) => return code,
        };
        let name = f.display().to_string();
        let own = Syntax::from_path(&name).unwrap_or(Syntax::Yaml);
        let target = match to {
            Some(To::Yaml) => Syntax::Yaml,
            Some(To::Dsl) => Syntax::Dsl,
            None => own,
        };
        let text = govflow_dsl::fmt::print(&flow, target, &loaded.report.file);
        if to.is_some() && !check {
            print!("{text}");
            continue;
        }
        if *loaded.report.file.text != *text {
            unformatted += 1;
            if check {
                eprintln!("{name}: not in canonical layout (run `govflow fmt {name}`)");
            } else if let Err(e) = std::fs::write(f, &text) {
                eprintln!("error: cannot write {name}: {e}");
                return ExitCode::from(2);
            } else {
                eprintln!("formatted {name}");
            }
        }
    }
    if check && unformatted > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn ir(path: &Path) -> ExitCode {
    match load_valid(path) {
        Ok((_, flow)) => {
            print!("{}", flow.to_canonical_json());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn graph(path: &Path, format: GraphFormat) -> ExitCode {
    match load_valid(path) {
        Ok((_, flow)) => {
            let g = govflow_dsl::graph::Diagram::build(&flow);
            match format {
                GraphFormat::Svg => print!("{}", g.to_svg()),
                GraphFormat::Dot => print!("{}", g.to_dot()),
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// The bootstrap admin token: `GOVFLOW_ADMIN_TOKEN`, or a random one printed once.
fn admin_token() -> String {
    if let Ok(t) = std::env::var("GOVFLOW_ADMIN_TOKEN")
        && !t.is_empty()
    {
        return t;
    }
    let mut bytes = [0u8; 16];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    if random.is_err() {
        // No /dev/urandom: derive from time and process id (still unguessable enough for a local bootstrap).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = (t ^ u128::from(std::process::id()) << 64).to_le_bytes();
    }
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    eprintln!("GOVFLOW_ADMIN_TOKEN is not set; this run's admin token is: {token}");
    token
}

fn serve(mut cfg: govflow_studio::Config) -> ExitCode {
    if cfg.region.len() != 6 || !cfg.region.bytes().all(|b| b.is_ascii_digit()) {
        eprintln!("error: --region must be a 6-digit division code, like 330100");
        return ExitCode::from(2);
    }
    cfg.admin_token = admin_token();
    // GOVFLOW_CLOCK_OFFSET shifts the server's clock by seconds (drills and
    // tests: "the server was down for a week").
    if let Ok(v) = std::env::var("GOVFLOW_CLOCK_OFFSET") {
        match v.trim().parse::<i64>() {
            Ok(secs) => {
                cfg.clock_offset = secs;
                eprintln!("clock shifted by {secs} s (GOVFLOW_CLOCK_OFFSET)");
            }
            Err(_) => {
                eprintln!("error: GOVFLOW_CLOCK_OFFSET must be a whole number of seconds");
                return ExitCode::from(2);
            }
        }
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(govflow_studio::serve(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The shipped calendar with the given region files merged over it.
fn load_calendar(files: &[PathBuf]) -> Result<govflow_engine::calendar::Calendar, String> {
    let mut texts = Vec::new();
    for f in files {
        texts.push(std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?);
    }
    govflow_engine::calendar::Calendar::china_with(&texts).map_err(|e| e.to_string())
}

fn parse_date(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; write YYYY-MM-DD"))
}

fn calendar(op: CalendarOp, files: &[PathBuf]) -> ExitCode {
    let op = match op {
        CalendarOp::Import {
            file,
            region,
            db,
            deploy,
            division,
        } => return calendar_import(&file, &region, db.as_deref(), deploy, &division),
        CalendarOp::Status { db, division } => return calendar_status(db.as_deref(), &division),
        op => op,
    };
    let result = load_calendar(files).and_then(|cal| match op {
        CalendarOp::Add { date, n, unit } => {
            let d = parse_date(&date)?;
            let due = match govflow_dsl::ir::Unit::parse(&unit) {
                Some(govflow_dsl::ir::Unit::Workdays) => cal.add_workdays(d, n),
                Some(govflow_dsl::ir::Unit::Days) => cal.add_days(d, n),
                _ => return Err(format!("unknown unit `{unit}`; expected workdays or days")),
            };
            let due = due.map_err(|e| e.to_string())?;
            if cal.provisional_between(d, due) {
                eprintln!(
                    "临时（provisional）：{} 之后尚无国务院放假安排，按法定节假日计算，不含调休 / no official arrangement after {}: counted with the statutory holidays, no make-up days",
                    cal.covered_until(),
                    cal.covered_until()
                );
            }
            Ok(due.to_string())
        }
        CalendarOp::Import { .. } | CalendarOp::Status { .. } => Ok(String::new()),
        CalendarOp::Diff { from, to } => {
            let (a, b) = (parse_date(&from)?, parse_date(&to)?);
            let n = cal.diff(a, b).map_err(|e| e.to_string())?;
            if cal.provisional_between(a, b) {
                eprintln!(
                    "临时（provisional）：{} 之后尚无国务院放假安排，按法定节假日计算，不含调休 / no official arrangement after {}: counted with the statutory holidays, no make-up days",
                    cal.covered_until(),
                    cal.covered_until()
                );
            }
            Ok(n.to_string())
        }
    });
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn run_scenario(flow: &Path, scenario: &Path, calendars: &[PathBuf]) -> ExitCode {
    use govflow_engine::testing::scenario;
    let cal = match load_calendar(calendars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let compiled = match scenario::load_flow(flow) {
        Ok(f) => f,
        Err(e) => {
            eprint!("{e}");
            eprintln!("error: {} has errors", flow.display());
            return ExitCode::from(1);
        }
    };
    let text = match std::fs::read_to_string(scenario) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", scenario.display());
            return ExitCode::from(2);
        }
    };
    let parsed = scenario::Scenario::parse(&scenario.display().to_string(), &text)
        .map_err(|e| e.to_string())
        .and_then(|sc| {
            let book = scenario::scenario_rules(scenario, &sc)?;
            sc.run_with(&compiled, &cal, book.as_ref())
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(trace) => {
            print!("{trace}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn test(paths: Vec<PathBuf>, accept: bool, calendars: &[PathBuf]) -> ExitCode {
    use govflow_engine::testing::scenario::{Checked, check_file, scenario_files, snapshot_path};
    let cal = match load_calendar(calendars) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let paths = if paths.is_empty() {
        vec![PathBuf::from("flows")]
    } else {
        paths
    };
    for p in &paths {
        if !p.exists() {
            eprintln!("error: no such file or folder: {}", p.display());
            return ExitCode::from(2);
        }
    }
    let accept = accept
        || std::env::var("INSTA_UPDATE").is_ok_and(|v| v == "always")
        || std::env::var("GOVFLOW_ACCEPT").is_ok_and(|v| v == "1");
    let files = scenario_files(&paths);
    let (mut passed, mut failed) = (0, 0);
    for f in &files {
        match check_file(f, &cal, accept) {
            Checked::Matches => {
                passed += 1;
                eprintln!("ok      {}", f.display());
            }
            Checked::New { accepted: true } | Checked::Differs { accepted: true, .. } => {
                passed += 1;
                eprintln!("updated {} -> {}", f.display(), snapshot_path(f).display());
            }
            Checked::New { accepted: false } => {
                failed += 1;
                eprintln!(
                    "NEW     {}: no snapshot yet; wrote {}.new (accept with `govflow test --accept` or `cargo insta review`)",
                    f.display(),
                    snapshot_path(f).display()
                );
            }
            Checked::Differs { diff, .. } => {
                failed += 1;
                eprintln!(
                    "FAILED  {}: the trace differs from {}",
                    f.display(),
                    snapshot_path(f).display()
                );
                eprintln!("{diff}");
            }
            Checked::Failed(e) => {
                failed += 1;
                eprintln!("FAILED  {}", f.display());
                eprintln!("  {}", e.replace('\n', "\n  "));
            }
        }
    }
    eprintln!(
        "{} scenario{}: {passed} passed, {failed} failed",
        files.len(),
        if files.len() == 1 { "" } else { "s" }
    );
    if failed > 0 || files.is_empty() {
        if files.is_empty() {
            eprintln!("error: no *.scenario.yaml files found");
        }
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn export(case: &str, db: &str) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async {
        use govflow_engine::app::load_registry;
        use govflow_engine::store::{Options, Store};
        let opts = Options {
            create: false,
            ..Options::default()
        };
        let store = Store::open(db, &opts)
            .await
            .map_err(|e| format!("cannot open {db} (is it the server's database?): {e}"))?;
        let state = store
            .case(case)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no case {case} in {db}"))?;
        let events = store.events(case).await.map_err(|e| e.to_string())?;
        let (flows, _) = load_registry(&store).await.map_err(|e| e.to_string())?;
        let flow = flows.get(&state.flow_id, state.flow_version);
        Ok::<_, String>(govflow_engine::app::export::exchange_records(
            &events,
            flow.as_ref().map(|f| f.flow.as_ref()),
        ))
    });
    match result {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The calendar in force in a database (its deployments; the shipped years
/// where none), with the store for deploying.
type CalendarRows = Vec<(govflow_engine::store::Deployment, String, i64)>;

fn calendar_in_db(
    url: &str,
    division: &str,
) -> Result<
    (
        govflow_engine::store::Store,
        govflow_engine::calendar::deployments::InForce,
        CalendarRows,
    ),
    String,
> {
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let opts = govflow_engine::store::Options {
            region: division.to_string(),
            create: false,
            ..Default::default()
        };
        let store = govflow_engine::store::Store::open(url, &opts)
            .await
            .map_err(|e| {
                format!(
                    "{url}: {e}\nhint: 数据库由 govflow serve --db URL 创建；先启动一次服务 / the database is created by `govflow serve --db URL`; start the server once first"
                )
            })?;
        let rows = store
            .calendar_deployments()
            .await
            .map_err(|e| e.to_string())?;
        let in_force = govflow_engine::calendar::deployments::build(&rows, division);
        Ok((store, in_force, rows))
    })
}

/// Renders calendar-file problems as miette diagnostics (file:line:column,
/// Chinese text first, a hint).
fn render_calendar_problems(
    name: &str,
    text: &str,
    problems: &[govflow_engine::calendar::Problem],
) {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_width(100);
    for p in problems {
        let diag = miette::MietteDiagnostic::new(format!("{} / {}", p.message_zh, p.message))
            .with_code(p.code)
            .with_help(format!("{} / {}", p.hint_zh, p.hint))
            .with_label(miette::LabeledSpan::at(p.offset..p.offset + p.len, "here"));
        let report = miette::Report::new(diag)
            .with_source_code(miette::NamedSource::new(name, text.to_string()));
        let mut out = String::new();
        let _ = handler.render_report(&mut out, report.as_ref());
        eprintln!("{out}");
    }
    eprintln!(
        "{name}: {} 个问题，未作任何更改 / {} problem(s); nothing changed",
        problems.len(),
        problems.len()
    );
}

fn calendar_import(
    file: &Path,
    region: &str,
    db: Option<&str>,
    deploy: bool,
    division: &str,
) -> ExitCode {
    use govflow_engine::calendar::deployments as calendars;
    if !calendars::valid_region(region) {
        eprintln!(
            "error: --region 应为 CN 或 6 位行政区划代码 / --region must be CN or a 6-digit division code"
        );
        return ExitCode::from(2);
    }
    if deploy && db.is_none() {
        eprintln!("error: --deploy 需要 --db URL / --deploy needs --db URL");
        return ExitCode::from(2);
    }
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let name = file.display().to_string();
    let year = match govflow_engine::calendar::year::parse(&text) {
        Ok(y) => y,
        Err(problems) => {
            render_calendar_problems(&name, &text, &problems);
            return ExitCode::from(1);
        }
    };
    let in_db = match db.map(|url| calendar_in_db(url, division)).transpose() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let (cal, rows) = in_db.as_ref().map_or_else(
        || (govflow_engine::calendar::Calendar::china(), Vec::new()),
        |(_, f, rows)| (f.calendar.clone(), rows.clone()),
    );
    let problems = calendars::check_import(&cal, region, &year, &text);
    if !problems.is_empty() {
        render_calendar_problems(&name, &text, &problems);
        return ExitCode::from(1);
    }
    let after = calendars::after_deploy(&rows, division, region, &year).calendar;
    let replaces = if region != calendars::NATIONAL {
        "地区日历，合并在全国安排之上 / a region's days over the national arrangement"
    } else if cal.official_years().contains(&year.year) {
        "替换已生效的官方安排 / replaces the official arrangement in force"
    } else {
        "替换临时规则 / replaces the provisional rule"
    };
    let wd = after.working_days_in(year.year).unwrap_or(0);
    println!(
        "{name}: {} 年（{region}）工作日 {wd} 天 / {wd} working days in {} ({region}); {replaces}",
        year.year, year.year
    );
    let changes = cal.changes_to(&after, year.year);
    if changes.is_empty() {
        println!("与现行日历相同 / no change against the calendar in force");
    } else {
        println!("{} 处变化 / {} change(s):", changes.len(), changes.len());
        for c in &changes {
            let kind = |w: bool| if w { "班" } else { "休" };
            let wd = govflow_engine::calendar::year::weekday_zh(chrono::Datelike::weekday(&c.date));
            let names = match (c.was.as_str(), c.now.as_str()) {
                ("", "") => String::new(),
                (a, b) if a == b => format!(" {b}"),
                ("", b) => format!(" {b}"),
                (a, "") => format!(" （原 {a}）"),
                (a, b) => format!(" {b}（原 {a}）"),
            };
            println!(
                "  {} {wd} {}→{}{names}",
                c.date,
                kind(c.was_working),
                kind(c.working)
            );
        }
    }
    if deploy && let Some((store, _, _)) = in_db {
        let id = calendars::deployment_id(region, year.year);
        let rt = match tokio::runtime::Runtime::new() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let actor = std::env::var("USER").map_or("cli".to_string(), |u| format!("cli:{u}"));
        let done = rt.block_on(calendars::deploy_year(
            &store,
            region,
            &year,
            &name,
            &actor,
            govflow_engine::app::clock::Clock::now(
                &govflow_engine::app::clock::SystemClock::default(),
            ),
        ));
        match done {
            Ok((d, true)) => println!(
                "已部署 {id} 第 {} 版；各节点在下一次办理前启用并重算临时期限 / deployed {id} version {}; every node puts it in force before its next command and recomputes provisional deadlines",
                d.version, d.version
            ),
            Ok((d, false)) => println!(
                "{id} 第 {} 版已是同一内容 / {id} version {} already holds this text",
                d.version, d.version
            ),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

fn calendar_status(db: Option<&str>, division: &str) -> ExitCode {
    let (cal, years) = match db {
        Some(url) => match calendar_in_db(url, division) {
            Ok((_, f, _)) => (f.calendar, f.years),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => (govflow_engine::calendar::Calendar::china(), Vec::new()),
    };
    let today =
        govflow_engine::app::clock::Clock::now(&govflow_engine::app::clock::SystemClock::default())
            .date();
    let covered = cal.covered_until();
    let left = (covered - today).num_days();
    let list: Vec<String> = cal.official_years().iter().map(|y| y.to_string()).collect();
    println!("official years / 官方安排: {}", list.join(", "));
    for y in &years {
        println!(
            "  {} {} v{} ({} working days; {}+08:00 by {})",
            y.region, y.year, y.version, y.working_days, y.deployed_at, y.deployed_by
        );
    }
    println!("covered until / 覆盖至: {covered} ({left} days from {today})");
    println!(
        "after that / 之后: provisional (weekends and the statutory holidays off, no 调休) until {}",
        cal.last()
    );
    if left < 0 {
        println!(
            "warning: 官方安排已于 {covered} 到期（{} 天前），现行期限按临时规则计算；请导入放假安排 / official arrangements ended on {covered} ({} days ago): deadlines are provisional; import the arrangement (govflow calendar import FILE --db URL --deploy)",
            -left, -left
        );
    } else if left < 60 {
        println!(
            "warning: 日历将在 {left} 天后到期，请导入下一年放假安排 / coverage ends in {left} days: import next year's arrangement (govflow calendar import FILE --db URL --deploy)"
        );
    }
    ExitCode::SUCCESS
}

//! Embed the engine: load a flow, drive a case through it, first purely in
//! memory (the core: `apply` decides, `evolve` folds), then durably in SQLite
//! through the same store `govflow serve` uses.
//!
//!   cargo run --example drive_case

use chrono::NaiveDate;
use govflow_engine::app::load_registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::ids::IdKind;
use govflow_engine::core::{Actor, CaseState, Command, CompiledFlow, MaterialIn, Person, apply};
use govflow_engine::store::{Options, Request, Store};
use std::error::Error;

fn by(name: &str, department: &str, role: Option<&str>) -> Actor {
    Actor {
        name: name.into(),
        department: Some(department.into()),
        role: role.map(str::to_string),
    }
}

fn complete(step: &str, actor: Actor) -> Command {
    Command::Complete {
        step: step.into(),
        action: "pass".into(),
        by: actor,
        opinion: None,
        data: Default::default(),
        missing: vec![],
        defer: vec![],
        defer_within: None,
        document_no: None,
        fixes: Default::default(),
        on_site: None,
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    // 1. Load and compile the flow (errors come back as diagnostics).
    let path = std::path::Path::new("flows/reference/parallel_approval.flow");
    let loaded = govflow_dsl::load_path(path);
    let Some(flow) = loaded.valid_flow().cloned() else {
        eprint!("{}", loaded.report.render(false));
        return Err("the flow has errors".into());
    };
    let flow = CompiledFlow::new(flow)?;
    let calendar = Calendar::china();

    // 2. The pure core: commands in, events out; the clock is an argument.
    let t = |d: u32, h: u32| {
        NaiveDate::from_ymd_opt(2025, 9, d)
            .and_then(|d| d.and_hms_opt(h, 0, 0))
            .ok_or("bad date")
    };
    let start = Command::Start {
        case_no: "3301002025092600000012".into(),
        applicant: Person {
            name: "杭州示例科技有限公司".into(),
            id_kind: IdKind::CreditCode,
            id_number: "91110000600037341L".into(),
            legacy: false,
            phone: None,
            address: None,
            postcode: None,
            legal_representative: None,
        },
        agent: None,
        source: Some("政务服务门户".into()),
        project_code: None,
        data: Default::default(),
        materials: ["application", "project_doc", "land_doc"]
            .iter()
            .map(|id| MaterialIn {
                id: id.to_string(),
                how: "upload".into(),
                count: 1,
            })
            .collect(),
    };
    let commands = vec![
        (start.clone(), t(26, 9)?),
        (
            complete("accept", by("王芳", "window", Some("clerk"))),
            t(26, 10)?,
        ),
        (complete("dev_review", by("李明", "dev", None)), t(29, 10)?),
        (
            complete("planning_review", by("赵静", "planning", None)),
            t(29, 11)?,
        ),
        (complete("env_review", by("孙强", "env", None)), t(29, 15)?),
        (complete("decide", by("周局", "dev", None)), t(30, 9)?),
        (
            complete("issue", by("王芳", "window", Some("clerk"))),
            t(30, 10)?,
        ),
    ];
    let mut state: Option<CaseState> = None;
    for (cmd, now) in &commands {
        let events = apply(&flow, &calendar, state.as_ref(), cmd, *now)?;
        let s = state.get_or_insert_with(CaseState::default);
        for e in &events {
            s.apply(e);
            println!("{now}  {}", e.kind());
        }
    }
    let state = state.ok_or("no state")?;
    println!(
        "in memory: {} is {}, result {:?}",
        state.case_no,
        state.status.as_str(),
        state.outcome.map(|o| o.result)
    );
    if let Some(d) = &state.statutory {
        println!(
            "statutory deadline was {:?} ({} from acceptance)",
            d.due_date, d.limit
        );
    }

    // 3. Durably: the same commands through the SQLite store (one transaction each).
    let dir = std::env::temp_dir().join(format!("govflow-example-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("example.db").display());
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let store = Store::open(&url, &Options::default()).await?;
        let source = std::fs::read_to_string(path)?;
        store
            .deploy(
                "parallel_approval",
                &source,
                "parallel_approval.flow",
                "example",
                t(26, 8)?,
            )
            .await?;
        let (flows, _) = load_registry(&store).await?;
        let mut case_no = None;
        for (cmd, now) in &commands {
            let req = Request {
                case_no: case_no.clone(),
                flow_id: Some("parallel_approval".into()),
                command: cmd.clone(),
                idempotency_key: None,
                actor: "example".into(),
                override_claims: false,
            };
            let out = store.execute(&req, &flows, &calendar, *now).await?;
            case_no = Some(out.case_no);
        }
        let no = case_no.ok_or("no case")?;
        let stored = store.case(&no).await?.ok_or("case not stored")?;
        let events = store.events(&no).await?;
        println!(
            "stored: {no} is {} after {} events; replay matches: {}",
            stored.status.as_str(),
            events.len(),
            CaseState::replay(&events) == stored
        );
        Ok::<_, Box<dyn Error>>(())
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#![allow(clippy::unwrap_used)]
//! A cross-item stage's clock follows its item cases as the stage declares:
//! an item case's 专家评审 (declared in the stage's `pauses_for`, with its
//! rule) stops the stage limit, which moves by the working days it took; an
//! item case's 实地核查 (not declared) leaves it alone. The hand-offs run
//! through the engine like sub-case results (each once, keyed).
//!
//! The test drives the engine's clock, so it is the only test in this binary.

mod common;

use chrono::NaiveDateTime;
use common::{actor, complete, req};
use govflow_engine::app::clock::ManualClock;
use govflow_engine::app::load_registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::Command;
use govflow_engine::service::Engine;
use govflow_engine::store::{Options, Store};
use std::sync::Arc;

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

/// The engines' clock.
fn manual() -> Arc<ManualClock> {
    static CLOCK: std::sync::OnceLock<Arc<ManualClock>> = std::sync::OnceLock::new();
    CLOCK
        .get_or_init(|| Arc::new(ManualClock::at(t("2025-09-01 08:00"))))
        .clone()
}

fn clock(at: &str) {
    manual().set(t(at));
}

fn special(kind: &str, start: bool) -> Command {
    if start {
        Command::StartSpecial {
            step: "review".into(),
            kind: kind.into(),
            reason: "测试".into(),
            days: Some(3),
            by: actor("x", None),
            notice: Some("告知书（测试）".into()),
        }
    } else {
        Command::EndSpecial {
            step: "review".into(),
            kind: kind.into(),
            result: "完成".into(),
            opinion: None,
            approved: None,
            by: actor("x", None),
        }
    }
}

#[tokio::test]
async fn a_stage_follows_the_item_procedures_it_declares() {
    // The application layer over the in-memory store: no file, no server.
    let store = Store::open("memory:", &Options::default()).await.unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/stage_clock");
    for name in ["stage_x", "item_x"] {
        let source = std::fs::read_to_string(fixtures.join(format!("{name}.flow"))).unwrap();
        store
            .deploy(
                name,
                &source,
                &format!("{name}.flow"),
                "test",
                t("2025-09-01 08:00"),
            )
            .await
            .unwrap();
    }
    let (flows, problems) = load_registry(&store).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let engine = Engine::new(
        store.clone(),
        Arc::new(flows),
        Arc::new(Calendar::china()),
        None,
    )
    .with_clock(manual());

    // The stage is accepted on Monday 2025-09-29, before 国庆 (10-01..10-08 off,
    // 10-11 a make-up Saturday): its limit of 10 working days ends 10-20.
    clock("2025-09-29 09:00");
    let start = common::start(&[]);
    let stage = engine
        .execute(&req(None, Some("stage_x"), start))
        .await
        .unwrap()
        .case_no;
    engine
        .execute(&req(Some(&stage), None, complete("accept", "lead", None)))
        .await
        .unwrap();
    let parent = store.case(&stage).await.unwrap().unwrap();
    let due_before = parent.subflows["permits"]
        .deadline
        .clone()
        .unwrap()
        .due_date;
    assert_eq!(
        due_before,
        Some(chrono::NaiveDate::from_ymd_opt(2025, 10, 20).unwrap())
    );
    let tasks = store.tasks(None, None, 100, 0).await.unwrap();
    let item = tasks
        .iter()
        .find(|r| r.case_no != stage)
        .unwrap()
        .case_no
        .clone();
    engine
        .execute(&req(Some(&item), None, complete("accept", "x", None)))
        .await
        .unwrap();

    // 实地核查 in the item case: not declared by the stage, which runs on.
    engine
        .execute(&req(Some(&item), None, special("实地核查", true)))
        .await
        .unwrap();
    let parent = store.case(&stage).await.unwrap().unwrap();
    assert!(parent.subflows["permits"].paused.is_none());
    clock("2025-09-30 09:00");
    engine
        .execute(&req(Some(&item), None, special("实地核查", false)))
        .await
        .unwrap();

    // 专家评审: declared, so the stage's clock stops (its timer is gone) ...
    engine
        .execute(&req(Some(&item), None, special("专家评审", true)))
        .await
        .unwrap();
    let parent = store.case(&stage).await.unwrap().unwrap();
    assert!(parent.subflows["permits"].paused.is_some());
    assert!(!parent.timers().iter().any(|t| t.key == "stage:permits"));
    // ... and resumes after the holiday: 2 working days (10-09, 10-10) stood still.
    clock("2025-10-10 09:00");
    engine
        .execute(&req(Some(&item), None, special("专家评审", false)))
        .await
        .unwrap();
    let parent = store.case(&stage).await.unwrap().unwrap();
    assert!(parent.subflows["permits"].paused.is_none());
    let due_after = parent.subflows["permits"]
        .deadline
        .clone()
        .unwrap()
        .due_date;
    assert_eq!(
        due_after,
        Some(chrono::NaiveDate::from_ymd_opt(2025, 10, 22).unwrap())
    );
    assert!(parent.timers().iter().any(|t| t.key == "stage:permits"));
    // One pause and one resume, each once, with the stage's rule.
    let events = store.events(&stage).await.unwrap();
    let clocks: Vec<(bool, Option<String>)> = events
        .iter()
        .filter_map(|e| match e {
            govflow_engine::core::Event::StageClock { paused, basis, .. } => {
                Some((*paused, basis.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(clocks.len(), 2, "{clocks:?}");
    assert!(clocks[0].0 && !clocks[1].0);
    assert!(
        clocks[0]
            .1
            .as_deref()
            .is_some_and(|b| b.contains("示例办法"))
    );
}

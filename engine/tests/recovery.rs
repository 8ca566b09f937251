#![allow(clippy::unwrap_used)]
//! Hand-offs between cases cut short by a crash are redone at start-up, once:
//! a stage whose sub-cases were never started gets them, and sub-cases that
//! finished without reporting are reported.

mod common;

use chrono::NaiveDateTime;
use common::{complete, req};
use govflow_engine::app::load_registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::Status;
use govflow_engine::service::Engine;
use govflow_engine::store::{Options, Store, Table};
use std::sync::Arc;

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

#[tokio::test]
async fn cut_hand_offs_are_redone_once() {
    let dir = std::env::temp_dir().join(format!("govflow-recovery-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.join("r.db").display()),
        &Options::default(),
    )
    .await
    .unwrap();
    let fixtures =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/subflow");
    for name in ["stage", "child_a", "child_b"] {
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
    );
    let at = t("2025-09-26 10:00");
    let start = common::start(&[]);
    // Straight through the store: the parent reaches its stage, but (as if
    // the process died) no sub-case is started.
    let parent = store
        .execute(
            &req(None, Some("stage"), start),
            &engine.flows,
            &engine.calendar(),
            at,
        )
        .await
        .unwrap()
        .case_no;
    store
        .execute(
            &req(Some(&parent), None, complete("accept", "lead", None)),
            &engine.flows,
            &engine.calendar(),
            at,
        )
        .await
        .unwrap();
    assert_eq!(store.count(Table::Cases).await.unwrap(), 1);

    // Recovery starts both sub-cases; a second run changes nothing.
    assert_eq!(engine.recover().await, 2);
    assert_eq!(store.count(Table::Cases).await.unwrap(), 3);
    assert_eq!(engine.recover().await, 0);
    assert_eq!(store.count(Table::Cases).await.unwrap(), 3);

    // Both children finish, again without reporting (straight through the store).
    let tasks = store.tasks(None, None, 100, 0).await.unwrap();
    for row in tasks.iter().filter(|r| r.case_no != parent) {
        store
            .execute(
                &req(
                    Some(&row.case_no),
                    None,
                    complete("review", &row.department, None),
                ),
                &engine.flows,
                &engine.calendar(),
                at,
            )
            .await
            .unwrap();
    }
    let before = store.case(&parent).await.unwrap().unwrap();
    assert!(before.tasks.is_empty(), "the stage still waits");

    // Recovery reports them: the stage joins and the parent moves on.
    assert_eq!(engine.recover().await, 2);
    let after = store.case(&parent).await.unwrap().unwrap();
    assert_eq!(after.status, Status::Accepted);
    assert_eq!(
        after
            .tasks
            .values()
            .map(|t| t.step.as_str())
            .collect::<Vec<_>>(),
        ["finish"]
    );
    assert_eq!(engine.recover().await, 0);
    let _ = std::fs::remove_dir_all(&dir);
}

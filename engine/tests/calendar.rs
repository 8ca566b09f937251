#![allow(clippy::unwrap_used)]
//! Past the official calendar: deadlines are provisional, never null; when
//! the year's arrangement is deployed, every open case's provisional
//! deadlines are recomputed (one event per case and calendar version), their
//! timers move, a card raised only by the provisional deadline is cleared and
//! a deadline that moved earlier raises its card at once.
//!
//! The 2027 arrangement used here is a TEST-ONLY fixture, not the State
//! Council's (unpublished as this is written). The test drives the engine's
//! clock (a `ManualClock` every engine here shares), so it is the only test in
//! this binary.

mod common;

use chrono::{NaiveDate, NaiveDateTime};
use common::{complete, req};
use govflow_engine::app::clock::{Clock, ManualClock};
use govflow_engine::app::load_registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::calendar::deployments::deployment_id;
use govflow_engine::service::Engine;
use govflow_engine::store::{Options, Store};
use std::sync::Arc;

/// TEST-ONLY: not the official 2027 arrangement. 元旦, a made-up holiday week
/// 01-04..01-08, and 春节 on the weekend only (02-05 and 02-08, off under the
/// provisional rule, are working days here).
const TEST_ONLY_2027: &str = "# TEST-ONLY fixture: not the official 2027 arrangement\nyear 2027\n2027-01-01 off 元旦\n2027-01-04 off 测试假日\n2027-01-05 off 测试假日\n2027-01-06 off 测试假日\n2027-01-07 off 测试假日\n2027-01-08 off 测试假日\n2027-02-06 off 春节\n2027-02-07 off 春节\n";

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}
fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// The engines' clock.
fn manual() -> Arc<ManualClock> {
    static CLOCK: std::sync::OnceLock<Arc<ManualClock>> = std::sync::OnceLock::new();
    CLOCK
        .get_or_init(|| Arc::new(ManualClock::at(t("2026-01-05 08:00"))))
        .clone()
}

/// Sets the engines' clock to `at` (China Standard Time).
fn clock(at: &str) -> NaiveDateTime {
    manual().set(t(at));
    t(at)
}

async fn engine(name: &str) -> Engine {
    let dir = std::env::temp_dir().join(format!("govflow-cal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &format!("sqlite://{}", dir.join("c.db").display()),
        &Options::default(),
    )
    .await
    .unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let source =
        std::fs::read_to_string(root.join("flows/reference/parallel_approval.flow")).unwrap();
    store
        .deploy(
            "parallel_approval",
            &source,
            "parallel_approval.flow",
            "test",
            t("2026-01-05 08:00"),
        )
        .await
        .unwrap();
    let (flows, problems) = load_registry(&store).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let rules = govflow_engine::supervision::RuleBook::load_dir(&root.join("rules")).unwrap();
    let engine = Engine::new(
        store,
        Arc::new(flows),
        Arc::new(Calendar::china()),
        Some(Arc::new(rules)),
    )
    .with_clock(manual());
    engine.load_calendar(true).await.unwrap();
    engine
}

/// Registers a case and accepts it now; returns its number.
async fn accepted_case(engine: &Engine) -> String {
    let start = common::start(&["application", "project_doc", "land_doc"]);
    let no = engine
        .execute(&req(None, Some("parallel_approval"), start))
        .await
        .unwrap()
        .case_no;
    let accept = complete("accept", "window", Some("clerk"));
    engine.execute(&req(Some(&no), None, accept)).await.unwrap();
    no
}

async fn deploy_fixture(engine: &Engine) {
    let (_, new) = engine
        .store
        .deploy(
            &deployment_id("CN", 2027),
            TEST_ONLY_2027,
            "TEST_ONLY_2027",
            "test",
            manual().now(),
        )
        .await
        .unwrap();
    assert!(new);
}

async fn card(
    engine: &Engine,
    case: &str,
    rule: &str,
) -> Option<govflow_engine::store::cards::Alarm> {
    let filter = govflow_engine::store::cards::AlarmFilter {
        case_no: Some(case.into()),
        rule: Some(rule.into()),
        ..Default::default()
    };
    let cards = engine.store.alarms(&filter, 100, 0).await.unwrap();
    cards
        .into_iter()
        .filter(|a| a.subject == "case")
        .max_by_key(|a| a.id)
}

#[tokio::test]
async fn provisional_deadlines_are_recomputed_when_the_year_is_deployed() {
    // --- A deadline that moves later: the overrun card is cleared. ---
    let engine = engine("later").await;
    clock("2026-12-28 10:00");
    let no = accepted_case(&engine).await;
    let case = engine.store.case(&no).await.unwrap().unwrap();
    let statutory = case.statutory.clone().unwrap();
    let promised = case.promised.clone().unwrap();
    // 20 and 10 working days from 2026-12-28, past 2026-12-31: provisional,
    // with 元旦 off and no 调休.
    assert_eq!(statutory.due_date, Some(d("2027-01-26")));
    assert_eq!(promised.due_date, Some(d("2027-01-12")));
    assert!(statutory.provisional && promised.provisional);

    // 2027-01-13: the provisional promised deadline has passed; the timer
    // fires and the yellow card (超承诺时限) is raised.
    let now = clock("2027-01-13 10:00");
    assert!(engine.tick(now).await.unwrap() > 0);
    let yellow = card(&engine, &no, "case_deadline").await.unwrap();
    assert_eq!(
        (yellow.level.as_str(), yellow.state.as_str()),
        ("yellow", "issued")
    );

    deploy_fixture(&engine).await;
    assert!(
        engine.refresh_calendar().await,
        "the new calendar is put in force"
    );
    assert_eq!(engine.calendar().covered_until(), d("2027-12-31"));
    let stats = engine.recompute_provisional().await;
    assert_eq!((stats.recomputed, stats.failed), (1, 0), "{stats:?}");
    let case = engine.store.case(&no).await.unwrap().unwrap();
    let statutory = case.statutory.clone().unwrap();
    let promised = case.promised.clone().unwrap();
    assert_eq!(statutory.due_date, Some(d("2027-02-02")));
    assert_eq!(promised.due_date, Some(d("2027-01-19")));
    assert!(!statutory.provisional && !promised.provisional);
    // One event records the old and new deadlines.
    let events = engine.store.events(&no).await.unwrap();
    let recomputed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            govflow_engine::core::Event::DeadlinesRecomputed {
                calendar, changes, ..
            } => Some((calendar.clone(), changes.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(recomputed.len(), 1);
    assert_eq!(recomputed[0].0, "calendar/CN/2027 v1");
    let statutory_change = recomputed[0]
        .1
        .iter()
        .find(|c| c.key == "case:statutory")
        .unwrap();
    assert_eq!(statutory_change.was, Some(d("2027-01-26")));
    assert!(statutory_change.was_provisional);
    // The timers moved with the deadlines.
    let timers = case.timers();
    let promised_timer = timers.iter().find(|t| t.key == "case:promised").unwrap();
    assert_eq!(promised_timer.due, t("2027-01-20 00:00"));
    // The yellow card was raised only by the provisional deadline: cleared, and its history says why.
    let cleared = card(&engine, &no, "case_deadline").await.unwrap();
    assert_eq!(cleared.id, yellow.id);
    assert_eq!(cleared.state, "closed");
    assert!(
        cleared
            .history
            .iter()
            .any(|(_, w)| w.contains("provisional deadline was recomputed")),
        "{:?}",
        cleared.history
    );
    // A second sweep (a restart, another node) changes nothing.
    let again = engine.recompute_provisional().await;
    assert_eq!(again.recomputed, 0, "{again:?}");
    let events_after = engine.store.events(&no).await.unwrap();
    assert_eq!(events_after.len(), events.len());

    // --- A corrected arrangement (version 2 of the year) moves the deadlines
    // counted with version 1; deploying version 1's text again (a rollback)
    // is a new version and moves them back. ---
    let corrected = TEST_ONLY_2027.replace("2027-01-04 off 测试假日\n", "");
    let v2 = govflow_engine::calendar::year::parse(&corrected).unwrap();
    let now = manual().now();
    let (dep, new) = govflow_engine::calendar::deployments::deploy_year(
        &engine.store,
        "CN",
        &v2,
        "v2",
        "test",
        now,
    )
    .await
    .unwrap();
    assert_eq!((dep.version, new), (2, true));
    assert!(engine.refresh_calendar().await);
    assert_eq!(engine.recompute_provisional().await.recomputed, 1);
    let statutory = engine
        .store
        .case(&no)
        .await
        .unwrap()
        .unwrap()
        .statutory
        .unwrap();
    assert_eq!(
        statutory.due_date,
        Some(d("2027-02-01")),
        "one day off less"
    );
    let v1 = govflow_engine::calendar::year::parse(TEST_ONLY_2027).unwrap();
    let (dep, new) = govflow_engine::calendar::deployments::deploy_year(
        &engine.store,
        "CN",
        &v1,
        "v1 again",
        "test",
        now,
    )
    .await
    .unwrap();
    assert_eq!((dep.version, new), (3, true), "a rollback is a new version");
    assert!(engine.refresh_calendar().await);
    assert_eq!(engine.recompute_provisional().await.recomputed, 1);
    let statutory = engine
        .store
        .case(&no)
        .await
        .unwrap()
        .unwrap()
        .statutory
        .unwrap();
    assert_eq!(statutory.due_date, Some(d("2027-02-02")));

    // --- A deadline that moves earlier: its card is raised at once. ---
    let engine = engine_b().await;
    clock("2027-01-27 10:00");
    let no = accepted_case(&engine).await;
    let promised = engine
        .store
        .case(&no)
        .await
        .unwrap()
        .unwrap()
        .promised
        .unwrap();
    // Provisional: 春节 02-05..02-08 off.
    assert_eq!(promised.due_date, Some(d("2027-02-12")));
    clock("2027-02-11 10:00");
    deploy_fixture(&engine).await;
    assert!(engine.refresh_calendar().await);
    let stats = engine.recompute_provisional().await;
    assert_eq!(stats.recomputed, 1, "{stats:?}");
    let promised = engine
        .store
        .case(&no)
        .await
        .unwrap()
        .unwrap()
        .promised
        .unwrap();
    assert_eq!(promised.due_date, Some(d("2027-02-10")));
    let raised = card(&engine, &no, "case_deadline").await.unwrap();
    assert_eq!(
        (raised.level.as_str(), raised.state.as_str()),
        ("yellow", "issued")
    );
}

async fn engine_b() -> Engine {
    engine("earlier").await
}

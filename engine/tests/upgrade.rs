#![allow(clippy::unwrap_used)]
//! A database made by the release before schema versions (committed
//! fixtures, see tests/fixtures/upgrade/README.md) is migrated when opened,
//! and its cases go on: their due timers fire, their open tasks complete,
//! new cases get new numbers. On SQLite, and on PostgreSQL when
//! `GOVFLOW_TEST_POSTGRES_URL` is set (the dump loaded into a schema of its own).

mod common;

use chrono::NaiveDateTime;
use common::{complete, req, start};
use govflow_engine::app::clock::{Clock, ManualClock};
use govflow_engine::app::registry::Registry;
use govflow_engine::service::Engine;
use govflow_engine::store::{Options, Store, schema};
use std::sync::Arc;

const APPLIED: &str = "3301002026120200000015";
const ACCEPTED: &str = "3301002026120200000023";

fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

fn unique(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{n}", std::process::id())
}

/// What a migrated database must hold and do.
async fn cases_go_on(store: Store, versions: Vec<i64>) {
    assert_eq!(versions, (1..=schema::latest()).collect::<Vec<_>>());
    let before = store.case(ACCEPTED).await.unwrap().unwrap();
    let open: Vec<&str> = before.tasks.values().map(|t| t.step.as_str()).collect();
    assert_eq!(open, ["planning_review", "env_review"], "{open:?}");
    let clock = Arc::new(ManualClock::at(t("2026-12-11 09:00")));
    let engine = Engine::new(
        store.clone(),
        Arc::new(Registry::new()),
        Arc::new(govflow_engine::calendar::Calendar::china()),
        None,
    )
    .with_clock(clock.clone());
    // The old database's flows, rule files and calendar years load as they are.
    let synced = engine.sync_deployments().await;
    assert!(synced.flows >= 20 && synced.rules, "{synced:?}");
    assert!(engine.deployment_problems().is_empty());
    // Both cases' timers were due (12-04 and 12-10) and fire now.
    let fired = engine.tick(clock.now()).await.unwrap();
    assert!(fired >= 2, "fired {fired}");
    for no in [APPLIED, ACCEPTED] {
        let events = store.events(no).await.unwrap();
        assert!(
            events.iter().any(|e| e.at() >= t("2026-12-11 09:00")),
            "{no}: nothing happened after the upgrade"
        );
    }
    // The open task completes on the migrated snapshot.
    let out = engine
        .execute(&req(
            Some(ACCEPTED),
            None,
            complete("planning_review", "planning", None),
        ))
        .await
        .unwrap();
    assert!(!out.events.is_empty());
    let after = store.case(ACCEPTED).await.unwrap().unwrap();
    assert!(after.tasks.values().all(|t| t.step != "planning_review"));
    // A new case gets a number after the old ones.
    let new = engine
        .execute(&req(
            None,
            Some("parallel_approval"),
            start(&["application", "project_doc", "land_doc"]),
        ))
        .await
        .unwrap();
    assert!(new.case_no.as_str() > ACCEPTED, "{}", new.case_no);
    // Opening again finds nothing to do.
    assert_eq!(store.schema_versions().await.unwrap(), versions);
}

#[tokio::test]
async fn a_sqlite_database_of_the_previous_release_is_migrated_and_its_cases_go_on() {
    let dir = std::env::temp_dir().join(unique("gf_upgrade"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("old.sqlite");
    std::fs::copy(fixtures().join("v0.sqlite"), &file).unwrap();
    let store = Store::open(&format!("sqlite://{}", file.display()), &Options::default())
        .await
        .unwrap();
    let versions = store.schema_versions().await.unwrap();
    cases_go_on(store, versions).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_postgres_database_of_the_previous_release_is_migrated_and_its_cases_go_on() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: PostgreSQL upgrade test skipped");
        return;
    };
    let schema_name = unique("gf_upgrade");
    let dump = std::fs::read_to_string(fixtures().join("v0-postgres.sql"))
        .unwrap()
        .replace("govflow_v0", &schema_name);
    let loader = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&pg)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(dump))
        .execute(&loader)
        .await
        .unwrap();
    loader.close().await;
    let opts = Options {
        pg_schema: Some(schema_name),
        ..Options::default()
    };
    let store = Store::open(&pg, &opts).await.unwrap();
    let versions = store.schema_versions().await.unwrap();
    cases_go_on(store, versions).await;
}

#[tokio::test]
async fn a_database_a_newer_release_migrated_is_refused() {
    let dir = std::env::temp_dir().join(unique("gf_newer"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("n.db").display());
    let store = Store::open(&url, &Options::default()).await.unwrap();
    store.close().await;
    let raw = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&url)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (999, 'from the future', true, x'00', 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    let err = Store::open(&url, &Options::default())
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("version 999"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#![allow(clippy::unwrap_used)]
//! The storage conformance suite: every test runs on each backend — the
//! in-memory store, SQLite and, when `GOVFLOW_TEST_POSTGRES_URL` is set,
//! PostgreSQL (each run in a fresh schema) — and expects the same results.
//!
//! Why this file is long: it is one suite over one shared set-up (backends,
//! a deployed flow, started and accepted cases); each test is one contract
//! of the storage traits.

use chrono::NaiveDateTime;
use govflow_engine::app::load_registry;
use govflow_engine::app::registry::Registry;
use govflow_engine::calendar::Calendar;
use govflow_engine::core::ids::IdKind;
use govflow_engine::core::{Actor, CaseState, Command, Event, MaterialIn, Person, Status};
use govflow_engine::store::chain::ChainHash;
use govflow_engine::store::{Options, Request, Store, Table};
use std::sync::Arc;

const FLOW: &str = include_str!("../../flows/reference/parallel_approval.flow");

fn t(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
}

struct Backend {
    name: &'static str,
    store: Store,
    _dir: Option<TempDir>,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique(tag: &str) -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}_{}_{n}", std::process::id())
}

async fn backends(tag: &str) -> Vec<Backend> {
    let dir = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let mut out = vec![
        Backend {
            name: "memory",
            store: Store::open("memory:", &Options::default()).await.unwrap(),
            _dir: None,
        },
        Backend {
            name: "sqlite",
            store: Store::open(&url, &Options::default()).await.unwrap(),
            _dir: Some(TempDir(dir)),
        },
    ];
    match std::env::var("GOVFLOW_TEST_POSTGRES_URL") {
        Ok(pg) if !pg.is_empty() => {
            let opts = Options {
                pg_schema: Some(unique(&format!("gf_{tag}"))),
                ..Options::default()
            };
            out.push(Backend {
                name: "postgres",
                store: Store::open(&pg, &opts).await.unwrap(),
                _dir: None,
            });
        }
        _ => eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: PostgreSQL storage tests skipped"),
    }
    out
}

async fn deploy(store: &Store, source: &str) -> Registry {
    store
        .deploy(
            "parallel_approval",
            source,
            "parallel_approval.flow",
            "test",
            t("2025-09-01 08:00"),
        )
        .await
        .unwrap();
    let (reg, problems) = load_registry(store).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    reg
}

fn actor(name: &str, dept: &str, role: Option<&str>) -> Actor {
    Actor {
        name: name.into(),
        department: Some(dept.into()),
        role: role.map(str::to_string),
    }
}

fn start() -> Command {
    Command::Start {
        case_no: String::new(),
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
    }
}

fn complete(step: &str, by: Actor) -> Command {
    Command::Complete {
        step: step.into(),
        action: "pass".into(),
        by,
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

fn req(case: Option<&str>, cmd: Command, key: Option<&str>) -> Request {
    Request {
        case_no: case.map(str::to_string),
        flow_id: Some("parallel_approval".into()),
        command: cmd,
        idempotency_key: key.map(str::to_string),
        actor: "test".into(),
        override_claims: false,
    }
}

/// A case started and accepted (the reviews open, their timers set).
async fn accepted(store: &Store, reg: &Registry, cal: &Calendar, at: NaiveDateTime) -> String {
    let no = store
        .execute(&req(None, start(), None), reg, cal, at)
        .await
        .unwrap()
        .case_no;
    let accept = complete("accept", actor("王芳", "window", Some("clerk")));
    store
        .execute(&req(Some(&no), accept, None), reg, cal, at)
        .await
        .unwrap();
    no
}

/// The reference workload: start, accept, three reviews, decide, issue.
async fn drive(store: &Store, reg: &Registry, cal: &Calendar, at: NaiveDateTime) -> String {
    let out = store
        .execute(&req(None, start(), None), reg, cal, at)
        .await
        .unwrap();
    let no = out.case_no.clone();
    for cmd in [
        complete("accept", actor("王芳", "window", Some("clerk"))),
        complete("dev_review", actor("李明", "dev", None)),
        complete("planning_review", actor("赵静", "planning", None)),
        complete("env_review", actor("孙强", "env", None)),
        complete("decide", actor("周局", "dev", None)),
        complete("issue", actor("王芳", "window", Some("clerk"))),
    ] {
        store
            .execute(&req(Some(&no), cmd, None), reg, cal, at)
            .await
            .unwrap();
    }
    no
}

#[tokio::test]
async fn a_case_runs_to_completion_and_replays_to_its_snapshot() {
    let cal = Calendar::china();
    for b in backends("complete").await {
        let reg = deploy(&b.store, FLOW).await;
        let no = drive(&b.store, &reg, &cal, t("2025-09-26 10:00")).await;
        assert!(govflow_engine::core::ids::is_case_number(&no), "{no}");
        assert!(no.starts_with("33010020250926"), "{no}");
        let snap = b.store.case(&no).await.unwrap().unwrap();
        assert_eq!(snap.status, Status::Completed, "{}", b.name);
        let events = b.store.events(&no).await.unwrap();
        assert_eq!(snap.version as usize, events.len());
        assert_eq!(
            CaseState::replay(&events),
            snap,
            "{}: replay differs",
            b.name
        );
        assert_eq!(b.store.count(Table::Tasks).await.unwrap(), 0);
        assert_eq!(b.store.count(Table::Timers).await.unwrap(), 0);
        // A second case gets the next number of the day.
        let no2 = drive(&b.store, &reg, &cal, t("2025-09-26 11:00")).await;
        assert!(no2 > no, "{no2} sorts after {no}");
    }
}

#[tokio::test]
async fn a_retried_command_is_applied_once() {
    let cal = Calendar::china();
    for b in backends("idem").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let first = b
            .store
            .execute(&req(None, start(), Some("k-start")), &reg, &cal, at)
            .await
            .unwrap();
        let again = b
            .store
            .execute(&req(None, start(), Some("k-start")), &reg, &cal, at)
            .await
            .unwrap();
        assert!(!first.replayed && again.replayed, "{}", b.name);
        assert_eq!(first.case_no, again.case_no);
        assert_eq!(first.events, again.events);
        assert_eq!(b.store.count(Table::Cases).await.unwrap(), 1, "{}", b.name);
        let accept = complete("accept", actor("王芳", "window", Some("clerk")));
        let r = req(Some(&first.case_no), accept, Some("k-accept"));
        let a1 = b.store.execute(&r, &reg, &cal, at).await.unwrap();
        let a2 = b.store.execute(&r, &reg, &cal, at).await.unwrap();
        assert!(a2.replayed);
        assert_eq!(a1.version, a2.version);
        let events = b.store.events(&first.case_no).await.unwrap();
        assert_eq!(
            events.len() as u64,
            a1.version,
            "{}: applied twice?",
            b.name
        );
        // The same key for another request is refused, not answered with the first result.
        let other = complete("dev_review", actor("李明", "dev", None));
        let err = b
            .store
            .execute(
                &req(Some(&first.case_no), other, Some("k-start")),
                &reg,
                &cal,
                at,
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("different request"),
            "{}: {err}",
            b.name
        );
        let err = b
            .store
            .execute(&req(None, start(), Some("k-accept")), &reg, &cal, at)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("different request"),
            "{}: {err}",
            b.name
        );
    }
}

#[tokio::test]
async fn a_refused_command_changes_nothing() {
    let cal = Calendar::china();
    for b in backends("refused").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let out = b
            .store
            .execute(&req(None, start(), None), &reg, &cal, at)
            .await
            .unwrap();
        let before = b.store.events(&out.case_no).await.unwrap().len();
        let audit_before = b.store.count(Table::Audit).await.unwrap();
        let wrong = complete("accept", actor("孙强", "env", None));
        let err = b
            .store
            .execute(&req(Some(&out.case_no), wrong, Some("k1")), &reg, &cal, at)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("assigned to window.clerk"),
            "{err}"
        );
        assert_eq!(b.store.events(&out.case_no).await.unwrap().len(), before);
        assert_eq!(b.store.count(Table::Commands).await.unwrap(), 0);
        assert_eq!(b.store.count(Table::Audit).await.unwrap(), audit_before);
        // The key was not consumed: the corrected command may use it.
        let right = complete("accept", actor("王芳", "window", Some("clerk")));
        b.store
            .execute(&req(Some(&out.case_no), right, Some("k1")), &reg, &cal, at)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn concurrent_commands_on_one_case_serialise() {
    let cal = Arc::new(Calendar::china());
    for b in backends("concurrent").await {
        let reg = Arc::new(deploy(&b.store, FLOW).await);
        let at = t("2025-09-26 10:00");
        let out = b
            .store
            .execute(&req(None, start(), None), &reg, &cal, at)
            .await
            .unwrap();
        let no = out.case_no.clone();
        let accept = complete("accept", actor("王芳", "window", Some("clerk")));
        b.store
            .execute(&req(Some(&no), accept, None), &reg, &cal, at)
            .await
            .unwrap();
        let mut handles = Vec::new();
        for (step, dept) in [
            ("dev_review", "dev"),
            ("planning_review", "planning"),
            ("env_review", "env"),
        ] {
            let (store, reg, cal, no) = (b.store.clone(), reg.clone(), cal.clone(), no.clone());
            handles.push(tokio::spawn(async move {
                let cmd = complete(step, actor("审查员", dept, None));
                store
                    .execute(&req(Some(&no), cmd, None), &reg, &cal, at)
                    .await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let snap = b.store.case(&no).await.unwrap().unwrap();
        let events = b.store.events(&no).await.unwrap();
        assert_eq!(CaseState::replay(&events), snap, "{}", b.name);
        // The work-list rows follow the snapshot (written by difference on SQLite).
        let rows = b.store.tasks(None, None, 100, 0).await.unwrap();
        let steps: Vec<&str> = rows
            .iter()
            .filter(|r| r.case_no == no)
            .map(|r| r.step.as_str())
            .collect();
        assert_eq!(steps, ["decide"], "{}", b.name);
        assert_eq!(
            snap.tasks
                .values()
                .map(|t| t.step.as_str())
                .collect::<Vec<_>>(),
            ["decide"],
            "{}",
            b.name
        );
    }
}

#[tokio::test]
async fn due_timers_fire_once() {
    let cal = Calendar::china();
    for b in backends("timers").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let no = accepted(&b.store, &reg, &cal, at).await;
        // Nothing is due yet.
        assert_eq!(b.store.tick(at, &reg, &cal, 100).await.unwrap().len(), 0);
        // Past the statutory deadline (2025-10-30): three step limits, the
        // parallel stage limit and both case clocks.
        let late = t("2025-11-03 09:00");
        let fired = b.store.tick(late, &reg, &cal, 100).await.unwrap();
        assert_eq!(fired.len(), 6, "{}", b.name);
        assert_eq!(
            b.store.tick(late, &reg, &cal, 100).await.unwrap().len(),
            0,
            "{}",
            b.name
        );
        let events = b.store.events(&no).await.unwrap();
        let passed: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::DeadlinePassed { timer, .. } => Some(timer.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(passed.len(), 6, "{}: {passed:?}", b.name);
        assert!(passed.contains(&"case:statutory".to_string()));
    }
}

#[tokio::test]
async fn running_cases_keep_their_flow_version() {
    let cal = Calendar::china();
    for b in backends("versions").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let old = b
            .store
            .execute(&req(None, start(), None), &reg, &cal, at)
            .await
            .unwrap();
        // A new version: the decision step is renamed.
        let v2 = FLOW.replace("task decide \"决定\"", "task decide \"审批决定\"");
        let reg = deploy(&b.store, &v2).await;
        let deployments = b.store.deployments("parallel_approval").await.unwrap();
        assert_eq!(deployments.len(), 2, "{}", b.name);
        assert_ne!(deployments[0].hash, deployments[1].hash);
        let new = b
            .store
            .execute(&req(None, start(), None), &reg, &cal, at)
            .await
            .unwrap();
        let old_state = b.store.case(&old.case_no).await.unwrap().unwrap();
        let new_state = b.store.case(&new.case_no).await.unwrap().unwrap();
        assert_eq!(
            (old_state.flow_version, new_state.flow_version),
            (1, 2),
            "{}",
            b.name
        );
        // Redeploying the same text changes nothing.
        let (_, fresh) = b
            .store
            .deploy(
                "parallel_approval",
                &v2,
                "parallel_approval.flow",
                "test",
                at,
            )
            .await
            .unwrap();
        assert!(!fresh);
        // The old case still runs on version 1.
        let accept = complete("accept", actor("王芳", "window", Some("clerk")));
        b.store
            .execute(&req(Some(&old.case_no), accept, None), &reg, &cal, at)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn two_nodes_share_timers_on_postgres() {
    let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") else {
        eprintln!("GOVFLOW_TEST_POSTGRES_URL is not set: two-node timer test skipped");
        return;
    };
    let cal = Arc::new(Calendar::china());
    let opts = Options {
        pg_schema: Some(unique("gf_nodes")),
        ..Options::default()
    };
    let a = Store::open(&pg, &opts).await.unwrap();
    let b = Store::open(&pg, &opts).await.unwrap();
    let reg = Arc::new(deploy(&a, FLOW).await);
    let at = t("2025-09-26 10:00");
    let mut cases = Vec::new();
    for _ in 0..40 {
        let out = a
            .execute(&req(None, start(), None), &reg, &cal, at)
            .await
            .unwrap();
        let accept = complete("accept", actor("王芳", "window", Some("clerk")));
        a.execute(&req(Some(&out.case_no), accept, None), &reg, &cal, at)
            .await
            .unwrap();
        cases.push(out.case_no);
    }
    // One timer row per case (its next due instant); six timers each in the snapshots.
    assert_eq!(a.count(Table::Timers).await.unwrap(), 40);
    let timers = 40 * 6;
    let late = t("2025-11-03 09:00");
    let mut handles = Vec::new();
    for node in [a.clone(), b.clone(), a.clone(), b.clone()] {
        let (reg, cal) = (reg.clone(), cal.clone());
        handles.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let f = node.tick(late, &reg, &cal, 7).await.unwrap().len();
                n += f;
                if f == 0 {
                    return n;
                }
            }
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    assert_eq!(total as i64, timers, "each timer fires exactly once");
    let mut passed = 0;
    for no in &cases {
        passed += a
            .events(no)
            .await
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::DeadlinePassed { .. }))
            .count();
    }
    assert_eq!(passed as i64, timers);
}

fn verdict(
    rule: &str,
    subject: &str,
    level: Option<govflow_dsl::rule::Level>,
) -> govflow_engine::supervision::Verdict {
    govflow_engine::supervision::Verdict {
        rule: rule.into(),
        name: "测试规则".into(),
        class: "timeliness".into(),
        subtype: "case_overdue".into(),
        subject: subject.into(),
        department: "dev".into(),
        level,
        error: None,
    }
}

/// A card's life on both backends: a warning is pending, yellow issues it,
/// an appeal revokes it, a revoked card stays quiet at its level and a
/// higher level raises a new one, a cleared condition closes it (or cancels
/// a warning); ratings are one per case and account.
#[tokio::test]
async fn cards_live_through_their_states() {
    use govflow_dsl::rule::Level::{Notice, Red, Yellow};
    use govflow_engine::core::card::{AppealOutcome, CardCommand};
    use govflow_engine::store::cards::{AlarmFilter, Rating};
    for b in backends("cards").await {
        let reg = deploy(&b.store, FLOW).await;
        let cal = Calendar::china();
        let at = t("2025-09-26 10:00");
        let no = drive(&b.store, &reg, &cal, at).await;
        let s = &b.store;
        let ch = s
            .sync_cards(
                &no,
                &[
                    verdict("r", "case", Some(Notice)),
                    verdict("w", "case", Some(Notice)),
                ],
                at,
            )
            .await
            .unwrap();
        assert_eq!(ch.len(), 2, "{}", b.name);
        let all = |state: &'static str| {
            let f = AlarmFilter {
                case_no: Some(no.clone()),
                state: Some(state.into()),
                ..Default::default()
            };
            async move { s.alarms(&f, 50, 0).await.unwrap() }
        };
        assert_eq!(all("pending").await.len(), 2, "{}", b.name);
        // Yellow: r becomes a card; w's warning ends and is cancelled.
        s.sync_cards(
            &no,
            &[
                verdict("r", "case", Some(Yellow)),
                verdict("w", "case", None),
            ],
            at,
        )
        .await
        .unwrap();
        let issued = all("issued").await;
        assert_eq!(
            (issued.len(), issued[0].level.as_str()),
            (1, "yellow"),
            "{}",
            b.name
        );
        assert_eq!(all("cancelled").await.len(), 1, "{}", b.name);
        let id = issued[0].id;
        // Appeal, then revoke; a wrong state is refused. Two appeals sent at
        // once: the card is decided on under its case's lock, one wins.
        let appeal = CardCommand::Appeal {
            by: "dev".into(),
            reason: "appealed".into(),
        };
        let twice: Vec<_> = (0..2)
            .map(|_| {
                let (st, cmd) = (s.clone(), appeal.clone());
                tokio::spawn(async move { st.transition_alarm(id, &cmd, "dev", at).await })
            })
            .collect();
        let mut won = 0;
        for h in twice {
            won += usize::from(h.await.unwrap().is_ok());
        }
        assert_eq!(won, 1, "{}: concurrent appeals", b.name);
        let revoke = CardCommand::DecideAppeal {
            by: "supervisor".into(),
            outcome: AppealOutcome::Revoke,
            opinion: None,
        };
        let card = s
            .transition_alarm(id, &revoke, "supervisor", at)
            .await
            .unwrap();
        assert_eq!(card.state, "revoked", "{}", b.name);
        assert!(
            s.transition_alarm(id, &revoke, "supervisor", at)
                .await
                .is_err(),
            "{}",
            b.name
        );
        // Still yellow: quiet. Red: a new card.
        assert!(
            s.sync_cards(&no, &[verdict("r", "case", Some(Yellow))], at)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        s.sync_cards(&no, &[verdict("r", "case", Some(Red))], at)
            .await
            .unwrap();
        let issued = all("issued").await;
        assert_eq!(
            (issued.len(), issued[0].level.as_str()),
            (1, "red"),
            "{}",
            b.name
        );
        assert_ne!(issued[0].id, id);
        // The condition clears: closed, history kept.
        s.sync_cards(&no, &[verdict("r", "case", None)], at)
            .await
            .unwrap();
        let closed = all("closed").await;
        assert_eq!(closed.len(), 1, "{}", b.name);
        assert_eq!(
            closed[0].history.last().map(|h| h.1.as_str()),
            Some("resolved"),
            "{}",
            b.name
        );
        assert_eq!(all("open").await.len(), 0, "{}", b.name);
        // A supervisor closes a card after checking it: it stays quiet at its level.
        s.sync_cards(&no, &[verdict("t", "case", Some(Yellow))], at)
            .await
            .unwrap();
        let t_id = all("issued")
            .await
            .iter()
            .find(|a| a.rule == "t")
            .map(|a| a.id)
            .unwrap();
        let verify = CardCommand::Verify {
            by: "supervisor".into(),
            opinion: "checked".into(),
        };
        s.transition_alarm(t_id, &verify, "supervisor", at)
            .await
            .unwrap();
        assert!(
            s.sync_cards(&no, &[verdict("t", "case", Some(Yellow))], at)
                .await
                .unwrap()
                .is_empty(),
            "{}",
            b.name
        );
        assert_eq!(all("verified").await.len(), 1, "{}", b.name);
        // Confirmed anomalies: a yellow or red card that got an order counts for its
        // department; the verified and revoked ones without an order do not.
        s.sync_cards(&no, &[verdict("o", "case", Some(Red))], at)
            .await
            .unwrap();
        let o_id = all("issued")
            .await
            .iter()
            .find(|a| a.rule == "o")
            .map(|a| a.id)
            .unwrap();
        let ordered = CardCommand::Ordered {
            by: "engine".into(),
            order_case: "X".into(),
            to: "dev".into(),
        };
        s.transition_alarm(o_id, &ordered, "engine", at)
            .await
            .unwrap();
        let figures = s.staff_figures(t("2025-01-01 00:00")).await.unwrap();
        assert_eq!(
            figures.get("dev").map(|f| f.anomalies),
            Some(1),
            "{}: {figures:?}",
            b.name
        );
        // Ratings.
        let r = Rating {
            case_no: no.clone(),
            account: "u1".into(),
            score: 4,
            reason: None,
            department: "window".into(),
            flow_id: "parallel_approval".into(),
            at: None,
        };
        assert!(s.rate(&r, at).await.unwrap(), "{}", b.name);
        assert!(
            !s.rate(
                &Rating {
                    score: 1,
                    ..r.clone()
                },
                at
            )
            .await
            .unwrap(),
            "{}",
            b.name
        );
        let got = s.ratings(Some(&no), 10).await.unwrap();
        assert_eq!((got.len(), got[0].score), (1, 4), "{}", b.name);
    }
}

/// A claimed task is its holder's to complete, whoever calls the store (the
/// HTTP server, the CLI, an embedding program), and a claim racing a
/// completion of the same task is decided inside the transactions: exactly
/// one of them wins, never both.
#[tokio::test]
async fn claims_are_decided_inside_the_command_transaction() {
    let cal = Arc::new(Calendar::china());
    for b in backends("claims").await {
        let reg = Arc::new(deploy(&b.store, FLOW).await);
        let at = t("2025-09-26 10:00");
        let mut cases = Vec::new();
        for _ in 0..12 {
            cases.push(accepted(&b.store, &reg, &cal, at).await);
        }
        let task_at = |s: &CaseState, step: &str| {
            s.tasks
                .values()
                .find(|t| t.step == step)
                .map(|t| i64::from(t.id))
                .unwrap()
        };
        let as_user = |no: &str, cmd: Command, login: &str| {
            let mut r = req(Some(no), cmd, None);
            r.actor = login.into();
            r
        };
        // Claimed by a: b's completion is refused by the store itself.
        let no = &cases[0];
        let snap = b.store.case(no).await.unwrap().unwrap();
        let claim = b
            .store
            .claim_task(no, task_at(&snap, "dev_review"), "a", "甲", at)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.login, "a");
        let refused = b
            .store
            .execute(
                &as_user(no, complete("dev_review", actor("乙", "dev", None)), "b"),
                &reg,
                &cal,
                at,
            )
            .await;
        assert!(
            matches!(refused, Err(govflow_engine::store::ExecError::Claimed(ref c)) if c.login == "a"),
            "{}: {refused:?}",
            b.name
        );
        // An administrator may still act; the holder may too.
        let mut admin = as_user(
            no,
            complete("dev_review", actor("管理员", "dev", None)),
            "admin",
        );
        admin.override_claims = true;
        b.store.execute(&admin, &reg, &cal, at).await.unwrap();
        // Races: a claims planning_review while b completes it.
        let mut claims_won = 0;
        let mut completions_won = 0;
        for (i, no) in cases[1..].iter().enumerate() {
            let snap = b.store.case(no).await.unwrap().unwrap();
            let task = task_at(&snap, "planning_review");
            let (store, no2) = (b.store.clone(), no.clone());
            let claim = async move { store.claim_task(&no2, task, "a", "甲", at).await };
            let (store, reg2, cal2) = (b.store.clone(), reg.clone(), cal.clone());
            let cmd = as_user(
                no,
                complete("planning_review", actor("乙", "planning", None)),
                "b",
            );
            let done = async move { store.execute(&cmd, &reg2, &cal2, at).await };
            // Either may be sent first.
            let (claim, done) = if i % 2 == 0 {
                let c = tokio::spawn(claim);
                (c, tokio::spawn(done))
            } else {
                let d = tokio::spawn(done);
                tokio::task::yield_now().await;
                (tokio::spawn(claim), d)
            };
            let claimed = claim.await.unwrap().unwrap().is_some();
            let completed = done.await.unwrap().is_ok();
            assert!(
                claimed != completed,
                "{} {no}: claimed {claimed}, completed {completed}",
                b.name
            );
            claims_won += usize::from(claimed);
            completions_won += usize::from(completed);
            let snap = b.store.case(no).await.unwrap().unwrap();
            assert_eq!(
                snap.tasks.values().any(|t| t.step == "planning_review"),
                claimed,
                "{}",
                b.name
            );
        }
        assert_eq!(claims_won + completions_won, cases.len() - 1);
        eprintln!(
            "{}: of {} races, claims won {claims_won}, completions won {completions_won}",
            b.name,
            cases.len() - 1
        );
    }
}

/// A node that cannot run a case's flow (it has not loaded that version)
/// leaves the case's due timers for another node or a later try, backing
/// off 1 s, 2 s, 4 s …; it never drops them. The first failure is audited.
#[tokio::test]
async fn a_timer_this_node_cannot_run_is_left_for_later() {
    let cal = Calendar::china();
    for b in backends("deferred").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        accepted(&b.store, &reg, &cal, at).await;
        let late = t("2025-11-03 09:00");
        let unknown = Registry::new();
        assert!(
            b.store
                .tick(late, &unknown, &cal, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(b.store.count(Table::Timers).await.unwrap(), 1, "{}", b.name);
        assert_eq!(
            b.store.next_timer().await.unwrap().as_deref(),
            Some("2025-11-03T09:00:01"),
            "{}: the claim waits 1 s",
            b.name
        );
        let again = late + chrono::Duration::seconds(1);
        assert!(
            b.store
                .tick(again, &unknown, &cal, 100)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            b.store.next_timer().await.unwrap().as_deref(),
            Some("2025-11-03T09:00:03"),
            "{}: then 2 s",
            b.name
        );
        let audit = b.store.audit(50).await.unwrap();
        let deferred = audit
            .iter()
            .filter(|a| a["action"] == "timer_deferred")
            .count();
        assert_eq!(deferred, 1, "{}: the first failure is audited once", b.name);
        // A node that has the flow fires every due timer.
        let later = late + chrono::Duration::seconds(10);
        let fired = b.store.tick(later, &reg, &cal, 100).await.unwrap();
        assert_eq!(fired.len(), 6, "{}", b.name);
    }
}

/// The same commands give the same case, events, work list and audit
/// actions on every backend.
#[tokio::test]
async fn every_backend_records_the_same_history() {
    let cal = Calendar::china();
    let mut seen: Vec<(&str, Vec<Event>, CaseState, Vec<String>)> = Vec::new();
    for b in backends("same").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let no = accepted(&b.store, &reg, &cal, at).await;
        b.store
            .tick(t("2025-11-03 09:00"), &reg, &cal, 100)
            .await
            .unwrap();
        let events = b.store.events(&no).await.unwrap();
        let snap = b.store.case(&no).await.unwrap().unwrap();
        let tasks: Vec<String> = b
            .store
            .tasks(Some("planning"), None, 10, 0)
            .await
            .unwrap()
            .into_iter()
            .map(|r| format!("{} {} {:?}", r.step, r.department, r.due))
            .collect();
        assert_eq!(tasks.len(), 1, "{}", b.name);
        assert_eq!(snap.case_no, no, "{}", b.name);
        seen.push((b.name, events, snap, tasks));
    }
    let (first, rest) = seen.split_first().unwrap();
    for other in rest {
        assert_eq!(first.1, other.1, "events: {} vs {}", first.0, other.0);
        assert_eq!(first.2, other.2, "snapshot: {} vs {}", first.0, other.0);
        assert_eq!(first.3, other.3, "work list: {} vs {}", first.0, other.0);
    }
}

/// Deployments: a new source is a new version, the same source is not; the
/// marker moves with every deployment; a pack deploys its flows together
/// and is recorded once.
#[tokio::test]
async fn deployments_version_and_mark_every_change() {
    for b in backends("deploys").await {
        let at = t("2025-09-01 08:00");
        let s = &b.store;
        let (d1, new1) = s
            .deploy("f", "flow f v1", "f.flow", "ana", at)
            .await
            .unwrap();
        let (d1b, new1b) = s
            .deploy("f", "flow f v1", "f.flow", "ana", at)
            .await
            .unwrap();
        assert!(new1 && !new1b, "{}", b.name);
        assert_eq!((d1.version, d1b.version), (1, 1), "{}", b.name);
        let m1 = s.deployment_marker().await.unwrap();
        let (d2, _) = s
            .deploy("f", "flow f v2", "f.flow", "ana", at)
            .await
            .unwrap();
        assert_eq!(d2.version, 2, "{}", b.name);
        let m2 = s.deployment_marker().await.unwrap();
        assert!(m2.0 > m1.0, "{}", b.name);
        let after = s.deployments_after(m1.0).await.unwrap();
        assert_eq!(after.len(), 1, "{}", b.name);
        assert_eq!(after[0].2, "flow f v2", "{}", b.name);
        let items = vec![
            ("g".to_string(), "flow g".to_string(), "g.flow".to_string()),
            (
                "f".to_string(),
                "flow f v2".to_string(),
                "f.flow".to_string(),
            ),
        ];
        let out = s
            .deploy_many("pack1", "{\"id\":\"pack1\"}", &items, "dep", at)
            .await
            .unwrap();
        assert_eq!(
            out.iter().map(|(d, n)| (d.version, *n)).collect::<Vec<_>>(),
            [(1, true), (2, false)],
            "{}",
            b.name
        );
        let m3 = s.deployment_marker().await.unwrap();
        assert_ne!(m3, m2, "{}", b.name);
        // The same pack again records nothing.
        s.deploy_many("pack1", "{\"id\":\"pack1\"}", &items, "dep", at)
            .await
            .unwrap();
        assert_eq!(s.deployment_marker().await.unwrap(), m3, "{}", b.name);
        assert_eq!(
            s.pack_manifests().await.unwrap(),
            [("pack1".to_string(), "{\"id\":\"pack1\"}".to_string())],
            "{}",
            b.name
        );
        let versions: Vec<i64> = s
            .deployments("f")
            .await
            .unwrap()
            .iter()
            .map(|d| d.version)
            .collect();
        assert_eq!(versions, [1, 2], "{}", b.name);
        let actions: Vec<String> = s
            .audit(10)
            .await
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            actions,
            ["deploy_pack", "deploy", "deploy", "deploy"],
            "{}: newest first, one row per deployment and one per pack",
            b.name
        );
    }
}

/// Blobs are written once: the same bytes again are accepted, other bytes
/// refused; keys are plain relative paths.
#[tokio::test]
async fn blobs_are_written_once() {
    for b in backends("blobs").await {
        let s = &b.store;
        assert!(
            s.put_blob("cases/1/a.pdf", b"%PDF-1").await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !s.put_blob("cases/1/a.pdf", b"%PDF-1").await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            s.put_blob("cases/1/a.pdf", b"other").await.is_err(),
            "{}",
            b.name
        );
        s.put_blob("cases/2/b.txt", "批文".as_bytes())
            .await
            .unwrap();
        assert_eq!(
            s.blob("cases/1/a.pdf").await.unwrap().as_deref(),
            Some(&b"%PDF-1"[..]),
            "{}",
            b.name
        );
        assert_eq!(s.blob("cases/9/none").await.unwrap(), None, "{}", b.name);
        assert_eq!(
            s.blob_keys("cases/").await.unwrap(),
            ["cases/1/a.pdf", "cases/2/b.txt"],
            "{}",
            b.name
        );
        assert_eq!(
            s.blob_keys("cases/2").await.unwrap(),
            ["cases/2/b.txt"],
            "{}",
            b.name
        );
        for bad in ["", "../etc/passwd", "/abs", "a//b", "a/./b", "a b", "a~1"] {
            assert!(s.put_blob(bad, b"x").await.is_err(), "{}: {bad:?}", b.name);
        }
    }
}

/// Users, tokens and sessions: a login is taken once, a session ends at
/// its expiry or at logout, a token finds its user.
#[tokio::test]
async fn users_tokens_and_sessions() {
    use govflow_engine::store::users::{Grant, User};
    for b in backends("users").await {
        let s = &b.store;
        let at = t("2026-12-01 09:00");
        let u = User {
            login: "wangfang".into(),
            name: "王芳".into(),
            roles: vec![Grant {
                role: "clerk".into(),
                department: Some("window".into()),
                position: None,
            }],
            disabled: false,
        };
        assert!(
            s.create_user(&u, Some("hash"), "admin", at).await.unwrap(),
            "{}",
            b.name
        );
        assert!(
            !s.create_user(&u, None, "admin", at).await.unwrap(),
            "{}",
            b.name
        );
        assert_eq!(
            s.users().await.unwrap(),
            std::slice::from_ref(&u),
            "{}",
            b.name
        );
        let (found, pw) = s.user_with_password("wangfang").await.unwrap().unwrap();
        assert_eq!(
            (found, pw.as_deref()),
            (u.clone(), Some("hash")),
            "{}",
            b.name
        );
        s.add_token(
            "wangfang",
            "tokhash",
            "ci",
            t("2026-12-31 09:00"),
            "admin",
            at,
        )
        .await
        .unwrap();
        assert_eq!(
            s.user_for_token("tokhash", at).await.unwrap(),
            Some(u.clone()),
            "{}",
            b.name
        );
        assert_eq!(
            s.user_for_token("other", at).await.unwrap(),
            None,
            "{}",
            b.name
        );
        let until = t("2026-12-01 17:00");
        s.add_session("sess", "wangfang", "csrf1", until, at)
            .await
            .unwrap();
        let (who, csrf) = s.session("sess", at).await.unwrap().unwrap();
        assert_eq!(
            (who.login.as_str(), csrf.as_str()),
            ("wangfang", "csrf1"),
            "{}",
            b.name
        );
        assert_eq!(
            s.session("sess", until).await.unwrap(),
            None,
            "{}: expired",
            b.name
        );
        s.end_session("sess", "wangfang", at).await.unwrap();
        assert_eq!(
            s.session("sess", at).await.unwrap(),
            None,
            "{}: ended",
            b.name
        );
        let actions: Vec<String> = s
            .audit(10)
            .await
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap_or("").to_string())
            .collect();
        assert_eq!(
            actions,
            ["logout", "login", "token.create", "user.create"],
            "{}",
            b.name
        );
    }
}

/// A card's notifications commit in the card's own transaction; the cards
/// owed a supervision order are those still issued at the top level of an
/// ordering rule, without one — until the order is recorded.
#[tokio::test]
async fn notifications_commit_with_their_cards_and_owed_orders_are_listed() {
    use govflow_dsl::rule::Level::{Red, Yellow};
    use govflow_engine::core::card::CardCommand;
    use govflow_engine::store::Notification;
    use govflow_engine::supervision::CardChange;
    for b in backends("owed").await {
        let reg = deploy(&b.store, FLOW).await;
        let cal = Calendar::china();
        let at = t("2025-09-26 10:00");
        let no = accepted(&b.store, &reg, &cal, at).await;
        let s = &b.store;
        let notes = |no: &str, c: &[CardChange]| -> Vec<Notification> {
            c.iter()
                .map(|_| Notification {
                    recipient: "supervisor".into(),
                    case_no: no.to_string(),
                    rule: "o".into(),
                    level: "red".into(),
                    change: "issued".into(),
                    message: "红牌".into(),
                })
                .collect()
        };
        let cards = [
            verdict("o", "case", Some(Red)),
            verdict("y", "case", Some(Yellow)),
        ];
        let all = s
            .sync_many(&[(no.as_str(), &cards[..])], None, at, &notes)
            .await
            .unwrap();
        assert_eq!(all[0].1.len(), 2, "{}", b.name);
        let sent = s.notifications(None, 10, 0).await.unwrap();
        assert_eq!(sent.len(), 2, "{}: one per change, with the cards", b.name);
        assert_eq!(sent[0]["case_no"], no.as_str(), "{}", b.name);
        // Nothing changes: no new card, no new notification.
        s.sync_many(&[(no.as_str(), &cards[..])], None, at, &notes)
            .await
            .unwrap();
        assert_eq!(
            s.notifications(None, 10, 0).await.unwrap().len(),
            2,
            "{}",
            b.name
        );
        let tops = [
            ("o".to_string(), "red".to_string()),
            ("y".to_string(), "red".to_string()),
        ];
        let owed = s.awaiting_orders(&tops, 0, 10).await.unwrap();
        assert_eq!(
            owed.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(),
            ["o"],
            "{}: only the card at its rule's top",
            b.name
        );
        assert!(s.awaiting_orders(&[], 0, 10).await.unwrap().is_empty());
        let ordered = CardCommand::Ordered {
            by: "engine".into(),
            order_case: "3301002025092600000099".into(),
            to: "dev".into(),
        };
        s.transition_alarm(owed[0].id, &ordered, "engine", at)
            .await
            .unwrap();
        assert!(
            s.awaiting_orders(&tops, 0, 10).await.unwrap().is_empty(),
            "{}: an ordered card is owed nothing",
            b.name
        );
    }
}

/// One idempotency key sent by several clients at once: one request runs
/// the command, the others wait for it and answer its outcome — a start
/// (a new case each time it ran) and a completion alike, on every backend.
#[tokio::test]
async fn one_key_sent_at_once_runs_once() {
    let cal = Arc::new(Calendar::china());
    for b in backends("samekey").await {
        let reg = Arc::new(deploy(&b.store, FLOW).await);
        let at = t("2025-09-26 10:00");
        let before = b.store.count(Table::Cases).await.unwrap();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, reg, cal) = (b.store.clone(), reg.clone(), cal.clone());
            set.spawn(async move {
                store
                    .execute(&req(None, start(), Some("same-start")), &reg, &cal, at)
                    .await
            });
        }
        let mut outs = Vec::new();
        while let Some(r) = set.join_next().await {
            outs.push(r.unwrap().unwrap_or_else(|e| panic!("{}: {e}", b.name)));
        }
        let nos: std::collections::BTreeSet<&str> =
            outs.iter().map(|o| o.case_no.as_str()).collect();
        assert_eq!(nos.len(), 1, "{}: one case: {nos:?}", b.name);
        assert_eq!(outs.iter().filter(|o| !o.replayed).count(), 1, "{}", b.name);
        assert_eq!(
            b.store.count(Table::Cases).await.unwrap(),
            before + 1,
            "{}",
            b.name
        );
        let no = outs[0].case_no.clone();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, reg, cal, no) = (b.store.clone(), reg.clone(), cal.clone(), no.clone());
            set.spawn(async move {
                let accept = complete("accept", actor("王芳", "window", Some("clerk")));
                store
                    .execute(&req(Some(&no), accept, Some("same-accept")), &reg, &cal, at)
                    .await
            });
        }
        let mut outs = Vec::new();
        while let Some(r) = set.join_next().await {
            outs.push(r.unwrap().unwrap_or_else(|e| panic!("{}: {e}", b.name)));
        }
        assert_eq!(outs.iter().filter(|o| !o.replayed).count(), 1, "{}", b.name);
        let versions: std::collections::BTreeSet<u64> = outs.iter().map(|o| o.version).collect();
        assert_eq!(versions.len(), 1, "{}: {versions:?}", b.name);
    }
}

/// Reads come in pages: a case's events after the first N, and the audit
/// log filtered by actor, action, case and time, paged back by id.
#[tokio::test]
async fn events_and_audit_come_in_pages() {
    use govflow_engine::store::AuditFilter;
    let cal = Calendar::china();
    for b in backends("pages").await {
        let reg = deploy(&b.store, FLOW).await;
        let at = t("2025-09-26 10:00");
        let no = drive(&b.store, &reg, &cal, at).await;
        let other = accepted(&b.store, &reg, &cal, t("2025-09-27 10:00")).await;
        let s = &b.store;
        let all = s.events(&no).await.unwrap();
        assert!(all.len() > 10, "{}", b.name);
        let mut paged = Vec::new();
        while paged.len() < all.len() {
            let page = s.events_after(&no, paged.len() as u64, 4).await.unwrap();
            assert!(!page.is_empty() && page.len() <= 4, "{}", b.name);
            paged.extend(page);
        }
        assert_eq!(paged, all, "{}", b.name);
        assert!(
            s.events_after(&no, all.len() as u64, 4)
                .await
                .unwrap()
                .is_empty()
        );
        let rows = |f: AuditFilter| async move { s.audit_page(&f, 100).await.unwrap() };
        let of_case = rows(AuditFilter {
            case: Some(no.clone()),
            ..Default::default()
        })
        .await;
        assert_eq!(of_case.len(), 7, "{}: start and six completions", b.name);
        assert!(
            of_case
                .iter()
                .all(|r| r["detail"].as_str().unwrap().contains(&no))
        );
        let completes = rows(AuditFilter {
            action: Some("complete".into()),
            ..Default::default()
        })
        .await;
        assert_eq!(
            completes.len(),
            7,
            "{}: six and the other case's accept",
            b.name
        );
        let later = rows(AuditFilter {
            from: Some("2025-09-27T00:00:00".into()),
            case: Some(other.clone()),
            ..Default::default()
        })
        .await;
        assert_eq!(later.len(), 2, "{}", b.name);
        let newest = s.audit_page(&AuditFilter::default(), 3).await.unwrap();
        let before = newest.last().unwrap()["id"].as_i64().unwrap();
        let next = rows(AuditFilter {
            before: Some(before),
            ..Default::default()
        })
        .await;
        assert!(
            next.iter().all(|r| r["id"].as_i64().unwrap() < before),
            "{}",
            b.name
        );
        assert_eq!(
            next.len() + 3,
            s.audit(1000).await.unwrap().len(),
            "{}: the pages join up",
            b.name
        );
        assert!(
            rows(AuditFilter {
                actor: Some("nobody".into()),
                ..Default::default()
            })
            .await
            .is_empty()
        );
    }
}

/// A token stops at its expiry or when revoked; disabling a user ends their
/// sessions and stops their tokens; a new password ends their sessions.
#[tokio::test]
async fn tokens_expire_and_users_can_be_disabled() {
    use govflow_engine::store::users::{Grant, User};
    for b in backends("tokens").await {
        let s = &b.store;
        let at = t("2026-12-01 09:00");
        let u = User {
            login: "lihua".into(),
            name: "李华".into(),
            roles: vec![Grant {
                role: "reviewer".into(),
                department: Some("dev".into()),
                position: None,
            }],
            disabled: false,
        };
        s.create_user(&u, Some("h1"), "admin", at).await.unwrap();
        s.add_token(
            "lihua",
            "aaaaaaaaaaaaaaaa1111",
            "ci",
            t("2026-12-02 09:00"),
            "admin",
            at,
        )
        .await
        .unwrap();
        s.add_token(
            "lihua",
            "bbbbbbbbbbbbbbbb2222",
            "ops",
            t("2027-03-01 09:00"),
            "admin",
            at,
        )
        .await
        .unwrap();
        let live = |h: &'static str, when| async move {
            s.user_for_token(h, when).await.unwrap().is_some()
        };
        assert!(live("aaaaaaaaaaaaaaaa1111", at).await, "{}", b.name);
        assert!(
            !live("aaaaaaaaaaaaaaaa1111", t("2026-12-02 09:00")).await,
            "{}: expired",
            b.name
        );
        let listed = s.tokens("lihua").await.unwrap();
        assert_eq!(
            listed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"],
            "{}",
            b.name
        );
        assert!(
            s.revoke_token("lihua", "bbbbbbbbbbbbbbbb", "admin", at)
                .await
                .unwrap()
        );
        assert!(
            !s.revoke_token("lihua", "bbbbbbbbbbbbbbbb", "admin", at)
                .await
                .unwrap()
        );
        assert!(
            !s.revoke_token("other", "aaaaaaaaaaaaaaaa", "admin", at)
                .await
                .unwrap()
        );
        assert!(
            !live("bbbbbbbbbbbbbbbb2222", at).await,
            "{}: revoked",
            b.name
        );
        assert!(s.tokens("lihua").await.unwrap()[1].revoked_at.is_some());
        // Disabled: no session, no token, no login; enabled again: the token works.
        s.add_session("sess1", "lihua", "c", t("2026-12-01 17:00"), at)
            .await
            .unwrap();
        assert!(s.set_disabled("lihua", true, "admin", at).await.unwrap());
        assert_eq!(s.session("sess1", at).await.unwrap(), None, "{}", b.name);
        assert!(
            !live("aaaaaaaaaaaaaaaa1111", at).await,
            "{}: disabled",
            b.name
        );
        assert_eq!(
            s.user_with_password("lihua").await.unwrap(),
            None,
            "{}",
            b.name
        );
        assert!(s.users().await.unwrap()[0].disabled, "{}", b.name);
        assert!(s.set_disabled("lihua", false, "admin", at).await.unwrap());
        assert!(live("aaaaaaaaaaaaaaaa1111", at).await, "{}", b.name);
        assert!(!s.set_disabled("nobody", true, "admin", at).await.unwrap());
        // A new password ends the sessions; new roles replace the old.
        s.add_session("sess2", "lihua", "c", t("2026-12-01 17:00"), at)
            .await
            .unwrap();
        assert!(
            s.set_password("lihua", Some("h2"), "admin", at)
                .await
                .unwrap()
        );
        assert_eq!(s.session("sess2", at).await.unwrap(), None, "{}", b.name);
        let (_, pw) = s.user_with_password("lihua").await.unwrap().unwrap();
        assert_eq!(pw.as_deref(), Some("h2"));
        let chief = [Grant {
            role: "supervisor".into(),
            department: None,
            position: None,
        }];
        assert!(s.set_roles("lihua", &chief, "admin", at).await.unwrap());
        assert_eq!(s.users().await.unwrap()[0].roles, chief, "{}", b.name);
    }
}

/// The check behind `govflow verify` finds a case whose stored snapshot its
/// events no longer rebuild (a row changed behind the engine's back).
#[tokio::test]
async fn the_check_finds_a_snapshot_its_events_do_not_rebuild() {
    use govflow_engine::app::check::check;
    let cal = Calendar::china();
    let dir = std::env::temp_dir().join(unique("check"));
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = TempDir(dir.clone());
    let url = format!("sqlite://{}", dir.join("c.db").display());
    let store = Store::open(&url, &Options::default()).await.unwrap();
    let reg = deploy(&store, FLOW).await;
    let no = drive(&store, &reg, &cal, t("2025-09-26 10:00")).await;
    let other = accepted(&store, &reg, &cal, t("2025-09-26 11:00")).await;
    let r = check(&store).await.unwrap();
    assert!(r.is_sound(), "{r:?}");
    assert_eq!(r.cases, 2);
    // Tamper with one snapshot directly in the file.
    let raw = sqlx::SqlitePool::connect(&url).await.unwrap();
    let snap: String = sqlx::query_scalar("SELECT snapshot FROM cases WHERE case_no = $1")
        .bind(&other)
        .fetch_one(&raw)
        .await
        .unwrap();
    let forged = snap.replacen("\"accepted\"", "\"completed\"", 1);
    assert_ne!(forged, snap);
    sqlx::query("UPDATE cases SET snapshot = $1 WHERE case_no = $2")
        .bind(&forged)
        .bind(&other)
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let r = check(&store).await.unwrap();
    assert_eq!(r.mismatched, std::slice::from_ref(&other), "{r:?}");
    assert!(!r.mismatched.contains(&no));
    assert!(!r.is_sound());
}

/// The cross-case figures the rules read are one shared version: a node that
/// recomputes them records a new version, and every other node decides with
/// it from its next case on — no node keeps figures of its own.
#[tokio::test]
async fn every_node_decides_with_the_same_figures() {
    use govflow_engine::service::Engine;
    for b in backends("figures").await {
        let s = &b.store;
        assert_eq!(s.figures_version().await.unwrap(), 0, "{}", b.name);
        let v1 = s
            .save_figures("{\"staff\":{}}", t("2026-12-01 00:00"))
            .await
            .unwrap();
        let v2 = s
            .save_figures(
                "{\"staff\":{\"dev\":{\"complaints\":2,\"anomalies\":1}}}",
                t("2026-12-02 00:00"),
            )
            .await
            .unwrap();
        assert_eq!((v1, v2), (1, 2), "{}", b.name);
        let (v, text) = s.figures().await.unwrap().unwrap();
        assert_eq!(v, 2, "{}", b.name);
        assert!(text.contains("\"complaints\":2"), "{}", b.name);
        // Two engines (nodes) on one store.
        let node = || {
            Engine::new(
                b.store.clone(),
                Arc::new(Registry::new()),
                Arc::new(Calendar::china()),
                None,
            )
        };
        let (a, c) = (node(), node());
        a.refresh_context(t("2026-12-02 09:00")).await;
        let mine = a.context();
        assert_eq!(mine.version, 3, "{}", b.name);
        assert_ne!(
            c.context(),
            mine,
            "{}: the other node has not looked yet",
            b.name
        );
        c.sync_context().await;
        assert_eq!(
            c.context(),
            mine,
            "{}: the other node decides with the same figures",
            b.name
        );
    }
}

/// A SQL store and a raw connection to its tables, to tamper with them as
/// someone with database access would.
enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Raw {
    async fn run(&self, sql: &str) {
        match self {
            Raw::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
            Raw::Pg(p) => sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
        }
        .unwrap();
    }
    async fn text(&self, sql: &str) -> Vec<String> {
        match self {
            Raw::Sqlite(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(p)
                .await
                .unwrap(),
            Raw::Pg(p) => sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(p)
                .await
                .unwrap(),
        }
    }
}

/// SQLite, and PostgreSQL when configured: (name, url, options, raw access).
async fn sql_stores(
    tag: &str,
    chain: ChainHash,
) -> Vec<(&'static str, String, Options, Raw, Option<TempDir>)> {
    let dir = std::env::temp_dir().join(unique(tag));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let opts = Options {
        chain_hash: chain,
        ..Options::default()
    };
    let mut out = Vec::new();
    // The store creates the file; the raw pool opens it afterwards.
    let _ = Store::open(&url, &opts).await.unwrap();
    let raw = Raw::Sqlite(sqlx::SqlitePool::connect(&url).await.unwrap());
    out.push(("sqlite", url, opts, raw, Some(TempDir(dir))));
    if let Ok(pg) = std::env::var("GOVFLOW_TEST_POSTGRES_URL") {
        let schema = unique(&format!("gf_{tag}"));
        let opts = Options {
            pg_schema: Some(schema.clone()),
            chain_hash: chain,
            ..Options::default()
        };
        let _ = Store::open(&pg, &opts).await.unwrap();
        let co: sqlx::postgres::PgConnectOptions = pg.parse().unwrap();
        let raw = sqlx::PgPool::connect_with(co.options([("search_path", schema.as_str())]))
            .await
            .unwrap();
        out.push(("postgres", pg, opts, Raw::Pg(raw), None));
    }
    out
}

async fn seal_all(store: &Store) -> u64 {
    let mut total = 0;
    loop {
        let n = store.seal_chains().await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// Tamper evidence: the sealer chains every event and audit row; changing a
/// sealed row, or removing one, is found and named; rows written after a
/// seal wait for the next; SM3 chains verify like SHA-256 ones.
#[tokio::test]
async fn the_logs_are_hash_chains_that_name_the_first_changed_row() {
    let cal = Calendar::china();
    for chain in [ChainHash::Sha256, ChainHash::Sm3] {
        for (name, url, opts, raw, _dir) in sql_stores("chain", chain).await {
            let store = Store::open(&url, &opts).await.unwrap();
            let reg = deploy(&store, FLOW).await;
            let no = drive(&store, &reg, &cal, t("2025-09-26 10:00")).await;
            let sealed = seal_all(&store).await;
            let events = raw
                .text("SELECT CAST(COUNT(*) AS TEXT) FROM event_log")
                .await;
            let audit = raw
                .text("SELECT CAST(COUNT(*) AS TEXT) FROM audit_log")
                .await;
            let total: u64 = events[0].parse::<u64>().unwrap() + audit[0].parse::<u64>().unwrap();
            assert_eq!(sealed, total, "{name}");
            let r = store.verify_chains().await.unwrap();
            assert_eq!(r.len(), 2, "{name}");
            for c in &r {
                assert!(c.broken.is_none() && c.unsealed == 0, "{name}: {c:?}");
                let (_, head) = c.head.clone().unwrap();
                assert!(
                    head.starts_with(&format!("{}:", chain.name())),
                    "{name}: {head}"
                );
            }
            // A row written after the seal waits for the next one.
            let other = accepted(&store, &reg, &cal, t("2025-09-26 11:00")).await;
            let r = store.verify_chains().await.unwrap();
            assert!(r[0].unsealed >= 2 && r[0].broken.is_none(), "{name}: {r:?}");
            seal_all(&store).await;
            let r = store.verify_chains().await.unwrap();
            assert_eq!(r[0].unsealed, 0, "{name}");
            // Changing a sealed event is found, at that row.
            let seqs = raw
                .text(&format!(
                    "SELECT CAST(seq AS TEXT) FROM event_log WHERE case_no = '{no}' ORDER BY seq"
                ))
                .await;
            let seq = &seqs[1];
            let at = raw
                .text(&format!(
                    "SELECT at FROM event_log WHERE case_no = '{no}' AND seq = {seq}"
                ))
                .await;
            raw.run(&format!(
                "UPDATE event_log SET at = '2025-01-01T00:00:00' WHERE case_no = '{no}' AND seq = {seq}"
            ))
            .await;
            let r = store.verify_chains().await.unwrap();
            let broken = r[0].broken.clone().unwrap_or_default();
            assert!(
                broken.contains(&format!("case {no} event {seq}")),
                "{name}: {r:?}"
            );
            assert!(r[1].broken.is_none(), "{name}: {r:?}");
            raw.run(&format!(
                "UPDATE event_log SET at = '{}' WHERE case_no = '{no}' AND seq = {seq}",
                at[0]
            ))
            .await;
            assert!(
                store.verify_chains().await.unwrap()[0].broken.is_none(),
                "{name}"
            );
            // Removing a sealed audit row is found where the gap is.
            let ids = raw
                .text("SELECT CAST(id AS TEXT) FROM audit_log ORDER BY chain_seq")
                .await;
            raw.run(&format!("DELETE FROM audit_log WHERE id = {}", ids[3]))
                .await;
            let r = store.verify_chains().await.unwrap();
            let broken = r[1].broken.clone().unwrap_or_default();
            assert!(
                broken.contains("place 4 is missing")
                    && broken.contains(&format!("audit row {}", ids[4])),
                "{name}: {r:?}"
            );
            // The whole check says so too.
            let report = govflow_engine::app::check::check(&store).await.unwrap();
            assert!(!report.is_sound(), "{name}");
            let _ = other;
        }
    }
}

/// Two nodes sealing at once on one PostgreSQL build one chain.
#[tokio::test]
async fn two_nodes_seal_one_chain() {
    let cal = Calendar::china();
    for (name, url, opts, _raw, _dir) in sql_stores("chain2", ChainHash::Sha256).await {
        if name != "postgres" {
            continue;
        }
        let a = Store::open(&url, &opts).await.unwrap();
        let b = Store::open(&url, &opts).await.unwrap();
        let reg = deploy(&a, FLOW).await;
        for i in 0..6 {
            drive(
                &a,
                &reg,
                &cal,
                t("2025-09-26 10:00") + chrono::Duration::minutes(i),
            )
            .await;
        }
        let (x, y) = tokio::join!(seal_all(&a), seal_all(&b));
        let r = a.verify_chains().await.unwrap();
        let sealed: u64 = r.iter().map(|c| c.sealed).sum();
        assert_eq!(x + y, sealed, "{r:?}");
        assert!(
            r.iter().all(|c| c.broken.is_none() && c.unsealed == 0),
            "{r:?}"
        );
    }
}

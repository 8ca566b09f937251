//! The in-memory backend: every storage trait over plain maps behind one
//! lock, nothing kept when the process ends. Tests of the application layer
//! use it to run without files or a server (`Store::open("memory:", …)`),
//! and the conformance suite holds it to what the SQL backends do.
//!
//! It shares the decisions with them — the command pipeline
//! (`pipeline::prepare_batch`, through `pipeline::Source`), the timer
//! deferral (`pipeline::unfired`), the card sync (`cards::plan_sync`) and the
//! card machine (`core::card::decide`) — and only stores their results.
//! One lock means one writer at a time, like SQLite; the lock is held for a
//! whole command, so every read inside it is current.
//!
//! Why this file is long: it implements every storage trait (about sixty
//! methods), each a few lines over the maps; one file keeps the tables and
//! all their uses together.

use super::cards::{
    AlarmRow, CardWrite, StoredCard, card_of, complaint_addressee, history, line, plan_sync,
};
use super::pipeline::{self, Changes, Source, Unfired};
use super::sqlite::blob_path;
use super::{
    Adjustment, Alarm, AlarmError, AlarmFilter, AuditLog, Backend, BlobStore, CardStore, CaseRow,
    CaseStore, Claim, ClaimStore, Deployment, DeploymentStore, ExecError, Known, Notification,
    Outcome, Rating, Request, StoreError, Table, TaskRow, User, UserStore, fmt_ts, source_hash,
};
use crate::app::registry::Registry;
use crate::calendar::Calendar;
use crate::core::{CaseState, Event, Time};
use crate::supervision::{CardChange, StaffFacts, Verdict};
use async_trait::async_trait;
use govflow_dsl::rule::Level;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The in-memory store; clones share the data.
#[derive(Clone)]
pub struct MemStore {
    mem: Arc<tokio::sync::Mutex<Mem>>,
    region: Arc<str>,
}

impl MemStore {
    pub fn new(region: &str) -> MemStore {
        MemStore {
            mem: Arc::default(),
            region: region.into(),
        }
    }
}

/// A stored case: its snapshot and when it was created and last written.
struct CaseRec {
    state: CaseState,
    created_at: String,
    updated_at: String,
}

struct AdjustmentRec {
    a: Adjustment,
    state: String,
    at: String,
    history: String,
}

/// The tables.
#[derive(Default)]
struct Mem {
    cases: BTreeMap<String, CaseRec>,
    /// case → (first seq, the events of one command), in order.
    events: HashMap<String, Vec<(u64, Vec<Event>)>>,
    /// case → (due, failed attempts): the case's earliest timer.
    timers: BTreeMap<String, (String, i64)>,
    /// key → (case, version, first seq, fingerprint).
    keys: HashMap<String, (String, i64, i64, String)>,
    numbers: HashMap<String, i64>,
    /// (id, at, actor, action, detail)
    audit: Vec<(i64, String, String, String, String)>,
    /// (row id, deployment, source)
    deployments: Vec<(i64, Deployment, String)>,
    /// pack → (manifest, deployed at)
    packs: BTreeMap<String, (String, String)>,
    alarms: BTreeMap<i64, AlarmRow>,
    ratings: Vec<Rating>,
    adjustments: BTreeMap<i64, AdjustmentRec>,
    /// (id, at, notification)
    notifications: Vec<(i64, String, Notification)>,
    claims: BTreeMap<(String, i64), Claim>,
    /// login → (user, password hash)
    users: BTreeMap<String, (User, Option<String>)>,
    /// token hash → (login, label, created at, expires at, revoked at)
    tokens: BTreeMap<String, (String, String, String, String, Option<String>)>,
    /// session hash → (login, csrf, expires at)
    sessions: HashMap<String, (String, String, String)>,
    blobs: BTreeMap<String, Vec<u8>>,
    /// The shared cross-case figures: (version, JSON).
    figures: Option<(i64, String)>,
    /// The last row id handed out (audit, deployments, cards, adjustments,
    /// notifications): ids only grow, as with the SQL sequences.
    last_id: i64,
}

fn is_open(state: &CaseState) -> bool {
    !matches!(
        state.status.as_str(),
        "completed" | "terminated" | "withdrawn"
    )
}

impl Mem {
    fn id(&mut self) -> i64 {
        self.last_id += 1;
        self.last_id
    }

    fn audit(&mut self, at: &str, actor: &str, action: &str, detail: String) {
        let id = self.id();
        self.audit
            .push((id, at.into(), actor.into(), action.into(), detail));
    }

    /// What `write_batch` does for the SQL backends.
    fn write(&mut self, c: Changes) {
        let stamp = c.audit.last().map(|a| a.0.clone()).unwrap_or_default();
        for no in &c.order {
            let Some((state, _, is_new)) = c.cases.get(no) else {
                continue;
            };
            let created_at = match self.cases.get(no) {
                Some(rec) if !*is_new => rec.created_at.clone(),
                _ => stamp.clone(),
            };
            match state.timers().first() {
                Some(t) => {
                    self.timers.insert(no.clone(), (fmt_ts(t.due), 0));
                }
                None => {
                    self.timers.remove(no);
                }
            }
            self.cases.insert(
                no.clone(),
                CaseRec {
                    state: state.clone(),
                    created_at,
                    updated_at: stamp.clone(),
                },
            );
        }
        for (no, seq, evs) in c.events {
            self.events.entry(no).or_default().push((seq, evs));
        }
        for (key, no, version, first, _at, fp) in c.commands {
            self.keys
                .insert(key, (no, version as i64, first as i64, fp));
        }
        for (prefix, n) in c.numbers {
            self.numbers.insert(prefix, n);
        }
        for (at, actor, action, detail, _) in c.audit {
            self.audit(&at, &actor, action, detail);
        }
    }

    fn deploy_in(
        &mut self,
        flow_id: &str,
        source: &str,
        file: &str,
        actor: &str,
        now: Time,
    ) -> (Deployment, bool) {
        let hash = source_hash(source);
        if let Some((_, d, _)) = self
            .deployments
            .iter()
            .find(|(_, d, _)| d.flow_id == flow_id && d.hash == hash)
        {
            return (d.clone(), false);
        }
        let version = self
            .deployments
            .iter()
            .filter(|(_, d, _)| d.flow_id == flow_id)
            .map(|(_, d, _)| d.version)
            .max()
            .unwrap_or(0)
            + 1;
        let at = fmt_ts(now);
        let d = Deployment {
            flow_id: flow_id.to_string(),
            version,
            hash: hash.clone(),
            file: file.to_string(),
            deployed_at: at.clone(),
            deployed_by: actor.to_string(),
        };
        let id = self.id();
        self.deployments.push((id, d.clone(), source.to_string()));
        let detail =
            json!({"flow": flow_id, "version": version, "hash": hash, "file": file}).to_string();
        self.audit(&at, actor, "deploy", detail);
        (d, true)
    }
}

/// The pipeline's reads, inside the lock.
struct Tx<'a>(&'a mut Mem);

impl Source for Tx<'_> {
    async fn command_key(
        &mut self,
        key: &str,
    ) -> Result<Option<(String, i64, i64, String)>, ExecError> {
        Ok(self.0.keys.get(key).cloned())
    }
    async fn events_between(
        &mut self,
        case_no: &str,
        first: i64,
        last: i64,
    ) -> Result<Vec<Event>, ExecError> {
        Ok(self
            .0
            .events
            .get(case_no)
            .into_iter()
            .flatten()
            .filter(|(seq, _)| (first..=last).contains(&(*seq as i64)))
            .flat_map(|(_, evs)| evs.iter().cloned())
            .collect())
    }
    async fn next_number(&mut self, prefix: &str) -> Result<i64, ExecError> {
        let n = self.0.numbers.entry(prefix.to_string()).or_insert(0);
        *n += 1;
        Ok(*n)
    }
    async fn last_number(&mut self, prefix: &str) -> Result<i64, ExecError> {
        Ok(self.0.numbers.get(prefix).copied().unwrap_or(0))
    }
    async fn case_exists(&mut self, case_no: &str) -> Result<bool, ExecError> {
        Ok(self.0.cases.contains_key(case_no))
    }
    async fn snapshot(&mut self, case_no: &str) -> Result<Option<CaseState>, ExecError> {
        Ok(self.0.cases.get(case_no).map(|c| c.state.clone()))
    }
    async fn claims_of_others(
        &mut self,
        case_no: &str,
        actor: &str,
    ) -> Result<Vec<Claim>, ExecError> {
        Ok(self
            .0
            .claims
            .values()
            .filter(|c| c.case_no == case_no && c.login != actor)
            .cloned()
            .collect())
    }
}

fn page<T>(items: impl Iterator<Item = T>, limit: i64, offset: i64) -> Vec<T> {
    items
        .skip(offset.max(0) as usize)
        .take(limit.max(0) as usize)
        .collect()
}

#[async_trait]
impl CaseStore for MemStore {
    async fn execute(
        &self,
        req: &Request,
        flows: &Registry,
        cal: &Calendar,
        now: Time,
    ) -> Result<Outcome, ExecError> {
        let mut g = self.mem.lock().await;
        let (mut outs, changes) = pipeline::prepare_batch(
            &mut Tx(&mut g),
            &self.region,
            &[(req, flows, cal, now)],
            None,
            None,
            None,
            false,
        )
        .await?;
        g.write(changes);
        outs.pop()
            .unwrap_or_else(|| Err(ExecError::Batch("no result".into())))
    }

    async fn tick(
        &self,
        now: Time,
        flows: &Registry,
        cal: &Calendar,
        limit: u32,
    ) -> Result<Vec<Outcome>, ExecError> {
        let stamp = fmt_ts(now);
        let mut fired = Vec::new();
        while (fired.len() as u32) < limit {
            let mut g = self.mem.lock().await;
            let Some((case_no, (row_due, tried))) = g
                .timers
                .iter()
                .filter(|(_, (due, _))| *due <= stamp)
                .min_by(|a, b| a.1.0.cmp(&b.1.0))
                .map(|(c, t)| (c.clone(), t.clone()))
            else {
                break;
            };
            let state = g.cases.get(&case_no).map(|c| c.state.clone());
            let reqs = pipeline::due_fires(&case_no, state.as_ref(), now);
            let jobs: Vec<(&Request, &Registry, &Calendar, Time)> =
                reqs.iter().map(|r| (r, flows, cal, now)).collect();
            let (outs, changes) = pipeline::prepare_batch(
                &mut Tx(&mut g),
                &self.region,
                &jobs,
                None,
                None,
                None,
                false,
            )
            .await?;
            g.write(changes);
            let failed: Vec<String> = outs
                .iter()
                .filter_map(|o| o.as_ref().err().map(|e| e.to_string()))
                .collect();
            let changed = outs.iter().any(|o| {
                o.as_ref()
                    .is_ok_and(|o| !o.events.is_empty() && !o.replayed)
            });
            if !changed && g.timers.get(&case_no).is_some_and(|(d, _)| *d == row_due) {
                match pipeline::unfired(&case_no, tried, &failed, now) {
                    Unfired::Stale => {
                        g.timers.remove(&case_no);
                    }
                    Unfired::Retry { at, audit } => {
                        g.timers.insert(case_no.clone(), (at, tried + 1));
                        if let Some(detail) = audit {
                            g.audit(&stamp, "timer", "timer_deferred", detail);
                        }
                    }
                }
            }
            fired.extend(
                outs.into_iter()
                    .filter_map(Result::ok)
                    .filter(|o| !o.events.is_empty() && !o.replayed),
            );
        }
        Ok(fired)
    }

    async fn case(&self, case_no: &str) -> Result<Option<CaseState>, StoreError> {
        Ok(self
            .mem
            .lock()
            .await
            .cases
            .get(case_no)
            .map(|c| c.state.clone()))
    }

    async fn events(&self, case_no: &str) -> Result<Vec<Event>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.events
            .get(case_no)
            .into_iter()
            .flatten()
            .flat_map(|(_, evs)| evs.iter().cloned())
            .collect())
    }

    async fn events_after(
        &self,
        case_no: &str,
        after: u64,
        limit: i64,
    ) -> Result<Vec<Event>, StoreError> {
        let g = self.mem.lock().await;
        let all = g
            .events
            .get(case_no)
            .into_iter()
            .flatten()
            .flat_map(|(seq, evs)| {
                evs.iter()
                    .enumerate()
                    .map(move |(i, e)| (*seq + i as u64, e.clone()))
            })
            .filter(|(s, _)| *s > after)
            .map(|(_, e)| e);
        Ok(page(all, limit, 0))
    }

    async fn cases(
        &self,
        status: Option<&str>,
        flow_id: Option<&str>,
        scope: Option<&super::CaseScope>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<CaseRow>, StoreError> {
        let g = self.mem.lock().await;
        let rows = g
            .cases
            .iter()
            .rev()
            .filter(|(_, c)| status.is_none_or(|s| c.state.status.as_str() == s))
            .filter(|(_, c)| flow_id.is_none_or(|f| c.state.flow_id == f))
            .filter(|(_, c)| {
                scope.is_none_or(|sc| {
                    sc.admits(
                        &c.state.flow_id,
                        c.state.tasks.values().map(|t| t.department.as_str()),
                    )
                })
            })
            .map(|(no, c)| CaseRow {
                case_no: no.clone(),
                flow_id: c.state.flow_id.clone(),
                flow_version: i64::from(c.state.flow_version),
                status: c.state.status.as_str().to_string(),
                version: c.state.version as i64,
                updated_at: c.updated_at.clone(),
            });
        Ok(page(rows, limit, offset))
    }

    async fn tasks(
        &self,
        department: Option<&str>,
        role: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<TaskRow>, StoreError> {
        let g = self.mem.lock().await;
        let mut rows: Vec<TaskRow> = g
            .cases
            .iter()
            .flat_map(|(no, c)| {
                c.state.tasks.values().map(move |t| TaskRow {
                    case_no: no.clone(),
                    task_id: i64::from(t.id),
                    step: t.step.clone(),
                    name: t.name.clone(),
                    department: t.department.clone(),
                    role: t.role.clone(),
                    opened_at: fmt_ts(t.opened_at),
                    due: t.deadline.as_ref().and_then(|d| d.due).map(fmt_ts),
                    flow_id: c.state.flow_id.clone(),
                })
            })
            .filter(|t| department.is_none_or(|d| t.department == d))
            .filter(|t| role.is_none_or(|r| t.role.as_deref().is_none_or(|tr| tr == r)))
            .collect();
        rows.sort_by(|a, b| {
            (&a.opened_at, &a.case_no, a.task_id).cmp(&(&b.opened_at, &b.case_no, b.task_id))
        });
        Ok(page(rows.into_iter(), limit, offset))
    }

    async fn next_timer(&self) -> Result<Option<String>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.timers.values().map(|(due, _)| due.clone()).min())
    }

    async fn open_cases(&self, after: &str, limit: i64) -> Result<Vec<String>, StoreError> {
        let g = self.mem.lock().await;
        let rows = g
            .cases
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, c)| is_open(&c.state))
            .map(|(no, _)| no.clone());
        Ok(page(rows, limit, 0))
    }

    async fn open_snapshots(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let g = self.mem.lock().await;
        let mut out = Vec::new();
        for (no, c) in g
            .cases
            .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            .filter(|(_, c)| is_open(&c.state))
            .take(limit.max(0) as usize)
        {
            let snapshot = serde_json::to_string(&c.state).map_err(|e| StoreError::Corrupt {
                what: format!("snapshot of {no}"),
                message: e.to_string(),
            })?;
            out.push((no.clone(), snapshot));
        }
        Ok(out)
    }

    async fn cases_registered(
        &self,
        from: &str,
        to: &str,
        limit: i64,
    ) -> Result<Vec<CaseState>, StoreError> {
        let g = self.mem.lock().await;
        let rows = g
            .cases
            .values()
            .filter(|c| c.created_at.as_str() >= from && c.created_at.as_str() < to)
            .filter(|c| {
                c.state.flow_id != crate::supervision::ORDER_FLOW
                    && c.state.flow_id != crate::supervision::COMPLAINT_FLOW
            })
            .map(|c| c.state.clone());
        Ok(page(rows, limit, 0))
    }

    async fn count(&self, table: Table) -> Result<i64, StoreError> {
        let g = self.mem.lock().await;
        let n = match table {
            Table::Cases => g.cases.len(),
            Table::Events => g.events.values().flatten().map(|(_, evs)| evs.len()).sum(),
            Table::Tasks => g.cases.values().map(|c| c.state.tasks.len()).sum(),
            Table::Timers => g.timers.len(),
            Table::Commands => g.keys.len(),
            Table::Audit => g.audit.len(),
        };
        Ok(n as i64)
    }
}

#[async_trait]
impl DeploymentStore for MemStore {
    async fn deploy(
        &self,
        flow_id: &str,
        source: &str,
        file: &str,
        actor: &str,
        now: Time,
    ) -> Result<(Deployment, bool), StoreError> {
        Ok(self
            .mem
            .lock()
            .await
            .deploy_in(flow_id, source, file, actor, now))
    }

    async fn deploy_many(
        &self,
        pack: &str,
        manifest: &str,
        items: &[(String, String, String)],
        actor: &str,
        now: Time,
    ) -> Result<Vec<(Deployment, bool)>, StoreError> {
        let mut g = self.mem.lock().await;
        let stamp = fmt_ts(now);
        let changed = g.packs.get(pack).is_none_or(|(m, _)| m != manifest);
        if changed {
            g.packs
                .insert(pack.to_string(), (manifest.to_string(), stamp.clone()));
        }
        let out: Vec<(Deployment, bool)> = items
            .iter()
            .map(|(flow_id, source, file)| g.deploy_in(flow_id, source, file, actor, now))
            .collect();
        if changed || out.iter().any(|(_, new)| *new) {
            let detail = json!({
                "pack": pack,
                "flows": out.iter().map(|(d, new)| json!({"flow": d.flow_id, "version": d.version, "new": new})).collect::<Vec<_>>(),
            })
            .to_string();
            g.audit(&stamp, actor, "deploy_pack", detail);
        }
        Ok(out)
    }

    async fn deployments(&self, flow_id: &str) -> Result<Vec<Deployment>, StoreError> {
        let g = self.mem.lock().await;
        let mut out: Vec<Deployment> = g
            .deployments
            .iter()
            .filter(|(_, d, _)| d.flow_id == flow_id)
            .map(|(_, d, _)| d.clone())
            .collect();
        out.sort_by_key(|d| d.version);
        Ok(out)
    }

    async fn pack_manifests(&self) -> Result<Vec<(String, String)>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.packs
            .iter()
            .map(|(id, (m, _))| (id.clone(), m.clone()))
            .collect())
    }

    async fn deployment_sources(&self) -> Result<Vec<(Deployment, String)>, StoreError> {
        let g = self.mem.lock().await;
        let mut out: Vec<(Deployment, String)> = g
            .deployments
            .iter()
            .map(|(_, d, s)| (d.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0.flow_id, a.0.version).cmp(&(&b.0.flow_id, b.0.version)));
        Ok(out)
    }

    async fn deployments_after(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, Deployment, String)>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.deployments
            .iter()
            .filter(|(id, _, _)| *id > after)
            .cloned()
            .collect())
    }

    async fn deployment_marker(&self) -> Result<(i64, String), StoreError> {
        let g = self.mem.lock().await;
        let last = g.deployments.last().map_or(0, |(id, _, _)| *id);
        let chars: usize = g.packs.values().map(|(m, _)| m.chars().count()).sum();
        let newest = g
            .packs
            .values()
            .map(|(_, at)| at.as_str())
            .max()
            .unwrap_or("");
        Ok((last, format!("{}:{chars}:{newest}", g.packs.len())))
    }

    async fn calendar_deployments(&self) -> Result<Vec<(Deployment, String, i64)>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.deployments
            .iter()
            .filter(|(_, d, _)| d.flow_id.starts_with("calendar/"))
            .map(|(id, d, s)| (d.clone(), s.clone(), *id))
            .collect())
    }
}

#[async_trait]
impl AuditLog for MemStore {
    async fn audit_page(
        &self,
        f: &super::AuditFilter,
        limit: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let g = self.mem.lock().await;
        let case = f.case.as_ref().map(|c| format!("\"case\":\"{c}\""));
        let rows = g
            .audit
            .iter()
            .rev()
            .filter(|(id, at, actor, action, detail)| {
                f.before.is_none_or(|b| *id < b)
                    && f.actor.as_deref().is_none_or(|a| a == actor)
                    && f.action.as_deref().is_none_or(|a| a == action)
                    && case.as_deref().is_none_or(|c| detail.contains(c))
                    && f.from.as_deref().is_none_or(|t| at.as_str() >= t)
                    && f.to.as_deref().is_none_or(|t| at.as_str() < t)
            })
            .map(|(id, at, actor, action, detail)| {
            json!({"id": id, "at": at, "actor": actor, "action": action, "detail": detail})
        });
        Ok(page(rows, limit, 0))
    }

    async fn record_audit(
        &self,
        actor: &str,
        action: &str,
        detail: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        self.mem
            .lock()
            .await
            .audit(&fmt_ts(now), actor, action, detail.to_string());
        Ok(())
    }
}

/// The card states the sync reads.
const FOLLOWED: &[&str] = &["pending", "issued", "ordered", "revoked", "verified"];

#[async_trait]
impl CardStore for MemStore {
    async fn sync_many(
        &self,
        items: &[(&str, &[Verdict])],
        only: Option<&HashSet<String>>,
        now: Time,
        notes: &super::NoteFn<'_>,
    ) -> Result<Vec<(String, Vec<CardChange>)>, StoreError> {
        let mut g = self.mem.lock().await;
        let stamp = fmt_ts(now);
        let mut all = Vec::with_capacity(items.len());
        for (case_no, verdicts) in items {
            let stored: Vec<StoredCard> = g
                .alarms
                .values()
                .filter(|a| a.case_no == *case_no && FOLLOWED.contains(&a.state.as_str()))
                .map(|a| StoredCard {
                    id: a.id,
                    rule: a.rule.clone(),
                    subject: a.subject.clone(),
                    level: a.level.clone(),
                    state: a.state.clone(),
                })
                .collect();
            let (writes, changes) = plan_sync(&stored, verdicts, only, now);
            for w in writes {
                match w {
                    CardWrite::Issue {
                        verdict,
                        level,
                        state,
                    } => {
                        let v = &verdicts[verdict];
                        let id = g.id();
                        g.alarms.insert(
                            id,
                            AlarmRow {
                                id,
                                rule: v.rule.to_string(),
                                name: v.name.to_string(),
                                class: v.class.to_string(),
                                subtype: v.subtype.to_string(),
                                case_no: case_no.to_string(),
                                subject: v.subject.to_string(),
                                department: v.department.clone(),
                                level: level.as_str().to_string(),
                                state: state.to_string(),
                                appeal: None,
                                order_case: None,
                                issued_at: stamp.clone(),
                                updated_at: stamp.clone(),
                                history: line(&stamp, &format!("issued {}", level.as_str())),
                            },
                        );
                    }
                    CardWrite::Move {
                        id,
                        level,
                        state,
                        note,
                    } => {
                        if let Some(a) = g.alarms.get_mut(&id) {
                            a.level = level.as_str().to_string();
                            a.state = state;
                            a.updated_at.clone_from(&stamp);
                            a.history.push_str(&line(&stamp, &note));
                        }
                    }
                    CardWrite::End { id, state, note } => {
                        if let Some(a) = g.alarms.get_mut(&id) {
                            a.state = state.to_string();
                            a.updated_at.clone_from(&stamp);
                            a.history.push_str(&line(&stamp, note));
                        }
                    }
                }
            }
            for n in notes(case_no, &changes) {
                let id = g.id();
                g.notifications.push((id, stamp.clone(), n));
            }
            all.push((case_no.to_string(), changes));
        }
        Ok(all)
    }

    async fn save_figures(&self, figures: &str, _now: Time) -> Result<i64, StoreError> {
        let mut g = self.mem.lock().await;
        let version = g.figures.as_ref().map_or(0, |(v, _)| *v) + 1;
        g.figures = Some((version, figures.to_string()));
        Ok(version)
    }

    async fn figures_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .mem
            .lock()
            .await
            .figures
            .as_ref()
            .map_or(0, |(v, _)| *v))
    }

    async fn figures(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(self.mem.lock().await.figures.clone())
    }

    async fn awaiting_orders(
        &self,
        tops: &[(String, String)],
        after: i64,
        limit: i64,
    ) -> Result<Vec<Alarm>, StoreError> {
        let g = self.mem.lock().await;
        let rows = g
            .alarms
            .range(after.saturating_add(1)..)
            .map(|(_, a)| a)
            .filter(|a| {
                a.state == "issued"
                    && a.order_case.is_none()
                    && tops.iter().any(|(r, l)| *r == a.rule && *l == a.level)
            })
            .map(AlarmRow::to_alarm);
        Ok(page(rows, limit, 0))
    }

    async fn known_cards(
        &self,
        first: &str,
        last: &str,
    ) -> Result<HashMap<String, Vec<Known>>, StoreError> {
        let g = self.mem.lock().await;
        let mut out: HashMap<String, Vec<Known>> = HashMap::new();
        for a in g.alarms.values().filter(|a| {
            a.case_no.as_str() >= first
                && a.case_no.as_str() <= last
                && FOLLOWED.contains(&a.state.as_str())
        }) {
            let Some(level) = Level::parse(&a.level) else {
                continue;
            };
            out.entry(a.case_no.clone()).or_default().push(Known {
                rule: a.rule.clone(),
                subject: a.subject.clone(),
                level,
                revoked: matches!(a.state.as_str(), "revoked" | "verified"),
            });
        }
        Ok(out)
    }

    async fn alarms(
        &self,
        f: &AlarmFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Alarm>, StoreError> {
        let g = self.mem.lock().await;
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        let rows = g
            .alarms
            .values()
            .rev()
            .filter(|a| {
                eq(&f.class, &a.class)
                    && eq(&f.level, &a.level)
                    && eq(&f.department, &a.department)
                    && eq(&f.case_no, &a.case_no)
                    && eq(&f.rule, &a.rule)
                    && match f.state.as_deref() {
                        Some("open") => super::cards::OPEN_STATES.contains(&a.state.as_str()),
                        Some(s) => a.state == s,
                        None => true,
                    }
            })
            .map(AlarmRow::to_alarm);
        Ok(page(rows, limit, offset))
    }

    async fn alarm(&self, id: i64) -> Result<Option<Alarm>, StoreError> {
        Ok(self
            .mem
            .lock()
            .await
            .alarms
            .get(&id)
            .map(AlarmRow::to_alarm))
    }

    async fn transition_alarm(
        &self,
        id: i64,
        command: &crate::core::card::CardCommand,
        actor: &str,
        now: Time,
    ) -> Result<Alarm, AlarmError> {
        use crate::core::card::{CardState, decide};
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        let row = g.alarms.get(&id).ok_or(AlarmError::NotFound(id))?;
        let card = card_of(
            id,
            &row.state,
            &row.level,
            row.appeal.as_deref(),
            row.order_case.clone(),
        )?;
        let event = decide(&card, command, now).map_err(|error| AlarmError::Card { id, error })?;
        let a = g.alarms.get_mut(&id).ok_or(AlarmError::NotFound(id))?;
        if let Some(s) = event.state {
            a.state = s.as_str().to_string();
        }
        if let Some(l) = event.level {
            a.level = l.as_str().to_string();
        }
        if let Some(ap) = &event.appeal {
            a.appeal = Some(ap.to_string());
        }
        if let Some(o) = &event.order_case {
            a.order_case = Some(o.clone());
        }
        a.updated_at.clone_from(&stamp);
        a.history.push_str(&line(&stamp, &event.note));
        let alarm = a.to_alarm();
        g.audit(
            &stamp,
            actor,
            "alarm",
            json!({"alarm": id, "note": event.note, "state": event.state.map(CardState::as_str)})
                .to_string(),
        );
        Ok(alarm)
    }

    async fn note_alarm(&self, id: i64, what: &str, now: Time) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        if let Some(a) = self.mem.lock().await.alarms.get_mut(&id) {
            a.updated_at.clone_from(&stamp);
            a.history.push_str(&line(&stamp, what));
        }
        Ok(())
    }

    async fn rate(&self, r: &Rating, now: Time) -> Result<bool, StoreError> {
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        if g.ratings
            .iter()
            .any(|x| x.case_no == r.case_no && x.account == r.account)
        {
            return Ok(false);
        }
        let mut stored = r.clone();
        stored.at = Some(stamp.clone());
        g.ratings.push(stored);
        g.audit(
            &stamp,
            &r.account,
            "rate",
            json!({"case": r.case_no, "score": r.score}).to_string(),
        );
        Ok(true)
    }

    async fn ratings(&self, case_no: Option<&str>, limit: i64) -> Result<Vec<Rating>, StoreError> {
        let g = self.mem.lock().await;
        let mut rows: Vec<Rating> = g
            .ratings
            .iter()
            .rev()
            .filter(|r| case_no.is_none_or(|c| r.case_no == c))
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.at.cmp(&a.at));
        Ok(page(rows.into_iter(), limit, 0))
    }

    async fn cards_and_ratings_since(
        &self,
        from: &str,
    ) -> Result<(Vec<Alarm>, Vec<Rating>), StoreError> {
        let g = self.mem.lock().await;
        let cards = g
            .alarms
            .values()
            .filter(|a| a.issued_at.as_str() >= from)
            .map(AlarmRow::to_alarm)
            .collect();
        let ratings = g
            .ratings
            .iter()
            .filter(|r| r.at.as_deref().is_some_and(|at| at >= from))
            .cloned()
            .collect();
        Ok((cards, ratings))
    }

    async fn add_adjustment(&self, a: &Adjustment, now: Time) -> Result<i64, StoreError> {
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        let id = g.id();
        g.adjustments.insert(
            id,
            AdjustmentRec {
                a: a.clone(),
                state: "applied".into(),
                at: stamp.clone(),
                history: line(&stamp, &format!("applied {:+} by {}", a.delta, a.by)),
            },
        );
        g.audit(
            &stamp,
            &a.by,
            "efficiency.adjust",
            json!({"id": id, "department": a.department, "period": a.period, "delta": a.delta})
                .to_string(),
        );
        Ok(id)
    }

    async fn adjustments_of(&self, id: i64) -> Result<Option<String>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.adjustments.get(&id).map(|r| r.a.department.clone()))
    }

    async fn adjustments(&self, period: &str) -> Result<Vec<Value>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.adjustments
            .iter()
            .filter(|(_, r)| r.a.period == period)
            .map(|(id, r)| {
                json!({
                    "id": id,
                    "department": r.a.department,
                    "period": r.a.period,
                    "delta": r.a.delta,
                    "reason": r.a.reason,
                    "by": r.a.by,
                    "state": r.state,
                    "at": r.at,
                    "history": history(&r.history),
                })
            })
            .collect())
    }

    async fn move_adjustment(
        &self,
        id: i64,
        from: &str,
        to: &str,
        note: &str,
        now: Time,
    ) -> Result<Option<Result<String, String>>, StoreError> {
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        let Some(r) = g.adjustments.get_mut(&id) else {
            return Ok(None);
        };
        if r.state != from {
            return Ok(Some(Err(r.state.clone())));
        }
        r.state = to.to_string();
        r.history.push_str(&line(&stamp, note));
        let department = r.a.department.clone();
        g.audit(
            &stamp,
            note,
            "efficiency.adjustment",
            json!({"id": id, "to": to}).to_string(),
        );
        Ok(Some(Ok(department)))
    }

    async fn notify(&self, rows: &[Notification], now: Time) -> Result<(), StoreError> {
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        for n in rows {
            let id = g.id();
            g.notifications.push((id, stamp.clone(), n.clone()));
        }
        Ok(())
    }

    async fn notifications(
        &self,
        recipient: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<Value>, StoreError> {
        let g = self.mem.lock().await;
        let rows = g
            .notifications
            .iter()
            .rev()
            .filter(|(_, _, n)| recipient.is_none_or(|r| n.recipient == r))
            .map(|(id, at, n)| {
                json!({
                    "id": id,
                    "at": at,
                    "recipient": n.recipient,
                    "case_no": n.case_no,
                    "rule": n.rule,
                    "level": n.level,
                    "change": n.change,
                    "message": n.message,
                })
            });
        Ok(page(rows, limit, offset))
    }

    async fn staff_figures(&self, since: Time) -> Result<HashMap<String, StaffFacts>, StoreError> {
        let stamp = fmt_ts(since);
        let g = self.mem.lock().await;
        let mut out: HashMap<String, StaffFacts> = HashMap::new();
        for a in g.alarms.values().filter(|a| a.confirmed_anomaly(&stamp)) {
            out.entry(a.department.clone()).or_default().anomalies += 1;
        }
        for c in g.cases.values().filter(|c| {
            c.state.flow_id == crate::supervision::COMPLAINT_FLOW
                && c.state.status.as_str() == "completed"
                && c.updated_at >= stamp
        }) {
            if let Some(d) = complaint_addressee(&c.state) {
                out.entry(d).or_default().complaints += 1;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ClaimStore for MemStore {
    async fn claim_task(
        &self,
        case_no: &str,
        task_id: i64,
        login: &str,
        name: &str,
        now: Time,
    ) -> Result<Option<Claim>, StoreError> {
        let mut g = self.mem.lock().await;
        let open = g
            .cases
            .get(case_no)
            .is_some_and(|c| c.state.tasks.values().any(|t| i64::from(t.id) == task_id));
        if !open {
            return Ok(None);
        }
        let key = (case_no.to_string(), task_id);
        if let Some(c) = g.claims.get(&key) {
            return Ok(Some(c.clone()));
        }
        let stamp = fmt_ts(now);
        let claim = Claim {
            case_no: case_no.to_string(),
            task_id,
            login: login.to_string(),
            name: name.to_string(),
            claimed_at: stamp.clone(),
        };
        g.claims.insert(key, claim.clone());
        g.audit(
            &stamp,
            login,
            "task.claim",
            json!({"case": case_no, "task": task_id}).to_string(),
        );
        Ok(Some(claim))
    }

    async fn release_task(
        &self,
        case_no: &str,
        task_id: i64,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut g = self.mem.lock().await;
        let gone = g.claims.remove(&(case_no.to_string(), task_id)).is_some();
        if gone {
            g.audit(
                &fmt_ts(now),
                actor,
                "task.release",
                json!({"case": case_no, "task": task_id}).to_string(),
            );
        }
        Ok(gone)
    }

    async fn claims(&self, case_nos: &[String]) -> Result<Vec<Claim>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.claims
            .values()
            .filter(|c| case_nos.contains(&c.case_no))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl UserStore for MemStore {
    async fn create_user(
        &self,
        u: &User,
        password_hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut g = self.mem.lock().await;
        if g.users.contains_key(&u.login) {
            return Ok(false);
        }
        g.users.insert(
            u.login.clone(),
            (u.clone(), password_hash.map(str::to_string)),
        );
        g.audit(
            &fmt_ts(now),
            actor,
            "user.create",
            json!({"login": u.login, "roles": u.roles}).to_string(),
        );
        Ok(true)
    }

    async fn users(&self) -> Result<Vec<User>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.users.values().map(|(u, _)| u.clone()).collect())
    }

    async fn add_token(
        &self,
        login: &str,
        hash: &str,
        label: &str,
        expires: Time,
        actor: &str,
        now: Time,
    ) -> Result<(), StoreError> {
        let mut g = self.mem.lock().await;
        let (stamp, until) = (fmt_ts(now), fmt_ts(expires));
        g.tokens.insert(
            hash.to_string(),
            (
                login.to_string(),
                label.to_string(),
                stamp.clone(),
                until.clone(),
                None,
            ),
        );
        g.audit(
            &stamp,
            actor,
            "token.create",
            json!({"login": login, "label": label, "id": &hash[..hash.len().min(16)], "expires_at": until}).to_string(),
        );
        Ok(())
    }

    async fn tokens(&self, login: &str) -> Result<Vec<super::TokenInfo>, StoreError> {
        let g = self.mem.lock().await;
        let mut out: Vec<super::TokenInfo> = g
            .tokens
            .iter()
            .filter(|(_, t)| t.0 == login)
            .map(
                |(hash, (_, label, created, expires, revoked))| super::TokenInfo {
                    id: hash.chars().take(16).collect(),
                    label: label.clone(),
                    created_at: created.clone(),
                    expires_at: Some(expires.clone()),
                    revoked_at: revoked.clone(),
                },
            )
            .collect();
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
    }

    async fn revoke_token(
        &self,
        login: &str,
        id: &str,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(false);
        }
        let stamp = fmt_ts(now);
        let mut g = self.mem.lock().await;
        let mut done = false;
        for (hash, t) in g.tokens.iter_mut() {
            if t.0 == login && hash.starts_with(id) && t.4.is_none() {
                t.4 = Some(stamp.clone());
                done = true;
            }
        }
        if done {
            g.audit(
                &stamp,
                actor,
                "token.revoke",
                json!({"login": login, "id": id}).to_string(),
            );
        }
        Ok(done)
    }

    async fn set_disabled(
        &self,
        login: &str,
        disabled: bool,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut g = self.mem.lock().await;
        let Some((u, _)) = g.users.get_mut(login) else {
            return Ok(false);
        };
        u.disabled = disabled;
        if disabled {
            g.sessions.retain(|_, s| s.0 != login);
        }
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        g.audit(
            &fmt_ts(now),
            actor,
            action,
            json!({"login": login}).to_string(),
        );
        Ok(true)
    }

    async fn set_password(
        &self,
        login: &str,
        hash: Option<&str>,
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut g = self.mem.lock().await;
        let Some((_, pw)) = g.users.get_mut(login) else {
            return Ok(false);
        };
        *pw = hash.map(str::to_string);
        g.sessions.retain(|_, s| s.0 != login);
        g.audit(
            &fmt_ts(now),
            actor,
            "user.password",
            json!({"login": login}).to_string(),
        );
        Ok(true)
    }

    async fn set_roles(
        &self,
        login: &str,
        roles: &[super::users::Grant],
        actor: &str,
        now: Time,
    ) -> Result<bool, StoreError> {
        let mut g = self.mem.lock().await;
        let Some((u, _)) = g.users.get_mut(login) else {
            return Ok(false);
        };
        u.roles = roles.to_vec();
        g.audit(
            &fmt_ts(now),
            actor,
            "user.roles",
            json!({"login": login, "roles": roles}).to_string(),
        );
        Ok(true)
    }

    async fn user_with_password(
        &self,
        login: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError> {
        Ok(self
            .mem
            .lock()
            .await
            .users
            .get(login)
            .filter(|(u, _)| !u.disabled)
            .cloned())
    }

    async fn add_session(
        &self,
        hash: &str,
        login: &str,
        csrf: &str,
        expires: Time,
        now: Time,
    ) -> Result<(), StoreError> {
        let until = fmt_ts(expires);
        let mut g = self.mem.lock().await;
        g.sessions.insert(
            hash.to_string(),
            (login.to_string(), csrf.to_string(), until.clone()),
        );
        g.audit(
            &fmt_ts(now),
            login,
            "login",
            json!({"until": until}).to_string(),
        );
        Ok(())
    }

    async fn session(&self, hash: &str, now: Time) -> Result<Option<(User, String)>, StoreError> {
        let stamp = fmt_ts(now);
        let g = self.mem.lock().await;
        let Some((login, csrf, until)) = g.sessions.get(hash) else {
            return Ok(None);
        };
        if *until <= stamp {
            return Ok(None);
        }
        Ok(g.users
            .get(login)
            .filter(|(u, _)| !u.disabled)
            .map(|(u, _)| (u.clone(), csrf.clone())))
    }

    async fn end_session(&self, hash: &str, actor: &str, now: Time) -> Result<(), StoreError> {
        let mut g = self.mem.lock().await;
        if g.sessions.remove(hash).is_some() {
            g.audit(&fmt_ts(now), actor, "logout", "{}".to_string());
        }
        Ok(())
    }

    async fn user_for_token(&self, hash: &str, now: Time) -> Result<Option<User>, StoreError> {
        let stamp = fmt_ts(now);
        let g = self.mem.lock().await;
        Ok(g.tokens
            .get(hash)
            .filter(|t| t.4.is_none() && t.3 > stamp)
            .and_then(|t| g.users.get(&t.0))
            .filter(|(u, _)| !u.disabled)
            .map(|(u, _)| u.clone()))
    }
}

#[async_trait]
impl BlobStore for MemStore {
    async fn put_blob(&self, key: &str, bytes: &[u8]) -> Result<bool, StoreError> {
        if blob_path(key).is_none() {
            return Err(StoreError::BadKey(key.to_string()));
        }
        let mut g = self.mem.lock().await;
        match g.blobs.get(key) {
            Some(old) if old == bytes => Ok(false),
            Some(_) => Err(StoreError::BlobExists(key.to_string())),
            None => {
                g.blobs.insert(key.to_string(), bytes.to_vec());
                Ok(true)
            }
        }
    }

    async fn blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        if blob_path(key).is_none() {
            return Err(StoreError::BadKey(key.to_string()));
        }
        Ok(self.mem.lock().await.blobs.get(key).cloned())
    }

    async fn blob_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let g = self.mem.lock().await;
        Ok(g.blobs
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl Backend for MemStore {
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn region(&self) -> &str {
        &self.region
    }
    async fn schema_versions(&self) -> Result<Vec<i64>, StoreError> {
        Ok((1..=super::schema::latest()).collect())
    }
    async fn database_now(&self) -> Option<Time> {
        None
    }
    async fn close(&self) {}
}

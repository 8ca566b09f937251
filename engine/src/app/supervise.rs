//! Supervision as use cases: judging a case after each command and at the
//! scheduled scans, the cards people act on, supervision orders, who is told.

use super::{Engine, SCAN_PAGE};
use crate::core::Time;
use crate::store::{ExecError, Request};
use std::sync::Arc;

fn level_zh(level: &str) -> &'static str {
    match level {
        "notice" => "预警",
        "yellow" => "黄牌",
        _ => "红牌",
    }
}

/// What a scan did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Unfinished cases read.
    pub cases: usize,
    /// Verdicts computed (rules × subjects).
    pub evaluations: usize,
    /// Card changes written (issued, escalated, lowered, resolved).
    pub changes: usize,
    /// Cards issued.
    pub cards: usize,
}

/// Who issues supervision orders (the applicant of a 督办单 case): the
/// electronic supervision centre. Set `GOVFLOW_SUPERVISION_BODY` to
/// `名称|统一社会信用代码` for another body.
pub fn supervision_body() -> crate::core::Person {
    let configured = std::env::var("GOVFLOW_SUPERVISION_BODY").ok();
    let (name, code) = configured
        .as_deref()
        .and_then(|v| v.split_once('|'))
        .map_or(("电子监察中心", "11330100MB0000001R"), |(n, c)| {
            (n.trim(), c.trim())
        });
    crate::core::Person {
        name: name.to_string(),
        id_kind: crate::core::ids::IdKind::CreditCode,
        id_number: code.to_string(),
        legacy: false,
        phone: None,
        address: None,
        postcode: None,
        legal_representative: None,
    }
}

/// Why an order could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("the supervision order flow `{0}` is not deployed (flows/supervision)")]
    NoOrderFlow(&'static str),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error(transparent)]
    Alarm(#[from] crate::store::cards::AlarmError),
}

impl Engine {
    /// The rule book in force.
    pub fn rules(&self) -> Option<Arc<crate::supervision::RuleBook>> {
        match self.rules.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Puts a new rule book in force: the next command and scan use it.
    pub fn set_rules(&self, book: Option<Arc<crate::supervision::RuleBook>>) {
        let mut g = match self.rules.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        *g = book;
    }

    /// Recomputes the cross-case figures (`staff.*`: the last 365 days) and
    /// records them as the new shared version, which every node then uses.
    pub async fn refresh_context(&self, now: Time) {
        let staff = match self
            .store
            .staff_figures(now - chrono::Duration::days(365))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("supervision: cannot read the staff figures: {e}");
                return;
            }
        };
        let mut ctx = crate::supervision::Context { staff, version: 0 };
        let text = serde_json::to_string(&ctx).unwrap_or_default();
        match self.store.save_figures(&text, now).await {
            Ok(v) => ctx.version = v,
            Err(e) => eprintln!("supervision: cannot record the staff figures: {e}"),
        }
        if let Ok(mut c) = self.context.write() {
            *c = ctx;
        }
    }

    /// Puts the shared figures in force on this node when another node has
    /// recorded newer ones (one indexed read; the figures only when changed).
    pub async fn sync_context(&self) {
        let mine = self.context.read().map_or(-1, |c| c.version);
        let Ok(latest) = self.store.figures_version().await else {
            return;
        };
        if latest == mine || latest == 0 {
            return;
        }
        if let Ok(Some((version, text))) = self.store.figures().await
            && let Ok(mut ctx) = serde_json::from_str::<crate::supervision::Context>(&text)
        {
            ctx.version = version;
            if let Ok(mut c) = self.context.write() {
                *c = ctx;
            }
        }
    }

    /// The figures in force on this node (their version included).
    pub fn context(&self) -> crate::supervision::Context {
        self.context.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Issues a supervision order (督办单) for a card: starts a case of the
    /// built-in order flow addressed to `to`, and marks the card `ordered`.
    /// The idempotency key `order:CARD` makes a second call answer the first.
    pub async fn issue_order(
        &self,
        alarm: &crate::store::cards::Alarm,
        to: &str,
        reason: Option<&str>,
        actor: &str,
    ) -> Result<crate::store::cards::Alarm, OrderError> {
        use crate::core::card::{CardError, CardState};
        use crate::supervision::ORDER_FLOW;
        if self.flows.latest(ORDER_FLOW).is_none() {
            return Err(OrderError::NoOrderFlow(ORDER_FLOW));
        }
        // Checked again inside the transaction that records the order; here
        // so that no order case is started for a card that is over.
        if !CardState::parse(&alarm.state).is_some_and(CardState::is_open) {
            return Err(crate::store::cards::AlarmError::Card {
                id: alarm.id,
                error: CardError::WrongState {
                    state: alarm.state.clone(),
                    expected: "pending or issued or ordered".into(),
                },
            }
            .into());
        }
        let mut data = crate::core::Data::new();
        data.insert("addressee".into(), to.into());
        data.insert(
            "origin".into(),
            serde_json::json!({
                "case": alarm.case_no, "rule": alarm.rule, "subject": alarm.subject,
                "level": alarm.level, "alarm": alarm.id, "class": alarm.class,
            }),
        );
        data.insert(
            "reason".into(),
            reason
                .map(str::to_string)
                .unwrap_or_else(|| format!("{}（{}）", alarm.name, level_zh(&alarm.level)))
                .into(),
        );
        let req = Request {
            case_no: None,
            flow_id: Some(ORDER_FLOW.into()),
            command: crate::core::Command::Start {
                case_no: String::new(),
                applicant: supervision_body(),
                agent: None,
                source: Some("电子监察".into()),
                project_code: None,
                data,
                materials: Vec::new(),
            },
            idempotency_key: Some(format!("order:{}", alarm.id)),
            actor: actor.to_string(),
            override_claims: false,
        };
        // Boxed: starting the order supervises it, which may issue orders.
        let out = Box::pin(self.execute(&req)).await?;
        if alarm.state == "ordered" && alarm.order_case.as_deref() == Some(out.case_no.as_str()) {
            return Ok(alarm.clone());
        }
        let ordered = crate::core::card::CardCommand::Ordered {
            by: actor.to_string(),
            order_case: out.case_no.clone(),
            to: to.to_string(),
        };
        Ok(self
            .store
            .transition_alarm(alarm.id, &ordered, actor, self.now())
            .await?)
    }

    /// A person's command on a card (acknowledge, appeal, decide an appeal,
    /// verify and close), decided by the pure `core::card` inside the
    /// store's transaction. An appeal escalated to red gets its supervision
    /// order at once, as a card the rules raise to red does.
    pub async fn card_command(
        &self,
        id: i64,
        command: &crate::core::card::CardCommand,
        actor: &str,
    ) -> Result<crate::store::cards::Alarm, OrderError> {
        let out = self
            .store
            .transition_alarm(id, command, actor, self.now())
            .await?;
        if matches!(
            command,
            crate::core::card::CardCommand::DecideAppeal {
                outcome: crate::core::card::AppealOutcome::Escalate,
                ..
            }
        ) && out.level == "red"
            && out.order_case.is_none()
        {
            let to = out.department.clone();
            return self.issue_order(&out, &to, None, actor).await;
        }
        Ok(out)
    }

    /// Who is told: a card issued or escalated goes to its rule's `notify`
    /// list, and a yellow or red one also to the department responsible.
    pub(super) fn notifications_for(
        &self,
        case_no: &str,
        changes: &[crate::supervision::CardChange],
        verdicts: &[crate::supervision::Verdict],
    ) -> Vec<crate::store::cards::Notification> {
        use crate::supervision::CardChange;
        use govflow_dsl::rule::Level;
        let Some(rules) = self.rules() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for c in changes {
            let (rule, subject, level, change) = match c {
                CardChange::Issued { card } => (&card.rule, &card.subject, card.level, "issued"),
                CardChange::Escalated {
                    rule, subject, to, ..
                } => (rule, subject, *to, "escalated"),
                _ => continue,
            };
            let Some(r) = rules.rule(rule) else { continue };
            let mut to: Vec<String> = r.notify.clone();
            if level >= Level::Yellow
                && let Some(v) = verdicts
                    .iter()
                    .find(|v| &*v.rule == rule.as_str() && &*v.subject == subject.as_str())
                && !v.department.is_empty()
                && !to.contains(&v.department)
            {
                to.push(v.department.clone());
            }
            let colour = match level {
                Level::Notice => "预警",
                Level::Yellow => "黄牌",
                Level::Red => "红牌",
            };
            for recipient in to {
                out.push(crate::store::cards::Notification {
                    recipient,
                    case_no: case_no.to_string(),
                    rule: rule.clone(),
                    level: level.as_str().to_string(),
                    change: change.to_string(),
                    message: format!("{case_no} {}（{subject}）：{colour}", r.name),
                });
            }
        }
        out
    }

    /// After the cards of a case changed: a card that reached the top of its
    /// rule's ladder, where the rule says `order { … }`, gets its order.
    pub(super) async fn orders_for(
        &self,
        case_no: &str,
        changes: &[crate::supervision::CardChange],
    ) {
        use crate::supervision::CardChange;
        let Some(rules) = self.rules() else { return };
        let topped: Vec<(&str, &str)> = changes
            .iter()
            .filter_map(|c| match c {
                CardChange::Issued { card } => {
                    Some((card.rule.as_str(), card.subject.as_str(), card.level))
                }
                CardChange::Escalated {
                    rule, subject, to, ..
                } => Some((rule.as_str(), subject.as_str(), *to)),
                _ => None,
            })
            .filter(|(rule, _, level)| {
                rules.rule(rule).is_some_and(|r| {
                    r.order.is_some() && r.levels.last().is_some_and(|(top, _)| top == level)
                })
            })
            .map(|(r, s, _)| (r, s))
            .collect();
        if topped.is_empty() {
            return;
        }
        let filter = crate::store::cards::AlarmFilter {
            case_no: Some(case_no.to_string()),
            state: Some("issued".into()),
            ..Default::default()
        };
        let Ok(cards) = self.store.alarms(&filter, 100, 0).await else {
            return;
        };
        for card in cards {
            if !topped.contains(&(card.rule.as_str(), card.subject.as_str())) {
                continue;
            }
            let Some(order) = rules.rule(&card.rule).and_then(|r| r.order.clone()) else {
                continue;
            };
            let to = if order.to == "responsible" {
                card.department.clone()
            } else {
                order.to.clone()
            };
            if let Err(e) = self.issue_order(&card, &to, None, "engine").await {
                eprintln!("supervision: no order for card {}: {e}", card.id);
            }
        }
    }

    /// Evaluates the rules on one case and brings its stored cards in line.
    /// A failure is logged; it never undoes the command that led here.
    pub async fn supervise(&self, case_no: &str, now: Time) -> Vec<crate::supervision::CardChange> {
        let Some(rules) = self.rules() else {
            return Vec::new();
        };
        let state = match self.store.case(case_no).await {
            Ok(Some(s)) => s,
            Ok(None) => return Vec::new(),
            Err(e) => {
                eprintln!("supervision: cannot read case {case_no}: {e}");
                return Vec::new();
            }
        };
        let flow = self.flows.get(&state.flow_id, state.flow_version);
        // The figures every node decides with: the shared version.
        self.sync_context().await;
        let mut verdicts = match self.context.read() {
            Ok(ctx) => rules.evaluate_with(&state, flow.as_deref(), &self.calendar(), now, &ctx),
            Err(_) => rules.evaluate(&state, flow.as_deref(), &self.calendar(), now),
        };
        crate::supervision::RuleBook::fill_departments(&mut verdicts, &state, flow.as_deref());
        for v in verdicts.iter().filter(|v| v.error.is_some()) {
            let msg = v.error.clone().unwrap_or_default();
            if let Ok(mut errs) = self.rule_errors.lock() {
                // Logged once per rule and message; the card stays as it was.
                let first = errs.get(&*v.rule).is_none_or(|(_, _, m)| *m != msg);
                if first {
                    eprintln!("supervision: rule {} on case {case_no}: {msg}", v.rule);
                }
                errs.insert(v.rule.to_string(), (now, case_no.to_string(), msg));
            }
        }
        // Most commands change no card: find out without the write lock.
        if let Ok(known) = self.store.known_cards(case_no, case_no).await {
            let k = known.get(case_no).map_or(&[][..], Vec::as_slice);
            if !crate::store::cards::needs_sync(k, &verdicts, None) {
                return Vec::new();
            }
        }

        let notes = |no: &str, c: &[crate::supervision::CardChange]| {
            self.notifications_for(no, c, &verdicts)
        };
        match self
            .store
            .sync_many(&[(case_no, &verdicts)], None, now, &notes)
            .await
        {
            Ok(mut all) => {
                let c = all.pop().map(|(_, c)| c).unwrap_or_default();
                self.orders_for(case_no, &c).await;
                c
            }
            Err(e) => {
                eprintln!("supervision: cannot store the cards of {case_no}: {e}");
                Vec::new()
            }
        }
    }

    /// Evaluates the rules on every unfinished case (the scheduled scans:
    /// working-day figures change at midnight, hour limits by the hour).
    /// Reads pages of snapshots and their cards in bulk, evaluates on every
    /// core, and writes only for the cases whose cards change (each such write
    /// re-reads the case's cards under its lock). Returns the number of changes.
    pub async fn scan(&self, now: Time) -> usize {
        self.scan_stats(now).await.changes
    }

    /// `scan` with its figures (the benchmark reads them).
    pub async fn scan_stats(&self, now: Time) -> ScanStats {
        let mut st = ScanStats::default();
        let Some(rules) = self.rules() else {
            return st;
        };
        self.refresh_context(now).await;
        let ctx = self.context.read().map(|c| c.clone()).unwrap_or_default();
        let ctx = Arc::new(ctx);
        let timed = Arc::new(rules.timed_rules());
        let mut after = String::new();
        loop {
            let page = match self.store.open_snapshots(&after, SCAN_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("supervision scan: {e}");
                    return st;
                }
            };
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                return st;
            };
            let known = match self.store.known_cards(&first.0, &last.0).await {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("supervision scan: {e}");
                    return st;
                }
            };
            after = last.0.clone();
            st.cases += page.len();
            // Parse and evaluate on every core; collect the cases to write.
            let known = Arc::new(known);
            let page = Arc::new(page);
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = page.len().div_ceil(workers).max(1);
            let mut jobs = Vec::new();
            for w in 0..workers {
                let (page, known, rules, ctx, timed) = (
                    page.clone(),
                    known.clone(),
                    rules.clone(),
                    ctx.clone(),
                    timed.clone(),
                );
                let (flows, cal) = (self.flows.clone(), self.calendar());
                jobs.push(tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    let mut evaluated = 0usize;
                    let lo = (w * chunk).min(page.len());
                    let hi = ((w + 1) * chunk).min(page.len());
                    for (no, snap) in &page[lo..hi] {
                        let Ok(state) = serde_json::from_str::<crate::core::CaseState>(snap) else {
                            eprintln!("supervision scan: case {no}: unreadable snapshot");
                            continue;
                        };
                        let flow = flows.get(&state.flow_id, state.flow_version);
                        let mut verdicts =
                            rules.evaluate_timed(&state, flow.as_deref(), &cal, now, &ctx);
                        evaluated += verdicts.len();
                        let k = known.get(no).map_or(&[][..], Vec::as_slice);
                        if crate::store::cards::needs_sync(k, &verdicts, Some(&timed)) {
                            crate::supervision::RuleBook::fill_departments(
                                &mut verdicts,
                                &state,
                                flow.as_deref(),
                            );
                            out.push((no.clone(), verdicts));
                        }
                    }
                    (out, evaluated)
                }));
            }
            let mut writes = Vec::new();
            for j in jobs {
                if let Ok((w, n)) = j.await {
                    writes.extend(w);
                    st.evaluations += n;
                }
            }
            // One transaction for the page's writes.
            let items: Vec<(&str, &[crate::supervision::Verdict])> = writes
                .iter()
                .map(|(no, v)| (no.as_str(), v.as_slice()))
                .collect();
            let by_case: std::collections::HashMap<&str, &[crate::supervision::Verdict]> =
                items.iter().copied().collect();
            let notes = |no: &str, c: &[crate::supervision::CardChange]| {
                self.notifications_for(no, c, by_case.get(no).copied().unwrap_or_default())
            };
            match self
                .store
                .sync_many(&items, Some(&timed), now, &notes)
                .await
            {
                Ok(all) => {
                    for (no, c) in all {
                        st.changes += c.len();
                        st.cards += c
                            .iter()
                            .filter(|c| matches!(c, crate::supervision::CardChange::Issued { .. }))
                            .count();
                        self.orders_for(&no, &c).await;
                    }
                }
                Err(e) => eprintln!("supervision scan: cannot store cards: {e}"),
            }
            if (page.len() as i64) < SCAN_PAGE {
                self.complete_orders().await;
                return st;
            }
        }
    }

    /// Issues the supervision orders that cards at the top of their rule are
    /// owed and do not have — normally none: an order follows its card at
    /// once. After a crash between a card and its order, the card itself
    /// says the order is owed (`awaiting_orders`); the order's start carries
    /// the key `order:CARD`, so it is started once however often this runs.
    /// Runs at start-up, after every scan and every minute. Returns how many
    /// orders it issued.
    pub async fn complete_orders(&self) -> usize {
        let Some(rules) = self.rules() else { return 0 };
        let tops: Vec<(String, String)> = rules
            .rules()
            .filter(|r| r.order.is_some())
            .filter_map(|r| {
                r.levels
                    .last()
                    .map(|(top, _)| (r.id.clone(), top.as_str().to_string()))
            })
            .collect();
        let mut issued = 0;
        // Page on by id: a card that keeps failing never blocks the ones after it.
        let mut after = 0;
        loop {
            let owed = match self.store.awaiting_orders(&tops, after, 100).await {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("supervision: cannot list the orders owed: {e}");
                    return issued;
                }
            };
            let n = owed.len();
            for card in owed {
                after = card.id;
                // As it is now: a person may have revoked or closed it since
                // the list was read (on another node, say).
                let card = match self.store.alarm(card.id).await {
                    Ok(Some(c)) if c.state == "issued" && c.order_case.is_none() => c,
                    _ => continue,
                };
                let Some(order) = rules.rule(&card.rule).and_then(|r| r.order.clone()) else {
                    continue;
                };
                let to = if order.to == "responsible" {
                    card.department.clone()
                } else {
                    order.to.clone()
                };
                match self.issue_order(&card, &to, None, "engine").await {
                    Ok(_) => issued += 1,
                    Err(e) => eprintln!("supervision: no order for card {}: {e}", card.id),
                }
            }
            if n < 100 {
                return issued;
            }
        }
    }

    /// A finished order is noted on its card; a finished complaint changes
    /// the complaint figures the rules read.
    pub(super) async fn supervision_finished(&self, case: &crate::core::CaseState) {
        use crate::supervision::{COMPLAINT_FLOW, ORDER_FLOW};
        let now = self.now();
        match case.flow_id.as_str() {
            ORDER_FLOW => {
                let card = case
                    .data
                    .get("origin")
                    .and_then(|o| o.get("alarm"))
                    .and_then(|a| a.as_i64());
                if let Some(id) = card {
                    let result = case
                        .outcome
                        .as_ref()
                        .map_or(case.status.as_str().to_string(), |o| o.result.clone());
                    let what = format!("supervision order {} finished: {result}", case.case_no);
                    if let Err(e) = self.store.note_alarm(id, &what, now).await {
                        eprintln!("supervision: cannot note order on card {id}: {e}");
                    }
                }
            }
            COMPLAINT_FLOW => self.refresh_context(now).await,
            _ => {}
        }
    }
}

//! `evolve`: fold one event into a case state. Total and dumb on purpose: it
//! makes no decisions, reads no flow and no calendar.

use super::model::*;

/// The state after `event`.
pub fn evolve(mut state: CaseState, event: &Event) -> CaseState {
    state.apply(event);
    state
}

impl CaseState {
    /// Rebuilds a state from a whole event log.
    pub fn replay<'a>(events: impl IntoIterator<Item = &'a Event>) -> CaseState {
        let mut s = CaseState::default();
        for e in events {
            s.apply(e);
        }
        s
    }

    /// Folds one event into the state in place.
    pub fn apply(&mut self, event: &Event) {
        self.version += 1;
        match event {
            Event::CaseStarted {
                at,
                case_no,
                flow_id,
                flow_version,
                item_name,
                item_code,
                applicant,
                agent,
                source,
                project_code,
                data,
                ..
            } => {
                self.case_no = case_no.clone();
                self.flow_id = flow_id.clone();
                self.flow_version = *flow_version;
                self.item_name = item_name.clone();
                self.item_code = item_code.clone();
                self.applicant = Some(applicant.clone());
                self.agent = agent.clone();
                self.source = source.clone();
                self.project_code = project_code.clone();
                self.submitted_at = Some(*at);
                self.data = data.clone();
                self.status = Status::Applied;
            }
            Event::MaterialsReceived { at, materials } => {
                for m in materials {
                    self.materials.insert(
                        m.id.clone(),
                        MaterialState {
                            how: m.how.clone(),
                            count: m.count,
                            at: *at,
                        },
                    );
                }
                if let Some(d) = &mut self.deferred {
                    d.materials.retain(|id| !self.materials.contains_key(id));
                    if d.materials.is_empty() {
                        self.deferred = None;
                    }
                }
            }
            Event::DataSet { values, .. } => {
                for (k, v) in values {
                    self.data.insert(k.clone(), v.clone());
                }
            }
            Event::TaskOpened { task, .. } => {
                self.next_task = self.next_task.max(task.id + 1);
                self.tasks.insert(task.id, task.clone());
                if self.status == Status::Correcting {
                    self.status = Status::Applied;
                    self.correction = None;
                }
            }
            Event::TaskCompleted { task, action, .. } => {
                self.tasks.remove(task);
                if action == "return" {
                    self.returns += 1;
                }
            }
            Event::TaskCancelled { task, .. } => {
                self.tasks.remove(task);
            }
            Event::DecisionMade { .. } => {}
            Event::CorrectionRequested {
                at,
                reopen,
                missing,
                ..
            } => {
                self.status = Status::Correcting;
                self.corrections += 1;
                self.notified.extend(missing.iter().cloned());
                self.last_notice_at = Some(*at);
                self.correction = Some((reopen.clone(), missing.clone()));
            }
            Event::Accepted {
                at,
                by,
                notice_no,
                statutory,
                promised,
                deferred,
            } => {
                self.status = Status::Accepted;
                self.accepted_at = Some(*at);
                self.accepted_by = Some(by.clone());
                self.acceptance_no = notice_no.clone();
                self.statutory = statutory.clone();
                self.promised = promised.clone();
                self.deferred = deferred.clone();
            }
            Event::VisitRecorded { step, cause, .. } => {
                self.visits += 1;
                if cause.as_deref() != Some("applicant") {
                    self.office_visits += 1;
                }
                self.visited.insert(step.clone());
            }
            Event::ParallelStarted {
                step,
                lanes,
                needed,
                deadline,
                ..
            } => {
                self.joins.insert(
                    step.clone(),
                    JoinState {
                        lanes: lanes.clone(),
                        needed: *needed,
                        done: Default::default(),
                        deadline: deadline.clone(),
                    },
                );
            }
            Event::LaneFinished { step, lane, .. } => {
                if let Some(j) = self.joins.get_mut(step) {
                    j.done.insert(lane.clone());
                }
            }
            Event::Joined { step, dropped, .. } => {
                for s in std::iter::once(step).chain(dropped) {
                    self.joins.remove(s);
                    self.joint.remove(s);
                    self.subflows.remove(s);
                    self.waits.remove(s);
                }
            }
            Event::ReviewFinished { step, review, .. } => {
                if let Some(j) = self.joint.get_mut(step) {
                    j.pending.remove(review);
                }
            }
            Event::JointRoundStarted {
                step,
                round,
                reviews,
                deadline,
                ..
            } => {
                self.joint.insert(
                    step.clone(),
                    JointState {
                        round: *round,
                        pending: reviews.iter().cloned().collect(),
                        resubmit_due: None,
                        awaiting_resubmission: false,
                        rectifying_since: None,
                        rectify_stops_statutory: true,
                        rectify_stops_promised: true,
                        deadline: deadline.clone(),
                    },
                );
                if self.status == Status::Rectifying {
                    self.status = Status::Accepted;
                }
            }
            Event::RectificationIssued {
                at,
                step,
                resubmit_due,
                stops_statutory,
                stops_promised,
                ..
            } => {
                if let Some(j) = self.joint.get_mut(step) {
                    j.awaiting_resubmission = true;
                    j.resubmit_due = resubmit_due.clone();
                    j.rectifying_since = Some(*at);
                    j.rectify_stops_statutory = *stops_statutory;
                    j.rectify_stops_promised = *stops_promised;
                }
                if self.status == Status::Accepted {
                    self.status = Status::Rectifying;
                }
            }
            Event::WaitStarted { step, state, .. } => {
                self.waits.insert(step.clone(), state.clone());
            }
            Event::WaitEnded { step, .. } => {
                self.waits.remove(step);
            }
            Event::SubcasesRequested {
                step,
                items,
                needed,
                deadline,
                ..
            } => {
                self.subflows.insert(
                    step.clone(),
                    SubflowState {
                        items: items.clone(),
                        needed: *needed,
                        finished: Default::default(),
                        deadline: deadline.clone(),
                        paused: None,
                    },
                );
            }
            Event::SubcaseFinished {
                step,
                item,
                case_no,
                result,
                ..
            } => {
                if let Some(s) = self.subflows.get_mut(step) {
                    s.finished
                        .insert(item.clone(), (case_no.clone(), result.clone()));
                }
            }
            Event::SpecialStarted { at, special } => {
                if special.class == SpecialClass::B
                    && (special.stops_statutory || special.stops_promised)
                {
                    self.suspended = Some((special.id, *at));
                    self.status = Status::Suspended;
                }
                self.specials.push(special.clone());
            }
            Event::SpecialEnded {
                at,
                id,
                result,
                opinion,
                by,
                counted_days,
            } => {
                if let Some(s) = self.specials.iter_mut().find(|s| s.id == *id) {
                    s.ended_at = Some(*at);
                    s.result = Some(result.clone());
                    s.opinion = opinion.clone();
                    s.handled_by = Some(by.clone());
                    s.counted_days = *counted_days;
                }
                if self.suspended.map(|(sid, _)| sid) == Some(*id) {
                    self.suspended = None;
                    if self.status == Status::Suspended {
                        self.status = Status::Accepted;
                    }
                }
            }
            Event::DeadlinesMoved {
                statutory,
                promised,
                tasks,
                stages,
                ..
            } => {
                self.statutory = statutory.clone();
                self.promised = promised.clone();
                for (id, d) in tasks {
                    if let Some(t) = self.tasks.get_mut(id) {
                        t.deadline = Some(d.clone());
                    }
                }
                for (step, d) in stages {
                    if let Some(j) = self.joins.get_mut(step) {
                        j.deadline = Some(d.clone());
                    }
                    if let Some(j) = self.joint.get_mut(step) {
                        j.deadline = Some(d.clone());
                    }
                    if let Some(j) = self.subflows.get_mut(step) {
                        j.deadline = Some(d.clone());
                    }
                }
            }
            Event::Received { at, window, .. } => {
                self.received_at = Some(*at);
                self.receipt_window = Some(window.clone());
            }
            Event::DeemedAccepted {
                received_at,
                statutory,
                promised,
                ..
            } => {
                self.status = Status::Accepted;
                self.accepted_at = Some(*received_at);
                self.deemed_accepted = true;
                self.statutory = statutory.clone();
                self.promised = promised.clone();
            }
            Event::StageClock {
                at,
                step,
                case_no,
                kind,
                paused,
                ..
            } => {
                if let Some(s) = self.subflows.get_mut(step) {
                    s.paused = paused.then(|| (*at, case_no.clone(), kind.clone()));
                }
            }
            Event::Decided { at, issue, .. } => {
                self.decided_at = Some(*at);
                self.issue = issue.clone();
            }
            Event::DeadlinesRecomputed { changes, .. } => {
                for c in changes {
                    let d = Some(c.deadline.clone());
                    match c.key.split_once(':') {
                        Some(("case", "statutory")) => self.statutory = d,
                        Some(("case", "promised")) => self.promised = d,
                        Some(("case", "issue")) => self.issue = d,
                        Some(("task", id)) => {
                            if let Some(t) =
                                id.parse().ok().and_then(|id: u32| self.tasks.get_mut(&id))
                            {
                                t.deadline = d;
                            }
                        }
                        Some(("stage", step)) => {
                            if let Some(j) = self.joins.get_mut(step) {
                                j.deadline = d.clone();
                            }
                            if let Some(j) = self.joint.get_mut(step) {
                                j.deadline = d.clone();
                            }
                            if let Some(j) = self.subflows.get_mut(step) {
                                j.deadline = d;
                            }
                        }
                        Some(("resubmit", step)) => {
                            if let Some(j) = self.joint.get_mut(step) {
                                j.resubmit_due = d;
                            }
                        }
                        Some(("wait_limit", step)) => {
                            if let Some(w) = self.waits.get_mut(step) {
                                w.deadline = d;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Event::DeadlinePassed { timer, due, .. } => {
                self.fired.insert(fired_key(timer, *due));
            }
            Event::Terminated { at, reason, .. } => {
                self.status = Status::Terminated;
                self.finished_at = Some(*at);
                self.termination_reason = Some(reason.clone());
                self.close();
            }
            Event::Withdrawn { at, reason } => {
                self.status = Status::Withdrawn;
                self.finished_at = Some(*at);
                self.termination_reason = Some(reason.clone());
                self.close();
            }
            Event::Completed {
                at,
                end,
                result,
                document_no,
                by,
            } => {
                self.status = Status::Completed;
                self.finished_at = Some(*at);
                self.outcome = Some(Outcome {
                    end: end.clone(),
                    result: result.clone(),
                    document_no: document_no.clone(),
                    at: *at,
                    by: by.clone(),
                });
                self.close();
            }
        }
    }

    fn close(&mut self) {
        self.tasks.clear();
        self.joins.clear();
        self.joint.clear();
        self.waits.clear();
        self.subflows.clear();
        self.deferred = None;
        self.correction = None;
        self.suspended = None;
    }

    /// The durable timers this state needs, soonest first. Deadlines already
    /// fired and clocks held by a suspension have none.
    /// The running B procedure that stops a clock, with since when.
    pub fn held(&self) -> Option<(&Special, Time)> {
        let (id, since) = self.suspended?;
        self.specials
            .iter()
            .find(|s| s.id == id)
            .map(|s| (s, since))
    }

    /// Since when the statutory clock stands still: a procedure that stops it
    /// (行政许可法第四十五条), or the applicant's rectification.
    pub fn held_statutory(&self) -> Option<Time> {
        self.held()
            .filter(|(s, _)| s.stops_statutory)
            .map(|(_, t)| t)
            .or_else(|| self.rectifying_since(true))
    }

    /// Since when the promised clock (and the steps' and stages') stands still.
    pub fn held_promised(&self) -> Option<Time> {
        self.held()
            .filter(|(s, _)| s.stops_promised)
            .map(|(_, t)| t)
            .or_else(|| self.rectifying_since(false))
    }

    /// Since when a rectification that stops the statutory (or the promised)
    /// clock has been running.
    fn rectifying_since(&self, statutory: bool) -> Option<Time> {
        self.joint
            .values()
            .filter(|j| j.awaiting_resubmission)
            .filter(|j| {
                if statutory {
                    j.rectify_stops_statutory
                } else {
                    j.rectify_stops_promised
                }
            })
            .filter_map(|j| j.rectifying_since)
            .min()
    }

    pub fn timers(&self) -> Vec<Timer> {
        let mut out = Vec::new();
        if self.status.is_finished() {
            return out;
        }
        // The case clocks stand still during a B procedure and while the
        // applicant rectifies after a joint review.
        let rectifying: Vec<&String> = self
            .joint
            .iter()
            .filter(|(_, j)| j.awaiting_resubmission)
            .map(|(s, _)| s)
            .collect();
        let held = self
            .suspended
            .and_then(|(id, _)| self.specials.iter().find(|s| s.id == id));
        let stop_statutory = self.held_statutory().is_some();
        let stop_promised = self.held_promised().is_some();
        let fired = &self.fired;
        let mut deadlines: Vec<Timer> = Vec::new();
        let mut push = |key: String, due: Option<Time>| {
            if let Some(due) = due
                && !fired.contains(&fired_key(&key, due))
            {
                deadlines.push(Timer { key, due });
            }
        };
        if !stop_promised && let Some(d) = &self.promised {
            push("case:promised".into(), d.due);
        }
        // The statutory decision clock stops at the decision.
        if !stop_statutory
            && let Some(d) = self
                .statutory
                .as_ref()
                .filter(|_| self.decided_at.is_none())
        {
            push("case:statutory".into(), d.due);
        }
        {
            if let Some(d) = &self.issue {
                push("case:issue".into(), d.due);
            }
            // 收件 → 受理 or one correction notice within the window (art. 32).
            if self.accepted_at.is_none()
                && self.status == Status::Applied
                && let Some(w) = &self.receipt_window
            {
                push("case:receipt".into(), w.due);
            }
        }
        // The step and the stages around it pause with the promised clock.
        let held = held.filter(|s| s.stops_promised);
        let held_step = held.map(|s| s.step.clone());
        let held_blocks: Vec<String> = held.map(|s| s.blocks.clone()).unwrap_or_default();
        for t in self.tasks.values() {
            if held_step.as_deref() == Some(t.step.as_str()) {
                continue;
            }
            if let Some(d) = &t.deadline {
                push(format!("task:{}", t.id), d.due);
            }
        }
        // A running special procedure's declared length: its overrun is raised
        // at the instant it passes, whatever the day.
        for sp in self.specials.iter().filter(|s| s.ended_at.is_none()) {
            push(format!("special:{}", sp.id), sp.due);
        }
        for (step, w) in &self.waits {
            // A wait's own timer is not a deadline: it fires once and the step ends.
            if let Some(until) = w.until {
                out.push(Timer {
                    key: format!("wait:{step}"),
                    due: until,
                });
            }
            if let Some(d) = &w.deadline {
                push(format!("wait_limit:{step}"), d.due);
            }
        }
        let stages = self
            .joins
            .iter()
            .map(|(s, j)| (s, &j.deadline))
            .chain(self.subflows.iter().map(|(s, j)| (s, &j.deadline)))
            .chain(self.joint.iter().map(|(s, j)| (s, &j.deadline)));
        for (step, d) in stages {
            // The stage under rectification pauses with the promised clock.
            let rectifying_here = rectifying.contains(&step)
                && self
                    .joint
                    .get(step)
                    .is_some_and(|j| j.rectify_stops_promised);
            // A cross-item stage pauses with its item cases as it declares.
            let items_paused = self.subflows.get(step).is_some_and(|s| s.paused.is_some());
            if held_blocks.contains(step) || rectifying_here || items_paused {
                continue;
            }
            if let Some(d) = d {
                push(format!("stage:{step}"), d.due);
            }
        }
        for (step, j) in &self.joint {
            if j.awaiting_resubmission
                && let Some(d) = &j.resubmit_due
                && let Some(due) = d.due
            {
                out.push(Timer {
                    key: format!("resubmit:{step}"),
                    due,
                });
            }
        }
        if let Some(d) = &self.deferred
            && let Some(due) = d.due
        {
            out.push(Timer {
                key: "deferred".into(),
                due,
            });
        }
        out.extend(deadlines);
        out.sort_by(|a, b| a.due.cmp(&b.due).then(a.key.cmp(&b.key)));
        out
    }

    pub fn open_task_for_step(&self, step: &str) -> Option<&Task> {
        self.tasks.values().find(|t| t.step == step)
    }
}

pub fn fired_key(timer: &str, due: Time) -> String {
    format!("{timer}@{}", due.format("%Y-%m-%dT%H:%M:%S"))
}

// govflow studio — cases and work lists: a new case, a case with its tasks.
import { S, stateName, statusName, t } from './i18n.js';
import { fmtTime, h, pill, table, td, toast } from './dom.js';
import { api, has, isStaff } from './api.js';
import { route } from './shell.js';

// `20 workdays` / `1 workday` in the interface's language.
export function limitText(s) {
  const m = /^(\d+) (workday|day|hour)s?$/.exec(s || '');
  if (!m) return s || '';
  return S.lang === 'en' && m[1] === '1' ? `1 ${t(m[2] + 's').replace(/s$/, '')}` : `${m[1]} ${t(m[2] + 's')}`;
}

// A deadline counted into a year without an official arrangement says so, with why on hover and focus.
export function provisionalMark(deadline) {
  if (!deadline || !deadline.provisional) return null;
  return h('span', { class: 'pill provisional', title: t('provisionalHint'), 'aria-label': `${t('provisional')}: ${t('provisionalHint')}`, tabindex: 0 }, t('provisional'));
}
export function leftPill(deadline) {
  if (!deadline) return '';
  const n = deadline.working_days_left;
  if (deadline.beyond_calendar) return pill(t('beyondCalendar'), 'yellow');
  if (n === null || n === undefined) return fmtTime(deadline.due);
  const p = pill(limitText(`${n} workdays`).replace(/^1 working days$/, '1 working day'), n < 0 ? 'late' : n <= 1 ? 'yellow' : 'ok');
  const mark = provisionalMark(deadline);
  return mark ? h('span', {}, p, ' ', mark) : p;
}

export async function pageCases(m) {
  const [tasks, cases, flows] = await Promise.all([isStaff() ? api('GET', '/tasks?limit=100') : { items: [] }, api('GET', '/cases?limit=30'), api('GET', '/flows')]);
  const names = Object.fromEntries(flows.items.map((f) => [f.id, f.name]));
  const work = tasks.items.length === 0 ? h('p', { class: 'muted' }, t('noTasks')) : table([t('caseNo'), t('item'), t('task'), t('department'), t('due'), ''], tasks.items.map((x) => h('tr', {},
    td(t('caseNo'), h('a', { href: '#/cases/' + x.case_no }, x.case_no)), td(t('item'), names[x.flow_id] || x.flow_id), td(t('task'), x.name),
    td(t('department'), x.department + (x.role ? '.' + x.role : ''), x.claimed_by ? [' ', pill(x.claimed_by.login === S.me.login ? t('claimedByMe') : `${t('claimedBy')} ${x.claimed_by.name}`, x.claimed_by.login === S.me.login ? 'ok' : 'yellow')] : null), td(t('due'), x.due_date || '', ' ', leftPill(x)),
    td('', h('a', { class: 'btn', href: '#/cases/' + x.case_no }, t('open'))))), 'stack worklist');
  const recent = table([t('caseNo'), t('item'), t('status'), t('updated')], cases.items.map((c) => h('tr', {},
    td(t('caseNo'), h('a', { href: '#/cases/' + c.case_no }, c.case_no)), td(t('item'), names[c.flow_id] || c.flow_id),
    td(t('status'), pill(statusName(c.status), c.status === 'completed' ? 'ok' : '')), td(t('updated'), fmtTime(c.updated_at)))));
  m.replaceChildren(h('h1', {}, t('cases')),
    ...(isStaff() ? [h('section', { class: 'card', 'aria-labelledby': 'wl' }, h('h2', { id: 'wl' }, t('worklist'), ' ', pill(String(tasks.items.length))), work)] : []),
    ...(has('clerk') ? [await newCaseForm(flows)] : []),
    h('section', { class: 'card' }, h('h2', {}, t('allCases')), recent));
}

export async function newCaseForm(flows) {
  const sel = h('select', { id: 'new-flow' }, flows.items.filter((f) => !['supervision_order', 'complaint'].includes(f.id)).map((f) => h('option', { value: f.id }, `${f.name} (${f.id})`)));
  const name = h('input', { id: 'new-name', required: true });
  const kind = h('select', { id: 'new-kind' }, h('option', { value: 'credit_code' }, t('creditCode')), h('option', { value: 'id_card' }, t('idCard')));
  const num = h('input', { id: 'new-id', required: true, size: 20 });
  const mats = h('div', { class: 'row', id: 'new-materials' });
  const loadMats = async () => {
    const ir = await api('GET', `/flows/${sel.value}/ir`);
    mats.replaceChildren(...ir.materials.map((x) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: x.id, checked: true }), x.name)));
  };
  sel.addEventListener('change', loadMats);
  await loadMats();
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const materials = [...mats.querySelectorAll('input:checked')].map((c) => ({ id: c.value }));
        const r = await api('POST', '/cases', { flow: sel.value, applicant: { name: name.value, id_kind: kind.value, id_number: num.value.trim() }, materials });
        toast(r.case_no);
        location.hash = '#/cases/' + r.case_no;
      } catch (e) { toast(e.message, true); }
    },
  }, h('div', { class: 'row' }, h('label', {}, t('flow'), sel), h('label', {}, t('applicant'), name), h('label', {}, t('idKind'), kind), h('label', {}, t('idNumber'), num)),
  h('fieldset', {}, h('legend', {}, t('materials')), mats), h('button', { type: 'submit', id: 'new-submit' }, t('start')));
  return h('section', { class: 'card' }, h('h2', {}, t('newCase')), form);
}

export const deptName = (ir, id) => ir.departments.find((d) => d.id === id)?.name || id;

export function stepIndex(ir) {
  const out = {};
  const walk = (steps) => steps.forEach((s) => {
    out[s.id] = s;
    const k = s.kind;
    if (k.parallel) k.parallel.lanes.forEach((l) => walk(l.steps));
    if (k.joint_review) walk(k.joint_review.reviews);
  });
  walk(ir.steps);
  return out;
}

export const EVENT_NAMES = {
  zh: { case_started: '登记', materials_received: '收到材料', task_opened: '环节开始', task_completed: '环节办结', accepted: '受理', visit_recorded: '现场跑动', parallel_started: '并联开始', lane_finished: '并联分支完成', joined: '并联汇合', completed: '办结', correction_requested: '一次性告知补正', special_started: '特别程序开始', special_ended: '特别程序结束', deadlines_moved: '时限顺延', deadlines_recomputed: '按新日历重算时限', received: '收件', deemed_accepted: '视为受理（逾期未告知补正）', decided: '作出决定（法定时限停止）', deadline_passed: '时限届满', terminated: '中止', withdrawn: '撤回', decision_made: '分支判断', data_set: '数据' },
  en: {},
};

export async function pageCase(m, no) {
  const c = await api('GET', '/cases/' + encodeURIComponent(no));
  const [events, ir, svg, cards] = await Promise.all([
    api('GET', `/cases/${encodeURIComponent(no)}/events`), api('GET', `/flows/${c.flow}/ir`),
    fetch(`/api/flows/${c.flow}/graph.svg?version=${c.flow_version}`, { headers: S.token ? { Authorization: 'Bearer ' + S.token } : {} }).then((r) => r.text()),
    api('GET', `/alarms?case=${encodeURIComponent(no)}&limit=100`)]);
  const steps = stepIndex(ir);
  const done = new Set(events.items.filter((e) => e.type === 'task_completed').map((e) => e.step));
  const active = new Set(c.tasks.map((x) => x.step));
  const diagram = h('div', { class: 'diagram', id: 'case-diagram', role: 'img', 'aria-label': t('diagram') });
  diagram.innerHTML = svg;
  diagram.querySelectorAll('g.node').forEach((g) => {
    const id = g.getAttribute('data-id');
    if (active.has(id)) g.classList.add('active'); else if (done.has(id)) g.classList.add('done');
  });
  const clocks = ['statutory', 'promised', 'issue', 'receipt'].map((k) => c.deadlines[k] ? h('div', { class: 'fact' }, t(k), k === 'statutory' && c.decided_at ? h('b', {}, pill(t('decidedAt'), 'ok')) : h('b', {}, leftPill(c.deadlines[k])), h('span', { class: 'small muted' }, `${limitText(c.deadlines[k].limit)} · ${t('due')} ${c.deadlines[k].due_date || ''}${c.deadlines[k].suspended ? ' · ' + t('suspended') : ''}`)) : null);
  const facts = h('div', { class: 'facts' }, clocks,
    h('div', { class: 'fact' }, t('visits'), h('b', {}, c.visits)), h('div', { class: 'fact' }, t('returns'), h('b', {}, c.returns)),
    h('div', { class: 'fact' }, t('corrections'), h('b', {}, c.corrections)),
    c.suspended ? h('div', { class: 'fact' }, h('b', {}, pill(t('suspended'), 'yellow'))) : null);
  // The caller's own tasks first; others' are shown without actions.
  const mine = (task) => !S.me.roles.some((g) => g.department) || S.me.roles.some((g) => g.role === 'admin' || (g.department === task.department && (!g.position || g.position === task.role)));
  const tasks = [...c.tasks.filter(mine), ...c.tasks.filter((x) => !mine(x))].map((task) => taskBox(c, task, steps[task.step], ir, mine(task)));
  const evNames = EVENT_NAMES[S.lang];
  const timeline = h('ol', { class: 'timeline' }, events.items.map((e) => h('li', {}, h('time', {}, fmtTime(e.at)), h('strong', {}, evNames[e.type] || e.type.replace(/_/g, ' ')), ' ',
    e.task?.name || (e.step && steps[e.step]?.name) || '', e.by ? ` · ${e.by.name || ''} ${e.by.department || ''}` : '', e.action && e.action !== 'pass' ? ` · ${t(e.action)}` : '', e.opinion ? ` · “${e.opinion}”` : '',
    e.type === 'deadlines_recomputed' ? ` ${e.calendar}: ${e.changes.map((x) => `${x.key} ${x.was || '—'}${x.was_provisional ? ` (${t('provisional')})` : ''} → ${x.deadline.due_date || '—'}${x.deadline.provisional ? ` (${t('provisional')})` : ''}`).join('; ')}` : '')));
  const mats = table([t('materials'), t('status')], ir.materials.map((x) => {
    const st = c.materials[x.id];
    return h('tr', {}, td(t('materials'), x.name), td(t('status'), st ? pill(t('received'), 'ok') : pill(t('missing'), 'late')));
  }));
  const cardList = cards.items.length === 0 ? h('p', { class: 'muted' }, t('noCards')) : table([t('rule'), t('level'), t('state'), t('issued')], cards.items.map((a) => h('tr', {},
    td(t('rule'), a.name), td(t('level'), pill(t(a.level), a.level)), td(t('state'), stateName(a.state)), td(t('issued'), fmtTime(a.issued_at)))));
  const endSpecial = (s) => {
    const result = h('input', { 'aria-label': t('result'), value: t('finishedSpecial'), size: 10 });
    const approved = s.class === 'a' ? h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: true }), t('approve')) : null;
    const owner = c.tasks.find((x) => x.step === s.step) || { department: s.requested_by.department, role: s.requested_by.role };
    return h('div', { class: 'row' }, result, approved, h('button', {
      type: 'button', class: 'secondary', 'data-action': 'end-special',
      onclick: async () => {
        try {
          await api('POST', `/cases/${encodeURIComponent(c.case_no)}/special/end`, { step: s.step, kind: s.kind, result: result.value, approved: approved ? approved.querySelector('input').checked : undefined, by: { name: S.me.name, department: owner.department, role: owner.role || undefined } });
          route();
        } catch (e) { toast(e.message, true); }
      },
    }, t('endSpecial')));
  };
  const specials = table([t('specials'), t('reason'), t('status')], (c.specials || []).map((s) => h('tr', { 'data-kind': s.kind },
    td(t('specials'), `${s.kind} · ${steps[s.step]?.name || s.step}`, s.days ? ` · ${s.days} ${t('workdays')}` : ''), td(t('reason'), s.reason),
    td(t('status'), s.ended_at ? `${fmtTime(s.ended_at)} ${s.result || ''}` : [pill(s.class === 'a' ? t('extension') : t('suspended'), 'yellow'), ' ', endSpecial(s)]))));
  m.replaceChildren(
    h('p', {}, h('a', { href: '#/cases' }, '← ' + t('cases'))),
    h('h1', {}, c.item_name, ' ', pill(statusName(c.status), c.status === 'completed' ? 'ok' : ''), ' ', h('span', { class: 'small muted', id: 'case-no' }, c.case_no)),
    h('p', { class: 'muted' }, `${t('applicant')}: ${c.applicant?.name || ''} · ${fmtTime(c.submitted_at)}${c.outcome ? ' · ' + c.outcome : ''}`),
    personal(c),
    facts,
    h('div', { class: 'grid2' },
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'ot' }, h('h2', { id: 'ot' }, t('openTasks')), tasks.length ? tasks : h('p', { class: 'muted' }, c.status === 'completed' ? t('done') : t('none'))),
        h('section', { class: 'card' }, h('h2', {}, t('cards')), cardList),
        h('section', { class: 'card' }, h('h2', {}, t('materials')), mats),
        h('section', { class: 'card' }, h('h2', {}, t('specials')), specials)),
      h('div', {},
        h('section', { class: 'card' }, h('h2', {}, t('diagram')), diagram),
        h('section', { class: 'card' }, h('h2', {}, t('timeline')), timeline))));
}

// The applicant's personal data arrives masked; those entitled see it in full
// after giving a reason (POST /cases/{no}/reveal, one audit row each time).
function personal(c) {
  const p = c.applicant || {};
  const line = (who) => [who.id_number && `${t('idNumber')} ${who.id_number}`, who.phone && `${t('phone')} ${who.phone}`, who.address && `${t('address')} ${who.address}`].filter(Boolean).join(' · ');
  const shown = h('span', { id: 'personal' }, line(p));
  const reason = h('input', { id: 'reveal-reason', 'aria-label': t('revealReason'), placeholder: t('revealReason'), size: 24 });
  const box = h('p', { class: 'small', title: t('revealHint') }, shown, ' ', reason, ' ', h('button', {
    class: 'secondary', 'data-action': 'reveal',
    onclick: async () => {
      try {
        const r = await api('POST', `/cases/${encodeURIComponent(c.case_no)}/reveal`, { reason: reason.value.trim() });
        shown.textContent = line(r.applicant || {});
        reason.remove();
      } catch (e) { toast(e.message, true); }
    },
  }, t('reveal')));
  return box;
}

export function taskBox(c, task, step, ir, mine) {
  const actions = step?.kind?.task?.actions || [];
  const opinion = h('textarea', { rows: 2, 'aria-label': `${task.name} ${t('opinion')}`, class: 'opinion' });
  const err = h('p', { class: 'status-bad', role: 'alert' });
  // 最多跑一次: the applicant came (again) to this step — a trip of the office's doing, counted against the mode's bound.
  const present = h('input', { type: 'checkbox', class: 'on-site' });
  const presentBox = h('label', { class: 'check small', title: t('onSiteHint') }, present, t('onSite'));
  const act = async (action, missing, fixes) => {
    err.textContent = '';
    const body = { by: { name: S.me.name, department: task.department, role: task.role || undefined }, opinion: opinion.value || undefined };
    if (action !== 'pass') body.action = action;
    if (missing) body.missing = missing;
    if (fixes && Object.keys(fixes).length) body.fixes = fixes;
    if (present.checked) body.on_site = true;
    try {
      await api('POST', `/cases/${encodeURIComponent(c.case_no)}/tasks/${encodeURIComponent(task.step)}/complete`, body);
      toast(`${task.name}: ${t(action)}`);
      route();
    } catch (e) {
      err.textContent = `${e.status === 403 ? t('forbidden') + ' — ' : ''}${e.message}`;
    }
  };
  // 一次性告知: the clerk ticks every missing material (those not received are ticked already).
  const correction = h('fieldset', { class: 'correction', hidden: true }, h('legend', {}, t('correct')),
    // One notice lists every missing material; a received one that is not in legal form says what to fix.
    ir.materials.map((x) => h('div', { class: 'row fix-row' }, h('label', { class: 'check' }, h('input', { type: 'checkbox', value: x.id, checked: !c.materials[x.id] }), x.name),
      c.materials[x.id] ? h('input', { class: 'fix', 'data-material': x.id, placeholder: t('fixHint'), 'aria-label': `${x.name}: ${t('fixHint')}` }) : h('span', { class: 'muted small' }, t('toSupply')))),
    h('div', { class: 'actions' }, h('button', {
      type: 'button', 'data-action': 'send-correction',
      onclick: () => {
        const missing = [...correction.querySelectorAll('input[type=checkbox]:checked')].map((i) => i.value);
        const fixes = Object.fromEntries([...correction.querySelectorAll('input.fix')].filter((i) => missing.includes(i.dataset.material) && i.value.trim()).map((i) => [i.dataset.material, i.value.trim()]));
        if (missing.length) act('correct', missing, fixes);
      },
    }, t('sendCorrection'))));
  // 特别程序 allowed at this step: start one (the clock stops, or an extension is asked for).
  const kinds = step?.special || [];
  const running = (c.specials || []).some((x) => x.step === task.step && !x.ended_at);
  const specialStart = !kinds.length || running ? null : (() => {
    const kind = h('select', { 'aria-label': t('specials') }, kinds.map((k) => h('option', { value: k }, k)));
    const reason = h('input', { 'aria-label': t('reason'), placeholder: t('reason'), class: 'special-reason' });
    const days = h('input', { type: 'number', min: 1, max: 365, value: 5, 'aria-label': t('days'), style: 'width:5rem' });
    const notice = h('input', { 'aria-label': t('specialNotice'), placeholder: t('specialNoticeHint'), class: 'special-notice' });
    return h('details', { class: 'special' }, h('summary', {}, t('startSpecial')),
      h('div', { class: 'row' }, h('label', {}, t('specials'), kind), h('label', {}, t('reason'), reason), h('label', {}, t('days'), days), h('label', {}, t('specialNotice'), notice),
        h('button', {
          type: 'button', class: 'secondary', 'data-action': 'start-special',
          onclick: async () => {
            err.textContent = '';
            try {
              await api('POST', `/cases/${encodeURIComponent(c.case_no)}/special/start`, { step: task.step, kind: kind.value, reason: reason.value || kind.value, days: Number(days.value), notice: notice.value.trim() || undefined, by: { name: S.me.name, department: task.department, role: task.role || undefined } });
              route();
            } catch (e) { err.textContent = e.message; }
          },
        }, t('start'))));
  })();
  const claimed = task.claimed_by;
  const claimAct = async (what) => {
    err.textContent = '';
    try {
      await api('POST', `/cases/${encodeURIComponent(c.case_no)}/tasks/${encodeURIComponent(task.step)}/${what}`, {});
      route();
    } catch (e) { err.textContent = e.message; }
  };
  const claimBox = !mine ? null
    : !claimed ? h('button', { type: 'button', class: 'ghost', 'data-action': 'claim', onclick: () => claimAct('claim') }, t('claim'))
    : claimed.login === S.me.login ? [pill(t('claimedByMe'), 'ok'), ' ', h('button', { type: 'button', class: 'ghost', 'data-action': 'release', onclick: () => claimAct('release') }, t('release'))]
    : pill(`${t('claimedBy')} ${claimed.name}`, 'yellow');
  return h('div', { class: 'task', 'data-step': task.step },
    h('div', { class: 'row' }, claimBox, h('strong', {}, task.name), ' ', h('span', { class: 'muted small' }, `${deptName(ir, task.department)}${task.role ? '.' + task.role : ''}`), ' ', leftPill(task.deadline), task.risk_point ? pill(t('riskPoint'), 'red') : null),
    mine ? [opinion,
      h('div', { class: 'actions' }, h('button', { type: 'button', 'data-action': 'pass', onclick: () => act('pass') }, t('pass')),
        actions.map((a) => h('button', {
          type: 'button', class: 'secondary', 'data-action': a.kind,
          onclick: () => {
            if (a.kind === 'correct') { correction.hidden = !correction.hidden; return; }
            if (confirm(`${t(a.kind)}: ${t('confirmAction')}`)) act(a.kind);
          },
        }, t(a.kind))), presentBox),
      correction, specialStart]
      : h('p', { class: 'small muted' }, t('othersTask')),
    err);
}

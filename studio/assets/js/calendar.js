// govflow studio — the working-day calendar: coverage, import, preview, deploy.
import { S, TEXT, t } from './i18n.js';
import { fmtTime, h, pill, table, td, toast } from './dom.js';
import { api, has } from './api.js';
import { route } from './shell.js';

// One year as twelve month grids. `mark(iso, weekdayIndex)` gives a cell's class and title.
export function yearGrid(year, mark) {
  return h('div', { class: 'months' }, Array.from({ length: 12 }, (_, mo) => {
    const first = new Date(Date.UTC(year, mo, 1));
    const lead = (first.getUTCDay() + 6) % 7;
    const days = new Date(Date.UTC(year, mo + 1, 0)).getUTCDate();
    const cells = Array(lead).fill(null).concat(Array.from({ length: days }, (_, i) => i + 1));
    const weeks = [];
    for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
    return h('div', { class: 'card month' }, h('h3', {}, `${year}-${String(mo + 1).padStart(2, '0')}`),
      h('table', {}, h('thead', {}, h('tr', {}, TEXT[S.lang].weekdays.map((w) => h('th', {}, w)))),
        h('tbody', {}, weeks.map((w) => h('tr', {}, w.map((d, i) => {
          if (!d) return h('td');
          const iso = `${year}-${String(mo + 1).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
          const [cls, title] = mark(iso, i);
          return h('td', { class: cls, title, 'data-date': iso }, d);
        }))))));
  }));
}

export async function pageCalendar(m) {
  const cal = await api('GET', '/calendar');
  S.calCheck = { at: Date.now(), cal };
  const marks = new Map(cal.days.map((d) => [d.date, d]));
  const prov = new Map((cal.provisional_days || []).map((d) => [d.date, d]));
  const covered = Number(cal.covered_until.slice(0, 4));
  const y0 = Number(cal.first.slice(0, 4));
  const y1 = Math.min(Number(cal.last.slice(0, 4)), covered + 2);
  const thisYear = new Date().getFullYear();
  let year = Math.min(Math.max(thisYear, y0), y1);
  const sel = h('select', { id: 'cal-year', 'aria-label': t('year') }, Array.from({ length: y1 - y0 + 1 }, (_, i) => h('option', { value: y0 + i, selected: y0 + i === year }, `${y0 + i}${y0 + i > covered ? ` (${t('provisional')})` : ''}`)));
  const gridBox = h('div');
  const listBox = h('div');
  const render = () => {
    year = Number(sel.value);
    const provisionalYear = year > covered;
    gridBox.replaceChildren(
      provisionalYear ? h('p', { class: 'card provisional-note', role: 'note' }, pill(t('provisional'), 'provisional'), ' ', cal.provisional_rule[S.lang] || cal.provisional_rule.zh) : '',
      yearGrid(year, (iso, i) => {
        const mk = marks.get(iso);
        if (mk) return [mk.kind, `${mk.name} (${t(mk.kind)})`];
        const p = prov.get(iso);
        if (p) return ['off provisional', `${p.name} (${t('off')}, ${t('provisional')})`];
        return [i >= 5 ? 'we' : null, null];
      }));
    const rows = provisionalYear ? [...prov.values()] : cal.days;
    listBox.replaceChildren(table([t('date'), t('kind'), t('holidays')], rows.filter((d) => d.date.startsWith(String(year))).map((d) => h('tr', {}, td(t('date'), d.date),
      td(t('kind'), pill(t(d.kind), d.kind === 'off' ? 'late' : 'notice'), d.provisional ? [' ', pill(t('provisional'), 'provisional')] : null), td(t('holidays'), d.name)))));
  };
  sel.addEventListener('change', render);
  render();
  const warn = cal.warning ? 'status-bad' : '';
  const years = table([t('regionShort'), t('year'), t('versionCol'), t('workingDays'), t('deployedAt'), t('deployedBy')],
    (cal.years || []).map((y) => h('tr', {}, td(t('regionShort'), y.region), td(t('year'), y.year), td(t('versionCol'), 'v' + y.version), td(t('workingDays'), y.working_days), td(t('deployedAt'), fmtTime(y.deployed_at)), td(t('deployedBy'), y.deployed_by))));
  m.replaceChildren(h('h1', {}, t('calendar')),
    h('p', { id: 'cal-coverage', class: warn }, `${t('coveredUntil')} ${cal.covered_until} · ${cal.days_left} ${t('daysLeft')} · ${t('regions')}: ${cal.regions.length ? cal.regions.join(', ') : t('none')}`),
    h('div', { class: 'row' }, h('label', {}, t('year'), sel), h('span', {}, pill(t('off'), 'late'), ' ', pill(t('work'), 'notice'), ' ', pill(t('provisional'), 'provisional'))),
    gridBox, h('section', { class: 'card' }, h('h2', {}, t('holidays')), listBox),
    h('section', { class: 'card' }, h('h2', {}, t('officialYears')), years),
    has('admin') ? importPanel() : '');
}

// Upload → preview (the year's grid with every change marked, or every problem) → deploy.
export function importPanel() {
  const file = h('input', { type: 'file', id: 'cal-file', accept: '.json,.txt,text/plain,application/json' });
  const text = h('textarea', { id: 'cal-text', rows: 8, spellcheck: 'false', placeholder: 'year 2027\n2027-01-01 off 元旦\n2027-02-07 work 春节调休' });
  const region = h('input', { id: 'cal-region', value: 'CN', size: 8 });
  const out = h('div', { id: 'cal-preview', 'aria-live': 'polite' });
  let fileName = null;
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    fileName = f.name;
    text.value = await f.text();
  });
  const body = () => ({ text: text.value, region: region.value.trim() || 'CN', file: fileName || undefined });
  const showProblems = (e) => {
    const ps = (e.details && e.details.problems) || [];
    out.replaceChildren(h('div', { class: 'card', role: 'alert' }, h('p', { class: 'status-bad' }, t('problemsFound')),
      h('ul', { id: 'cal-problems' }, ps.map((p) => h('li', {}, h('code', {}, `${p.line}:${p.column}`), ' ', h('code', {}, p.code), ' ', S.lang === 'zh' ? p.message_zh : p.message, h('div', { class: 'muted small' }, S.lang === 'zh' ? p.hint_zh : p.hint))))));
  };
  const preview = async () => {
    let v;
    try { v = await api('POST', '/calendar/preview', body()); } catch (e) { if (e.status === 422) showProblems(e); else toast(e.message, true); return; }
    const changed = new Map(v.changes.map((c) => [c.date, c]));
    const listed = new Map(v.days.map((d) => [d.date, d]));
    out.replaceChildren(h('div', { class: 'card' },
      h('p', { id: 'cal-summary' }, `${v.region} ${v.year} · ${t('workingDays')} ${v.working_days} · ${v.changes.length} ${t('changesCount')} · ${t('replaces')} ${t('replaces' + v.replaces)}`),
      yearGrid(v.year, (iso, i) => {
        const d = listed.get(iso); const c = changed.get(iso);
        const cls = [d ? d.kind : i >= 5 ? 'we' : null, c ? 'changed' : null].filter(Boolean).join(' ') || null;
        const title = [d ? `${d.name} (${t(d.kind)})` : null, c ? `${t('changed')}: ${c.was_working ? t('wasWork') : t('wasOff')}${c.was ? ` · ${c.was}` : ''}` : null].filter(Boolean).join(' — ') || null;
        return [cls, title];
      }),
      table([t('date'), t('kind'), t('holidays')], v.changes.map((c) => h('tr', { class: 'change' }, td(t('date'), c.date),
        td(t('kind'), `${c.was_working ? t('work') : t('off')} → ${c.working ? t('work') : t('off')}`), td(t('holidays'), c.now || c.was)))),
      h('div', { class: 'row' }, h('button', {
        type: 'button', id: 'cal-deploy',
        onclick: async () => {
          try {
            const r = await api('POST', '/calendar/years', body());
            toast(t('calDeployed')(r.year, r.version));
            S.calCheck.at = 0;
            route();
          } catch (e) { if (e.status === 422) showProblems(e); else toast(e.message, true); }
        },
      }, t('deployYear')))));
  };
  return h('section', { class: 'card', id: 'cal-import' }, h('h2', {}, t('importYear')), h('p', { class: 'muted' }, t('importHelp')),
    h('div', { class: 'row' }, h('label', {}, t('file'), file), h('label', {}, t('region'), region)),
    h('label', { class: 'block' }, t('text'), text),
    h('div', { class: 'row' }, h('button', { type: 'button', id: 'cal-preview-btn', class: 'secondary', onclick: preview }, t('previewBtn'))), out);
}

// govflow studio — the supervision board: cards, charts, orders.
import { S, stateName, statusName, t } from './i18n.js';
import { fmtTime, h, pill, table, td, toast } from './dom.js';
import { api, has } from './api.js';
import { route } from './shell.js';
import { deptName } from './cases.js';

export const CLASSES = ['timeliness', 'process', 'content', 'fee', 'integrity'];
export const LEVELS = ['notice', 'yellow', 'red'];

export function barChart(title, rows, value, fmt) {
  const W = 360; const bh = 22; const H = rows.length * (bh + 6) + 30;
  const max = Math.max(1e-9, ...rows.map((r) => value(r) || 0));
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`); svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', title);
  const add = (tag, a, text) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(a)) e.setAttribute(k, v); if (text !== undefined) e.textContent = text; svg.append(e); };
  rows.forEach((r, i) => {
    const y = 10 + i * (bh + 6); const v = value(r);
    add('text', { x: 0, y: y + 15, 'font-size': 12, fill: '#1a1f2b' }, r.name.slice(0, 9));
    add('rect', { x: 120, y, width: Math.max(1, ((v || 0) / max) * (W - 190)), height: bh, rx: 4, fill: '#2f5597' });
    add('text', { x: 126 + Math.max(1, ((v || 0) / max) * (W - 190)), y: y + 15, 'font-size': 12, fill: '#5b6475' }, v === null || v === undefined ? '—' : fmt(v));
  });
  return h('div', { class: 'card chart' }, h('h3', {}, title), svg);
}

export async function pageBoard(m) {
  const [open, orders, stats] = await Promise.all([api('GET', '/alarms?state=open&limit=500'), api('GET', '/orders'), api('GET', '/stats?by=department')]);
  const count = (f) => open.items.filter(f).length;
  const matrix = table(['', ...LEVELS.map((l) => t(l))], CLASSES.map((k) => h('tr', {}, h('th', { scope: 'row' }, t(k)),
    LEVELS.map((l) => { const n = count((a) => a.class === k && a.level === l); return h('td', { class: n ? 'n' : 'n zero', 'data-class': k, 'data-level': l }, n ? pill(String(n), l) : '0'); }))), 'matrix');
  const depts = [...new Set(open.items.map((a) => a.department))].sort();
  const deptName = Object.fromEntries(stats.rows.map((r) => [r.key, r.name]));
  const byDept = table([t('department'), ...LEVELS.map((l) => t(l))], depts.map((d) => h('tr', {}, td(t('department'), deptName[d] || d), LEVELS.map((l) => td(t(l), String(count((a) => a.department === d && a.level === l)))))));
  const list = table([t('rule'), t('caseNo'), t('department'), t('level'), t('state'), t('issued'), ''], open.items.map((a) => h('tr', { 'data-rule': a.rule },
    td(t('rule'), a.name, h('div', { class: 'small muted' }, t(a.class))), td(t('caseNo'), h('a', { href: '#/cases/' + a.case_no }, a.case_no)), td(t('department'), deptName[a.department] || a.department),
    td(t('level'), pill(t(a.level), a.level)), td(t('state'), stateName(a.state)), td(t('issued'), fmtTime(a.issued_at)),
    td('', has('supervisor') && a.state !== 'ordered' ? h('button', {
      type: 'button', class: 'secondary', onclick: async () => {
        try { await api('POST', `/alarms/${a.id}/order`, { by: { name: S.me.name, role: 'supervisor' } }); toast(t('issueOrder') + ' ✓'); route(); } catch (e) { toast(e.message, true); }
      },
    }, t('issueOrder')) : null))));
  // Orders are cases of the built-in order flow: the addressed department replies on the order's case page.
  const orderList = table([t('caseNo'), t('department'), t('reason'), t('openTasks'), t('status')], orders.items.map((o) => h('tr', {},
    td(t('caseNo'), h('a', { href: '#/cases/' + o.case_no }, o.case_no), o.origin?.case ? h('div', { class: 'small muted' }, '← ', h('a', { href: '#/cases/' + o.origin.case }, o.origin.case)) : null),
    td(t('department'), deptName[o.addressee] || o.addressee || ''), td(t('reason'), o.reason || ''),
    td(t('openTasks'), o.open_steps.map((x) => `${x.step === 'reply' ? t('replyOrder') : x.step === 'review' ? t('reviewReply') : x.step} ${x.due_date ? '→ ' + x.due_date : ''}`).join('; ') || '—'),
    td(t('status'), o.result || statusName(o.status)))));
  const rows = stats.rows.filter((r) => r.cases > 0);
  m.replaceChildren(h('h1', {}, t('board')),
    h('div', { class: 'grid2' }, h('section', { class: 'card', id: 'matrix' }, h('h2', {}, t('byClass')), matrix), h('section', { class: 'card' }, h('h2', {}, t('byDept')), byDept)),
    h('div', { class: 'bars' },
      barChart(t('chartCases'), rows, (r) => r.cases, (v) => String(v)),
      barChart(t('chartAvg'), rows, (r) => r.avg_working_days, (v) => v.toFixed(1)),
      barChart(t('chartOverdue'), rows, (r) => r.overdue_rate, (v) => (v * 100).toFixed(0) + '%'),
      barChart(t('chartSat'), rows, (r) => r.satisfaction, (v) => v.toFixed(1))),
    h('section', { class: 'card', id: 'cards' }, h('h2', {}, t('cards'), ' ', pill(String(open.items.length))), list),
    h('section', { class: 'card', id: 'orders' }, h('h2', {}, t('orders')), orderList));
}

// govflow studio — the frame: navigation, the calendar banner, the hash router.
import { S, t } from './i18n.js';
import { $, h, main } from './dom.js';
import { api, has, home } from './api.js';
import { pageLogin } from './login.js';
import { pageFlows } from './flows.js';
import { pageRules } from './rules.js';
import { pageCase, pageCases } from './cases.js';
import { pageBoard } from './board.js';
import { pageCalendar } from './calendar.js';
import { pageUsers } from './users.js';

export const NAV = [['cases', '#/cases'], ['flows', '#/flows'], ['rules', '#/rules'], ['board', '#/board'], ['calendar', '#/calendar'], ['users', '#/users']];
export function shell() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh-CN' : 'en';
  $('#lang').textContent = S.lang === 'zh' ? 'EN' : '中文';
  const nav = $('#nav');
  nav.replaceChildren();
  if (S.me) {
    for (const [k, href] of NAV) {
      if (k === 'users' && !has('admin')) continue;
      const cur = location.hash.startsWith(href);
      nav.append(h('a', { href, 'aria-current': cur ? 'page' : null }, t(k)));
    }
  }
  $('#user').textContent = S.me ? `${S.me.name} (${S.me.login})` : '';
  const lo = $('#logout');
  lo.hidden = !S.me;
  lo.textContent = t('logout');
}
$('#lang').addEventListener('click', () => {
  S.lang = S.lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('govflow.lang', S.lang);
  route();
});
$('#logout').addEventListener('click', async () => {
  try { if (!S.token) await api('POST', '/logout', {}); } catch (e) { /* the session may be gone already */ }
  S.token = null; S.csrf = null; S.me = null;
  sessionStorage.clear();
  location.hash = '#/login';
});

export async function whoami() {
  try {
    S.me = await api('GET', '/me');
    if (S.me.csrf) { S.csrf = S.me.csrf; sessionStorage.setItem('govflow.csrf', S.csrf); }
  } catch (e) { S.me = null; }
}

// Administrators and supervisors see a banner when the official calendar ends within 60 days.
S.calCheck = { at: 0, cal: null };
export async function calendarBanner() {
  const b = $('#banner');
  if (!S.me || !(has('admin') || has('supervisor'))) { b.hidden = true; return; }
  try {
    if (Date.now() - S.calCheck.at > 60000) S.calCheck = { at: Date.now(), cal: await api('GET', '/calendar') };
  } catch (e) { return; }
  const c = S.calCheck.cal;
  if (!c || !c.warning) { b.hidden = true; return; }
  b.replaceChildren(h('span', {}, t('calBanner')(c.covered_until, c.days_left)), ' ', h('a', { href: '#/calendar' }, t('calBannerLink')));
  b.hidden = false;
}

S.leaving = null; // a page's clean-up (timers)
export let lastHash = location.hash;
export async function route() {
  // An editor with undeployed changes asks before its page is left.
  if (S.dirty && S.dirty() && location.hash !== lastHash && !confirm(t('discard'))) {
    history.replaceState(null, '', lastHash || '#/');
    return;
  }
  S.dirty = null;
  lastHash = location.hash;
  if (S.leaving) { S.leaving(); S.leaving = null; }
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  if (!S.me && parts[0] !== 'login') await whoami();
  if (!S.me && parts[0] !== 'login') { location.hash = '#/login'; return; }
  shell();
  calendarBanner();
  // Each visit renders into its own container: a slower earlier visit that
  // finishes late writes into a detached one and cannot overwrite this page.
  const m = h('div');
  main().replaceChildren(m);
  m.append(h('p', { class: 'muted' }, t('loading')));
  try {
    switch (parts[0]) {
      case 'login': return pageLogin(m);
      case 'flows': return await pageFlows(m, parts[1]);
      case 'rules': return await pageRules(m, parts[1]);
      case 'cases': return parts[1] ? await pageCase(m, parts[1]) : await pageCases(m);
      case 'board': return await pageBoard(m);
      case 'calendar': return await pageCalendar(m);
      case 'users': return await pageUsers(m);
      default: location.hash = home();
    }
  } catch (e) {
    if (e.status !== 401) m.replaceChildren(h('div', { class: 'card', role: 'alert' }, `${e.status || ''} ${e.code || ''}: ${e.message}`));
  }
}
window.addEventListener('hashchange', route);
window.addEventListener('beforeunload', (ev) => { if (S.dirty && S.dirty()) ev.preventDefault(); });

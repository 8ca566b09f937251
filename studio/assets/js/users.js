// govflow studio — users, tokens and the audit log.
import { roleName, t } from './i18n.js';
import { fmtTime, h, table, td, toast } from './dom.js';
import { api } from './api.js';
import { route } from './shell.js';

export async function pageUsers(m) {
  const [users, audit] = await Promise.all([api('GET', '/users'), api('GET', '/audit')]);
  const f = { login: h('input', { id: 'u-login' }), name: h('input', { id: 'u-name' }), password: h('input', { id: 'u-password', type: 'password', autocomplete: 'new-password', minlength: 10, placeholder: t('pwHint') }),
    role: h('select', { id: 'u-role' }, ['analyst', 'deployer', 'clerk', 'reviewer', 'supervisor', 'admin'].map((r) => h('option', { value: r }, `${roleName(r)} (${r})`))),
    department: h('input', { id: 'u-dept', size: 12, placeholder: t('deptHint') }), position: h('input', { id: 'u-pos', size: 12, placeholder: t('posHint') }) };
  // A user may hold several roles: each 添加角色 adds the role as filled in; the role still in the
  // fields when the form is sent is added too.
  const grants = [];
  const grantList = h('ul', { class: 'small', id: 'u-grants', 'aria-live': 'polite' });
  const current = () => {
    const g = { role: f.role.value };
    if (f.department.value.trim()) g.department = f.department.value.trim();
    if (f.position.value.trim()) g.position = f.position.value.trim();
    return g;
  };
  const showGrant = (g) => roleName(g.role) + (g.department ? ` · ${g.department}${g.position ? '.' + g.position : ''}` : '');
  const addGrant = () => {
    grants.push(current());
    grantList.replaceChildren(...grants.map((g) => h('li', {}, showGrant(g))));
    f.department.value = ''; f.position.value = '';
  };
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const roles = [...grants];
        const last = current();
        if (!roles.some((g) => JSON.stringify(g) === JSON.stringify(last))) roles.push(last);
        await api('POST', '/users', { login: f.login.value, name: f.name.value, password: f.password.value || undefined, roles });
        toast(t('saved')); route();
      } catch (e) { toast(e.message, true); }
    },
  }, h('div', { class: 'row' }, h('label', {}, t('loginName'), f.login), h('label', {}, t('name'), f.name), h('label', {}, t('password'), f.password),
    h('label', {}, t('role'), f.role), h('label', {}, t('department'), f.department), h('label', {}, t('position'), f.position),
    h('button', { type: 'button', class: 'secondary', id: 'u-add-role', onclick: addGrant }, t('addRole')), h('button', { type: 'submit' }, t('create'))), grantList);
  m.replaceChildren(h('h1', {}, t('users')),
    h('section', { class: 'card' }, table([t('loginName'), t('name'), t('role'), ''], users.items.map((u) => h('tr', {}, td(t('loginName'), u.login), td(t('name'), u.name),
      td(t('role'), u.roles.map((g) => roleName(g.role) + (g.department ? ` · ${g.department}${g.position ? '.' + g.position : ''}` : '')).join('; ')),
      td('', h('button', {
        type: 'button', class: 'ghost', 'data-action': 'token',
        onclick: async (ev) => {
          // An API token for a system acting as this user: shown once, only its hash is kept.
          try {
            const r = await api('POST', `/users/${encodeURIComponent(u.login)}/tokens`, { label: 'studio' });
            ev.target.replaceWith(h('code', { class: 'small token' }, r.token));
          } catch (e) { toast(e.message, true); }
        },
      }, t('newToken'))))))),
    h('section', { class: 'card' }, h('h2', {}, t('newUser')), form),
    h('section', { class: 'card' }, h('h2', {}, t('audit')), table([t('time'), t('actor'), t('action'), t('detail')], audit.items.slice(0, 50).map((a) => h('tr', {},
      h('td', { class: 'when', 'data-label': t('time') }, fmtTime(a.at)), td(t('actor'), a.actor), td(t('action'), a.action), h('td', { class: 'detail', 'data-label': t('detail') }, a.detail || ''))), 'stack audit')));
}

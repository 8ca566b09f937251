// govflow studio — the login page.
import { S, t } from './i18n.js';
import { $, h } from './dom.js';
import { api, home } from './api.js';
import { whoami } from './shell.js';

export function pageLogin(m) {
  $('#toast').replaceChildren();
  const err = h('p', { class: 'status-bad', role: 'alert' });
  const login = h('input', { id: 'login-name', name: 'login', autocomplete: 'username' });
  const pw = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password' });
  const tok = h('input', { id: 'login-token', name: 'token', type: 'password', autocomplete: 'off' });
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      try {
        if (tok.value.trim()) {
          S.token = tok.value.trim();
          sessionStorage.setItem('govflow.token', S.token);
        } else {
          S.token = null;
          const r = await api('POST', '/login', { login: login.value.trim(), password: pw.value });
          S.csrf = r.csrf;
          sessionStorage.setItem('govflow.csrf', r.csrf);
        }
        await whoami();
        if (!S.me) throw new Error(t('loginFailed'));
        location.hash = home();
      } catch (e) {
        S.token = null; sessionStorage.removeItem('govflow.token');
        err.textContent = `${t('loginFailed')}: ${e.message}`;
      }
    },
  },
  h('label', { for: 'login-name' }, t('loginName'), login),
  h('label', { for: 'login-password' }, t('password'), pw),
  h('label', { for: 'login-token' }, t('token'), tok),
  h('p', { class: 'small muted' }, t('tokenHint')),
  err,
  h('button', { type: 'submit' }, t('signIn')));
  m.replaceChildren(h('div', { class: 'card login' }, h('h1', {}, 'govflow ' + t('login')), form));
  login.focus();
}

// govflow studio — building elements, toasts, tables.
import { t } from './i18n.js';

export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'html') el.innerHTML = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
export const $ = (sel, el = document) => el.querySelector(sel);
export const main = () => $('#main');
export function toast(msg, error) {
  // A success replaces the errors before it.
  if (!error) $('#toast').querySelectorAll('.msg.error').forEach((e) => e.remove());
  const m = h('div', { class: 'msg' + (error ? ' error' : '') }, msg);
  $('#toast').append(m);
  setTimeout(() => m.remove(), error ? 8000 : 4000);
}
export const fmtTime = (s) => (s ? String(s).replace('T', ' ').slice(0, 16) : '');
export const pill = (text, cls) => h('span', { class: 'pill ' + (cls || '') }, text);
export function td(label, ...kids) { return h('td', { 'data-label': label }, ...kids); }
export function table(headers, rows, cls) {
  const body = rows.length ? rows : [h('tr', {}, h('td', { class: 'empty', colspan: headers.length }, t('none')))];
  return h('table', { class: cls || 'stack' },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, body));
}

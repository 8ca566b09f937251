// govflow studio — the code editor: highlighting, diagnostics in the gutter.
import { t } from './i18n.js';
import { h } from './dom.js';
// The language's own words, from the server (govflow_dsl::schema::highlight_words).
import { DSL_KEYWORDS } from './keywords.js';


export function tokenClasses(line, syntax) {
  // One class per character (code point): kw, str, num, com, key or ''.
  const chars = Array.from(line);
  const cls = new Array(chars.length).fill('');
  let i = 0;
  const comment = syntax === 'yaml' ? '#' : '//';
  const isWord = (c) => /[\p{L}\p{N}_]/u.test(c);
  if (syntax === 'yaml') {
    const m = line.match(/^(\s*(?:- )?)([\w.\u4e00-\u9fff-]+)(:)(\s|$)/u);
    if (m) {
      const a = Array.from(m[1]).length; const b = a + Array.from(m[2]).length;
      for (let k = a; k < b; k++) cls[k] = 'key';
    }
  }
  while (i < chars.length) {
    const c = chars[i];
    if (chars.slice(i, i + comment.length).join('') === comment && (syntax !== 'yaml' || i === 0 || /\s/.test(chars[i - 1]))) {
      for (let k = i; k < chars.length; k++) cls[k] = 'com';
      break;
    }
    if (c === '"' || c === "'") {
      let k = i + 1;
      while (k < chars.length && chars[k] !== c) k += chars[k] === '\\' ? 2 : 1;
      for (let j = i; j <= Math.min(k, chars.length - 1); j++) cls[j] = 'str';
      i = k + 1; continue;
    }
    if (/[0-9]/.test(c) && (i === 0 || !isWord(chars[i - 1]))) {
      let k = i; while (k < chars.length && /[0-9.]/.test(chars[k])) k++;
      for (let j = i; j < k; j++) if (!cls[j]) cls[j] = 'num';
      i = k; continue;
    }
    if (isWord(c)) {
      let k = i; while (k < chars.length && isWord(chars[k])) k++;
      const w = chars.slice(i, k).join('');
      if (syntax !== 'yaml' && DSL_KEYWORDS.has(w)) for (let j = i; j < k; j++) cls[j] = 'kw';
      i = k; continue;
    }
    i++;
  }
  return { chars, cls };
}

export function escapeHtml(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

export function makeEditor({ text, syntax, label, onChange, onSave }) {
  const ta = h('textarea', { spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', 'aria-label': label, class: 'source', wrap: 'off' });
  const pre = h('pre', { 'aria-hidden': 'true' });
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const el = h('div', { class: 'editor' }, gutter, h('div', { class: 'code' }, pre, ta));
  ta.value = text;
  let diags = [];
  let escaped = false;
  function paint() {
    const lines = ta.value.split('\n');
    const marks = new Map(); // line -> [{from, to, sev}]
    for (const d of diags) {
      const sev = d.severity === 'error' ? 'err' : 'warn';
      const endCol = d.end_line === d.line ? d.end_column : Infinity;
      if (!marks.has(d.line)) marks.set(d.line, []);
      marks.get(d.line).push({ from: d.column - 1, to: Math.max(endCol - 1, d.column), sev, msg: d.message });
    }
    let html = '';
    gutter.replaceChildren();
    lines.forEach((line, n) => {
      const ms = marks.get(n + 1) || [];
      const { chars, cls } = tokenClasses(line, syntax);
      if (ms.length && chars.length === 0) chars.push(' '), cls.push('');
      let cur = null; let buf = '';
      const flush = () => { if (buf) html += cur ? `<span class="${cur}">${escapeHtml(buf)}</span>` : escapeHtml(buf); buf = ''; };
      chars.forEach((ch, i) => {
        const m = ms.find((x) => i >= x.from && i < Math.max(x.to, x.from + 1));
        const c = [cls[i] ? 'tk-' + cls[i] : '', m ? 'tk-' + m.sev : ''].filter(Boolean).join(' ') || null;
        if (c !== cur) { flush(); cur = c; }
        buf += ch;
      });
      if (ms.length && chars.length > 0 && ms.some((x) => x.from >= chars.length)) { flush(); cur = 'tk-' + ms[0].sev; buf = ' '; }
      flush();
      html += '\n';
      const worst = ms.some((x) => x.sev === 'err') ? 'err' : ms.length ? 'warn' : null;
      gutter.append(h('div', { class: worst, title: ms.map((x) => x.msg).join('\n') || null, 'data-line': n + 1 }, n + 1));
    });
    pre.innerHTML = html + ' ';
    sync();
  }
  function sync() { pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; gutter.scrollTop = ta.scrollTop; }
  ta.addEventListener('scroll', sync);
  ta.addEventListener('input', () => { paint(); onChange && onChange(ta.value); });
  ta.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') { escaped = true; return; }
    if ((ev.ctrlKey || ev.metaKey) && ev.key === 's') { ev.preventDefault(); onSave && onSave(); return; }
    if (ev.key === 'Tab' && !escaped && !ev.shiftKey) {
      ev.preventDefault();
      const s = ta.selectionStart;
      ta.setRangeText('  ', s, ta.selectionEnd, 'end');
      ta.dispatchEvent(new Event('input'));
    }
    escaped = false;
  });
  paint();
  return {
    el, textarea: ta,
    get text() { return ta.value; },
    setText(v) {
      const top = ta.scrollTop; const pos = ta.selectionStart;
      ta.value = v; ta.selectionStart = ta.selectionEnd = Math.min(pos, v.length); ta.scrollTop = top;
      paint();
    },
    setDiagnostics(ds) { diags = ds; paint(); },
    goto(line, col) {
      const lines = ta.value.split('\n');
      let off = 0; for (let i = 0; i < line - 1 && i < lines.length; i++) off += lines[i].length + 1;
      off += Array.from(lines[line - 1] || '').slice(0, col - 1).join('').length;
      ta.focus(); ta.selectionStart = ta.selectionEnd = off;
      ta.scrollTop = Math.max(0, (line - 5) * 20);
      sync();
    },
  };
}

export function diagList(diags, editor) {
  const errs = diags.filter((d) => d.severity === 'error').length;
  const warns = diags.length - errs;
  const summary = diags.length === 0
    ? h('p', { class: 'status-ok', id: 'diag-summary' }, '✓ ' + t('noProblems'))
    : h('p', { class: errs ? 'status-bad' : 'muted', id: 'diag-summary' }, `${errs} ${t('errors')}, ${warns} ${t('warnings')}`);
  const list = h('ul', { class: 'diags', 'aria-label': t('problems') }, diags.map((d) => h('li', { class: d.severity, 'data-line': d.line, 'data-code': d.code },
    h('button', { type: 'button', onclick: () => editor.goto(d.line, d.column) }, `${d.line}:${d.column}`), ' ',
    h('strong', {}, d.code), ' ', d.message, d.help ? h('div', { class: 'small muted' }, '→ ' + d.help) : null)));
  return h('div', { 'aria-live': 'polite' }, summary, list);
}

// govflow studio — supervision rule files: edit, try, deploy.
import { t } from './i18n.js';
import { fmtTime, h, pill, table, td } from './dom.js';
import { api, has } from './api.js';
import { sourcePage } from './flows.js';

export async function pageRules(m, file) {
  const [files, rules] = await Promise.all([api('GET', '/rules/files'), api('GET', '/rules')]);
  const list = h('nav', { class: 'list card', 'aria-label': t('ruleFiles') }, h('div', { class: 'group' }, t('ruleFiles')),
    files.items.map((f) => h('a', { href: '#/rules/' + encodeURIComponent(f.file), 'aria-current': f.file === file ? 'page' : null }, f.file)));
  const body = h('div');
  m.replaceChildren(h('h1', {}, t('rules')), h('div', { class: 'sidebar' }, list, body));
  const f = files.items.find((x) => x.file === file);
  if (!f || f.kind !== 'rules') {
    body.append(h('div', { class: 'card' }, h('h2', {}, t('ruleStatus')), table([t('rule'), t('kind'), t('level'), t('lastError')], rules.items.map((r) => h('tr', {},
      td(t('rule'), h('strong', {}, r.name), h('div', { class: 'small muted' }, r.id)), td(t('kind'), t(r.class) + ' · ' + r.subtype),
      td(t('level'), r.levels.map((l) => [pill(t(l.level), l.level), ' ', h('code', { class: 'small' }, l.when), h('br')])),
      td(t('lastError'), r.last_error ? h('span', { class: 'status-bad' }, JSON.stringify(r.last_error)) : '—'))))));
    if (f) body.append(h('pre', { class: 'card' }, f.source));
    return;
  }
  const recent = await api('GET', '/cases?limit=30');
  await sourcePage(body, {
    kind: 'rules', title: f.file, id: f.file, file: f.file, syntax: f.syntax, source: f.source,
    sub: `v${f.version} · ${fmtTime(f.deployed_at)} · ${f.deployed_by}`,
    canDeploy: has('supervisor'),
    urls: { diff: `/rules/files/${encodeURIComponent(f.file)}/diff`, deploy: `/rules/files/${encodeURIComponent(f.file)}`, history: `/rules/files/${encodeURIComponent(f.file)}/versions`, version: `/rules/files/${encodeURIComponent(f.file)}/versions` },
    side: (editor) => {
      const caseIn = h('input', { id: 'try-case', list: 'recent-cases', value: recent.items[0]?.case_no || '', size: 24 });
      const at = h('input', { id: 'try-at', type: 'datetime-local', step: 1 });
      const out = h('div', { id: 'try-out' });
      const run = async () => {
        try {
          const r = await api('POST', '/rules/try', { source: editor.text, syntax: f.syntax, case: caseIn.value.trim(), at: at.value || undefined });
          out.replaceChildren(h('p', { class: 'small muted' }, `${r.case} @ ${fmtTime(r.at)}`), table([t('rule'), t('subject'), t('department'), t('level')], r.items.map((v) => h('tr', {},
            td(t('rule'), v.name, h('div', { class: 'small muted' }, v.rule)), td(t('subject'), v.subject), td(t('department'), v.department || ''),
            td(t('level'), v.error ? h('span', { class: 'status-bad' }, t('error') + ': ' + v.error) : v.level ? pill(t(v.level), v.level) : h('span', { class: 'muted' }, t('notRaised')))))));
        } catch (e) { out.replaceChildren(h('p', { class: 'status-bad', role: 'alert' }, e.message)); }
      };
      if (!has('analyst') && !has('supervisor')) return h('div');
      return h('div', { class: 'card' }, h('h3', {}, t('tryIt')),
        h('datalist', { id: 'recent-cases' }, recent.items.map((c) => h('option', { value: c.case_no }, c.flow_id))),
        h('div', { class: 'row' }, h('label', {}, t('tryCase'), caseIn), h('label', {}, t('tryAt'), at), h('button', { type: 'button', id: 'try-run', onclick: run }, t('run'))), out);
    },
  });
}

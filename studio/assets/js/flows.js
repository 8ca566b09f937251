// govflow studio — flows: list, editor with diagram and deadlines, deploy with diff, versions.
import { S, modeName, t } from './i18n.js';
import { fmtTime, h, pill, table, td, toast } from './dom.js';
import { api, has } from './api.js';
import { route } from './shell.js';
import { diagList, makeEditor } from './editor.js';
import { limitText } from './cases.js';

export async function pageFlows(m, id) {
  const [flows, packs] = await Promise.all([api('GET', '/flows'), api('GET', '/packs')]);
  const byPack = new Map();
  for (const f of flows.items) {
    // A pack lists its files; a version deployed from the studio keeps its file name.
    const base = (f.file || '').split(/[/:]/).pop();
    const p = packs.items.find((x) => (x.flows || []).includes(base));
    const k = p ? `${p.name} (${p.id})` : t('otherFlows');
    if (!byPack.has(k)) byPack.set(k, []);
    byPack.get(k).push(f);
  }
  const list = h('nav', { class: 'list card', 'aria-label': t('flows') },
    h('div', { class: 'group' }, t('packs')),
    [...byPack.entries()].map(([k, fs]) => [h('div', { class: 'group' }, k),
      fs.map((f) => h('a', { href: '#/flows/' + f.id, 'aria-current': f.id === id ? 'page' : null }, f.name, ' ', h('span', { class: 'small muted' }, 'v' + f.deployed_version)))]));
  const body = h('div');
  m.replaceChildren(h('h1', {}, t('flows')), h('div', { class: 'sidebar' }, list, body));
  if (!id) {
    body.append(h('div', { class: 'card' }, table([t('flow'), 'id', t('version'), t('mode'), t('statutory'), t('promised')],
      flows.items.map((f) => h('tr', {}, td(t('flow'), h('a', { href: '#/flows/' + f.id }, f.name)), td('id', f.id), td(t('version'), 'v' + f.deployed_version), td(t('mode'), modeName(f.mode)), td(t('statutory'), limitText(f.statutory)), td(t('promised'), limitText(f.promised)))))));
    return;
  }
  const f = await api('GET', '/flows/' + encodeURIComponent(id));
  const syntax = f.file && f.file.endsWith('.yaml') ? 'yaml' : 'dsl';
  await sourcePage(body, {
    kind: 'flow', title: f.name, id: f.id, syntax, source: f.source,
    sub: `${f.id} · v${f.deployed_version} · ${f.file}`,
    canDeploy: has('deployer'),
    urls: { diff: `/flows/${encodeURIComponent(f.id)}/diff`, deploy: `/flows/${encodeURIComponent(f.id)}/source`, history: `/flows/${encodeURIComponent(f.id)}/deployments`, version: `/flows/${encodeURIComponent(f.id)}/versions` },
  });
}

export async function sourcePage(body, o) {
  const diagBox = h('div');
  const svgBox = h('div', { class: 'diagram', id: 'diagram', role: 'img', 'aria-label': t('diagram') });
  const timersBox = h('div', { id: 'timers' });
  const side = h('div');
  let seq = 0; let timer = null;
  const editor = makeEditor({
    text: o.source, syntax: o.syntax, label: o.title,
    onChange: () => { clearTimeout(timer); timer = setTimeout(check, 300); },
    onSave: () => o.canDeploy && deployDialog(),
  });
  async function check() {
    const n = ++seq;
    const r = await api('POST', '/validate', { source: editor.text, syntax: o.syntax, kind: o.kind, name: o.file || (o.kind === 'flow' ? `${o.id}.${o.syntax === 'yaml' ? 'flow.yaml' : 'flow'}` : undefined) });
    if (n !== seq) return; // a newer text is being checked
    editor.setDiagnostics(r.diagnostics);
    diagBox.replaceChildren(diagList(r.diagnostics, editor));
    if (r.svg) svgBox.innerHTML = r.svg;
    if (r.timers) renderTimers(r.timers);
    if (o.onChecked) o.onChecked(r);
  }
  S.leaving = () => clearTimeout(timer);
  S.dirty = () => editor.text !== o.source;
  function renderTimers(items) {
    const units = ['workdays', 'days', 'hours'];
    timersBox.replaceChildren(table([t('timer'), t('kind'), t('line'), t('value'), t('unit')], items.map((x) => {
      const val = h('input', { type: 'number', min: 1, max: 3650, value: x.value, 'aria-label': `${x.label} ${t(x.kind)} ${t('value')}`, 'data-key': x.key });
      const unit = h('select', { 'aria-label': `${x.label} ${t(x.kind)} ${t('unit')}` }, units.map((u) => h('option', { value: u, selected: u === x.unit }, t(u))));
      const apply = async () => {
        try {
          const r = await api('POST', '/timers', { source: editor.text, syntax: o.syntax, set: { key: x.key, value: Number(val.value), unit: unit.value } });
          editor.setText(r.source);
          await check();
        } catch (e) { toast(e.message, true); }
      };
      val.addEventListener('change', apply);
      unit.addEventListener('change', apply);
      return h('tr', { 'data-key': x.key }, td(t('timer'), x.label), td(t('kind'), t(x.kind)), td(t('line'), h('button', { type: 'button', class: 'ghost', onclick: () => editor.goto(x.line, x.column) }, x.line)), td(t('value'), val), td(t('unit'), unit));
    }), 'timers stack'));
  }
  async function deployDialog() {
    try {
      const d = await api('POST', o.urls.diff, { source: editor.text });
      const dlg = h('dialog', { 'aria-labelledby': 'diff-title' });
      const close = () => { dlg.close(); dlg.remove(); };
      const go = h('button', {
        type: 'button', id: 'confirm-deploy', disabled: d.added + d.removed === 0,
        onclick: async () => {
          try {
            const r = await api('PUT', o.urls.deploy, { source: editor.text, syntax: o.syntax });
            close();
            S.dirty = null;
            toast(r.new ? `${t('deployedOk')} v${r.version}` : t('unchanged'));
            route();
          } catch (e) {
            close();
            if (e.details?.diagnostics) editor.setDiagnostics(e.details.diagnostics);
            toast(e.message, true);
          }
        },
      }, t('confirmDeploy'));
      dlg.append(h('h2', { id: 'diff-title' }, `${t('diffTitle')} (${d.running_version ? 'v' + d.running_version : t('none')}) `, pill(`+${d.added} −${d.removed}`)),
        d.added + d.removed === 0 ? h('p', {}, t('noChanges')) : h('div', { class: 'diff', id: 'diff' }, diffLines(d.lines)),
        h('div', { class: 'actions' }, go, h('button', { type: 'button', class: 'secondary', onclick: close }, t('cancel'))));
      document.body.append(dlg);
      dlg.showModal();
      (d.added + d.removed ? go : dlg.querySelector('button.secondary')).focus();
    } catch (e) { toast(e.message, true); }
  }
  const buttons = h('div', { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', onclick: check }, t('check')),
    o.canDeploy ? h('button', { type: 'button', id: 'deploy', onclick: deployDialog }, t('deploy')) : null);
  body.replaceChildren(
    h('h2', {}, o.title, ' ', h('span', { class: 'small muted' }, o.sub || '')),
    h('div', { class: 'grid2' },
      h('div', {}, editor.el, h('p', { class: 'small muted' }, t('editorHelp')), buttons, diagBox),
      side));
  if (o.kind === 'flow') side.append(h('h3', {}, t('diagram')), svgBox, h('h3', {}, t('timers')), timersBox);
  if (o.side) side.append(o.side(editor));
  if (o.urls) side.append(h('h3', {}, t('history')), await historyBox(o, editor));
  await check();
}

// Changed lines with three lines of context; a gap line where unchanged lines are left out.
export function diffLines(lines) {
  const out = []; let skipped = 0;
  lines.forEach((l, i) => {
    const near = l.op !== ' ' || lines.slice(Math.max(0, i - 3), i + 4).some((x) => x.op !== ' ');
    if (!near) { skipped++; return; }
    if (skipped) { out.push(h('div', { class: 'gap' }, `⋯ ${skipped} ${t('unchangedLines')}`)); skipped = 0; }
    out.push(h('div', { class: l.op === '+' ? 'add' : l.op === '-' ? 'del' : 'ctx' }, `${l.op} ${l.text}`));
  });
  if (skipped) out.push(h('div', { class: 'gap' }, `⋯ ${skipped} ${t('unchangedLines')}`));
  return out;
}

export async function historyBox(o, editor) {
  const d = await api('GET', o.urls.history);
  return table([t('version'), t('deployed'), t('by'), ''], d.items.slice().reverse().map((x) => h('tr', {},
    td(t('version'), 'v' + x.version), td(t('deployed'), fmtTime(x.deployed_at)), td(t('by'), x.deployed_by),
    td('', h('button', {
      type: 'button', class: 'ghost', onclick: async () => {
        const v = await api('GET', `${o.urls.version}/${x.version}`);
        editor.setText(v.source); editor.textarea.dispatchEvent(new Event('input'));
      },
    }, t('load'))))));
}

// govflow studio: one page, no build step, no external requests.
// Hash routes: #/login #/flows[/ID] #/rules[/FILE] #/cases[/NO] #/board #/calendar #/users
'use strict';

// ---------------------------------------------------------------- i18n
const TEXT = {
  zh: {
    flows: '流程', rules: '规则', cases: '办件', board: '督查', calendar: '日历', users: '用户',
    login: '登录', logout: '退出', loginName: '账号', password: '密码', token: '或使用 API 令牌',
    tokenHint: '首次使用：粘贴 govflow serve 启动时打印的管理员令牌。', signIn: '登录',
    loginFailed: '登录失败', packs: '流程包', otherFlows: '其他流程', version: '版本', deployed: '已部署',
    check: '校验', deploy: '部署…', confirmDeploy: '确认部署', cancel: '取消', history: '版本历史',
    load: '载入', noProblems: '没有问题', problems: '个问题', errors: '错误', warnings: '警告',
    diagram: '流程图', timers: '时限', timer: '时限', kind: '类型', value: '数值', unit: '单位', line: '行',
    workdays: '工作日', days: '自然日', hours: '小时',
    statutory: '法定时限', promised: '承诺时限', issue: '颁发送达时限', receipt: '补正告知期限', decidedAt: '已作出决定', step: '环节时限', wait: '等待', resubmit: '重新提交',
    consolidate: '汇总意见', diffTitle: '与运行版本的差异', noChanges: '与运行版本相同，无需部署。',
    deployedOk: '已部署版本', unchanged: '文本未变，版本不变', editorHelp: '按 Esc 再按 Tab 离开编辑器；Ctrl+S 部署。',
    ruleFiles: '规则文件', tryIt: '试运行', tryCase: '办件编号', tryAt: '时间（默认现在）', run: '运行',
    rule: '规则', subject: '对象', level: '级别', error: '错误', none: '无', ruleStatus: '规则运行状态',
    lastError: '最近错误', worklist: '我的待办', allCases: '最近办件', newCase: '登记新办件', flow: '事项',
    applicant: '申请人', idKind: '证件类型', idNumber: '证件号码', creditCode: '统一社会信用代码', idCard: '身份证',
    materials: '材料', start: '登记', caseNo: '办件编号', item: '事项名称', task: '环节', department: '部门',
    due: '到期', left: '剩余工作日', open: '办理', status: '状态', updated: '更新时间', noTasks: '暂无待办。',
    deadlines: '时限', visits: '跑动次数', returns: '退回', corrections: '补正', suspended: '挂起中',
    openTasks: '当前环节', timeline: '办理过程', cards: '督查牌', specials: '特别程序', opinion: '意见',
    pass: '通过', correct: '补正', refuse: '不予受理', deny: '不予许可', return: '退回', approve: '同意',
    actAs: '以此身份办理', done: '已办结', overdue: '已超期', noCards: '无', received: '已收', missing: '缺',
    byClass: '按类别 × 颜色', byDept: '按部门', orders: '督办单', reply: '回复', chartCases: '办件量',
    chartAvg: '平均用时（工作日）', chartOverdue: '超期率', chartSat: '满意度', issueOrder: '督办',
    timeliness: '时效', process: '流程', content: '内容', fee: '裁量/收费', integrity: '廉政风险',
    notice: '预警', yellow: '黄牌', red: '红牌', state: '状态', issued: '出牌时间', coverage: '覆盖',
    holidays: '节假日与调休', off: '休', work: '班', regions: '地区日历', year: '年份',
    newUser: '新建用户', name: '姓名', role: '角色', position: '岗位', create: '创建', audit: '审计日志',
    othersTask: '由其他部门办理', addRole: '添加角色', newToken: '签发 API 令牌（仅显示一次）', reviewReply: '审核回复', replyOrder: '回复督办', reason: '事由', days: '天数', startSpecial: '申请特别程序', specialNotice: '书面告知书', specialNoticeHint: '文号或日期（第四十五条所列程序必填）', endSpecial: '结束', result: '结果', finishedSpecial: '已完成', extension: '延期审批中', claim: '认领', release: '释放', claimedBy: '已被认领：', claimedByMe: '我已认领', riskPoint: '风险点', loading: '加载中…', saved: '已保存', forbidden: '无权办理', by: '办理人',
    statusNames: { applied: '已申请', registered: '已登记', correcting: '补正中', accepted: '已受理', suspended: '挂起', completed: '已办结', terminated: '已中止', withdrawn: '已撤回', pre_review: '预审中' },
    states: { pending: '预警中', issued: '已出牌', ordered: '已督办', closed: '已关闭', cancelled: '已解除', revoked: '申诉撤销', verified: '核实关闭' },
    modes: { pre_review: '原件预审', verification: '原件核验', full_online: '全程网办' },
    roleNames: { admin: '管理员', analyst: '业务分析', deployer: '部署', clerk: '窗口人员', reviewer: '审查人员', supervisor: '监察人员' },
    mode: '办理模式', date: '日期', unchangedLines: '行未改动', notRaised: '未触发', beyondCalendar: '超出日历范围',
    discard: '编辑的内容尚未部署，确定离开吗？', confirmAction: '确定要执行此操作吗？', sendCorrection: '发出一次性补正告知', onSite: '申请人到场', onSiteHint: '申请人本次到窗口（计入跑动次数；首次到“须到现场”的环节时自动计入）', fixHint: '需补正的内容（已收到的材料必填）', toSupply: '缺少，需补交',
    pwHint: '至少 10 个字符', deptHint: '部门编号，如 window', posHint: '岗位编号，如 clerk',
    time: '时间', actor: '操作人', action: '操作', detail: '内容',
    weekdays: ['一', '二', '三', '四', '五', '六', '日'],
    provisional: '临时', provisionalHint: '该期限计算到尚未导入国务院放假安排的年份：按《全国年节及纪念日放假办法》的法定节假日临时计算（不含调休），导入当年安排后自动重算。',
    calBanner: (d, n) => n < 0 ? `工作日历的官方安排已于 ${d} 到期（${-n} 天前），现行期限按法定节假日临时计算并标注“临时”。` : `工作日历的官方安排只到 ${d}（还有 ${n} 天）。之后的期限按法定节假日临时计算并标注“临时”。`, calBannerLink: '导入下一年放假安排',
    coveredUntil: '官方安排覆盖至', daysLeft: '天后到期', officialYears: '已部署的年度安排', provisionalYears: '临时规则（尚无官方安排）',
    importYear: '导入年度放假安排', importHelp: '上传国务院办公厅放假通知整理的文件：holiday-cn JSON，或每行“日期 off|work [名称]”的文本（# 为注释）。先预览，确认后部署；部署后所有节点启用，未办结办件的临时期限自动重算。',
    file: '文件', text: '文本', region: '地区（CN 或 6 位区划代码）', regionShort: '地区', previewBtn: '预览', deployYear: '确认部署',
    workingDays: '工作日', changesCount: '处变化', replaces: '替换', replacesprovisional: '临时规则', replacesofficial: '已生效的官方安排', replacesregion: '地区日历（合并在全国安排之上）',
    wasWork: '原为班', wasOff: '原为休', changed: '有变化', problemsFound: '文件有问题，未作任何更改：', versionCol: '版本', deployedBy: '部署人', deployedAt: '部署时间',
    calDeployed: (y, v) => `已部署 ${y} 年安排（第 ${v} 版），未办结办件的临时期限正在重算。`,
  },
  en: {
    flows: 'Flows', rules: 'Rules', cases: 'Cases', board: 'Board', calendar: 'Calendar', users: 'Users',
    login: 'Log in', logout: 'Log out', loginName: 'Login', password: 'Password', token: 'or an API token',
    tokenHint: 'First time: paste the admin token govflow serve printed when it started.', signIn: 'Log in',
    loginFailed: 'Login failed', packs: 'Packs', otherFlows: 'Other flows', version: 'Version', deployed: 'Deployed',
    check: 'Check', deploy: 'Deploy…', confirmDeploy: 'Deploy', cancel: 'Cancel', history: 'History',
    load: 'Load', noProblems: 'No problems', problems: 'problem(s)', errors: 'errors', warnings: 'warnings',
    diagram: 'Diagram', timers: 'Deadlines', timer: 'Deadline', kind: 'Kind', value: 'Value', unit: 'Unit', line: 'Line',
    workdays: 'working days', days: 'calendar days', hours: 'hours',
    statutory: 'Statutory', promised: 'Promised', issue: 'Issue the licence', receipt: 'Correction notice due', decidedAt: 'decided', step: 'Step', wait: 'Wait', resubmit: 'Resubmission',
    consolidate: 'Consolidation', diffTitle: 'Changes against the running version', noChanges: 'Same as the running version: nothing to deploy.',
    deployedOk: 'Deployed version', unchanged: 'Same text: version unchanged', editorHelp: 'Esc then Tab leaves the editor; Ctrl+S deploys.',
    ruleFiles: 'Rule files', tryIt: 'Try it', tryCase: 'Case number', tryAt: 'At (default now)', run: 'Run',
    rule: 'Rule', subject: 'Subject', level: 'Level', error: 'Error', none: 'none', ruleStatus: 'Rules in operation',
    lastError: 'Last error', worklist: 'My work', allCases: 'Recent cases', newCase: 'Register a case', flow: 'Item',
    applicant: 'Applicant', idKind: 'ID kind', idNumber: 'ID number', creditCode: 'Credit code', idCard: 'ID card',
    materials: 'Materials', start: 'Register', caseNo: 'Case no.', item: 'Item', task: 'Step', department: 'Department',
    due: 'Due', left: 'Working days left', open: 'Open', status: 'Status', updated: 'Updated', noTasks: 'Nothing to do.',
    deadlines: 'Deadlines', visits: 'Visits', returns: 'Returns', corrections: 'Corrections', suspended: 'Suspended',
    openTasks: 'Open steps', timeline: 'Timeline', cards: 'Cards', specials: 'Special procedures', opinion: 'Opinion',
    pass: 'Pass', correct: 'Correction', refuse: 'Refuse', deny: 'Deny', return: 'Return', approve: 'Approve',
    actAs: 'Act as', done: 'Finished', overdue: 'Overdue', noCards: 'none', received: 'received', missing: 'missing',
    byClass: 'By class × colour', byDept: 'By department', orders: 'Supervision orders', reply: 'Reply', chartCases: 'Cases',
    chartAvg: 'Average working days', chartOverdue: 'Overdue rate', chartSat: 'Satisfaction', issueOrder: 'Order',
    timeliness: 'Timeliness', process: 'Process', content: 'Content', fee: 'Discretion/fee', integrity: 'Integrity',
    notice: 'Notice', yellow: 'Yellow', red: 'Red', state: 'State', issued: 'Issued', coverage: 'Covers',
    holidays: 'Holidays and make-up days', off: 'off', work: 'work', regions: 'Region calendars', year: 'Year',
    newUser: 'New user', name: 'Name', role: 'Role', position: 'Position', create: 'Create', audit: 'Audit log',
    othersTask: 'Handled by another department', addRole: 'Add role', newToken: 'Issue an API token (shown once)', reviewReply: 'review of the reply', replyOrder: 'reply', reason: 'Reason', days: 'Days', startSpecial: 'Start a special procedure', specialNotice: 'Written notice', specialNoticeHint: 'number or date (required when it stops the statutory clock)', endSpecial: 'End', result: 'Result', finishedSpecial: 'done', extension: 'extension pending', claim: 'Claim', release: 'Release', claimedBy: 'Claimed by', claimedByMe: 'Mine', riskPoint: 'risk point', loading: 'Loading…', saved: 'Saved', forbidden: 'Not allowed', by: 'By',
    statusNames: {},
    states: {},
    modes: { pre_review: 'pre-review', verification: 'verification', full_online: 'full online' },
    roleNames: {},
    mode: 'Mode', date: 'Date', unchangedLines: 'unchanged lines', notRaised: 'not raised', beyondCalendar: 'beyond the calendar',
    discard: 'The edited text has not been deployed. Leave anyway?', confirmAction: 'Do this?', sendCorrection: 'Send the correction notice', onSite: 'Applicant present', onSiteHint: 'The applicant came to the window this time (counted as a trip; the first time at a step that needs presence counts by itself)', fixHint: 'what to fix (required for a received material)', toSupply: 'missing: to supply',
    pwHint: 'at least 10 characters', deptHint: 'department id, e.g. window', posHint: 'position id, e.g. clerk',
    time: 'Time', actor: 'Actor', action: 'Action', detail: 'Detail',
    weekdays: ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'],
    provisional: 'provisional', provisionalHint: 'This deadline counts into a year without the State Council\'s arrangement yet: computed with the statutory holidays (no make-up days), recomputed when the year is deployed.',
    calBanner: (d, n) => n < 0 ? `The official working-day calendar ended on ${d} (${-n} days ago). Deadlines are provisional.` : `The official working-day calendar ends on ${d} (${n} days left). Deadlines after it are provisional.`, calBannerLink: 'Import next year\'s arrangement',
    coveredUntil: 'Official arrangements up to', daysLeft: 'days left', officialYears: 'Deployed years', provisionalYears: 'Provisional rule (no official arrangement yet)',
    importYear: 'Import a year\'s arrangement', importHelp: 'Upload the State Council\'s holiday notice as holiday-cn JSON or as text, one `DATE off|work [name]` a line (# comments). Preview, then deploy: every node uses it and open cases\' provisional deadlines are recomputed.',
    file: 'File', text: 'Text', region: 'Region (CN or a 6-digit division code)', regionShort: 'Region', previewBtn: 'Preview', deployYear: 'Deploy',
    workingDays: 'working days', changesCount: 'changes', replaces: 'Replaces', replacesprovisional: 'the provisional rule', replacesofficial: 'the official arrangement in force', replacesregion: 'a region\'s days (over the national arrangement)',
    wasWork: 'was a working day', wasOff: 'was a day off', changed: 'changed', problemsFound: 'The file has problems; nothing changed:', versionCol: 'Version', deployedBy: 'By', deployedAt: 'Deployed',
    calDeployed: (y, v) => `Deployed the ${y} arrangement (version ${v}); open cases' provisional deadlines are being recomputed.`,
  },
};
const S = {
  lang: localStorage.getItem('govflow.lang') || 'zh',
  token: sessionStorage.getItem('govflow.token'),
  csrf: sessionStorage.getItem('govflow.csrf'),
  me: null,
};
const t = (k) => (TEXT[S.lang][k] ?? TEXT.zh[k] ?? k);
const statusName = (s) => TEXT[S.lang].statusNames[s] || s;
const modeName = (m) => TEXT[S.lang].modes[m] || m;
const stateName = (x) => TEXT[S.lang].states[x] || x;
const roleName = (r) => TEXT[S.lang].roleNames[r] || r;

// ---------------------------------------------------------------- DOM helpers
function h(tag, attrs, ...kids) {
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
const $ = (sel, el = document) => el.querySelector(sel);
const main = () => $('#main');
function toast(msg, error) {
  // A success replaces the errors before it.
  if (!error) $('#toast').querySelectorAll('.msg.error').forEach((e) => e.remove());
  const m = h('div', { class: 'msg' + (error ? ' error' : '') }, msg);
  $('#toast').append(m);
  setTimeout(() => m.remove(), error ? 8000 : 4000);
}
const fmtTime = (s) => (s ? String(s).replace('T', ' ').slice(0, 16) : '');
const pill = (text, cls) => h('span', { class: 'pill ' + (cls || '') }, text);
function td(label, ...kids) { return h('td', { 'data-label': label }, ...kids); }
function table(headers, rows, cls) {
  const body = rows.length ? rows : [h('tr', {}, h('td', { class: 'empty', colspan: headers.length }, t('none')))];
  return h('table', { class: cls || 'stack' },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, body));
}

// ---------------------------------------------------------------- API
class ApiError extends Error {
  constructor(status, body) { super(body?.message || `HTTP ${status}`); this.status = status; this.code = body?.code; this.details = body?.details; }
}
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (S.token) headers.Authorization = 'Bearer ' + S.token;
  else if (S.csrf && method !== 'GET') headers['X-CSRF-Token'] = S.csrf;
  const r = await fetch('/api' + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json().catch(() => null) : await r.text();
  if (r.status === 401 && path !== '/login') { S.me = null; location.hash = '#/login'; throw new ApiError(401, data); }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}
const has = (role) => S.me && S.me.roles.some((g) => g.role === role || g.role === 'admin');
const isStaff = () => has('clerk') || has('reviewer') || has('supervisor');
// Where a user starts: staff at their work list, supervisors at the board, analysts at the flows.
const home = () => (has('clerk') || has('reviewer') ? '#/cases' : has('supervisor') ? '#/board' : '#/flows');

// ---------------------------------------------------------------- shell
const NAV = [['cases', '#/cases'], ['flows', '#/flows'], ['rules', '#/rules'], ['board', '#/board'], ['calendar', '#/calendar'], ['users', '#/users']];
function shell() {
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

async function whoami() {
  try {
    S.me = await api('GET', '/me');
    if (S.me.csrf) { S.csrf = S.me.csrf; sessionStorage.setItem('govflow.csrf', S.csrf); }
  } catch (e) { S.me = null; }
}

// Administrators and supervisors see a banner when the official calendar ends within 60 days.
let calCheck = { at: 0, cal: null };
async function calendarBanner() {
  const b = $('#banner');
  if (!S.me || !(has('admin') || has('supervisor'))) { b.hidden = true; return; }
  try {
    if (Date.now() - calCheck.at > 60000) calCheck = { at: Date.now(), cal: await api('GET', '/calendar') };
  } catch (e) { return; }
  const c = calCheck.cal;
  if (!c || !c.warning) { b.hidden = true; return; }
  b.replaceChildren(h('span', {}, t('calBanner')(c.covered_until, c.days_left)), ' ', h('a', { href: '#/calendar' }, t('calBannerLink')));
  b.hidden = false;
}

let leaving = null; // a page's clean-up (timers)
let lastHash = location.hash;
async function route() {
  // An editor with undeployed changes asks before its page is left.
  if (S.dirty && S.dirty() && location.hash !== lastHash && !confirm(t('discard'))) {
    history.replaceState(null, '', lastHash || '#/');
    return;
  }
  S.dirty = null;
  lastHash = location.hash;
  if (leaving) { leaving(); leaving = null; }
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

// ---------------------------------------------------------------- login
function pageLogin(m) {
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

// ---------------------------------------------------------------- the editor
const DSL_KEYWORDS = new Set(('flow version item departments roles materials task auto decision parallel joint_review subflow wait end by within ' +
  'on when if else default lead join all any of reports reviews consolidate resubmit items for event set visit risk_point starts_clock ' +
  'special required optional electronic trust deferrable source statutory promised kind mode fee served scope status basic_code type ' +
  'rule class subtype severity notice yellow red order notify schedule to from true false none').split(' '));

function tokenClasses(line, syntax) {
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

function escapeHtml(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

function makeEditor({ text, syntax, label, onChange, onSave }) {
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

function diagList(diags, editor) {
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

// ---------------------------------------------------------------- flows
async function pageFlows(m, id) {
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

async function sourcePage(body, o) {
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
  leaving = () => clearTimeout(timer);
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
function diffLines(lines) {
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

async function historyBox(o, editor) {
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

// ---------------------------------------------------------------- rules
async function pageRules(m, file) {
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

// ---------------------------------------------------------------- cases
// `20 workdays` / `1 workday` in the interface's language.
function limitText(s) {
  const m = /^(\d+) (workday|day|hour)s?$/.exec(s || '');
  if (!m) return s || '';
  return S.lang === 'en' && m[1] === '1' ? `1 ${t(m[2] + 's').replace(/s$/, '')}` : `${m[1]} ${t(m[2] + 's')}`;
}

// A deadline counted into a year without an official arrangement says so, with why on hover and focus.
function provisionalMark(deadline) {
  if (!deadline || !deadline.provisional) return null;
  return h('span', { class: 'pill provisional', title: t('provisionalHint'), 'aria-label': `${t('provisional')}: ${t('provisionalHint')}`, tabindex: 0 }, t('provisional'));
}
function leftPill(deadline) {
  if (!deadline) return '';
  const n = deadline.working_days_left;
  if (deadline.beyond_calendar) return pill(t('beyondCalendar'), 'yellow');
  if (n === null || n === undefined) return fmtTime(deadline.due);
  const p = pill(limitText(`${n} workdays`).replace(/^1 working days$/, '1 working day'), n < 0 ? 'late' : n <= 1 ? 'yellow' : 'ok');
  const mark = provisionalMark(deadline);
  return mark ? h('span', {}, p, ' ', mark) : p;
}

async function pageCases(m) {
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

async function newCaseForm(flows) {
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

const deptName = (ir, id) => ir.departments.find((d) => d.id === id)?.name || id;

function stepIndex(ir) {
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

const EVENT_NAMES = {
  zh: { case_started: '登记', materials_received: '收到材料', task_opened: '环节开始', task_completed: '环节办结', accepted: '受理', visit_recorded: '现场跑动', parallel_started: '并联开始', lane_finished: '并联分支完成', joined: '并联汇合', completed: '办结', correction_requested: '一次性告知补正', special_started: '特别程序开始', special_ended: '特别程序结束', deadlines_moved: '时限顺延', deadlines_recomputed: '按新日历重算时限', received: '收件', deemed_accepted: '视为受理（逾期未告知补正）', decided: '作出决定（法定时限停止）', deadline_passed: '时限届满', terminated: '中止', withdrawn: '撤回', decision_made: '分支判断', data_set: '数据' },
  en: {},
};

async function pageCase(m, no) {
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

function taskBox(c, task, step, ir, mine) {
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

// ---------------------------------------------------------------- board
const CLASSES = ['timeliness', 'process', 'content', 'fee', 'integrity'];
const LEVELS = ['notice', 'yellow', 'red'];

function barChart(title, rows, value, fmt) {
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

async function pageBoard(m) {
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

// ---------------------------------------------------------------- calendar
// One year as twelve month grids. `mark(iso, weekdayIndex)` gives a cell's class and title.
function yearGrid(year, mark) {
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

async function pageCalendar(m) {
  const cal = await api('GET', '/calendar');
  calCheck = { at: Date.now(), cal };
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
function importPanel() {
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
            calCheck.at = 0;
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

// ---------------------------------------------------------------- users
async function pageUsers(m) {
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

route();

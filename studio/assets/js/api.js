// govflow studio — calling the API (bearer token, or a session with its CSRF token) and what the caller may do.
import { S } from './i18n.js';

class ApiError extends Error {
  constructor(status, body) { super(body?.message || `HTTP ${status}`); this.status = status; this.code = body?.code; this.details = body?.details; }
}
export async function api(method, path, body) {
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
export const has = (role) => S.me && S.me.roles.some((g) => g.role === role || g.role === 'admin');
export const isStaff = () => has('clerk') || has('reviewer') || has('supervisor');
// Where a user starts: staff at their work list, supervisors at the board, analysts at the flows.
export const home = () => (has('clerk') || has('reviewer') ? '#/cases' : has('supervisor') ? '#/board' : '#/flows');

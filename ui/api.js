// The REST client of the console: same origin, session in an HttpOnly cookie that JavaScript never
// sees, CSRF token kept in memory only and sent on every state-changing request.
let csrfToken = null;
let onUnauthenticated = () => {};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function setCsrf(token) { csrfToken = token || null; }
export function onSessionLost(fn) { onUnauthenticated = fn; }

export async function api(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch('/api/v1' + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin', cache: 'no-store', redirect: 'error',
    });
  } catch (e) {
    throw new ApiError(0, 'network', 'cannot reach vouchd: ' + e.message);
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error?.code, data?.error?.message);
    if (res.status === 401 && path !== '/sys/auth') onUnauthenticated(err);
    throw err;
  }
  return data;
}

export const get = path => api('GET', path);
export const post = (path, body = {}) => api('POST', path, body);

// One page of a list: {items, next_cursor}.
export function page(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return get(path + (s ? (path.includes('?') ? '&' : '?') + s : ''));
}

// Every item of a list, following cursors (bounded, for dashboard counts).
export async function all(path, params = {}, max = 5000) {
  let items = [];
  let cursor = '';
  do {
    const r = await page(path, {...params, limit: 1000, cursor});
    items = items.concat(r.items);
    cursor = r.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

export const enc = encodeURIComponent;

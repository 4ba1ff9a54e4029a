// Console state shared by the router (app.js) and the views (views.js): the signed-in session, the
// role check, the status line, live refresh and re-rendering. Importing it has no side effects, so
// views.js and app.js both depend on it instead of on each other.

const kRank = {viewer: 0, member: 1, approver: 2, admin: 3};
export const session = {user: null, role: null};

// What the signed-in role may do; mirrors the server's Authorize() (which refuses anyway).
export function can(perm) {
  const r = session.role;
  switch (perm) {
    case 'write': return r === 'member' || r === 'admin';
    case 'approve': return r === 'approver' || r === 'admin';
    case 'admin': return r === 'admin';
    default: return kRank[r] !== undefined;
  }
}

export function say(text) { document.getElementById('status').textContent = text || ''; }

// Each render is a generation; a live refresh or a late answer of an older one does nothing.
let refreshTimer = null;
let generation = 0;

// Starts a new generation (a view is about to be shown, or the user signed out) and stops the
// previous view's live refresh. Returns the new generation.
export function nextGeneration() {
  clearInterval(refreshTimer);
  return ++generation;
}
export function currentGeneration() { return generation; }

// Runs `fn` every `ms` while the current view is shown (live refresh).
export function every(ms, fn) {
  const mine = generation;
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (mine !== generation) return clearInterval(refreshTimer);
    if (document.visibilityState === 'visible') fn();
  }, ms);
}

// The router registers how to render the current view; views call rerender() after an action.
let renderer = async () => {};
export function setRenderer(fn) { renderer = fn; }

// Re-renders the current view (after an action), keeping scroll position.
export function rerender() {
  const y = window.scrollY;
  return renderer().then(() => window.scrollTo(0, y));
}

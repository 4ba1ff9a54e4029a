// vouch console: sign-in, navigation and the hash router (the entry point). Views live in views.js;
// the state both share in shell.js.
import {api, setCsrf, onSessionLost, ApiError} from './api.js';
import {h, clear} from './dom.js';
import {routes} from './views.js';
import {session, can, say, nextGeneration, currentGeneration, setRenderer} from './shell.js';

const main = () => document.getElementById('main');
let lastHash = null;

function showShell(signedIn) {
  document.getElementById('nav').hidden = !signedIn;
  document.getElementById('who').hidden = !signedIn;
  if (signedIn) {
    document.getElementById('who-name').textContent = `${session.user} (${session.role})`;
    for (const li of document.querySelectorAll('[data-role=admin]')) li.hidden = !can('admin');
  }
}

function showLogin(message, isError) {
  nextGeneration();
  session.user = session.role = null;
  setCsrf(null);
  showShell(false);
  say('');
  const err = h('p', {class: message && isError ? 'error' : 'notice', role: 'alert', id: 'login-message'}, message || '');
  if (!message) err.hidden = true;
  const user = h('input', {name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none'});
  const pass = h('input', {name: 'password', type: 'password', autocomplete: 'current-password', required: true});
  const button = h('button', {type: 'submit'}, 'Sign in');
  const form = h('form', {class: 'stack', 'aria-label': 'Sign in'},
    h('label', {}, 'User name', user), h('label', {}, 'Password', pass), button);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    button.disabled = true;
    try {
      const r = await api('POST', '/sys/auth', {username: user.value.trim(), password: pass.value, cookie: true});
      setCsrf(r.csrf_token);
      session.user = r.user.name;
      session.role = r.user.role;
      pass.value = '';
      showShell(true);
      render();
    } catch (ex) {
      err.hidden = false;
      err.className = 'error';
      err.textContent = ex.code === 'invalid_credentials' ? 'Wrong user name or password.' : ex.message;
      pass.value = '';
      pass.focus();
    } finally {
      button.disabled = false;
    }
  });
  clear(main()).appendChild(h('section', {class: 'login'}, h('h1', {}, 'Sign in to vouch'), err, form));
  user.focus();
}

async function logout() {
  try { await api('DELETE', '/sys/auth'); } catch { /* already gone */ }
  showLogin('You have signed out.', false);
}

async function render() {
  if (!session.user) return;
  nextGeneration();
  const hash = (location.hash.replace(/^#/, '') || '/').split('?')[0];
  const parts = hash.split('/').filter(Boolean).map(decodeURIComponent);
  const key = parts[0] || '';
  if (location.hash !== lastHash) say('');  // a message outlives the re-render after its action only
  lastHash = location.hash;
  const view = routes[key] || routes[''];
  for (const a of document.querySelectorAll('nav a')) {
    const target = a.getAttribute('href').replace(/^#\/?/, '');
    if (target === key) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const container = clear(main());
  const mine = currentGeneration();
  try {
    const node = await view(parts.slice(1));
    if (mine !== currentGeneration()) return;
    container.appendChild(node);
    const heading = container.querySelector('h1');
    if (heading) document.title = heading.textContent + ' · vouch';
  } catch (e) {
    if (mine !== currentGeneration() || (e instanceof ApiError && e.status === 401)) return;
    container.appendChild(h('section', {}, h('h1', {}, 'Error'), h('p', {class: 'error', role: 'alert'}, e.message)));
  }
}

setRenderer(render);

onSessionLost(() => {
  if (session.user) showLogin('Your session has expired or was ended. Sign in again.', true);
});

async function start() {
  document.getElementById('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', () => { render(); main().focus({preventScroll: true}); });
  try {
    const who = await api('GET', '/sys/whoami');
    setCsrf(who.csrf_token);
    session.user = who.name;
    session.role = who.role;
    showShell(true);
    render();
  } catch {
    showLogin();
  }
}

start();

// Zone CA rotation (issue 18) on the zone page: the zone's roots (current, next, retired) with their
// dates and fingerprints, "Rotate CA" (a next root pending a ca_rotation approval task under the
// zone's quorum), "Activate next root" once that task is approved, and the bundle relying parties
// trust across the switch. Uses only the public REST API (docs/api.md "Zone CA rotation"):
// GET /zones/{id}/cas, POST /zones/{id}/ca/rotate, POST /zones/{id}/ca/activate,
// GET /zones/{id}/ca/bundle, GET /zones/{id}/crl?ca=ID, GET /tasks/{id}. No side effects on
// import; views.js puts the section on the zone page.
import {get, post, enc} from './api.js';
import {h, table, when, link, ask} from './dom.js';
import {can, rerender, say} from './shell.js';

// A root's state as a person reads it, with its tone (the badge classes of style.css).
const kStates = {
  active: ['current', 'ok'], approved: ['next (approved)', 'warn'], pending: ['next (pending approval)', 'warn'],
  retired: ['retired', 'neutral'], denied: ['denied', 'bad'],
};
export function stateLabel(status) { return (kStates[status] || [status || '—'])[0]; }

function stateBadge(status) {
  const [text, tone] = kStates[status] || [status || '—', 'neutral'];
  return h('span', {class: 'badge ' + tone, dataset: {state: status || ''}}, text);
}

function alertError(e) {
  const main = document.getElementById('main');
  main.querySelector('.action-error')?.remove();
  main.prepend(h('p', {class: 'error action-error', role: 'alert'}, e.message));
}

// Runs an action; on success re-renders and says `done`, on a refusal shows the server's message.
async function act(fn, done) {
  try {
    const r = await fn();
    await rerender();
    say(typeof done === 'function' ? done(r) : done);
  } catch (e) {
    say('');
    alertError(e);
  }
}

// The SHA-256 fingerprint of a root in colon-separated pairs, shortened (full on hover).
function fingerprint(hex) {
  if (!hex) return '—';
  const pairs = hex.toUpperCase().match(/../g) || [];
  return h('code', {title: pairs.join(':'), class: 'fingerprint'}, pairs.slice(0, 8).join(':') + '…');
}

// The approval task of a next root: approvals given / needed and where to decide it.
async function taskCell(root) {
  if (!root.task_id) return '—';
  let task = null;
  try { task = await get('/tasks/' + enc(root.task_id)); } catch { /* a viewer's answer or a gone task: show the link */ }
  const given = task ? (task.approvals || []).length : null;
  return h('span', {class: 'ca-task', dataset: {task: root.task_id}},
    task ? h('span', {title: (task.approvals || []).map(a => a.user).join(', ')}, `${given} / ${task.approvals_required} approvals`) : null,
    task && root.status === 'pending' ? ' · ' : null,
    root.status === 'pending' ? link('#/tasks', 'approve in Tasks') : null);
}

// The "Certificate authorities" section of zone `z` (the zone object of GET /zones/{id}).
export async function zoneCaSection(z) {
  const base = `/zones/${enc(z.name)}`;
  const roots = (await get(base + '/cas')).items;
  const tasks = await Promise.all(roots.map(taskCell));
  roots.forEach((r, i) => { r.taskNode = tasks[i]; });
  const next = roots.find(r => r.status === 'pending' || r.status === 'approved');
  const box = h('div', {class: 'zone-cas'});
  box.appendChild(h('h2', {}, 'Certificate authorities'));
  box.appendChild(h('p', {class: 'muted'}, 'The current root signs new certificates and the CRL. A rotation makes a next root ' +
    `that needs ${z.policy.approvals_required} approval(s); once approved it is in the bundle, so relying parties trust it ` +
    'before it is activated. A retired root stays in the bundle until its last certificate expires.'));
  const crlHref = r => `/api/v1${base}/crl?format=pem` + (r.id && r.status !== 'active' ? '&ca=' + enc(r.id) : '');
  box.appendChild(table(roots, [
    {title: 'State', cell: r => stateBadge(r.status)},
    {title: 'Subject', cell: r => r.ca?.subject || '—', class: 'hide-narrow'},
    {title: 'SHA-256 fingerprint', cell: r => fingerprint(r.ca?.sha256)},
    {title: 'Not before', cell: r => when(r.ca?.not_before)},
    {title: 'Not after', cell: r => when(r.ca?.not_after)},
    {title: 'Activated', cell: r => when(r.activated_at), class: 'hide-narrow'},
    {title: 'Retired', cell: r => when(r.retired_at), class: 'hide-narrow'},
    {title: 'Approval', cell: r => r.taskNode},
    {title: 'CRL', cell: r => r.status === 'denied' || r.status === 'pending' ? '—'
      : h('a', {href: crlHref(r), download: `${z.name}-crl${r.id && r.status !== 'active' ? '-' + r.id : ''}.pem`}, 'CRL (PEM)')},
  ], {label: 'Certificate authorities', empty: 'No root CA.'}));
  const tools = h('div', {class: 'toolbar'},
    h('a', {href: `/api/v1${base}/ca/bundle`, download: `${z.name}-ca-bundle.pem`, class: 'button secondary', id: 'ca-bundle'},
      'Download CA bundle (PEM)'));
  if (can('admin') && !next) {
    tools.appendChild(h('button', {type: 'button', onclick: async () => {
      const q = await ask({title: `Rotate the root CA of zone ${z.name}?`, confirm: 'Rotate CA',
        message: `A next root is made now and waits for ${z.policy.approvals_required} approval(s). It issues nothing ` +
                 'until an admin activates it; the current root keeps issuing meanwhile.'});
      if (q.ok) {
        act(() => post(base + '/ca/rotate'),
            r => `Next root created: its approval task needs ${r.approvals_required} approval(s) (see Tasks).`);
      }
    }}, 'Rotate CA'));
  }
  if (can('admin') && next?.status === 'approved') {
    tools.appendChild(h('button', {type: 'button', class: 'danger', onclick: async () => {
      const q = await ask({title: `Activate the next root of zone ${z.name}?`, confirm: 'Activate next root', danger: true,
        message: 'From now on it signs every new certificate and the CRL. The current root is retired: its certificates ' +
                 'stay valid until they expire, and it stays in the bundle until then. Relying parties that trust only ' +
                 'the current root (not the bundle) stop verifying new certificates.'});
      if (q.ok) act(() => post(base + '/ca/activate'), 'Next root activated; the previous root is retired.');
    }}, 'Activate next root'));
  }
  if (can('admin') && next?.status === 'pending') {
    tools.appendChild(h('span', {class: 'muted'}, 'Activation is possible once the next root\'s task is approved.'));
  }
  box.appendChild(tools);
  return box;
}

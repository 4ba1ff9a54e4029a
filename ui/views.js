// The console's views. Each takes the path parts after its name and returns a DOM node.
// Mutating controls are only built when can(...) says the role may use them.
import {api, get, post, page, all, enc} from './api.js';
import {h, clear, table, props, badge, when, ago, short, link, copyButton, ask, field} from './dom.js';
import {can, every, rerender, say, session} from './shell.js';
import {conversions, convertAction} from './conversions.js';
import {zoneCaSection} from './zone_cas.js';
import {backups} from './backups.js';

// Names as the API accepts them (the pattern attribute is compiled with the v flag: escape '-').
const kNamePattern = '[a-z0-9][a-z0-9\\-]{0,62}';

// Runs an action, reports success or the server's refusal, then re-renders.
async function act(fn, done) {
  try {
    await fn();
    await rerender();
    if (done) say(done);
  } catch (e) {
    say('');
    alertError(e);
  }
}

function alertError(e) {
  const main = document.getElementById('main');
  main.querySelector('.action-error')?.remove();
  const p = h('p', {class: 'error action-error', role: 'alert'}, e.message);
  main.prepend(p);
}

function section(title, ...children) { return h('section', {}, h('h1', {}, title), children); }

// A paged list: shows the first page, "Load more" follows next_cursor.
function pagedTable(path, params, columns, opts = {}) {
  const box = h('div', {class: 'paged'});
  let cursor = '';
  let items = [];
  async function load() {
    const r = await page(path, {...params, cursor, limit: opts.limit || 100});
    items = items.concat(r.items);
    cursor = r.next_cursor;
    clear(box).appendChild(table(items, columns, opts));
    if (cursor) {
      box.appendChild(h('p', {}, h('button', {type: 'button', class: 'secondary', onclick: () => load().catch(alertError)}, 'Load more')));
    }
  }
  return load().then(() => box);
}

function filterForm(fields, values, onSubmit) {
  const inputs = {};
  const form = h('form', {class: 'inline', role: 'search'},
    fields.map(f => {
      let input;
      if (f.options) {
        input = h('select', {name: f.name}, f.options.map(o => h('option', {value: o, selected: values[f.name] === o}, o || 'any')));
      } else {
        input = h('input', {name: f.name, value: values[f.name] || '', placeholder: f.placeholder || ''});
      }
      inputs[f.name] = input;
      return field(f.label, input);
    }),
    h('button', {type: 'submit', class: 'secondary'}, 'Filter'));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const q = {};
    for (const [k, el] of Object.entries(inputs)) if (el.value.trim()) q[k] = el.value.trim();
    onSubmit(q);
  });
  return form;
}

// Query parameters carried in the hash: #/builds?status=pending
function hashQuery() {
  const i = location.hash.indexOf('?');
  return Object.fromEntries(new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1)));
}
function setHashQuery(base, q) {
  const s = new URLSearchParams(q).toString();
  location.hash = base + (s ? '?' + s : '');
}
function stripQuery(s) { return s ? s.split('?')[0] : s; }

function approvalsCell(o) {
  const given = (o.approvals || []).length;
  return h('span', {title: (o.approvals || []).map(a => a.user).join(', ')}, `${given} / ${o.approvals_required}`);
}

// ------------------------------------------------------------------ dashboard

async function dashboard() {
  const root = h('section', {}, h('h1', {}, 'Dashboard'));
  const body = h('div', {});
  const stamp = h('p', {class: 'muted', 'aria-live': 'off'});
  root.append(body, stamp);
  async function refresh() {
    // Instances and certificates are counted by the server (index ranges, docs/api.md): a
    // million of them are never fetched.
    const [nodes, apps, tasks, inst, certs, zones, ready, chain] = await Promise.all([
      all('/nodes'), all('/apps'), all('/tasks', {status: 'pending'}), get('/instances/counts'),
      get('/certificates/counts?expiring_within_days=7'), all('/zones'),
      fetch('/readyz', {cache: 'no-store'}).then(r => r.ok).catch(() => false), get('/audit/verify')]);
    const count = (list, key) => list.reduce((m, x) => (m[x[key] ?? 'unknown'] = (m[x[key] ?? 'unknown'] || 0) + 1, m), {});
    const breakdown = m => Object.keys(m).length
      ? h('ul', {}, Object.entries(m).map(([k, v]) => h('li', {}, badge(k), ' ', v))) : h('p', {class: 'muted'}, 'none');
    const buildsPending = tasks.filter(t => t.kind === 'build').length;
    const card = (title, big, href, extra, testid) => h('article', {class: 'card', dataset: {card: testid}},
      h('h2', {}, href ? link(href, title) : title), h('div', {class: 'big'}, String(big)), extra);
    const healthy = ready && chain.ok;
    clear(body).appendChild(h('div', {class: 'cards'},
      card('Manager health', healthy ? 'OK' : 'Attention', null, h('ul', {},
        h('li', {}, 'store ', badge(ready ? 'ready' : 'not ready')),
        h('li', {}, 'audit chain ', badge(chain.ok ? 'intact' : 'broken'), ` ${chain.entries} entries`)), 'health'),
      card('Nodes by status', nodes.length, '#/nodes', breakdown(count(nodes, 'status')), 'nodes'),
      card('Nodes by TCB status', nodes.length, '#/nodes', breakdown(count(nodes, 'tcb_status')), 'tcb'),
      card('Zones', zones.length, '#/zones', null, 'zones'),
      card('Apps', apps.length, '#/apps', null, 'apps'),
      card('Builds pending approval', buildsPending, '#/tasks', tasks.length > buildsPending
        ? h('p', {class: 'muted'}, `${tasks.length - buildsPending} other task(s) pending`) : null, 'pending'),
      card('Instances running', inst.running || 0, '#/instances',
        h('p', {}, badge('unresponsive'), ' ', inst.unresponsive || 0), 'instances'),
      card('Certificates expiring within 7 days', certs.expiring, '#/certificates',
        h('p', {class: 'muted'}, `${certs.valid} valid in total`), 'expiring')));
    stamp.textContent = 'Updated ' + new Date().toLocaleTimeString() + ' · refreshes every 5 s';
  }
  await refresh();
  every(5000, () => refresh().catch(() => {}));
  return root;
}

// ------------------------------------------------------------------ zones

// The minimums a zone may name: policy::kZoneMinimumTcbStatuses (libs/policy/tcb_status.h), checked
// against this list and the OpenAPI enum by libs/api/tcb_list_test.cc.
const kTcb = ['UpToDate', 'SWHardeningNeeded', 'ConfigurationNeeded', 'ConfigurationAndSWHardeningNeeded',
              'OutOfDate', 'OutOfDateConfigurationNeeded'];

function zoneForm(zone, onSave) {
  const p = zone?.policy || {};
  const name = zone ? null : h('input', {name: 'name', required: true, pattern: kNamePattern});
  const approvals = h('input', {name: 'approvals_required', type: 'number', min: '1', max: '10', value: p.approvals_required ?? 1});
  const minTcb = h('select', {name: 'min_tcb'}, kTcb.map(t => h('option', {value: t, selected: (p.min_tcb ?? 'UpToDate') === t}, t)));
  const validity = h('input', {name: 'cert_validity_hours', type: 'number', min: '1', max: String(24 * 397), value: p.cert_validity_hours ?? 24});
  const advisories = h('input', {name: 'tolerated_advisories', value: (p.tolerated_advisories || []).join(' '), placeholder: 'INTEL-SA-00334 …'});
  const sim = h('input', {type: 'checkbox', name: 'allow_sim', checked: !!p.allow_sim});
  const debug = h('input', {type: 'checkbox', name: 'allow_debug', checked: !!p.allow_debug});
  const form = h('form', {class: 'stack', 'aria-label': zone ? 'Zone policy' : 'Create zone'},
    name ? field('Name', name) : null,
    field('Approvals required', approvals), field('Minimum TCB status', minTcb),
    field('Certificate validity (hours)', validity), field('Tolerated advisories (space-separated)', advisories),
    h('label', {class: 'check'}, sim, 'Accept sim (insecure) evidence'),
    h('label', {class: 'check'}, debug, 'Allow debug builds'),
    h('div', {}, h('button', {type: 'submit'}, zone ? 'Save policy' : 'Create zone')));
  form.addEventListener('submit', e => {
    e.preventDefault();
    const body = {
      approvals_required: Number(approvals.value), min_tcb: minTcb.value,
      cert_validity_hours: Number(validity.value), allow_sim: sim.checked, allow_debug: debug.checked,
      tolerated_advisories: advisories.value.split(/[\s,]+/).filter(Boolean),
    };
    if (name) body.name = name.value.trim();
    onSave(body);
  });
  return form;
}

async function zones(parts) {
  if (parts[0]) return zoneDetail(stripQuery(parts[0]));
  const root = section('Zones');
  if (can('admin')) {
    root.appendChild(h('details', {}, h('summary', {}, 'Create a zone'),
      zoneForm(null, body => act(async () => {
        const z = await post('/zones', body);
        location.hash = '#/zones/' + enc(z.name);
      }, 'Zone created.'))));
  }
  root.appendChild(await pagedTable('/zones', {}, [
    {title: 'Name', cell: z => link('#/zones/' + enc(z.name), z.name)},
    {title: 'Approvals', cell: z => String(z.policy.approvals_required)},
    {title: 'Min TCB', cell: z => z.policy.min_tcb},
    {title: 'Sim', cell: z => z.policy.allow_sim ? badge('insecure-sim') : 'no', class: 'hide-narrow'},
    {title: 'CA valid until', cell: z => when(z.ca?.not_after), class: 'hide-narrow'},
  ], {label: 'Zones', empty: 'No zones.'}));
  return root;
}

function agentCommand(zone, token) {
  return `vouch-agent --server ${location.origin} --ca-file service-ca.pem --data-dir /var/lib/vouch-agent ` +
         `--socket /run/vouch/agent.sock --join-token ${token}` + (zone.policy.allow_sim ? ' --tee sim --sim SIM_DIR' : '');
}

async function zoneDetail(name) {
  const z = await get('/zones/' + enc(name));
  const root = section('Zone ' + z.name);
  root.appendChild(props([
    ['ID', h('code', {}, z.id)], ['Created', when(z.created_at)],
    ['Root CA subject', z.ca?.subject], ['Root CA validity', h('span', {}, when(z.ca?.not_before), ' – ', when(z.ca?.not_after))],
    ['Root CA SHA-256', h('code', {}, z.ca?.sha256)],
    ['Downloads', h('span', {}, h('a', {href: `/api/v1/zones/${enc(z.name)}/ca`, download: `${z.name}-ca.pem`}, 'Root CA (PEM)'),
      ' · ', h('a', {href: `/api/v1/zones/${enc(z.name)}/crl?format=pem`, download: `${z.name}-crl.pem`}, 'CRL (PEM)'))],
  ]));
  root.appendChild(await zoneCaSection(z));  // issue 18: roots, rotation, bundle (zone_cas.js)
  root.appendChild(h('h2', {}, 'Policy'));
  if (can('admin')) {
    root.appendChild(zoneForm(z, body => act(() => api('PATCH', '/zones/' + enc(z.name), body), 'Policy saved.')));
  } else {
    const p = z.policy;
    root.appendChild(props([['Approvals required', String(p.approvals_required)], ['Minimum TCB', p.min_tcb],
      ['Tolerated advisories', p.tolerated_advisories.join(', ') || 'none'], ['Certificate validity', p.cert_validity_hours + ' h'],
      ['Sim evidence', p.allow_sim ? 'accepted (insecure)' : 'refused'], ['Debug builds', p.allow_debug ? 'allowed' : 'refused']]));
  }
  // Node identities (docs/policy.md, "Node identity"): which agent code may become a node here.
  root.appendChild(h('h2', {}, 'Node identities'));
  root.appendChild(h('p', {class: 'muted'}, 'The vouch-agent identities whose evidence may make a node in this zone (never debug). ' +
    'Adding one is an approval task under the zone\'s quorum (vouch zone node-identity add).'));
  const identityText = i => Object.entries(i.rule).filter(([k]) => k !== 'platform')
    .map(([k, v]) => `${k} ${typeof v === 'string' && v.length > 16 ? v.slice(0, 16) + '…' : v}`).join(', ');
  const identities = (await get(`/zones/${enc(z.name)}/node-identities`)).items;
  root.appendChild(table(identities, [
    {title: 'Platform', cell: i => i.platform},
    {title: 'Identity', cell: i => h('code', {title: JSON.stringify(i.rule)}, identityText(i))},
    {title: 'Status', cell: i => i.status === 'pending' && i.task_id ? h('span', {}, badge(i.status), ' ', link('#/tasks', 'approval task'))
      : badge(i.status)},
    {title: 'Note', cell: i => i.note ?? '—', class: 'hide-narrow'},
    {title: 'Added', cell: i => h('span', {}, when(i.created_at), ' by ', i.created_by), class: 'hide-narrow'},
  ], {label: 'Node identities', empty: 'No agent identity is accepted: no node can join this zone.'}));
  if (can('admin')) {
    root.appendChild(h('h2', {}, 'Join tokens'));
    const out = h('div', {});
    const ttl = h('input', {type: 'number', name: 'ttl_seconds', min: '60', value: '3600'});
    const uses = h('input', {type: 'number', name: 'uses', min: '1', value: '1'});
    const form = h('form', {class: 'inline', 'aria-label': 'Create join token'}, field('Valid for (seconds)', ttl), field('Uses', uses),
      h('button', {type: 'submit'}, 'Create join token'));
    form.addEventListener('submit', async e => {
      e.preventDefault();
      try {
        const t = await post(`/zones/${enc(z.name)}/join-tokens`, {ttl_seconds: Number(ttl.value), uses: Number(uses.value)});
        const cmd = agentCommand(z, t.token);
        clear(out).appendChild(h('div', {class: 'secret', role: 'status'},
          h('p', {}, h('strong', {}, 'Join token (shown once): '), h('code', {id: 'join-token'}, t.token), ' ', copyButton(t.token, 'Copy token')),
          h('p', {}, 'Expires ', when(t.expires_at), `; ${t.uses_left} use(s). On the node, run:`),
          h('pre', {class: 'block', id: 'agent-command'}, cmd), copyButton(cmd, 'Copy command')));
        tokens.replaceWith(await tokenList());
      } catch (ex) { alertError(ex); }
    });
    const tokenList = async () => {
      tokens = await pagedTable(`/zones/${enc(z.name)}/join-tokens`, {}, [
        {title: 'ID', cell: t => h('code', {}, t.id)}, {title: 'Expires', cell: t => when(t.expires_at)},
        {title: 'Uses left', cell: t => String(t.uses_left)}, {title: 'Created by', cell: t => t.created_by ?? '—', class: 'hide-narrow'},
      ], {label: 'Join tokens', empty: 'No join tokens.'});
      return tokens;
    };
    let tokens = h('div');
    root.append(form, out, await tokenList());
  }
  root.appendChild(h('h2', {}, 'Apps in this zone'));
  root.appendChild(await pagedTable('/apps', {zone: z.name}, [
    {title: 'Name', cell: a => link('#/apps/' + enc(a.name), a.name)}, {title: 'Domains', cell: a => a.domains.join(', ')}], {label: 'Apps in zone'}));
  return root;
}

// ------------------------------------------------------------------ apps

async function apps(parts) {
  if (parts[0]) return appDetail(stripQuery(parts[0]));
  const root = section('Apps');
  if (can('write')) {
    const zoneList = await all('/zones');
    const name = h('input', {name: 'name', required: true, pattern: kNamePattern});
    const zone = h('select', {name: 'zone', required: true}, zoneList.map(z => h('option', {value: z.name}, z.name)));
    const domains = h('input', {name: 'domains', placeholder: 'web.example.com *.svc.example.com'});
    const form = h('form', {class: 'stack', 'aria-label': 'Create app'}, field('Name', name), field('Zone', zone),
      field('Allowed DNS names (space-separated)', domains), h('div', {}, h('button', {type: 'submit'}, 'Create app')));
    form.addEventListener('submit', e => {
      e.preventDefault();
      act(async () => {
        const a = await post('/apps', {name: name.value.trim(), zone: zone.value, domains: domains.value.split(/[\s,]+/).filter(Boolean)});
        location.hash = '#/apps/' + enc(a.name);
      }, 'App created. Its DNS names wait for approval: see Tasks.');
    });
    root.appendChild(h('details', {}, h('summary', {}, 'Create an app'), form));
  }
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'zone', label: 'Zone'}], q, v => setHashQuery('#/apps', v)));
  root.appendChild(await pagedTable('/apps', {zone: q.zone}, [
    {title: 'Name', cell: a => link('#/apps/' + enc(a.name), a.name)},
    {title: 'Zone', cell: a => link('#/zones/' + enc(a.zone), a.zone)},
    {title: 'Domains', cell: a => a.domains.join(', ') || '—'},
    {title: 'Pending domains', cell: a => (a.pending_domains || []).join(', ') || '—', class: 'hide-narrow'},
    {title: 'Created', cell: a => when(a.created_at), class: 'hide-narrow'},
  ], {label: 'Apps', empty: 'No apps.'}));
  return root;
}

async function appDetail(name) {
  const a = await get('/apps/' + enc(name));
  const root = section('App ' + a.name);
  root.appendChild(props([['ID', h('code', {}, a.id)], ['Zone', link('#/zones/' + enc(a.zone), a.zone)],
    ['SPIFFE ID', h('code', {}, a.spiffe_id)], ['Created', h('span', {}, when(a.created_at), ' by ', a.created_by || '—')],
    ['Pending domains', (a.pending_domains || []).join(', ') || 'none'],
    ['Signer (mrsigner)', a.mrsigner ? h('code', {}, a.mrsigner) : 'none yet'],
    ['Registries', `input ${a.input_registry || '—'}, output ${a.output_registry || '—'}`]]));
  // Approved names, then the requests waiting for approval (an app's initial names too).
  root.appendChild(h('h2', {}, 'Domains'));
  const rows = a.domains.map(d => ({d, status: 'approved'}))
    .concat((a.domain_tasks || []).map(t => ({d: t.domain, status: 'pending', task: t.task_id})));
  root.appendChild(table(rows, [
    {title: 'DNS name', cell: x => h('code', {}, x.d)},
    {title: 'Status', cell: x => x.task ? h('span', {}, badge(x.status), ' ', link('#/tasks', 'approval task')) : badge(x.status)},
    can('write') ? {title: 'Actions', class: 'actions', cell: x => h('button', {type: 'button', class: 'secondary',
      onclick: async () => {
        const r = x.task ? {ok: true} : await ask({title: `Remove ${x.d} from app ${a.name}?`,
          message: 'Valid certificates of this app that carry it are revoked now.', confirm: 'Remove domain', danger: true});
        if (r.ok) act(() => api('DELETE', `/apps/${enc(a.name)}/domains/${enc(x.d)}`), x.task ? 'Request withdrawn.' : 'Domain removed.');
      }}, x.task ? 'Withdraw' : 'Remove')} : null,
  ].filter(Boolean), {label: 'Domains', empty: 'No domains.'}));
  if (can('write')) {
    const d = h('input', {name: 'domain', required: true, placeholder: 'api.example.com'});
    const form = h('form', {class: 'inline', 'aria-label': 'Add domain'}, field('Add a domain (needs approval)', d), h('button', {type: 'submit'}, 'Request domain'));
    form.addEventListener('submit', e => { e.preventDefault(); act(() => post(`/apps/${enc(a.name)}/domains`, {domain: d.value.trim()}), 'Domain requested: see Tasks.'); });
    root.appendChild(form);
  }
  root.appendChild(h('h2', {}, 'Builds'));
  root.appendChild(await buildTable({app: a.name}));
  const convert = convertAction(a.name);  // issue 15: server-side conversion (conversions.js)
  if (convert) root.appendChild(convert);
  if (can('admin')) {
    root.appendChild(h('h2', {}, 'Danger zone'));
    root.appendChild(h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: `Delete app ${a.name}?`, message: 'Its builds and certificates are revoked.', confirm: 'Delete app', danger: true});
      if (r.ok) act(async () => { await api('DELETE', '/apps/' + enc(a.name)); location.hash = '#/apps'; }, 'App deleted.');
    }}, 'Delete app'));
  }
  return root;
}

// ------------------------------------------------------------------ builds and tasks

function buildTable(params) {
  return pagedTable('/builds', params, [
    {title: 'Build', cell: b => link('#/builds/' + enc(b.id), b.id)},
    {title: 'App', cell: b => link('#/apps/' + enc(b.app), b.app)},
    {title: 'Status', cell: b => badge(b.status)},
    {title: 'Approvals', cell: approvalsCell},
    {title: 'MRENCLAVE', cell: b => short(b.measurements.mrenclave), class: 'hide-narrow'},
    {title: 'Created', cell: b => when(b.created_at), class: 'hide-narrow'},
  ], {label: 'Builds', empty: 'No builds.'});
}

async function builds(parts) {
  if (parts[0]) return buildDetail(stripQuery(parts[0]));
  const root = section('Builds');
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'app', label: 'App'},
    {name: 'status', label: 'Status', options: ['', 'pending', 'approved', 'denied', 'revoked']}], q, v => setHashQuery('#/builds', v)));
  root.appendChild(await buildTable({app: q.app, status: q.status}));
  return root;
}

async function decideButtons(task, after) {
  if (!can('approve') || task.status !== 'pending') return null;
  const mine = (task.approvals || []).some(a => a.user === session.user);
  return h('span', {class: 'decide'},
    h('button', {type: 'button', disabled: mine, title: mine ? 'You have approved this already' : null,
      onclick: () => act(() => post(`/tasks/${enc(task.id)}/approve`), 'Approved.').then(after)}, mine ? 'Approved by you' : 'Approve'),
    ' ',
    h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: 'Deny: ' + task.summary, confirm: 'Deny', danger: true, reason: true, required: true});
      if (r.ok) act(() => post(`/tasks/${enc(task.id)}/deny`, {reason: r.reason}), 'Denied.').then(after);
    }}, 'Deny'));
}

// The DNS names a task's app may be certified for: approved ones, then pending requests. What an
// approver of a build sees: its certificates will carry (some of) the approved names only.
function namesCell(t) {
  if (t.kind === 'domain') return h('span', {}, 'requests ', h('code', {}, t.domain));
  if (t.kind === 'node_identity' || t.kind === 'ca_rotation') return '—';
  const approved = t.domains || [];
  const pending = t.pending_domains || [];
  return h('span', {class: 'names'}, approved.length ? approved.map((d, i) => [i ? ', ' : '', h('code', {}, d)]) : 'no approved names',
    pending.length ? h('span', {class: 'muted'}, ' · pending: ' + pending.join(', ')) : null);
}

async function buildDetail(id) {
  const b = await get('/builds/' + enc(id));
  const task = b.task_id ? await get('/tasks/' + enc(b.task_id)) : null;
  const root = section('Build ' + b.id);
  const m = b.measurements;
  root.appendChild(props([
    ['Status', badge(b.status)], ['App', link('#/apps/' + enc(b.app), b.app)], ['Zone', link('#/zones/' + enc(b.zone), b.zone)],
    ['Platform', b.platform], ['MRENCLAVE', h('code', {}, m.mrenclave)], ['MRSIGNER', h('code', {}, m.mrsigner)],
    ['ISV product ID', String(m.isvprodid)], ['ISV SVN', String(m.isvsvn)], ['Debug', m.debug ? badge('debug') : 'no'],
    ['Image', b.image_ref ? h('code', {}, b.image_ref) : '—'], ['Image digest', b.image_digest ? h('code', {}, b.image_digest) : '—'],
    task ? ['DNS names (app)', namesCell(task)] : null,
    ['Approvals', h('span', {}, approvalsCell(b), ' ', (b.approvals || []).map(a => `${a.user} (${new Date(a.at).toISOString()})`).join(', '))],
    ['Task', b.task_id ? h('code', {}, b.task_id) : '—'], ['Created', h('span', {}, when(b.created_at), ' by ', b.created_by || '—')],
    b.reason ? ['Reason', b.reason] : null,
  ]));
  const actions = h('div', {class: 'toolbar'});
  if (b.status === 'pending' && task) {
    const d = await decideButtons(task);
    if (d) actions.appendChild(d);
  }
  if (can('approve') && (b.status === 'approved' || b.status === 'pending')) {
    actions.appendChild(h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: 'Revoke build ' + b.id + '?', message: 'Its certificates are revoked too.', confirm: 'Revoke build', danger: true, reason: true});
      if (r.ok) act(() => post(`/builds/${enc(b.id)}/revoke`, r.reason ? {reason: r.reason} : {}), 'Build revoked.');
    }}, 'Revoke'));
  }
  if (actions.childNodes.length) root.appendChild(actions);
  root.appendChild(h('h2', {}, 'Certificates'));
  root.appendChild(await certTable({app: b.app}, c => c.build_id === b.id));
  return root;
}

async function tasks() {
  const q = hashQuery();
  const status = q.status ?? 'pending';
  const root = section(status === 'pending' ? 'Tasks: approval inbox' : 'Tasks');
  root.appendChild(filterForm([{name: 'status', label: 'Status', options: ['pending', 'approved', 'denied', '']}], {status},
    v => setHashQuery('#/tasks', {status: v.status || ''})));
  const items = (await page('/tasks', {status: status || undefined, limit: 200})).items;
  root.appendChild(table(items, [
    {title: 'What', cell: t => t.build_id ? link('#/builds/' + enc(t.build_id), t.summary) : t.summary},
    {title: 'Kind', cell: t => t.kind, class: 'hide-narrow'},
    {title: 'App', cell: t => t.app ? link('#/apps/' + enc(t.app), t.app) : link('#/zones/' + enc(t.zone), 'zone ' + t.zone)},
    {title: 'DNS names', cell: namesCell},
    {title: 'Status', cell: t => badge(t.status)},
    {title: 'Approvals', cell: approvalsCell},
    {title: 'Requested', cell: t => h('span', {}, ago(t.created_at), ' by ', t.created_by), class: 'hide-narrow'},
    {title: 'Actions', class: 'actions', cell: t => {
      const span = h('span');
      decideButtons(t).then(d => d && span.appendChild(d));
      return t.status === 'pending' ? span : (t.reason ? `${t.denied_by ? 'denied by ' + t.denied_by + ': ' : ''}${t.reason}` : '—');
    }},
  ], {label: 'Tasks', empty: status === 'pending' ? 'Nothing waiting for a decision.' : 'No tasks.'}));
  every(10000, () => { if (!document.querySelector('dialog')) rerender(); });
  return root;
}

// ------------------------------------------------------------------ nodes and instances

async function nodes(parts) {
  if (parts[0]) return nodeDetail(stripQuery(parts[0]));
  const root = section('Nodes');
  root.appendChild(await pagedTable('/nodes', {}, [
    {title: 'Node', cell: n => link('#/nodes/' + enc(n.id), n.id)},
    {title: 'Zone', cell: n => n.zone},
    {title: 'Platform', cell: n => n.platform},
    {title: 'TCB status', cell: n => badge(n.tcb_status)},
    {title: 'Advisories', cell: n => (n.advisory_ids || []).join(', ') || '—', class: 'hide-narrow'},
    {title: 'Status', cell: n => badge(n.status)},
    {title: 'Last seen', cell: n => ago(n.last_seen)},
  ], {label: 'Nodes', empty: 'No nodes yet. Create a join token on a zone and start vouch-agent with it.'}));
  every(10000, () => rerender());
  return root;
}

async function nodeDetail(id) {
  const n = await get('/nodes/' + enc(id));
  const root = section('Node ' + n.id);
  root.appendChild(props([['Zone', n.zone], ['Platform', n.platform], ['TCB status', badge(n.tcb_status)],
    ['Advisories', (n.advisory_ids || []).join(', ') || 'none'], ['FMSPC', n.fmspc ? h('code', {}, n.fmspc) : '—'],
    ['Status', badge(n.status)], ['Last seen', when(n.last_seen)], ['Certificate valid until', when(n.cert_not_after)],
    ['Provisioned', when(n.created_at)],
    n.info && Object.keys(n.info).length ? ['Agent info', h('code', {}, JSON.stringify(n.info))] : null]));
  if (can('admin') && n.status !== 'deactivated') {
    root.appendChild(h('div', {class: 'toolbar'}, h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: 'Deactivate node ' + n.id + '?', message: 'It can no longer obtain certificates.', confirm: 'Deactivate', danger: true});
      if (r.ok) act(() => post(`/nodes/${enc(n.id)}/deactivate`), 'Node deactivated.');
    }}, 'Deactivate')));
  }
  root.appendChild(h('h2', {}, 'Instances on this node'));
  root.appendChild(instanceTable((await page('/instances', {node: n.id, limit: 1000})).items));
  return root;
}

function instanceTable(items) {
  return table(items, [
    {title: 'Instance', cell: i => h('code', {}, i.id)},
    {title: 'App', cell: i => link('#/apps/' + enc(i.app), i.app)},
    {title: 'Status', cell: i => badge(i.status)},
    {title: 'Node', cell: i => i.node ? link('#/nodes/' + enc(i.node), i.node) : '—'},
    {title: 'Build', cell: i => i.build_id ? link('#/builds/' + enc(i.build_id), i.build_id) : '—', class: 'hide-narrow'},
    {title: 'Certificate', cell: i => i.serial ? link('#/certificates/' + enc(i.serial), short(i.serial, 10).textContent) : '—', class: 'hide-narrow'},
    {title: 'Last heartbeat', cell: i => ago(i.last_heartbeat)},
  ], {label: 'Instances', empty: 'No instances yet. They appear when workloads obtain certificates through an agent.'});
}

async function instances() {
  const root = section('Instances');
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'app', label: 'App'},
    {name: 'status', label: 'Status', options: ['', 'running', 'unresponsive', 'stopped']}], q, v => setHashQuery('#/instances', v)));
  const box = h('div', {});
  const load = async () => clear(box).appendChild(instanceTable((await page('/instances', {app: q.app, status: q.status, limit: 1000})).items));
  await load();
  root.appendChild(box);
  every(5000, () => load().catch(() => {}));
  return root;
}

// ------------------------------------------------------------------ certificates

function certTable(params, keep = () => true) {
  return page('/certificates', {...params, limit: 1000}).then(r => table(r.items.filter(keep), [
    {title: 'Serial', cell: c => link('#/certificates/' + enc(c.serial), short(c.serial, 16).textContent)},
    {title: 'Subject', cell: c => c.subject, class: 'hide-narrow'},
    {title: 'App', cell: c => c.app || '—'},
    {title: 'Status', cell: c => badge(c.status)},
    {title: 'Valid until', cell: c => when(c.not_after)},
  ], {label: 'Certificates', empty: 'No certificates.'}));
}

async function certificates(parts) {
  if (parts[0]) return certDetail(stripQuery(parts[0]));
  const root = section('Certificates');
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'app', label: 'App'}, {name: 'zone', label: 'Zone'},
    {name: 'status', label: 'Status', options: ['', 'valid', 'revoked', 'expired']}], q, v => setHashQuery('#/certificates', v)));
  root.appendChild(await certTable({app: q.app, zone: q.zone, status: q.status}));
  return root;
}

async function certDetail(serial) {
  const c = await get('/certificates/' + enc(serial));
  const root = section('Certificate');
  root.appendChild(props([['Serial', h('code', {}, c.serial)], ['Status', badge(c.status)], ['Subject', c.subject],
    ['SANs', (c.sans || []).join(', ') || '—'], ['Valid', h('span', {}, when(c.not_before), ' – ', when(c.not_after))],
    ['Zone', c.zone], ['App', c.app || '—'], ['Kind', c.kind || '—'],
    ['Build', c.build_id ? link('#/builds/' + enc(c.build_id), c.build_id) : '—'], ['Issued to', c.issued_to || '—'],
    c.node_id ? ['Node', link('#/nodes/' + enc(c.node_id), c.node_id)] : null,
    c.instance_id ? ['Instance', h('code', {}, c.instance_id)] : null,
    c.revoked_at ? ['Revoked', h('span', {}, when(c.revoked_at), ' ', c.revocation_reason || '')] : null]));
  if (can('admin') && c.status === 'valid') {
    root.appendChild(h('div', {class: 'toolbar'}, h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: 'Revoke this certificate?', message: 'It is listed in the zone CRL at once.', confirm: 'Revoke certificate', danger: true, reason: true});
      if (r.ok) act(() => post(`/certificates/${enc(c.serial)}/revoke`, r.reason ? {reason: r.reason} : {}), 'Certificate revoked.');
    }}, 'Revoke')));
  }
  if (c.pem) {
    root.appendChild(h('h2', {}, 'PEM'));
    root.appendChild(h('pre', {class: 'block'}, c.pem));
    root.appendChild(copyButton(c.pem, 'Copy PEM'));
  }
  return root;
}

// ------------------------------------------------------------------ users and API keys

const kRoles = ['viewer', 'member', 'approver', 'admin'];

async function users() {
  const root = section('Users');
  if (!can('admin')) { root.appendChild(h('p', {class: 'muted'}, 'Only admins manage users.')); return root; }
  const name = h('input', {name: 'name', required: true, pattern: kNamePattern});
  const role = h('select', {name: 'role'}, kRoles.map(r => h('option', {value: r}, r)));
  const pw = h('input', {name: 'password', type: 'password', required: true, minlength: '8', autocomplete: 'new-password'});
  const form = h('form', {class: 'inline', 'aria-label': 'Create user'}, field('Name', name), field('Role', role), field('Password', pw),
    h('button', {type: 'submit'}, 'Create user'));
  form.addEventListener('submit', e => { e.preventDefault(); act(() => post('/users', {name: name.value.trim(), role: role.value, password: pw.value}), 'User created.'); });
  root.appendChild(form);
  root.appendChild(await pagedTable('/users', {}, [
    {title: 'Name', cell: u => u.name},
    {title: 'Role', cell: u => {
      const s = h('select', {'aria-label': 'Role of ' + u.name, disabled: u.name === session.user}, kRoles.map(r => h('option', {value: r, selected: r === u.role}, r)));
      s.addEventListener('change', () => act(() => api('PATCH', '/users/' + enc(u.name), {role: s.value}), 'Role changed.'));
      return s;
    }},
    {title: 'Status', cell: u => badge(u.disabled ? 'disabled' : 'active')},
    {title: 'Created', cell: u => when(u.created_at), class: 'hide-narrow'},
    {title: 'Actions', class: 'actions', cell: u => u.name === session.user ? '—' : h('span', {},
      h('button', {type: 'button', class: 'secondary', onclick: () => act(() => api('PATCH', '/users/' + enc(u.name), {disabled: !u.disabled}),
        u.disabled ? 'User enabled.' : 'User disabled.')}, u.disabled ? 'Enable' : 'Disable'), ' ',
      h('button', {type: 'button', class: 'danger', onclick: async () => {
        const r = await ask({title: `Delete user ${u.name}?`, confirm: 'Delete', danger: true});
        if (r.ok) act(() => api('DELETE', '/users/' + enc(u.name)), 'User deleted.');
      }}, 'Delete'))},
  ], {label: 'Users'}));
  return root;
}

async function apikeys() {
  const root = section('API keys');
  root.appendChild(h('p', {class: 'muted'}, can('admin') ? 'All API keys (admins see every user\'s).' : 'Your API keys. A key acts with your role.'));
  const out = h('div', {});
  if (session.role) {
    const name = h('input', {name: 'name', required: true, pattern: kNamePattern});
    const days = h('input', {name: 'expires_in_days', type: 'number', min: '1', max: '365', placeholder: '90'});
    const form = h('form', {class: 'inline', 'aria-label': 'Create API key'}, field('Name', name), field('Expires in days', days),
      h('button', {type: 'submit'}, 'Create API key'));
    form.addEventListener('submit', async e => {
      e.preventDefault();
      try {
        const k = await post('/apikeys', days.value ? {name: name.value.trim(), expires_in_days: Number(days.value)} : {name: name.value.trim()});
        await rerender();
        document.getElementById('main').querySelector('section').prepend(h('div', {class: 'secret', role: 'status'},
          h('p', {}, h('strong', {}, `API key ${k.name} (shown once): `), h('code', {}, k.key), ' ', copyButton(k.key, 'Copy key'))));
      } catch (ex) { alertError(ex); }
    });
    root.append(form, out);
  }
  root.appendChild(await pagedTable('/apikeys', {}, [
    {title: 'Name', cell: k => k.name}, {title: 'User', cell: k => k.user}, {title: 'Role', cell: k => k.role || '—'},
    {title: 'Created', cell: k => when(k.created_at), class: 'hide-narrow'}, {title: 'Expires', cell: k => k.expires_at ? when(k.expires_at) : 'never'},
    {title: 'Actions', class: 'actions', cell: k => h('button', {type: 'button', class: 'danger', onclick: async () => {
      const r = await ask({title: `Delete API key ${k.name}?`, confirm: 'Delete', danger: true});
      if (r.ok) act(() => api('DELETE', '/apikeys/' + enc(k.id)), 'API key deleted.');
    }}, 'Delete')},
  ], {label: 'API keys', empty: 'No API keys.'}));
  return root;
}

// ------------------------------------------------------------------ registries (issue 15)

// Registries whose credentials vouchd keeps for server-side conversion. Admins manage them;
// members and approvers read them; the password or token is write-only (never shown again).
async function registries() {
  const root = section('Registries');
  if (!can('write') && !can('approve')) {
    root.appendChild(h('p', {class: 'muted'}, 'Only members, approvers and admins see registries.'));
    return root;
  }
  if (can('admin')) {
    const name = h('input', {name: 'name', required: true, pattern: kNamePattern});
    const url = h('input', {name: 'url', required: true, placeholder: 'https scheme, host and port', title: 'https, or http only with the insecure box'});
    const user = h('input', {name: 'username', autocomplete: 'off'});
    const kind = h('select', {name: 'secret_kind'}, ['password', 'token'].map(k => h('option', {value: k}, k)));
    const secret = h('input', {name: 'secret', type: 'password', autocomplete: 'new-password'});
    const insecure = h('input', {name: 'insecure', type: 'checkbox'});
    const ca = h('textarea', {name: 'ca_pem', rows: '3', placeholder: '-----BEGIN CERTIFICATE-----'});
    const form = h('form', {class: 'inline', 'aria-label': 'Create registry'}, field('Name', name), field('URL', url),
      field('User', user), field('Secret', kind), field('Password or token', secret), field('Plain HTTP (insecure)', insecure),
      field('CA bundle (PEM)', ca), h('button', {type: 'submit'}, 'Create registry'));
    form.addEventListener('submit', e => {
      e.preventDefault();
      const body = {name: name.value.trim(), url: url.value.trim()};
      if (user.value.trim()) body.username = user.value.trim();
      if (secret.value) body[kind.value] = secret.value;
      if (insecure.checked) body.insecure = true;
      if (ca.value.trim()) body.ca_pem = ca.value;
      secret.value = '';
      act(() => post('/registries', body), 'Registry created.');
    });
    root.appendChild(form);
  }
  root.appendChild(await pagedTable('/registries', {}, [
    {title: 'Name', cell: r => r.name},
    {title: 'URL', cell: r => h('code', {}, r.url)},
    {title: 'User', cell: r => r.username || '—'},
    {title: 'Secret', cell: r => r.has_secret ? badge(r.secret_kind) : 'anonymous'},
    {title: 'CA', cell: r => r.has_ca ? 'own bundle' : 'system', class: 'hide-narrow'},
    {title: 'Transport', cell: r => r.insecure ? h('span', {class: 'badge warn'}, 'plain http') : 'https'},
    {title: 'Updated', cell: r => when(r.updated_at), class: 'hide-narrow'},
    can('admin') ? {title: 'Actions', class: 'actions', cell: r => h('button', {type: 'button', class: 'danger', onclick: async () => {
      const q = await ask({title: `Delete registry ${r.name}?`, message: 'Refused while an app uses it as a default registry.',
        confirm: 'Delete', danger: true});
      if (q.ok) act(() => api('DELETE', '/registries/' + enc(r.name)), 'Registry deleted.');
    }}, 'Delete')} : null,
  ].filter(Boolean), {label: 'Registries', empty: 'No registries. Conversions then pull and push anonymously.'}));
  return root;
}

// ------------------------------------------------------------------ audit

async function audit() {
  const root = section('Audit log');
  const v = await get('/audit/verify');
  root.appendChild(h('p', {class: v.ok ? 'notice' : 'error', role: 'status', id: 'audit-verify'},
    v.ok ? `Hash chain verified: ${v.entries} entries, intact.`
         : `Hash chain BROKEN at entry ${v.first_bad_seq ?? '?'}: ${v.message || 'mismatch'}`));
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'actor', label: 'Actor', placeholder: 'user:alice'}, {name: 'action', label: 'Action', placeholder: 'build.create'}],
    q, f => setHashQuery('#/audit', f)));
  root.appendChild(await pagedTable('/audit', {actor: q.actor, action: q.action}, [
    {title: '#', cell: e => String(e.seq)}, {title: 'When', cell: e => when(e.at)}, {title: 'Actor', cell: e => e.actor},
    {title: 'Action', cell: e => h('code', {}, e.action)}, {title: 'Target', cell: e => e.target || '—', class: 'hide-narrow'},
    {title: 'Outcome', cell: e => badge(e.outcome)},
    {title: 'Detail', cell: e => e.detail && Object.keys(e.detail).length ? h('code', {}, JSON.stringify(e.detail)) : '—', class: 'hide-narrow'},
  ], {label: 'Audit log', empty: 'No entries match.', limit: 100}));
  return root;
}

// ------------------------------------------------------------------ collateral

const kCollateralKinds = ['', 'sgx_tcb_info', 'tdx_tcb_info', 'qe_identity', 'td_qe_identity', 'pck_crl', 'root_ca_crl',
  'amd_vcek', 'amd_cert_chain', 'amd_crl'];

// The key as a person reads it: an FMSPC, a CA type, an AMD product, or product / chip / TCB for a VCEK.
function collateralKey(c) {
  const parts = (c.key || '').split('/');
  if (parts.length === 3) return h('span', {title: c.key}, h('code', {}, parts[0] + ' / ' + parts[1].slice(0, 16) + '… / ' + parts[2]));
  return h('code', {}, c.key || '—');
}

// What vouchd holds of the vendors' collateral (docs/collateral.md): fetched from Intel PCS/PCCS and
// AMD KDS, or imported; admins can fetch everything again now.
async function collateral() {
  const root = section('Collateral');
  root.appendChild(h('p', {class: 'muted'}, 'Intel PCS/PCCS and AMD KDS collateral that vouchd verified and keeps in its store for every ' +
    'cluster member; refreshed before its next update. Air-gapped sites use vouch collateral import / export.'));
  if (can('admin')) {
    root.appendChild(h('div', {class: 'toolbar'}, h('button', {type: 'button', onclick: () => act(async () => {
      const r = await post('/collateral/refresh', {});
      say(`Refresh: ${r.stored} stored, ${r.unchanged} unchanged, ${r.refused} refused, ${r.failed} failed.`);
    })}, 'Refresh all now')));
  }
  const q = hashQuery();
  root.appendChild(filterForm([{name: 'kind', label: 'Kind', options: kCollateralKinds},
    {name: 'key', label: 'FMSPC or chip', placeholder: '00806f050000'}], q, v => setHashQuery('#/collateral', v)));
  try {
    root.appendChild(await pagedTable('/collateral', {kind: q.kind, key: q.key}, [
      {title: 'Kind', cell: c => h('code', {}, c.kind)},
      {title: 'FMSPC or chip', cell: collateralKey},
      {title: 'Issued', cell: c => when(c.issue_date)},
      {title: 'Next update', cell: c => when(c.next_update)},
      {title: 'Source', cell: c => h('span', {title: c.origin || ''}, c.source)},
      {title: 'State', cell: c => h('span', {}, badge(c.state), c.sim ? [' ', h('span', {class: 'badge warn', title: 'chains to a sim root: trusted only where sim is allowed'}, 'INSECURE sim')] : null)},
      {title: 'Evaluation', cell: c => c.tcb_evaluation_data_number ?? '—', class: 'hide-narrow'},
    ], {label: 'Collateral', empty: 'No collateral yet. It is fetched when evidence first needs it, or imported with vouch collateral import.'}));
  } catch (e) {
    if (e.code !== 'collateral_disabled') throw e;
    root.appendChild(h('p', {class: 'notice', role: 'status'}, 'The collateral service is not enabled on this manager (vouchd serve --pccs-url / --kds-url).'));
  }
  return root;
}

export const routes = {
  '': dashboard, zones, apps, builds, tasks, nodes, instances, certificates, users, apikeys, audit, collateral,
  conversions, registries, backups,
};

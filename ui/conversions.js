// Conversion as a service (issue 15) in the console: the "Convert image" form of an app, the job
// page with its live progress bar and log, and the list of conversions of every app. Uses only the
// public REST API (/api/v1/conversions, /registries, /apps, /builds, /tasks). No side effects on
// import; views.js registers the route.
import {get, post, page, all, enc} from './api.js';
import {h, clear, table, props, when, ago, link, ask, field} from './dom.js';
import {can, currentGeneration, say, session} from './shell.js';

export const kStates = ['queued', 'pulling', 'converting', 'pushing', 'done', 'failed', 'cancelled'];
const kTerminal = new Set(['done', 'failed', 'cancelled']);
const kTone = {done: 'ok', failed: 'bad', cancelled: 'neutral', queued: 'neutral', pulling: 'warn', converting: 'warn', pushing: 'warn'};
const kPhaseText = {queued: 'Waiting for a worker', pulling: 'Pulling the input image', converting: 'Converting',
  pushing: 'Pushing the output image', done: 'Done', failed: 'Failed', cancelled: 'Cancelled'};
const kKeyTypes = ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-3072'];
export const kPollMs = 500;

function stateBadge(state) {
  return h('span', {class: 'badge ' + (kTone[state] || 'neutral'), dataset: {state: state || ''}}, state || '—');
}

function hashQuery() {
  const i = location.hash.indexOf('?');
  return Object.fromEntries(new URLSearchParams(i < 0 ? '' : location.hash.slice(i + 1)));
}

function alertError(e) {
  const main = document.getElementById('main');
  main.querySelector('.action-error')?.remove();
  main.prepend(h('p', {class: 'error action-error', role: 'alert'}, e.message));
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = Number(n);
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return (u ? v.toFixed(v < 10 ? 1 : 0) : String(v)) + ' ' + units[u];
}

// How far a job is, 0..100, or null when it cannot be told (queued, nothing known yet). Bytes when
// the phase knows its total, else layers.
export function percent(job) {
  if (job.state === 'done') return 100;
  const p = job.progress || {};
  if (p.bytes_total > 0) return Math.min(100, Math.floor((100 * (p.bytes_done || 0)) / p.bytes_total));
  if (p.layers_total > 0) return Math.min(100, Math.floor((100 * (p.layers_done || 0)) / p.layers_total));
  return null;
}

// Re-runs `fn` every `ms` while the view that started it is shown and fn answers true; waits while
// the tab is hidden (resumes when it is visible again). An error counts as "keep going".
function poll(ms, fn) {
  const mine = currentGeneration();
  const tick = async () => {
    if (mine !== currentGeneration()) return;
    if (document.visibilityState !== 'visible') {
      document.addEventListener('visibilitychange', tick, {once: true});
      return;
    }
    let more = true;
    try { more = await fn(); } catch { more = true; }
    if (more && mine === currentGeneration()) setTimeout(tick, ms);
  };
  setTimeout(tick, ms);
}

// ------------------------------------------------------------------ validation (mirrors the server)

// The rules of libs/convert/options.cc ValidateSettings/SettingsFromJson, so the browser refuses
// what the server would and nothing else.
const kSize = /^[0-9]{1,19}[KMGkmg]?$/;
const kPlatform = /^[^/]+\/[^/]+(\/[^/]*)?$/;
const kMaxThreads = 1 << 20;
const absolute = p => p.startsWith('/');
const normalisedDir = d => d.startsWith('/') && !d.includes('/../') && !d.includes('/./');

// An image reference as the server takes it (libs/api/manager_conversions.cc CheckImageRef and
// libs/oci/image.cc ImageLocation::Parse): 1 to 512 characters, a registry reference
// ([docker://][host[:port]/]repo[:tag][@sha256:hex]), not a local oci:/docker-archive: path.
// Returns an error text or ''.
export function checkImage(text) {
  if (!text) return 'is required';
  if (text.length > 512) return 'is longer than 512 characters';
  if (text.startsWith('oci:') || text.startsWith('docker-archive:')) {
    return 'must name a registry image: the server does not read or write local paths (use vouch convert)';
  }
  let ref = text.startsWith('docker://') ? text.slice(9) : text;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(ref)) return 'is a reference like registry.example.com/team/app:1, without a scheme';
  const at = ref.indexOf('@');
  if (at >= 0) {
    if (!/^sha256:[0-9a-f]{64}$/.test(ref.slice(at + 1))) return 'has a digest that is not sha256:<64 hex>';
    ref = ref.slice(0, at);
  }
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost')) ref = ref.slice(slash + 1);
  const colon = ref.lastIndexOf(':');
  let tag = '';
  if (colon >= 0 && colon > ref.lastIndexOf('/')) { tag = ref.slice(colon + 1); ref = ref.slice(0, colon); }
  if (!ref || ref.length > 255) return 'has an empty or too long repository name';
  if (!/^[a-z0-9._\/-]+$/.test(ref)) return 'has a repository name with other characters than a-z 0-9 . _ - /';
  if (ref.startsWith('/') || ref.endsWith('/') || ref.includes('//') || ref.includes('..')) return 'has a malformed repository path';
  if (tag.length > 128) return 'has a tag longer than 128 characters';
  if (!/^[A-Za-z0-9._-]*$/.test(tag)) return 'has a tag with other characters than A-Z a-z 0-9 . _ -';
  return '';
}

// A JSON array of strings, or one string. Returns {value} or {error}.
function argList(text) {
  if (!text) return {value: undefined};
  if (!text.startsWith('[')) return {value: [text]};
  try {
    const v = JSON.parse(text);
    if (Array.isArray(v) && v.every(s => typeof s === 'string')) return {value: v};
  } catch { /* below */ }
  return {error: 'is not a JSON array of strings'};
}

const lines = text => text.split('\n').map(s => s.trim()).filter(Boolean);
const words = text => text.split(/[\s,]+/).filter(Boolean);

function intIn(text, lo, hi) {
  if (!/^[0-9]+$/.test(text)) return {error: `is a whole number from ${lo} to ${hi}`};
  const n = Number(text);
  if (n < lo || n > hi) return {error: `is a whole number from ${lo} to ${hi}`};
  return {value: n};
}

// Reads the form's fields into the POST body; returns {body, errors: [[fieldEl, message]]}.
export function readConversionForm(f) {
  const errors = [];
  const bad = (el, label, msg) => errors.push([el, `${label} ${msg}`]);
  const body = {app: f.app.value, input_image: f.input.value.trim(), output_image: f.output.value.trim(), options: {}};
  const o = body.options;
  if (!body.app) bad(f.app, 'App', 'is required');
  let e;
  if ((e = checkImage(body.input_image))) bad(f.input, 'Input image', e);
  if ((e = checkImage(body.output_image))) bad(f.output, 'Output image', e);
  if (f.inputRegistry.value) body.input_registry = f.inputRegistry.value;
  if (f.outputRegistry.value) body.output_registry = f.outputRegistry.value;
  for (const [key, el, label] of [['entrypoint', f.entrypoint, 'Entrypoint'], ['args', f.args, 'Arguments']]) {
    const r = argList(el.value.trim());
    if (r.error) bad(el, label, r.error); else if (r.value) o[key] = r.value;
  }
  const env = lines(f.env.value);
  const wrongEnv = env.find(s => !s.includes('=') || s.startsWith('='));
  if (wrongEnv !== undefined) bad(f.env, 'Environment:', `"${wrongEnv}" is not NAME=value`);
  else if (env.length) o.env = env;
  const mutableEnv = words(f.mutableEnv.value);
  if (mutableEnv.length) o.mutable_env = mutableEnv;
  for (const [key, el, label, lo, hi] of [['isvprodid', f.isvprodid, 'ISV product ID', 0, 65535], ['isvsvn', f.isvsvn, 'ISV SVN', 0, 65535],
    ['threads', f.threads, 'Threads', 0, kMaxThreads], ['heartbeat_interval', f.heartbeatInterval, 'Heartbeat interval', 1, 86400]]) {
    const t = el.value.trim();
    if (!t) continue;
    const r = intIn(t, lo, hi);
    if (r.error) bad(el, label, r.error); else o[key] = r.value;
  }
  for (const [key, el, label, positive] of [['mem_size', f.memSize, 'Memory size', false], ['max_layer_size', f.maxLayer, 'Largest layer', true],
    ['max_content_size', f.maxContent, 'Largest content', true]]) {
    const t = el.value.trim();
    if (!t) continue;
    if (!kSize.test(t)) bad(el, label, 'is a size like 2048M (K, M or G)');
    else if (positive && /^0+[KMGkmg]?$/.test(t)) bad(el, label, 'must be more than 0');
    else o[key] = t;
  }
  if (f.debug.checked) o.debug = true;
  const dns = words(f.certDns.value);
  if (dns.length) o.cert_dns = dns;
  if (f.certSubject.value.trim()) o.cert_subject = f.certSubject.value.trim();
  if (f.certKeyType.value !== 'ec-p256') o.cert_key_type = f.certKeyType.value;
  for (const [key, el, label] of [['key_path', f.keyPath, 'Key path'], ['cert_path', f.certPath, 'Certificate path'],
    ['ca_path', f.caPath, 'CA path'], ['agent_socket', f.agentSocket, 'Agent socket']]) {
    const t = el.value.trim();
    if (!t || t === el.defaultValue) continue;
    if (!absolute(t)) bad(el, label, 'must be an absolute path');
    else o[key] = t;
  }
  for (const [key, el, label] of [['ro_dirs', f.roDirs, 'Protected directories'], ['rw_dirs', f.rwDirs, 'Unprotected paths']]) {
    const list = words(el.value);
    const wrong = list.find(d => !normalisedDir(d));
    if (wrong !== undefined) bad(el, label, `entry "${wrong}" must be an absolute, normalised path`);
    else if (list.length) o[key] = list;
  }
  if (f.noCertificate.checked) o.no_certificate = true;
  if (f.noHeartbeat.checked) o.no_heartbeat = true;
  if (f.allowArgs.checked) o.allow_cmdline_args = true;
  const platform = f.platform.value.trim();
  if (platform && platform !== 'linux/amd64') {
    if (!kPlatform.test(platform)) bad(f.platform, 'Platform', 'is os/arch[/variant], e.g. linux/arm64');
    else o.platform = platform;
  }
  return {body, errors};
}

// ------------------------------------------------------------------ the form

function registrySelect(name, label, registries, selected) {
  const el = h('select', {name},
    h('option', {value: ''}, 'Automatic (the app\'s default, else by the image\'s host; anonymous if none)'),
    registries.map(r => h('option', {value: r.name, selected: r.name === selected}, `${r.name} (${r.url})`)));
  return el;
}

// Sets a select to `name` if it offers it, else to "Automatic".
function pick(select, name) {
  select.value = [...select.options].some(o => o.value === name) ? name : '';
}

async function newConversion() {
  const q = hashQuery();
  const root = h('section', {}, h('h1', {}, 'Convert image'));
  if (!can('write')) {
    root.appendChild(h('p', {class: 'muted'}, 'Only members and admins start conversions.'));
    return root;
  }
  const [apps, registries] = await Promise.all([
    all('/apps'),
    all('/registries').catch(() => []),
  ]);
  if (!apps.length) {
    root.appendChild(h('p', {class: 'muted'}, 'No apps yet: create an app first.'));
    return root;
  }
  const appName = apps.some(a => a.name === q.app) ? q.app : apps[0].name;
  root.appendChild(h('p', {class: 'muted'}, 'vouchd pulls the input image with the stored registry credentials, converts it ' +
    '(vouch-rte and a manifest signed with the app\'s key) and pushes the output image; the new build then waits for approval.'));
  const f = {};
  f.app = h('select', {name: 'app', required: true}, apps.map(a => h('option', {value: a.name, selected: a.name === appName}, a.name)));
  f.input = h('input', {name: 'input_image', required: true, autocapitalize: 'none', spellcheck: 'false', placeholder: 'registry.example.com/team/app:1.0'});
  f.output = h('input', {name: 'output_image', required: true, autocapitalize: 'none', spellcheck: 'false', placeholder: 'registry.example.com/team/app:1.0-tee'});
  f.inputRegistry = registrySelect('input_registry', 'Input registry', registries, null);
  f.outputRegistry = registrySelect('output_registry', 'Output registry', registries, null);
  f.entrypoint = h('input', {name: 'entrypoint', placeholder: 'the image\'s; a path or ["/bin/app","--flag"]'});
  f.args = h('input', {name: 'args', placeholder: 'the image\'s Cmd; a string or a JSON array'});
  f.env = h('textarea', {name: 'env', rows: '3', placeholder: 'NAME=value, one a line'});
  f.isvprodid = h('input', {name: 'isvprodid', type: 'number', min: '0', max: '65535', placeholder: '0'});
  f.isvsvn = h('input', {name: 'isvsvn', type: 'number', min: '0', max: '65535', placeholder: '0'});
  f.debug = h('input', {type: 'checkbox', name: 'debug'});
  f.certDns = h('input', {name: 'cert_dns', placeholder: 'web.example.com api.example.com'});
  // Advanced, folded.
  f.mutableEnv = h('input', {name: 'mutable_env', placeholder: 'LOG_LEVEL PORT'});
  f.allowArgs = h('input', {type: 'checkbox', name: 'allow_cmdline_args'});
  f.memSize = h('input', {name: 'mem_size', placeholder: '2048M'});
  f.threads = h('input', {name: 'threads', type: 'number', min: '0', placeholder: '0'});
  f.certSubject = h('input', {name: 'cert_subject', placeholder: 'CN=web'});
  f.certKeyType = h('select', {name: 'cert_key_type'}, kKeyTypes.map(t => h('option', {value: t}, t)));
  f.keyPath = h('input', {name: 'key_path', value: '/run/vouch/certs/key.pem'});
  f.certPath = h('input', {name: 'cert_path', value: '/run/vouch/certs/cert.pem'});
  f.caPath = h('input', {name: 'ca_path', value: '/run/vouch/certs/ca.pem'});
  f.noCertificate = h('input', {type: 'checkbox', name: 'no_certificate'});
  f.noHeartbeat = h('input', {type: 'checkbox', name: 'no_heartbeat'});
  f.heartbeatInterval = h('input', {name: 'heartbeat_interval', type: 'number', min: '1', max: '86400', placeholder: '30'});
  f.roDirs = h('input', {name: 'ro_dirs', placeholder: '/ (everything)'});
  f.rwDirs = h('input', {name: 'rw_dirs', placeholder: '/tmp /run /etc/hosts …'});
  f.agentSocket = h('input', {name: 'agent_socket', value: '/run/vouch/agent.sock'});
  f.platform = h('input', {name: 'platform', value: 'linux/amd64'});
  f.maxLayer = h('input', {name: 'max_layer_size', placeholder: '16G'});
  f.maxContent = h('input', {name: 'max_content_size', placeholder: '64G'});

  const errors = h('div', {id: 'convert-errors', role: 'alert'});
  const submit = h('button', {type: 'submit'}, 'Start conversion');
  const appInfo = h('p', {class: 'muted', id: 'convert-app-info'});
  // The app's defaults: its registries and its approved DNS names.
  async function loadApp() {
    const a = await get('/apps/' + enc(f.app.value));
    pick(f.inputRegistry, a.input_registry);
    pick(f.outputRegistry, a.output_registry);
    if (!f.certDns.dataset.touched) f.certDns.value = (a.domains || []).join(' ');
    appInfo.textContent = `App ${a.name}: default input registry ${a.input_registry || 'none'}, default output registry ` +
      `${a.output_registry || 'none'}; signs with MRSIGNER ${a.mrsigner ? a.mrsigner.slice(0, 16) + '…' : '(made on first conversion)'}.`;
  }
  f.certDns.addEventListener('input', () => { f.certDns.dataset.touched = '1'; });
  f.app.addEventListener('change', () => loadApp().catch(alertError));
  await loadApp();

  const check = (el, text) => h('label', {class: 'check'}, el, text);
  const form = h('form', {class: 'stack convert', 'aria-label': 'Convert image', novalidate: true},
    errors,
    field('App', f.app), appInfo,
    h('fieldset', {}, h('legend', {}, 'Input'), field('Input image', f.input), field('Input registry', f.inputRegistry)),
    h('fieldset', {}, h('legend', {}, 'Output'), field('Output image', f.output), field('Output registry', f.outputRegistry)),
    h('fieldset', {}, h('legend', {}, 'Options'),
      field('Entrypoint', f.entrypoint), field('Arguments', f.args), field('Environment (NAME=value, one a line)', f.env),
      h('div', {class: 'pair'}, field('ISV product ID', f.isvprodid), field('ISV SVN', f.isvsvn)),
      check(f.debug, 'Debug enclave (never for production)'),
      field('Certificate DNS names (space-separated)', f.certDns)),
    h('details', {class: 'advanced'}, h('summary', {}, 'Advanced options'),
      h('div', {class: 'stack'},
        field('Run-time settable variables (space-separated)', f.mutableEnv), check(f.allowArgs, 'Let run-time arguments replace the manifest\'s'),
        h('div', {class: 'pair'}, field('Memory size', f.memSize), field('Threads', f.threads)),
        field('Certificate subject', f.certSubject), field('Certificate key type', f.certKeyType),
        field('Key path', f.keyPath), field('Certificate path', f.certPath), field('CA path', f.caPath),
        check(f.noCertificate, 'Request no certificate'), check(f.noHeartbeat, 'Send no heartbeats'),
        field('Heartbeat interval (seconds)', f.heartbeatInterval),
        field('Protected directories (space-separated)', f.roDirs), field('Unprotected paths (space-separated)', f.rwDirs),
        field('Agent socket', f.agentSocket), field('Platform', f.platform),
        h('div', {class: 'pair'}, field('Largest layer', f.maxLayer), field('Largest content', f.maxContent)))),
    h('div', {}, submit));

  const showErrors = (list, heading) => {
    for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    clear(errors);
    if (!list.length) return;
    for (const [el] of list) if (el) el.setAttribute('aria-invalid', 'true');
    errors.appendChild(h('div', {class: 'error'}, h('p', {}, h('strong', {}, heading)),
      h('ul', {}, list.map(([, m]) => h('li', {}, m)))));
    const first = list.find(([el]) => el)?.[0];
    if (first) {
      if (first.closest('details')) first.closest('details').open = true;
      first.focus();
    }
  };
  form.addEventListener('submit', async e => {
    e.preventDefault();
    const {body, errors: problems} = readConversionForm(f);
    if (problems.length) return showErrors(problems, 'Please correct:');
    showErrors([]);
    submit.disabled = true;
    try {
      const job = await post('/conversions', body);
      say(`Conversion ${job.id} started.`);
      location.hash = '#/conversions/' + enc(job.id);
    } catch (ex) {
      showErrors([[null, ex.code ? `${ex.message} (${ex.code})` : ex.message]], 'The server refused the conversion:');
      errors.scrollIntoView({block: 'nearest'});
    } finally {
      submit.disabled = false;
    }
  });
  root.appendChild(form);
  return root;
}

// ------------------------------------------------------------------ the job page

const kSteps = {pulling: 1, converting: 2, pushing: 3};

function progressText(job) {
  if (job.state === 'done') return 'Done (100%)';
  if (job.state === 'failed' || job.state === 'cancelled') {
    const at = job.progress?.phase && job.progress.phase !== job.state ? ` while ${job.progress.phase}` : '';
    return kPhaseText[job.state] + at;
  }
  const p = job.progress || {};
  const parts = [];
  if (p.layers_total) parts.push(`layer ${p.layers_done || 0} of ${p.layers_total}`);
  if (p.bytes_total) parts.push(`${bytes(p.bytes_done || 0)} of ${bytes(p.bytes_total)}`);
  else if (p.bytes_done) parts.push(bytes(p.bytes_done));
  const pc = percent(job);
  const step = kSteps[job.state] ? `Step ${kSteps[job.state]} of 3, ` : '';
  return step + (kPhaseText[job.state] || job.state).toLowerCase() + (parts.length ? ': ' + parts.join(', ') : '') + (pc !== null ? ` (${pc}%)` : '');
}

async function conversionDetail(id) {
  let job = await get('/conversions/' + enc(id));
  const root = h('section', {class: 'conversion'}, h('h1', {}, 'Conversion ' + job.id));
  const info = h('div', {});
  const bar = h('progress', {id: 'conversion-progress', max: '100', 'aria-label': 'Conversion progress'});
  // Announced to screen readers when the phase or layer changes, not on every byte.
  const phase = h('p', {id: 'conversion-phase', role: 'status', 'aria-live': 'polite'});
  const detail = h('p', {class: 'muted', id: 'conversion-bytes'});
  const toolbar = h('div', {class: 'toolbar'});
  const outcome = h('div', {id: 'conversion-outcome'});
  const log = h('pre', {class: 'block log', id: 'conversion-log', tabindex: '0', 'aria-label': 'Conversion log'});
  root.append(info,
    h('h2', {}, 'Progress'),
    h('div', {class: 'progress-box'}, bar, phase, detail),
    toolbar, outcome, h('h2', {}, 'Log'), log);

  let lastPhase = '';
  let cancelling = false;
  let shownOutcome = '';
  // Parts are rebuilt only when what they show changed, so focus, selection and scroll survive a poll.
  const changed = (() => {
    const last = {};
    return (part, value) => {
      const k = JSON.stringify(value);
      if (last[part] === k) return false;
      last[part] = k;
      return true;
    };
  })();
  function update() {
    const {progress: _p, log: _l, updated_at: _u, ...shown} = job;
    if (changed('info', shown)) clear(info).appendChild(props([
      ['State', stateBadge(job.state)],
      ['App', link('#/apps/' + enc(job.app_name), job.app_name)],
      ['Input', h('span', {}, h('code', {}, job.input_image), job.input_registry ? ` via registry ${job.input_registry}` : '')],
      ['Output', h('span', {}, h('code', {}, job.output_image), job.output_registry ? ` via registry ${job.output_registry}` : '')],
      ['Options', optionsText(job.options)],
      ['Created', h('span', {}, when(job.created_at), ' by ', job.created_by || '—')],
      ['Started', when(job.started_at)], ['Finished', when(job.finished_at)],
      job.attempts > 1 ? ['Attempts', String(job.attempts)] : null,
    ]));
    const pc = percent(job);
    if (pc === null) bar.removeAttribute('value'); else bar.value = pc;
    bar.dataset.state = job.state;
    bar.setAttribute('aria-valuetext', progressText(job));
    const p = job.progress || {};
    const announce = kTerminal.has(job.state) ? kPhaseText[job.state]
      : `${kPhaseText[job.state] || job.state}${p.layers_total ? ` (layer ${p.layers_done || 0} of ${p.layers_total})` : ''}`;
    if (announce !== lastPhase) { phase.textContent = announce; lastPhase = announce; }
    detail.textContent = progressText(job);
    if (changed('log', job.log)) {
      const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 20;
      log.textContent = (job.log || []).join('\n') || '(no log yet)';
      if (atBottom) log.scrollTop = log.scrollHeight;
    }
    cancelling = cancelling || !!job.cancel_requested;
    if (changed('toolbar', [kTerminal.has(job.state), cancelling])) updateToolbar();
    if (kTerminal.has(job.state) && shownOutcome !== job.state) {
      shownOutcome = job.state;
      showOutcome().catch(alertError);
    }
  }

  function updateToolbar() {
    clear(toolbar);
    if (!kTerminal.has(job.state) && can('write')) {
      toolbar.appendChild(h('button', {type: 'button', class: 'danger', disabled: cancelling, onclick: async () => {
        const r = await ask({title: `Cancel conversion ${job.id}?`, message: 'Nothing is pushed as done; a partly pushed image is not registered as a build.',
          confirm: 'Cancel conversion', danger: true});
        if (!r.ok) return;
        cancelling = true;
        try {
          job = await post(`/conversions/${enc(job.id)}/cancel`);
          say('Cancel requested.');
          update();
        } catch (e) { cancelling = false; alertError(e); }
      }}, cancelling ? 'Cancelling…' : 'Cancel'));
    }
    toolbar.appendChild(link('#/conversions', 'All conversions'));
  }

  async function showOutcome() {
    clear(outcome);
    if (job.state === 'failed') {
      outcome.appendChild(h('div', {class: 'error', role: 'alert'},
        h('strong', {}, 'The conversion failed: '), job.error?.message || 'no reason given',
        job.error?.code ? [' (', h('code', {}, job.error.code), ')'] : null));
      return;
    }
    if (job.state === 'cancelled') {
      outcome.appendChild(h('p', {class: 'notice', role: 'status'}, 'The conversion was cancelled; no build was registered.'));
      return;
    }
    outcome.appendChild(h('h2', {}, 'Result'));
    outcome.appendChild(props([
      ['Output digest', job.output_digest ? h('code', {}, job.output_digest) : '—'],
      ['MRENCLAVE', job.mrenclave ? h('code', {}, job.mrenclave) : '—'],
      ['MRSIGNER', job.mrsigner ? h('code', {}, job.mrsigner) : '—'],
      ['Build', job.build_id ? link('#/builds/' + enc(job.build_id), job.build_id) : '—'],
    ]));
    if (job.build_id) outcome.appendChild(await buildBox(job.build_id));
  }

  // The build the job made: its status, and its approval task with Approve for those who may.
  async function buildBox(buildId) {
    const box = h('div', {class: 'build-box', id: 'conversion-build'});
    const b = await get('/builds/' + enc(buildId));
    const given = (b.approvals || []).length;
    box.appendChild(h('p', {}, 'Build ', link('#/builds/' + enc(b.id), b.id), ' is ', stateBuild(b.status),
      b.status === 'pending' ? [` (${given} of ${b.approvals_required} approvals); `, link('#/tasks', 'approval task')] : '.'));
    if (b.status === 'pending' && b.task_id && can('approve')) {
      const mine = (b.approvals || []).some(a => a.user === session.user);
      box.appendChild(h('div', {class: 'toolbar'}, h('button', {type: 'button', disabled: mine, onclick: async ev => {
        ev.target.disabled = true;
        try {
          await post(`/tasks/${enc(b.task_id)}/approve`);
          say('Approved.');
          box.replaceWith(await buildBox(buildId));
        } catch (e) { ev.target.disabled = false; alertError(e); }
      }}, mine ? 'Approved by you' : 'Approve build')));
    }
    return box;
  }

  update();
  if (!kTerminal.has(job.state)) {
    poll(kPollMs, async () => {
      job = await get('/conversions/' + enc(id));
      update();
      return !kTerminal.has(job.state);
    });
  }
  return root;
}

// The defaults of libs/convert/options.h ConversionSettings: the job page lists only what differs.
const kDefaultOptions = {entrypoint: null, args: null, allow_cmdline_args: false, env: [], mutable_env: [], mem_size: '', threads: 0,
  isvprodid: 0, isvsvn: 0, debug: false, cert_subject: '', cert_dns: [], cert_key_type: 'ec-p256', key_path: '/run/vouch/certs/key.pem',
  cert_path: '/run/vouch/certs/cert.pem', ca_path: '/run/vouch/certs/ca.pem', no_certificate: false, no_heartbeat: false,
  heartbeat_interval: 30, ro_dirs: [], rw_dirs: [], agent_socket: '/run/vouch/agent.sock', platform: 'linux/amd64',
  max_layer_size: '16G', max_content_size: '64G'};

function optionsText(options) {
  const set = Object.entries(options || {}).filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(kDefaultOptions[k]));
  if (!set.length) return h('span', {class: 'muted'}, 'all defaults');
  return h('span', {class: 'options'}, set.map(([k, v], i) => [i ? ', ' : '', h('code', {}, `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)]));
}

function stateBuild(status) {
  const tone = {approved: 'ok', pending: 'warn', denied: 'bad', revoked: 'bad'}[status] || 'neutral';
  return h('span', {class: 'badge ' + tone}, status);
}

// ------------------------------------------------------------------ the list

function progressCell(job) {
  const pc = percent(job);
  if (kTerminal.has(job.state)) return job.state === 'done' ? '100%' : '—';
  return h('span', {}, h('progress', {max: '100', value: pc ?? undefined, 'aria-label': `Progress of ${job.id}`}), ' ', pc === null ? '' : pc + '%');
}

async function conversionList() {
  const q = hashQuery();
  const root = h('section', {}, h('h1', {}, 'Conversions'));
  if (can('write')) {
    root.appendChild(h('div', {class: 'toolbar'},
      h('a', {href: '#/conversions/new' + (q.app ? '?app=' + enc(q.app) : ''), class: 'button'}, 'Convert image')));
  }
  const apps = await all('/apps').catch(() => []);
  const state = h('select', {name: 'state'}, ['', ...kStates].map(s => h('option', {value: s, selected: (q.state || '') === s}, s || 'any')));
  const app = h('select', {name: 'app'}, ['', ...apps.map(a => a.name)].map(s => h('option', {value: s, selected: (q.app || '') === s}, s || 'any')));
  const filter = h('form', {class: 'inline', role: 'search'}, field('State', state), field('App', app),
    h('button', {type: 'submit', class: 'secondary'}, 'Filter'));
  filter.addEventListener('submit', e => {
    e.preventDefault();
    const p = new URLSearchParams();
    if (state.value) p.set('state', state.value);
    if (app.value) p.set('app', app.value);
    const s = p.toString();
    location.hash = '#/conversions' + (s ? '?' + s : '');
  });
  root.appendChild(filter);
  const box = h('div', {});
  let cursor = '';
  let items = [];
  const columns = [
    {title: 'Conversion', cell: c => link('#/conversions/' + enc(c.id), c.id)},
    {title: 'App', cell: c => link('#/apps/' + enc(c.app_name), c.app_name)},
    {title: 'State', cell: c => stateBadge(c.state)},
    {title: 'Progress', cell: progressCell},
    {title: 'Input', cell: c => h('code', {}, c.input_image), class: 'hide-narrow'},
    {title: 'Output', cell: c => h('code', {}, c.output_image), class: 'hide-narrow'},
    {title: 'Build', cell: c => c.build_id ? link('#/builds/' + enc(c.build_id), c.build_id) : (c.error ? h('span', {title: c.error.message}, c.error.code) : '—')},
    {title: 'Created', cell: c => h('span', {}, ago(c.created_at), ' by ', c.created_by || '—'), class: 'hide-narrow'},
  ];
  const params = {state: q.state, app: q.app};
  const render = () => {
    clear(box).appendChild(table(items, columns, {label: 'Conversions', empty: 'No conversions match.'}));
    if (cursor) {
      box.appendChild(h('p', {}, h('button', {type: 'button', class: 'secondary', onclick: () => more().catch(alertError)}, 'Load more')));
    }
  };
  const more = async () => {
    const r = await page('/conversions', {...params, cursor, limit: 100});
    items = items.concat(r.items);
    cursor = r.next_cursor;
    render();
  };
  await more();
  root.appendChild(box);
  // Live while something runs: the first page again (what a user watching the list cares about).
  poll(2000, async () => {
    if (!items.some(c => !kTerminal.has(c.state))) return false;
    const r = await page('/conversions', {...params, limit: Math.min(Math.max(items.length, 1), 1000)});
    items = r.items;
    cursor = r.next_cursor;
    render();
    return items.some(c => !kTerminal.has(c.state));
  });
  return root;
}

// #/conversions, #/conversions/new?app=NAME, #/conversions/{id}
export async function conversions(parts) {
  const first = parts[0] ? parts[0].split('?')[0] : '';
  if (first === 'new') return newConversion();
  if (first) return conversionDetail(first);
  return conversionList();
}

// The "Convert image" action of an app's page.
export function convertAction(appName) {
  if (!can('write')) return null;
  return h('div', {class: 'toolbar'}, h('a', {href: '#/conversions/new?app=' + enc(appName), class: 'button'}, 'Convert image'),
    link('#/conversions?app=' + enc(appName), 'Conversions of this app'));
}

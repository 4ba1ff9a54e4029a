// Browser test of the vouch web console: a real vouchd (started here, on a free loopback port, in a
// temp dir), the real vouch CLI, and Debian's Chromium driven headless by playwright-core.
// Usage: node ui/tests/ui_test.mjs VOUCHD VOUCH ARTIFACT_DIR [VOUCH_AGENT]
// With VOUCH_AGENT, a sim node joins with the join token made in the browser and a sim workload
// gets a certificate and heartbeats: the nodes and instances views must show them.
// Every check prints "ok N - what"; the first failure prints "FAIL: ..." and exits non-zero.
// Screenshots of each main view go to ARTIFACT_DIR.
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import https from 'node:https';
import http from 'node:http';
import crypto from 'node:crypto';
import tls from 'node:tls';

const [VOUCHD, VOUCH, ARTIFACTS = path.join(os.tmpdir(), 'vouch-ui-artifacts'), AGENT = ''] = process.argv.slice(2);
if (!VOUCHD || !VOUCH) { console.error('usage: ui_test.mjs VOUCHD VOUCH [ARTIFACT_DIR]'); process.exit(2); }
let chromium;
try {
  ({chromium} = await import('playwright-core'));
} catch {
  console.error('FAIL: playwright-core is not installed: run scripts/setup (npm ci in ui/)');
  process.exit(1);
}
const CHROMIUM = process.env.VOUCH_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) { console.error(`FAIL: ${CHROMIUM} missing: run scripts/setup (Debian package chromium)`); process.exit(1); }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vouch-ui.'));
const children = [];
let browser = null;
let passed = 0;
async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
  if (process.env.VOUCH_KEEP !== '1') fs.rmSync(tmp, {recursive: true, force: true});
}
function ok(what) { passed++; console.log(`ok ${passed} - ${what}`); }
async function fail(what) { console.error('FAIL: ' + what); await cleanup(); process.exit(1); }
function expect(cond, what, detail = '') { if (!cond) throw new Error(what + (detail ? ': ' + detail : '')); ok(what); }
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });
process.on('SIGTERM', async () => { await cleanup(); process.exit(143); });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

const data = path.join(tmp, 'vouchd');
const port = await freePort();
const URL_ = `https://127.0.0.1:${port}`;
const ca = path.join(data, 'service-ca.pem');
const env = {...process.env, VOUCH_CONFIG: path.join(tmp, 'cli-admin.json')};
const pw = (name, text) => { const f = path.join(tmp, name + '.pw'); fs.writeFileSync(f, text + '\n', {mode: 0o600}); return f; };
const passwords = {admin: 'admin-password-123', approver1: 'approver-one-pass', approver2: 'approver-two-pass', viewer1: 'viewer-password-1'};
function cli(args, {as = 'admin', json = true} = {}) {
  const out = execFileSync(VOUCH, json ? [...args, '-o', 'json'] : args,
                           {env: {...env, VOUCH_CONFIG: path.join(tmp, `cli-${as}.json`)}, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
  return json ? JSON.parse(out) : out;
}

// Fetch with Node, trusting only the service CA (to check headers the browser does not expose).
function fetchRaw(p, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request(URL_ + p, {ca: fs.readFileSync(ca), headers}, res => {
      let body = '';
      res.on('data', d => { body += d; });
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body}));
    });
    req.on('error', reject);
    req.end();
  });
}

// The SPKI pin of the server certificate, read over a connection verified against the service CA:
// Chromium then trusts exactly that key and nothing else (no blanket ignore of TLS errors).
function spkiPin() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({host: '127.0.0.1', port, ca: fs.readFileSync(ca), servername: 'localhost', checkServerIdentity: () => undefined}, () => {
      const der = new crypto.X509Certificate(s.getPeerCertificate(true).raw).publicKey.export({type: 'spki', format: 'der'});
      s.end();
      resolve(crypto.createHash('sha256').update(der).digest('base64'));
    });
    s.on('error', reject);
  });
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, {recursive: true});
  await page.screenshot({path: path.join(ARTIFACTS, name + '.png'), fullPage: true});
}

try {
  // ---------------------------------------------------------------- vouchd and CLI users
  execFileSync(VOUCHD, ['init', '--data-dir', data, '--admin-user', 'admin', '--admin-password-file', pw('admin', passwords.admin),
                        '--listen', `127.0.0.1:${port}`, '--dev'], {stdio: 'ignore'});
  const log = fs.openSync(path.join(tmp, 'vouchd.log'), 'a');
  const server = spawn(VOUCHD, ['serve', '--data-dir', data], {stdio: ['ignore', log, log]});
  children.push(server);
  let healthy = false;
  for (let i = 0; i < 200 && !healthy; i++) {
    try { healthy = (await fetchRaw('/healthz')).status === 200; } catch { await new Promise(r => setTimeout(r, 50)); }
  }
  if (!healthy) throw new Error('vouchd did not become healthy: ' + fs.readFileSync(path.join(tmp, 'vouchd.log'), 'utf8'));
  ok('vouchd serves on ' + URL_);
  const cliLogin = user => execFileSync(VOUCH, ['login', '--server', URL_, '--ca-file', ca, '--user', user, '--password-file', pw(user, passwords[user])],
                                        {env: {...env, VOUCH_CONFIG: path.join(tmp, `cli-${user}.json`)}, stdio: 'ignore'});
  cliLogin('admin');
  for (const u of ['approver1', 'approver2', 'viewer1']) {
    cli(['user', 'create', u, '--role', u.replace(/\d$/, ''), '--password-file', pw(u, passwords[u])], {json: false});
  }
  ok('CLI: admin, two approvers and a viewer');
  const st = cli(['server', 'status']);
  const ops = cli(['server', 'openapi'], {json: false});
  const metrics = cli(['server', 'metrics']);
  expect(st.ready === true && st.healthz === 'ok' && /GET\s+\/api\/v1\/zones\s/.test(ops) &&
         metrics.samples.some(m => m.name === 'vouch_tasks_pending'), 'vouch server status | openapi | metrics');

  // ---------------------------------------------------------------- headers of the UI assets
  const index = await fetchRaw('/');
  expect(index.status === 200 && index.body.includes('/ui/app.js'), 'GET / serves the console');
  const csp = index.headers['content-security-policy'] || '';
  expect(csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'none'") && !csp.includes('unsafe-inline'),
         'strict Content-Security-Policy', csp);
  expect(index.headers['x-content-type-options'] === 'nosniff', 'X-Content-Type-Options: nosniff');
  const js = await fetchRaw('/ui/app.js');
  expect(js.headers['content-type'].startsWith('text/javascript') && js.headers.etag && js.headers['cache-control'] === 'no-cache',
         'scripts have a content type, an ETag and no-cache');
  expect((await fetchRaw('/ui/app.js', {'If-None-Match': js.headers.etag})).status === 304, 'If-None-Match revalidates with 304');

  // ---------------------------------------------------------------- the browser, kept off the network
  const pin = await spkiPin();
  const args = [
    `--ignore-certificate-errors-spki-list=${pin}`,
    '--proxy-server=http://127.0.0.1:9',            // anything not on loopback goes to a closed port
    '--proxy-bypass-list=127.0.0.1',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
    '--disable-domain-reliability', '--disable-client-side-phishing-detection', '--no-first-run', '--no-pings',
    '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  ];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args});
  const consoleErrors = [];
  async function newPage(viewport = {width: 1280, height: 860}) {
    const ctx = await browser.newContext({viewport, baseURL: URL_});
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], {origin: URL_});
    const page = await ctx.newPage();
    page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', e => consoleErrors.push(String(e)));
    page.setDefaultTimeout(15000);
    return page;
  }
  async function login(page, user, pass) {
    await page.goto('/');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(pass);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByRole('heading', {name: 'Dashboard'}).waitFor();
  }
  const go = async (page, hash, heading) => {
    await page.goto('/#' + hash);
    await page.getByRole('heading', {level: 1, name: heading, exact: heading !== 'Tasks'}).waitFor();
  };

  // ---------------------------------------------------------------- login errors, then admin
  const admin = await newPage();
  await admin.goto('/');
  await admin.getByRole('heading', {name: 'Sign in to vouch'}).waitFor();
  await shot(admin, 'login');
  await admin.getByLabel('User name').fill('admin');
  await admin.getByLabel('Password').fill('wrong-password');
  await admin.getByRole('button', {name: 'Sign in'}).click();
  await admin.getByText('Wrong user name or password.').waitFor();
  expect(await admin.getByRole('heading', {name: 'Sign in to vouch'}).isVisible(), 'a wrong password shows an error and no console');
  await shot(admin, 'login-error');
  // Keyboard only: the user field has focus; Tab to the password; Enter submits.
  await admin.getByLabel('User name').fill('');
  await admin.keyboard.type('admin');
  await admin.keyboard.press('Tab');
  await admin.keyboard.type(passwords.admin);
  await admin.keyboard.press('Enter');
  await admin.getByRole('heading', {name: 'Dashboard'}).waitFor();
  ok('admin signs in with the keyboard only');
  const cookies = await admin.context().cookies();
  const sess = cookies.find(c => c.name === '__Host-vouch_session');
  expect(sess && sess.httpOnly && sess.secure && sess.sameSite === 'Strict', 'session cookie is HttpOnly, Secure, SameSite=Strict');
  const visible = await admin.evaluate(() => ({cookie: document.cookie, local: localStorage.length, session: sessionStorage.length, url: location.href}));
  expect(!visible.cookie.includes('vt_') && visible.local === 0 && visible.session === 0 && !visible.url.includes('vt_'),
         'no token in document.cookie, web storage or the URL');
  const csrf = await admin.evaluate(async () => {
    const r = await fetch('/api/v1/zones', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"name":"csrf-test"}'});
    return {status: r.status, body: await r.json()};
  });
  expect(csrf.status === 403 && csrf.body.error.code === 'csrf_failed', 'a cookie-authenticated POST without the CSRF header is refused');

  // ---------------------------------------------------------------- zone, join token, app
  await go(admin, '/zones', 'Zones');
  await admin.getByText('Create a zone').click();
  const zoneForm = admin.getByRole('form', {name: 'Create zone'});
  await zoneForm.getByLabel('Name', {exact: true}).fill('prod');
  await zoneForm.getByLabel('Approvals required').fill('2');
  await zoneForm.getByLabel('Accept sim (insecure) evidence').check();
  await zoneForm.getByRole('button', {name: 'Create zone'}).click();
  await admin.getByRole('heading', {name: 'Zone prod'}).waitFor();
  expect(cli(['zone', 'get', 'prod']).policy.approvals_required === 2, 'zone created in the browser (quorum 2, checked with the CLI)');
  const identities = admin.getByRole('region', {name: 'Node identities'});
  await identities.waitFor();
  const identitiesText = await identities.textContent();
  expect(identitiesText.includes('mrenclave c123733b4276bb58') && identitiesText.includes('active'),
         'the zone page shows its node identities (a sim zone accepts the shipped sim agent)');
  await admin.getByRole('button', {name: 'Create join token'}).click();
  const token = (await admin.locator('#join-token').textContent()).trim();
  const command = await admin.locator('#agent-command').textContent();
  expect(token.length > 20 && command.includes(`--join-token ${token}`) && command.includes(`--server ${URL_}`),
         'join token shown with the agent command line');
  await admin.getByRole('button', {name: 'Copy token'}).click();
  await admin.getByRole('button', {name: 'Copied'}).waitFor();
  expect(await admin.evaluate(() => navigator.clipboard.readText()) === token, 'copy button puts the token on the clipboard');
  const caLink = await admin.getByRole('link', {name: 'Root CA (PEM)'}).getAttribute('href');
  const caPem = (await fetchRaw(caLink)).body;
  expect(caPem.includes('BEGIN CERTIFICATE') && caPem === cli(['zone', 'ca', 'prod'], {json: false}), 'root CA download matches the CLI');
  await shot(admin, 'zone');

  await go(admin, '/apps', 'Apps');
  await admin.getByText('Create an app').click();
  const appForm = admin.getByRole('form', {name: 'Create app'});
  await appForm.getByLabel('Name', {exact: true}).fill('web');
  await appForm.getByLabel('Zone').selectOption('prod');
  await appForm.getByLabel('Allowed DNS names').fill('web.example.com');
  await appForm.getByRole('button', {name: 'Create app'}).click();
  await admin.getByRole('heading', {name: 'App web'}).waitFor();
  const created = cli(['app', 'get', 'web']);
  expect(created.domains.length === 0 && created.pending_domains.includes('web.example.com'),
         'app created in the browser; its DNS name waits for approval');
  await admin.getByRole('row').filter({hasText: 'web.example.com'}).getByText('pending').waitFor();
  ok('the app page shows the initial DNS name as pending');
  await go(admin, '/apps', 'Apps');
  await shot(admin, 'apps');

  // ---------------------------------------------------------------- a build from the CLI appears live
  await go(admin, '/', 'Dashboard');
  const pendingCard = admin.locator('[data-card=pending] .big');
  expect((await pendingCard.textContent()) === '0', 'dashboard: no builds pending');
  const build = cli(['build', 'create', '--app', 'web', '--mrenclave', 'ab'.repeat(32), '--mrsigner', 'cd'.repeat(32),
                     '--isvprodid', '1', '--isvsvn', '3', '--image-ref', 'registry.local/web:1']);
  await admin.waitForFunction(() => document.querySelector('[data-card=pending] .big')?.textContent === '1', null, {timeout: 12000});
  ok('dashboard shows the CLI-created pending build without a reload (live refresh)');
  await shot(admin, 'dashboard');
  await go(admin, '/builds', 'Builds');
  await admin.getByRole('link', {name: build.id}).waitFor();
  ok('the pending build is listed');
  await shot(admin, 'builds');

  // ---------------------------------------------------------------- quorum of two approvers
  const a1 = await newPage();
  await login(a1, 'approver1', passwords.approver1);
  await go(a1, '/tasks', 'Tasks: approval inbox');
  const row1 = a1.getByRole('row').filter({hasText: build.id});
  await row1.getByText('pending: web.example.com').waitFor();
  ok('the build task shows the app\'s DNS names (none approved, web.example.com pending)');
  await row1.getByRole('button', {name: 'Approve'}).click();
  await a1.getByText('Approved.').waitFor();
  await a1.getByRole('row').filter({hasText: build.id}).filter({hasText: '1 / 2'}).waitFor();
  expect(cli(['build', 'get', build.id]).status === 'pending', 'one approval of two: still pending');
  await shot(a1, 'tasks');
  const a2 = await newPage();
  await login(a2, 'approver2', passwords.approver2);
  await go(a2, '/builds/' + build.id, 'Build ' + build.id);
  expect(await a2.getByText('1 / 2').isVisible(), 'build page shows approvals given / needed');
  await a2.getByRole('button', {name: 'Approve'}).click();
  await a2.getByText('Approved.').waitFor();
  await a2.locator('.badge', {hasText: 'approved'}).first().waitFor();
  expect(cli(['build', 'get', build.id]).status === 'approved', 'second approval: approved (checked with the CLI)');
  // The app's DNS name: a domain task under the same quorum of two.
  for (const p of [a1, a2]) {
    await go(p, '/tasks', 'Tasks: approval inbox');
    const row = p.getByRole('row').filter({hasText: 'requests web.example.com'});
    await row.getByRole('button', {name: 'Approve'}).click();
    await p.getByText('Approved.').waitFor();
  }
  expect(cli(['app', 'get', 'web']).domains.includes('web.example.com'), 'two approvals in the browser allow the DNS name');
  await go(a2, '/builds/' + build.id, 'Build ' + build.id);
  await a2.getByText('web.example.com').first().waitFor();
  ok('the build page shows the approved DNS name');
  await shot(a2, 'build-approved');

  // ---------------------------------------------------------------- a sim node and workload (needs vouch-agent)
  if (AGENT) {
    const agentDir = path.join(tmp, 'agent');
    const sock = path.join(agentDir, 'agent.sock');
    const agentLog = fs.openSync(path.join(tmp, 'agent.log'), 'a');
    children.push(spawn(AGENT, ['--server', URL_, '--ca-file', ca, '--data-dir', agentDir, '--socket', sock, '--tee', 'sim',
                                '--sim', path.join(data, 'sim'), '--join-token', token, '--batch-interval-ms', '200',
                                '--checkin-interval', '1'], {stdio: ['ignore', agentLog, agentLog]}));
    const version = () => new Promise(resolve => {
      const req = http.get({socketPath: sock, path: '/v1/version'}, res => {
        let b = '';
        res.on('data', d => { b += d; });
        res.on('end', () => resolve(res.statusCode === 200 ? JSON.parse(b) : null));
      });
      req.on('error', () => resolve(null));
    });
    let info = null;
    for (let i = 0; i < 300 && !(info = await version()); i++) await new Promise(r => setTimeout(r, 100));
    if (!info) throw new Error('vouch-agent did not start: ' + fs.readFileSync(path.join(tmp, 'agent.log'), 'utf8').slice(-400));
    await go(admin, '/nodes', 'Nodes');
    const nodeRow = admin.getByRole('row').filter({hasText: info.node_id});
    await nodeRow.waitFor({timeout: 15000});
    expect(await nodeRow.getByText('UpToDate').isVisible(), 'the node joined with the browser-made token appears with its TCB status');
    await shot(admin, 'nodes');
    const wdir = path.join(tmp, 'workload');
    const wargs = ['--socket', sock, '--out', wdir, '--dns', 'web.example.com', '--mrenclave', 'ab'.repeat(32),
                   '--mrsigner', 'cd'.repeat(32), '--isvprodid', '1', '--isvsvn', '3'];
    execFileSync(VOUCH, ['workload', 'cert', ...wargs], {env, stdio: 'ignore'});
    execFileSync(VOUCH, ['workload', 'heartbeat', '--socket', sock, '--dir', wdir, '--count', '1'], {env, stdio: 'ignore'});
    const instance = JSON.parse(fs.readFileSync(path.join(wdir, 'instance.json'), 'utf8')).instance_id;
    await go(admin, '/instances', 'Instances');
    const instRow = admin.getByRole('row').filter({hasText: instance});
    await instRow.filter({hasText: 'running'}).waitFor({timeout: 15000});
    expect(await instRow.getByText(info.node_id).isVisible(), 'the sim workload\'s instance shows as running on its node');
    await shot(admin, 'instances');
  } else {
    console.log('# skipped: sim node and workload (vouch-agent is not built in this tree)');
  }

  // ---------------------------------------------------------------- deny with a reason
  const build2 = cli(['build', 'create', '--app', 'web', '--mrenclave', 'ee'.repeat(32), '--mrsigner', 'cd'.repeat(32),
                      '--isvprodid', '1', '--isvsvn', '4']);
  await go(a1, '/builds/' + build2.id, 'Build ' + build2.id);
  await a1.getByRole('button', {name: 'Deny'}).click();
  const dlg = a1.getByRole('dialog');
  await dlg.getByRole('button', {name: 'Deny'}).click();
  expect(await dlg.isVisible(), 'deny needs a reason');
  await dlg.getByLabel('Reason').fill('debug symbols left in');
  await dlg.getByRole('button', {name: 'Deny'}).click();
  await a1.getByText('Denied.').waitFor();
  const denied = cli(['build', 'get', build2.id]);
  expect(denied.status === 'denied' && (denied.reason || '').includes('debug symbols'), 'denied with its reason');

  // ---------------------------------------------------------------- revoke
  await go(a1, '/builds/' + build.id, 'Build ' + build.id);
  await a1.getByRole('button', {name: 'Revoke'}).click();
  await a1.getByRole('dialog').getByLabel('Reason').fill('key compromise drill');
  await a1.getByRole('dialog').getByRole('button', {name: 'Revoke build'}).click();
  await a1.getByText('Build revoked.').waitFor();
  expect(cli(['build', 'get', build.id]).status === 'revoked', 'build revoked in the browser (checked with the CLI)');
  if (AGENT) {
    await go(admin, '/certificates?app=web', 'Certificates');
    await admin.getByRole('row').filter({hasText: 'revoked'}).first().waitFor();
    const badges = await admin.locator('tbody .badge').allTextContents();
    expect(badges.length >= 1 && badges.every(b => b === 'revoked'), 'the workload certificate shows as revoked with its build', badges.join());
  }

  // ---------------------------------------------------------------- audit log
  await go(admin, '/audit', 'Audit log');
  const verdict = await admin.locator('#audit-verify').textContent();
  expect(verdict.includes('Hash chain verified') && verdict.includes('intact'), 'audit chain verification result shown', verdict);
  for (const action of ['build.create', 'task.approve', 'build.revoke']) {
    if (!(await admin.getByRole('cell', {name: action}).count())) throw new Error('audit log lacks ' + action);
  }
  ok('audit log lists build.create, task.approve, build.revoke');
  await admin.getByLabel('Action').fill('build.revoke');
  await admin.getByRole('button', {name: 'Filter'}).click();
  await admin.waitForFunction(() => location.hash.includes('action=build.revoke'));
  await admin.getByRole('cell', {name: 'build.revoke'}).first().waitFor();
  const actions = await admin.locator('tbody tr td:nth-child(4)').allTextContents();
  expect(actions.length >= 1 && actions.every(a => a === 'build.revoke'), 'audit filter by action');
  await go(admin, '/audit', 'Audit log');
  await shot(admin, 'audit');

  // ---------------------------------------------------------------- the other views render
  for (const [hash, heading, name] of [['/nodes', 'Nodes', 'nodes'], ['/instances', 'Instances', 'instances'],
                                       ['/certificates', 'Certificates', 'certificates'], ['/users', 'Users', 'users'],
                                       ['/apikeys', 'API keys', 'apikeys']]) {
    await go(admin, hash, heading);
    await shot(admin, name);
  }
  ok('nodes, instances, certificates, users and API keys views render');
  // Collateral (issue 14): the dev manager's imported sim folder, one row per item with its kind,
  // FMSPC, dates, source and state; sim items are marked.
  await go(admin, '/collateral', 'Collateral');
  await admin.getByRole('cell', {name: 'sgx_tcb_info'}).first().waitFor();
  const colRow = admin.locator('tbody tr', {has: admin.getByRole('cell', {name: 'sgx_tcb_info'})}).first();
  const colText = await colRow.textContent();
  expect(/[0-9a-f]{12}/.test(colText) && colText.includes('import') && colText.includes('valid') && colText.includes('INSECURE sim'),
         'collateral view: kind, FMSPC, source, state and the sim mark of the imported TCB Info', colText);
  expect(await admin.getByRole('button', {name: 'Refresh all now'}).count() === 1, 'collateral view: admins can refresh');
  await shot(admin, 'collateral');
  // Every form control on every view has an accessible name (a label or aria-label).
  const kViews = [['/', 'Dashboard'], ['/zones', 'Zones'], ['/zones/prod', 'Zone prod'], ['/apps', 'Apps'], ['/apps/web', 'App web'],
                  ['/builds', 'Builds'], ['/builds/' + build2.id, 'Build ' + build2.id], ['/tasks?status=', 'Tasks'],
                  ['/nodes', 'Nodes'], ['/instances', 'Instances'], ['/certificates', 'Certificates'], ['/users', 'Users'],
                  ['/apikeys', 'API keys'], ['/audit', 'Audit log'], ['/collateral', 'Collateral'],
                  ['/conversions', 'Conversions'], ['/conversions/new?app=web', 'Convert image']];
  for (const [hash, heading] of kViews) {
    await go(admin, hash, heading);
    const unnamed = await admin.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
      .filter(el => !el.labels?.length && !el.getAttribute('aria-label')).map(el => el.name || el.type));
    if (unnamed.length) throw new Error(`unlabelled controls on ${hash}: ${unnamed.join(', ')}`);
  }
  ok('every form control on every view has a label');
  await go(admin, '/', 'Dashboard');
  expect((await admin.locator('[data-card=health] .big').textContent()) === 'OK', 'dashboard health: store ready, audit chain intact');
  await go(admin, '/apikeys', 'API keys');
  await admin.getByRole('form', {name: 'Create API key'}).getByLabel('Name', {exact: true}).fill('ci');
  await admin.getByRole('button', {name: 'Create API key'}).click();
  const key = (await admin.locator('.secret code').textContent()).trim();
  expect(key.startsWith('vk_') && (await fetchRaw('/api/v1/sys/whoami', {Authorization: 'Bearer ' + key})).status === 200,
         'API key created in the browser works as a bearer token');

  // ---------------------------------------------------------------- viewer: nothing to click that mutates
  const viewer = await newPage();
  await login(viewer, 'viewer1', passwords.viewer1);
  const mutating = /^(Approve|Deny|Revoke|Create|Save|Delete|Remove|Request|Deactivate|Disable|Enable|Refresh)/;
  // (API keys are the exception by design: every role may create and delete its own.)
  for (const [hash, heading] of kViews.filter(([h]) => h !== '/apikeys')) {
    await go(viewer, hash, heading);
    const buttons = await viewer.locator('main button, main select:not([name=status])').allTextContents();
    const bad = buttons.filter(t => mutating.test(t.trim()));
    if (bad.length) throw new Error(`viewer sees ${bad.join(', ')} on ${hash}`);
    if (await viewer.locator('main form[aria-label]').count()) throw new Error('viewer sees a form on ' + hash);
  }
  ok('a viewer is offered no mutating action on any view');
  expect(await viewer.getByRole('link', {name: 'Users'}).isHidden(), 'a viewer does not see the Users menu entry');
  await go(viewer, '/zones', 'Zones');
  await shot(viewer, 'viewer-zones');
  const refused = await viewer.evaluate(async () => {
    const who = await (await fetch('/api/v1/sys/whoami')).json();
    const r = await fetch('/api/v1/zones', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': who.csrf_token},
                                            body: '{"name":"sneaky"}'});
    return {status: r.status, code: (await r.json()).error.code};
  });
  expect(refused.status === 403 && refused.code === 'forbidden', 'the server refuses a viewer\'s POST anyway (403 forbidden)');

  // ---------------------------------------------------------------- phone width
  const phone = await newPage({width: 390, height: 844});
  await login(phone, 'admin', passwords.admin);
  for (const [hash, heading] of kViews) {
    await go(phone, hash, heading);
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`${hash} is ${overflow}px wider than a 390 px phone screen`);
  }
  ok(`all ${kViews.length} views fit a 390 px phone screen (wide tables scroll inside their box)`);
  await go(phone, '/builds', 'Builds');
  await shot(phone, 'phone-builds');
  await go(phone, '/', 'Dashboard');
  await shot(phone, 'phone-dashboard');

  // ---------------------------------------------------------------- session end: expiry and logout
  cli(['user', 'update', 'approver2', '--password-file', pw('approver2-new', 'another-password-2')], {json: false});
  await a2.goto('/#/tasks');
  await a2.getByText('Your session has expired or was ended. Sign in again.').waitFor();
  ok('an ended session sends the user back to sign-in with a message');
  await admin.getByRole('button', {name: 'Sign out'}).click();
  await admin.getByText('You have signed out.').waitFor();
  const after = await admin.evaluate(async () => (await fetch('/api/v1/sys/whoami')).status);
  expect(after === 401, 'sign out ends the session on the server');

  const serious = consoleErrors.filter(e => !e.includes('401') && !e.includes('403') && !e.includes('Failed to load resource'));
  expect(serious.length === 0, 'no script errors in the browser console', serious.join(' | '));
} catch (e) {
  await fail(e.message.split('\n')[0] + (process.env.VOUCH_KEEP === '1' ? ` (kept ${tmp})` : ''));
}
console.log(`ui: all ${passed} checks passed; screenshots in ${ARTIFACTS}`);
await cleanup();

// Browser test of server-side conversion in the web console (issue 15): a real vouchd, a real
// docker-registry behind token auth (tests/e2e/registry_token_server.py) reached through a
// throttling proxy (in this file, so a pull takes seconds on any machine), a registry
// stored through the API, and Debian's Chromium driven headless by playwright-core.
// Usage: node ui/tests/conversions_test.mjs VOUCHD VOUCH_RTE ARTIFACT_DIR [VOUCH_AGENT]
// Steps: the app page's "Convert image" opens the form with the app's default registries picked;
// client-side validation refuses bad input without asking the server; the server's refusal is shown;
// a conversion started in the console shows its progress bar moving and ends in a pending build; the
// build is approved from the job page (checked through the API); a second conversion is cancelled
// mid-pull from its job page; polling pauses while the tab is hidden and stops at the end; the list
// filters by state and app; a viewer gets no "Convert image"; the pages fit a phone. With
// VOUCH_AGENT (and runc, as root): the image converted from the console runs under runc with a sim
// agent and serves TLS that `openssl s_client` verifies against the zone CA.
// Every check prints "ok N - what"; the first failure prints "FAIL: ..." and exits non-zero.
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import https from 'node:https';
import http from 'node:http';
import crypto from 'node:crypto';
import tls from 'node:tls';

const [VOUCHD, RTE, ARTIFACTS = path.join(os.tmpdir(), 'vouch-ui-artifacts'), AGENT = ''] = process.argv.slice(2).map(a => a && path.resolve(a));
if (!VOUCHD || !RTE) { console.error('usage: conversions_test.mjs VOUCHD VOUCH_RTE [ARTIFACT_DIR [VOUCH_AGENT]]'); process.exit(2); }
const HERE = path.dirname(new URL(import.meta.url).pathname);
const E2E = path.resolve(HERE, '../../tests/e2e');
let chromium;
try {
  ({chromium} = await import('playwright-core'));
} catch {
  console.error('FAIL: playwright-core is not installed: run scripts/setup (npm ci in ui/)');
  process.exit(1);
}
const CHROMIUM = process.env.VOUCH_CHROMIUM || '/usr/bin/chromium';
for (const [tool, hint] of [[CHROMIUM, 'Debian package chromium'], ['/usr/bin/docker-registry', 'scripts/setup.d/convert.list'],
                            ['/usr/bin/umoci', 'scripts/setup.d/convert.list'], ['/usr/bin/skopeo', 'scripts/setup.d/convert.list']]) {
  if (!fs.existsSync(tool)) { console.error(`FAIL: ${tool} missing: run scripts/setup (${hint})`); process.exit(1); }
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vouch-ui-conv.'));
const children = [];
const servers = [];
const runcIds = [];
let browser = null;
let passed = 0;
async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const id of runcIds) {
    try { execFileSync('runc', ['--root', path.join(tmp, 'runc'), 'delete', '-f', id], {stdio: 'ignore'}); } catch {}
  }
  for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
  for (const s of servers) s.close();
  if (process.env.VOUCH_KEEP !== '1') fs.rmSync(tmp, {recursive: true, force: true});
}
function ok(what) { passed++; console.log(`ok ${passed} - ${what}`); }
async function fail(what) { console.error('FAIL: ' + what); await cleanup(); process.exit(1); }
function expect(cond, what, detail = '') { if (!cond) throw new Error(what + (detail ? ': ' + String(detail).replace(/\s*\n\s*/g, ' | ') : '')); ok(what); }
process.on('SIGINT', async () => { await cleanup(); process.exit(130); });
process.on('SIGTERM', async () => { await cleanup(); process.exit(143); });
const sleep = ms => new Promise(r => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}
// A TCP proxy on loopback to `targetPort` whose answers go at `rate` bytes per second per connection
// (requests pass at full speed). Resolves to its port.
function throttleProxy(targetPort, rate) {
  const slice = Math.max(1, Math.floor(rate / 20));
  const server = net.createServer(client => {
    const up = net.connect(targetPort, '127.0.0.1');
    client.pipe(up);
    up.on('data', chunk => {
      up.pause();
      let off = 0;
      const next = () => {
        if (client.destroyed) return up.destroy();
        const part = chunk.subarray(off, off + slice);
        off += part.length;
        client.write(part);
        if (off < chunk.length) setTimeout(next, 50);
        else setTimeout(() => up.resume(), 50);
      };
      next();
    });
    up.on('end', () => client.end());
    const close = () => { client.destroy(); up.destroy(); };
    up.on('error', close);
    client.on('error', close);
    client.on('close', () => up.destroy());
  });
  servers.push(server);
  return new Promise((resolve, reject) => {
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
    server.on('error', reject);
  });
}
// Polls `fn` (async, truthy = done) every `ms` up to `tries` times; fails loudly with `what`.
async function until(what, fn, {tries = 200, ms = 100} = {}) {
  let last;
  for (let i = 0; i < tries; i++) {
    try { last = await fn(); } catch (e) { last = null; }
    if (last) return last;
    await sleep(ms);
  }
  throw new Error('timed out waiting: ' + what);
}
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, {cwd: tmp, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts});
function daemon(name, cmd, args, opts = {}) {
  const log = fs.openSync(path.join(tmp, name + '.log'), 'a');
  const c = spawn(cmd, args, {cwd: tmp, stdio: ['ignore', log, log], ...opts});
  children.push(c);
  return c;
}
const logTail = name => { try { return fs.readFileSync(path.join(tmp, name + '.log'), 'utf8').slice(-600); } catch { return ''; } };

const data = path.join(tmp, 'vouchd');
const port = await freePort();
const URL_ = `https://127.0.0.1:${port}`;
const serviceCa = path.join(data, 'service-ca.pem');
const adminPassword = 'admin-password-123';
const viewerPassword = 'viewer-password-1';

// JSON over HTTPS to vouchd with a bearer token, trusting only the service CA.
function apiRaw(method, p, {token, body} = {}) {
  return new Promise((resolve, reject) => {
    const headers = {Accept: 'application/json'};
    if (token) headers.Authorization = 'Bearer ' + token;
    const payload = body === undefined ? null : JSON.stringify(body);
    if (payload) { headers['Content-Type'] = 'application/json'; headers['Content-Length'] = Buffer.byteLength(payload); }
    const req = https.request(URL_ + p, {method, ca: fs.readFileSync(serviceCa), headers}, res => {
      let text = '';
      res.on('data', d => { text += d; });
      res.on('end', () => {
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch {}
        resolve({status: res.statusCode, json, text});
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  });
}
let adminToken = null;
async function api(method, p, body) {
  const r = await apiRaw(method, '/api/v1' + p, {token: adminToken, body});
  if (r.status >= 300) throw new Error(`${method} ${p}: HTTP ${r.status} ${r.text.slice(0, 300)}`);
  return r.json;
}

function spkiPin() {
  return new Promise((resolve, reject) => {
    const s = tls.connect({host: '127.0.0.1', port, ca: fs.readFileSync(serviceCa), servername: 'localhost', checkServerIdentity: () => undefined}, () => {
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
  // ---------------------------------------------------------------- PKI, token server, registry, proxy
  const mkca = (name, cn) => run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', name + '.key', '-out', name + '.pem', '-days', '2', '-subj', '/CN=' + cn,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  const mkcert = (name, ca, keyArgs, subject, ext) => {
    run('openssl', ['req', '-new', ...keyArgs, '-nodes', '-keyout', name + '.key', '-out', name + '.csr', '-subj', subject]);
    fs.writeFileSync(path.join(tmp, name + '.ext'), ext + '\n');
    run('openssl', ['x509', '-req', '-in', name + '.csr', '-CA', ca + '.pem', '-CAkey', ca + '.key', '-CAcreateserial', '-days', '2',
      '-out', name + '.pem', '-extfile', name + '.ext']);
  };
  mkca('tls-ca', 'vouch ui test TLS CA');
  mkcert('tls', 'tls-ca', ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=127.0.0.1',
    'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth');
  mkca('token-ca', 'vouch ui test token CA');
  mkcert('signer', 'token-ca', ['-newkey', 'rsa:2048'], '/CN=token signer', 'keyUsage=critical,digitalSignature');
  fs.writeFileSync(path.join(tmp, 'signer-chain.pem'), fs.readFileSync(path.join(tmp, 'signer.pem'), 'utf8') +
                   fs.readFileSync(path.join(tmp, 'token-ca.pem'), 'utf8'));
  const regPassword = 'bob-secret-2';
  fs.writeFileSync(path.join(tmp, 'token-users'), `bob:${regPassword}\n`);
  const tokenPort = await freePort();
  daemon('token-server', 'python3', [path.join(E2E, 'registry_token_server.py'), String(tokenPort), 'tls.pem', 'tls.key', 'signer.key',
    'signer-chain.pem', 'vouch-ui-issuer', 'token-users', path.join(tmp, 'token.log')]);
  const regPort = await freePort();
  const REG = `127.0.0.1:${regPort}`;
  fs.writeFileSync(path.join(tmp, 'registry.yml'), `version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: ${tmp}/store}}
http: {addr: "${REG}"}
auth:
  token:
    realm: https://127.0.0.1:${tokenPort}/token
    service: vouch-ui-registry
    issuer: vouch-ui-issuer
    rootcertbundle: ${tmp}/token-ca.pem
`);
  daemon('registry', 'docker-registry', ['serve', 'registry.yml']);
  // The console pulls through a proxy that sends answers at 3 MB/s: a pull of the ~10 MB image
  // takes seconds, so the progress bar is seen moving and Cancel lands mid-pull on any machine.
  const SLOW = `127.0.0.1:${await throttleProxy(regPort, 3 * 1000 * 1000)}`;
  // Slower still (1 MB/s, a pull of about 10 s) for the job cancelled mid-pull.
  const SLOWER = `127.0.0.1:${await throttleProxy(regPort, 1000 * 1000)}`;
  const status = url => new Promise(resolve => {
    const mod = url.startsWith('https') ? https : http;
    const req = mod.get(url, {ca: fs.readFileSync(path.join(tmp, 'tls-ca.pem'))}, res => { res.resume(); resolve(res.statusCode); });
    req.on('error', () => resolve(0));
  });
  await until('registry (401), proxy (401) and token server (200) answer: ' + logTail('registry') + logTail('token-server'),
    async () => await status(`http://${REG}/v2/`) === 401 && await status(`http://${SLOW}/v2/`) === 401 &&
                await status(`https://127.0.0.1:${tokenPort}/token?service=x`) === 200);
  ok(`docker-registry with token auth on ${REG}, throttled proxy on ${SLOW}`);

  // The input image: busybox (and openssl with its libraries, for the TLS run) plus a layer of
  // 6 MB of random bytes (incompressible, so the pull is long enough to watch).
  let BUSYBOX = '/bin/busybox';
  try { if (run('file', ['-L', run('sh', ['-c', 'command -v busybox']).trim()]).includes('statically linked')) BUSYBOX = run('sh', ['-c', 'command -v busybox']).trim(); } catch {}
  run('umoci', ['init', '--layout', 'img']);
  run('umoci', ['new', '--image', 'img:v1']);
  run('umoci', ['unpack', '--image', 'img:v1', 'b']);
  const rootfs = path.join(tmp, 'b/rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), {recursive: true});
  fs.mkdirSync(path.join(rootfs, 'usr/bin'), {recursive: true});
  fs.copyFileSync(BUSYBOX, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  for (const l of ['sh', 'echo', 'sleep', 'cat']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', l));
  fs.copyFileSync('/usr/bin/openssl', path.join(rootfs, 'usr/bin/openssl'));
  fs.chmodSync(path.join(rootfs, 'usr/bin/openssl'), 0o755);
  for (const lib of run('ldd', ['/usr/bin/openssl']).match(/\/[^\s]+/g) || []) {
    fs.mkdirSync(path.join(rootfs, path.dirname(lib)), {recursive: true});
    fs.copyFileSync(fs.realpathSync(lib), path.join(rootfs, lib));
  }
  run('umoci', ['repack', '--image', 'img:v1', 'b']);
  run('umoci', ['unpack', '--image', 'img:v1', 'b2']);
  fs.mkdirSync(path.join(tmp, 'b2/rootfs/srv'), {recursive: true});
  fs.writeFileSync(path.join(tmp, 'b2/rootfs/srv/blob.bin'), crypto.randomBytes(6 * 1000 * 1000));
  run('umoci', ['repack', '--image', 'img:v1', 'b2']);
  const tlsPort = await freePort();
  run('umoci', ['config', '--image', 'img:v1', '--config.entrypoint', '/usr/bin/openssl', '--config.cmd', 's_server',
    '--config.cmd', '-accept', '--config.cmd', String(tlsPort), '--config.cmd', '-cert', '--config.cmd', '/run/vouch/certs/cert.pem',
    '--config.cmd', '-key', '--config.cmd', '/run/vouch/certs/key.pem', '--config.cmd', '-www']);
  fs.rmSync(path.join(tmp, 'b'), {recursive: true, force: true});
  fs.rmSync(path.join(tmp, 'b2'), {recursive: true, force: true});
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--dest-creds', `bob:${regPassword}`, 'oci:img:v1', `docker://${REG}/src/app:v1`]);
  ok('input image (busybox, openssl, 6 MB of random data) built with umoci and pushed with skopeo');

  // ---------------------------------------------------------------- vouchd, a registry stored through the API
  const pwFile = (name, text) => { const f = path.join(tmp, name + '.pw'); fs.writeFileSync(f, text + '\n', {mode: 0o600}); return f; };
  run(VOUCHD, ['init', '--data-dir', data, '--admin-user', 'admin', '--admin-password-file', pwFile('admin', adminPassword),
               '--listen', `127.0.0.1:${port}`, '--dev']);
  daemon('vouchd', VOUCHD, ['serve', '--data-dir', data, '--conversion-runtime', RTE, '--conversion-workers', '1']);
  await until('vouchd healthy: ' + logTail('vouchd'), async () => (await apiRaw('GET', '/healthz')).status === 200);
  adminToken = (await apiRaw('POST', '/api/v1/sys/auth', {body: {username: 'admin', password: adminPassword}})).json?.token;
  expect(typeof adminToken === 'string' && adminToken.length > 10, 'vouchd serves on ' + URL_ + '; admin token from POST /sys/auth');
  await api('POST', '/users', {name: 'viewer1', role: 'viewer', password: viewerPassword});
  const registryBody = {name: 'slow-hub', url: `http://${SLOW}`, insecure: true, username: 'bob', password: regPassword,
                        ca_pem: fs.readFileSync(path.join(tmp, 'tls-ca.pem'), 'utf8')};
  const reg = await api('POST', '/registries', registryBody);
  expect(reg.name === 'slow-hub' && reg.has_secret === true && !JSON.stringify(reg).includes(regPassword),
         'registry stored through POST /api/v1/registries (its password never answered)');
  await api('POST', '/registries', {name: 'slower-hub', url: `http://${SLOWER}`, insecure: true, username: 'bob', password: regPassword,
                                    ca_pem: fs.readFileSync(path.join(tmp, 'tls-ca.pem'), 'utf8')});
  await api('POST', '/registries', {name: 'direct', url: `http://${REG}`, insecure: true, username: 'bob', password: regPassword,
                                    ca_pem: fs.readFileSync(path.join(tmp, 'tls-ca.pem'), 'utf8')});
  await api('POST', '/registries', {name: 'soon-gone', url: 'https://registry.invalid', username: 'x', password: 'y'});
  const zone = (await api('GET', '/zones')).items[0].name;
  await api('POST', '/apps', {name: 'web', zone, domains: ['web.example.com']});
  for (const t of (await api('GET', '/tasks?status=pending')).items.filter(x => x.kind === 'domain')) await api('POST', `/tasks/${t.id}/approve`);
  await api('PATCH', '/apps/web', {input_registry: 'slow-hub', output_registry: 'direct'});
  const appRec = await api('GET', '/apps/web');
  expect(appRec.input_registry === 'slow-hub' && appRec.output_registry === 'direct' && appRec.domains.includes('web.example.com'),
         `app web in zone ${zone}: default input registry slow-hub, output direct, DNS name approved`);

  // ---------------------------------------------------------------- the browser, kept off the network
  const pin = await spkiPin();
  const args = [
    `--ignore-certificate-errors-spki-list=${pin}`, '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=127.0.0.1',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-default-apps', '--no-first-run', '--no-pings',
  ];
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args});
  const consoleErrors = [];
  async function newPage(viewport = {width: 1280, height: 900}) {
    const ctx = await browser.newContext({viewport, baseURL: URL_});
    const page = await ctx.newPage();
    page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', e => consoleErrors.push(String(e)));
    page.setDefaultTimeout(20000);
    return page;
  }
  async function login(page, user, pass) {
    await page.goto('/');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(pass);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByRole('heading', {name: 'Dashboard'}).waitFor();
  }
  const admin = await newPage();
  // Requests the page makes for one job (polling).
  const jobRequests = [];
  admin.on('request', r => { const m = r.url().match(/\/api\/v1\/conversions\/(cnv_[A-Za-z0-9_-]+)$/); if (m) jobRequests.push({id: m[1], at: Date.now()}); });
  await login(admin, 'admin', adminPassword);

  // ---------------------------------------------------------------- the form from the app page
  await admin.getByRole('navigation').getByRole('link', {name: 'Apps'}).click();
  await admin.getByRole('link', {name: 'web', exact: true}).click();
  await admin.getByRole('heading', {name: 'App web'}).waitFor();
  await admin.getByRole('link', {name: 'Convert image'}).click();
  await admin.getByRole('heading', {level: 1, name: 'Convert image'}).waitFor();
  const form = admin.getByRole('form', {name: 'Convert image'});
  await admin.locator('#convert-app-info').filter({hasText: 'slow-hub'}).waitFor();
  expect(await form.locator('select[name=app]').inputValue() === 'web' &&
         await form.getByLabel('Input registry').inputValue() === 'slow-hub' &&
         await form.getByLabel('Output registry').inputValue() === 'direct',
         'the app page\'s "Convert image" opens the form with the app and its default registries picked');
  expect(await form.getByLabel('Certificate DNS names').inputValue() === 'web.example.com', 'the app\'s approved DNS name is the default certificate name');
  expect(await form.getByLabel('Platform').isHidden() && await form.getByLabel('Entrypoint').isVisible() &&
         await form.getByLabel('ISV SVN').isVisible() && await form.getByLabel('Debug enclave').isVisible(),
         'common options shown, advanced options folded');
  const unnamed = await admin.evaluate(() => [...document.querySelectorAll('main input, main select, main textarea')]
    .filter(el => !el.labels?.length && !el.getAttribute('aria-label')).map(el => el.name || el.type));
  expect(unnamed.length === 0, 'every control of the form has a label', unnamed.join());

  // Client-side validation: nothing is sent.
  const before = (await api('GET', '/conversions')).items.length;
  await form.getByLabel('Input image').fill('https://registry.example.com/a:1');
  await form.getByLabel('Output image').fill(`${REG}/tee/app:v1`);
  await form.getByLabel('Environment').fill('GREETING=hi\nnot a variable');
  await form.getByLabel('ISV SVN').fill('70000');
  await form.getByRole('button', {name: 'Start conversion'}).click();
  const errs = admin.locator('#convert-errors');
  await errs.getByText('Please correct').waitFor();
  const errText = await errs.textContent();
  expect(errText.includes('Input image') && errText.includes('without a scheme') && errText.includes('"not a variable" is not NAME=value') &&
         errText.includes('ISV SVN is a whole number from 0 to 65535'), 'bad input is refused in the browser with a reason per field', errText);
  expect(await form.getByLabel('Input image').getAttribute('aria-invalid') === 'true' &&
         await admin.evaluate(() => document.activeElement?.name) === 'input_image', 'the first bad field is marked and focused');
  await admin.getByText('Advanced options').click();
  await form.getByLabel('Largest layer').fill('0');
  await form.getByLabel('Input image').fill(`${SLOW}/src/app:v1`);
  await form.getByLabel('Environment').fill('GREETING=hi');
  await form.getByLabel('ISV SVN').fill('3');
  await form.getByRole('button', {name: 'Start conversion'}).click();
  await errs.getByText('Largest layer must be more than 0').waitFor();
  expect((await api('GET', '/conversions')).items.length === before, 'refused in the browser: no conversion was created');
  await form.getByLabel('Largest layer').fill('');
  // The server's refusal is shown: a registry deleted after the form was loaded.
  await form.getByLabel('Output registry').selectOption('soon-gone');
  await api('DELETE', '/registries/soon-gone');
  await form.getByRole('button', {name: 'Start conversion'}).click();
  await errs.getByText('The server refused the conversion').waitFor();
  const refusal = await errs.textContent();
  expect(/registry/i.test(refusal) && refusal.includes('soon-gone') || refusal.includes('registry_not_found'),
         'the server\'s refusal (unknown registry) is shown with its code', refusal);
  await form.getByLabel('Output registry').selectOption('direct');

  // ---------------------------------------------------------------- the job page: live progress, done, pending build
  await form.getByRole('button', {name: 'Start conversion'}).click();
  await admin.waitForURL(/#\/conversions\/cnv_/);
  const jobId = decodeURIComponent(admin.url().split('#/conversions/')[1]);
  await admin.getByRole('heading', {name: 'Conversion ' + jobId}).waitFor();
  const created = await api('GET', '/conversions/' + jobId);
  expect(created.app_name === 'web' && created.input_image === `${SLOW}/src/app:v1` && created.output_image === `${REG}/tee/app:v1` &&
         created.input_registry === 'slow-hub' && created.output_registry === 'direct' &&
         JSON.stringify(created.options.env) === '["GREETING=hi"]' && created.options.isvsvn === 3 &&
         JSON.stringify(created.options.cert_dns) === '["web.example.com"]',
         'the job was created with the form\'s images, registries and options', JSON.stringify(created));
  expect(await admin.locator('#conversion-phase').getAttribute('aria-live') === 'polite' &&
         (await admin.getByRole('progressbar', {name: 'Conversion progress'}).count()) === 1,
         'the progress bar is labelled and its phase is announced (aria-live)');
  const seen = [];
  let sawRunningShot = false;
  const final = await until('the conversion ends', async () => {
    const s = await admin.locator('#conversion-progress').evaluate(el => ({state: el.dataset.state, value: el.hasAttribute('value') ? el.value : null,
      text: document.getElementById('conversion-bytes').textContent}));
    const last = seen[seen.length - 1];
    if (!last || last.state !== s.state || last.value !== s.value) seen.push(s);
    if (!sawRunningShot && s.state === 'pulling' && s.value > 0) { sawRunningShot = true; await shot(admin, 'conversion-running'); }
    return ['done', 'failed', 'cancelled'].includes(s.state) ? s : null;
  }, {tries: 1200, ms: 100});
  const job = await api('GET', '/conversions/' + jobId);
  expect(final.state === 'done' && job.state === 'done', 'the conversion ends done', `${final.state}: ${JSON.stringify(job.error)} ${(job.log || []).slice(-3).join(' | ')}`);
  const moving = seen.filter(s => s.state === 'pulling' && s.value !== null);
  expect(moving.length >= 2 && new Set(moving.map(s => s.value)).size >= 2 && moving.every((s, i) => !i || s.value >= moving[i - 1].value),
         'the progress bar moved forward while pulling (' + moving.map(s => s.value + '%').join(' → ') + ')', JSON.stringify(seen));
  expect(seen.some(s => s.state === 'converting' || s.state === 'pushing') || seen.length >= 3, 'later phases shown: ' +
         [...new Set(seen.map(s => s.state))].join(' → '));
  expect(final.value === 100 && (await admin.locator('#conversion-phase').textContent()).includes('Done'), 'done: 100% and announced');
  const logText = await admin.locator('#conversion-log').textContent();
  expect(job.log.length > 0 && logText.includes(job.log[job.log.length - 1]), 'the job log is shown');
  const stopAt = jobRequests.length;
  await sleep(1500);
  expect(jobRequests.length === stopAt, 'polling stops once the job has ended');
  const outcome = admin.locator('#conversion-outcome');
  await outcome.getByText(job.output_digest).waitFor();
  expect(job.build_id && await outcome.getByRole('link', {name: job.build_id}).first().isVisible() &&
         (await outcome.textContent()).includes(job.mrenclave), 'the result shows digest, MRENCLAVE and a link to the new build');
  const buildBefore = await api('GET', '/builds/' + job.build_id);
  expect(buildBefore.status === 'pending' && buildBefore.image_digest === job.output_digest && buildBefore.measurements.mrenclave === job.mrenclave,
         'the new build is pending approval with the image digest and MRENCLAVE of the job');
  await admin.locator('#conversion-build .badge', {hasText: 'pending'}).waitFor();
  expect(await admin.locator('#conversion-build').getByRole('link', {name: 'approval task'}).isVisible(), 'the job page links the approval task');
  await shot(admin, 'conversion-job');

  // ---------------------------------------------------------------- approve from the job page
  await admin.locator('#conversion-build').getByRole('button', {name: 'Approve build'}).click();
  await admin.locator('#conversion-build .badge', {hasText: 'approved'}).waitFor();
  const approved = await api('GET', '/builds/' + job.build_id);
  expect(approved.status === 'approved', 'approved in the console: GET /builds/{id} says approved');
  await shot(admin, 'conversion-approved');

  // ---------------------------------------------------------------- cancel mid-pull; polling pauses while hidden
  await admin.goto('/#/conversions/new?app=web');
  await form.getByLabel('Input image').fill(`${SLOWER}/src/app:v1`);
  await form.getByLabel('Input registry').selectOption('slower-hub');
  await form.getByLabel('Output image').fill(`${REG}/tee/app:v2`);
  await form.getByLabel('Entrypoint').fill('/usr/bin/openssl');
  await form.getByLabel('Environment').fill('GREETING=hi');
  await admin.evaluate(() => document.activeElement?.blur());
  await shot(admin, 'conversion-form');
  await form.getByRole('button', {name: 'Start conversion'}).click();
  await admin.waitForURL(/#\/conversions\/cnv_/);
  const job2 = decodeURIComponent(admin.url().split('#/conversions/')[1]);
  await admin.getByRole('heading', {name: 'Conversion ' + job2}).waitFor();
  await until('the second job is pulling', async () => (await admin.locator('#conversion-progress').getAttribute('data-state')) === 'pulling',
              {tries: 300, ms: 50});
  // Hide the tab: no more polling until it is visible again.
  await admin.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await sleep(700);
  const hiddenAt = jobRequests.filter(r => r.id === job2).length;
  await sleep(1500);
  const hiddenCount = jobRequests.filter(r => r.id === job2).length - hiddenAt;
  await admin.evaluate(() => {
    delete document.visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  const resumedAt = jobRequests.filter(r => r.id === job2).length;
  await until('polling resumes', async () => jobRequests.filter(r => r.id === job2).length >= resumedAt + 2, {tries: 50, ms: 100});
  expect(hiddenCount === 0, 'no polling while the tab is hidden; it resumes when visible');
  expect((await api('GET', '/conversions/' + job2)).state === 'pulling', 'still pulling (throttled) when Cancel is pressed');
  await admin.getByRole('button', {name: 'Cancel', exact: true}).click();
  await admin.getByRole('dialog').getByRole('button', {name: 'Cancel conversion'}).click();
  await admin.locator('#conversion-outcome').getByText('cancelled').waitFor();
  const cancelled = await api('GET', '/conversions/' + job2);
  expect(cancelled.state === 'cancelled' && !cancelled.build_id && cancelled.input_registry === 'slower-hub',
         'cancelled mid-pull from the job page (input registry picked in the form: slower-hub); no build');
  expect((await admin.locator('.badge[data-state]').first().textContent()) === 'cancelled' &&
         await admin.getByRole('button', {name: 'Cancel', exact: true}).count() === 0, 'the page shows cancelled and offers no Cancel any more');

  // ---------------------------------------------------------------- a failure: its code and message
  await admin.goto('/#/conversions/new?app=web');
  await form.getByLabel('Input image').fill(`${REG}/src/app:no-such-tag`);
  await form.getByLabel('Input registry').selectOption('direct');
  await form.getByLabel('Output image').fill(`${REG}/tee/app:v3`);
  await form.getByRole('button', {name: 'Start conversion'}).click();
  await admin.waitForURL(url => /#\/conversions\/cnv_/.test(url.href) && !url.href.includes(job2));
  const job3 = decodeURIComponent(admin.url().split('#/conversions/')[1]);
  const failure = admin.locator('#conversion-outcome [role=alert]');
  await failure.waitFor({timeout: 60000});
  const failed = await api('GET', '/conversions/' + job3);
  const failureText = await failure.textContent();
  expect(failed.state === 'failed' && failed.error && failureText.includes(failed.error.code) && failureText.includes(failed.error.message),
         `a missing tag fails the job; the page shows its code (${failed.error?.code}) and message`, failureText);

  // ---------------------------------------------------------------- the list with filters
  await admin.getByRole('navigation').getByRole('link', {name: 'Conversions'}).click();
  await admin.getByRole('heading', {level: 1, name: 'Conversions'}).waitFor();
  await admin.getByRole('link', {name: jobId}).waitFor();
  expect(await admin.getByRole('link', {name: job2}).isVisible(), 'the conversions list shows both jobs');
  await admin.getByLabel('State').selectOption('done');
  await admin.getByLabel('App').selectOption('web');
  await admin.getByRole('button', {name: 'Filter'}).click();
  await admin.waitForURL(/state=done/);
  await admin.getByRole('link', {name: jobId}).waitFor();
  expect(await admin.getByRole('link', {name: job2}).count() === 0 && admin.url().includes('app=web'),
         'filter by state and app (hash query) keeps only the done job');
  await shot(admin, 'conversions');
  await admin.getByRole('link', {name: jobId}).click();
  await admin.getByRole('heading', {name: 'Conversion ' + jobId}).waitFor();
  ok('the list links to the job page');

  // ---------------------------------------------------------------- viewer; phone width
  const viewer = await newPage();
  await login(viewer, 'viewer1', viewerPassword);
  await viewer.goto('/#/apps/web');
  await viewer.getByRole('heading', {name: 'App web'}).waitFor();
  expect(await viewer.getByRole('link', {name: 'Convert image'}).count() === 0, 'a viewer is offered no "Convert image"');
  await viewer.goto('/#/conversions/' + jobId);
  await viewer.getByRole('heading', {name: 'Conversion ' + jobId}).waitFor();
  expect(await viewer.getByRole('button').filter({hasText: /Approve|Cancel/}).count() === 0, 'a viewer sees the job but no Approve or Cancel');
  const phone = await newPage({width: 390, height: 844});
  await login(phone, 'admin', adminPassword);
  for (const [hash, heading] of [['/conversions', 'Conversions'], ['/conversions/new?app=web', 'Convert image'], ['/conversions/' + jobId, 'Conversion ' + jobId]]) {
    await phone.goto('/#' + hash);
    await phone.getByRole('heading', {level: 1, name: heading}).waitFor();
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) throw new Error(`${hash} is ${overflow}px wider than a 390 px phone screen`);
  }
  ok('the conversion pages fit a 390 px phone screen');

  // ---------------------------------------------------------------- the console-made image runs (runc, sim agent)
  let haveRunc = false;
  try { execFileSync('runc', ['--version'], {stdio: 'ignore'}); haveRunc = true; } catch {}
  if (AGENT && process.getuid && process.getuid() === 0 && haveRunc) {
    const zoneCa = path.join(tmp, 'zone-ca.pem');
    fs.writeFileSync(zoneCa, (await apiRaw('GET', `/api/v1/zones/${zone}/ca`, {token: adminToken})).text);
    const tok = await api('POST', `/zones/${zone}/join-tokens`, {ttl_seconds: 600, uses: 1});
    const agentDir = path.join(tmp, 'agent');
    const sock = path.join(agentDir, 'agent.sock');
    daemon('agent', AGENT, ['--server', URL_, '--ca-file', serviceCa, '--data-dir', agentDir, '--socket', sock, '--tee', 'sim',
      '--sim', path.join(data, 'sim'), '--join-token', tok.token, '--batch-interval-ms', '200']);
    await until('the agent answers: ' + logTail('agent'), () => new Promise(resolve => {
      const req = http.get({socketPath: sock, path: '/v1/version'}, res => { res.resume(); resolve(res.statusCode === 200); });
      req.on('error', () => resolve(false));
    }), {tries: 300});
    run('skopeo', ['copy', '-q', '--src-tls-verify=false', '--src-creds', `bob:${regPassword}`, `docker://${REG}/tee/app:v1`, 'oci:out:v1']);
    run('umoci', ['unpack', '--image', 'out:v1', 'run-tls']);
    const cfgPath = path.join(tmp, 'run-tls/config.json');
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    cfg.process.terminal = false;
    cfg.mounts.push({destination: '/run/vouch/agent.sock', type: 'bind', source: sock, options: ['bind']});
    cfg.linux.namespaces = cfg.linux.namespaces.filter(n => n.type !== 'network');
    fs.writeFileSync(cfgPath, JSON.stringify(cfg));
    runcIds.push('ui-conv-tls');
    daemon('runc', 'runc', ['--root', path.join(tmp, 'runc'), 'run', 'ui-conv-tls'], {cwd: path.join(tmp, 'run-tls')});
    await until(`the converted app listens on ${tlsPort}: ` + logTail('runc'), () => new Promise(resolve => {
      const s = net.connect(tlsPort, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    }), {tries: 300});
    // Asynchronously: the event loop must keep running (the probe's close, the proxy).
    const out = await new Promise(resolve => {
      const c = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-verify_return_error', '-CAfile', zoneCa,
        '-verify_hostname', 'web.example.com'], {stdio: ['pipe', 'pipe', 'pipe']});
      let text = '';
      c.stdout.on('data', d => { text += d; });
      c.stderr.on('data', d => { text += d; });
      const timer = setTimeout(() => { text += ' (timed out)'; c.kill('SIGKILL'); }, 20000);
      c.on('close', () => { clearTimeout(timer); resolve(text); });
      c.stdin.end();
    });
    expect(out.includes('Verification: OK'), 'the console-made, console-approved image runs under runc and serves TLS that s_client verifies against the zone CA',
           out.slice(-300));
  } else {
    console.log('# skipped: runc run of the converted image (needs vouch-agent, runc and root)');
  }

  const serious = consoleErrors.filter(e => !e.includes('401') && !e.includes('403') && !e.includes('404') && !e.includes('Failed to load resource'));
  expect(serious.length === 0, 'no script errors in the browser console', serious.join(' | '));
} catch (e) {
  await fail(e.message.split('\n')[0] + (process.env.VOUCH_KEEP === '1' ? ` (kept ${tmp})` : ''));
}
console.log(`ui.conversions: all ${passed} checks passed; screenshots in ${ARTIFACTS}`);
await cleanup();

// Shared set-up of the console's browser tests that need only vouchd and the vouch CLI
// (zone_ca_rotation_test.mjs, backups_test.mjs): a real vouchd (`init --dev` + `serve`, on a free
// loopback port, in a temp dir), CLI contexts per user, and Debian's Chromium driven headless by
// playwright-core, kept off the network and trusting only the server's key (as ui_test.mjs).
// Every check prints "ok N - what"; run() prints "FAIL: ..." at the first failure and exits non-zero.
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import https from 'node:https';
import crypto from 'node:crypto';
import tls from 'node:tls';

export const sleep = ms => new Promise(r => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

// Starts everything and runs `body(t)`; `t` carries the helpers below. Exits the process.
export async function run({name, vouchd, vouch, artifacts, serveArgs = []}, body) {
  let chromium;
  try {
    ({chromium} = await import('playwright-core'));
  } catch {
    console.error('FAIL: playwright-core is not installed: run scripts/setup (npm ci in ui/)');
    process.exit(1);
  }
  const CHROMIUM = process.env.VOUCH_CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(CHROMIUM)) { console.error(`FAIL: ${CHROMIUM} missing: run scripts/setup (Debian package chromium)`); process.exit(1); }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `vouch-ui-${name}.`));
  const children = [];
  let browser = null;
  let passed = 0;
  const cleanup = async () => {
    if (browser) await browser.close().catch(() => {});
    for (const c of children) { try { c.kill('SIGKILL'); } catch {} }
    if (process.env.VOUCH_KEEP !== '1') fs.rmSync(tmp, {recursive: true, force: true});
  };
  process.on('SIGINT', async () => { await cleanup(); process.exit(130); });
  process.on('SIGTERM', async () => { await cleanup(); process.exit(143); });
  const ok = what => { passed++; console.log(`ok ${passed} - ${what}`); };
  const expect = (cond, what, detail = '') => {
    if (!cond) throw new Error(what + (detail ? ': ' + String(detail).replace(/\s*\n\s*/g, ' | ') : ''));
    ok(what);
  };
  // Polls `fn` (async, truthy = done) every `ms` up to `tries` times; fails loudly with `what`.
  const until = async (what, fn, {tries = 100, ms = 100} = {}) => {
    let last;
    for (let i = 0; i < tries; i++) {
      try { last = await fn(); } catch { last = null; }
      if (last) return last;
      await sleep(ms);
    }
    throw new Error('timed out waiting: ' + what);
  };

  const data = path.join(tmp, 'vouchd');
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const ca = path.join(data, 'service-ca.pem');
  const passwords = {admin: 'admin-password-123', approver1: 'approver-one-pass', approver2: 'approver-two-pass',
                     viewer1: 'viewer-password-1'};
  const pw = (user, text) => { const f = path.join(tmp, user + '.pw'); fs.writeFileSync(f, text + '\n', {mode: 0o600}); return f; };
  const cliEnv = as => ({...process.env, VOUCH_CONFIG: path.join(tmp, `cli-${as}.json`)});
  // The vouch CLI as `as`; JSON out unless json: false. Throws with stderr on a non-zero exit.
  const cli = (args, {as = 'admin', json = true} = {}) => {
    try {
      const out = execFileSync(vouch, json ? [...args, '-o', 'json'] : args, {env: cliEnv(as), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']});
      return json ? JSON.parse(out) : out;
    } catch (e) {
      throw new Error(`vouch ${args.join(' ')}: ${(e.stderr || e.message).toString().trim()}`);
    }
  };
  // HTTPS with Node, trusting only the service CA.
  const fetchRaw = (p, {method = 'GET', headers = {}, body} = {}) => new Promise((resolve, reject) => {
    const req = https.request(url + p, {method, ca: fs.readFileSync(ca), headers}, res => {
      const chunks = [];
      res.on('data', d => chunks.push(d));
      res.on('end', () => resolve({status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8')}));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
  const spkiPin = () => new Promise((resolve, reject) => {
    const s = tls.connect({host: '127.0.0.1', port, ca: fs.readFileSync(ca), servername: 'localhost', checkServerIdentity: () => undefined}, () => {
      const der = new crypto.X509Certificate(s.getPeerCertificate(true).raw).publicKey.export({type: 'spki', format: 'der'});
      s.end();
      resolve(crypto.createHash('sha256').update(der).digest('base64'));
    });
    s.on('error', reject);
  });
  const shot = async (page, file) => {
    fs.mkdirSync(artifacts, {recursive: true});
    await page.screenshot({path: path.join(artifacts, file + '.png'), fullPage: true});
  };
  const consoleErrors = [];
  const newPage = async (viewport = {width: 1280, height: 860}) => {
    const ctx = await browser.newContext({viewport, baseURL: url, acceptDownloads: true});
    const page = await ctx.newPage();
    page.on('console', m => { if (m.type() === 'error') consoleErrors.push(m.text()); });
    page.on('pageerror', e => consoleErrors.push(String(e)));
    page.setDefaultTimeout(15000);
    return page;
  };
  const login = async (page, user) => {
    await page.goto('/');
    await page.getByLabel('User name').fill(user);
    await page.getByLabel('Password').fill(passwords[user]);
    await page.getByRole('button', {name: 'Sign in'}).click();
    await page.getByRole('heading', {name: 'Dashboard'}).waitFor();
    return page;
  };
  // Shows view `hash` afresh (reloads when it is the one shown) and waits for its heading.
  const go = async (page, hash, heading) => {
    if (page.url() === url + '/#' + hash) await page.reload();
    else await page.goto('/#' + hash);
    await page.getByRole('heading', {level: 1, name: heading, exact: !heading.startsWith('Tasks')}).waitFor();
  };
  // Fails when a 390 px wide page scrolls sideways (wide tables must scroll inside their box).
  const fitsPhone = async (page, what) => {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 0, `${what} fits a 390 px phone screen`, `${overflow}px too wide`);
  };
  // The message a refused API call answers, asked with the page's own session (cookie + CSRF).
  const refusalOf = (page, method, p) => page.evaluate(async ([m, q]) => {
    const who = await (await fetch('/api/v1/sys/whoami')).json();
    const r = await fetch('/api/v1' + q, {method: m, headers: {'Content-Type': 'application/json', 'X-CSRF-Token': who.csrf_token}, body: '{}'});
    return {status: r.status, ...((await r.json()).error || {})};
  }, [method, p]);

  try {
    execFileSync(vouchd, ['init', '--data-dir', data, '--admin-user', 'admin', '--admin-password-file', pw('admin', passwords.admin),
                          '--listen', `127.0.0.1:${port}`, '--dev'], {stdio: 'ignore'});
    const log = fs.openSync(path.join(tmp, 'vouchd.log'), 'a');
    children.push(spawn(vouchd, ['serve', '--data-dir', data, ...serveArgs], {stdio: ['ignore', log, log]}));
    await until('vouchd healthy', async () => (await fetchRaw('/healthz')).status === 200, {tries: 200, ms: 50})
      .catch(() => { throw new Error('vouchd did not become healthy: ' + fs.readFileSync(path.join(tmp, 'vouchd.log'), 'utf8').slice(-600)); });
    ok('vouchd serves on ' + url);
    execFileSync(vouch, ['login', '--server', url, '--ca-file', ca, '--user', 'admin', '--password-file', pw('admin', passwords.admin)],
                 {env: cliEnv('admin'), stdio: 'ignore'});
    for (const u of ['approver1', 'approver2', 'viewer1']) {
      cli(['user', 'create', u, '--role', u.replace(/\d$/, ''), '--password-file', pw(u, passwords[u])], {json: false});
      execFileSync(vouch, ['login', '--server', url, '--ca-file', ca, '--user', u, '--password-file', pw(u, passwords[u])],
                   {env: cliEnv(u), stdio: 'ignore'});
    }
    ok('CLI: admin, two approvers and a viewer');
    const pin = await spkiPin();
    const args = [
      `--ignore-certificate-errors-spki-list=${pin}`,
      '--proxy-server=http://127.0.0.1:9', '--proxy-bypass-list=127.0.0.1',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
      '--disable-domain-reliability', '--disable-client-side-phishing-detection', '--no-first-run', '--no-pings',
      '--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
    ];
    if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
    browser = await chromium.launch({executablePath: CHROMIUM, headless: true, args});
    await body({tmp, data, url, ca, cli, fetchRaw, newPage, login, go, shot, ok, expect, until, fitsPhone, refusalOf, passwords});
    const serious = consoleErrors.filter(e => !e.includes('401') && !e.includes('403') && !e.includes('409') &&
                                              !e.includes('Failed to load resource'));
    expect(serious.length === 0, 'no script errors in the browser console', serious.join(' | '));
  } catch (e) {
    console.error('FAIL: ' + e.message.split('\n')[0] + (process.env.VOUCH_KEEP === '1' ? ` (kept ${tmp})` : ''));
    await cleanup();
    process.exit(1);
  }
  console.log(`${name}: all ${passed} checks passed; screenshots in ${artifacts}`);
  await cleanup();
  process.exit(0);
}

// Browser test of zone CA rotation in the web console (issue 18; ui/zone_cas.js): a real vouchd, the
// vouch CLI, Debian's Chromium headless (ui/tests/harness.mjs).
// Usage: node ui/tests/zone_ca_rotation_test.mjs VOUCHD VOUCH ARTIFACT_DIR
// Steps: the zone page's "Certificate authorities" lists the current root with the fingerprint and
// dates of the zone's CA certificate; an admin rotates (confirm dialog), the next root shows pending
// with its approval task (0 / 2) and a link to the task inbox; two approvers approve it there (the
// zone's quorum of 2); the next root shows approved with its dates; the bundle downloaded from the
// page holds both roots' PEMs; the admin activates (confirm dialog): the new root is current, the
// old one retired with its retirement date, and its CRL (the row's link) verifies against it; a
// stale page's "Activate next root" shows the API's refusal message; a viewer sees the roots and
// the bundle but no Rotate or Activate; the page fits a phone. Screenshots: zone-cas (the section
// with an approved next root), zone-cas-activated, zone-cas-page.
import {spawnSync} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {run} from './harness.mjs';

const [VOUCHD, VOUCH, ARTIFACTS = path.join(os.tmpdir(), 'vouch-ui-artifacts')] = process.argv.slice(2).map(a => a && path.resolve(a));
if (!VOUCHD || !VOUCH) { console.error('usage: zone_ca_rotation_test.mjs VOUCHD VOUCH [ARTIFACT_DIR]'); process.exit(2); }

const pems = text => text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) || [];
const hexOf = colon => colon.replace(/:/g, '').toLowerCase();
// A date as the console shows it (dom.js when()).
const shown = d => new Date(d).toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC');

await run({name: 'zone_ca_rotation', vouchd: VOUCHD, vouch: VOUCH, artifacts: ARTIFACTS}, async t => {
  const {cli, fetchRaw, newPage, login, go, shot, ok, expect, until, fitsPhone, refusalOf, tmp} = t;
  cli(['zone', 'create', 'prod', '--approvals', '2']);
  const oldPem = cli(['zone', 'ca', 'prod'], {json: false});
  const oldCert = new crypto.X509Certificate(oldPem);
  ok('zone prod with a quorum of 2');

  // ------------------------------------------------------------ the current root
  const admin = await login(await newPage(), 'admin');
  await go(admin, '/zones/prod', 'Zone prod');
  const section = admin.locator('.zone-cas');
  await section.getByRole('heading', {name: 'Certificate authorities'}).waitFor();
  const rows = section.locator('tbody tr');
  const rowOf = state => rows.filter({has: admin.locator(`[data-state="${state}"]`)});
  expect(await rows.count() === 1 && (await rowOf('active').textContent()).includes('current'),
         'the zone page lists one root, current');
  const activeRow = rowOf('active');
  expect(await activeRow.locator('code.fingerprint').getAttribute('title') === oldCert.fingerprint256,
         'the current root\'s SHA-256 fingerprint is the zone CA certificate\'s');
  const activeText = await activeRow.textContent();
  expect(activeText.includes(shown(oldCert.validFrom)) && activeText.includes(shown(oldCert.validTo)) &&
         activeText.includes(oldCert.subject.split('\n').find(l => l.startsWith('CN=')).slice(3)),
         'the current root shows its subject and its not-before and not-after dates', activeText);
  expect(await admin.getByRole('button', {name: 'Activate next root'}).count() === 0,
         'no "Activate next root" without an approved next root');

  // ------------------------------------------------------------ rotate (admin, confirm)
  await admin.getByRole('button', {name: 'Rotate CA'}).click();
  const dlg = admin.getByRole('dialog');
  expect((await dlg.textContent()).includes('waits for 2 approval(s)'), 'rotating asks for confirmation and names the quorum');
  await dlg.getByRole('button', {name: 'Rotate CA'}).click();
  await admin.getByText('Next root created: its approval task needs 2 approval(s) (see Tasks).').waitFor();
  const pendingRow = rowOf('pending');
  await pendingRow.waitFor();
  const pendingText = await pendingRow.textContent();
  expect(pendingText.includes('next (pending approval)') && pendingText.includes('0 / 2 approvals'),
         'the next root shows pending with its approval task at 0 / 2', pendingText);
  expect(await pendingRow.getByRole('link', {name: 'approve in Tasks'}).getAttribute('href') === '#/tasks',
         'the pending root links to the approval inbox');
  const cas = cli(['zone', 'cas', 'prod']).items;
  const next = cas.find(c => c.status === 'pending');
  expect(next && next.task_id && cli(['task', 'get', next.task_id]).kind === 'ca_rotation',
         'the API holds the pending root with a ca_rotation task (checked with the CLI)');
  expect(await admin.getByRole('button', {name: 'Rotate CA'}).count() === 0, 'no second "Rotate CA" while a next root is pending');

  // ------------------------------------------------------------ two approvers, from the zone page's link
  for (const who of ['approver1', 'approver2']) {
    const p = await login(await newPage(), who);
    await go(p, '/zones/prod', 'Zone prod');
    expect(await p.getByRole('button', {name: 'Rotate CA'}).count() === 0, `${who} (approver) is offered no "Rotate CA"`);
    await p.locator('.zone-cas').getByRole('link', {name: 'approve in Tasks'}).click();
    await p.getByRole('heading', {level: 1, name: 'Tasks: approval inbox'}).waitFor();
    const row = p.getByRole('row').filter({hasText: 'rotate the root CA of zone prod'});
    await row.getByRole('button', {name: 'Approve'}).click();
    await p.getByText('Approved.').waitFor();
    ok(`${who} approves the rotation in the task inbox`);
    await p.context().close();
  }
  expect(cli(['zone', 'cas', 'prod']).items.find(c => c.id === next.id)?.status === 'approved',
         'two approvals (the zone\'s quorum) approve the next root (checked with the CLI)');

  // ------------------------------------------------------------ approved: dates, bundle download
  await go(admin, '/zones/prod', 'Zone prod');
  const approvedRow = rowOf('approved');
  await approvedRow.waitFor();
  // A stale page of a second admin, still offering activation (used for the refusal below).
  const stale = await login(await newPage(), 'admin');
  await go(stale, '/zones/prod', 'Zone prod');
  await stale.getByRole('button', {name: 'Activate next root'}).waitFor();

  const [download] = await Promise.all([admin.waitForEvent('download'),
                                        admin.getByRole('link', {name: 'Download CA bundle (PEM)'}).click()]);
  expect(download.suggestedFilename() === 'prod-ca-bundle.pem', 'the bundle downloads as prod-ca-bundle.pem');
  const bundle = pems(fs.readFileSync(await download.path(), 'utf8'));
  const bundleCerts = bundle.map(p => new crypto.X509Certificate(p));
  const nextCert = bundleCerts.find(c => hexOf(c.fingerprint256) === next.ca.sha256);
  expect(bundle.length === 2 && bundleCerts.some(c => c.fingerprint256 === oldCert.fingerprint256) && nextCert,
         'the downloaded bundle holds both PEMs: the current root and the approved next root', bundle.length);
  const approvedText = await approvedRow.textContent();
  expect(approvedText.includes('next (approved)') && approvedText.includes('2 / 2 approvals') &&
         approvedText.includes(shown(nextCert.validFrom)) && approvedText.includes(shown(nextCert.validTo)) &&
         await approvedRow.locator('code.fingerprint').getAttribute('title') === nextCert.fingerprint256,
         'the next root shows approved (2 / 2) with its fingerprint and its not-before and not-after dates', approvedText);
  await section.screenshot({path: path.join(ARTIFACTS, 'zone-cas.png')});
  await shot(admin, 'zone-cas-page');

  // ------------------------------------------------------------ activate (confirm)
  await admin.getByRole('button', {name: 'Activate next root'}).click();
  const adlg = admin.getByRole('dialog');
  expect((await adlg.textContent()).includes('The current root is retired'), 'activation asks for confirmation and says what it does');
  await adlg.getByRole('button', {name: 'Activate next root'}).click();
  await admin.getByText('Next root activated; the previous root is retired.').waitFor();
  const retiredRow = rowOf('retired');
  await retiredRow.waitFor();
  const current = rowOf('active');
  expect(await current.locator('code.fingerprint').getAttribute('title') === nextCert.fingerprint256 &&
         (await current.textContent()).includes('current'), 'after activation the new root is current');
  const retiredText = await retiredRow.textContent();
  const after = cli(['zone', 'cas', 'prod']).items;
  const retired = after.find(c => c.status === 'retired');
  expect(await retiredRow.locator('code.fingerprint').getAttribute('title') === oldCert.fingerprint256 &&
         retiredText.includes('retired') && retired && retiredText.includes(shown(retired.retired_at)),
         'the old root shows retired, with its retirement date', retiredText);
  expect(cli(['zone', 'ca', 'prod'], {json: false}) !== oldPem && await admin.getByRole('button', {name: 'Rotate CA'}).count() === 1,
         'the zone\'s CA is the new root (CLI) and a new rotation can start');
  const crlHref = await retiredRow.getByRole('link', {name: 'CRL (PEM)'}).getAttribute('href');
  const crl = await fetchRaw(crlHref);
  fs.writeFileSync(path.join(tmp, 'old.crl.pem'), crl.body);
  fs.writeFileSync(path.join(tmp, 'old-root.pem'), oldPem);
  const ssl = spawnSync('openssl', ['crl', '-in', path.join(tmp, 'old.crl.pem'), '-CAfile', path.join(tmp, 'old-root.pem'), '-noout'],
                        {encoding: 'utf8'});
  const verdict = `${ssl.stdout}${ssl.stderr}`;
  expect(crl.status === 200 && crlHref.includes('ca=' + retired.id) && ssl.status === 0 && /verify OK/.test(verdict),
         'the retired root\'s CRL link serves its own CRL, signed by the old root (openssl crl)', verdict);
  await section.screenshot({path: path.join(ARTIFACTS, 'zone-cas-activated.png')});

  // ------------------------------------------------------------ a refused action shows the API's message
  await stale.getByRole('button', {name: 'Activate next root'}).click();
  await stale.getByRole('dialog').getByRole('button', {name: 'Activate next root'}).click();
  const alert = stale.locator('.action-error');
  await alert.waitFor();
  const refusal = await refusalOf(stale, 'POST', '/zones/prod/ca/activate');
  expect(refusal.status === 409 && refusal.code === 'no_approved_ca' && (await alert.textContent()) === refusal.message,
         'activating from a stale page shows the API\'s refusal (409 no_approved_ca) as it answered it', await alert.textContent());
  await until('the stale page keeps its rows', async () => (await stale.locator('.zone-cas tbody tr').count()) >= 1);

  // ------------------------------------------------------------ viewer and phone
  const viewer = await login(await newPage(), 'viewer1');
  await go(viewer, '/zones/prod', 'Zone prod');
  await viewer.locator('.zone-cas [data-state="retired"]').waitFor();
  expect(await viewer.getByRole('button', {name: /Rotate CA|Activate next root/}).count() === 0 &&
         await viewer.getByRole('link', {name: 'Download CA bundle (PEM)'}).count() === 1,
         'a viewer sees the roots and the bundle but no Rotate or Activate');
  const phone = await login(await newPage({width: 390, height: 844}), 'admin');
  await go(phone, '/zones/prod', 'Zone prod');
  await phone.locator('.zone-cas [data-state="retired"]').waitFor();
  await fitsPhone(phone, 'the zone page with its roots');
});

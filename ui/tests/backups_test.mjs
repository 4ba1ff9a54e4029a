// Browser test of the backups page of the web console (issue 18; ui/backups.js): a real vouchd
// serving with a backup folder, the vouch CLI, Debian's Chromium headless (ui/tests/harness.mjs).
// Usage: node ui/tests/backups_test.mjs VOUCHD VOUCH ARTIFACT_DIR
// Steps: an empty folder says no verified backup; "Back up now" takes one: the page shows its
// SHA-256 (that of the file in the folder) and lists it with its time, size and "verified"; the
// newest good backup's age is shown; a damaged archive dropped into the folder is listed as failed
// with its reason while the newest good backup stays the verified one; a second backup from the
// CLI appears (screenshot `backups`, the damaged archive still listed); a viewer has no Backups
// menu entry and the page tells them it is for admins; the page fits a phone.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {run} from './harness.mjs';
import {bytes} from '../conversions.js';

const [VOUCHD, VOUCH, ARTIFACTS = path.join(os.tmpdir(), 'vouch-ui-artifacts')] = process.argv.slice(2).map(a => a && path.resolve(a));
if (!VOUCHD || !VOUCH) { console.error('usage: backups_test.mjs VOUCHD VOUCH [ARTIFACT_DIR]'); process.exit(2); }
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vouch-ui-backups-dir.'));
process.on('exit', () => { if (process.env.VOUCH_KEEP !== '1') fs.rmSync(dir, {recursive: true, force: true}); });

await run({name: 'backups', vouchd: VOUCHD, vouch: VOUCH, artifacts: ARTIFACTS, serveArgs: ['--backup-dir', dir, '--backup-keep', '5']},
  async t => {
    const {cli, newPage, login, go, shot, ok, expect, until, fitsPhone} = t;
    const admin = await login(await newPage(), 'admin');
    await admin.getByRole('link', {name: 'Backups'}).click();
    await admin.getByRole('heading', {level: 1, name: 'Backups'}).waitFor();
    const newest = admin.locator('#backup-newest');
    expect((await newest.textContent()).includes('No verified backup yet.') &&
           (await admin.locator('main').textContent()).includes(dir) &&
           (await admin.locator('main').textContent()).includes('the newest 5 good backups are kept'),
           'an empty folder: no verified backup; the page names the folder and the retention');

    // ---------------------------------------------------------- Back up now
    await admin.getByRole('button', {name: 'Back up now'}).click();
    await admin.getByText(/^Backup vouch-backup-\S+\.vbk taken and verified\.$/).waitFor({timeout: 60000});
    const files = fs.readdirSync(dir).filter(f => f.endsWith('.vbk'));
    expect(files.length === 1, 'one archive in the folder', files.join());
    const file = path.join(dir, files[0]);
    const sha = crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    expect((await admin.locator('#backup-sha256').textContent()) === sha,
           'the page shows the SHA-256 of the archive it took (that of the file in the folder)');
    const row = admin.locator('tbody tr').filter({hasText: files[0]});
    const rowText = await row.textContent();
    expect(rowText.includes(bytes(fs.statSync(file).size)) && await row.locator('[data-state="verified"]').count() === 1 &&
           /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/.test(rowText),
           'the list shows the archive with its time, size and "verified"', rowText);
    const newestText = await newest.textContent();
    expect(/Newest good backup: \d+s ago/.test(newestText) && newestText.includes(files[0]),
           'the age of the newest good backup is shown', newestText);

    // ---------------------------------------------------------- a damaged archive is listed as failed
    const bad = path.join(dir, 'vouch-backup-29991231T235959Z-00.vbk');
    const bytesOf = fs.readFileSync(file);
    bytesOf[Math.floor(bytesOf.length / 2)] ^= 0x01;
    fs.writeFileSync(bad, bytesOf);
    await go(admin, '/backups', 'Backups');
    const badRow = admin.locator('tbody tr').filter({hasText: path.basename(bad)});
    await badRow.waitFor();
    const badText = await badRow.textContent();
    expect(await badRow.locator('[data-state="failed"]').count() === 1 && /backup_\w+/.test(badText),
           'a damaged archive is listed as failed with its reason', badText);
    expect((await newest.textContent()).includes(files[0]), 'the newest good backup is still the verified one');

    // ---------------------------------------------------------- a backup taken elsewhere appears
    const other = cli(['backup', 'create']);
    await go(admin, '/backups', 'Backups');
    await admin.locator('tbody tr').filter({hasText: other.name}).locator('[data-state="verified"]').waitFor();
    await until('the newest good backup is the CLI\'s', async () => (await newest.textContent()).includes(other.name));
    ok('a backup taken with vouch backup create is listed, verified, and is the newest good one');
    expect(await admin.locator('#backup-taken').count() === 0, 'the one-time checksum box is gone after navigating');
    await shot(admin, 'backups');  // with the damaged archive listed
    fs.rmSync(bad);

    // ---------------------------------------------------------- viewer, phone
    const viewer = await login(await newPage(), 'viewer1');
    expect(await viewer.getByRole('link', {name: 'Backups'}).isHidden(), 'a viewer does not see the Backups menu entry');
    await go(viewer, '/backups', 'Backups');
    expect((await viewer.locator('main').textContent()).includes('Only admins see backups.') &&
           await viewer.getByRole('button', {name: 'Back up now'}).count() === 0, 'a viewer is told backups are for admins');
    const phone = await login(await newPage({width: 390, height: 844}), 'admin');
    await go(phone, '/backups', 'Backups');
    await phone.locator('tbody tr').first().waitFor();
    await fitsPhone(phone, 'the backups page');
  });

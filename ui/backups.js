// Server backups (issue 18) in the console, for admins: the archives in vouchd's backup folder
// (`vouchd serve --backup-dir`, docs/operations.md) with their time, size, schema and verification
// state, the age of the newest good one (what vouch_backup_newest_age_seconds tells monitoring),
// and "Back up now". Uses only GET and POST /api/v1/backups. No side effects on import; views.js
// registers the route.
import {get, post} from './api.js';
import {h, clear, table, props, when, ago, copyButton} from './dom.js';
import {can, currentGeneration, every, rerender, say} from './shell.js';
import {bytes} from './conversions.js';

function alertError(e) {
  const main = document.getElementById('main');
  main.querySelector('.action-error')?.remove();
  main.prepend(h('p', {class: 'error action-error', role: 'alert'}, e.message));
}

function verifiedBadge(b) {
  return b.verified ? h('span', {class: 'badge ok', dataset: {state: 'verified'}}, 'verified')
    : h('span', {class: 'badge bad', dataset: {state: 'failed'}, title: b.message || ''}, 'failed');
}

// The newest backup that verifies (the list is newest first), or null.
export function newestGood(list) { return list.find(b => b.verified && b.created_at) || null; }

// What the last "Back up now" answered (its checksum is shown once, the list has none), for the
// re-render that follows it only (that render is the next generation).
let lastTaken = null;

function newestBox(list) {
  const good = newestGood(list);
  return h('div', {class: 'backup-newest' + (good ? '' : ' none'), id: 'backup-newest', role: 'status'},
    good ? h('p', {}, h('strong', {}, 'Newest good backup: '), ago(good.created_at), ' (', when(good.created_at), ', ',
                   h('code', {}, good.name), ')')
         : h('p', {}, h('strong', {}, 'No verified backup yet.'), ' Take one now, or run vouchd serve --backup-interval-hours.'));
}

export async function backups() {
  const root = h('section', {}, h('h1', {}, 'Backups'));
  if (!can('admin')) {
    root.appendChild(h('p', {class: 'muted'}, 'Only admins see backups.'));
    return root;
  }
  const r = await get('/backups');
  root.appendChild(h('p', {class: 'muted'}, 'Consistent snapshots of the store and the data directory, taken while vouchd serves ' +
    '(the same archive as vouchd backup); sealed secrets stay sealed, the master key is never in them. Restore with ' +
    'vouchd restore and the master key or m of its custodians\' shares (docs/operations.md).'));
  let newest = newestBox(r.backups);
  root.appendChild(newest);
  root.appendChild(props([['Folder', h('code', {}, r.dir)], ['Retention', `the newest ${r.keep} good backups are kept`]]));
  const button = h('button', {type: 'button'}, 'Back up now');
  button.addEventListener('click', async () => {
    button.disabled = true;
    say('Taking a backup…');
    try {
      lastTaken = {...await post('/backups'), generation: currentGeneration() + 1};
      await rerender();
      say(`Backup ${lastTaken.name} taken and verified.`);
    } catch (e) {
      say('');
      alertError(e);
      button.disabled = false;
    }
  });
  root.appendChild(h('div', {class: 'toolbar'}, button));
  if (lastTaken && lastTaken.generation === currentGeneration()) {
    root.appendChild(h('div', {class: 'notice', role: 'status', id: 'backup-taken'},
      h('p', {}, h('strong', {}, `Backup ${lastTaken.name}`), ` (${bytes(lastTaken.size)}, schema ${lastTaken.schema_version})`),
      h('p', {}, 'SHA-256 of the archive: ', h('code', {id: 'backup-sha256'}, lastTaken.sha256), ' ',
        copyButton(lastTaken.sha256, 'Copy checksum'))));
  } else {
    lastTaken = null;
  }
  const list = h('div', {});
  const render = items => {
    const box = newestBox(items);
    newest.replaceWith(box);
    newest = box;
    clear(list).appendChild(table(items, [
      {title: 'Taken', cell: b => when(b.created_at)},
      {title: 'Age', cell: b => ago(b.created_at), class: 'hide-narrow'},
      {title: 'Archive', cell: b => h('code', {}, b.name)},
      {title: 'Size', cell: b => bytes(b.size)},
      {title: 'Schema', cell: b => b.schema_version ?? '—', class: 'hide-narrow'},
      {title: 'Checksums', cell: b => h('span', {}, verifiedBadge(b), b.verified ? null : [' ', h('code', {}, b.reason || 'unreadable')])},
    ], {label: 'Backups', empty: 'No backups in the folder yet.'}));
  };
  render(r.backups);
  root.appendChild(list);
  // Scheduled backups (--backup-interval-hours) and other members' appear without a reload.
  every(15000, () => get('/backups').then(x => render(x.backups)).catch(() => {}));
  return root;
}

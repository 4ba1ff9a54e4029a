// Small DOM helpers. Text always goes through textContent (never innerHTML), so data from the
// server cannot inject markup; the CSP also forbids inline scripts and enforces Trusted Types.

// h('a', {href: '#/x', class: 'c'}, 'text', child, [more children])
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// A table: columns = [{title, cell: item => node|string, class?}]
export function table(items, columns, {caption, empty = 'Nothing here yet.', label} = {}) {
  if (!items.length) return h('p', {class: 'muted empty'}, empty);
  const head = h('tr', {}, columns.map(c => h('th', {scope: 'col', class: c.class}, c.title)));
  const rows = items.map(item => h('tr', {}, columns.map(c => h('td', {class: c.class}, c.cell(item)))));
  return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label || caption || 'table'},
           h('table', {}, caption ? h('caption', {}, caption) : null, h('thead', {}, head), h('tbody', {}, rows)));
}

export function props(pairs) {
  return h('dl', {class: 'props'}, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));
}

const kTones = {
  ok: 'ok', ready: 'ok', intact: 'ok', 'not ready': 'bad', broken: 'bad', approved: 'ok', valid: 'ok', running: 'ok', active: 'ok', UpToDate: 'ok', true: 'ok',
  pending: 'warn', unresponsive: 'warn', SWHardeningNeeded: 'warn', ConfigurationNeeded: 'warn',
  ConfigurationAndSWHardeningNeeded: 'warn',
  denied: 'bad', revoked: 'bad', expired: 'bad', stopped: 'neutral', deactivated: 'bad', OutOfDate: 'bad',
  OutOfDateConfigurationNeeded: 'bad', false: 'bad', disabled: 'bad',
};
export function badge(text) {
  const t = String(text ?? '—');
  return h('span', {class: 'badge ' + (kTones[t] || 'neutral')}, t);
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  return h('time', {datetime: iso, title: iso}, d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC'));
}

export function ago(iso) {
  if (!iso) return '—';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const text = s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : s < 86400 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86400)} d ago`;
  return h('time', {datetime: iso, title: iso}, text);
}

export function short(hex, n = 12) {
  if (!hex) return '—';
  return h('code', {title: hex}, hex.length > n ? hex.slice(0, n) + '…' : hex);
}

export function link(href, text) { return h('a', {href}, text); }

// A button that copies `text` to the clipboard and says so.
export function copyButton(text, label = 'Copy') {
  const b = h('button', {type: 'button', class: 'secondary copy'}, label);
  b.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      b.textContent = 'Copied';
    } catch {
      b.textContent = 'Copy failed: select the text';
    }
    setTimeout(() => { b.textContent = label; }, 2000);
  });
  return b;
}

// A modal dialog; resolves {ok, reason}. With `reason`, asks for a reason (required if `required`).
export function ask({title, message, confirm = 'OK', danger = false, reason = false, required = false}) {
  return new Promise(resolve => {
    const input = reason ? h('textarea', {name: 'reason', required, maxlength: '1000', rows: '3'}) : null;
    const form = h('form', {method: 'dialog'},
      h('h2', {}, title),
      message ? h('p', {}, message) : null,
      input ? h('label', {}, required ? 'Reason (required)' : 'Reason (optional)', input) : null,
      h('menu', {},
        h('button', {type: 'button', class: 'secondary', value: 'cancel'}, 'Cancel'),
        h('button', {type: 'submit', class: danger ? 'danger' : '', value: 'ok'}, confirm)));
    const dlg = h('dialog', {'aria-label': title}, form);
    let result = {ok: false};
    form.addEventListener('submit', e => {
      e.preventDefault();
      if (input && required && !input.value.trim()) { input.focus(); return; }
      result = {ok: true, reason: input ? input.value.trim() : ''};
      dlg.close();
    });
    form.querySelector('button[value=cancel]').addEventListener('click', () => dlg.close());
    dlg.addEventListener('close', () => { dlg.remove(); resolve(result); });
    document.body.appendChild(dlg);
    dlg.showModal();
    (input || form.querySelector('button[type=submit]')).focus();
  });
}

export function field(label, input) { return h('label', {}, label, input); }

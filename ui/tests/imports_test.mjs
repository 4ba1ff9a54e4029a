// The console's modules import each other without a cycle, and only app.js (the entry point in
// index.html) has top-level side effects, so any view module can be imported on its own.
// Usage: node imports_test.mjs UI_DIR
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js'));
const graph = {};
for (const f of files) {
  const text = fs.readFileSync(path.join(dir, f), 'utf8');
  graph[f] = [...text.matchAll(/^\s*import\s[^;]*?from\s+'\.\/([^']+)'/gm)].map((m) => m[1]);
}
let passed = 0;
let failed = 0;
const check = (what, cond) => {
  if (cond) passed++; else failed++;
  console.log(`${cond ? 'ok' : 'not ok'} - ${what}`);
};
// Depth-first search for a cycle.
const state = {};
let cycle = null;
const visit = (f, stack) => {
  if (cycle) return;
  if (state[f] === 'open') { cycle = [...stack.slice(stack.indexOf(f)), f]; return; }
  if (state[f] === 'done') return;
  state[f] = 'open';
  for (const dep of graph[f] ?? []) visit(dep, [...stack, f]);
  state[f] = 'done';
};
for (const f of files) visit(f, []);
check(`no import cycle among ${files.length} modules${cycle ? ` (found ${cycle.join(' -> ')})` : ''}`, !cycle);
check('views.js imports the shared state from shell.js, not from app.js', !graph['views.js']?.includes('app.js'));
check('nothing imports app.js (the entry point)', !files.some((f) => graph[f].includes('app.js')));
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

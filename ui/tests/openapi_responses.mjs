// Validates recorded API answers against docs/api/openapi.json: every line of RECORDED (written by
// the vouch CLI when VOUCH_RECORD_API=FILE is set, libs/client/api_client.cc) is
// {method, path, status, content_type, body?}. For each, the operation is found by method and path
// template, the response by status (else `default`), and a JSON body is validated against that
// response's application/json schema (Ajv, the JSON Schema validator swagger-parser itself uses).
// An undocumented operation or status, a JSON body where the document names no JSON schema, and every
// schema mismatch are failures, listed with operation, status, JSON pointer and message.
// Usage: node openapi_responses.mjs openapi.json RECORDED.jsonl
import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv from 'ajv';
import fs from 'node:fs';

const [, , docPath, recordPath] = process.argv;
if (!docPath || !recordPath) {
  console.error('usage: node openapi_responses.mjs openapi.json recorded.jsonl');
  process.exit(2);
}

const api = await SwaggerParser.dereference(JSON.parse(fs.readFileSync(docPath, 'utf8')));
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

// Path templates as regular expressions; literal segments win over parameters
// (`/api/v1/zones/{id}/ca` before `/api/v1/zones/{id}/{x}`), so fewer parameters first.
const templates = Object.keys(api.paths)
  .map((tpl) => {
    const params = (tpl.match(/\{[^}]+\}/g) ?? []).length;
    const re = new RegExp(
      '^' + tpl.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+') + '$');
    return { tpl, params, re };
  })
  .sort((a, b) => a.params - b.params);

function findOperation(method, path) {
  const m = method.toLowerCase();
  for (const t of templates) {
    if (t.re.test(path) && METHODS.includes(m) && api.paths[t.tpl][m]) return { tpl: t.tpl, op: api.paths[t.tpl][m] };
  }
  return null;
}

function findResponse(op, status) {
  const rs = op.responses ?? {};
  const code = String(status);
  return rs[code] ?? rs[`${code[0]}XX`] ?? rs[`${code[0]}xx`] ?? rs.default ?? null;
}

// OpenAPI 3.0 schemas: `nullable` is understood by Ajv; `format`s are not checked (no ajv-formats),
// annotations such as `example` are ignored (strict: false).
const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const compiled = new WeakMap();
const validatorFor = (schema) => {
  if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
  return compiled.get(schema);
};

const lines = fs.readFileSync(recordPath, 'utf8').split('\n').filter((l) => l.trim() !== '');
const failures = new Map(); // message -> count (the same mismatch recorded many times is listed once)
const fail = (msg) => failures.set(msg, (failures.get(msg) ?? 0) + 1);
const covered = new Set(); // "METHOD template status"
const operations = new Set();
let validated = 0;

lines.forEach((text, i) => {
  let rec;
  try {
    rec = JSON.parse(text);
  } catch (e) {
    fail(`line ${i + 1} of ${recordPath} is not JSON: ${e.message}`);
    return;
  }
  const found = findOperation(rec.method, rec.path);
  if (!found) {
    fail(`${rec.method} ${rec.path}: no operation in the document`);
    return;
  }
  const name = `${rec.method} ${found.tpl}`;
  operations.add(name);
  const resp = findResponse(found.op, rec.status);
  if (!resp) {
    fail(`${name} ${rec.status}: status not documented`);
    return;
  }
  covered.add(`${name} ${rec.status}`);
  if (!('body' in rec)) return; // not a JSON answer: nothing to validate
  const schema = resp.content?.['application/json']?.schema;
  if (!schema) {
    fail(`${name} ${rec.status}: answered JSON, the document names no application/json schema`);
    return;
  }
  const validate = validatorFor(schema);
  validated++;
  if (!validate(rec.body)) {
    for (const e of validate.errors) {
      const extra = e.params?.additionalProperty ?? e.params?.missingProperty ?? '';
      fail(`${name} ${rec.status} ${e.instancePath || '/'}: ${e.message}${extra ? ` (${extra})` : ''}`);
    }
  }
});

for (const [msg, n] of failures) console.log(`not ok - ${msg}${n > 1 ? ` (${n} times)` : ''}`);
const summary = `${lines.length} responses (${validated} JSON bodies validated), ${operations.size} operations, ${covered.size} operation/status pairs`;
if (failures.size === 0) {
  console.log(`ok - ${summary} match docs/api/openapi.json`);
  process.exit(0);
}
console.log(`${failures.size} distinct mismatches in ${summary}`);
process.exit(1);

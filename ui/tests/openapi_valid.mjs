// Validates docs/api/openapi.json with an independent OpenAPI 3 validator (swagger-parser, from npm),
// the first step of anyone generating a client from it. Usage: node openapi_valid.mjs PATH
import SwaggerParser from '@apidevtools/swagger-parser';
import fs from 'node:fs';

const [, , docPath] = process.argv;
if (!docPath) {
  console.error('usage: node openapi_valid.mjs openapi.json');
  process.exit(2);
}

let passed = 0;
let failed = 0;
const check = (what, cond, detail = '') => {
  if (cond) {
    passed++;
    console.log(`ok - ${what}`);
  } else {
    failed++;
    console.log(`not ok - ${what}${detail ? `: ${detail}` : ''}`);
  }
};

try {
  // validate() parses, resolves $refs and checks the document against the OpenAPI 3.0 schema.
  const api = await SwaggerParser.validate(JSON.parse(fs.readFileSync(docPath, 'utf8')));
  check(`${docPath} is a valid OpenAPI ${api.openapi} document`, true);
  // Every response content key must be a media type, not a nested content map.
  for (const [path, ops] of Object.entries(api.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      for (const [code, resp] of Object.entries(op.responses ?? {})) {
        for (const [mt, media] of Object.entries(resp.content ?? {})) {
          const nested = media.schema && Object.keys(media.schema).some((k) => k.includes('/'));
          if (nested) check(`${method.toUpperCase()} ${path} ${code} ${mt} has a schema, not a media-type map`, false);
        }
      }
    }
  }
  check('no response nests a media type inside a schema', failed === 0);
} catch (e) {
  check(`${docPath} is a valid OpenAPI document`, false, e.message);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

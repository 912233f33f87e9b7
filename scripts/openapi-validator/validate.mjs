// Validates an OpenAPI document (3.0 or 3.1) against the specification's schema and resolves every $ref.
// Usage: node scripts/openapi-validator/validate.mjs DOCUMENT.json
// Prints the parser's verdict as JSON; exits 0 when the document is valid, 1 when it is not, 2 on a usage error.
// @readme/openapi-parser comes from .tools/openapi-validator, where scripts/test.sh installs this folder's lock file.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../.tools/openapi-validator/', import.meta.url));
const { validate } = require('@readme/openapi-parser');

const file = process.argv[2];
if (!file) {
  console.error('usage: node validate.mjs DOCUMENT.json');
  process.exit(2);
}
const result = await validate(JSON.parse(readFileSync(file, 'utf8')));
console.log(JSON.stringify(result, null, 2));
process.exit(result.valid ? 0 : 1);

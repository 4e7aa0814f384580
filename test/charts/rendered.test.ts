import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderAll } from '../../lib/rendered';
import { cdkJsonContext } from '../helpers';

const root = path.join(__dirname, '..', '..');
const files = renderAll(cdkJsonContext.edge);

test.each(Object.keys(files))('%s is committed and up to date (run `npm run render`)', (file) => {
  let committed: string;
  try {
    committed = readFileSync(path.join(root, file), 'utf8');
  } catch {
    throw new Error(`${file} is missing: run \`npm run render\` and commit rendered/`);
  }
  expect(committed).toBe(files[file]);
});

test('deploy-time values appear as placeholders, not as tokens', () => {
  for (const text of Object.values(files)) expect(text).not.toMatch(/\$\{Token\[/);
  expect(files['rendered/prod/manifests.yaml']).toContain('<deploy time: EdgeCertStore-prod primary endpoint>');
  expect(files['rendered/prod/nginx.conf']).toBe(readFileSync(path.join(root, 'rendered/prod/nginx.conf'), 'utf8'));
});

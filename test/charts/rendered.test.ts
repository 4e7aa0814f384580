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
  // The DNS pre-check's targets: the NLB's name, and its Elastic IP in each zone (prod only: dev has none).
  expect(files['rendered/prod/nginx.conf']).toContain('"<deploy time: Edge-prod NLB DNS name>"');
  for (const zone of ['eu-west-1a', 'eu-west-1b', 'eu-west-1c']) {
    expect(files['rendered/prod/nginx.conf']).toContain(`"<deploy time: Edge-prod Elastic IP in ${zone}>"`);
  }
  expect(files['rendered/dev-example/nginx.conf']).toContain('"<deploy time: Edge-dev-example NLB DNS name>"');
  expect(files['rendered/dev-example/nginx.conf']).not.toContain('Elastic IP');
  expect(files['rendered/prod/nginx.conf']).toBe(readFileSync(path.join(root, 'rendered/prod/nginx.conf'), 'utf8'));
});

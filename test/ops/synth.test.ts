import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { outputDir, removeOutputDir } from '../../bin/synth';

// npm run synth leaves in its output directory only what that synth made: no template of a dev
// stack synthesized earlier (npm run dev:up synthesizes with -c dev=<name> into cdk.out).
const root = path.join(__dirname, '..', '..');
let work: string;

beforeEach(() => { work = mkdtempSync(path.join(os.tmpdir(), 'synth-')); });
afterEach(() => rmSync(work, { recursive: true, force: true }));

test('the synth script is bin/synth.ts, after the type check', () => {
  expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.synth).toBe('tsc && tsx bin/synth.ts');
});

test('a synth into an output directory with an earlier dev stack\'s templates leaves exactly the current stacks', () => {
  const out = path.join(work, 'cdk.out');
  mkdirSync(path.join(out, 'asset.0000old'), { recursive: true });
  for (const file of ['Edge-dev-gone.template.json', 'Edge-dev-gone.assets.json', 'Edge-dev-gone.metadata.json', 'manifest.json']) {
    writeFileSync(path.join(out, file), '{}');
  }
  const result = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['bin/synth.ts', '-o', out], { cwd: root, encoding: 'utf8', timeout: 240000 });
  expect(result.stderr).not.toMatch(/error/i);
  expect(result.status).toBe(0);
  const files = readdirSync(out);
  expect(files.filter((f) => f.endsWith('.template.json')).sort()).toEqual([
    'Edge-dev-example.template.json', 'Edge-prod.template.json', 'EdgeCertStore-prod.template.json',
    'EdgeDelivery.template.json', 'EdgePlatform.template.json',
  ]);
  expect(files.filter((f) => f.includes('dev-gone') || f === 'asset.0000old')).toEqual([]);
  // ...and the manifest is the new one, naming only those stacks.
  const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'));
  expect(Object.keys(manifest.artifacts).filter((a) => manifest.artifacts[a].type === 'aws:cloudformation:stack').sort())
    .toEqual(['Edge-dev-example', 'Edge-prod', 'EdgeCertStore-prod', 'EdgeDelivery', 'EdgePlatform']);
}, 240000);

test('the output directory: cdk.out unless -o/--output names another', () => {
  expect(outputDir([], '/repo')).toBe('/repo/cdk.out');
  expect(outputDir(['-o', 'out'], '/repo')).toBe('/repo/out');
  expect(outputDir(['--output', '/tmp/x', '-c', 'dev=alice'], '/repo')).toBe('/tmp/x');
  expect(outputDir(['--output=/tmp/y'], '/repo')).toBe('/tmp/y');
});

test('only a cdk output directory (or an empty one) is ever emptied', () => {
  writeFileSync(path.join(work, 'notes.txt'), 'mine');
  expect(() => removeOutputDir(work)).toThrow(/is not a cdk output directory \(no manifest.json\): not emptying it/);
  expect(existsSync(path.join(work, 'notes.txt'))).toBe(true);
  const result = spawnSync(path.join(root, 'node_modules', '.bin', 'tsx'), ['bin/synth.ts', '-o', work], { cwd: root, encoding: 'utf8' });
  expect(result.status).toBe(2);
  expect(existsSync(path.join(work, 'notes.txt'))).toBe(true);
  const empty = path.join(work, 'empty');
  mkdirSync(empty);
  removeOutputDir(empty);
  expect(existsSync(empty)).toBe(false);
  expect(() => removeOutputDir(path.join(work, 'missing'))).not.toThrow();
});

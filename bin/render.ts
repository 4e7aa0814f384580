#!/usr/bin/env node
// npm run render: writes every environment's Kubernetes manifests and nginx.conf to
// rendered/<env>/, for review (`cdk diff` shows a chart as one JSON string). A test fails when
// the committed files are stale. `npm run render -- --check` only compares.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { renderAll } from '../lib/rendered';

const USAGE = `usage: npm run render [-- --check]
Writes every environment's Kubernetes manifests and nginx.conf to rendered/<env>/ (from cdk.json).
  --check     write nothing; exit 1 naming the files that are stale
  --help, -h  this text`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = args.filter((a) => a !== '--check');
if (unknown.length > 0) {
  console.error(`render: unexpected arguments: ${unknown.join(' ')}\n${USAGE}`);
  process.exit(2);
}
const root = path.join(__dirname, '..');
const check = args.includes('--check');
const files = renderAll(JSON.parse(readFileSync(path.join(root, 'cdk.json'), 'utf8')).context.edge);
const stale: string[] = [];
if (!check) rmSync(path.join(root, 'rendered'), { recursive: true, force: true });
for (const [file, content] of Object.entries(files)) {
  const target = path.join(root, file);
  if (check) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {
      // missing
    }
    if (current !== content) stale.push(file);
  } else {
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, content);
    console.log(`wrote ${file}`);
  }
}
if (stale.length > 0) {
  console.error(`stale, run \`npm run render\`: ${stale.join(', ')}`);
  process.exit(1);
}

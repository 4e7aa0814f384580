#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildEdgeApp } from '../lib/edge-app';
import { ConfigError, resolveConfig, withDevEnvironments } from '../lib/config';

const app = new App();
try {
  // -c dev=alice,bob adds dev-alice and dev-bob (npm run dev:up does this).
  const devLabels = String(app.node.tryGetContext('dev') ?? '').split(',').filter(Boolean);
  buildEdgeApp(app, resolveConfig(withDevEnvironments(app.node.tryGetContext('edge'), devLabels)));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();

#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildEdgeApp } from '../lib/edge-app';
import { ConfigError, resolveConfig } from '../lib/config';

const app = new App();
try {
  buildEdgeApp(app, resolveConfig(app.node.tryGetContext('edge')));
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}
app.synth();

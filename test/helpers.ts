import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App } from 'aws-cdk-lib';
import { resolveConfig } from '../lib/config';
import { buildEdgeApp, EdgeAppStacks } from '../lib/edge-app';

/** cdk.json's context: the feature flags `cdk synth` uses, and the default "edge" config. */
export const cdkJsonContext: Record<string, any> = JSON.parse(
  readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

/** A deep copy of the default config from cdk.json, to modify in a test. */
export function defaultRawConfig(): any {
  return structuredClone(cdkJsonContext.edge);
}

/**
 * Builds the whole app as `cdk synth` would (same feature flags, cdk-nag attached) from a raw
 * config. The built-in CloudFormation validation costs seconds per test file, so it is off
 * unless asked for.
 */
export function buildTestApp(rawConfig: unknown = defaultRawConfig(), options: { cfnValidation?: boolean } = {}): {
  app: App; stacks: EdgeAppStacks;
} {
  const app = new App({ context: cdkJsonContext, builtinCloudFormationValidation: options.cfnValidation ?? false });
  return { app, stacks: buildEdgeApp(app, resolveConfig(rawConfig)) };
}

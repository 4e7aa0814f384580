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

/**
 * The Kubernetes objects applied by a stack's manifest resources (Custom::AWSCDK-EKS-KubernetesResource),
 * optionally only those whose logical ID starts with idPrefix. A manifest with deploy-time values
 * is an Fn::Join; each value becomes "<token>".
 */
export function appliedObjects(template: { findResources(type: string): Record<string, any> }, idPrefix = ''): any[] {
  return Object.entries(template.findResources('Custom::AWSCDK-EKS-KubernetesResource'))
    .filter(([id]) => id.startsWith(idPrefix))
    .flatMap(([, r]) => {
      const manifest = r.Properties.Manifest;
      const text = typeof manifest === 'string'
        ? manifest
        : manifest['Fn::Join'][1].map((part: unknown) => (typeof part === 'string' ? part : '<token>')).join('');
      return JSON.parse(text);
    });
}

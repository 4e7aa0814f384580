import { Template } from 'aws-cdk-lib/assertions';
import { DevPlan, describeDeployed, devStackName, planDev } from '../../bin/dev';
import { ConfigError, LETS_ENCRYPT_STAGING, resolveConfig, withDevEnvironments } from '../../lib/config';
import { appliedObjects, buildTestApp, defaultRawConfig } from '../helpers';

describe('names', () => {
  test.each(['alice', 'pr-123', 'a', 'x'.repeat(20)])('"%s" is a dev environment', (name) => {
    expect(devStackName(name)).toBe(`Edge-dev-${name}`);
  });

  test.each(['', 'Alice', 'prod/../x', '-a', 'a-', 'a_b', 'x'.repeat(21), 'alice bob', 'ab.cd'])('"%s" is refused', (name) => {
    expect(() => devStackName(name)).toThrow(/a name is required|is not a dev environment name/);
  });
});

/** The cdk command of an up or down plan. */
function cdkArgs(plan: DevPlan): string[] {
  if (plan.action === 'list') throw new Error('dev:list runs no cdk command');
  return plan.args;
}

describe('plans', () => {
  test('dev:up deploys only Edge-dev-<name>, with the dev context, and keeps its outputs', () => {
    expect(planDev('up', ['alice'], '/tmp/o.json')).toEqual({
      action: 'up', name: 'alice', command: 'npx',
      args: ['cdk', 'deploy', 'Edge-dev-alice', '--exclusively', '-c', 'dev=alice', '--require-approval', 'never', '--outputs-file', '/tmp/o.json', '--no-notices'],
    });
  });

  test('dev:down destroys only Edge-dev-<name>', () => {
    const args = cdkArgs(planDev('down', ['alice'], '/tmp/o.json'));
    expect(args.slice(0, 4)).toEqual(['cdk', 'destroy', 'Edge-dev-alice', '--exclusively']);
    expect(args).not.toContain('--all');
  });

  test('no plan ever names a stack other than one dev stack', () => {
    for (const [action, args] of [['up', ['bob']], ['down', ['bob']]] as const) {
      const stacks = cdkArgs(planDev(action, [...args], '/tmp/o')).filter((a) => /^Edge/.test(a));
      expect(stacks).toEqual(['Edge-dev-bob']);
    }
  });

  test('dev:list runs no command: it lists the stacks through the AWS SDK (test/ops/dev-cli.test.ts)', () => {
    expect(planDev('list', [], '/tmp/o')).toEqual({ action: 'list' });
  });

  test.each<[string, string[], RegExp]>([
    ['up', [], /a name is required/],
    ['up', ['prod'], /Edge-dev-prod/],
    ['up', ['alice', 'bob'], /unexpected arguments: bob/],
    ['down', ['Prod'], /not a dev environment name/],
    ['list', ['x'], /takes no arguments/],
    ['deploy', ['alice'], /unknown action "deploy"/],
  ])('%s %j', (action, args, expected) => {
    if (expected.source === 'Edge-dev-prod') {
      // "prod" as a dev name is the namespace dev-prod, never prod itself.
      expect(cdkArgs(planDev(action, args, '/tmp/o'))).toContain('Edge-dev-prod');
    } else {
      expect(() => planDev(action, args, '/tmp/o')).toThrow(expected);
    }
  });

  test('what dev:up prints: the NLB and how to point a test domain at it', () => {
    const text = describeDeployed('alice', { LoadBalancerDnsName: 'edge-dev-alice-123.elb.eu-west-1.amazonaws.com', NamespaceName: 'dev-alice' });
    expect(text).toContain('CNAME  edge-dev-alice-123.elb.eu-west-1.amazonaws.com.');
    expect(text).toContain('npm run dev:down -- alice');
  });
});

describe('the app with -c dev=<name>', () => {
  test('adds dev-<name> from devDefaults: its own namespace, in-cluster Redis, its own NLB, Let\'s Encrypt staging', () => {
    const config = resolveConfig(withDevEnvironments(defaultRawConfig(), ['alice']));
    expect(config.environments.find((e) => e.name === 'dev-alice')).toMatchObject({
      kind: 'dev', acmeDirectory: LETS_ENCRYPT_STAGING, redisMode: 'in-cluster', staticIps: false,
    });
    const { stacks } = buildTestApp(withDevEnvironments(defaultRawConfig(), ['alice']));
    const template = Template.fromStack(stacks.edges['dev-alice']);
    expect(appliedObjects(template).find((o) => o.kind === 'Namespace').metadata.name).toBe('dev-alice');
    expect(appliedObjects(template).some((o) => o.kind === 'StatefulSet' && o.metadata.namespace === 'dev-alice')).toBe(true);
    template.resourceCountIs('AWS::ElasticLoadBalancingV2::LoadBalancer', 1);
  });

  test('touches nothing of prod or the platform: their templates are identical with and without it', () => {
    const plain = buildTestApp().stacks;
    const withDev = buildTestApp(withDevEnvironments(defaultRawConfig(), ['alice'])).stacks;
    expect(Template.fromStack(withDev.platform).toJSON()).toEqual(Template.fromStack(plain.platform).toJSON());
    expect(Template.fromStack(withDev.edges.prod).toJSON()).toEqual(Template.fromStack(plain.edges.prod).toJSON());
    expect(Template.fromStack(withDev.certStores.prod).toJSON()).toEqual(Template.fromStack(plain.certStores.prod).toJSON());
  });

  test('bad labels and a missing devDefaults are config errors', () => {
    expect(() => withDevEnvironments(defaultRawConfig(), ['Bad_Name'])).toThrow(ConfigError);
    const raw = defaultRawConfig();
    delete raw.devDefaults;
    expect(() => withDevEnvironments(raw, ['alice'])).toThrow(/devDefaults: missing/);
  });
});

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient, ListStacksCommand, ListStacksCommandOutput, StackStatus, StackSummary } from '@aws-sdk/client-cloudformation';
import { CloudFormationLike, DevHost, EXIT_MISSING, EXIT_USAGE, realHost, runDev } from '../../bin/dev';
import { defaultRawConfig } from '../helpers';

// dev:up/down/list against a stubbed machine: no AWS, no docker, no cdk, no network.

const ACCOUNT = '210987654321';
const REGION = 'us-east-2';

/** A stand-in for the SDK's CloudFormationClient: answers ListStacks from pages, records each call. */
class StubCloudFormationClient implements CloudFormationLike {
  readonly calls: ListStacksCommand['input'][] = [];

  constructor(private readonly pages: StackSummary[][]) {}

  async send(command: ListStacksCommand): Promise<ListStacksCommandOutput> {
    if (!(command instanceof ListStacksCommand)) throw new Error('the stub answers ListStacks only');
    this.calls.push(command.input);
    const index = command.input.NextToken ? Number(command.input.NextToken.replace('page-', '')) : 0;
    return {
      StackSummaries: this.pages[index],
      NextToken: index + 1 < this.pages.length ? `page-${index + 1}` : undefined,
      $metadata: {},
    };
  }
}

function summary(name: string, status: StackStatus, extra: Partial<StackSummary> = {}): StackSummary {
  return {
    StackName: name,
    StackStatus: status,
    StackId: `arn:aws:cloudformation:${REGION}:${ACCOUNT}:stack/${name}/0123`,
    CreationTime: new Date('2026-11-20T09:30:00Z'),
    ...extra,
  };
}

let root: string;

beforeAll(() => {
  // A repository whose cdk.json puts the platform in another account and region than the real one.
  root = mkdtempSync(path.join(os.tmpdir(), 'dev-cli-'));
  const edge = defaultRawConfig();
  edge.platform = { ...edge.platform, account: ACCOUNT, region: REGION, availabilityZones: ['us-east-2a', 'us-east-2b', 'us-east-2c'] };
  writeFileSync(path.join(root, 'cdk.json'), JSON.stringify({ app: 'true', context: { edge } }));
  mkdirSync(path.join(root, 'node_modules', '.bin'), { recursive: true });
  writeFileSync(path.join(root, 'node_modules', '.bin', 'cdk'), '');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

interface StubHost extends DevHost {
  readonly output: string[];
  readonly errors: string[];
  readonly probes: string[];
  readonly runs: { command: string; args: string[] }[];
  readonly regions: string[];
}

/** The machine, stubbed: every lookup answers as given, and is recorded. */
function stubHost(options: {
  env?: NodeJS.ProcessEnv;
  cdkInstalled?: boolean;
  probe?: (command: string) => { status: number | null; error?: Error; output: string };
  credentials?: () => Promise<{ accountId?: string }>;
  client?: StubCloudFormationClient;
  run?: (command: string, args: string[]) => { status: number | null; error?: Error };
} = {}): StubHost {
  const host: StubHost = {
    env: options.env ?? {},
    root,
    output: [], errors: [], probes: [], runs: [], regions: [],
    exists: (file) => (file.endsWith(path.join('.bin', 'cdk')) ? options.cdkInstalled ?? true : false),
    probe: (command, args) => {
      host.probes.push([command, ...args].join(' '));
      return (options.probe ?? (() => ({ status: 0, output: 'Server Version: 28.2.2' })))(command);
    },
    credentials: async (region) => {
      host.regions.push(region);
      return (options.credentials ?? (async () => ({})))();
    },
    cloudFormation: (region) => {
      host.regions.push(region);
      if (!options.client) throw new Error('no CloudFormation client expected');
      return options.client;
    },
    run: (command, args) => {
      host.runs.push({ command, args });
      return (options.run ?? (() => ({ status: 0 })))(command, args);
    },
    out: (text) => host.output.push(text),
    err: (text) => host.errors.push(text),
  };
  return host;
}

const noCredentials = async (): Promise<never> => {
  throw Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' });
};
const enoent = (command: string) => ({ status: null, error: Object.assign(new Error(`spawnSync ${command} ENOENT`), { code: 'ENOENT' }), output: '' });

describe('dev:list', () => {
  test('every dev stack in every status but DELETE_COMPLETE, failed and in-progress ones too, over every page', async () => {
    const client = new StubCloudFormationClient([
      [
        summary('EdgePlatform', 'UPDATE_COMPLETE'),
        summary('Edge-dev-alice', 'UPDATE_COMPLETE', { LastUpdatedTime: new Date('2026-11-30T10:05:00Z') }),
        summary('Edge-dev-gone', 'DELETE_COMPLETE', { DeletionTime: new Date('2026-11-29T00:00:00Z') }),
      ],
      [
        summary('Edge-dev-bob', 'CREATE_FAILED', { StackStatusReason: 'The following resource(s) failed to create: [EdgeService].' }),
        summary('Edge-prod', 'UPDATE_COMPLETE'),
        // Nested stacks share the prefix: not environments.
        summary('Edge-dev-alice-KubectlProviderNestedStackABC-1XYZ', 'CREATE_COMPLETE', { ParentId: 'arn:aws:cloudformation:us-east-2:210987654321:stack/Edge-dev-alice/0123' }),
      ],
      [
        summary('Edge-dev-carol', 'UPDATE_IN_PROGRESS'),
        summary('Edge-dev-dave', 'ROLLBACK_COMPLETE', { StackStatusReason: 'Resource creation cancelled' }),
        summary('Edge-dev-erin', 'DELETE_FAILED', { StackStatusReason: 'Cannot delete the NLB' }),
        summary('Edge-dev-frank', 'REVIEW_IN_PROGRESS'),
      ],
    ]);
    const host = stubHost({ client, env: { AWS_REGION: 'ap-south-1', AWS_DEFAULT_REGION: 'ap-south-1' } });
    expect(await runDev(['list'], host)).toBe(0);
    // Three pages, the token of each passed on; no status filter (so no status is ever missed).
    expect(client.calls).toEqual([{ NextToken: undefined }, { NextToken: 'page-1' }, { NextToken: 'page-2' }]);
    // cdk.json's region, not the environment's.
    expect(host.regions.every((r) => r === REGION)).toBe(true);
    const text = host.output.join('\n');
    expect(text).toContain(`Dev environments in account ${ACCOUNT}, ${REGION}:`);
    const rows = text.split('\n').filter((l) => l.startsWith('  Edge-')).map((l) => l.trim().split(/\s+/).slice(0, 2));
    expect(rows).toEqual([
      ['Edge-dev-alice', 'UPDATE_COMPLETE'],
      ['Edge-dev-bob', 'CREATE_FAILED'],
      ['Edge-dev-carol', 'UPDATE_IN_PROGRESS'],
      ['Edge-dev-dave', 'ROLLBACK_COMPLETE'],
      ['Edge-dev-erin', 'DELETE_FAILED'],
      ['Edge-dev-frank', 'REVIEW_IN_PROGRESS'],
    ]);
    expect(text).toMatch(/Edge-dev-alice\s+UPDATE_COMPLETE\s+2026-11-30 10:05 UTC/);
    expect(text).toMatch(/Edge-dev-bob\s+CREATE_FAILED\s+2026-11-20 09:30 UTC\s+The following resource\(s\) failed to create/);
    expect(text).toContain('Edge-dev-bob, Edge-dev-dave, Edge-dev-erin: failed or rolled back');
    expect(text).not.toContain('Edge-dev-gone');
    expect(text).not.toContain('Nested');
    expect(host.runs).toEqual([]);
  });

  test('none: says so, and how to make one', async () => {
    const host = stubHost({ client: new StubCloudFormationClient([[summary('EdgePlatform', 'CREATE_COMPLETE')]]) });
    expect(await runDev(['list'], host)).toBe(0);
    expect(host.output.join('\n')).toBe(`No dev environments in account ${ACCOUNT}, ${REGION} (npm run dev:up -- <name> makes one).`);
  });

  test('credentials for another account: an error naming both accounts, not that account\'s stacks', async () => {
    const other = summary('Edge-dev-zed', 'CREATE_COMPLETE', { StackId: `arn:aws:cloudformation:${REGION}:999999999999:stack/Edge-dev-zed/1` });
    const host = stubHost({ client: new StubCloudFormationClient([[other]]) });
    expect(await runDev(['list'], host)).toBe(1);
    expect(host.errors.join('\n')).toMatch(/credentials are for account 999999999999, but the platform in cdk.json is in account 210987654321/);
    expect(host.output).toEqual([]);
  });

  test('no AWS credentials: exit 3 with what to do, before any call', async () => {
    const client = new StubCloudFormationClient([[]]);
    const host = stubHost({ client, credentials: noCredentials });
    expect(await runDev(['list'], host)).toBe(EXIT_MISSING);
    expect(host.errors.join('\n')).toMatch(/no AWS credentials \(Could not load credentials from any providers\): set AWS_PROFILE to a profile for account 210987654321/);
    expect(client.calls).toEqual([]);
  });

  test('an API error is reported with the account and region', async () => {
    const client = new StubCloudFormationClient([[]]);
    client.send = async () => { throw new Error('User is not authorized to perform: cloudformation:ListStacks'); };
    const host = stubHost({ client });
    expect(await runDev(['list'], host)).toBe(1);
    expect(host.errors.join('\n')).toBe(`dev list: could not list the stacks in account ${ACCOUNT}, ${REGION}: User is not authorized to perform: cloudformation:ListStacks`);
  });

  test('the real client is made for cdk.json\'s region, whatever AWS_REGION says, and fits CloudFormationLike', async () => {
    const saved = process.env.AWS_REGION;
    process.env.AWS_REGION = 'ap-south-1';
    // The SDK warns once that its releases from 2027 need Node 22: true, but noise in this output.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    try {
      const client = realHost().cloudFormation(REGION) as CloudFormationClient;
      expect(client).toBeInstanceOf(CloudFormationClient);
      expect(await client.config.region()).toBe(REGION);
      client.destroy();
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
      delete process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    }
  });
});

describe('what dev:up and dev:down need, checked before anything starts', () => {
  test('dev:up without docker: exit 3, names docker and CDK_DOCKER, runs nothing', async () => {
    const host = stubHost({ probe: enoent });
    expect(await runDev(['up', 'alice'], host)).toBe(EXIT_MISSING);
    expect(host.probes).toEqual(['docker info']);
    expect(host.errors.join('\n')).toMatch(/dev up: cannot start, nothing was done:\n {2}- dev:up builds the edge image \(image\/Dockerfile\) on deploy and needs docker or a compatible builder: "docker" is not installed \(ENOENT\)\. .*CDK_DOCKER=finch/);
    expect(host.runs).toEqual([]);
  });

  test('dev:up with docker but no daemon: exit 3 with docker\'s own reason', async () => {
    const host = stubHost({
      probe: () => ({ status: 1, output: 'Client:\n Version: 28.2.2\n\nServer:\nCannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\n' }),
    });
    expect(await runDev(['up', 'alice'], host)).toBe(EXIT_MISSING);
    expect(host.errors.join('\n')).toContain('"docker info" failed (exit 1: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?): start its daemon');
    expect(host.runs).toEqual([]);
  });

  test('dev:up checks the builder named in CDK_DOCKER instead of docker', async () => {
    const host = stubHost({ env: { CDK_DOCKER: 'podman' }, probe: (command) => (command === 'podman' ? { status: 0, output: 'host: ...' } : enoent(command)) });
    const outputs = path.join(root, 'outputs.json');
    host.run = (command, args) => {
      host.runs.push({ command, args });
      writeFileSync(outputs, JSON.stringify({ 'Edge-dev-alice': { LoadBalancerDnsName: 'edge-dev-alice-1.elb.us-east-2.amazonaws.com', NamespaceName: 'dev-alice' } }));
      return { status: 0 };
    };
    expect(await runDev(['up', 'alice'], host, outputs)).toBe(0);
    expect(host.probes).toEqual(['podman info']);
    expect(host.runs).toEqual([{ command: 'npx', args: expect.arrayContaining(['deploy', 'Edge-dev-alice', '--outputs-file', outputs]) }]);
    expect(host.output.join('\n')).toContain('CNAME  edge-dev-alice-1.elb.us-east-2.amazonaws.com.');
  });

  test('every missing thing is listed at once: cdk, docker, credentials', async () => {
    const host = stubHost({ cdkInstalled: false, probe: enoent, credentials: noCredentials });
    expect(await runDev(['up', 'alice'], host)).toBe(EXIT_MISSING);
    const lines = host.errors.join('\n').split('\n').filter((l) => l.startsWith('  - '));
    expect(lines).toHaveLength(3);
    expect(lines[0]).toContain('run npm ci');
    expect(lines[1]).toContain('"docker" is not installed');
    expect(lines[2]).toContain('no AWS credentials');
  });

  test('credentials for another account than the platform\'s: exit 3', async () => {
    const host = stubHost({ credentials: async () => ({ accountId: '999999999999' }) });
    expect(await runDev(['down', 'alice'], host)).toBe(EXIT_MISSING);
    expect(host.errors.join('\n')).toContain('the AWS credentials are for account 999999999999, but the platform in cdk.json is in account 210987654321');
    expect(host.runs).toEqual([]);
  });

  test('dev:down needs no docker (nothing is built), but credentials', async () => {
    const host = stubHost({ probe: enoent, credentials: noCredentials });
    expect(await runDev(['down', 'alice'], host)).toBe(EXIT_MISSING);
    expect(host.probes).toEqual([]);
    expect(host.errors.join('\n')).toContain('no AWS credentials');
    expect(host.regions).toEqual([REGION]);
    expect(host.runs).toEqual([]);
  });

  test('with everything there, dev:down runs cdk destroy on the one stack and passes its exit code on', async () => {
    const host = stubHost({ run: () => ({ status: 5 }) });
    expect(await runDev(['down', 'alice'], host)).toBe(5);
    expect(host.runs).toEqual([{ command: 'npx', args: ['cdk', 'destroy', 'Edge-dev-alice', '--exclusively', '-c', 'dev=alice', '--force', '--no-notices'] }]);
  });

  test('a usage error exits 2 before any lookup', async () => {
    const host = stubHost({ probe: enoent, credentials: noCredentials });
    expect(await runDev(['up'], host)).toBe(EXIT_USAGE);
    expect(host.errors.join('\n')).toMatch(/dev: a name is required\nusage:/);
    expect([...host.probes, ...host.regions]).toEqual([]);
  });

  test('a cdk.json without devDefaults: dev:up says so and exits 1', async () => {
    const saved = root;
    root = mkdtempSync(path.join(os.tmpdir(), 'dev-cli-nodefaults-'));
    try {
      const edge = defaultRawConfig();
      delete edge.devDefaults;
      writeFileSync(path.join(root, 'cdk.json'), JSON.stringify({ context: { edge } }));
      const host = stubHost();
      expect(await runDev(['up', 'alice'], host)).toBe(1);
      expect(host.errors.join('\n')).toMatch(/cdk.json: .*devDefaults: missing/s);
      expect(host.runs).toEqual([]);
    } finally {
      rmSync(root, { recursive: true, force: true });
      root = saved;
    }
  });
});

describe('--help', () => {
  test.each([['--help'], ['-h'], ['up', '--help'], ['list', '-h']])('%s prints the usage and exits 0, looking nothing up', async (...argv) => {
    const host = stubHost({ probe: enoent, credentials: noCredentials });
    expect(await runDev(argv, host)).toBe(0);
    expect(host.output.join('\n')).toMatch(/^usage:\n {2}npm run dev:up -- <name>/);
    expect(host.errors).toEqual([]);
    expect([...host.probes, ...host.regions]).toEqual([]);
  });
});

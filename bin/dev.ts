#!/usr/bin/env node
// npm run dev:up -- <name> | dev:down -- <name> | dev:list: isolated dev environments on demand.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient, ListStacksCommand, ListStacksCommandOutput, StackSummary } from '@aws-sdk/client-cloudformation';
import { ConfigError, environmentKind, resolveConfig, withDevEnvironments } from '../lib/config';

export type DevAction = 'up' | 'down' | 'list';

/** What an action does, as data (so it can be checked before it runs). */
export type DevPlan =
  /** Runs the cdk CLI on the one dev stack. */
  | { readonly action: 'up' | 'down'; readonly name: string; readonly command: string; readonly args: string[] }
  /** Lists the dev stacks through the AWS SDK. */
  | { readonly action: 'list' };

export class DevUsageError extends Error {}

/** Exit codes: 2 for a usage error, 3 when something dev:up/down/list needs is missing. */
export const EXIT_USAGE = 2;
export const EXIT_MISSING = 3;

export const USAGE = `usage:
  npm run dev:up -- <name>     deploy dev-<name>: its own namespace, Redis, NLB, Let's Encrypt staging
  npm run dev:down -- <name>   delete dev-<name> and everything it created
  npm run dev:list             the dev environments in the platform's account and region, with
                               their status (failed and in-progress ones too)
<name>: a lower-case DNS label of at most 20 characters (a-z, 0-9, "-"), e.g. alice or pr-123.
The account and region are the platform's in cdk.json; the platform (EdgePlatform) must be
deployed; nothing else is touched. Needs AWS credentials (a profile, SSO or environment
variables) and, for dev:up, docker or a compatible builder named in CDK_DOCKER (the edge image
is built on deploy). Exits 2 on a usage error, 3 when one of these is missing (before anything
starts).`;

/** The stack of a dev environment; validates the name (so prod or staging can never be named). */
export function devStackName(name: string | undefined): string {
  if (!name) throw new DevUsageError('a name is required');
  if (environmentKind(`dev-${name}`) !== 'dev') {
    throw new DevUsageError(`"${name}" is not a dev environment name: a lower-case DNS label of at most 20 characters (a-z, 0-9, "-")`);
  }
  return `Edge-dev-${name}`;
}

/** What an action runs. Only ever the one dev stack, and only it (--exclusively). */
export function planDev(action: string | undefined, args: string[], outputsFile: string): DevPlan {
  switch (action) {
    case 'up': {
      const [name, ...extra] = args;
      if (extra.length > 0) throw new DevUsageError(`unexpected arguments: ${extra.join(' ')}`);
      return {
        action, name, command: 'npx',
        args: ['cdk', 'deploy', devStackName(name), '--exclusively', '-c', `dev=${name}`,
          '--require-approval', 'never', '--outputs-file', outputsFile, '--no-notices'],
      };
    }
    case 'down': {
      const [name, ...extra] = args;
      if (extra.length > 0) throw new DevUsageError(`unexpected arguments: ${extra.join(' ')}`);
      return { action, name, command: 'npx', args: ['cdk', 'destroy', devStackName(name), '--exclusively', '-c', `dev=${name}`, '--force', '--no-notices'] };
    }
    case 'list':
      if (args.length > 0) throw new DevUsageError('dev:list takes no arguments');
      return { action };
    default:
      throw new DevUsageError(`unknown action "${action ?? ''}"`);
  }
}

/** What to tell the developer after dev:up, from the stack's outputs. */
export function describeDeployed(name: string, outputs: Record<string, string>): string {
  const nlb = outputs.LoadBalancerDnsName;
  return `dev-${name} is up.
  NLB:        ${nlb}
  namespace:  ${outputs.NamespaceName ?? `dev-${name}`} (kubectl -n dev-${name} get pods; use the developer role)
  ACME:       Let's Encrypt staging (certificates are not publicly trusted)

Point a test domain at it: a CNAME record
  test.your-domain.example.  CNAME  ${nlb}.
and make your dev domain-check endpoint answer 200 for it. Then:
  curl -k https://test.your-domain.example/     (-k: staging certificates are untrusted)
Remove it with: npm run dev:down -- ${name}`;
}

// --- dev:list ---------------------------------------------------------------------------------

/** The part of the SDK's CloudFormation client that dev:list uses (a stub in the tests). */
export interface CloudFormationLike {
  send(command: ListStacksCommand): Promise<ListStacksCommandOutput>;
}

/** A dev environment's stack as dev:list shows it. */
export interface DevStack {
  readonly name: string;
  readonly status: string;
  readonly reason?: string;
  /** Last updated, or created when never updated. */
  readonly changed?: Date;
}

/** The account in a stack ARN (arn:aws:cloudformation:<region>:<account>:stack/...). */
function accountOf(stackId: string | undefined): string | undefined {
  return stackId?.split(':')[4] || undefined;
}

/**
 * Every dev environment's stack (Edge-dev-<name>) in the client's account and region, in every
 * status but DELETE_COMPLETE: failed and in-progress ones too. Follows every page. Nested stacks
 * (which share the prefix) are left out.
 * @throws Error when the stacks are in another account than `account` (credentials for the wrong one)
 */
export async function listDevStacks(client: CloudFormationLike, account: string): Promise<DevStack[]> {
  const summaries: StackSummary[] = [];
  let nextToken: string | undefined;
  do {
    // No StackStatusFilter: every status CloudFormation has, or adds, but DELETE_COMPLETE is shown.
    const page = await client.send(new ListStacksCommand({ NextToken: nextToken }));
    summaries.push(...(page.StackSummaries ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  const other = summaries.map((s) => accountOf(s.StackId)).find((a) => a && a !== account);
  if (other) {
    throw new Error(`the AWS credentials are for account ${other}, but the platform in cdk.json is in account ${account}: use credentials (AWS_PROFILE) for ${account}`);
  }
  return summaries
    .filter((s) => s.StackStatus !== 'DELETE_COMPLETE' && !s.ParentId)
    .filter((s) => {
      const label = s.StackName?.match(/^Edge-dev-(.+)$/)?.[1];
      return label !== undefined && environmentKind(`dev-${label}`) === 'dev';
    })
    .map((s) => ({ name: s.StackName!, status: String(s.StackStatus), reason: s.StackStatusReason, changed: s.LastUpdatedTime ?? s.CreationTime }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** A status that needs a person: the stack failed, or rolled back. */
function troubled(status: string): boolean {
  return /FAILED$/.test(status) || /ROLLBACK_COMPLETE$/.test(status);
}

/** What dev:list prints. */
export function describeDevStacks(stacks: DevStack[], account: string, region: string): string {
  if (stacks.length === 0) return `No dev environments in account ${account}, ${region} (npm run dev:up -- <name> makes one).`;
  const width = Math.max(...stacks.map((s) => s.name.length));
  const statusWidth = Math.max(...stacks.map((s) => s.status.length));
  const lines = stacks.map((s) => {
    const when = s.changed ? `${s.changed.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
    const reason = troubled(s.status) && s.reason ? `  ${s.reason}` : '';
    return `  ${s.name.padEnd(width)}  ${s.status.padEnd(statusWidth)}  ${when}${reason}`.trimEnd();
  });
  const failed = stacks.filter((s) => troubled(s.status));
  const hint = failed.length > 0
    ? `\n${failed.map((s) => s.name).join(', ')}: failed or rolled back; npm run dev:down -- <name> removes one, dev:up retries.`
    : '';
  return `Dev environments in account ${account}, ${region}:\n${lines.join('\n')}${hint}`;
}

// --- what the actions need ----------------------------------------------------------------------

/** The machine as dev:up/down/list see it: looked up through this, so the tests can stub it. */
export interface DevHost {
  readonly env: NodeJS.ProcessEnv;
  /** The repository's root (cdk.json, node_modules). */
  readonly root: string;
  exists(file: string): boolean;
  /** Runs a program to completion with its output captured; `error` when it could not be started. */
  probe(command: string, args: string[]): { status: number | null; error?: Error; output: string };
  /** The AWS credentials the SDK (and so the cdk CLI) finds for the region; rejects when there are none. */
  credentials(region: string): Promise<{ accountId?: string }>;
  cloudFormation(region: string): CloudFormationLike;
  /** Runs a command with the terminal (cdk deploy/destroy); its exit status. */
  run(command: string, args: string[]): { status: number | null; error?: Error };
  out(text: string): void;
  err(text: string): void;
}

/** The platform's account and region from cdk.json, and the config problems an action would hit. */
export function loadPlatform(host: DevHost, devName?: string): { account: string; region: string } {
  const file = path.join(host.root, 'cdk.json');
  const raw = JSON.parse(readFileSync(file, 'utf8')).context?.edge;
  const config = resolveConfig(devName ? withDevEnvironments(raw, [devName]) : raw);
  return { account: config.platform.account, region: config.platform.region };
}

/**
 * What is missing for an action, each with what to do about it: the cdk CLI (up, down), docker
 * or the builder in CDK_DOCKER with its daemon answering (up: the edge image is built on
 * deploy), AWS credentials for the platform's account (all).
 */
export async function missingPrerequisites(plan: DevPlan, host: DevHost, platform: { account: string; region: string }): Promise<string[]> {
  const missing: string[] = [];
  if (plan.action !== 'list' && !host.exists(path.join(host.root, 'node_modules', '.bin', 'cdk'))) {
    missing.push('the cdk CLI (node_modules/.bin/cdk) is not installed: run npm ci');
  }
  if (plan.action === 'up') {
    const builder = host.env.CDK_DOCKER || 'docker';
    const named = host.env.CDK_DOCKER ? ` (CDK_DOCKER=${builder})` : '';
    const result = host.probe(builder, ['info']);
    const code = (result.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT' || code === 'EACCES') {
      missing.push(`dev:up builds the edge image (image/Dockerfile) on deploy and needs docker or a compatible builder: "${builder}"${named} `
        + `is not installed (${code}). Install docker, or name another builder with CDK_DOCKER=finch or CDK_DOCKER=podman.`);
    } else if (result.error) {
      missing.push(`dev:up builds the edge image on deploy, but "${builder} info"${named} did not answer (${code ?? result.error.message}): is its daemon up?`);
    } else if (result.status !== 0) {
      const why = result.output.split('\n').map((l) => l.trim()).find((l) => /cannot connect|error|denied|not running/i.test(l))
        ?? result.output.trim().split('\n').pop() ?? '';
      missing.push(`dev:up builds the edge image on deploy, but "${builder} info"${named} failed (exit ${result.status}${why ? `: ${why}` : ''}): start its daemon (or the VM it runs in).`);
    }
  }
  try {
    const credentials = await host.credentials(platform.region);
    if (credentials.accountId && credentials.accountId !== platform.account) {
      missing.push(`the AWS credentials are for account ${credentials.accountId}, but the platform in cdk.json is in account ${platform.account}: use credentials (AWS_PROFILE) for ${platform.account}`);
    }
  } catch (error) {
    missing.push(`no AWS credentials (${(error as Error).message}): set AWS_PROFILE to a profile for account ${platform.account} `
      + '(after `aws sso login` if it uses SSO), or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)');
  }
  return missing;
}

/** Runs dev up|down|list; returns the exit code. */
export async function runDev(argv: string[], host: DevHost, outputsFile = path.join(os.tmpdir(), `edge-dev-outputs-${process.pid}.json`)): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    host.out(USAGE);
    return 0;
  }
  const [action, ...args] = argv;
  let plan: DevPlan;
  try {
    plan = planDev(action, args, outputsFile);
  } catch (error) {
    if (!(error instanceof DevUsageError)) throw error;
    host.err(`dev: ${error.message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  let platform: { account: string; region: string };
  try {
    platform = loadPlatform(host, plan.action === 'list' ? undefined : plan.name);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    host.err(`dev: cdk.json: ${error.message}`);
    return 1;
  }
  const missing = await missingPrerequisites(plan, host, platform);
  if (missing.length > 0) {
    host.err(`dev ${plan.action}: cannot start, nothing was done:\n${missing.map((m) => `  - ${m}`).join('\n')}`);
    return EXIT_MISSING;
  }

  if (plan.action === 'list') {
    try {
      const stacks = await listDevStacks(host.cloudFormation(platform.region), platform.account);
      host.out(describeDevStacks(stacks, platform.account, platform.region));
      return 0;
    } catch (error) {
      host.err(`dev list: could not list the stacks in account ${platform.account}, ${platform.region}: ${(error as Error).message}`);
      return 1;
    }
  }

  const result = host.run(plan.command, plan.args);
  if (result.error) {
    host.err(`dev: could not run ${plan.command}: ${result.error.message}`);
    return 1;
  }
  if (result.status !== 0) return result.status ?? 1;
  if (plan.action === 'up') {
    const outputs = JSON.parse(readFileSync(outputsFile, 'utf8'))[devStackName(plan.name)] ?? {};
    rmSync(outputsFile, { force: true });
    host.out(describeDeployed(plan.name, outputs));
  }
  return 0;
}

/** This machine, the real SDK and processes. */
export function realHost(): DevHost {
  // The SDK prints nine lines on Node 20 before anything else: its releases from January 2027 on
  // will need Node 22. The version pinned in package.json supports Node 20 (its engines: >=20);
  // bumping the pin is when that matters (npm install warns EBADENGINE then), not every run.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return {
    env: process.env,
    root: path.join(__dirname, '..'),
    exists: existsSync,
    probe(command, args) {
      const result = spawnSync(command, args, { encoding: 'utf8', timeout: 20000 });
      return { status: result.status, error: result.error, output: `${result.stdout ?? ''}${result.stderr ?? ''}` };
    },
    async credentials(region) {
      const client = new CloudFormationClient({ region });
      try {
        return await client.config.credentials();
      } finally {
        client.destroy();
      }
    },
    cloudFormation: (region) => new CloudFormationClient({ region }),
    run: (command, args) => spawnSync(command, args, { stdio: 'inherit' }),
    out: (text) => console.log(text),
    err: (text) => console.error(text),
  };
}

if (require.main === module) runDev(process.argv.slice(2), realHost()).then((code) => process.exit(code));

#!/usr/bin/env node
// npm run dev:up -- <name> | dev:down -- <name> | dev:list: isolated dev environments on demand.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { environmentKind } from '../lib/config';

export type DevAction = 'up' | 'down' | 'list';

/** A command to run: what dev:up/down/list do, as data (so it can be checked before it runs). */
export interface PlannedCommand {
  readonly command: string;
  readonly args: string[];
}

export class DevUsageError extends Error {}

const USAGE = `usage:
  npm run dev:up -- <name>     deploy dev-<name>: its own namespace, Redis, NLB, Let's Encrypt staging
  npm run dev:down -- <name>   delete dev-<name> and everything it created
  npm run dev:list             the dev environments deployed in the account
<name>: a lower-case DNS label of at most 20 characters (a-z, 0-9, "-"), e.g. alice or pr-123.
The platform (EdgePlatform) must be deployed; nothing else is touched.`;

/** The stack of a dev environment; validates the name (so prod or staging can never be named). */
export function devStackName(name: string | undefined): string {
  if (!name) throw new DevUsageError('a name is required');
  if (environmentKind(`dev-${name}`) !== 'dev') {
    throw new DevUsageError(`"${name}" is not a dev environment name: a lower-case DNS label of at most 20 characters (a-z, 0-9, "-")`);
  }
  return `Edge-dev-${name}`;
}

/** What an action runs. Only ever the one dev stack, and only it (--exclusively). */
export function planDev(action: string | undefined, args: string[], outputsFile: string): PlannedCommand {
  switch (action) {
    case 'up': {
      const [name, ...extra] = args;
      if (extra.length > 0) throw new DevUsageError(`unexpected arguments: ${extra.join(' ')}`);
      return {
        command: 'npx',
        args: ['cdk', 'deploy', devStackName(name), '--exclusively', '-c', `dev=${name}`,
          '--require-approval', 'never', '--outputs-file', outputsFile, '--no-notices'],
      };
    }
    case 'down': {
      const [name, ...extra] = args;
      if (extra.length > 0) throw new DevUsageError(`unexpected arguments: ${extra.join(' ')}`);
      return { command: 'npx', args: ['cdk', 'destroy', devStackName(name), '--exclusively', '-c', `dev=${name}`, '--force', '--no-notices'] };
    }
    case 'list':
      if (args.length > 0) throw new DevUsageError('dev:list takes no arguments');
      return {
        command: 'aws',
        args: ['cloudformation', 'list-stacks', '--stack-status-filter', 'CREATE_COMPLETE', 'UPDATE_COMPLETE', 'UPDATE_ROLLBACK_COMPLETE',
          '--query', "StackSummaries[?starts_with(StackName, 'Edge-dev-')].[StackName, LastUpdatedTime || CreationTime]", '--output', 'text'],
      };
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

function main(): number {
  const [action, ...args] = process.argv.slice(2);
  const outputsFile = path.join(os.tmpdir(), `edge-dev-outputs-${process.pid}.json`);
  let plan: PlannedCommand;
  try {
    plan = planDev(action, args, outputsFile);
  } catch (error) {
    if (!(error instanceof DevUsageError)) throw error;
    console.error(`dev: ${error.message}\n${USAGE}`);
    return 2;
  }
  const result = spawnSync(plan.command, plan.args, { stdio: 'inherit' });
  if (result.error) {
    console.error(`dev: could not run ${plan.command}: ${result.error.message}`);
    return 1;
  }
  if (result.status !== 0) return result.status ?? 1;
  if (action === 'up') {
    const outputs = JSON.parse(readFileSync(outputsFile, 'utf8'))[devStackName(args[0])] ?? {};
    console.log(describeDeployed(args[0], outputs));
  }
  return 0;
}

if (require.main === module) process.exit(main());

#!/usr/bin/env node
// npm run certs -- <command>: an environment's customer domains and certificates, through its
// domains API (docs/domains-api.yaml; see README, "Domains API").
import { isHostname } from '../lib/config';
import { ApiErrorBody, ApiReply, ApiUnreachable, DomainsApiClient, DomainStatus, ListedDomain, MAX_PAGE_SIZE } from './certs/domains-api-client';

/** Where the API is when neither --api nor $EDGE_API_URL says: a port-forward to a pod's API port. */
export const DEFAULT_API_URL = 'http://127.0.0.1:8082';
/** The environment variable the bearer token is read from (never the command line). */
export const TOKEN_ENV = 'EDGE_API_TOKEN';
const PORT_FORWARD = 'kubectl -n <env> port-forward deploy/edge 8082:8082';

const USAGE = `usage: npm run certs -- [--api URL] <command> [--json]
  list                     issued and expired certificates, soonest expiry first
  show <domain>            a domain's status: state, reason, expiry, renewal, last error, DNS
  register <domain>        register it: its certificate is issued before its first visitor
  delete <domain> --yes    remove its certificate and status (make your domain check answer 404
                           for it first, or the next visitor's handshake issues a new one)
  expiring [--days N]      certificates expiring within N days (default 21), or expired; exits 1 if any

  --api        the environment's domains API; default $EDGE_API_URL or ${DEFAULT_API_URL}
               (e.g. through: ${PORT_FORWARD})
  --page-size  names per API call when listing (1-${MAX_PAGE_SIZE}, default ${MAX_PAGE_SIZE})
  --json       JSON output
  --help, -h   this text

The bearer token is read from $${TOKEN_ENV}, never from the command line.`;

export class UsageError extends Error {}

/** --help or -h: the usage is printed, and nothing else is done. */
export class HelpRequested extends Error {}

export interface CertsCommand {
  readonly command: 'list' | 'show' | 'register' | 'delete' | 'expiring';
  readonly domain?: string;
  readonly days: number;
  readonly yes: boolean;
  readonly json: boolean;
  /** The API's origin, e.g. http://127.0.0.1:8082 (the token is not part of the command). */
  readonly apiUrl: string;
  readonly pageSize: number;
}

const COMMANDS: ReadonlyArray<CertsCommand['command']> = ['list', 'show', 'register', 'delete', 'expiring'];
const WITH_DOMAIN: ReadonlyArray<CertsCommand['command']> = ['show', 'register', 'delete'];

/** The API's URL, checked: http(s), an origin only, no credentials (which are never echoed). */
function apiOrigin(raw: string, from: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${from} must be a URL such as ${DEFAULT_API_URL}, got "${raw}"`);
  }
  if (url.username || url.password) throw new UsageError(`${from} must not carry credentials: the token is read from $${TOKEN_ENV}`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${from} must be an http:// or https:// URL, got "${raw}"`);
  if (url.pathname !== '/' || url.search || url.hash) throw new UsageError(`${from} must be the API's origin only (e.g. ${DEFAULT_API_URL}), got "${raw}"`);
  return url.origin;
}

/** Parses and validates the arguments; throws UsageError naming what is wrong. */
export function parseCertsArgs(argv: string[], env: NodeJS.ProcessEnv): CertsCommand {
  const positional: string[] = [];
  let api: { raw: string; from: string } = env.EDGE_API_URL ? { raw: env.EDGE_API_URL, from: '$EDGE_API_URL' } : { raw: DEFAULT_API_URL, from: '--api' };
  let days = 21;
  let pageSize = MAX_PAGE_SIZE;
  let yes = false;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    // The option's name only: "--token=..." must not be echoed.
    const option = arg.split('=')[0];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') throw new HelpRequested();
    else if (arg === '--api') api = { raw: value(), from: '--api' };
    else if (arg === '--days') {
      const v = value();
      days = Number(v);
      if (!/^\d+$/.test(v) || days > 3650) throw new UsageError(`--days must be a whole number of days (0-3650), got "${v}"`);
    } else if (arg === '--page-size') {
      const v = value();
      pageSize = Number(v);
      if (!/^\d+$/.test(v) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) throw new UsageError(`--page-size must be a whole number from 1 to ${MAX_PAGE_SIZE}, got "${v}"`);
    } else if (arg === '--yes') yes = true;
    else if (arg === '--json') json = true;
    else if (option === '--token') throw new UsageError(`there is no --token option: the token is read from $${TOKEN_ENV} only, never from the command line`);
    else if (option === '--redis' || option === '--prefix') {
      throw new UsageError(`${option} is gone: the certs CLI uses the environment's domains API, not Redis; give --api URL (${PORT_FORWARD}) and $${TOKEN_ENV}`);
    } else if (arg.startsWith('-')) throw new UsageError(`unknown option ${option}`);
    else positional.push(arg);
  }
  const [command, domain, ...extra] = positional;
  if (!command) throw new UsageError('no command');
  if (!COMMANDS.includes(command as CertsCommand['command'])) throw new UsageError(`unknown command "${command}"`);
  const cmd = command as CertsCommand['command'];
  if (WITH_DOMAIN.includes(cmd)) {
    if (!domain) throw new UsageError(`${command} needs a domain`);
    if (!isHostname(domain)) throw new UsageError(`"${domain}" is not a host name (lower case, no trailing dot)`);
  } else if (domain) {
    throw new UsageError(`${command} takes no domain`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  const apiUrl = apiOrigin(api.raw, api.from);
  if (!env[TOKEN_ENV]) {
    throw new UsageError(`$${TOKEN_ENV} is not set: export the environment's domains API token (README, "Domains API": `
      + 'the Kubernetes Secret edge-domains-api, key token, or the secret of the stack output Edge-<env>.DomainsApiTokenSecretArn)');
  }
  return { command: cmd, domain, days, yes, json, apiUrl, pageSize };
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A stored certificate as the list and expiring commands show it. */
export interface ListedCertificate {
  readonly name: string;
  readonly state: 'issued' | 'expired';
  readonly notAfter: string;
  /** Whole days from now until notAfter (negative once expired). */
  readonly daysLeft: number;
}

function line(c: ListedCertificate): string {
  return `${c.name.padEnd(40)} ${c.notAfter.slice(0, 10)}  ${String(c.daysLeft).padStart(4)} days${c.state === 'expired' ? '  EXPIRED' : ''}`;
}

function statusText(s: DomainStatus, now: Date): string {
  const or = (v: string | null) => v ?? '-';
  const daysLeft = s.notAfter ? ` (${Math.floor((Date.parse(s.notAfter) - now.getTime()) / DAY_MS)} days left)` : '';
  return [
    `name          ${s.name}`,
    `state         ${s.state}`,
    `reason        ${or(s.reason)}`,
    `not after     ${or(s.notAfter)}${daysLeft}`,
    `renew at      ${or(s.renewAt)}`,
    `profile       ${or(s.profile)}`,
    `last error    ${or(s.lastError)}`,
    `next attempt  ${or(s.nextAttemptAt)}`,
    `dns           ${s.dns ? `${s.dns.status}: ${s.dns.detail}` : '-'}`,
  ].join('\n');
}

/** A refusal of the API, as one line for a person (never the token). */
export class ApiRefused extends Error {}

function refusal(apiUrl: string, reply: ApiReply<unknown>): ApiRefused {
  const body = reply.body as ApiErrorBody;
  if (reply.json === false) return new ApiRefused(`${apiUrl} is not the domains API (HTTP ${reply.status}, not JSON): check --api (${PORT_FORWARD})`);
  switch (reply.status) {
    case 401:
      return new ApiRefused(`the API refused the token (401): $${TOKEN_ENV} is not this environment's domains API token`);
    case 503:
      return new ApiRefused('the environment\'s certificate store is unavailable (503); nothing was changed, try again later');
    default: {
      const detail = [body.reason, body.parameter && `parameter ${body.parameter}`, body.name].filter(Boolean).join(', ');
      return new ApiRefused(`HTTP ${reply.status}: ${body.error}${detail ? ` (${detail})` : ''}`);
    }
  }
}

/** Runs a command; returns the exit code. Output goes to out (and err). */
export async function runCerts(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void,
  now: () => Date = () => new Date()): Promise<number> {
  let cmd: CertsCommand;
  try {
    cmd = parseCertsArgs(argv, env);
  } catch (error) {
    if (error instanceof HelpRequested) {
      out(USAGE);
      return 0;
    }
    if (!(error instanceof UsageError)) throw error;
    err(`certs: ${error.message}\n${USAGE}`);
    return 2;
  }
  const api = new DomainsApiClient(cmd.apiUrl, env[TOKEN_ENV]!);
  const print = (value: unknown, text: string) => out(cmd.json ? JSON.stringify(value, null, 2) : text);
  /** Issued and expired certificates, soonest expiry first. */
  const certificates = async (): Promise<ListedCertificate[]> => {
    const found: ListedCertificate[] = [];
    for (const state of ['expired', 'issued'] as const) {
      const reply = await api.listAll(state, cmd.pageSize);
      if (reply.status !== 200) throw refusal(cmd.apiUrl, reply);
      for (const d of reply.body as ListedDomain[]) {
        const notAfter = d.notAfter ?? '';
        found.push({ name: d.name, state, notAfter, daysLeft: Math.floor((Date.parse(notAfter) - now().getTime()) / DAY_MS) });
      }
    }
    return found.sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter) || a.name.localeCompare(b.name));
  };
  try {
    switch (cmd.command) {
      case 'list': {
        const certs = await certificates();
        print(certs, certs.length ? certs.map(line).join('\n') : `no certificates stored (${cmd.apiUrl})`);
        return 0;
      }
      case 'show': {
        const reply = await api.status(cmd.domain!);
        if (reply.status === 404 && reply.json !== false) {
          err(`certs: unknown domain ${cmd.domain}: never registered, never seen in a handshake, or deleted`);
          return 1;
        }
        if (reply.status !== 200) throw refusal(cmd.apiUrl, reply);
        print(reply.body, statusText(reply.body, now()));
        return 0;
      }
      case 'register': {
        const reply = await api.register(cmd.domain!);
        if (reply.status !== 202) throw refusal(cmd.apiUrl, reply);
        print(reply.body, `registered ${cmd.domain}\n${statusText(reply.body, now())}`);
        return 0;
      }
      case 'delete': {
        if (!cmd.yes) {
          err(`certs: this deletes the certificate and status of ${cmd.domain}. Make your domain-check endpoint answer 404 for it `
            + 'first, or the next visitor\'s handshake issues a new certificate. Add --yes to do it.');
          return 2;
        }
        const reply = await api.remove(cmd.domain!);
        if (reply.status !== 200) throw refusal(cmd.apiUrl, reply);
        print(reply.body, reply.body.certificate
          ? `deleted ${cmd.domain}: its certificate (every pod stops serving it within seconds) and its status`
          : `deleted ${cmd.domain}: no certificate was stored; its status, if any, is gone`);
        return 0;
      }
      case 'expiring': {
        const soon = (await certificates()).filter((c) => c.daysLeft < cmd.days);
        print(soon, soon.length ? soon.map(line).join('\n') : `nothing expires within ${cmd.days} days`);
        return soon.length ? 1 : 0;
      }
      default:
        return 2;
    }
  } catch (error) {
    if (error instanceof ApiUnreachable) {
      err(`certs: ${error.message}: is the API there? e.g. ${PORT_FORWARD}, then --api ${DEFAULT_API_URL}`);
      return 1;
    }
    if (error instanceof ApiRefused) {
      err(`certs: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

if (require.main === module) {
  runCerts(process.argv.slice(2), process.env, (s) => console.log(s), (s) => console.error(s)).then((code) => process.exit(code));
}

#!/usr/bin/env node
// npm run certs -- <command>: the certificates in an environment's store (see README).
import { environmentKind, isHostname } from '../lib/config';
import { CertStoreClient, StoredCertificate } from './certs/cert-store-client';

const USAGE = `usage: npm run certs -- [--redis URL] --prefix ENV <command> [--json]
  list                     every stored certificate, soonest expiry first
  show <domain>            one certificate: names, issuer, serial, validity (never its key)
  delete <domain> --yes    delete it (and its order mark): the next handshake orders a new one
  expiring [--days N]      certificates expiring within N days (default 21); exits 1 if any

  --redis   redis://host:port, or rediss://host:port for TLS (ElastiCache); default $REDIS_URL
            or redis://127.0.0.1:6379. The password comes from $REDIS_AUTH, never the command line.
  --prefix  the environment name (its keys are "<prefix>:<domain>:latest"), e.g. prod, dev-alice, local
  --help, -h  this text`;

export class UsageError extends Error {}

/** --help or -h: the usage is printed, and nothing else is done. */
export class HelpRequested extends Error {}

export interface CertsCommand {
  readonly command: 'list' | 'show' | 'delete' | 'expiring';
  readonly domain?: string;
  readonly days: number;
  readonly yes: boolean;
  readonly json: boolean;
  readonly redisUrl: string;
  readonly prefix: string;
}

/** Parses and validates the arguments; throws UsageError naming what is wrong. */
export function parseCertsArgs(argv: string[], env: NodeJS.ProcessEnv): CertsCommand {
  const positional: string[] = [];
  let redisUrl = env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  let prefix: string | undefined;
  let days = 21;
  let yes = false;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '--help' || arg === '-h') throw new HelpRequested();
    else if (arg === '--redis') redisUrl = value();
    else if (arg === '--prefix') prefix = value();
    else if (arg === '--days') {
      const v = value();
      days = Number(v);
      if (!/^\d+$/.test(v) || days > 3650) throw new UsageError(`--days must be a whole number of days (0-3650), got "${v}"`);
    } else if (arg === '--yes') yes = true;
    else if (arg === '--json') json = true;
    else if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    else positional.push(arg);
  }
  const [command, domain, ...extra] = positional;
  if (!command) throw new UsageError('no command');
  if (!['list', 'show', 'delete', 'expiring'].includes(command)) throw new UsageError(`unknown command "${command}"`);
  if (!prefix) throw new UsageError('--prefix (the environment name) is required');
  if (prefix !== 'local' && !environmentKind(prefix)) {
    throw new UsageError(`--prefix must be an environment name (prod, staging, dev-<name>, local), got "${prefix}"`);
  }
  if (command === 'show' || command === 'delete') {
    if (!domain) throw new UsageError(`${command} needs a domain`);
    if (!isHostname(domain)) throw new UsageError(`"${domain}" is not a host name (lower case, no trailing dot)`);
  } else if (domain) {
    throw new UsageError(`${command} takes no domain`);
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  return { command: command as CertsCommand['command'], domain, days, yes, json, redisUrl, prefix };
}

function line(c: StoredCertificate): string {
  return `${c.domain.padEnd(40)} ${c.notAfter.toISOString().slice(0, 10)}  ${String(c.daysLeft).padStart(4)} days`;
}

/** Runs a command; returns the exit code. Output goes to out (and err). */
export async function runCerts(argv: string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
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
  let client: CertStoreClient | undefined;
  try {
    client = CertStoreClient.connect({ url: cmd.redisUrl, password: env.REDIS_AUTH || undefined, prefix: cmd.prefix });
    await client.open();
    const print = (value: unknown, text: string) => out(cmd.json ? JSON.stringify(value, null, 2) : text);
    switch (cmd.command) {
      case 'list': {
        const certs = await client.list();
        print(certs, certs.length ? certs.map(line).join('\n') : `no certificates stored for "${cmd.prefix}"`);
        return 0;
      }
      case 'show': {
        const cert = await client.get(cmd.domain!);
        if (!cert) {
          err(`certs: no certificate stored for ${cmd.domain} in "${cmd.prefix}"`);
          return 1;
        }
        print(cert, [
          `domain      ${cert.domain}`, `names       ${cert.subjectAltNames.join(', ')}`, `issuer      ${cert.issuer}`,
          `serial      ${cert.serial}`, `valid from  ${cert.notBefore.toISOString()}`,
          `valid until ${cert.notAfter.toISOString()} (${cert.daysLeft} days left)`,
        ].join('\n'));
        return 0;
      }
      case 'delete': {
        if (!cmd.yes) {
          err(`certs: this deletes the certificate of ${cmd.domain} in "${cmd.prefix}"; the next handshake orders a new one. Add --yes to do it.`);
          return 2;
        }
        const deleted = await client.delete(cmd.domain!);
        out(deleted ? `deleted ${cmd.domain}` : `nothing stored for ${cmd.domain}`);
        return deleted ? 0 : 1;
      }
      case 'expiring': {
        const soon = (await client.list()).filter((c) => c.daysLeft < cmd.days);
        print(soon, soon.length ? soon.map(line).join('\n') : `nothing expires within ${cmd.days} days`);
        return soon.length ? 1 : 0;
      }
      default:
        return 2;
    }
  } catch (error) {
    err(`certs: ${(error as Error).message}`);
    return 1;
  } finally {
    await client?.close();
  }
}

if (require.main === module) {
  runCerts(process.argv.slice(2), process.env, (s) => console.log(s), (s) => console.error(s)).then((code) => process.exit(code));
}

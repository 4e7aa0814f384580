// npm run bench -- --only renewal: one renewer pass (lua/edge/renewal/renewer.lua) over an index
// of 100,000 names with 1,000 due, in a real nginx against a real Redis, next to the full SCAN
// listing of the same entries (what a pass would cost without the index: redis_storage's
// keys_with_suffix). Wall time measured in nginx; every Redis command's own time from the
// SLOWLOG (slowlog-log-slower-than 0); round trips as nginx sees them from a timing wrapper
// around edge.redis_client's command. Interleaved rounds, medians [min–max].
import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort } from '../bin/local-edge/processes';
import { RedisServer } from '../bin/local-edge/redis-server';
import { httpGet } from '../test/integration/support/http-client';
import { TestNginx } from '../test/integration/support/test-nginx';
import { CLIENT_CPU, SERVER_CPU } from './edge-stack';
import { Cleanup } from './lifecycle';
import { onlyWorker, pin, pinNginx, PlacementSampler, spread, Spread } from './measure';
import { fmt } from './report';
import {
  certificateEntry, connect, FilledStore, fillStore, indexEntries, logEveryCommand, LoggedCommand, loggedCommands, makeDueAgain,
  notRescheduled, resetSlowlog,
} from './renewal-store';

export const RENEWAL_NAMES = 100_000;
export const RENEWAL_DUE = 1_000;
/** As rendered (charts/nginx-conf.ts RENEWAL_BATCH, RENEWAL_PASS_INTERVAL_SECONDS; lib/config.ts renewalsPerHour). */
const BATCH = 50;
const PASS_INTERVAL = 60;
const RENEWALS_PER_HOUR = 60;
const PREFIX = 'local';
/** The issue's goal: no single store command over this. */
const GOAL_MS = 10;

// The bench's handlers, in the bench's nginx. The storage stands in for lua-resty-auto-ssl's (its
// get_cert reads "<name>:latest" through the adapter and decodes it, as auto-ssl's does); the
// domain check, ARI and issuance are stand-ins that count their calls (issuance must never be
// called: every due name is due for a check only); cert_id is the edge's own (edge.acme.crypto).
const HANDLER_LUA = String.raw`
local cjson = require "cjson.safe"
local ffi = require "ffi"
local redis_client = require "edge.redis_client"
local _M = {}

local config, adapter, renewer
local calls = {}

-- A microsecond clock (ngx.now() has millisecond resolution).
local clock_ok = pcall(ffi.cdef, [[
  typedef struct { long tv_sec; long tv_nsec; } renewal_bench_timespec;
  int clock_gettime(int clk_id, renewal_bench_timespec *tp);
]])
local ts = clock_ok and ffi.new("renewal_bench_timespec")
local function now_us()
  if ts and ffi.C.clock_gettime(1, ts) == 0 then
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end
  ngx.update_time()
  return ngx.now() * 1e6
end
-- The worker's CPU time (CLOCK_PROCESS_CPUTIME_ID), or nil.
local function cpu_us()
  if ts and ffi.C.clock_gettime(2, ts) == 0 then
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end
end

-- Every command's round trip while a step runs: send, Redis, the reply read and parsed.
local recording
local command = redis_client.command
redis_client.command = function(self, ...)
  if not recording then
    return command(self, ...)
  end
  local started = now_us()
  local reply, err = command(self, ...)
  local us = now_us() - started
  local name = string.upper(tostring((...)))
  local r = recording
  r.n = r.n + 1
  r.sum_us = r.sum_us + us
  local by = r.by[name] or { n = 0, max_us = 0, sum_us = 0 }
  by.n, by.max_us, by.sum_us = by.n + 1, math.max(by.max_us, us), by.sum_us + us
  r.by[name] = by
  if us > r.max_us then
    r.max_us, r.max_command = us, name
  end
  return reply, err
end

local function count(what)
  calls[what] = (calls[what] or 0) + 1
end

function _M.init(c)
  config = c
end

local function setup()
  if renewer then
    return
  end
  adapter = require("edge.redis_storage").new({ get = function(_, k) return k == "redis" and config.redis or nil end })
  local storage = { adapter = adapter }
  function storage.get_cert(self, domain)
    local started = now_us()
    local json, err = self.adapter:get(domain .. ":latest")
    calls.get_cert_us = (calls.get_cert_us or 0) + (now_us() - started)
    if err then
      return nil, err
    elseif not json then
      return nil
    end
    local data, json_err = cjson.decode(json)
    if not data then
      return nil, json_err
    end
    return data
  end
  local ari_cert_id = require("edge.acme.crypto").ari_cert_id
  renewer = require("edge.renewal.renewer").new({
    storage = storage,
    issue = function(domain, replaces)
      count("issue")
      return nil, "the renewal bench never issues"
    end,
    domain_check = { request = function(_, name) count("domain_check"); return "allowed" end },
    -- A CA without ARI (as Debian's pebble): the pass reads no certificate entry.
    ari_offered = function() return false end,
    renewal_info = function(cert_id) count("renewal_info"); return false end,
    cert_id = function(pem)
      count("cert_id")
      local started = now_us()
      local id, err = ari_cert_id(pem)
      calls.cert_id_us = (calls.cert_id_us or 0) + (now_us() - started)
      return id, err
    end,
    renewals_per_hour = config.renewals_per_hour,
    pass_interval = config.pass_interval,
    batch = config.batch,
  })
end

local function step(fn)
  setup()
  calls = {}
  recording = { n = 0, max_us = 0, sum_us = 0, by = {} }
  local cpu_started = cpu_us()
  local started = now_us()
  local ok, result, err = pcall(fn)
  local wall_us = now_us() - started
  local cpu = cpu_started and cpu_us() - cpu_started
  local commands = recording
  recording = nil
  if not ok then
    err, result = result, nil
  end
  ngx.header.content_type = "application/json"
  ngx.say(cjson.encode({ wall_us = wall_us, cpu_us = cpu, result = result, err = err and tostring(err) or nil, calls = calls, commands = commands }))
end

function _M.pass()
  step(function()
    local summary, err = renewer:pass(function() return true end)
    if not summary then
      return nil, err
    end
    return { outcomes = summary.outcomes, stopped = summary.stopped, gauges = summary.gauges }
  end)
end

function _M.list()
  step(function()
    local names, err = adapter:keys_with_suffix(":latest")
    if not names then
      return nil, err
    end
    return { names = #names }
  end)
end

return _M
`;

class RenewalNginx extends TestNginx {
  constructor(dir: string, readonly port: number, private readonly config: object) {
    super(dir);
  }

  protected readyPorts(): number[] {
    return [this.port];
  }

  override async start(): Promise<void> {
    mkdirSync(path.join(this.dir, 'lua'), { recursive: true });
    writeFileSync(path.join(this.dir, 'lua', 'renewal_bench.lua'), HANDLER_LUA);
    await super.start();
  }

  renderConf(): string {
    return [
      ...this.preamble({ writtenBy: '../../../bench/renewal.ts', workers: 1, connections: 64, luaDirs: [path.join(this.dir, 'lua')] }),
      '  lua_shared_dict edge_metrics 1m;',
      '  init_by_lua_block {',
      `    require("renewal_bench").init(require("cjson").decode([==[${JSON.stringify(this.config)}]==]))`,
      '  }',
      '  server {',
      `    listen 127.0.0.1:${this.port};`,
      ...this.handlers('renewal_bench', ['pass', 'list']),
      '  }',
      '}',
      '',
    ].join('\n');
  }
}

/** What nginx answered for one step. */
interface StepAnswer {
  wall_us: number;
  /** The nginx worker's CPU time during the step. */
  cpu_us?: number;
  result?: { outcomes?: Record<string, number>; stopped?: string; names?: number };
  err?: string;
  /** Calls of the stand-ins; get_cert_us, cert_id_us: µs spent in get_cert and in cert_id. */
  calls: Record<string, number>;
  commands: { n: number; max_us: number; sum_us: number; max_command?: string; by: Record<string, { n: number; max_us: number; sum_us: number }> };
}

/** One step (the pass, or the listing) in one round. */
export interface StepRound {
  readonly wallMs: number;
  /** The commands Redis ran for it (SLOWLOG). */
  readonly logged: LoggedCommand[];
  readonly answer: StepAnswer;
}

export interface RenewalReport {
  readonly store: FilledStore;
  /** 1-minute load averages around the bench. */
  readonly loadBefore: number;
  readonly loadAfter: number;
  readonly redisVersion: string;
  readonly pass: StepRound[];
  readonly list: StepRound[];
}

async function runStep(port: number, what: 'pass' | 'list'): Promise<StepAnswer> {
  const res = await httpGet(port, `/${what}`, { timeoutMs: 60000 });
  if (res.status !== 200) throw new Error(`GET /${what}: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  const answer = JSON.parse(res.body) as StepAnswer;
  if (answer.err || !answer.result) throw new Error(`the ${what === 'pass' ? 'renewer pass' : 'listing'} failed: ${answer.err}`);
  return answer;
}

export async function runRenewalBench(o: {
  workDir: string; cleanup: Cleanup; rounds: number; progress: (m: string) => void; sampler?: PlacementSampler;
}): Promise<RenewalReport> {
  const loadBefore = os.loadavg()[0];
  const dir = path.join(o.workDir, 'renewal');
  mkdirSync(dir, { recursive: true });
  // No append-only file: the fill (about 0.5 GB) needs none, and the figures are the commands'.
  const redisServer = new RedisServer(await freePort(), path.join(dir, 'redis'), ['--appendonly', 'no']);
  o.cleanup.add('renewal redis', () => redisServer.stop());
  await redisServer.start();
  pin(redisServer.pid!, CLIENT_CPU);
  const redis = await connect(redisServer.port);
  o.cleanup.add('renewal redis client', () => { redis.disconnect(); });
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';

  o.progress(`renewal bench: filling Redis with ${RENEWAL_NAMES.toLocaleString('en-US')} certificate entries and their index`);
  const now = Math.floor(Date.now() / 1000);
  const entries = indexEntries(RENEWAL_NAMES, RENEWAL_NAMES / RENEWAL_DUE, now);
  const store = await fillStore(redis, PREFIX, entries, certificateEntry(dir), now);
  o.progress(`renewal bench: ${store.keys} keys, ${store.usedMemory} in ${store.fillSeconds.toFixed(1)} s; starting nginx`);

  const nginx = new RenewalNginx(path.join(dir, 'nginx'), await freePort(), {
    redis: { host: '127.0.0.1', port: redisServer.port, prefix: PREFIX, connect_timeout: 1000, read_timeout: 5000 },
    renewals_per_hour: RENEWALS_PER_HOUR, pass_interval: PASS_INTERVAL, batch: BATCH,
  });
  o.cleanup.add('renewal nginx', () => nginx.stop());
  await nginx.start();
  pinNginx(nginx.pid!, SERVER_CPU);
  await logEveryCommand(redis);

  const measure = async (what: 'pass' | 'list'): Promise<StepRound> => {
    if (what === 'pass') await makeDueAgain(redis, PREFIX, store.due);
    await resetSlowlog(redis);
    const answer = await runStep(nginx.port, what);
    const logged = await loggedCommands(redis);
    if (what === 'pass') {
      const r = answer.result!;
      if (answer.calls.issue) throw new Error(`the pass called issue ${answer.calls.issue} times: no name was due for renewal`);
      if (r.stopped) throw new Error(`the pass stopped: ${r.stopped}`);
      if (r.outcomes?.scheduled !== store.due.length || Object.keys(r.outcomes).length !== 1) {
        throw new Error(`the pass decided ${JSON.stringify(r.outcomes)}, expected ${store.due.length} scheduled`);
      }
      const left = await notRescheduled(redis, PREFIX, store.due);
      if (left.length) throw new Error(`${left.length} due names were not rescheduled to their renew-at (e.g. ${left[0]})`);
    } else if (answer.result!.names !== store.names) {
      throw new Error(`the listing found ${answer.result!.names} entries, expected ${store.names}`);
    }
    return { wallMs: answer.wall_us / 1000, logged, answer };
  };

  o.progress('renewal bench: warm-up (a pass and a listing, not counted)');
  const worker = onlyWorker(nginx.pid!);
  o.sampler?.sampleOnce('renewal', () => [['renewal nginx worker', worker], ['renewal redis', redisServer.pid!]], 200);
  await measure('pass');
  await measure('list');
  const report = { store, redisVersion, pass: [] as StepRound[], list: [] as StepRound[], loadBefore, loadAfter: NaN };
  for (let round = 0; round < o.rounds; round++) {
    o.progress(`renewal bench: round ${round + 1}/${o.rounds}`);
    const order: Array<'pass' | 'list'> = round % 2 === 0 ? ['pass', 'list'] : ['list', 'pass'];
    for (const what of order) report[what].push(await measure(what));
  }
  await o.cleanup.runNow('renewal nginx');
  await o.cleanup.runNow('renewal redis client');
  await o.cleanup.runNow('renewal redis');
  return { ...report, loadAfter: os.loadavg()[0] };
}

// ---- the printed figures ----

function num(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => `  ${r.map((cell, c) => (cell ?? '').padEnd(widths[c])).join('   ').trimEnd()}`).join('\n');
}

const longest = (logged: LoggedCommand[]) => logged.reduce((a, b) => (!(a.us >= b.us) ? b : a), { us: NaN, command: '-', text: '-' });
const of = (rounds: StepRound[], f: (r: StepRound) => number): Spread => spread(rounds.map(f));
const commandsIn = (r: StepRound, name?: string) => r.logged.filter((c) => !name || c.command === name);

/** "GET 1,000, ZADD 1,000, ...": the commands of one round, most first. */
function commandMix(r: StepRound): string {
  const counts = new Map<string, number>();
  for (const c of r.logged) counts.set(c.command, (counts.get(c.command) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([c, n]) => `${c} ${num(n)}`).join(', ');
}

/** Nearest-rank percentile. */
function percentile(values: number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  return v.length ? v[Math.max(0, Math.ceil((p / 100) * v.length) - 1)] : NaN;
}

/** Whether a step kept every command under the goal, over all rounds. */
function goalLine(label: string, rounds: StepRound[]): string {
  const all = rounds.flatMap((x) => x.logged);
  const top = longest(all);
  const over = all.filter((c) => c.us > GOAL_MS * 1000);
  const overMs = all.filter((c) => c.us > 1000).length;
  const kinds = [...new Set(over.map((c) => c.command))].join(', ');
  return `${label}: ${over.length === 0 ? 'met' : `NOT met (${num(over.length)} ${kinds} over ${GOAL_MS} ms)`}, `
    + `longest ${num(top.us / 1000, 2)} ms (${top.text}), ${num(overMs)} of its ${num(all.length)} commands (all rounds) over 1 ms`;
}

export function renewalTable(r: RenewalReport): string {
  const s = r.store;
  const us = (x: Spread) => fmt(x, 0);
  const scans = (x: StepRound) => commandsIn(x, 'SCAN');
  const inRedis = (x: StepRound) => x.logged.reduce((t, c) => t + c.us, 0);
  const cpu = (x: StepRound) => x.answer.cpu_us ?? NaN;
  const perRound = (a: StepRound[], b: StepRound[], f: (x: StepRound) => number, digits = 2) => {
    const q = spread(a.map((x, i) => f(x) / f(b[i])));
    return `×${num(q.median, digits)} [${num(q.min, digits)}–${num(q.max, digits)}]`;
  };
  const row = (label: string, rounds: StepRound[], commands: string, typical: (x: StepRound) => LoggedCommand[]) => {
    const worstRtt = rounds.reduce((a, b) => (b.answer.commands.max_us > a.answer.commands.max_us ? b : a));
    return [
      label, fmt(of(rounds, (x) => x.wallMs), 1), fmt(of(rounds, (x) => cpu(x) / 1000), 1), commands, fmt(of(rounds, (x) => inRedis(x) / 1000), 1),
      `${us(of(rounds, (x) => longest(x.logged).us))} (${longest(rounds.flatMap((x) => x.logged)).command})`,
      `${us(of(rounds, (x) => percentile(typical(x).map((c) => c.us), 99)))} / ${us(of(rounds, (x) => spread(typical(x).map((c) => c.us)).median))}`,
      `${us(of(rounds, (x) => x.answer.commands.max_us))} (${worstRtt.answer.commands.max_command ?? '?'})`,
    ];
  };
  const passMs = (f: (x: StepRound) => number) => fmt(of(r.pass, (x) => f(x) / 1000), 0);
  const roundTrips = (x: StepRound) => x.answer.commands.sum_us;
  const decode = (x: StepRound) => (x.answer.calls.get_cert_us ?? NaN) - (x.answer.commands.by.GET?.sum_us ?? 0);
  const certIds = (x: StepRound) => x.answer.calls.cert_id_us ?? NaN;
  const calls = (name: string) => r.pass.reduce((t, x) => t + (x.answer.calls[name] ?? 0), 0);
  const passCommands = of(r.pass, (x) => x.logged.length);
  return [
    `Renewal: one renewer pass over an index of ${num(s.names)} names, ${num(s.due.length)} due for a check only (renew-at ahead, `
      + `no ARI: rescheduled, none renewed), batch ${BATCH}, vs the full SCAN listing of the same entries (redis_storage `
      + `keys_with_suffix(":latest"), SCAN COUNT 1000); ${r.pass.length} interleaved round${r.pass.length === 1 ? '' : 's'} (the order alternating) after a warm-up; `
      + 'medians [min–max]; command times from the SLOWLOG (slowlog-log-slower-than 0)',
    table([
      ['', 'wall ms (nginx)', 'nginx CPU ms', 'Redis commands', 'time in Redis ms', 'longest command µs', 'p99 / median command µs',
        'longest round trip µs (nginx)'],
      row(`renewer pass (${num(s.due.length)} due)`, r.pass, fmt(passCommands), (x) => x.logged),
      row(`full SCAN listing (${num(s.names)} entries)`, r.list, `${fmt(of(r.list, (x) => scans(x).length))} SCAN`, scans),
      ['ratio pass / listing (per round)', perRound(r.pass, r.list, (x) => x.wallMs), perRound(r.pass, r.list, cpu), '',
        perRound(r.pass, r.list, inRedis, 3), perRound(r.pass, r.list, (x) => longest(x.logged).us, 3), '', ''],
    ]),
    `  goal, no store command over ${GOAL_MS} ms: ${goalLine('the pass', r.pass)}; ${goalLine('the listing', r.list)}`,
    `  the pass, every round: ${num(s.due.length)} scheduled, 0 renewed (issue called ${calls('issue')} times over all rounds), `
      + `domain check called ${calls('domain_check')} times; the CA offers no ARI, so no entry is read (ARI identifiers computed: `
      + `${num(calls('cert_id') / r.pass.length)} per pass); its commands: ${commandMix(r.pass[0])}`,
    `  where the pass's wall time goes, ms: ${num(of(r.pass, (x) => x.answer.commands.n).median)} sequential round trips to Redis ${passMs(roundTrips)} `
      + `(the SLOWLOG's ${num(passCommands.median)} commands count those a script runs too), `
      + `the ARI identifiers (edge.acme.crypto.ari_cert_id, PEM → X509) ${passMs(certIds)}, decoding the entries' JSON (get_cert less its GET) `
      + `${passMs(decode)}, the rest (Lua, the connection pool, waiting for the CPU) ${passMs((x) => x.answer.wall_us - roundTrips(x) - decode(x) - certIds(x))}`,
    `  the listing, every round: ${num(s.names)} names from SCAN 0 ... MATCH ${PREFIX}:*:latest COUNT 1000 over ${num(s.keys)} keys`,
    `  store: Redis ${r.redisVersion} on 127.0.0.1, CPU ${CLIENT_CPU}, no AOF; ${num(s.keys)} keys, ${s.usedMemory}: "${PREFIX}:<name>:latest" `
      + `entries of ${num(s.valueBytes)} bytes (auto-ssl's JSON; ECDSA P-256 leaf, RSA intermediate), their edge:renewal:<name> hashes, `
      + `the 4 index sorted sets; filled (pipelined) in ${num(s.fillSeconds, 1)} s. nginx: 1 worker on CPU ${SERVER_CPU}, the lua/ modules; `
      + 'round trip = send → reply parsed, timed around edge.redis_client\'s command',
    `  a command's SLOWLOG time is Redis's wall time for it, any preemption of Redis included: load average ${num(r.loadBefore, 2)} before `
      + `this bench, ${num(r.loadAfter, 2)} after`,
  ].join('\n');
}

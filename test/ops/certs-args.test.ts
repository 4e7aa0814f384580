import { parseCertsArgs, runCerts } from '../../bin/certs';

// A made-up token: these tests connect nowhere.
const TOKEN = 'unit-test-token-not-a-secret';
const env = { EDGE_API_TOKEN: TOKEN };

async function run(argv: string[], e: NodeJS.ProcessEnv = env): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCerts(argv, e, (s) => out.push(s), (s) => err.push(s));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('defaults: the API through a local port-forward, 21 days, pages of 1000, text output', () => {
  expect(parseCertsArgs(['list'], env)).toEqual({
    command: 'list', domain: undefined, days: 21, yes: false, json: false, apiUrl: 'http://127.0.0.1:8082', pageSize: 1000,
  });
  expect(parseCertsArgs(['expiring', '--days', '7'], { ...env, EDGE_API_URL: 'https://edge-api.prod.example:8443' }))
    .toMatchObject({ command: 'expiring', days: 7, apiUrl: 'https://edge-api.prod.example:8443' });
  expect(parseCertsArgs(['register', 'a.example.com', '--api', 'http://127.0.0.1:18082/', '--json'], { ...env, EDGE_API_URL: 'http://elsewhere:1' }))
    .toMatchObject({ command: 'register', domain: 'a.example.com', apiUrl: 'http://127.0.0.1:18082', json: true });
  expect(parseCertsArgs(['delete', 'a.example.com', '--yes', '--page-size', '10'], env)).toMatchObject({ command: 'delete', yes: true, pageSize: 10 });
});

test.each<[string, string[], RegExp]>([
  ['no command', [], /no command/],
  ['unknown command', ['renew'], /unknown command "renew"/],
  ['show without domain', ['show'], /show needs a domain/],
  ['register without domain', ['register'], /register needs a domain/],
  ['not a hostname', ['show', 'Foo.Example.com.'], /is not a host name/],
  ['IP literal', ['delete', '10.0.0.1'], /is not a host name/],
  ['list with a domain', ['list', 'a.example.com'], /list takes no domain/],
  ['bad days', ['expiring', '--days', '-3'], /--days must be a whole number/],
  ['bad page size', ['list', '--page-size', '1001'], /--page-size must be a whole number from 1 to 1000/],
  ['unknown option', ['list', '--password', 'x'], /unknown option --password/],
  ['missing value', ['list', '--api'], /--api needs a value/],
  ['not a URL', ['list', '--api', '127.0.0.1:8082'], /--api must be a URL/],
  ['not http', ['list', '--api', 'redis://127.0.0.1:6379'], /--api must be an http:\/\/ or https:\/\/ URL/],
  ['a path', ['list', '--api', 'http://127.0.0.1:8082/v1/domains'], /the API's origin only/],
  ['the old --redis', ['list', '--redis', 'redis://127.0.0.1:6379'], /--redis is gone: .*domains API.*--api URL/],
  ['the old --prefix', ['list', '--prefix', 'prod'], /--prefix is gone/],
])('rejects %s', (_name, argv, message) => {
  expect(() => parseCertsArgs(argv, env)).toThrow(message);
});

test('the token only from $EDGE_API_TOKEN: without it nothing runs (exit 2, saying where to get it); a --token option is refused without echoing it', async () => {
  for (const e of [{}, { EDGE_API_TOKEN: '' }]) {
    const result = await run(['list'], e);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/^certs: \$EDGE_API_TOKEN is not set: .*edge-domains-api, key token.*DomainsApiTokenSecretArn/);
  }
  for (const argv of [['list', '--token', 'hunter2'], ['list', '--token=hunter2']]) {
    const result = await run(argv);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/there is no --token option: the token is read from \$EDGE_API_TOKEN only/);
    expect(result.err + result.out).not.toContain('hunter2');
  }
  // Credentials in the URL: refused, and not echoed either.
  const inUrl = await run(['list', '--api', 'http://user:hunter2@127.0.0.1:8082']);
  expect(inUrl.code).toBe(2);
  expect(inUrl.err).toMatch(/must not carry credentials/);
  expect(inUrl.err).not.toContain('hunter2');
});

test('a usage error exits 2 with the message and the usage, without connecting anywhere', async () => {
  const result = await run(['show', '--api', 'http://127.0.0.1:1']);
  expect(result.code).toBe(2);
  expect(result.err).toMatch(/show needs a domain[\s\S]*usage: npm run certs/);
});

test('delete without --yes exits 2, saying to make the domain check answer 404 first, and calls nothing', async () => {
  const result = await run(['delete', 'a.example.com', '--api', 'http://127.0.0.1:1']);
  expect(result.code).toBe(2);
  expect(result.err).toMatch(/domain-check endpoint answer 404 for it first[\s\S]*Add --yes/);
});

test.each([['--help'], ['-h'], ['list', '--help']])('%s prints the usage on stdout and exits 0, with no token and connecting nowhere', async (...argv) => {
  const result = await run(argv, { EDGE_API_URL: 'http://127.0.0.1:1' });
  expect(result.code).toBe(0);
  expect(result.out).toMatch(/^usage: npm run certs -- [\s\S]*--help, -h[\s\S]*\$EDGE_API_TOKEN, never from the command line/);
  expect(result.err).toBe('');
});

import { parseCertsArgs, runCerts } from '../../bin/certs';

const env = {};

test('defaults: local Redis, 21 days, text output', () => {
  expect(parseCertsArgs(['list', '--prefix', 'prod'], env)).toEqual({
    command: 'list', domain: undefined, days: 21, yes: false, json: false, redisUrl: 'redis://127.0.0.1:6379', prefix: 'prod',
  });
  expect(parseCertsArgs(['expiring', '--days', '7', '--prefix', 'dev-alice'], { REDIS_URL: 'rediss://store.example:6379' }))
    .toMatchObject({ command: 'expiring', days: 7, redisUrl: 'rediss://store.example:6379' });
});

test.each<[string, string[], RegExp]>([
  ['no command', ['--prefix', 'prod'], /no command/],
  ['unknown command', ['renew', '--prefix', 'prod'], /unknown command "renew"/],
  ['no prefix', ['list'], /--prefix \(the environment name\) is required/],
  ['bad prefix', ['list', '--prefix', 'Prod*'], /--prefix must be an environment name/],
  ['show without domain', ['show', '--prefix', 'prod'], /show needs a domain/],
  ['not a hostname', ['show', 'Foo.Example.com.', '--prefix', 'prod'], /is not a host name/],
  ['IP literal', ['delete', '10.0.0.1', '--prefix', 'prod'], /is not a host name/],
  ['list with a domain', ['list', 'a.example.com', '--prefix', 'prod'], /list takes no domain/],
  ['bad days', ['expiring', '--days', '-3', '--prefix', 'prod'], /--days must be a whole number/],
  ['unknown option', ['list', '--prefix', 'prod', '--password', 'x'], /unknown option --password/],
  ['missing value', ['list', '--prefix'], /--prefix needs a value/],
])('rejects %s', (_name, argv, message) => {
  expect(() => parseCertsArgs(argv, env)).toThrow(message);
});

test('a usage error exits 2 with the message and the usage, without connecting anywhere', async () => {
  const errors: string[] = [];
  const code = await runCerts(['show', '--prefix', 'prod'], env, () => undefined, (s) => errors.push(s));
  expect(code).toBe(2);
  expect(errors.join('\n')).toMatch(/show needs a domain[\s\S]*usage: npm run certs/);
});

test('a password in the URL is refused (it belongs in REDIS_AUTH)', async () => {
  const errors: string[] = [];
  const code = await runCerts(['list', '--prefix', 'prod', '--redis', 'redis://:hunter2@127.0.0.1:6379'], env, () => undefined, (s) => errors.push(s));
  expect(code).toBe(1);
  expect(errors.join('')).toMatch(/REDIS_AUTH/);
  expect(errors.join('')).not.toContain('hunter2');
});

test.each([['--help'], ['-h'], ['list', '--prefix', 'prod', '--help']])('%s prints the usage on stdout and exits 0, connecting nowhere', async (...argv) => {
  const out: string[] = [];
  const errors: string[] = [];
  const code = await runCerts(argv, { REDIS_URL: 'redis://127.0.0.1:1' }, (s) => out.push(s), (s) => errors.push(s));
  expect(code).toBe(0);
  expect(out.join('\n')).toMatch(/^usage: npm run certs -- [\s\S]*--help, -h/);
  expect(errors).toEqual([]);
});

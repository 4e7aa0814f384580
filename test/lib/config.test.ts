import { cidrNetwork, ConfigError, instanceArchitecture, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, nearestField, renewalBudgetProblem, resolveConfig } from '../../lib/config';
import { defaultRawConfig } from '../helpers';

/** Resolves a config changed by `edit` and returns the problems it was rejected with. */
function problemsOf(edit: (raw: any) => void): string[] {
  const raw = defaultRawConfig();
  edit(raw);
  try {
    resolveConfig(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('config was accepted');
}

describe('resolveConfig defaults', () => {
  const config = resolveConfig(defaultRawConfig());
  const prod = config.environments.find((e) => e.name === 'prod')!;
  const dev = config.environments.find((e) => e.name === 'dev-example')!;

  test('the default config holds prod and one example dev environment', () => {
    expect(config.environments.map((e) => e.name)).toEqual(['prod', 'dev-example']);
  });

  test('platform defaults', () => {
    expect(config.platform).toMatchObject({
      kubernetesVersion: '1.35', clusterName: 'edge', vpcCidr: '10.40.0.0/16', nodeArchitecture: 'x86_64',
      nodeMinSize: 3, nodeDesiredSize: 3, nodeMaxSize: 6,
    });
  });

  test('prod: Let\'s Encrypt production, ElastiCache, static IPs, 3 replicas, ECDSA P-256', () => {
    expect(prod).toMatchObject({
      kind: 'prod', acmeDirectory: LETS_ENCRYPT_PRODUCTION, redisMode: 'elasticache', staticIps: true,
      replicas: 3, maxReplicas: 9, expectedDomains: 10000, keyAlgorithm: 'prime256v1', redisNodes: 2,
      certificateProfile: 'classic', renewalsPerHour: 60,
    });
  });

  test('domains API: no peer admitted; DNS pre-check on', () => {
    for (const env of [prod, dev]) {
      expect(env.domainsApi).toEqual({ allowedNamespaces: [], allowedCidrs: [] });
      expect(env.dnsPrecheck).toBe(true);
    }
  });

  test('domains API peers and the DNS pre-check switch, as configured', () => {
    const raw = defaultRawConfig();
    raw.environments[0].domainsApi = { allowedNamespaces: ['product'], allowedCidrs: ['10.40.128.0/20', '192.0.2.7/32'] };
    raw.environments[0].dnsPrecheck = false;
    raw.environments[1].domainsApi = { allowedCidrs: ['10.40.0.0/16'] };
    const [p, d] = resolveConfig(raw).environments;
    expect(p).toMatchObject({ domainsApi: { allowedNamespaces: ['product'], allowedCidrs: ['10.40.128.0/20', '192.0.2.7/32'] }, dnsPrecheck: false });
    expect(d.domainsApi).toEqual({ allowedNamespaces: [], allowedCidrs: ['10.40.0.0/16'] });
  });

  test('dev: Let\'s Encrypt staging, in-cluster Redis, no static IPs, 1 replica', () => {
    expect(dev).toMatchObject({
      kind: 'dev', acmeDirectory: LETS_ENCRYPT_STAGING, redisMode: 'in-cluster', staticIps: false, replicas: 1, expectedDomains: 100,
    });
  });

  test('staging is optional and defaults like prod but with 2 replicas', () => {
    const raw = defaultRawConfig();
    raw.environments.push({ ...raw.environments[0], name: 'staging' });
    const staging = resolveConfig(raw).environments.find((e) => e.name === 'staging')!;
    expect(staging).toMatchObject({ kind: 'staging', acmeDirectory: LETS_ENCRYPT_PRODUCTION, redisMode: 'elasticache', replicas: 2 });
  });

  test('edge hostnames are lower-cased', () => {
    const raw = defaultRawConfig();
    raw.environments[0].edgeHostnames = ['Edge.Example.COM'];
    expect(resolveConfig(raw).environments[0].edgeHostnames).toEqual(['edge.example.com']);
  });

  test('Graviton instance types give an arm64 node group', () => {
    const raw = defaultRawConfig();
    raw.platform.nodeInstanceTypes = ['m7g.large', 'c7g.xlarge'];
    expect(resolveConfig(raw).platform.nodeArchitecture).toBe('arm64');
    expect(instanceArchitecture('t4g.small')).toBe('arm64');
    expect(instanceArchitecture('m6i.large')).toBe('x86_64');
    expect(instanceArchitecture('c6gn.large')).toBe('arm64');
  });
});

describe('resolveConfig rejects, naming the field and what is allowed', () => {
  test.each<[string, (raw: any) => void, string | RegExp]>([
    ['missing account', (r) => { delete r.platform.account; }, 'platform.account: must be a non-empty string, got nothing'],
    ['short account', (r) => { r.platform.account = '1234'; }, 'platform.account: must be a 12-digit AWS account ID, got "1234"'],
    ['bad region', (r) => { r.platform.region = 'europe'; }, 'platform.region: must be an AWS region such as "eu-west-1", got "europe"'],
    ['two zones', (r) => { r.platform.availabilityZones = ['eu-west-1a', 'eu-west-1b']; }, 'platform.availabilityZones: must list exactly 3 zones of the region, got 2'],
    ['zone of another region', (r) => { r.platform.availabilityZones[2] = 'us-east-1a'; }, 'platform.availabilityZones: "us-east-1a" is not a zone of region "eu-west-1" (expected e.g. "eu-west-1a")'],
    ['repeated zone', (r) => { r.platform.availabilityZones[2] = 'eu-west-1a'; }, 'platform.availabilityZones: must not repeat a zone'],
    ['Kubernetes 1.29', (r) => { r.platform.kubernetesVersion = '1.29'; }, /platform\.kubernetesVersion: must be one of "1\.35", "1\.36" .*got "1\.29".*1\.29 cannot be created at all since 2026-03-23/],
    ['unknown version', (r) => { r.platform.kubernetesVersion = '2.0'; }, 'platform.kubernetesVersion: must be one of "1.35", "1.36" (the versions with a matching kubectl layer), got "2.0"'],
    ['unknown instance type', (r) => { r.platform.nodeInstanceTypes = ['large']; }, 'platform.nodeInstanceTypes: "large" is not an EC2 instance type such as "m6i.large"'],
    ['mixed architectures', (r) => { r.platform.nodeInstanceTypes = ['m6i.large', 'm7g.large']; }, /platform\.nodeInstanceTypes: must all be of one CPU architecture/],
    ['min above max', (r) => { r.platform.nodeMinSize = 5; r.platform.nodeMaxSize = 4; r.platform.nodeDesiredSize = 5; }, 'platform.nodeDesiredSize: must satisfy nodeMinSize <= nodeDesiredSize <= nodeMaxSize, got 5 <= 5 <= 4'],
    ['fractional node count', (r) => { r.platform.nodeMinSize = 2.5; }, 'platform.nodeMinSize: must be a whole number from 1 to 100, got 2.5'],
    ['API open to the world', (r) => { r.platform.apiAllowedCidrs = ['0.0.0.0/0']; }, /platform\.apiAllowedCidrs: "0\.0\.0\.0\/0" opens the Kubernetes API to the whole internet/],
    ['bad CIDR', (r) => { r.platform.apiAllowedCidrs = ['10.0.0.300/24']; }, 'platform.apiAllowedCidrs: must be an IPv4 CIDR such as "203.0.113.0/24", got "10.0.0.300/24"'],
    ['bad VPC CIDR', (r) => { r.platform.vpcCidr = '10.40.0.0'; }, 'platform.vpcCidr: must be an IPv4 CIDR such as "203.0.113.0/24", got "10.40.0.0"'],
    ['no environments', (r) => { r.environments = []; }, 'environments: must be a non-empty list of environments'],
    ['unknown environment name', (r) => { r.environments[0].name = 'production'; }, /environments\[0\]\.name: must be "prod", "staging" or "dev-<label>".*got "production"/],
    ['dev name not a DNS label', (r) => { r.environments[1].name = 'dev-Alice_1'; }, /environments\[1\]\.name: .*got "dev-Alice_1"/],
    ['dev name too long', (r) => { r.environments[1].name = `dev-${'a'.repeat(21)}`; }, /environments\[1\]\.name: .*at most 20 characters/],
    ['duplicate environment', (r) => { r.environments[1].name = 'prod'; }, 'environments[1].name: "prod" appears twice; names must be unique'],
    ['domain-check URL not a URL', (r) => { r.environments[0].domainCheckUrl = 'not a url'; }, 'environments[0].domainCheckUrl: must be an https:// URL, got "not a url"'],
    ['http origin', (r) => { r.environments[0].originUrl = 'http://app.example.com'; }, 'environments[0].originUrl: must be an https:// URL (plain http is refused), got "http://app.example.com"'],
    ['http ACME directory', (r) => { r.environments[0].acmeDirectory = 'http://acme.example.com/directory'; }, 'environments[0].acmeDirectory: must be an https:// URL (plain http is refused), got "http://acme.example.com/directory"'],
    ['credentials in a URL', (r) => { r.environments[0].domainCheckUrl = 'https://user:pw@app.example.com/check'; }, 'environments[0].domainCheckUrl: must not carry credentials in the URL'],
    ['bad email', (r) => { r.environments[0].contactEmail = 'tls-admin'; }, 'environments[0].contactEmail: must be an email address, got "tls-admin"'],
    ['bad edge hostname', (r) => { r.environments[0].edgeHostnames = ['-bad-.example.com']; }, 'environments[0].edgeHostnames: "-bad-.example.com" is not a hostname'],
    ['prod with one replica', (r) => { r.environments[0].replicas = 1; }, 'environments[0].replicas: prod needs at least 2 (so losing a node or a zone does not take the edge down), got 1'],
    ['zero replicas', (r) => { r.environments[1].replicas = 0; }, 'environments[1].replicas: must be a whole number from 1 to 100, got 0'],
    ['max below min replicas', (r) => { r.environments[0].maxReplicas = 2; }, 'environments[0].maxReplicas: must be a whole number from 3 to 300, got 2'],
    ['unknown key algorithm', (r) => { r.environments[0].keyAlgorithm = 'ed25519'; }, 'environments[0].keyAlgorithm: must be one of "prime256v1", "secp384r1", "rsa2048", got "ed25519"'],
    ['unknown certificate profile', (r) => { r.environments[0].certificateProfile = 'short'; }, 'environments[0].certificateProfile: must be one of "classic", "tlsserver", "shortlived", got "short"'],
    ['no renewal budget', (r) => { r.environments[0].renewalsPerHour = 0; }, 'environments[0].renewalsPerHour: must be a whole number from 1 to 10000, got 0'],
    ['unknown redis mode', (r) => { r.environments[1].redisMode = 'memcached'; }, 'environments[1].redisMode: must be one of "elasticache", "in-cluster", got "memcached"'],
    ['prod on in-cluster Redis', (r) => { r.environments[0].redisMode = 'in-cluster'; }, /environments\[0\]\.redisMode: prod must use "elasticache"/],
    ['one ElastiCache node', (r) => { r.environments[0].redisNodes = 1; }, 'environments[0].redisNodes: must be a whole number from 2 to 6, got 1'],
    ['bad node type', (r) => { r.environments[0].redisNodeType = 'm7g.large'; }, 'environments[0].redisNodeType: must be an ElastiCache node type such as "cache.m7g.large", got "m7g.large"'],
    ['staticIps not boolean', (r) => { r.environments[0].staticIps = 'yes'; }, 'environments[0].staticIps: must be true or false, got "yes"'],
    ['expectedDomains zero', (r) => { r.environments[0].expectedDomains = 0; }, 'environments[0].expectedDomains: must be a whole number from 1 to 10000000, got 0'],
    ['domainsApi not an object', (r) => { r.environments[0].domainsApi = ['product']; }, 'environments[0].domainsApi: must be an object with allowedNamespaces and/or allowedCidrs, got ["product"]'],
    ['API namespace not a DNS label', (r) => { r.environments[0].domainsApi = { allowedNamespaces: ['Product_App'] }; }, 'environments[0].domainsApi.allowedNamespaces: "Product_App" is not a namespace name: a lower-case DNS label of at most 63 characters (a-z, 0-9, "-")'],
    ['API namespace too long', (r) => { r.environments[0].domainsApi = { allowedNamespaces: ['a'.repeat(64)] }; }, /^environments\[0\]\.domainsApi\.allowedNamespaces: "a{64}" is not a namespace name/],
    ['API namespaces not a list', (r) => { r.environments[0].domainsApi = { allowedNamespaces: 'product' }; }, 'environments[0].domainsApi.allowedNamespaces: must be a list of strings, got "product"'],
    ['API namespace twice', (r) => { r.environments[0].domainsApi = { allowedNamespaces: ['product', 'product'] }; }, 'environments[0].domainsApi.allowedNamespaces: "product" appears twice'],
    ['API CIDR not a CIDR', (r) => { r.environments[0].domainsApi = { allowedCidrs: ['10.40.0.0'] }; }, 'environments[0].domainsApi.allowedCidrs: must be an IPv4 CIDR such as "203.0.113.0/24", got "10.40.0.0"'],
    ['API open to every address', (r) => { r.environments[0].domainsApi = { allowedCidrs: ['0.0.0.0/0'] }; }, 'environments[0].domainsApi.allowedCidrs: "0.0.0.0/0" admits every address to the domains API; list the product\'s ranges, or use allowedNamespaces'],
    ['API CIDR with host bits', (r) => { r.environments[0].domainsApi = { allowedCidrs: ['10.40.130.7/20'] }; }, 'environments[0].domainsApi.allowedCidrs: "10.40.130.7/20" has host bits set; its network is "10.40.128.0/20"'],
    ['API CIDR twice', (r) => { r.environments[1].domainsApi = { allowedCidrs: ['10.0.0.0/8', '10.0.0.0/8'] }; }, 'environments[1].domainsApi.allowedCidrs: "10.0.0.0/8" appears twice'],
    ['devDefaults API CIDR', (r) => { r.devDefaults.domainsApi = { allowedCidrs: ['300.0.0.0/8'] }; }, 'devDefaults.domainsApi.allowedCidrs: must be an IPv4 CIDR such as "203.0.113.0/24", got "300.0.0.0/8"'],
    ['dnsPrecheck not boolean', (r) => { r.environments[0].dnsPrecheck = 'off'; }, 'environments[0].dnsPrecheck: must be true or false, got "off"'],
  ])('%s', (_name, edit, expected) => {
    const problems = problemsOf(edit);
    if (typeof expected === 'string') expect(problems).toContain(expected);
    else expect(problems.some((p) => expected.test(p))).toBe(true);
  });

  test('reports every problem at once', () => {
    const problems = problemsOf((r) => { r.platform.account = 'x'; r.environments[0].originUrl = 'http://a'; });
    expect(problems).toHaveLength(2);
  });

  test('a missing "edge" context is explained', () => {
    expect(() => resolveConfig(undefined)).toThrow(/cdk.json must have a context key "edge"/);
  });

  test('the error message lists each problem on its own line', () => {
    expect(() => resolveConfig({ ...defaultRawConfig(), environments: [] })).toThrow(
      'Invalid edge config (cdk.json context "edge"):\n  - environments: must be a non-empty list of environments');
  });
});

describe('renewal budget: renewalsPerHour must renew expectedDomains certificates at two thirds of their lifetime, with 1.5 x headroom', () => {
  test('the defaults pass: prod 10000 on classic (taken at 45 days) needs 13.9 per hour, 60 is above 21; dev has 100', () => {
    const [prod, dev] = resolveConfig(defaultRawConfig()).environments;
    expect(prod).toMatchObject({ expectedDomains: 10000, certificateProfile: 'classic', renewalsPerHour: 60 });
    expect(dev).toMatchObject({ expectedDomains: 100, renewalsPerHour: 60 });
    expect(renewalBudgetProblem(60, 10000, 'classic')).toBeUndefined();
  });

  test('too small a budget is refused, naming renewalsPerHour, the domains, the profile, the rate needed and the minimum', () => {
    expect(problemsOf((r) => { r.environments[0].renewalsPerHour = 20; })).toEqual([
      'environments[0].renewalsPerHour: 20 cannot keep up with expectedDomains 10000 on certificateProfile "classic" (45-day certificates from 2028-02-16): '
      + 'each is renewed at two thirds of its lifetime, every 720 h, which needs 13.9 renewals per hour; '
      + 'set renewalsPerHour to at least 21 (1.5 x that, for retries and bursts)',
    ]);
    expect(problemsOf((r) => { r.environments[0].certificateProfile = 'shortlived'; })).toEqual([
      'environments[0].renewalsPerHour: 60 cannot keep up with expectedDomains 10000 on certificateProfile "shortlived" (160-hour certificates): '
      + 'each is renewed at two thirds of its lifetime, every 106.7 h, which needs 93.8 renewals per hour; '
      + 'set renewalsPerHour to at least 141 (1.5 x that, for retries and bursts)',
    ]);
    expect(problemsOf((r) => { r.devDefaults.expectedDomains = 2000; r.devDefaults.certificateProfile = 'tlsserver'; r.devDefaults.renewalsPerHour = 4; }))
      .toEqual([expect.stringMatching(/^devDefaults\.renewalsPerHour: 4 cannot keep up with expectedDomains 2000 on certificateProfile "tlsserver" \(45-day certificates\): .* needs 2\.8 renewals per hour; set renewalsPerHour to at least 5 /)]);
  });

  test('a budget at the minimum passes (the minimum is exact: 1.5 x the rate needed, rounded up)', () => {
    const raw = defaultRawConfig();
    raw.environments[0].renewalsPerHour = 21;
    raw.environments.push({ ...raw.environments[0], name: 'staging', certificateProfile: 'shortlived', renewalsPerHour: 141 });
    // 4800 names on 45 days: 6.67 per hour needed, exactly 10 with the headroom.
    raw.environments.push({ ...raw.environments[1], name: 'dev-big', expectedDomains: 4800, renewalsPerHour: 10 });
    expect(resolveConfig(raw).environments.map((e) => e.renewalsPerHour)).toEqual([21, 60, 141, 10]);
    expect(renewalBudgetProblem(9, 4800, 'classic')).toMatch(/needs 6\.7 renewals per hour; set renewalsPerHour to at least 10 /);
    expect(renewalBudgetProblem(140, 10000, 'shortlived')).toMatch(/at least 141 /);
    expect(renewalBudgetProblem(141, 10000, 'shortlived')).toBeUndefined();
  });

  test('not checked on a value already refused (it would be the default\'s figure)', () => {
    expect(problemsOf((r) => { r.environments[0].renewalsPerHour = 0; r.environments[0].expectedDomains = 1_000_000; }))
      .toEqual(['environments[0].renewalsPerHour: must be a whole number from 1 to 10000, got 0']);
  });
});

describe('delivery and alarms config', () => {
  test('defaults', () => {
    expect(resolveConfig(defaultRawConfig()).delivery).toEqual({
      githubRepository: 'example-org/custom-domain-edge', deployEnvironment: 'production', deployBranch: 'main',
      bootstrapQualifier: 'hnb659fds', githubOidcProviderExists: false,
    });
  });

  test.each<[string, (raw: any) => void, string]>([
    ['repository not owner/name', (r) => { r.delivery.githubRepository = 'just-a-name'; }, 'delivery.githubRepository: must be "owner/name", got "just-a-name"'],
    ['bad qualifier', (r) => { r.delivery.bootstrapQualifier = 'Has Spaces'; }, 'delivery.bootstrapQualifier: must be 1-10 lower-case letters or digits, got "Has Spaces"'],
    ['bad alarm email', (r) => { r.platform.alarmEmail = 'oncall'; }, 'platform.alarmEmail: must be an email address, got "oncall"'],
  ])('%s', (_name, edit, expected) => {
    expect(problemsOf(edit)).toContain(expected);
  });
});

describe('unknown fields are rejected, at every level, with the nearest known field', () => {
  test.each<[string, (raw: any) => void, unknown]>([
    ['"replica" in an environment', (r) => { r.environments[0].replica = 5; }, 'environments[0].replica: unknown field; did you mean "replicas"?'],
    ['"staticIP" in an environment', (r) => { r.environments[1].staticIP = true; }, 'environments[1].staticIP: unknown field; did you mean "staticIps"?'],
    ['"nodeInstanceType" in platform', (r) => { r.platform.nodeInstanceType = 'm7g.large'; }, 'platform.nodeInstanceType: unknown field; did you mean "nodeInstanceTypes"?'],
    ['a wrong case', (r) => { r.platform.ClusterName = 'edge'; }, 'platform.ClusterName: unknown field; did you mean "clusterName"?'],
    ['swapped letters', (r) => { r.environments[0].replcias = 4; }, 'environments[0].replcias: unknown field; did you mean "replicas"?'],
    ['top level', (r) => { r.enviroments = []; }, 'enviroments: unknown field; did you mean "environments"?'],
    ['devDefaults', (r) => { r.devDefaults.redisMod = 'in-cluster'; }, 'devDefaults.redisMod: unknown field; did you mean "redisMode"?'],
    ['a name in devDefaults (dev:up names the environment)', (r) => { r.devDefaults.name = 'dev-x'; }, expect.stringMatching(/^devDefaults\.name: unknown field; the fields here are "domainCheckUrl", /)],
    ['delivery', (r) => { r.delivery.deployBrnach = 'trunk'; }, 'delivery.deployBrnach: unknown field; did you mean "deployBranch"?'],
    ['domainsApi', (r) => { r.environments[0].domainsApi = { allowedNamespace: ['product'] }; }, 'environments[0].domainsApi.allowedNamespace: unknown field; did you mean "allowedNamespaces"?'],
    ['domainsApi, far from every field', (r) => { r.environments[0].domainsApi = { ports: [8082] }; }, 'environments[0].domainsApi.ports: unknown field; the fields here are "allowedNamespaces", "allowedCidrs"'],
    ['"dnsPreCheck" in an environment', (r) => { r.environments[0].dnsPreCheck = false; }, 'environments[0].dnsPreCheck: unknown field; did you mean "dnsPrecheck"?'],
  ])('%s', (_name, edit, expected) => {
    expect(problemsOf(edit)).toContainEqual(expected);
  });

  test('a key far from every field lists the fields of its level', () => {
    expect(problemsOf((r) => { r.platform.instanceRole = 'x'; })).toEqual([
      'platform.instanceRole: unknown field; the fields here are "account", "region", "availabilityZones", "clusterName", "vpcCidr", '
      + '"kubernetesVersion", "nodeInstanceTypes", "nodeMinSize", "nodeDesiredSize", "nodeMaxSize", "apiAllowedCidrs", "alarmEmail"',
    ]);
    expect(problemsOf((r) => { r.extra = {}; })).toEqual([
      'extra: unknown field; the fields here are "platform", "environments", "devDefaults", "delivery"',
    ]);
  });

  test('every problem at once: unknown fields of several levels and a bad value', () => {
    expect(problemsOf((r) => {
      r.environments[0].replica = 5;
      r.environments[1].staticIP = false;
      r.platform.nodeInstanceType = 'm6i.large';
      r.platform.account = 'x';
    })).toEqual([
      'platform.account: must be a 12-digit AWS account ID, got "x"',
      'platform.nodeInstanceType: unknown field; did you mean "nodeInstanceTypes"?',
      'environments[0].replica: unknown field; did you mean "replicas"?',
      'environments[1].staticIP: unknown field; did you mean "staticIps"?',
    ]);
  });

  test('a misspelled key no longer falls back to the default silently', () => {
    const raw = defaultRawConfig();
    raw.environments[0].replica = 5;
    expect(() => resolveConfig(raw)).toThrow(ConfigError);
  });

  test('devDefaults are checked like a dev environment', () => {
    expect(problemsOf((r) => { r.devDefaults.originUrl = 'http://dev.app.example.com'; })).toEqual([
      'devDefaults.originUrl: must be an https:// URL (plain http is refused), got "http://dev.app.example.com"',
    ]);
  });

  test('a correct config, every field spelled out, still resolves', () => {
    const raw = defaultRawConfig();
    Object.assign(raw.platform, {
      vpcCidr: '10.40.0.0/16', nodeMinSize: 3, nodeDesiredSize: 3, nodeMaxSize: 6, alarmEmail: 'oncall@example.com',
    });
    Object.assign(raw.environments[0], {
      acmeDirectory: LETS_ENCRYPT_PRODUCTION, keyAlgorithm: 'secp384r1', replicas: 4, maxReplicas: 8, expectedDomains: 5000,
      redisMode: 'elasticache', redisNodeType: 'cache.m7g.large', redisNodes: 3, staticIps: true,
      domainsApi: { allowedNamespaces: ['product'], allowedCidrs: [] }, dnsPrecheck: true,
    });
    Object.assign(raw.devDefaults, { replicas: 1, staticIps: false, redisMode: 'in-cluster' });
    Object.assign(raw.delivery, { deployBranch: 'main', bootstrapQualifier: 'hnb659fds', githubOidcProviderExists: true });
    const config = resolveConfig(raw);
    expect(config.environments[0]).toMatchObject({ replicas: 4, maxReplicas: 8, keyAlgorithm: 'secp384r1', redisNodes: 3 });
    expect(config.platform.alarmEmail).toBe('oncall@example.com');
    expect(config.delivery?.githubOidcProviderExists).toBe(true);
  });

  test('cidrNetwork: the network address of a CIDR', () => {
    expect(cidrNetwork('10.40.130.7/20')).toBe('10.40.128.0/20');
    expect(cidrNetwork('192.0.2.7/32')).toBe('192.0.2.7/32');
    expect(cidrNetwork('255.255.255.255/1')).toBe('128.0.0.0/1');
    expect(cidrNetwork('10.1.2.3/0')).toBe('0.0.0.0/0');
  });

  test('nearestField: a case-insensitive match or at most 2 edits, else nothing', () => {
    expect(nearestField('REPLICAS', ['name', 'replicas'])).toBe('replicas');
    expect(nearestField('repl', ['name', 'replicas'])).toBeUndefined();
    expect(nearestField('nme', ['name', 'replicas'])).toBe('name');
  });
});

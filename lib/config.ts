/**
 * The typed configuration of the edge: one platform (VPC + EKS) per account/region, and the
 * environments that run on it (prod, an optional staging, any number of dev-<name>).
 *
 * The raw config lives in cdk.json under the context key "edge" (see `bin/app.ts`); every field
 * not given takes the default documented here, and `resolveConfig` rejects a bad value at synth
 * time with a message that names the field and what is allowed, and an unknown key (at any level)
 * with the nearest known field, so a misspelling never falls back to a default unnoticed.
 */
import { CERTIFICATE_PROFILES, CertificateProfile } from '../charts/nginx-conf';

/** Let's Encrypt production directory: the default for prod and staging. */
export const LETS_ENCRYPT_PRODUCTION = 'https://acme-v02.api.letsencrypt.org/directory';
/** Let's Encrypt staging directory: the default for dev environments (untrusted certificates, generous limits). */
export const LETS_ENCRYPT_STAGING = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/**
 * Kubernetes versions this app can create, each with the kubectl version its kubectl layer
 * bundles. kubectl is supported only within one minor of the API server, so the layer must match.
 * EKS stopped creating 1.29 clusters when its extended support ended (2026-03-23).
 */
export const SUPPORTED_KUBERNETES_VERSIONS = ['1.35', '1.36'] as const;
export type KubernetesVersion = (typeof SUPPORTED_KUBERNETES_VERSIONS)[number];

/** Certificate key types: ECDSA P-256 (default), P-384, RSA-2048. */
export const KEY_ALGORITHMS = ['prime256v1', 'secp384r1', 'rsa2048'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

export const REDIS_MODES = ['elasticache', 'in-cluster'] as const;
/** Where certificates are stored: ElastiCache (Valkey) or a Redis StatefulSet in the namespace. */
export type RedisMode = (typeof REDIS_MODES)[number];

export type EnvironmentKind = 'prod' | 'staging' | 'dev';

/** The shared platform: one VPC and one EKS cluster per account/region. */
export interface PlatformConfig {
  /** AWS account ID, 12 digits. Required: synth needs no credentials to know it. */
  readonly account: string;
  /** AWS region, e.g. "eu-west-1". Required. */
  readonly region: string;
  /** Availability zones of the region to use, explicit so synth makes no lookup. Exactly 3. Required. */
  readonly availabilityZones: string[];
  /** Name of the EKS cluster. @default "edge" */
  readonly clusterName?: string;
  /** CIDR of the VPC. @default "10.40.0.0/16" */
  readonly vpcCidr?: string;
  /** Kubernetes version of the cluster; the kubectl layer is chosen to match. @default "1.35" */
  readonly kubernetesVersion?: string;
  /** EC2 instance types of the managed node group, all of one CPU architecture. @default ["m6i.large"] */
  readonly nodeInstanceTypes?: string[];
  /** Minimum number of nodes. @default 3 (one per AZ) */
  readonly nodeMinSize?: number;
  /** Desired number of nodes at creation. @default 3 */
  readonly nodeDesiredSize?: number;
  /** Maximum number of nodes. @default 6 */
  readonly nodeMaxSize?: number;
  /**
   * CIDRs allowed to reach the public Kubernetes API endpoint. An empty list makes the endpoint
   * private (reachable from the VPC only). 0.0.0.0/0 is refused.
   * @default [] (private endpoint)
   */
  readonly apiAllowedCidrs?: string[];
  /** Email address subscribed to the alarms (confirm the subscription once). @default none: alarms go to the SNS topic only */
  readonly alarmEmail?: string;
}

/** One environment: a namespace on the cluster, its own NLB, its own certificate store. */
export interface EnvironmentConfig {
  /** "prod", "staging" or "dev-<label>" (a DNS label). Also the Kubernetes namespace. Required. */
  readonly name: string;
  /** The product's domain-check endpoint: GET <url>?domain=<name> answers 200 (ours) or 404. https. Required. */
  readonly domainCheckUrl: string;
  /** The product's origin that requests are proxied to, Host preserved. https. Required. */
  readonly originUrl: string;
  /** Contact email registered with the ACME account. Required. */
  readonly contactEmail: string;
  /** Our own hostnames (e.g. the CNAME target customers point at): never issued for. @default [] */
  readonly edgeHostnames?: string[];
  /** ACME directory URL, https only. @default Let's Encrypt production for prod/staging, staging for dev */
  readonly acmeDirectory?: string;
  /** Key type of issued certificates. @default "prime256v1" (ECDSA P-256) */
  readonly keyAlgorithm?: string;
  /**
   * ACME profile asked for in each order, where the CA advertises profiles: "classic" (90 days;
   * 64 from 2027-02-10, 45 from 2028-02-16), "tlsserver" (45 days) or "shortlived" (160 hours).
   * @default "classic"
   */
  readonly certificateProfile?: string;
  /**
   * Renewal orders per hour for the environment, spread over the hour. Let's Encrypt allows 300
   * new orders per account per 3 hours; the default leaves 120 of them for new names. Renewals
   * the CA's ARI covers (orders with "replaces") are exempt from its limits, but are counted here
   * too: raise it for many names on short profiles. Checked at synth: it must be at least 1.5 x
   * expectedDomains / (2/3 x the profile's lifetime in hours), "classic" taken at 45 days.
   * @default 60
   */
  readonly renewalsPerHour?: number;
  /** Minimum number of edge pods. @default 3 for prod, 2 for staging, 1 for dev; prod needs at least 2 */
  readonly replicas?: number;
  /** Maximum number of edge pods the autoscaler may run. @default 3 x replicas */
  readonly maxReplicas?: number;
  /** Expected number of customer domains: sizes the certificate cache. @default 10000 for prod/staging, 100 for dev */
  readonly expectedDomains?: number;
  /** Certificate store. @default "elasticache" for prod/staging, "in-cluster" for dev; prod must use elasticache */
  readonly redisMode?: string;
  /** ElastiCache node type (elasticache mode). @default "cache.m7g.large" */
  readonly redisNodeType?: string;
  /** ElastiCache nodes: one primary plus replicas, in different AZs (elasticache mode). At least 2. @default 2 */
  readonly redisNodes?: number;
  /** One Elastic IP per AZ on the NLB, so apex domains can use A records. @default true for prod/staging, false for dev */
  readonly staticIps?: boolean;
  /**
   * Who may call the domains API (PUT/GET/DELETE /v1/domains/{name}, GET /v1/domains) on the edge
   * pods' API port: a NetworkPolicy admits these peers and nothing else. The NLB never carries the
   * API, and every call needs the bearer token besides.
   * @default {} (no peer: the API is reachable only through `kubectl port-forward`)
   */
  readonly domainsApi?: DomainsApiConfig;
  /**
   * Before an order, check that the customer's name points at this environment: a CNAME chain
   * through one of edgeHostnames or the NLB's DNS name, or A records to the NLB's Elastic IPs.
   * A name not pointed at us yet costs no failed validation (5 per name per hour at Let's Encrypt).
   * @default true
   */
  readonly dnsPrecheck?: boolean;
}

/** The peers a NetworkPolicy admits to the domains API port of an environment's edge pods. */
export interface DomainsApiConfig {
  /** Namespaces (lower-case DNS labels) whose pods may call the API, e.g. the product's. @default [] */
  readonly allowedNamespaces?: string[];
  /**
   * IPv4 CIDRs (network addresses, not /0) whose clients may call the API, by their source address
   * as the pod sees it: pods in the cluster, or VPC clients that reach pod IPs (the cluster's
   * security group must admit those too). @default []
   */
  readonly allowedCidrs?: string[];
}

/** Deploying from GitHub Actions: the roles its workflows assume through GitHub's OIDC provider. */
export interface DeliveryConfig {
  /** The GitHub repository "owner/name" whose workflows may assume the roles. Required. */
  readonly githubRepository: string;
  /** The GitHub environment (with required reviewers) whose jobs may deploy. @default "production" */
  readonly deployEnvironment?: string;
  /** The branch that deploys. @default "main" */
  readonly deployBranch?: string;
  /** Qualifier of the account's CDK bootstrap (its roles are what the deploy role may assume). @default "hnb659fds" */
  readonly bootstrapQualifier?: string;
  /** The account already has GitHub's OIDC provider (there can be one per account). @default false: create it */
  readonly githubOidcProviderExists?: boolean;
}

/** The raw config as written in cdk.json (context key "edge"). */
export interface EdgeAppConfig {
  readonly platform: PlatformConfig;
  readonly environments: EnvironmentConfig[];
  /** What a dev environment made on demand (`npm run dev:up -- <name>`) is configured with. @default none: dev:up refuses */
  readonly devDefaults?: Omit<EnvironmentConfig, 'name'>;
  /** CI roles; no delivery stack when absent. */
  readonly delivery?: DeliveryConfig;
}

/** The platform config with every default applied. */
export interface ResolvedPlatformConfig extends Required<Omit<PlatformConfig, 'alarmEmail'>> {
  readonly alarmEmail?: string;
  readonly kubernetesVersion: KubernetesVersion;
  /** CPU architecture of the node instance types (and so of the edge image). */
  readonly nodeArchitecture: 'x86_64' | 'arm64';
}

/** An environment config with every default applied. */
export interface ResolvedEnvironmentConfig extends Required<EnvironmentConfig> {
  readonly kind: EnvironmentKind;
  readonly keyAlgorithm: KeyAlgorithm;
  readonly certificateProfile: CertificateProfile;
  readonly redisMode: RedisMode;
  readonly domainsApi: ResolvedDomainsApiConfig;
}

export type ResolvedDomainsApiConfig = Required<DomainsApiConfig>;

export type ResolvedDeliveryConfig = Required<DeliveryConfig>;

export interface ResolvedAppConfig {
  readonly platform: ResolvedPlatformConfig;
  readonly environments: ResolvedEnvironmentConfig[];
  readonly delivery?: ResolvedDeliveryConfig;
}

/** Thrown when the config is invalid; lists every problem, each naming its field. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid edge config (cdk.json context "edge"):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const CIDR = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;
const INSTANCE_TYPE = /^([a-z]+)(\d+)([a-z-]*)\.(\d*[a-z]+)$/;
/** A dev environment's name: "dev-" plus a label, short enough for the stack and NLB names built from it. */
const DEV_NAME = /^dev-[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/;
/** The name devDefaults are checked under: any dev name, the rules of a dev environment. */
const DEV_DEFAULTS_NAME = 'dev-defaults';

/**
 * Certificate lifetime of each profile, in hours, for the renewal budget check. "classic" is
 * taken at Let's Encrypt's lifetime from 2028-02-16 (45 days; 90 now, 64 from 2027-02-10), so a
 * config that passes now does not start failing when the lifetime shrinks.
 */
export const PROFILE_LIFETIME_HOURS: Record<CertificateProfile, number> = {
  classic: 45 * 24,
  tlsserver: 45 * 24,
  shortlived: 160,
};
/** How a renewal budget problem names each profile's lifetime. */
const PROFILE_LIFETIME_TEXT: Record<CertificateProfile, string> = {
  classic: '45-day certificates from 2028-02-16',
  tlsserver: '45-day certificates',
  shortlived: '160-hour certificates',
};
/** Headroom the renewal budget must have over the steady rate, for retries and bursts. */
export const RENEWAL_BUDGET_MARGIN = 1.5;

/**
 * Whether `renewalsPerHour` can keep `expectedDomains` certificates renewed: each is renewed at
 * two thirds of its lifetime, so the steady rate is expectedDomains / (2/3 x lifetime hours),
 * and the budget must be RENEWAL_BUDGET_MARGIN times that. Returns the problem, or undefined.
 */
export function renewalBudgetProblem(renewalsPerHour: number, expectedDomains: number, profile: CertificateProfile): string | undefined {
  const lifetime = PROFILE_LIFETIME_HOURS[profile];
  // In whole numbers: needed = 3 d / (2 L); minimum = 1.5 x needed = 9 d / (4 L).
  if (4 * lifetime * renewalsPerHour >= 9 * expectedDomains) return undefined;
  const needed = Math.ceil((30 * expectedDomains) / (2 * lifetime)) / 10;
  const minimum = Math.ceil((9 * expectedDomains) / (4 * lifetime));
  const hoursBetween = Math.round(((2 * lifetime) / 3) * 10) / 10;
  return `${renewalsPerHour} cannot keep up with expectedDomains ${expectedDomains} on certificateProfile "${profile}" (${PROFILE_LIFETIME_TEXT[profile]}): `
    + `each is renewed at two thirds of its lifetime, every ${hoursBetween} h, which needs ${needed} renewals per hour; `
    + `set renewalsPerHour to at least ${minimum} (${RENEWAL_BUDGET_MARGIN} x that, for retries and bursts)`;
}

/** Defaults that depend on the kind of environment; every other default is inline in resolveConfig. */
const KIND_DEFAULTS: Record<EnvironmentKind, {
  acmeDirectory: string; replicas: number; expectedDomains: number; redisMode: RedisMode; staticIps: boolean;
}> = {
  prod: { acmeDirectory: LETS_ENCRYPT_PRODUCTION, replicas: 3, expectedDomains: 10000, redisMode: 'elasticache', staticIps: true },
  staging: { acmeDirectory: LETS_ENCRYPT_PRODUCTION, replicas: 2, expectedDomains: 10000, redisMode: 'elasticache', staticIps: true },
  dev: { acmeDirectory: LETS_ENCRYPT_STAGING, replicas: 1, expectedDomains: 100, redisMode: 'in-cluster', staticIps: false },
};

/**
 * Collects problems while reading one object; each problem is prefixed with its field path.
 * The fields it reads are the object's known fields: `rejectUnknown` (called once everything is
 * read) reports every other key, so the list of allowed fields is the validator itself.
 */
class Checker {
  readonly problems: string[] = [];
  /** The fields read so far, in reading order (the documented order). */
  private readonly known: string[] = [];

  constructor(private readonly raw: Record<string, unknown>, private readonly path: string) {}

  fail(field: string, message: string): void {
    this.problems.push(`${this.path ? `${this.path}.` : ''}${field}: ${message}`);
  }

  /** Whether a problem was recorded for any of these fields (its value is then a fallback). */
  failed(...fields: string[]): boolean {
    const prefixes = fields.map((field) => `${this.path ? `${this.path}.` : ''}${field}: `);
    return this.problems.some((problem) => prefixes.some((prefix) => problem.startsWith(prefix)));
  }

  /** The raw value of a field another function validates (a nested object or list); marks it known. */
  field(field: string): unknown {
    return this.value(field);
  }

  private value(field: string): unknown {
    if (!this.known.includes(field)) this.known.push(field);
    return this.raw[field];
  }

  /** Reports each key of the object that no reader asked for, with the nearest known field. */
  rejectUnknown(): void {
    for (const key of Object.keys(this.raw)) {
      if (!this.known.includes(key)) this.fail(key, unknownFieldMessage(key, this.known));
    }
  }

  string(field: string, fallback?: string): string {
    const value = this.value(field);
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'string' || value.length === 0) {
      this.fail(field, `must be a non-empty string, got ${describe(value)}`);
      return fallback ?? '';
    }
    return value;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], fallback: T): T {
    const value = this.string(field, fallback);
    if (!(allowed as readonly string[]).includes(value)) {
      this.fail(field, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${value}"`);
      return fallback;
    }
    return value as T;
  }

  integer(field: string, fallback: number, min: number, max: number): number {
    const value = this.value(field);
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.fail(field, `must be a whole number from ${min} to ${max}, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  boolean(field: string, fallback: boolean): boolean {
    const value = this.value(field);
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.fail(field, `must be true or false, got ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  strings(field: string, fallback?: string[]): string[] {
    const value = this.value(field);
    if (value === undefined && fallback !== undefined) return fallback;
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
      this.fail(field, `must be a list of strings, got ${describe(value)}`);
      return fallback ?? [];
    }
    return value as string[];
  }

  httpsUrl(field: string, fallback?: string): string {
    const value = this.string(field, fallback);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      this.fail(field, `must be an https:// URL, got "${value}"`);
      return value;
    }
    if (url.protocol !== 'https:') this.fail(field, `must be an https:// URL (plain http is refused), got "${value}"`);
    else if (url.username || url.password) this.fail(field, 'must not carry credentials in the URL');
    return value;
  }
}

/** Whether a string is a lower-case DNS host name (at least two labels, letters in the last). */
export function isHostname(name: string): boolean {
  return HOSTNAME.test(name);
}

/** A close misspelling (case aside, at most this many edits) gets a "did you mean"; anything else the list of fields. */
const MAX_SUGGESTION_DISTANCE = 2;

function unknownFieldMessage(key: string, known: readonly string[]): string {
  const nearest = nearestField(key, known);
  if (nearest) return `unknown field; did you mean "${nearest}"?`;
  return `unknown field; the fields here are ${known.map((k) => `"${k}"`).join(', ')}`;
}

/** The known field closest to a misspelled key: the same but for case, else the fewest edits, if few enough. */
export function nearestField(key: string, known: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = MAX_SUGGESTION_DISTANCE + 1;
  for (const field of known) {
    const distance = editDistance(lower, field.toLowerCase());
    if (distance < bestDistance) {
      best = field;
      bestDistance = distance;
    }
  }
  return best;
}

/** Edit distance with adjacent transpositions (optimal string alignment): "replcias" is one edit from "replicas". */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The CPU architecture of an EC2 instance type: Graviton families carry a "g" after the generation (m7g, c7gn, t4g). */
export function instanceArchitecture(instanceType: string): 'x86_64' | 'arm64' | undefined {
  const match = INSTANCE_TYPE.exec(instanceType);
  if (!match) return undefined;
  return match[3].startsWith('g') ? 'arm64' : 'x86_64';
}

/** Reports a string that is not an IPv4 CIDR; returns whether it is one. */
function checkCidr(checker: Checker, field: string, cidr: string): boolean {
  const match = CIDR.exec(cidr);
  if (!match || match.slice(1, 5).some((octet) => Number(octet) > 255) || Number(match[5]) > 32) {
    checker.fail(field, `must be an IPv4 CIDR such as "203.0.113.0/24", got "${cidr}"`);
    return false;
  }
  return true;
}

/** The network address of a valid IPv4 CIDR ("10.1.2.3/16" -> "10.1.0.0/16"). */
export function cidrNetwork(cidr: string): string {
  const [address, bits] = cidr.split('/');
  const prefix = Number(bits);
  const value = address.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const network = (value & mask) >>> 0;
  return `${[24, 16, 8, 0].map((shift) => (network >>> shift) & 255).join('.')}/${prefix}`;
}

/** The domains API's peers at `path` ("environments[0].domainsApi"); an unknown key is refused. */
function resolveDomainsApi(raw: unknown, path: string): { config: ResolvedDomainsApiConfig; problems: string[] } {
  const none: ResolvedDomainsApiConfig = { allowedNamespaces: [], allowedCidrs: [] };
  if (raw === undefined) return { config: none, problems: [] };
  if (!isObject(raw)) return { config: none, problems: [`${path}: must be an object with allowedNamespaces and/or allowedCidrs, got ${describe(raw)}`] };
  const c = new Checker(raw, path);

  const allowedNamespaces = c.strings('allowedNamespaces', []);
  for (const namespace of allowedNamespaces) {
    if (!DNS_LABEL.test(namespace)) {
      c.fail('allowedNamespaces', `"${namespace}" is not a namespace name: a lower-case DNS label of at most 63 characters (a-z, 0-9, "-")`);
    }
  }
  for (const repeated of repeats(allowedNamespaces)) c.fail('allowedNamespaces', `"${repeated}" appears twice`);

  const allowedCidrs = c.strings('allowedCidrs', []);
  for (const cidr of allowedCidrs) {
    if (!checkCidr(c, 'allowedCidrs', cidr)) continue;
    if (cidr.endsWith('/0')) {
      c.fail('allowedCidrs', `"${cidr}" admits every address to the domains API; list the product's ranges, or use allowedNamespaces`);
    } else if (cidrNetwork(cidr) !== cidr) {
      c.fail('allowedCidrs', `"${cidr}" has host bits set; its network is "${cidrNetwork(cidr)}"`);
    }
  }
  for (const repeated of repeats(allowedCidrs)) c.fail('allowedCidrs', `"${repeated}" appears twice`);
  c.rejectUnknown();
  return { config: { allowedNamespaces, allowedCidrs }, problems: c.problems };
}

/** The items of a list that appear more than once, each once. */
function repeats(items: string[]): string[] {
  return [...new Set(items.filter((item, i) => items.indexOf(item) !== i))];
}

function resolvePlatform(raw: unknown): { config: ResolvedPlatformConfig; problems: string[] } {
  const c = new Checker(isObject(raw) ? raw : {}, 'platform');
  if (!isObject(raw)) c.problems.push('platform: must be an object with account, region and availabilityZones');

  const account = c.string('account');
  if (account && !/^\d{12}$/.test(account)) c.fail('account', `must be a 12-digit AWS account ID, got "${account}"`);
  const region = c.string('region');
  if (region && !/^[a-z]{2}(-gov)?-[a-z]+-\d$/.test(region)) c.fail('region', `must be an AWS region such as "eu-west-1", got "${region}"`);
  const availabilityZones = c.strings('availabilityZones');
  if (availabilityZones.length !== 3) {
    c.fail('availabilityZones', `must list exactly 3 zones of the region, got ${availabilityZones.length}`);
  }
  for (const az of availabilityZones) {
    if (!az.startsWith(region) || !/^[a-z]$/.test(az.slice(region.length))) {
      c.fail('availabilityZones', `"${az}" is not a zone of region "${region}" (expected e.g. "${region}a")`);
    }
  }
  if (new Set(availabilityZones).size !== availabilityZones.length) c.fail('availabilityZones', 'must not repeat a zone');

  const clusterName = c.string('clusterName', 'edge');
  if (!/^[a-zA-Z][a-zA-Z0-9-]{0,99}$/.test(clusterName)) c.fail('clusterName', `must start with a letter and hold only letters, digits and "-", got "${clusterName}"`);
  const vpcCidr = c.string('vpcCidr', '10.40.0.0/16');
  checkCidr(c, 'vpcCidr', vpcCidr);

  const kubernetesVersion = c.string('kubernetesVersion', '1.35');
  if (!(SUPPORTED_KUBERNETES_VERSIONS as readonly string[]).includes(kubernetesVersion)) {
    const why = /^1\.(2\d|3[0-4])$/.test(kubernetesVersion)
      ? ' (EKS no longer creates it in standard support; 1.29 cannot be created at all since 2026-03-23)'
      : '';
    c.fail('kubernetesVersion', `must be one of ${SUPPORTED_KUBERNETES_VERSIONS.map((v) => `"${v}"`).join(', ')} (the versions with a matching kubectl layer), got "${kubernetesVersion}"${why}`);
  }

  const nodeInstanceTypes = c.strings('nodeInstanceTypes', ['m6i.large']);
  if (nodeInstanceTypes.length === 0) c.fail('nodeInstanceTypes', 'must list at least one instance type');
  const architectures = new Set<string>();
  for (const type of nodeInstanceTypes) {
    const arch = instanceArchitecture(type);
    if (!arch) c.fail('nodeInstanceTypes', `"${type}" is not an EC2 instance type such as "m6i.large"`);
    else architectures.add(arch);
  }
  if (architectures.size > 1) c.fail('nodeInstanceTypes', 'must all be of one CPU architecture (x86_64 or arm64/Graviton), the edge image is built for one');

  const nodeMinSize = c.integer('nodeMinSize', 3, 1, 100);
  const nodeDesiredSize = c.integer('nodeDesiredSize', Math.max(3, nodeMinSize), 1, 100);
  const nodeMaxSize = c.integer('nodeMaxSize', Math.max(6, nodeDesiredSize), 1, 100);
  if (!(nodeMinSize <= nodeDesiredSize && nodeDesiredSize <= nodeMaxSize)) {
    c.fail('nodeDesiredSize', `must satisfy nodeMinSize <= nodeDesiredSize <= nodeMaxSize, got ${nodeMinSize} <= ${nodeDesiredSize} <= ${nodeMaxSize}`);
  }

  const apiAllowedCidrs = c.strings('apiAllowedCidrs', []);
  for (const cidr of apiAllowedCidrs) {
    checkCidr(c, 'apiAllowedCidrs', cidr);
    if (cidr.endsWith('/0')) c.fail('apiAllowedCidrs', `"${cidr}" opens the Kubernetes API to the whole internet; list your CI and office ranges, or [] for a private endpoint`);
  }

  const alarmEmail = c.string('alarmEmail', '') || undefined;
  if (alarmEmail && !EMAIL.test(alarmEmail)) c.fail('alarmEmail', `must be an email address, got "${alarmEmail}"`);
  c.rejectUnknown();

  return {
    problems: c.problems,
    config: {
      account, region, availabilityZones, clusterName, vpcCidr, alarmEmail,
      kubernetesVersion: kubernetesVersion as KubernetesVersion,
      nodeInstanceTypes, nodeMinSize, nodeDesiredSize, nodeMaxSize, apiAllowedCidrs,
      nodeArchitecture: architectures.has('arm64') ? 'arm64' : 'x86_64',
    },
  };
}

/**
 * Adds on-demand dev environments ("dev-<label>" for each label) to a raw config, configured
 * with its devDefaults. Labels already configured are left as they are.
 * @throws ConfigError when a label is not allowed or there are no devDefaults
 */
export function withDevEnvironments(raw: unknown, labels: string[]): unknown {
  if (labels.length === 0) return raw;
  const problems: string[] = [];
  for (const label of labels) {
    if (environmentKind(`dev-${label}`) !== 'dev') {
      problems.push(`dev: "${label}" is not a dev environment name: a lower-case DNS label of at most 20 characters (a-z, 0-9, "-")`);
    }
  }
  const config = isObject(raw) ? raw : {};
  if (!isObject(config.devDefaults)) problems.push('devDefaults: missing; cdk.json "edge" needs devDefaults for dev environments made on demand');
  if (problems.length > 0) throw new ConfigError(problems);
  const environments = Array.isArray(config.environments) ? [...config.environments] : [];
  for (const label of labels) {
    const name = `dev-${label}`;
    if (!environments.some((e) => isObject(e) && e.name === name)) environments.push({ ...(config.devDefaults as object), name });
  }
  return { ...config, environments };
}

/** The kind of environment a name denotes, or undefined when the name is not allowed. */
export function environmentKind(name: string): EnvironmentKind | undefined {
  if (name === 'prod' || name === 'staging') return name;
  if (DEV_NAME.test(name)) return 'dev';
  return undefined;
}

/**
 * Validates one environment at `path` ("environments[0]", "devDefaults"). With `fixedName` the
 * name is not read from the object (devDefaults: dev:up names the environment), so a "name" key
 * there is an unknown field.
 */
function resolveEnvironment(raw: unknown, path: string, fixedName?: string): { config: ResolvedEnvironmentConfig; problems: string[] } {
  const c = new Checker(isObject(raw) ? raw : {}, path);
  if (!isObject(raw)) c.problems.push(`${path}: must be an object`);

  const name = fixedName ?? c.string('name', '');
  const kind = environmentKind(name);
  if (!kind) {
    c.fail('name', `must be "prod", "staging" or "dev-<label>" where <label> is a lower-case DNS label of at most 20 characters (a-z, 0-9, "-"), got "${name}"`);
  }
  const defaults = KIND_DEFAULTS[kind ?? 'dev'];

  const domainCheckUrl = c.httpsUrl('domainCheckUrl');
  const originUrl = c.httpsUrl('originUrl');
  const contactEmail = c.string('contactEmail');
  if (contactEmail && !EMAIL.test(contactEmail)) c.fail('contactEmail', `must be an email address, got "${contactEmail}"`);
  const edgeHostnames = c.strings('edgeHostnames', []).map((h) => h.toLowerCase());
  for (const host of edgeHostnames) {
    if (!isHostname(host)) c.fail('edgeHostnames', `"${host}" is not a hostname`);
  }
  const acmeDirectory = c.httpsUrl('acmeDirectory', defaults.acmeDirectory);
  const keyAlgorithm = c.oneOf('keyAlgorithm', KEY_ALGORITHMS, 'prime256v1');
  const certificateProfile = c.oneOf('certificateProfile', CERTIFICATE_PROFILES, 'classic');
  const renewalsPerHour = c.integer('renewalsPerHour', 60, 1, 10_000);

  const replicas = c.integer('replicas', defaults.replicas, 1, 100);
  if (kind === 'prod' && replicas < 2) {
    c.fail('replicas', `prod needs at least 2 (so losing a node or a zone does not take the edge down), got ${replicas}`);
  }
  const maxReplicas = c.integer('maxReplicas', replicas * 3, replicas, 300);
  const expectedDomains = c.integer('expectedDomains', defaults.expectedDomains, 1, 10_000_000);
  // Checked only on values as given: a rejected one falls back to its default.
  if (!c.failed('renewalsPerHour', 'expectedDomains', 'certificateProfile')) {
    const budgetProblem = renewalBudgetProblem(renewalsPerHour, expectedDomains, certificateProfile);
    if (budgetProblem) c.fail('renewalsPerHour', budgetProblem);
  }

  const redisMode = c.oneOf('redisMode', REDIS_MODES, defaults.redisMode);
  if (kind === 'prod' && redisMode !== 'elasticache') {
    c.fail('redisMode', 'prod must use "elasticache" (Multi-AZ, encrypted, snapshotted); "in-cluster" is for dev');
  }
  const redisNodeType = c.string('redisNodeType', 'cache.m7g.large');
  if (!/^cache\.[a-z0-9]+\.[a-z0-9]+$/.test(redisNodeType)) c.fail('redisNodeType', `must be an ElastiCache node type such as "cache.m7g.large", got "${redisNodeType}"`);
  const redisNodes = c.integer('redisNodes', 2, 2, 6);
  const staticIps = c.boolean('staticIps', defaults.staticIps);
  const domainsApi = resolveDomainsApi(c.field('domainsApi'), `${path}.domainsApi`);
  const dnsPrecheck = c.boolean('dnsPrecheck', true);
  c.rejectUnknown();

  return {
    problems: [...c.problems, ...domainsApi.problems],
    config: {
      name, kind: kind ?? 'dev', domainCheckUrl, originUrl, contactEmail, edgeHostnames, acmeDirectory,
      keyAlgorithm, certificateProfile, renewalsPerHour, replicas, maxReplicas, expectedDomains, redisMode, redisNodeType, redisNodes, staticIps,
      domainsApi: domainsApi.config, dnsPrecheck,
    },
  };
}

function resolveDelivery(raw: unknown): { config?: ResolvedDeliveryConfig; problems: string[] } {
  if (raw === undefined) return { problems: [] };
  const c = new Checker(isObject(raw) ? raw : {}, 'delivery');
  if (!isObject(raw)) return { problems: ['delivery: must be an object with githubRepository'] };
  const githubRepository = c.string('githubRepository');
  if (githubRepository && !/^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+$/.test(githubRepository)) {
    c.fail('githubRepository', `must be "owner/name", got "${githubRepository}"`);
  }
  const deployEnvironment = c.string('deployEnvironment', 'production');
  const deployBranch = c.string('deployBranch', 'main');
  const bootstrapQualifier = c.string('bootstrapQualifier', 'hnb659fds');
  if (!/^[a-z0-9]{1,10}$/.test(bootstrapQualifier)) c.fail('bootstrapQualifier', `must be 1-10 lower-case letters or digits, got "${bootstrapQualifier}"`);
  const githubOidcProviderExists = c.boolean('githubOidcProviderExists', false);
  c.rejectUnknown();
  return {
    problems: c.problems,
    config: { githubRepository, deployEnvironment, deployBranch, bootstrapQualifier, githubOidcProviderExists },
  };
}

/**
 * Validates the raw config and applies every default.
 * @throws ConfigError listing every problem found, each naming its field
 */
export function resolveConfig(raw: unknown): ResolvedAppConfig {
  if (!isObject(raw)) {
    throw new ConfigError(['edge: missing; cdk.json must have a context key "edge" with "platform" and "environments"']);
  }
  const top = new Checker(raw, '');
  const platform = resolvePlatform(top.field('platform'));
  const problems = [...platform.problems];

  const environmentsValue = top.field('environments');
  const rawEnvironments = Array.isArray(environmentsValue) ? environmentsValue : [];
  if (rawEnvironments.length === 0) {
    problems.push('environments: must be a non-empty list of environments');
  }
  const environments = rawEnvironments.map((env, i) => {
    const resolved = resolveEnvironment(env, `environments[${i}]`);
    problems.push(...resolved.problems);
    return resolved.config;
  });

  // Checked like an environment now, rather than first when `dev:up` uses them.
  const devDefaults = top.field('devDefaults');
  if (devDefaults !== undefined) problems.push(...resolveEnvironment(devDefaults, 'devDefaults', DEV_DEFAULTS_NAME).problems);

  const seen = new Set<string>();
  environments.forEach((env, i) => {
    if (seen.has(env.name)) problems.push(`environments[${i}].name: "${env.name}" appears twice; names must be unique`);
    seen.add(env.name);
  });

  const delivery = resolveDelivery(top.field('delivery'));
  problems.push(...delivery.problems);

  top.rejectUnknown();
  problems.push(...top.problems);

  if (problems.length > 0) throw new ConfigError(problems);
  return { platform: platform.config, environments, delivery: delivery.config };
}

import * as cdk8s from 'cdk8s';
import { EdgeChart } from '../charts/edge-chart';
import { EdgeSettings } from '../charts/edge-settings';
import { RedisChart, REDIS_SERVICE_NAME } from '../charts/redis-chart';
import { ENCRYPTED_STORAGE_CLASS } from './cluster-addons';
import { REDIS_PORT } from './cert-store';
import { ResolvedEnvironmentConfig, ResolvedPlatformConfig } from './config';

/** Name of the Secret (key "token") with the Redis AUTH token/password, synced from Secrets Manager. */
export const REDIS_AUTH_SECRET_NAME = 'edge-redis-auth';
/** Name of the Secret (key "token") with the domains API's bearer token, synced from Secrets Manager. */
export const DOMAINS_API_SECRET_NAME = 'edge-domains-api';

/** The Kubernetes service CIDR of the cluster, fixed so the DNS service IP is known at synth. */
export const SERVICE_CIDR = '172.20.0.0/16';
/** EKS gives the cluster DNS service the .10 address of the service CIDR. */
export const CLUSTER_DNS_IP = '172.20.0.10';

/** Values known only at deploy time (tokens in a stack, placeholders in `npm run render`). */
export interface DeployTimeValues {
  /** URI of the edge image. */
  readonly image: string;
  /** Host name of the ElastiCache primary endpoint (ElastiCache mode only). */
  readonly elastiCacheHost?: string;
  /** The environment's NLB, what customers' DNS points at (the DNS pre-check's targets). */
  readonly loadBalancer: {
    /** Its DNS name (the CNAME target behind edgeHostnames). */
    readonly dnsName: string;
    /** Its Elastic IPs, one per AZ (staticIps only; ignored otherwise). */
    readonly staticIps: string[];
  };
}

/** The edge workload's settings for an environment, from its config and the deploy-time values. */
export function workloadSettings(
  platform: ResolvedPlatformConfig, env: ResolvedEnvironmentConfig, deploy: DeployTimeValues,
): EdgeSettings {
  const inCluster = env.redisMode === 'in-cluster';
  if (!inCluster && !deploy.elastiCacheHost) {
    throw new Error(`environment ${env.name} uses ElastiCache but no endpoint was given`);
  }
  if (env.dnsPrecheck && env.staticIps && deploy.loadBalancer.staticIps.length === 0) {
    throw new Error(`environment ${env.name} has static IPs but none was given for the DNS pre-check`);
  }
  return {
    environment: env.name,
    image: deploy.image,
    replicas: env.replicas,
    maxReplicas: env.maxReplicas,
    acmeDirectory: env.acmeDirectory,
    contactEmail: env.contactEmail,
    keyAlgorithm: env.keyAlgorithm,
    certificateProfile: env.certificateProfile,
    renewalsPerHour: env.renewalsPerHour,
    expectedDomains: env.expectedDomains,
    domainCheckUrl: env.domainCheckUrl,
    originUrl: env.originUrl,
    edgeHostnames: env.edgeHostnames,
    redis: inCluster
      ? { host: `${REDIS_SERVICE_NAME}.${env.name}.svc.cluster.local`, port: REDIS_PORT, tls: false, inCluster: true }
      : { host: deploy.elastiCacheHost!, port: REDIS_PORT, tls: true, inCluster: false },
    redisAuthSecretName: REDIS_AUTH_SECRET_NAME,
    vpcCidr: platform.vpcCidr,
    domainsApi: {
      tokenSecretName: DOMAINS_API_SECRET_NAME,
      allowedNamespaces: env.domainsApi.allowedNamespaces,
      allowedCidrs: env.domainsApi.allowedCidrs,
    },
    // Customers CNAME to one of our names (which CNAMEs to the NLB) or to the NLB's own name;
    // apex names hold A records to the Elastic IPs.
    dnsPrecheck: env.dnsPrecheck
      ? {
        names: [...env.edgeHostnames, deploy.loadBalancer.dnsName],
        addresses: env.staticIps ? [...deploy.loadBalancer.staticIps] : [],
      }
      : undefined,
    clusterDnsIp: CLUSTER_DNS_IP,
  };
}

/** An environment's workload: the edge chart, and the Redis chart when Redis runs in its namespace. */
export interface WorkloadCharts {
  readonly app: cdk8s.App;
  readonly edge: EdgeChart;
  readonly redis?: RedisChart;
}

/** Builds an environment's workload charts, as the Edge stack applies them and `npm run render` writes them. */
export function workloadCharts(settings: EdgeSettings): WorkloadCharts {
  const app = new cdk8s.App();
  const edge = new EdgeChart(app, 'edge', { settings });
  const redis = settings.redis.inCluster
    ? new RedisChart(app, 'redis', {
      environment: settings.environment, passwordSecretName: settings.redisAuthSecretName, storageClassName: ENCRYPTED_STORAGE_CLASS,
    })
    : undefined;
  return { app, edge, redis };
}

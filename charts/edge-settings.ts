import { CertificateKeyAlgorithm, CertificateProfile } from './nginx-conf';

/**
 * Everything an environment's edge workload needs, as plain values: the stack fills it from the
 * config and from deploy-time values (image URI, Redis endpoint); `npm run render` fills the
 * deploy-time ones with placeholders. Charts know nothing of AWS beyond this.
 */
export interface EdgeSettings {
  /** Environment name; also the namespace and the Redis key prefix. */
  readonly environment: string;
  /** Container image of the edge (OpenResty + lua-resty-auto-ssl + our Lua). */
  readonly image: string;
  /** Minimum and maximum number of edge pods. */
  readonly replicas: number;
  readonly maxReplicas: number;
  readonly acmeDirectory: string;
  readonly contactEmail: string;
  readonly keyAlgorithm: CertificateKeyAlgorithm;
  /** ACME profile asked for in each order (where the CA advertises profiles). */
  readonly certificateProfile: CertificateProfile;
  /** Renewal orders per hour for the environment. */
  readonly renewalsPerHour: number;
  /** Customer domains expected: sizes the caches (and so the pods' memory). */
  readonly expectedDomains: number;
  readonly domainCheckUrl: string;
  readonly originUrl: string;
  /** Our own host names: never issued for. */
  readonly edgeHostnames: string[];
  readonly redis: {
    /** Host name of the Redis primary. */
    readonly host: string;
    readonly port: number;
    /** TLS (ElastiCache); plain inside the namespace for the in-cluster StatefulSet. */
    readonly tls: boolean;
    /** true: the in-cluster StatefulSet (NetworkPolicy egress to its pods); false: a VPC endpoint. */
    readonly inCluster: boolean;
  };
  /** Name of the Secret (key "token") holding the Redis AUTH token or password. Synced from Secrets Manager. */
  readonly redisAuthSecretName: string;
  /** The VPC CIDR: the NLB (with client addresses in PROXY protocol) and the store live there. */
  readonly vpcCidr: string;
  /** The domains API on the pods' API port: its bearer token, and who may reach the port. */
  readonly domainsApi: {
    /** Name of the Secret (key "token") holding the bearer token. Synced from Secrets Manager. */
    readonly tokenSecretName: string;
    /** Namespaces whose pods the NetworkPolicy admits to the API port. */
    readonly allowedNamespaces: string[];
    /** Address ranges the NetworkPolicy admits to the API port. */
    readonly allowedCidrs: string[];
  };
  /**
   * What customers' DNS must point at before an order (the DNS pre-check): our published names
   * (a CNAME target) and static addresses (A records). Undefined: no pre-check. Some are known
   * only at deploy time (the NLB's name and Elastic IPs): the chart rolls the pods when they change.
   */
  readonly dnsPrecheck?: { readonly names: string[]; readonly addresses: string[] };
  /** IP of the cluster DNS service, for nginx's resolver. */
  readonly clusterDnsIp: string;
}

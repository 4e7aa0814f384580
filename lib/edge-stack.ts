import * as path from 'node:path';
import {
  aws_ec2 as ec2, aws_ecr_assets as ecrAssets, aws_eks_v2 as eks, aws_logs as logs, aws_secretsmanager as secretsmanager,
  CfnOutput, RemovalPolicy, Stack, StackProps,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { EDGE_API_SERVICE_NAME } from '../charts/edge-chart';
import { EDGE_SERVICE_NAME } from '../charts/edge-ports';
import { POD } from '../charts/pod-layout';
import { REDIS_PORT } from './cert-store';
import { ClusterAddons } from './cluster-addons';
import { ResolvedEnvironmentConfig, ResolvedPlatformConfig } from './config';
import { AlarmTopic } from './alarm-topic';
import { CertStoreStack } from './cert-store-stack';
import { EdgeLoadBalancer } from './edge-load-balancer';
import { EdgeMonitoring } from './edge-monitoring';
import { acknowledgeNag } from './nag';
import { SecretSync } from './secret-sync';
import { TargetGroupBinding } from './target-group-binding';
import { DOMAINS_API_SECRET_NAME, REDIS_AUTH_SECRET_NAME, workloadCharts, workloadSettings } from './workload-settings';

/** The repository root: the edge image is built from image/Dockerfile with lua/ in its context. */
const REPO_ROOT = path.join(__dirname, '..');

export interface EdgeStackProps extends StackProps {
  readonly environment: ResolvedEnvironmentConfig;
  readonly platform: ResolvedPlatformConfig;
  readonly vpc: ec2.IVpc;
  readonly cluster: eks.Cluster;
  /** What the platform installs for the environments (External Secrets, storage class). */
  readonly addons: ClusterAddons;
  /** The environment's ElastiCache store (its alarms' widgets join the dashboard); absent for in-cluster Redis. */
  readonly certStore?: CertStoreStack;
  readonly alarmTopic: AlarmTopic;
  /** The cluster's container logs (Container Insights): the renewer's expiry warnings are counted there. */
  readonly applicationLogs: logs.ILogGroup;
}

/**
 * One environment on the shared cluster: its namespace; its workload (the edge chart, and for
 * in-cluster mode the Redis chart); the Redis AUTH secret and the domains API's bearer token,
 * synced from Secrets Manager; its own internet-facing NLB with TargetGroupBindings onto the edge
 * Service (the domains API has a Service of its own, never bound); and the outputs customers
 * and operators need. Deleting the stack deletes the namespace (and all in it) and the NLB; the
 * platform and any ElastiCache store are untouched.
 */
export class EdgeStack extends Stack {
  readonly namespace: eks.KubernetesManifest;
  readonly edgeLoadBalancer: EdgeLoadBalancer;
  readonly image: ecrAssets.DockerImageAsset;
  /** The domains API's bearer token (generated; the product reads it from here). */
  readonly domainsApiToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: EdgeStackProps) {
    super(scope, id, props);
    const env = props.environment;
    const { cluster, vpc } = props;

    this.namespace = new eks.KubernetesManifest(this, 'Namespace', {
      cluster,
      overwrite: true,
      manifest: [{
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: env.name,
          labels: {
            'app.kubernetes.io/part-of': 'custom-domain-edge',
            'edge.environment/kind': env.kind,
            // The restricted Pod Security Standard: non-root, no privilege escalation, seccomp.
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/audit': 'restricted',
          },
        },
      }],
    });

    // Built and pushed at deploy time (synth only stages the build context: no Docker needed).
    this.image = new ecrAssets.DockerImageAsset(this, 'EdgeImage', {
      directory: REPO_ROOT,
      file: 'image/Dockerfile',
      exclude: ['*', '!image', '!lua'],
      platform: props.platform.nodeArchitecture === 'arm64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
    });

    const store = props.certStore?.certStore;
    const redisSecret = store?.authToken ?? this.inClusterRedisPassword(env.name);
    this.domainsApiToken = new secretsmanager.Secret(this, 'DomainsApiToken', {
      description: `Bearer token of the ${env.name} edge's domains API: the product sends it on every call`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledgeNag(this.domainsApiToken, 'The product holds a copy of the token and the pods read it at start: a rotation is a coordinated change (new value, the product takes it, the pods roll), not a blind rotation Lambda that would lock the product out', 'SMG4');
    // The construct ID predates the API token: kept, so the deployed service account, its role and
    // the manifest keep their logical IDs (new IDs would apply the same-named objects anew, then
    // delete the old resources, and with them the SecretStore, the service account and the Secrets).
    const secretSync = new SecretSync(this, 'RedisAuth', {
      cluster,
      namespace: env.name,
      secrets: [
        { targetSecretName: REDIS_AUTH_SECRET_NAME, secret: redisSecret, encryptionKey: store?.encryptionKey },
        { targetSecretName: DOMAINS_API_SECRET_NAME, secret: this.domainsApiToken },
      ],
    });
    secretSync.node.addDependency(this.namespace);
    secretSync.manifest.node.addDependency(props.addons.externalSecrets);

    // The domains API from CIDRs outside the cluster (a VPC the product runs in): the nodes'
    // security group, the cluster's, admits them on the API port too; the NetworkPolicy admits
    // them to the edge pods only. A rule of this stack, so the platform's template is unchanged.
    env.domainsApi.allowedCidrs.forEach((cidr, i) => new ec2.CfnSecurityGroupIngress(this, `DomainsApiFrom${i}`, {
      groupId: cluster.clusterSecurityGroupId,
      ipProtocol: 'tcp', fromPort: POD.apiPort, toPort: POD.apiPort, cidrIp: cidr,
      description: `The ${env.name} edge's domains API from ${cidr} (config domainsApi.allowedCidrs)`,
    }));

    // Before the workload: the DNS pre-check's targets are its name and Elastic IPs.
    this.edgeLoadBalancer = new EdgeLoadBalancer(this, 'LoadBalancer', { vpc, staticIps: env.staticIps });

    const settings = workloadSettings(props.platform, env, {
      image: this.image.imageUri,
      elastiCacheHost: store?.primaryEndpoint,
      loadBalancer: {
        dnsName: this.edgeLoadBalancer.loadBalancer.loadBalancerDnsName,
        staticIps: this.edgeLoadBalancer.staticIpAddresses,
      },
    });
    const charts = workloadCharts(settings);
    const workload = new eks.KubernetesManifest(this, 'Workload', { cluster, overwrite: true, manifest: charts.edge.toJson() });
    workload.node.addDependency(secretSync);
    if (charts.redis) {
      const redis = new eks.KubernetesManifest(this, 'Redis', { cluster, overwrite: true, manifest: charts.redis.toJson() });
      redis.node.addDependency(secretSync, props.addons.storageClass);
    }

    for (const [name, target] of [['http', this.edgeLoadBalancer.http], ['https', this.edgeLoadBalancer.https]] as const) {
      const binding = new TargetGroupBinding(this, `${name === 'http' ? 'Http' : 'Https'}Binding`, {
        cluster,
        namespace: env.name,
        name: `${EDGE_SERVICE_NAME}-${name}`,
        serviceName: EDGE_SERVICE_NAME,
        target,
        loadBalancerSecurityGroup: this.edgeLoadBalancer.securityGroup,
      });
      binding.node.addDependency(this.namespace);
      // The TargetGroupBinding CRD and its webhook come with the controller.
      if (cluster.albController) binding.node.addDependency(cluster.albController);
    }

    new EdgeMonitoring(this, 'Monitoring', {
      environmentName: env.name,
      loadBalancer: this.edgeLoadBalancer,
      alarmTopic: props.alarmTopic,
      applicationLogs: props.applicationLogs,
      storeWidgets: props.certStore?.alarms.widgets,
    });

    new CfnOutput(this, 'LoadBalancerDnsName', {
      value: this.edgeLoadBalancer.loadBalancer.loadBalancerDnsName,
      description: 'Customers CNAME their domains to this name (or to your own name that CNAMEs to it)',
    });
    new CfnOutput(this, 'StaticIps', {
      value: this.edgeLoadBalancer.staticIpList,
      description: 'Apex domains: A records to these addresses',
    });
    new CfnOutput(this, 'ClusterName', { value: cluster.clusterName, description: 'EKS cluster this environment runs on' });
    new CfnOutput(this, 'NamespaceName', { value: env.name, description: 'Kubernetes namespace of this environment' });
    new CfnOutput(this, 'RedisEndpoint', {
      value: `${settings.redis.host}:${REDIS_PORT}`,
      description: props.certStore ? 'ElastiCache certificate store (TLS + AUTH)' : 'In-cluster Redis StatefulSet',
    });
    new CfnOutput(this, 'DomainsApiTokenSecretArn', {
      value: this.domainsApiToken.secretArn,
      description: 'The domains API bearer token: aws secretsmanager get-secret-value --secret-id <this> --query SecretString --output text',
    });
    new CfnOutput(this, 'DomainsApiUrl', {
      value: `http://${EDGE_API_SERVICE_NAME}.${env.name}.svc.cluster.local:${POD.apiPort}/v1/domains`,
      description: `The domains API in the cluster (from the namespaces and CIDRs of domainsApi; else kubectl -n ${env.name} port-forward svc/${EDGE_API_SERVICE_NAME} ${POD.apiPort})`,
    });
  }

  /** The password of an in-cluster Redis: generated by Secrets Manager, gone with the environment. */
  private inClusterRedisPassword(environment: string): secretsmanager.Secret {
    const secret = new secretsmanager.Secret(this, 'RedisPassword', {
      description: `Password of the ${environment} in-cluster Redis`,
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledgeNag(secret, 'The in-cluster Redis reads its password at start; a rotation would lock the edge out until both restart. Dev environments are short-lived and recreated instead', 'SMG4');
    return secret;
  }
}

import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { CertStoreStack } from './cert-store-stack';
import { ResolvedAppConfig } from './config';
import { DeliveryStack } from './delivery-stack';
import { EdgeStack } from './edge-stack';
import { PlatformStack } from './platform-stack';

/** The stacks of one app, by role. */
export interface EdgeAppStacks {
  readonly platform: PlatformStack;
  readonly certStores: Record<string, CertStoreStack>;
  readonly edges: Record<string, EdgeStack>;
  readonly delivery?: DeliveryStack;
}

/**
 * Creates every stack of the config in the app: the shared platform, then per environment its
 * certificate store (ElastiCache mode) and its edge. Attaches the cdk-nag AwsSolutions checks,
 * which fail synth on any finding not acknowledged (with a reason) next to its resource.
 */
export function buildEdgeApp(app: App, config: ResolvedAppConfig): EdgeAppStacks {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));

  const env = { account: config.platform.account, region: config.platform.region };
  const platform = new PlatformStack(app, 'EdgePlatform', {
    platform: config.platform,
    description: `Custom-domain edge: VPC and EKS cluster ${config.platform.clusterName}`,
  });
  const cluster = platform.edgeCluster.cluster;

  const certStores: Record<string, CertStoreStack> = {};
  const edges: Record<string, EdgeStack> = {};
  for (const environment of config.environments) {
    let certStore: CertStoreStack | undefined;
    if (environment.redisMode === 'elasticache') {
      certStore = new CertStoreStack(app, `EdgeCertStore-${environment.name}`, {
        env,
        environment,
        vpc: platform.vpc,
        clientSecurityGroup: cluster.clusterSecurityGroup,
        alarmTopic: platform.alarmTopic,
        description: `Custom-domain edge: ${environment.name} certificate store (ElastiCache Valkey)`,
      });
      certStores[environment.name] = certStore;
    }
    edges[environment.name] = new EdgeStack(app, `Edge-${environment.name}`, {
      env,
      environment,
      platform: config.platform,
      vpc: platform.vpc,
      cluster,
      addons: platform.addons,
      certStore,
      alarmTopic: platform.alarmTopic,
      applicationLogs: platform.health.applicationLogs,
      description: `Custom-domain edge: ${environment.name} namespace, NLB and workload`,
    });
  }
  const delivery = config.delivery && new DeliveryStack(app, 'EdgeDelivery', {
    env,
    delivery: config.delivery,
    stackNamePattern: 'Edge*',
    description: 'Custom-domain edge: GitHub Actions roles (diff, deploy)',
  });
  return { platform, certStores, edges, delivery };
}

import { aws_ec2 as ec2, aws_eks_v2 as eks, CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { EDGE_SERVICE_NAME } from '../charts/edge-ports';
import { CertStore, REDIS_PORT } from './cert-store';
import { ResolvedEnvironmentConfig } from './config';
import { EdgeLoadBalancer } from './edge-load-balancer';
import { TargetGroupBinding } from './target-group-binding';

export interface EdgeStackProps extends StackProps {
  readonly environment: ResolvedEnvironmentConfig;
  readonly vpc: ec2.IVpc;
  readonly cluster: eks.Cluster;
  /** The environment's ElastiCache store; absent for in-cluster Redis. */
  readonly certStore?: CertStore;
}

/**
 * One environment on the shared cluster: its namespace, its own internet-facing NLB with
 * TargetGroupBindings onto the edge Service, and the outputs customers and operators need.
 * Deleting the stack deletes the namespace (and all in it) and the NLB; the platform and any
 * ElastiCache store are untouched.
 */
export class EdgeStack extends Stack {
  readonly namespace: eks.KubernetesManifest;
  readonly edgeLoadBalancer: EdgeLoadBalancer;

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

    this.edgeLoadBalancer = new EdgeLoadBalancer(this, 'LoadBalancer', { vpc, staticIps: env.staticIps });

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
      value: props.certStore
        ? `${props.certStore.primaryEndpoint}:${REDIS_PORT}`
        : `redis.${env.name}.svc.cluster.local:${REDIS_PORT}`,
      description: props.certStore ? 'ElastiCache certificate store (TLS + AUTH)' : 'In-cluster Redis StatefulSet',
    });
  }
}

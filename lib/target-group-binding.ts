import { aws_ec2 as ec2, aws_eks_v2 as eks } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { EdgeTarget } from './edge-load-balancer';

export interface TargetGroupBindingProps {
  readonly cluster: eks.ICluster;
  /** Namespace of the Service. */
  readonly namespace: string;
  /** Name of the TargetGroupBinding object. */
  readonly name: string;
  /** Name of the Service whose endpoints (pod IPs) become the targets. */
  readonly serviceName: string;
  /** The target group, and the Service and container ports it maps to. */
  readonly target: EdgeTarget;
  /** The load balancer's security group: the controller opens the pod port to it on the nodes. */
  readonly loadBalancerSecurityGroup: ec2.ISecurityGroup;
}

/**
 * Asks the AWS Load Balancer Controller to keep a CDK-owned target group filled with the pod IPs
 * behind a Service, and to admit the NLB's security group to the pod port. The controller owns
 * every target of the group, so each group has exactly one binding.
 */
export class TargetGroupBinding extends Construct {
  readonly manifest: eks.KubernetesManifest;

  constructor(scope: Construct, id: string, props: TargetGroupBindingProps) {
    super(scope, id);
    this.manifest = new eks.KubernetesManifest(this, 'Manifest', {
      cluster: props.cluster,
      overwrite: true,
      manifest: [{
        apiVersion: 'elbv2.k8s.aws/v1beta1',
        kind: 'TargetGroupBinding',
        metadata: { name: props.name, namespace: props.namespace },
        spec: {
          targetGroupARN: props.target.targetGroup.targetGroupArn,
          targetType: 'ip',
          serviceRef: { name: props.serviceName, port: props.target.servicePort },
          networking: {
            ingress: [{
              from: [{ securityGroup: { groupID: props.loadBalancerSecurityGroup.securityGroupId } }],
              ports: [{ protocol: 'TCP', port: props.target.containerPort }],
            }],
          },
        },
      }],
    });
  }
}

import { aws_ec2 as ec2, aws_elasticloadbalancingv2 as elbv2, Duration, Fn } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { HTTP_PORT, HTTPS_PORT } from '../charts/edge-ports';
import { acknowledgeNag } from './nag';

export interface EdgeLoadBalancerProps {
  /** The VPC; the NLB goes in its public subnets, targets are pod IPs in the private ones. */
  readonly vpc: ec2.IVpc;
  /** One Elastic IP per AZ, so customers with apex domains can point A records at fixed addresses. */
  readonly staticIps: boolean;
}

/** A TCP listener's target group and the pod port it reaches. */
export interface EdgeTarget {
  readonly targetGroup: elbv2.NetworkTargetGroup;
  /** The Service port the TargetGroupBinding refers to. */
  readonly servicePort: number;
  /** The container port the NLB sends to (pod IP targets). */
  readonly containerPort: number;
}

/**
 * The internet-facing entry of one environment: a Network Load Balancer with TCP :80 and :443
 * passed through to the edge pods (TLS ends in nginx, where the certificates are), IP targets,
 * proxy protocol v2 so nginx sees client addresses, and health checks on the traffic ports.
 * The target groups are filled by TargetGroupBindings (AWS Load Balancer Controller).
 */
export class EdgeLoadBalancer extends Construct {
  readonly loadBalancer: elbv2.NetworkLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;
  readonly http: EdgeTarget;
  readonly https: EdgeTarget;
  /** The Elastic IP addresses (one per AZ), when static IPs are on. */
  readonly staticIpAddresses: string[] = [];

  constructor(scope: Construct, id: string, props: EdgeLoadBalancerProps) {
    super(scope, id);
    const { vpc } = props;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc,
      description: 'Edge NLB: HTTP and HTTPS from anywhere, out to the edge pods only',
      allowAllOutbound: false,
    });
    for (const port of [HTTP_PORT, HTTPS_PORT]) {
      this.securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(port.service), `Customers' traffic on ${port.service}`);
      this.securityGroup.addEgressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(port.container), `To edge pods on ${port.container}`);
    }

    const publicSubnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PUBLIC }).subnets;
    let subnetMappings: elbv2.SubnetMapping[] | undefined;
    if (props.staticIps) {
      subnetMappings = publicSubnets.map((subnet, i) => {
        const eip = new ec2.CfnEIP(this, `StaticIp${i}`, { domain: 'vpc' });
        this.staticIpAddresses.push(eip.attrPublicIp);
        return { subnet, allocationId: eip.attrAllocationId };
      });
    }

    this.loadBalancer = new elbv2.NetworkLoadBalancer(this, 'Nlb', {
      vpc,
      internetFacing: true,
      securityGroups: [this.securityGroup],
      crossZoneEnabled: true,
      ...(subnetMappings ? { subnetMappings } : { vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC } }),
    });

    acknowledgeNag(this.securityGroup, 'The edge serves customers\' domains to the whole internet on 80 and 443; nothing else is open', 'EC23');
    acknowledgeNag(this.loadBalancer, 'NLB access logs exist only for TLS listeners; these are TCP pass-through (TLS ends in nginx, which logs every request)', 'ELB2');

    this.http = this.addTarget('Http', vpc, HTTP_PORT);
    this.https = this.addTarget('Https', vpc, HTTPS_PORT);
  }

  private addTarget(id: string, vpc: ec2.IVpc, port: { service: number; container: number }): EdgeTarget {
    const targetGroup = new elbv2.NetworkTargetGroup(this, `${id}Targets`, {
      vpc,
      port: port.container,
      protocol: elbv2.Protocol.TCP,
      targetType: elbv2.TargetType.IP,
      proxyProtocolV2: true,
      // Pods get a preStop grace period; connections drain within it.
      deregistrationDelay: Duration.seconds(30),
      healthCheck: {
        protocol: elbv2.Protocol.TCP,
        interval: Duration.seconds(10),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 2,
      },
    });
    this.loadBalancer.addListener(`${id}Listener`, {
      port: port.service,
      protocol: elbv2.Protocol.TCP,
      defaultTargetGroups: [targetGroup],
    });
    return { targetGroup, servicePort: port.service, containerPort: port.container };
  }

  /** The static IPs joined with ", " (for an output), or a note that there are none. */
  get staticIpList(): string {
    return this.staticIpAddresses.length > 0 ? Fn.join(', ', this.staticIpAddresses) : 'none (staticIps is off)';
  }
}

import { aws_ec2 as ec2, aws_logs as logs, CfnOutput, Stack, StackProps, Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ResolvedPlatformConfig } from './config';
import { AlarmTopic } from './alarm-topic';
import { ClusterAddons } from './cluster-addons';
import { ClusterHealth } from './cluster-health';
import { EdgeCluster } from './edge-cluster';

export interface PlatformStackProps extends StackProps {
  /** VPC and cluster settings. The stack's env is taken from its account and region. */
  readonly platform: ResolvedPlatformConfig;
}

/**
 * What every environment in one account/region shares: the VPC over 3 AZs (public subnets for
 * the NLBs and NAT gateways, private subnets for nodes and pods, isolated subnets for the
 * certificate stores) and the EKS cluster.
 */
export class PlatformStack extends Stack {
  readonly vpc: ec2.Vpc;
  readonly edgeCluster: EdgeCluster;
  readonly addons: ClusterAddons;
  readonly alarmTopic: AlarmTopic;
  readonly health: ClusterHealth;
  private readonly zones: string[];

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, { ...props, env: { account: props.platform.account, region: props.platform.region } });
    const { platform } = props;
    this.zones = platform.availabilityZones;

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(platform.vpcCidr),
      availabilityZones: platform.availabilityZones,
      natGateways: platform.availabilityZones.length, // one per AZ: losing a zone does not cut the others' egress
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        // Pods take VPC addresses (VPC CNI): give the private subnets room.
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 19 },
        { name: 'data', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      flowLogs: {
        all: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(new logs.LogGroup(this, 'FlowLogs', {
            retention: logs.RetentionDays.THREE_MONTHS,
          })),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason: 'Zones are explicit in the config so that synth needs no AWS lookup (and no credentials)',
    });

    this.edgeCluster = new EdgeCluster(this, 'Edge', { vpc: this.vpc, platform });
    this.addons = new ClusterAddons(this, 'Addons', { cluster: this.edgeCluster.cluster, nodegroup: this.edgeCluster.nodegroup });
    this.alarmTopic = new AlarmTopic(this, 'Alarms', { email: platform.alarmEmail });
    this.health = new ClusterHealth(this, 'Health', { cluster: this.edgeCluster.cluster, alarmTopic: this.alarmTopic });

    new CfnOutput(this, 'ClusterName', {
      value: this.edgeCluster.cluster.clusterName,
      description: 'EKS cluster name (aws eks update-kubeconfig --name <this>)',
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.alarmTopic.topic.topicArn, description: 'SNS topic of every alarm (subscribe your pager)' });
    new CfnOutput(this, 'AdminRoleArn', { value: this.edgeCluster.adminRole.roleArn, description: 'Role with cluster-admin access' });
    new CfnOutput(this, 'DeveloperRoleArn', { value: this.edgeCluster.developerRole.roleArn, description: 'Role with edit access to dev-* namespaces only' });
  }

  /** The configured zones, so synth makes no availability-zone lookup (and needs no credentials). */
  override get availabilityZones(): string[] {
    return this.zones;
  }
}

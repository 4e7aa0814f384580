import { aws_ec2 as ec2, aws_eks_v2 as eks, aws_iam as iam, aws_kms as kms, CfnElement, Duration, Stack, Validations } from 'aws-cdk-lib';
import { Construct, IConstruct } from 'constructs';
import { ResolvedPlatformConfig } from './config';
import { eksVersion, kubectlLayerFor } from './kubectl-layer';
import { acknowledgeNag } from './nag';
import { SERVICE_CIDR } from './workload-settings';

/** Prefix of every dev environment's namespace; the developer role is scoped to it. */
export const DEV_NAMESPACE_PATTERN = 'dev-*';

export interface EdgeClusterProps {
  /** The VPC; nodes and pods go in its private subnets. */
  readonly vpc: ec2.IVpc;
  /** Cluster settings (version, node group, API access) from the platform config. */
  readonly platform: ResolvedPlatformConfig;
}

/**
 * The EKS cluster the edge runs on: aws-eks-v2 (native AWS::EKS::Cluster, access entries only),
 * a managed AL2023 node group across the AZs, all control-plane logs, Kubernetes secrets
 * encrypted with a KMS key, a kubectl provider whose kubectl matches the cluster's minor, and
 * the AWS Load Balancer Controller (for the TargetGroupBindings of the CDK-owned NLBs).
 */
export class EdgeCluster extends Construct {
  readonly cluster: eks.Cluster;
  /** The managed node group (its role: worker node and ECR read policies; the CNI has its own role, see VpcCni). */
  readonly nodegroup: eks.Nodegroup;
  /** Full cluster admin (operators, break-glass, CI that runs kubectl against any namespace). */
  readonly adminRole: iam.Role;
  /** Developers: edit rights in the dev-* namespaces only, nothing cluster-wide. */
  readonly developerRole: iam.Role;

  constructor(scope: Construct, id: string, props: EdgeClusterProps) {
    super(scope, id);
    const { platform, vpc } = props;

    const secretsKey = new kms.Key(this, 'SecretsKey', {
      description: `Envelope encryption of Kubernetes secrets in EKS cluster ${platform.clusterName}`,
      enableKeyRotation: true,
    });

    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: platform.clusterName,
      version: eksVersion(platform.kubernetesVersion),
      vpc,
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      // Fixed, so the cluster DNS address nginx's resolver needs is known at synth.
      serviceIpv4Cidr: SERVICE_CIDR,
      endpointAccess: platform.apiAllowedCidrs.length > 0
        ? eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(...platform.apiAllowedCidrs)
        : eks.EndpointAccess.PRIVATE,
      clusterLogging: [
        eks.ClusterLoggingTypes.API,
        eks.ClusterLoggingTypes.AUDIT,
        eks.ClusterLoggingTypes.AUTHENTICATOR,
        eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
        eks.ClusterLoggingTypes.SCHEDULER,
      ],
      secretsEncryptionKey: secretsKey,
      // A managed node group (below) rather than Auto Mode: the Load Balancer Controller and
      // TargetGroupBinding with networking rules need self-managed load balancing.
      defaultCapacityType: eks.DefaultCapacityType.NODEGROUP,
      defaultCapacity: 0,
      kubectlProviderOptions: {
        kubectlLayer: kubectlLayerFor(this, 'KubectlLayer', platform.kubernetesVersion),
      },
      albController: { version: eks.AlbControllerVersion.V3_2_2 },
    });

    // Nodes: IMDSv2 only with one hop (pods cannot borrow the node's role), encrypted root volumes.
    const launchTemplate = new ec2.LaunchTemplate(this, 'NodeLaunchTemplate', {
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      blockDevices: [{
        deviceName: '/dev/xvda',
        volume: ec2.BlockDeviceVolume.ebs(40, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }),
      }],
    });
    this.nodegroup = this.cluster.addNodegroupCapacity('EdgeNodes', {
      amiType: platform.nodeArchitecture === 'arm64'
        ? eks.NodegroupAmiType.AL2023_ARM_64_STANDARD
        : eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
      instanceTypes: platform.nodeInstanceTypes.map((type) => new ec2.InstanceType(type)),
      minSize: platform.nodeMinSize,
      desiredSize: platform.nodeDesiredSize,
      maxSize: platform.nodeMaxSize,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      launchTemplateSpec: { id: launchTemplate.launchTemplateId!, version: launchTemplate.latestVersionNumber },
      enableNodeAutoRepair: true,
      maxUnavailable: 1,
    });

    const account = new iam.AccountRootPrincipal();
    this.adminRole = new iam.Role(this, 'AdminRole', {
      assumedBy: account,
      description: `Cluster admin of EKS cluster ${platform.clusterName}`,
      maxSessionDuration: Duration.hours(1),
    });
    this.cluster.grantAccess('AdminAccess', this.adminRole.roleArn, [
      eks.AccessPolicy.fromAccessPolicyName('AmazonEKSClusterAdminPolicy', { accessScopeType: eks.AccessScopeType.CLUSTER }),
    ]);

    this.developerRole = new iam.Role(this, 'DeveloperRole', {
      assumedBy: account,
      description: `Developers of EKS cluster ${platform.clusterName}: edit in ${DEV_NAMESPACE_PATTERN} namespaces only`,
      maxSessionDuration: Duration.hours(4),
    });
    this.cluster.grantAccess('DeveloperAccess', this.developerRole.roleArn, [
      eks.AccessPolicy.fromAccessPolicyName('AmazonEKSEditPolicy', {
        accessScopeType: eks.AccessScopeType.NAMESPACE,
        namespaces: [DEV_NAMESPACE_PATTERN],
      }),
    ]);
    // Both need to read the cluster's endpoint to build a kubeconfig; nothing more on the AWS side.
    const describeCluster = new iam.PolicyStatement({
      actions: ['eks:DescribeCluster'],
      resources: [this.cluster.clusterArn],
    });
    this.adminRole.addToPolicy(describeCluster);
    this.developerRole.addToPolicy(describeCluster);

    this.acknowledgeManagedParts();
  }

  /** Findings on parts that aws-eks-v2 builds and AWS maintains, each with why it stays. */
  private acknowledgeManagedParts(): void {
    const cluster = this.cluster;
    acknowledgeNag(cluster, 'EKS requires these AWS-managed policies on its cluster and node roles; AWS keeps them current with the service',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSClusterPolicy]',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEKSWorkerNodePolicy]',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]');

    const kubectlProvider = cluster.node.findChild('KubectlProvider');
    const handler = kubectlProvider.node.findChild('Handler');
    const logicalId = (element: IConstruct) => Stack.of(this).resolve((element as CfnElement).logicalId) as string;
    const handlerLogicalId = logicalId(handler.node.defaultChild!);
    const ecrPublicCondition = logicalId(handler.node.findChild('HasEcrPublic'));
    acknowledgeNag(kubectlProvider, 'The kubectl provider is built by aws-eks-v2: Lambda basic/VPC execution and ECR pull policies, and a provider framework allowed to invoke its own handler versions',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly]',
      'IAM4[Policy::{"Fn::If":["' + ecrPublicCondition + '",{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},{"Ref":"AWS::NoValue"}]}]',
      `IAM5[Resource::<${handlerLogicalId}.Arn>:*]`);
    acknowledgeNag(kubectlProvider, 'The kubectl handler runtime is chosen by aws-cdk-lib and moves with its upgrades', 'L1');

    if (cluster.albController) {
      acknowledgeNag(cluster.albController, 'The AWS Load Balancer Controller policy as published by the controller project: it creates and tags load balancers, target groups and security groups whose names it cannot know in advance',
        'IAM5[Resource::*]',
        'IAM5[Resource::arn:<AWS::Partition>:ec2:*:*:security-group/*]',
        ...['targetgroup/*/*', 'loadbalancer/net/*/*', 'loadbalancer/app/*/*', 'listener/net/*/*/*', 'listener/app/*/*/*',
          'listener-rule/net/*/*/*', 'listener-rule/app/*/*/*']
          .map((resource) => `IAM5[Resource::arn:<AWS::Partition>:elasticloadbalancing:*:*:${resource}]`));
    }

    // aws-eks-v2 still writes EncryptionConfig.Resources (["secrets"]); CloudFormation accepts it.
    Validations.of(cluster).acknowledge({
      id: 'CloudFormation-Validate::W9009',
      reason: 'aws-eks-v2 sets EncryptionConfig.Resources to ["secrets"], the only value EKS accepts; the property is deprecated, not ignored',
    });
  }
}

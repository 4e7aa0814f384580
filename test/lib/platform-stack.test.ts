import { Match, Template } from 'aws-cdk-lib/assertions';
import { appliedObjects, buildTestApp, defaultRawConfig } from '../helpers';

const { stacks } = buildTestApp();
const template = Template.fromStack(stacks.platform);

function clusterProps(t: Template = template): any {
  return Object.values(t.findResources('AWS::EKS::Cluster'))[0].Properties;
}

describe('VPC', () => {
  test('spans the 3 configured zones with public, private and isolated subnets', () => {
    const subnets = Object.values(template.findResources('AWS::EC2::Subnet')).map((s: any) => s.Properties);
    expect(subnets).toHaveLength(9);
    expect(new Set(subnets.map((s) => s.AvailabilityZone))).toEqual(new Set(['eu-west-1a', 'eu-west-1b', 'eu-west-1c']));
    expect(subnets.filter((s) => s.MapPublicIpOnLaunch === true)).toHaveLength(3);
  });

  test('one NAT gateway per zone', () => {
    template.resourceCountIs('AWS::EC2::NatGateway', 3);
  });

  test('flow logs are on', () => {
    template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', LogDestinationType: 'cloud-watch-logs' });
  });
});

describe('EKS cluster', () => {
  test('runs Kubernetes 1.35 natively (aws-eks-v2) with API authentication (access entries)', () => {
    expect(clusterProps()).toMatchObject({ Version: '1.35', AccessConfig: { AuthenticationMode: 'API' } });
    template.resourceCountIs('Custom::AWSCDK-EKS-Cluster', 0);
  });

  test('logs every control-plane log type', () => {
    const types = clusterProps().Logging.ClusterLogging.EnabledTypes.map((t: any) => t.Type);
    expect(types.sort()).toEqual(['api', 'audit', 'authenticator', 'controllerManager', 'scheduler']);
  });

  test('encrypts Kubernetes secrets with a rotating KMS key', () => {
    const encryption = clusterProps().EncryptionConfig;
    expect(encryption).toHaveLength(1);
    expect(encryption[0].Resources).toEqual(['secrets']);
    expect(encryption[0].Provider.KeyArn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/SecretsKey/), 'Arn'] });
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true, Description: Match.stringLikeRegexp('Kubernetes secrets') });
  });

  test('public endpoint only from the configured CIDRs, private endpoint on', () => {
    expect(clusterProps().ResourcesVpcConfig).toMatchObject({
      EndpointPublicAccess: true, EndpointPrivateAccess: true, PublicAccessCidrs: ['203.0.113.0/24'],
    });
  });

  test('no allowed CIDRs: the endpoint is private only', () => {
    const raw = defaultRawConfig();
    raw.platform.apiAllowedCidrs = [];
    const privateTemplate = Template.fromStack(buildTestApp(raw).stacks.platform);
    expect(clusterProps(privateTemplate).ResourcesVpcConfig).toMatchObject({ EndpointPublicAccess: false, EndpointPrivateAccess: true });
  });

  test('a managed AL2023 node group in the private subnets, IMDSv2 only, encrypted volumes', () => {
    template.hasResourceProperties('AWS::EKS::Nodegroup', {
      AmiType: 'AL2023_x86_64_STANDARD',
      InstanceTypes: ['m6i.large'],
      ScalingConfig: { MinSize: 3, DesiredSize: 3, MaxSize: 6 },
      NodeRepairConfig: { Enabled: true },
    });
    template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: Match.objectLike({
        MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeSize: 40, VolumeType: 'gp3' } }],
      }),
    });
  });

  test('Graviton instance types get the ARM AL2023 image', () => {
    const raw = defaultRawConfig();
    raw.platform.nodeInstanceTypes = ['m7g.large'];
    Template.fromStack(buildTestApp(raw).stacks.platform)
      .hasResourceProperties('AWS::EKS::Nodegroup', { AmiType: 'AL2023_ARM_64_STANDARD' });
  });
});

describe('kubectl provider', () => {
  /** The kubectl minor bundled in the layer the kubectl handler uses, read from the layer's description. */
  function handlerKubectlMinor(t: Template): string {
    const layers = t.findResources('AWS::Lambda::LayerVersion');
    const kubectlLayers = Object.entries(layers).filter(([, l]: any) => /kubectl/.test(l.Properties.Description));
    expect(kubectlLayers).toHaveLength(1);
    const [layerId, layer]: any = kubectlLayers[0];
    const handlers = Object.values(t.findResources('AWS::Lambda::Function')).filter((f: any) =>
      (f.Properties.Layers ?? []).some((ref: any) => ref.Ref === layerId));
    expect(handlers).toHaveLength(1);
    return /kubectl (\d+\.\d+)\.\d+/.exec(layer.Properties.Description)![1];
  }

  test('the kubectl handler uses kubectl of the cluster\'s minor (1.35)', () => {
    expect(handlerKubectlMinor(template)).toBe('1.35');
    expect(clusterProps().Version).toBe('1.35');
  });

  test('1.36 gets kubectl 1.36', () => {
    const raw = defaultRawConfig();
    raw.platform.kubernetesVersion = '1.36';
    const t = Template.fromStack(buildTestApp(raw).stacks.platform);
    expect(clusterProps(t).Version).toBe('1.36');
    expect(handlerKubectlMinor(t)).toBe('1.36');
  });
});

describe('access entries', () => {
  function entries(): any[] {
    return Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e: any) => e.Properties);
  }
  function entryFor(roleId: RegExp): any {
    return entries().find((e) => roleId.test(JSON.stringify(e.PrincipalArn)));
  }

  test('the admin role has cluster admin, cluster-wide', () => {
    expect(entryFor(/AdminRole/).AccessPolicies).toEqual([{
      AccessScope: { Type: 'cluster' },
      PolicyArn: expect.objectContaining({ 'Fn::Join': expect.arrayContaining([expect.arrayContaining([':eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy'])]) }),
    }]);
  });

  test('the developer role can edit only dev-* namespaces', () => {
    const policies = entryFor(/DeveloperRole/).AccessPolicies;
    expect(policies).toHaveLength(1);
    expect(policies[0].AccessScope).toEqual({ Type: 'namespace', Namespaces: ['dev-*'] });
    expect(JSON.stringify(policies[0].PolicyArn)).toContain('AmazonEKSEditPolicy');
    expect(JSON.stringify(policies[0].PolicyArn)).not.toContain('Admin');
  });

  test('the roles may only describe this cluster on the AWS side', () => {
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p: any) =>
      /AdminRole|DeveloperRole/.test(JSON.stringify(p.Properties.Roles)));
    expect(policies).toHaveLength(2);
    for (const policy of policies as any[]) {
      expect(policy.Properties.PolicyDocument.Statement).toEqual([{
        Action: 'eks:DescribeCluster', Effect: 'Allow', Resource: { 'Fn::GetAtt': [expect.stringMatching(/EdgeCluster/), 'Arn'] },
      }]);
    }
  });
});

test('the AWS Load Balancer Controller is installed by Helm', () => {
  template.hasResourceProperties('Custom::AWSCDK-EKS-HelmChart', { Chart: 'aws-load-balancer-controller' });
});

test('outputs the cluster name', () => {
  template.hasOutput('ClusterName', {});
});

describe('cluster add-ons', () => {
  test('the service CIDR is fixed (nginx\'s resolver uses the cluster DNS at 172.20.0.10)', () => {
    expect(clusterProps().KubernetesNetworkConfig).toMatchObject({ ServiceIpv4Cidr: '172.20.0.0/16' });
  });

  test('External Secrets Operator from its Helm chart, version pinned', () => {
    template.hasResourceProperties('Custom::AWSCDK-EKS-HelmChart', {
      Chart: 'external-secrets', Repository: 'https://charts.external-secrets.io', Version: '2.0.0', Namespace: 'external-secrets',
    });
  });

  test('EBS CSI driver with its own role through Pod Identity, and an encrypted gp3 StorageClass', () => {
    template.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'eks-pod-identity-agent' });
    const csi = Object.values(template.findResources('AWS::EKS::Addon')).find((a: any) => a.Properties.AddonName === 'aws-ebs-csi-driver') as any;
    expect(csi.Properties.PodIdentityAssociations).toEqual([{ RoleArn: expect.anything(), ServiceAccount: 'ebs-csi-controller-sa' }]);
    const storageClass = appliedObjects(template).find((m: any) => m.kind === 'StorageClass');
    expect(storageClass).toMatchObject({ metadata: { name: 'encrypted-gp3' }, provisioner: 'ebs.csi.aws.com', parameters: { encrypted: 'true', type: 'gp3' } });
  });
});

describe('NetworkPolicy enforcement: the VPC CNI as a managed add-on', () => {
  const resources: Record<string, any> = template.toJSON().Resources;
  const idOf = (predicate: (r: any) => boolean): string => {
    const ids = Object.keys(resources).filter((id) => predicate(resources[id]));
    expect(ids).toHaveLength(1);
    return ids[0];
  };
  const addonId = (name: string) => idOf((r) => r.Type === 'AWS::EKS::Addon' && r.Properties.AddonName === name);
  const cniId = addonId('vpc-cni');
  const cni = resources[cniId];
  const nodegroupId = idOf((r) => r.Type === 'AWS::EKS::Nodegroup');
  const nodeRoleId = resources[nodegroupId].Properties.NodeRole['Fn::GetAtt'][0];
  const policyNames = (roleId: string): string[] =>
    (resources[roleId].Properties.ManagedPolicyArns ?? []).map((arn: any) => JSON.stringify(arn).match(/:iam::aws:policy\/([\w/-]+)/)![1]);
  const dependsOn = (id: string): string[] => [resources[id].DependsOn ?? []].flat();

  test('the vpc-cni add-on runs with network policy enabled, taking over the self-managed aws-node, kept if removed from the stack', () => {
    expect(JSON.parse(cni.Properties.ConfigurationValues)).toEqual({ enableNetworkPolicy: 'true' });
    expect(cni.Properties).toMatchObject({ ResolveConflicts: 'OVERWRITE', PreserveOnDelete: true });
  });

  test('aws-node gets AmazonEKS_CNI_Policy on its own role, through Pod Identity', () => {
    const associations = cni.Properties.PodIdentityAssociations;
    expect(associations).toEqual([{ ServiceAccount: 'aws-node', RoleArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] } }]);
    const roleId = associations[0].RoleArn['Fn::GetAtt'][0];
    expect(policyNames(roleId)).toEqual(['AmazonEKS_CNI_Policy']);
    expect(resources[roleId].Properties.AssumeRolePolicyDocument.Statement).toEqual([{
      Action: ['sts:AssumeRole', 'sts:TagSession'], Effect: 'Allow', Principal: { Service: 'pods.eks.amazonaws.com' },
    }]);
  });

  test('the node role no longer carries AmazonEKS_CNI_Policy; no other role does', () => {
    expect(policyNames(nodeRoleId).sort()).toEqual(['AmazonEC2ContainerRegistryReadOnly', 'AmazonEKSWorkerNodePolicy']);
    const withCniPolicy = Object.keys(resources).filter((id) => resources[id].Type === 'AWS::IAM::Role' && policyNames(id).includes('AmazonEKS_CNI_Policy'));
    expect(withCniPolicy).toEqual([cni.Properties.PodIdentityAssociations[0].RoleArn['Fn::GetAtt'][0]]);
  });

  test('ordering: Pod Identity agent, then the CNI, then the nodes (and the node role\'s policy change), then workloads', () => {
    expect(dependsOn(cniId)).toContain(addonId('eks-pod-identity-agent'));
    expect(dependsOn(nodegroupId)).toContain(cniId);
    expect(dependsOn(nodeRoleId)).toContain(cniId);
    // The platform's own workloads run on the nodes, so after the CNI.
    const externalSecrets = idOf((r) => r.Type === 'Custom::AWSCDK-EKS-HelmChart' && r.Properties.Chart === 'external-secrets');
    expect(dependsOn(externalSecrets)).toContain(nodegroupId);
    // Every environment (its NetworkPolicies and workload) is deployed after the platform stack.
    for (const edge of Object.values(stacks.edges)) expect(edge.dependencies).toContain(stacks.platform);
  });
});

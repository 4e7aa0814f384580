import { Template } from 'aws-cdk-lib/assertions';
import { appliedObjects, buildTestApp } from '../helpers';

const { stacks } = buildTestApp();
const prod = Template.fromStack(stacks.edges.prod);
const dev = Template.fromStack(stacks.edges['dev-example']);

const manifests = (t: Template) => appliedObjects(t);

test('one edge stack per environment', () => {
  expect(Object.keys(stacks.edges)).toEqual(['prod', 'dev-example']);
});

describe('namespace', () => {
  test('named after the environment, restricted Pod Security Standard enforced', () => {
    const ns = manifests(prod).find((m) => m.kind === 'Namespace');
    expect(ns.metadata.name).toBe('prod');
    expect(ns.metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted', 'edge.environment/kind': 'prod',
    });
    expect(manifests(dev).find((m) => m.kind === 'Namespace').metadata.name).toBe('dev-example');
  });
});

describe('network load balancer', () => {
  test('internet-facing, cross-zone', () => {
    prod.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Type: 'network', Scheme: 'internet-facing' });
    const attributes = (Object.values(prod.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0] as any).Properties.LoadBalancerAttributes;
    expect(attributes).toContainEqual({ Key: 'load_balancing.cross_zone.enabled', Value: 'true' });
  });

  test('TCP listeners on 80 and 443 only', () => {
    const listeners = Object.values(prod.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((l: any) => l.Properties);
    expect(listeners.map((l) => [l.Port, l.Protocol]).sort()).toEqual([[443, 'TCP'], [80, 'TCP']]);
  });

  test('IP target groups on the pod ports 8080/8443 with proxy protocol v2 and TCP health checks', () => {
    const groups = Object.values(prod.findResources('AWS::ElasticLoadBalancingV2::TargetGroup')).map((g: any) => g.Properties);
    expect(groups.map((g) => g.Port).sort()).toEqual([8080, 8443]);
    for (const group of groups) {
      expect(group).toMatchObject({ Protocol: 'TCP', TargetType: 'ip', HealthCheckProtocol: 'TCP', HealthCheckIntervalSeconds: 10 });
      expect(group.TargetGroupAttributes).toContainEqual({ Key: 'proxy_protocol_v2.enabled', Value: 'true' });
      expect(group.TargetGroupAttributes).toContainEqual({ Key: 'deregistration_delay.timeout_seconds', Value: '30' });
    }
  });

  test('listener 443 forwards to the 8443 group, 80 to 8080', () => {
    const groups = prod.findResources('AWS::ElasticLoadBalancingV2::TargetGroup');
    for (const listener of Object.values(prod.findResources('AWS::ElasticLoadBalancingV2::Listener')) as any[]) {
      const groupId = listener.Properties.DefaultActions[0].TargetGroupArn.Ref;
      expect((groups[groupId] as any).Properties.Port).toBe(listener.Properties.Port === 443 ? 8443 : 8080);
    }
  });

  test('security group: 80/443 in from anywhere, out only to the VPC on the pod ports', () => {
    const sg = (Object.values(prod.findResources('AWS::EC2::SecurityGroup'))[0] as any).Properties;
    expect(sg.SecurityGroupIngress.map((r: any) => [r.CidrIp, r.FromPort, r.ToPort]).sort()).toEqual([['0.0.0.0/0', 443, 443], ['0.0.0.0/0', 80, 80]]);
    expect(sg.SecurityGroupEgress.map((r: any) => [r.FromPort, r.ToPort]).sort()).toEqual([[8080, 8080], [8443, 8443]]);
    for (const rule of sg.SecurityGroupEgress) expect(JSON.stringify(rule.CidrIp)).toMatch(/CidrBlock/);
  });

  test('prod: one Elastic IP per AZ mapped to the NLB, output for apex A records', () => {
    prod.resourceCountIs('AWS::EC2::EIP', 3);
    const lb = (Object.values(prod.findResources('AWS::ElasticLoadBalancingV2::LoadBalancer'))[0] as any).Properties;
    expect(lb.SubnetMappings).toHaveLength(3);
    for (const mapping of lb.SubnetMappings) expect(mapping.AllocationId['Fn::GetAtt'][1]).toBe('AllocationId');
    expect(JSON.stringify(prod.toJSON().Outputs.StaticIps.Value)).toContain('PublicIp');
  });

  test('dev: no Elastic IPs', () => {
    dev.resourceCountIs('AWS::EC2::EIP', 0);
    expect(dev.toJSON().Outputs.StaticIps.Value).toBe('none (staticIps is off)');
  });
});

describe('target group bindings', () => {
  const bindings = () => manifests(prod).filter((m) => m.kind === 'TargetGroupBinding');

  test('one per target group, onto the edge Service, in the environment namespace', () => {
    expect(bindings().map((b) => [b.metadata.name, b.metadata.namespace, b.spec.serviceRef.name, b.spec.serviceRef.port]).sort())
      .toEqual([['edge-http', 'prod', 'edge', 80], ['edge-https', 'prod', 'edge', 443]]);
    for (const binding of bindings()) {
      expect(binding.apiVersion).toBe('elbv2.k8s.aws/v1beta1');
      expect(binding.spec.targetType).toBe('ip');
    }
  });

  test('admit the NLB security group to the pod port only', () => {
    const ports = bindings().map((b) => b.spec.networking.ingress[0].ports[0].port).sort();
    expect(ports).toEqual([8080, 8443]);
  });

  test('point at the right target group and the NLB security group', () => {
    const groups = prod.findResources('AWS::ElasticLoadBalancingV2::TargetGroup');
    const sgId = Object.keys(prod.findResources('AWS::EC2::SecurityGroup'))[0];
    const resources = prod.findResources('Custom::AWSCDK-EKS-KubernetesResource');
    const bindings = Object.entries(resources).filter(([id]) => id.includes('Binding')).map(([, r]) => r as any);
    expect(bindings).toHaveLength(2);
    for (const resource of bindings) {
      const parts = resource.Properties.Manifest['Fn::Join'][1];
      const port = JSON.stringify(parts).includes('edge-https') ? 8443 : 8080;
      const groupRef = parts.find((p: any) => p.Ref).Ref;
      expect((groups[groupRef] as any).Properties.Port).toBe(port);
      expect(parts).toContainEqual({ 'Fn::GetAtt': [sgId, 'GroupId'] });
    }
  });

  test('are applied after the namespace and after the Load Balancer Controller', () => {
    const resources = prod.findResources('Custom::AWSCDK-EKS-KubernetesResource');
    const namespaceId = Object.keys(resources).find((id) => /Namespace/.test(id))!;
    const bindingIds = Object.keys(resources).filter((id) => /Binding/.test(id));
    expect(bindingIds).toHaveLength(2);
    for (const id of bindingIds) expect((resources[id] as any).DependsOn).toContain(namespaceId);
    const platformDeps = stacks.edges.prod.dependencies.map((s) => s.stackName);
    expect(platformDeps).toContain('EdgePlatform');
    const controller = stacks.platform.edgeCluster.cluster.albController!;
    const bindingConstructs = stacks.edges.prod.node.findAll().filter((c) => /Binding$/.test(c.node.id));
    for (const binding of bindingConstructs) expect(binding.node.dependencies).toContain(controller);
  });
});

describe('outputs', () => {
  test('the NLB DNS name, cluster, namespace and Redis endpoint', () => {
    const outputs = prod.toJSON().Outputs;
    expect(outputs.LoadBalancerDnsName.Value).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/Nlb/), 'DNSName'] });
    expect(outputs.NamespaceName.Value).toBe('prod');
    expect(JSON.stringify(outputs.RedisEndpoint.Value)).toContain('PrimaryEndPointAddress');
    expect(dev.toJSON().Outputs.RedisEndpoint.Value).toBe('redis.dev-example.svc.cluster.local:6379');
    expect(outputs.ClusterName).toBeDefined();
  });
});

describe('workload', () => {
  const workloadResource = (t: Template) => {
    const resources = t.findResources('Custom::AWSCDK-EKS-KubernetesResource');
    const id = Object.keys(resources).find((k) => k.startsWith('Workload'))!;
    return { id, resource: resources[id] as any, resources };
  };

  test('the edge chart is applied in the environment namespace, with the image built from image/Dockerfile', () => {
    const deployment = manifests(prod).find((m) => m.kind === 'Deployment' && m.metadata.name === 'edge');
    expect(deployment.metadata.namespace).toBe('prod');
    expect(deployment.spec.template.spec.containers[0].image).toBe('<token>');
    const assets = JSON.stringify(stacks.edges.prod.node.findAll().filter((c) => c.node.id === 'EdgeImage').map((c) => c.node.path));
    expect(assets).toContain('Edge-prod/EdgeImage');
    expect(stacks.edges.prod.image.imageUri).toBeDefined();
  });

  test('prod reads Redis from ElastiCache; the workload waits for the namespace and the synced secret', () => {
    const env = manifests(prod).find((m) => m.kind === 'Deployment').spec.template.spec.containers[0].env;
    expect(env[0]).toEqual({ name: 'REDIS_HOST', value: '<token>' });
    const { resource, resources } = workloadResource(prod);
    const dependsOn: string[] = resource.DependsOn;
    expect(dependsOn.some((d) => /RedisAuthManifest/.test(d))).toBe(true);
    const syncId = dependsOn.find((d) => /RedisAuthManifest/.test(d))!;
    expect((resources[syncId] as any).DependsOn.some((d: string) => d.startsWith('Namespace'))).toBe(true);
    expect(Object.keys(resources).some((k) => k.startsWith('Redis') && !k.startsWith('RedisAuth'))).toBe(false);
  });

  test('dev gets its in-cluster Redis chart, after the encrypted storage class exists', () => {
    const statefulSet = manifests(dev).find((m) => m.kind === 'StatefulSet');
    expect(statefulSet.metadata).toMatchObject({ name: 'redis', namespace: 'dev-example' });
    const env = manifests(dev).find((m) => m.kind === 'Deployment').spec.template.spec.containers[0].env;
    expect(env[0]).toEqual({ name: 'REDIS_HOST', value: 'redis.dev-example.svc.cluster.local' });
  });
});

describe('Redis AUTH secret sync (External Secrets, IRSA)', () => {
  test('a SecretStore and an ExternalSecret that make Secret edge-redis-auth (key "token") from Secrets Manager', () => {
    const store = manifests(prod).find((m) => m.kind === 'SecretStore');
    expect(store.apiVersion).toBe('external-secrets.io/v1');
    expect(store.spec.provider.aws).toMatchObject({ service: 'SecretsManager', region: 'eu-west-1', auth: { jwt: { serviceAccountRef: { name: 'edge-secrets-reader' } } } });
    const external = manifests(prod).find((m) => m.kind === 'ExternalSecret');
    expect(external.spec.target.name).toBe('edge-redis-auth');
    expect(external.spec.data).toEqual([{ secretKey: 'token', remoteRef: { key: '<token>' } }]);
  });

  test('the reader role may read only that one secret, and decrypt only through Secrets Manager', () => {
    const policies = Object.values(prod.findResources('AWS::IAM::Policy')).map((p: any) => p.Properties)
      .filter((p) => JSON.stringify(p.Roles).includes('RedisAuthServiceAccount'));
    expect(policies).toHaveLength(1);
    const statements = policies[0].PolicyDocument.Statement;
    expect(statements).toHaveLength(2);
    expect(statements[0].Effect).toBe('Allow');
    expect([...statements[0].Action].sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(JSON.stringify(statements[0].Resource)).toMatch(/AuthToken/);
    expect(statements[1]).toMatchObject({ Action: 'kms:Decrypt', Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } } });
  });

  test('the role trusts only the cluster\'s OIDC provider for that namespace\'s service account', () => {
    const role = Object.values(prod.findResources('AWS::IAM::Role')).find((r: any) => JSON.stringify(r).includes('sts:AssumeRoleWithWebIdentity')) as any;
    const condition = role.Properties.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals['Fn::GetAtt'][0];
    // The condition's keys name the OIDC issuer, known at deploy time: a CfnJson resource builds it.
    const json = JSON.stringify((prod.toJSON().Resources[condition] as any).Properties.Value);
    expect(json).toContain('system:serviceaccount:prod:edge-secrets-reader');
    expect(json).toContain('sts.amazonaws.com');
  });

  test('dev: a generated password in Secrets Manager, deleted with the environment; prod has none of its own', () => {
    const devSecrets = Object.values(dev.findResources('AWS::SecretsManager::Secret')) as any[];
    expect(devSecrets).toHaveLength(1);
    expect(devSecrets[0].Properties.GenerateSecretString).toMatchObject({ PasswordLength: 48, ExcludePunctuation: true });
    expect(devSecrets[0].DeletionPolicy).toBe('Delete');
    prod.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });
});

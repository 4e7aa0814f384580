import { Template } from 'aws-cdk-lib/assertions';
import { SecretSync } from '../../lib/secret-sync';
import { appliedObjects, buildTestApp, defaultRawConfig } from '../helpers';

const { stacks } = buildTestApp();
const prod = Template.fromStack(stacks.edges.prod);
const dev = Template.fromStack(stacks.edges['dev-example']);

const manifests = (t: Template) => appliedObjects(t);
/** The manifest resource whose logical ID starts with prefix: its CloudFormation value parts (tokens as intrinsics). */
const manifestParts = (t: Template, prefix: string): unknown[] => {
  const [, resource] = Object.entries(t.findResources('Custom::AWSCDK-EKS-KubernetesResource')).find(([id]) => id.startsWith(prefix)) as [string, any];
  const manifest = resource.Properties.Manifest;
  return typeof manifest === 'string' ? [manifest] : manifest['Fn::Join'][1];
};
const logicalId = (t: Template, type: string, prefix: string) => Object.keys(t.findResources(type)).find((id) => id.startsWith(prefix))!;

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

describe('the domains API is never behind the NLB', () => {
  test('no listener, target group or security group rule of the NLB on 8082', () => {
    for (const t of [prod, dev]) {
      const listeners = Object.values(t.findResources('AWS::ElasticLoadBalancingV2::Listener')).map((l: any) => l.Properties.Port);
      const groups = Object.values(t.findResources('AWS::ElasticLoadBalancingV2::TargetGroup')).map((g: any) => g.Properties.Port);
      expect(listeners.sort()).toEqual([443, 80]);
      expect(groups.sort()).toEqual([8080, 8443]);
      const sg = (Object.values(t.findResources('AWS::EC2::SecurityGroup'))[0] as any).Properties;
      const rulePorts = [...sg.SecurityGroupIngress, ...sg.SecurityGroupEgress].flatMap((r: any) => [r.FromPort, r.ToPort]);
      expect(rulePorts).not.toContain(8082);
    }
  });

  test('the bindings name only the "edge" Service\'s http/https ports, and open only 8080/8443 on the nodes', () => {
    for (const t of [prod, dev]) {
      const bindings = manifests(t).filter((m) => m.kind === 'TargetGroupBinding');
      expect(bindings.map((b) => [b.spec.serviceRef.name, b.spec.serviceRef.port]).sort()).toEqual([['edge', 443], ['edge', 80]]);
      const opened = bindings.flatMap((b) => b.spec.networking.ingress.flatMap((rule: any) => rule.ports.map((p: any) => p.port)));
      expect(opened.sort()).toEqual([8080, 8443]);
      // And the "edge" Service has no API port those Service ports could map to.
      const edge = manifests(t).find((m) => m.kind === 'Service' && m.metadata.name === 'edge');
      expect(edge.spec.ports.map((p: any) => [p.port, p.targetPort])).toEqual([[80, 8080], [443, 8443]]);
    }
  });

  test('the API has its own ClusterIP Service, which nothing binds', () => {
    const api = manifests(prod).find((m) => m.kind === 'Service' && m.metadata.name === 'edge-api');
    expect(api.spec).toMatchObject({ type: 'ClusterIP', ports: [{ name: 'api', port: 8082, targetPort: 'api' }] });
    expect(manifests(prod).filter((m) => m.kind === 'TargetGroupBinding').map((b) => b.spec.serviceRef.name)).not.toContain('edge-api');
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

describe('secret sync: the Redis AUTH token and the domains API token (External Secrets, IRSA)', () => {
  test('one SecretStore and an ExternalSecret per secret: Secrets edge-redis-auth and edge-domains-api (key "token") from Secrets Manager', () => {
    for (const t of [prod, dev]) {
      const stores = manifests(t).filter((m) => m.kind === 'SecretStore');
      expect(stores).toHaveLength(1);
      expect(stores[0].apiVersion).toBe('external-secrets.io/v1');
      expect(stores[0].metadata.name).toBe('aws-secrets-manager');
      expect(stores[0].spec.provider.aws).toMatchObject({ service: 'SecretsManager', region: 'eu-west-1', auth: { jwt: { serviceAccountRef: { name: 'edge-secrets-reader' } } } });
      const externals = manifests(t).filter((m) => m.kind === 'ExternalSecret');
      expect(externals.map((e) => [e.metadata.name, e.spec.target.name, e.spec.secretStoreRef.name])).toEqual([
        ['edge-redis-auth', 'edge-redis-auth', 'aws-secrets-manager'],
        ['edge-domains-api', 'edge-domains-api', 'aws-secrets-manager'],
      ]);
      for (const external of externals) expect(external.spec.data).toEqual([{ secretKey: 'token', remoteRef: { key: '<token>' } }]);
    }
    // The API token's ExternalSecret refers to this stack's generated secret (by ARN).
    const apiToken = logicalId(prod, 'AWS::SecretsManager::Secret', 'DomainsApiToken');
    const parts = manifestParts(prod, 'RedisAuthManifest');
    const at = parts.findIndex((p) => JSON.stringify(p) === JSON.stringify({ Ref: apiToken }));
    expect(at).toBeGreaterThan(0);
    expect(parts[at - 1]).toMatch(/"name":"edge-domains-api".*"remoteRef":\{"key":"$/);
  });

  test('the reader role may read exactly the two secrets, and decrypt only with the store\'s key, through Secrets Manager', () => {
    const policies = Object.values(prod.findResources('AWS::IAM::Policy')).map((p: any) => p.Properties)
      .filter((p) => JSON.stringify(p.Roles).includes('RedisAuthServiceAccount'));
    expect(policies).toHaveLength(1);
    const statements = policies[0].PolicyDocument.Statement;
    expect(statements).toHaveLength(2);
    expect(statements[0].Effect).toBe('Allow');
    expect([...statements[0].Action].sort()).toEqual(['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    expect(statements[0].Resource).toHaveLength(2);
    expect(JSON.stringify(statements[0].Resource[0])).toMatch(/CertStoreAuthToken/);
    expect(statements[0].Resource[1]).toEqual({ Ref: logicalId(prod, 'AWS::SecretsManager::Secret', 'DomainsApiToken') });
    expect(statements[1]).toMatchObject({ Action: 'kms:Decrypt', Condition: { StringEquals: { 'kms:ViaService': 'secretsmanager.eu-west-1.amazonaws.com' } } });
    expect(JSON.stringify(statements[1].Resource)).toMatch(/CertStoreKey/);
  });

  test('dev: the reader reads the Redis password and the API token, and decrypts nothing (AWS-managed key)', () => {
    const policies = Object.values(dev.findResources('AWS::IAM::Policy')).map((p: any) => p.Properties)
      .filter((p) => JSON.stringify(p.Roles).includes('RedisAuthServiceAccount'));
    expect(policies).toHaveLength(1);
    const statements = policies[0].PolicyDocument.Statement;
    expect(statements).toHaveLength(1);
    expect(statements[0].Resource.map((r: any) => r.Ref).sort()).toEqual([
      logicalId(dev, 'AWS::SecretsManager::Secret', 'DomainsApiToken'), logicalId(dev, 'AWS::SecretsManager::Secret', 'RedisPassword'),
    ].sort());
  });

  test('the role trusts only the cluster\'s OIDC provider for that namespace\'s service account', () => {
    const role = Object.values(prod.findResources('AWS::IAM::Role')).find((r: any) => JSON.stringify(r).includes('sts:AssumeRoleWithWebIdentity')) as any;
    const condition = role.Properties.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals['Fn::GetAtt'][0];
    // The condition's keys name the OIDC issuer, known at deploy time: a CfnJson resource builds it.
    const json = JSON.stringify((prod.toJSON().Resources[condition] as any).Properties.Value);
    expect(json).toContain('system:serviceaccount:prod:edge-secrets-reader');
    expect(json).toContain('sts.amazonaws.com');
  });

  test('dev: a generated Redis password in Secrets Manager, deleted with the environment; prod has none of its own', () => {
    const devSecrets = Object.entries(dev.findResources('AWS::SecretsManager::Secret')).filter(([id]) => id.startsWith('RedisPassword')).map(([, r]) => r as any);
    expect(devSecrets).toHaveLength(1);
    expect(devSecrets[0].Properties.GenerateSecretString).toMatchObject({ PasswordLength: 48, ExcludePunctuation: true });
    expect(devSecrets[0].DeletionPolicy).toBe('Delete');
    expect(Object.keys(prod.findResources('AWS::SecretsManager::Secret')).filter((id) => id.startsWith('RedisPassword'))).toEqual([]);
  });

  test('one SecretSync per namespace (its SecretStore and service account names are fixed), each Secret named once', () => {
    const { stacks: fresh } = buildTestApp();
    const stack = fresh.edges.prod;
    const cluster = fresh.platform.edgeCluster.cluster;
    const secret = stack.domainsApiToken;
    expect(() => new SecretSync(stack, 'Second', { cluster, namespace: 'prod', secrets: [{ targetSecretName: 'other', secret }] }))
      .toThrow(/Edge-prod\/RedisAuth already syncs namespace prod; a second would collide with its SecretStore "aws-secrets-manager" and service account "edge-secrets-reader"/);
    expect(() => new SecretSync(stack, 'Twice', { cluster, namespace: 'other', secrets: [{ targetSecretName: 'a', secret }, { targetSecretName: 'a', secret }] }))
      .toThrow('Kubernetes Secret "a" is named twice');
    expect(() => new SecretSync(stack, 'None', { cluster, namespace: 'none', secrets: [] })).toThrow('no secrets to sync');
  });
});

describe('domains API token', () => {
  test('generated by Secrets Manager (48 characters, no punctuation) in each environment; no value in any template', () => {
    for (const t of [prod, dev]) {
      const [token] = Object.entries(t.findResources('AWS::SecretsManager::Secret')).filter(([id]) => id.startsWith('DomainsApiToken')).map(([, r]) => r as any);
      expect(token.Properties.GenerateSecretString).toEqual({ PasswordLength: 48, ExcludePunctuation: true });
      expect(token.Properties.SecretString).toBeUndefined();
      expect(token.Properties.KmsKeyId).toBeUndefined();
      // Nothing resolves a secret's value into a template (no dynamic reference either).
      const text = JSON.stringify(t.toJSON());
      expect(text.match(/resolve:secretsmanager|"SecretString"|\\"SecretString\\"/g)).toBeNull();
    }
  });

  test('the edge container reads it as EDGE_API_TOKEN from the synced Secret, after the sync is applied', () => {
    for (const t of [prod, dev]) {
      const env = manifests(t).find((m) => m.kind === 'Deployment' && m.metadata.name === 'edge').spec.template.spec.containers[0].env;
      expect(env).toContainEqual({ name: 'EDGE_API_TOKEN', valueFrom: { secretKeyRef: { name: 'edge-domains-api', key: 'token' } } });
      expect(manifests(t).filter((m) => m.kind === 'Secret')).toEqual([]);
    }
  });

  test('outputs: the secret\'s ARN (for the AWS CLI) and the in-cluster URL', () => {
    const outputs = prod.toJSON().Outputs;
    expect(outputs.DomainsApiTokenSecretArn.Value).toEqual({ Ref: logicalId(prod, 'AWS::SecretsManager::Secret', 'DomainsApiToken') });
    expect(outputs.DomainsApiTokenSecretArn.Description).toContain('aws secretsmanager get-secret-value --secret-id');
    expect(outputs.DomainsApiUrl.Value).toBe('http://edge-api.prod.svc.cluster.local:8082/v1/domains');
    expect(dev.toJSON().Outputs.DomainsApiUrl.Value).toBe('http://edge-api.dev-example.svc.cluster.local:8082/v1/domains');
  });
});

describe('domains API NetworkPolicy', () => {
  test('by default no peer is admitted to 8082', () => {
    for (const t of [prod, dev]) {
      const policy = manifests(t).find((m) => m.kind === 'NetworkPolicy' && m.metadata.name === 'edge-api-ingress');
      expect(policy.spec.policyTypes).toEqual(['Ingress']);
      expect(policy.spec.ingress).toEqual([]);
    }
  });
});

describe('configured: API peers, and no DNS pre-check', () => {
  const raw = defaultRawConfig();
  raw.environments[0].domainsApi = { allowedNamespaces: ['product'], allowedCidrs: ['10.40.128.0/20'] };
  raw.environments[0].dnsPrecheck = false;
  const configured = Template.fromStack(buildTestApp(raw).stacks.edges.prod);

  test('the API NetworkPolicy admits the namespace and the CIDR to 8082 only', () => {
    const policy = manifests(configured).find((m) => m.kind === 'NetworkPolicy' && m.metadata.name === 'edge-api-ingress');
    expect(policy.spec.ingress).toEqual([{
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'product' } } }, { ipBlock: { cidr: '10.40.128.0/20' } }],
      ports: [{ protocol: 'TCP', port: 8082 }],
    }]);
  });

  test('the API\'s CIDRs are admitted to 8082 by the cluster\'s security group, in this stack (none by default)', () => {
    const rules = Object.values(configured.findResources('AWS::EC2::SecurityGroupIngress')).map((r: any) => r.Properties)
      .filter((p) => p.FromPort === 8082);
    expect(rules).toEqual([expect.objectContaining({ CidrIp: '10.40.128.0/20', IpProtocol: 'tcp', FromPort: 8082, ToPort: 8082 })]);
    expect(JSON.stringify(rules[0].GroupId)).toMatch(/ClusterSecurityGroupId/);
    for (const t of [prod, dev]) {
      expect(Object.values(t.findResources('AWS::EC2::SecurityGroupIngress')).filter((r: any) => r.Properties.FromPort === 8082)).toEqual([]);
    }
  });

  test('dnsPrecheck: false: neither the NLB\'s name nor its addresses reach the workload', () => {
    const parts = JSON.stringify(manifestParts(configured, 'Workload'));
    expect(parts).not.toContain('DNSName');
    expect(parts).not.toContain('PublicIp');
    const conf = manifests(configured).find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'edge-config').data['nginx.conf'];
    expect(conf).not.toContain('dns_precheck');
  });
});

describe('DNS pre-check targets in the workload', () => {
  const nginxConf = (t: Template) => manifests(t).find((m) => m.kind === 'ConfigMap' && m.metadata.name === 'edge-config').data['nginx.conf'] as string;

  test('prod: the NLB\'s DNS name and its three Elastic IPs, resolved at deploy time', () => {
    const parts = manifestParts(prod, 'Workload');
    const nlb = logicalId(prod, 'AWS::ElasticLoadBalancingV2::LoadBalancer', 'LoadBalancerNlb');
    const eips = Object.keys(prod.findResources('AWS::EC2::EIP'));
    // In nginx.conf and in the pod annotation that rolls the pods when they change.
    expect(parts.filter((p) => JSON.stringify(p) === JSON.stringify({ 'Fn::GetAtt': [nlb, 'DNSName'] }))).toHaveLength(2);
    for (const eip of eips) expect(parts.filter((p) => JSON.stringify(p) === JSON.stringify({ 'Fn::GetAtt': [eip, 'PublicIp'] }))).toHaveLength(2);
    expect(nginxConf(prod)).toMatch(/dns_precheck = \{\n\s+resolver = "172\.20\.0\.10:53",\n\s+names = \{\n\s+"edge\.example\.com",\n\s+"<token>",\n\s+\},\n\s+addresses = \{\n(\s+"<token>",\n){3}\s+\}/);
  });

  test('dev: the NLB\'s name, no addresses', () => {
    expect(nginxConf(dev)).toMatch(/names = \{\n\s+"edge-dev\.example\.com",\n\s+"<token>",\n\s+\},\n\s+addresses = \{\s*\}/);
    expect(JSON.stringify(manifestParts(dev, 'Workload'))).not.toContain('PublicIp');
  });
});

import { Template } from 'aws-cdk-lib/assertions';
import { buildTestApp, defaultRawConfig } from '../helpers';

const raw = defaultRawConfig();
raw.platform.alarmEmail = 'oncall@example.com';
const { stacks } = buildTestApp(raw);
const platform = Template.fromStack(stacks.platform);
const store = Template.fromStack(stacks.certStores.prod);
const prod = Template.fromStack(stacks.edges.prod);

const alarms = (t: Template) => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a: any) => a.Properties);

test('alarms go to an encrypted, TLS-only SNS topic, mailed to the configured address', () => {
  const topic = (Object.values(platform.findResources('AWS::SNS::Topic'))[0] as any).Properties;
  expect(topic.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/AlarmsKey/), 'Arn'] });
  platform.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'oncall@example.com' });
  const policy = Object.values(platform.findResources('AWS::SNS::TopicPolicy'))[0] as any;
  expect(JSON.stringify(policy.Properties.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
});

test('NLB: an alarm per target group for any unhealthy pod, and for no healthy pod', () => {
  const nlb = alarms(prod).filter((a) => a.Namespace === 'AWS/NetworkELB');
  expect(nlb.map((a) => a.MetricName).sort()).toEqual(['HealthyHostCount', 'HealthyHostCount', 'UnHealthyHostCount', 'UnHealthyHostCount']);
  const none = nlb.find((a) => a.MetricName === 'HealthyHostCount');
  expect(none).toMatchObject({ Threshold: 1, ComparisonOperator: 'LessThanThreshold', TreatMissingData: 'breaching', Namespace: 'AWS/NetworkELB' });
  for (const alarm of nlb) {
    expect(alarm.AlarmActions).toHaveLength(1);
    expect(alarm.OKActions).toHaveLength(1);
  }
});

test('ElastiCache: memory, evictions and engine CPU on every node', () => {
  const byMetric = (name: string) => alarms(store).filter((a) => a.MetricName === name);
  expect(byMetric('DatabaseMemoryUsagePercentage').map((a) => a.Threshold)).toEqual([75, 75]);
  expect(byMetric('Evictions').map((a) => [a.Threshold, a.Statistic])).toEqual([[0, 'Sum'], [0, 'Sum']]);
  expect(byMetric('EngineCPUUtilization')).toHaveLength(2);
  const nodes = byMetric('Evictions').map((a) => JSON.stringify(a.Dimensions[0].Value));
  expect(nodes[0]).toContain('-001');
  expect(nodes[1]).toContain('-002');
});

test('certificates near expiry: the renewer\'s log lines in this namespace, counted by a metric filter on the cluster\'s container logs, alarm', () => {
  const filter = (Object.values(prod.findResources('AWS::Logs::MetricFilter'))[0] as any).Properties;
  expect(filter.FilterPattern).toBe('{ ($.kubernetes.namespace_name = "prod") && ($.log = "*certificates near expiry*") }');
  expect(JSON.stringify(filter.LogGroupName)).toContain('ApplicationLogs');
  const alarm = alarms(prod).find((a) => a.MetricName === 'CertificatesNearExpiryReports');
  expect(alarm).toMatchObject({ Namespace: 'CustomDomainEdge', Statistic: 'Sum', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    Dimensions: [{ Name: 'Environment', Value: 'prod' }] });
  expect(alarm.AlarmActions).toHaveLength(1);
  // The log group the add-on writes to, made by the platform with a retention, before the add-on.
  const group = Object.entries(platform.findResources('AWS::Logs::LogGroup')).find(([id]) => id.includes('ApplicationLogs'))!;
  expect(group[1].Properties).toMatchObject({ RetentionInDays: 30,
    LogGroupName: { 'Fn::Join': ['', ['/aws/containerinsights/', { Ref: expect.stringMatching(/^EdgeCluster/) }, '/application']] } });
  const addon = Object.values(platform.findResources('AWS::EKS::Addon')).find((a: any) => a.Properties.AddonName === 'amazon-cloudwatch-observability') as any;
  expect(addon.DependsOn).toContain(group[0]);
});

test('node group health: Container Insights and an alarm on failed nodes', () => {
  platform.hasResourceProperties('AWS::EKS::Addon', { AddonName: 'amazon-cloudwatch-observability' });
  const failed = alarms(platform).find((a) => a.MetricName === 'cluster_failed_node_count');
  expect(failed).toMatchObject({ Namespace: 'ContainerInsights', Threshold: 0, ComparisonOperator: 'GreaterThanThreshold' });
});

test('a dashboard per environment, with the store\'s widgets where it has one', () => {
  const body = (t: Template) => JSON.stringify((Object.values(t.findResources('AWS::CloudWatch::Dashboard'))[0] as any).Properties.DashboardBody);
  expect(body(prod)).toContain('NLB flows');
  expect(body(prod)).toContain('Store memory');
  expect(body(Template.fromStack(stacks.edges['dev-example']))).not.toContain('Store memory');
});

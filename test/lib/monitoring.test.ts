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

/** The metric filter of the edge stack whose pattern holds `text`. */
const filterMatching = (t: Template, text: string) =>
  (Object.values(t.findResources('AWS::Logs::MetricFilter')) as any[]).map((f) => f.Properties).find((f) => f.FilterPattern.includes(text));
/** The cluster's container log group, as an edge stack names it: the platform's cluster name, across stacks. */
const APPLICATION_LOGS_IN_EDGE = { 'Fn::Join': ['', ['/aws/containerinsights/', { 'Fn::GetStackOutput': expect.objectContaining({ StackName: 'EdgePlatform',
  OutputName: expect.stringMatching(/EdgeCluster/) }) }, '/application']] };

test('certificates near expiry: the renewer\'s log lines in this namespace, counted by a metric filter on the cluster\'s container logs, alarm', () => {
  const filter = filterMatching(prod, 'certificates near expiry');
  expect(filter.FilterPattern).toBe('{ ($.kubernetes.namespace_name = "prod") && ($.log = "*certificates near expiry*") }');
  expect(filter.LogGroupName).toEqual(APPLICATION_LOGS_IN_EDGE);
  const alarm = alarms(prod).find((a) => a.MetricName === 'CertificatesNearExpiryReports');
  expect(alarm).toMatchObject({ Namespace: 'CustomDomainEdge', Statistic: 'Sum', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    Dimensions: [{ Name: 'Environment', Value: 'prod' }] });
  expect(alarm.AlarmActions).toHaveLength(1);
});

test('renewer silent: no "edge: renewal report:" line from this namespace for 2 hours (missing data breaches), alarm', () => {
  const filter = filterMatching(prod, 'renewal report');
  expect(filter).toMatchObject({
    FilterPattern: '{ ($.kubernetes.namespace_name = "prod") && ($.log = "*edge: renewal report:*") }',
    LogGroupName: APPLICATION_LOGS_IN_EDGE,
    MetricTransformations: [{ MetricNamespace: 'CustomDomainEdge', MetricName: 'RenewalReports', MetricValue: '1',
      Dimensions: [{ Key: 'Environment', Value: '$.kubernetes.namespace_name' }] }],
  });
  const alarm = alarms(prod).find((a) => a.MetricName === 'RenewalReports');
  expect(alarm).toMatchObject({ Namespace: 'CustomDomainEdge', Statistic: 'Sum', Period: 3600, Threshold: 1, ComparisonOperator: 'LessThanThreshold',
    EvaluationPeriods: 2, DatapointsToAlarm: 2, TreatMissingData: 'breaching', Dimensions: [{ Name: 'Environment', Value: 'prod' }] });
  const nearExpiry = alarms(prod).find((a) => a.MetricName === 'CertificatesNearExpiryReports');
  expect(alarm.AlarmActions).toHaveLength(1);
  expect(alarm.AlarmActions).toEqual(nearExpiry.AlarmActions);
  expect(alarm.OKActions).toEqual(nearExpiry.AlarmActions);
  const dev = Template.fromStack(stacks.edges['dev-example']);
  expect(filterMatching(dev, 'renewal report').FilterPattern).toContain('$.kubernetes.namespace_name = "dev-example"');
});

test('the container log group: a LogRetention (made if missing, 30 days) before the add-on, never an AWS::Logs::LogGroup (the add-on may have made it)', () => {
  const retention = Object.entries(platform.findResources('Custom::LogRetention')).find(([id]) => id.includes('ApplicationLogs'))!;
  expect(retention[1].Properties).toMatchObject({ RetentionInDays: 30,
    LogGroupName: { 'Fn::Join': ['', ['/aws/containerinsights/', { Ref: expect.stringMatching(/^EdgeCluster/) }, '/application']] } });
  expect(retention[1].Properties.RemovalPolicy).toBeUndefined(); // retained: the group outlives the stack
  const addon = Object.values(platform.findResources('AWS::EKS::Addon')).find((a: any) => a.Properties.AddonName === 'amazon-cloudwatch-observability') as any;
  expect(addon.DependsOn).toContain(retention[0]);
  const groupNames = Object.values(platform.findResources('AWS::Logs::LogGroup')).map((g: any) => JSON.stringify(g.Properties.LogGroupName ?? ''));
  expect(groupNames.filter((name) => name.includes('containerinsights'))).toEqual([]);
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

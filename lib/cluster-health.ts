import { aws_cloudwatch as cloudwatch, aws_eks_v2 as eks, aws_logs as logs, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { PodIdentityRole } from './pod-identity-role';

export interface ClusterHealthProps {
  readonly cluster: eks.Cluster;
  readonly alarmTopic: AlarmTopic;
}

/**
 * Node health of the cluster: the CloudWatch Observability add-on (Container Insights, its
 * agent's role through Pod Identity) and an alarm when any node fails. The add-on ships every
 * container's log to one log group per cluster, made here (with a retention) rather than left to
 * the agent, so the environments can put metric filters on it.
 */
export class ClusterHealth extends Construct {
  readonly failedNodesAlarm: cloudwatch.Alarm;
  /** Container logs of every pod ("log" holds the line, "kubernetes.namespace_name" the namespace). */
  readonly applicationLogs: logs.LogGroup;

  constructor(scope: Construct, id: string, props: ClusterHealthProps) {
    super(scope, id);
    const role = new PodIdentityRole(this, 'AgentRole', {
      description: 'CloudWatch agent of Container Insights (Pod Identity)',
      managedPolicyName: 'CloudWatchAgentServerPolicy',
      reason: 'CloudWatchAgentServerPolicy is the policy the Container Insights agent documents (put metrics and logs)',
    });
    this.applicationLogs = new logs.LogGroup(this, 'ApplicationLogs', {
      logGroupName: `/aws/containerinsights/${props.cluster.clusterName}/application`,
      retention: logs.RetentionDays.ONE_MONTH,
    });
    const addon = new eks.CfnAddon(this, 'Observability', {
      clusterName: props.cluster.clusterName,
      addonName: 'amazon-cloudwatch-observability',
      resolveConflicts: 'OVERWRITE',
      podIdentityAssociations: [{ roleArn: role.roleArn, serviceAccount: 'cloudwatch-agent' }],
    });
    addon.node.addDependency(this.applicationLogs);

    this.failedNodesAlarm = new cloudwatch.Alarm(this, 'FailedNodes', {
      alarmDescription: `EKS cluster ${props.cluster.clusterName}: a node is not ready`,
      metric: new cloudwatch.Metric({
        namespace: 'ContainerInsights', metricName: 'cluster_failed_node_count',
        dimensionsMap: { ClusterName: props.cluster.clusterName }, statistic: 'Maximum', period: Duration.minutes(1),
      }),
      threshold: 0, evaluationPeriods: 5, datapointsToAlarm: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });
    props.alarmTopic.notify(this.failedNodesAlarm);
  }
}

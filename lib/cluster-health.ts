import { aws_cloudwatch as cloudwatch, aws_eks_v2 as eks, aws_logs as logs, Duration, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { acknowledgeNag } from './nag';
import { PodIdentityRole } from './pod-identity-role';

/**
 * The construct ID aws-cdk-lib gives the Lambda function behind every `logs.LogRetention`: one
 * per stack, at the stack's root (aws-logs/lib/log-retention.ts). Looked up to acknowledge its
 * cdk-nag findings; a change in aws-cdk-lib makes the lookup fail at synth, not pass silently.
 */
const LOG_RETENTION_FUNCTION_ID = 'LogRetentionaae0aa3c5b4d4f87b02d85b201efdd8a';

export interface ClusterHealthProps {
  readonly cluster: eks.Cluster;
  readonly alarmTopic: AlarmTopic;
}

/**
 * Node health of the cluster: the CloudWatch Observability add-on (Container Insights, its
 * agent's role through Pod Identity) and an alarm when any node fails. The add-on ships every
 * container's log to one log group per cluster, `/aws/containerinsights/<cluster>/application`,
 * which the environments put metric filters on. The add-on makes that group itself when it is
 * missing, and clusters deployed by earlier versions of this app already have it, so it is not a
 * `logs.LogGroup` here (CloudFormation would fail with "already exists"): a `logs.LogRetention`
 * creates it if missing and sets its retention (30 days), before the add-on, on a new cluster and
 * an existing one alike. The group stays when the stack is deleted.
 */
export class ClusterHealth extends Construct {
  readonly failedNodesAlarm: cloudwatch.Alarm;
  /** Container logs of every pod ("log" holds the line, "kubernetes.namespace_name" the namespace). */
  readonly applicationLogs: logs.ILogGroup;
  /** Creates the application log group if missing and keeps its retention at 30 days. */
  readonly applicationLogsRetention: logs.LogRetention;

  constructor(scope: Construct, id: string, props: ClusterHealthProps) {
    super(scope, id);
    const role = new PodIdentityRole(this, 'AgentRole', {
      description: 'CloudWatch agent of Container Insights (Pod Identity)',
      managedPolicyName: 'CloudWatchAgentServerPolicy',
      reason: 'CloudWatchAgentServerPolicy is the policy the Container Insights agent documents (put metrics and logs)',
    });
    const logGroupName = `/aws/containerinsights/${props.cluster.clusterName}/application`;
    this.applicationLogsRetention = new logs.LogRetention(this, 'ApplicationLogsRetention', {
      logGroupName,
      retention: logs.RetentionDays.ONE_MONTH,
    });
    this.applicationLogs = logs.LogGroup.fromLogGroupName(this, 'ApplicationLogs', logGroupName);
    const retentionFunction = Stack.of(this).node.findChild(LOG_RETENTION_FUNCTION_ID);
    acknowledgeNag(retentionFunction, 'The function aws-cdk-lib builds for logs.LogRetention, with the permissions it grants: the Lambda basic execution policy '
      + '(its own log, and logs:CreateLogGroup, which makes the application log group where it is missing) and logs:PutRetentionPolicy/DeleteRetentionPolicy '
      + 'on any group (one function per stack serves every group it manages; the names hold the cluster name, known at deploy time only)',
    'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]', 'IAM5[Resource::*]');
    const addon = new eks.CfnAddon(this, 'Observability', {
      clusterName: props.cluster.clusterName,
      addonName: 'amazon-cloudwatch-observability',
      resolveConflicts: 'OVERWRITE',
      podIdentityAssociations: [{ roleArn: role.roleArn, serviceAccount: 'cloudwatch-agent' }],
    });
    addon.node.addDependency(this.applicationLogsRetention);

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

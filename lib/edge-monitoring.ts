import { aws_cloudwatch as cloudwatch, aws_logs as logs, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { EdgeLoadBalancer } from './edge-load-balancer';

export interface EdgeMonitoringProps {
  readonly environmentName: string;
  readonly loadBalancer: EdgeLoadBalancer;
  readonly alarmTopic: AlarmTopic;
  /** The cluster's container logs (Container Insights), where the edge pods' lines land. */
  readonly applicationLogs: logs.ILogGroup;
  /** Widgets of the environment's certificate store, when it has one in ElastiCache. */
  readonly storeWidgets?: cloudwatch.IWidget[];
}

/**
 * Eyes on one environment: alarms when the NLB sees an unhealthy edge pod, or no healthy one,
 * when a certificate nears expiry, or when the renewer has not reported for 2 hours, and a
 * dashboard of the NLB's traffic and targets (and the certificate store).
 */
export class EdgeMonitoring extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: EdgeMonitoringProps) {
    super(scope, id);
    const lb = props.loadBalancer;
    const period = Duration.minutes(1);

    for (const [name, target] of [['HTTP', lb.http], ['HTTPS', lb.https]] as const) {
      const unhealthy = target.targetGroup.metrics.unHealthyHostCount({ statistic: 'Maximum', period });
      const healthy = target.targetGroup.metrics.healthyHostCount({ statistic: 'Minimum', period });
      this.alarms.push(new cloudwatch.Alarm(this, `${name}UnhealthyPods`, {
        alarmDescription: `${props.environmentName}: an edge pod fails the NLB's ${name} health check`,
        metric: unhealthy, threshold: 0, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3, datapointsToAlarm: 3, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }));
      this.alarms.push(new cloudwatch.Alarm(this, `${name}NoHealthyPod`, {
        alarmDescription: `${props.environmentName}: no healthy edge pod behind the NLB's ${name} listener: the edge is down`,
        metric: healthy, threshold: 1, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        evaluationPeriods: 2, treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      }));
    }
    // Counts the edge pods' log lines of this namespace that contain `text`.
    const linesContaining = (id: string, text: string, metricName: string) => new logs.MetricFilter(this, id, {
      logGroup: props.applicationLogs,
      filterPattern: logs.FilterPattern.all(
        logs.FilterPattern.stringValue('$.kubernetes.namespace_name', '=', props.environmentName),
        logs.FilterPattern.stringValue('$.log', '=', `*${text}*`),
      ),
      metricNamespace: 'CustomDomainEdge',
      metricName,
      dimensions: { Environment: '$.kubernetes.namespace_name' },
      metricValue: '1',
    });
    // The renewer logs "certificates near expiry" at each pass while any certificate is within 7
    // days (or a tenth of its lifetime) of expiry (lua/edge/renewal/renewer.lua, report).
    const nearExpiry = linesContaining('CertificatesNearExpiryLines', 'certificates near expiry', 'CertificatesNearExpiryReports');
    this.alarms.push(new cloudwatch.Alarm(this, 'CertificatesNearExpiry', {
      alarmDescription: `${props.environmentName}: a certificate is within 7 days (or a tenth of its lifetime) of expiry and not renewed: see the renewer's log`,
      metric: nearExpiry.metric({ statistic: 'Sum', period: Duration.minutes(5), dimensionsMap: { Environment: props.environmentName } }),
      threshold: 1, comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1, treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    }));
    // That alarm is silent when no renewer runs at all (no pod holds the lease, or the passes
    // stop). The renewer logs "edge: renewal report: <counts>" at the end of a pass, at most once
    // an hour (lua/edge/renewal/renewer.lua): no such line for 2 hours means no renewals. A
    // filter with dimensions can publish no default value, so the hours without a line are
    // missing data, treated as breaching.
    const reports = linesContaining('RenewalReportLines', 'edge: renewal report:', 'RenewalReports');
    this.alarms.push(new cloudwatch.Alarm(this, 'RenewerSilent', {
      alarmDescription: `${props.environmentName}: no renewal report from the renewer for 2 hours: certificates are not being renewed (see the runbook, "A certificate near expiry")`,
      metric: reports.metric({ statistic: 'Sum', period: Duration.hours(1), dimensionsMap: { Environment: props.environmentName } }),
      threshold: 1, comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      evaluationPeriods: 2, datapointsToAlarm: 2, treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    }));
    for (const alarm of this.alarms) props.alarmTopic.notify(alarm);

    const nlb = lb.loadBalancer.metrics;
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `edge-${props.environmentName}`,
      widgets: [
        [
          new cloudwatch.GraphWidget({ title: 'NLB flows', left: [nlb.newFlowCount(), nlb.activeFlowCount()] }),
          new cloudwatch.GraphWidget({ title: 'NLB bytes', left: [nlb.processedBytes()] }),
          new cloudwatch.GraphWidget({ title: 'Client resets', left: [nlb.tcpClientResetCount(), nlb.tcpTargetResetCount()] }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Edge pods (HTTPS target group)',
            left: [lb.https.targetGroup.metrics.healthyHostCount(), lb.https.targetGroup.metrics.unHealthyHostCount()],
          }),
          new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms }),
        ],
        ...(props.storeWidgets ? [props.storeWidgets] : []),
      ],
    });
  }
}

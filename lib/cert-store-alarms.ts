import { aws_cloudwatch as cloudwatch, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';

export interface CertStoreAlarmsProps {
  readonly environmentName: string;
  /** The replication group's ID; its nodes are "<id>-001", "<id>-002", ... */
  readonly replicationGroupId: string;
  readonly nodes: number;
  readonly alarmTopic: AlarmTopic;
  /** Memory used (percent) above which to alarm. @default 75 */
  readonly memoryThresholdPercent?: number;
  /** Engine CPU (percent) above which to alarm. @default 80 */
  readonly cpuThresholdPercent?: number;
}

/**
 * Alarms on the certificate store's nodes: memory filling up (certificates would be evicted:
 * every lost one is a new Let's Encrypt order), any eviction, and a busy engine.
 */
export class CertStoreAlarms extends Construct {
  readonly alarms: cloudwatch.Alarm[] = [];
  /** Dashboard widgets for the store. */
  readonly widgets: cloudwatch.IWidget[];

  constructor(scope: Construct, id: string, props: CertStoreAlarmsProps) {
    super(scope, id);
    const metric = (name: string, node: string, statistic: string) => new cloudwatch.Metric({
      namespace: 'AWS/ElastiCache', metricName: name, dimensionsMap: { CacheClusterId: node }, statistic, period: Duration.minutes(5),
    });
    const nodes = Array.from({ length: props.nodes }, (_, i) => `${props.replicationGroupId}-${String(i + 1).padStart(3, '0')}`);

    nodes.forEach((node, i) => {
      const n = i + 1;
      this.alarms.push(new cloudwatch.Alarm(this, `Memory${n}`, {
        alarmDescription: `${props.environmentName} certificate store node ${n}: memory above ${props.memoryThresholdPercent ?? 75} %`,
        metric: metric('DatabaseMemoryUsagePercentage', node, 'Maximum'),
        threshold: props.memoryThresholdPercent ?? 75, evaluationPeriods: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      }));
      this.alarms.push(new cloudwatch.Alarm(this, `Evictions${n}`, {
        alarmDescription: `${props.environmentName} certificate store node ${n}: keys evicted (certificates lost)`,
        metric: metric('Evictions', node, 'Sum'), threshold: 0, evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      }));
      this.alarms.push(new cloudwatch.Alarm(this, `Cpu${n}`, {
        alarmDescription: `${props.environmentName} certificate store node ${n}: engine CPU above ${props.cpuThresholdPercent ?? 80} %`,
        metric: metric('EngineCPUUtilization', node, 'Average'),
        threshold: props.cpuThresholdPercent ?? 80, evaluationPeriods: 3,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      }));
    });
    for (const alarm of this.alarms) props.alarmTopic.notify(alarm);

    this.widgets = [
      new cloudwatch.GraphWidget({ title: 'Store memory %', left: nodes.map((n) => metric('DatabaseMemoryUsagePercentage', n, 'Maximum')) }),
      new cloudwatch.GraphWidget({ title: 'Store evictions', left: nodes.map((n) => metric('Evictions', n, 'Sum')) }),
      new cloudwatch.GraphWidget({ title: 'Store engine CPU %', left: nodes.map((n) => metric('EngineCPUUtilization', n, 'Average')) }),
    ];
  }
}

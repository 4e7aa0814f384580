import { aws_cloudwatch as cloudwatch, aws_cloudwatch_actions as actions, aws_iam as iam, aws_kms as kms, aws_sns as sns, aws_sns_subscriptions as subscriptions } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface AlarmTopicProps {
  /** Email subscribed to the alarms. @default none */
  readonly email?: string;
}

/** Where every alarm of the edge goes: an SNS topic, encrypted, TLS-only, optionally mailed. */
export class AlarmTopic extends Construct {
  readonly topic: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmTopicProps = {}) {
    super(scope, id);
    const key = new kms.Key(this, 'Key', { description: 'Encrypts the edge alarm topic', enableKeyRotation: true });
    // CloudWatch must be able to publish to the encrypted topic.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey*');
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'Custom-domain edge alarms', masterKey: key, enforceSSL: true });
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
  }

  /** Sends an alarm's ALARM and OK notifications to the topic. */
  notify(alarm: cloudwatch.Alarm): void {
    alarm.addAlarmAction(new actions.SnsAction(this.topic));
    alarm.addOkAction(new actions.SnsAction(this.topic));
  }
}

import { aws_ec2 as ec2, CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { AlarmTopic } from './alarm-topic';
import { CertStore, REDIS_PORT } from './cert-store';
import { CertStoreAlarms } from './cert-store-alarms';
import { ResolvedEnvironmentConfig } from './config';

export interface CertStoreStackProps extends StackProps {
  readonly environment: ResolvedEnvironmentConfig;
  readonly vpc: ec2.IVpc;
  /** Security group of the cluster's nodes and pods: the only clients of the store. */
  readonly clientSecurityGroup: ec2.ISecurityGroup;
  readonly alarmTopic: AlarmTopic;
}

/**
 * The stateful part of an environment, in a stack of its own so the edge can be redeployed or
 * destroyed without touching it: termination protection on, every resource retained on delete.
 */
export class CertStoreStack extends Stack {
  readonly certStore: CertStore;
  readonly alarms: CertStoreAlarms;

  constructor(scope: Construct, id: string, props: CertStoreStackProps) {
    super(scope, id, { terminationProtection: true, ...props });
    const env = props.environment;

    this.certStore = new CertStore(this, 'CertStore', {
      vpc: props.vpc,
      clientSecurityGroup: props.clientSecurityGroup,
      environmentName: env.name,
      nodeType: env.redisNodeType,
      nodes: env.redisNodes,
    });

    this.alarms = new CertStoreAlarms(this, 'Alarms', {
      environmentName: env.name,
      replicationGroupId: this.certStore.replicationGroup.ref,
      nodes: env.redisNodes,
      alarmTopic: props.alarmTopic,
    });

    new CfnOutput(this, 'RedisEndpoint', {
      value: `${this.certStore.primaryEndpoint}:${REDIS_PORT}`,
      description: 'Primary endpoint of the certificate store (TLS + AUTH)',
    });
    new CfnOutput(this, 'RedisAuthSecretArn', {
      value: this.certStore.authToken.secretArn,
      description: 'Secrets Manager secret holding the AUTH token',
    });
  }
}

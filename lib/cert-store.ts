import {
  aws_ec2 as ec2, aws_elasticache as elasticache, aws_kms as kms, aws_logs as logs,
  aws_secretsmanager as secretsmanager, RemovalPolicy,
} from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { acknowledgeNag } from './nag';

/** The Redis port of the certificate store. */
export const REDIS_PORT = 6379;

export interface CertStoreProps {
  /** The VPC; the store goes in its isolated subnets. */
  readonly vpc: ec2.IVpc;
  /** The security group of the EKS cluster's nodes (and so of its pods): the only clients admitted. */
  readonly clientSecurityGroup: ec2.ISecurityGroup;
  /** The environment the store serves; names its resources. */
  readonly environmentName: string;
  /** ElastiCache node type. @default "cache.m7g.large" */
  readonly nodeType?: string;
  /** Nodes: a primary plus replicas in other AZs. At least 2 (Multi-AZ with automatic failover). @default 2 */
  readonly nodes?: number;
  /** Valkey engine version. @default "8.2" */
  readonly engineVersion?: string;
  /** Days of daily snapshots kept. @default 7 */
  readonly snapshotRetentionDays?: number;
}

/**
 * Where issued certificates (and the environment's ACME account) live: an ElastiCache Valkey
 * replication group, cluster mode disabled (lua-resty-auto-ssl's Redis client does not follow
 * MOVED), Multi-AZ with automatic failover, TLS required, an AUTH token generated in Secrets
 * Manager (the template holds only a dynamic reference), KMS encryption at rest, daily snapshots,
 * and a security group that admits only the cluster's nodes and pods on the Redis port.
 * Everything stateful is retained when the stack is deleted.
 */
export class CertStore extends Construct {
  readonly replicationGroup: elasticache.CfnReplicationGroup;
  /** Secrets Manager secret whose value is the AUTH token; the edge pods read it as REDIS_AUTH. */
  readonly authToken: secretsmanager.Secret;
  readonly securityGroup: ec2.SecurityGroup;
  readonly encryptionKey: kms.Key;

  constructor(scope: Construct, id: string, props: CertStoreProps) {
    super(scope, id);
    const nodes = props.nodes ?? 2;
    if (nodes < 2) throw new Error(`CertStore nodes must be at least 2 for Multi-AZ failover, got ${nodes}`);

    this.encryptionKey = new kms.Key(this, 'Key', {
      description: `Encrypts the ${props.environmentName} certificate store (ElastiCache data, snapshots, AUTH token)`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // ElastiCache AUTH tokens: 16-128 printable characters, no spaces, '/', '"' or '@'.
    this.authToken = new secretsmanager.Secret(this, 'AuthToken', {
      description: `AUTH token of the ${props.environmentName} certificate store`,
      encryptionKey: this.encryptionKey,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledgeNag(this.authToken, 'Rotating an ElastiCache AUTH token is a two-step change (ROTATE, then SET once every pod has the new token); docs/runbook.md describes it, a blind rotation Lambda would lock the edge out',
      'SMG4');

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `${props.environmentName} certificate store: Redis port from the EKS cluster only`,
      allowAllOutbound: false,
    });
    this.securityGroup.addIngressRule(
      props.clientSecurityGroup, ec2.Port.tcp(REDIS_PORT), 'Redis (TLS) from EKS nodes and pods');

    const subnetGroup = new elasticache.CfnSubnetGroup(this, 'SubnetGroup', {
      description: `${props.environmentName} certificate store`,
      subnetIds: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds,
    });

    const slowLog = new logs.LogGroup(this, 'SlowLog', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.replicationGroup = new elasticache.CfnReplicationGroup(this, 'ReplicationGroup', {
      replicationGroupDescription: `${props.environmentName} certificate store for lua-resty-auto-ssl`,
      engine: 'valkey',
      engineVersion: props.engineVersion ?? '8.2',
      cacheNodeType: props.nodeType ?? 'cache.m7g.large',
      clusterMode: 'disabled',
      numCacheClusters: nodes,
      multiAzEnabled: true,
      automaticFailoverEnabled: true,
      port: REDIS_PORT,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      // Resolved by CloudFormation at deploy time: the template holds only a dynamic reference.
      authToken: this.authToken.secretValue.unsafeUnwrap(),
      atRestEncryptionEnabled: true,
      kmsKeyId: this.encryptionKey.keyArn,
      cacheSubnetGroupName: subnetGroup.ref,
      securityGroupIds: [this.securityGroup.securityGroupId],
      snapshotRetentionLimit: props.snapshotRetentionDays ?? 7,
      snapshotWindow: '03:00-04:00',
      preferredMaintenanceWindow: 'sun:04:30-sun:05:30',
      autoMinorVersionUpgrade: true,
      logDeliveryConfigurations: [{
        destinationType: 'cloudwatch-logs',
        logFormat: 'json',
        logType: 'slow-log',
        destinationDetails: { cloudWatchLogsDetails: { logGroup: slowLog.logGroupName } },
      }],
    });
    this.replicationGroup.applyRemovalPolicy(RemovalPolicy.RETAIN);
  }

  /** Host name of the primary endpoint (TLS; its certificate is valid for this name). */
  get primaryEndpoint(): string {
    return this.replicationGroup.attrPrimaryEndPointAddress;
  }
}

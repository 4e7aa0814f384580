import { aws_eks_v2 as eks, aws_iam as iam, aws_kms as kms, aws_secretsmanager as secretsmanager, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';

export interface RedisAuthSyncProps {
  readonly cluster: eks.ICluster;
  readonly namespace: string;
  /** The Secrets Manager secret holding the AUTH token or password (the whole secret string). */
  readonly secret: secretsmanager.ISecret;
  /** The KMS key the secret is encrypted with, if not the AWS-managed one. */
  readonly secretKey?: kms.IKey;
  /** Name of the Kubernetes Secret to keep in sync; its key is "token". */
  readonly targetSecretName: string;
}

/**
 * Keeps a Kubernetes Secret in the environment's namespace in sync with a Secrets Manager
 * secret, through the External Secrets Operator: a service account whose IAM role (IRSA) may
 * read only this one secret, a namespaced SecretStore using it, and an ExternalSecret. The
 * value never appears in a template or manifest.
 */
export class RedisAuthSync extends Construct {
  readonly serviceAccount: eks.ServiceAccount;
  readonly manifest: eks.KubernetesManifest;

  constructor(scope: Construct, id: string, props: RedisAuthSyncProps) {
    super(scope, id);
    this.serviceAccount = new eks.ServiceAccount(this, 'ServiceAccount', {
      cluster: props.cluster,
      name: 'edge-secrets-reader',
      namespace: props.namespace,
    });
    // Granted on the role (not the secret's or key's resource policy): the store's stack must
    // not depend on the edge's, and the key's policy delegates to IAM.
    this.serviceAccount.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      resources: [props.secret.secretArn],
    }));
    if (props.secretKey) {
      const region = Stack.of(this).region;
      this.serviceAccount.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [props.secretKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${region}.amazonaws.com` } },
      }));
    }

    this.manifest = new eks.KubernetesManifest(this, 'Manifest', {
      cluster: props.cluster,
      overwrite: true,
      manifest: [
        {
          apiVersion: 'external-secrets.io/v1',
          kind: 'SecretStore',
          metadata: { name: 'aws-secrets-manager', namespace: props.namespace },
          spec: {
            provider: {
              aws: {
                service: 'SecretsManager',
                region: Stack.of(this).region,
                auth: { jwt: { serviceAccountRef: { name: this.serviceAccount.serviceAccountName } } },
              },
            },
          },
        },
        {
          apiVersion: 'external-secrets.io/v1',
          kind: 'ExternalSecret',
          metadata: { name: props.targetSecretName, namespace: props.namespace },
          spec: {
            refreshInterval: '1h',
            secretStoreRef: { kind: 'SecretStore', name: 'aws-secrets-manager' },
            target: { name: props.targetSecretName, creationPolicy: 'Owner' },
            data: [{ secretKey: 'token', remoteRef: { key: props.secret.secretArn } }],
          },
        },
      ],
    });
    this.manifest.node.addDependency(this.serviceAccount);
  }
}

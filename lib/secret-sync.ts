import { aws_eks_v2 as eks, aws_iam as iam, aws_kms as kms, aws_secretsmanager as secretsmanager, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';

/** Name of the namespaced SecretStore (External Secrets) every synced secret is read through. */
export const SECRET_STORE_NAME = 'aws-secrets-manager';
/** Name of the service account (IRSA) the SecretStore authenticates as. */
export const SECRETS_READER_NAME = 'edge-secrets-reader';
/** Key of the value in each Kubernetes Secret made. */
export const SYNCED_SECRET_KEY = 'token';

/** One Secrets Manager secret, and the Kubernetes Secret made from it. */
export interface SyncedSecret {
  /** Name of the Kubernetes Secret to keep in sync; its value is under the key "token". */
  readonly targetSecretName: string;
  /** The Secrets Manager secret holding the value (the whole secret string). */
  readonly secret: secretsmanager.ISecret;
  /** The KMS key the secret is encrypted with. @default the AWS-managed key (no kms:Decrypt grant needed) */
  readonly encryptionKey?: kms.IKey;
}

export interface SecretSyncProps {
  readonly cluster: eks.ICluster;
  readonly namespace: string;
  /** The secrets to sync: at least one, each Kubernetes Secret name once. */
  readonly secrets: SyncedSecret[];
}

/**
 * Keeps Kubernetes Secrets in the environment's namespace in sync with Secrets Manager secrets,
 * through the External Secrets Operator: one service account whose IAM role (IRSA) may read
 * exactly these secrets (and decrypt with their keys only through Secrets Manager), one
 * namespaced SecretStore using it, and an ExternalSecret per secret. One per namespace: the
 * SecretStore and service account names are fixed. No value appears in a template or manifest.
 */
export class SecretSync extends Construct {
  readonly serviceAccount: eks.ServiceAccount;
  readonly manifest: eks.KubernetesManifest;
  readonly namespace: string;

  constructor(scope: Construct, id: string, props: SecretSyncProps) {
    super(scope, id);
    this.namespace = props.namespace;
    if (props.secrets.length === 0) throw new Error(`SecretSync ${this.node.path}: no secrets to sync`);
    const names = props.secrets.map((s) => s.targetSecretName);
    const repeated = names.find((name, i) => names.indexOf(name) !== i);
    if (repeated) throw new Error(`SecretSync ${this.node.path}: Kubernetes Secret "${repeated}" is named twice`);
    const other = Stack.of(this).node.findAll()
      .find((c) => c !== this && c instanceof SecretSync && c.namespace === props.namespace) as SecretSync | undefined;
    if (other) {
      throw new Error(`SecretSync ${this.node.path}: ${other.node.path} already syncs namespace ${props.namespace}; `
        + `a second would collide with its SecretStore "${SECRET_STORE_NAME}" and service account "${SECRETS_READER_NAME}": give it all the secrets`);
    }

    this.serviceAccount = new eks.ServiceAccount(this, 'ServiceAccount', {
      cluster: props.cluster,
      name: SECRETS_READER_NAME,
      namespace: props.namespace,
    });
    // Granted on the role (not the secrets' or keys' resource policies): a store's stack must
    // not depend on the edge's, and the keys' policies delegate to IAM.
    this.serviceAccount.addToPrincipalPolicy(new iam.PolicyStatement({
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      resources: props.secrets.map((s) => s.secret.secretArn),
    }));
    const keyArns = [...new Set(props.secrets.flatMap((s) => (s.encryptionKey ? [s.encryptionKey.keyArn] : [])))];
    if (keyArns.length > 0) {
      const region = Stack.of(this).region;
      this.serviceAccount.addToPrincipalPolicy(new iam.PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: keyArns,
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
          metadata: { name: SECRET_STORE_NAME, namespace: props.namespace },
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
        ...props.secrets.map((s) => ({
          apiVersion: 'external-secrets.io/v1',
          kind: 'ExternalSecret',
          metadata: { name: s.targetSecretName, namespace: props.namespace },
          spec: {
            refreshInterval: '1h',
            secretStoreRef: { kind: 'SecretStore', name: SECRET_STORE_NAME },
            target: { name: s.targetSecretName, creationPolicy: 'Owner' },
            data: [{ secretKey: SYNCED_SECRET_KEY, remoteRef: { key: s.secret.secretArn } }],
          },
        })),
      ],
    });
    this.manifest.node.addDependency(this.serviceAccount);
  }
}

import { Chart, ChartProps } from 'cdk8s';
import { k8s } from 'cdk8s-plus-29';
import { Construct } from 'constructs';
import { selectorLabels, workloadLabels } from './labels';

/** Name of the in-cluster Redis Service (headless): the edge connects to redis.<namespace>.svc.cluster.local. */
export const REDIS_SERVICE_NAME = 'redis';

export interface RedisChartProps extends ChartProps {
  /** The environment, and so the namespace. */
  readonly environment: string;
  /** Name of the Secret (key "token") holding the password; synced from Secrets Manager. */
  readonly passwordSecretName: string;
  /** Redis-compatible server image. @default "valkey/valkey:8.1-alpine" */
  readonly image?: string;
  /** Size of the data volume. @default "2Gi" */
  readonly storage?: string;
  /** Redis port. @default 6379 */
  readonly port?: number;
  /** StorageClass of the data volume (an encrypted one). @default the cluster's default class */
  readonly storageClassName?: string;
}

/**
 * The certificate store of a dev namespace: one Valkey (Redis-compatible) pod with a persistent
 * volume and the append-only file on, a password, a headless Service, and a NetworkPolicy that
 * admits only the edge pods of the same environment.
 */
export class RedisChart extends Chart {
  constructor(scope: Construct, id: string, props: RedisChartProps) {
    super(scope, id, { ...props, namespace: props.environment, labels: workloadLabels('redis', props.environment) });
    const selector = selectorLabels('redis', props.environment);
    const port = props.port ?? 6379;
    const uid = 999; // the valkey image's user

    new k8s.KubeService(this, 'Service', {
      metadata: { name: REDIS_SERVICE_NAME },
      spec: { clusterIp: 'None', selector, ports: [{ name: 'redis', port, targetPort: k8s.IntOrString.fromNumber(port) }] },
    });

    new k8s.KubeStatefulSet(this, 'StatefulSet', {
      metadata: { name: 'redis' },
      spec: {
        serviceName: REDIS_SERVICE_NAME,
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: workloadLabels('redis', props.environment) },
          spec: {
            automountServiceAccountToken: false,
            securityContext: {
              runAsNonRoot: true, runAsUser: uid, runAsGroup: uid, fsGroup: uid,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [{
              name: 'valkey',
              image: props.image ?? 'valkey/valkey:8.1-alpine',
              // $(REDIS_PASSWORD) is expanded by the kubelet from the Secret; it is not in this manifest.
              args: ['--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', '/data', '--port', String(port),
                '--requirepass', '$(REDIS_PASSWORD)', '--protected-mode', 'no'],
              env: [{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: props.passwordSecretName, key: 'token' } } }],
              ports: [{ name: 'redis', containerPort: port }],
              resources: {
                requests: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('128Mi') },
                limits: { memory: k8s.Quantity.fromString('256Mi') },
              },
              readinessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(port) }, periodSeconds: 5 },
              livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromNumber(port) }, initialDelaySeconds: 10, periodSeconds: 10 },
              securityContext: {
                runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            }],
          },
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(props.storage ?? '2Gi') } },
          },
        }],
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' },
      },
    });

    new k8s.KubeNetworkPolicy(this, 'Policy', {
      metadata: { name: 'redis' },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{
          from: [{ podSelector: { matchLabels: selectorLabels('edge', props.environment) } }],
          ports: [{ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) }],
        }],
        egress: [],
      },
    });
  }
}

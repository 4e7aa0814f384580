import { createHash } from 'node:crypto';
import { Chart, ChartProps } from 'cdk8s';
import { k8s } from 'cdk8s-plus-29';
import { Construct } from 'constructs';
import { EDGE_SERVICE_NAME, HTTP_PORT, HTTPS_PORT } from './edge-ports';
import { EdgeSettings } from './edge-settings';
import { selectorLabels, workloadLabels } from './labels';
import { readLuaModules } from './lua-sources';
import { certCacheMb, renderNginxConf, sharedDictSizes } from './nginx-conf';
import { POD, podNginxOptions } from './pod-layout';

/** Name of the ConfigMap holding nginx.conf and our Lua modules. */
export const EDGE_CONFIG_NAME = 'edge-config';
/** Name of the in-cluster Service of the domains API (never bound to the NLB). */
export const EDGE_API_SERVICE_NAME = 'edge-api';

export interface EdgeChartProps extends ChartProps {
  readonly settings: EdgeSettings;
  /** Our Lua modules by path ("edge/setup.lua"). @default read from lua/ in this repository */
  readonly luaModules?: Record<string, string>;
}

/**
 * The edge workload of one environment: OpenResty with lua-resty-auto-ssl, its config, the
 * Service the NLB's TargetGroupBindings point at, the in-cluster Service of the domains API, and
 * what keeps it available and contained (PodDisruptionBudget, HorizontalPodAutoscaler,
 * NetworkPolicies). Uses the Kubernetes API types of cdk8s-plus-29 directly, so the manifest
 * says exactly what is written here.
 */
export class EdgeChart extends Chart {
  /** The rendered nginx.conf (also in the ConfigMap). */
  readonly nginxConf: string;

  constructor(scope: Construct, id: string, props: EdgeChartProps) {
    const s = props.settings;
    super(scope, id, { ...props, namespace: s.environment, labels: workloadLabels('edge', s.environment) });
    const selector = selectorLabels('edge', s.environment);

    this.nginxConf = renderNginxConf(podNginxOptions(s));
    const luaModules = props.luaModules ?? readLuaModules();
    // ConfigMap keys cannot hold "/": "edge/setup.lua" is stored as "edge.setup.lua" and mounted back.
    const luaKey = (modulePath: string) => modulePath.replace(/\//g, '.');
    const configData: Record<string, string> = { 'nginx.conf': this.nginxConf };
    for (const [modulePath, source] of Object.entries(luaModules)) configData[luaKey(modulePath)] = source;
    // A config change rolls the pods (nginx.conf is a subPath mount, never updated in place). The
    // DNS pre-check's targets are partly deploy-time values (the NLB's name and addresses: tokens
    // in a stack, whose text changes with unrelated code): they are hashed without those, and
    // roll the pods through an annotation of their own, which holds their deployed values.
    const hashed = s.dnsPrecheck
      ? { ...configData, 'nginx.conf': renderNginxConf(podNginxOptions({ ...s, dnsPrecheck: { names: [], addresses: [] } })) }
      : configData;
    const configHash = createHash('sha256').update(JSON.stringify(hashed)).digest('hex').slice(0, 16);
    const podAnnotations: Record<string, string> = { 'edge/config-hash': configHash };
    if (s.dnsPrecheck) podAnnotations['edge/dns-precheck'] = [...s.dnsPrecheck.names, ...s.dnsPrecheck.addresses].join(' ');

    new k8s.KubeConfigMap(this, 'Config', { metadata: { name: EDGE_CONFIG_NAME }, data: configData });

    new k8s.KubeServiceAccount(this, 'ServiceAccount', {
      metadata: { name: 'edge' },
      automountServiceAccountToken: false,
    });

    const dicts = sharedDictSizes(s.expectedDomains);
    // nginx and LuaJIT, the shared dicts, and each worker's parsed-certificate cache.
    const memoryRequestMi = 192 + dicts.autoSslMb + dicts.edgeCacheMb + POD.workerProcesses * certCacheMb(s.expectedDomains);

    new k8s.KubeDeployment(this, 'Deployment', {
      metadata: { name: 'edge' },
      spec: {
        // No replicas here: the HorizontalPodAutoscaler owns the count (from s.replicas up), and
        // a replicas field would reset it to the minimum on every deploy.
        revisionHistoryLimit: 5,
        selector: { matchLabels: selector },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: k8s.IntOrString.fromNumber(0), maxSurge: k8s.IntOrString.fromNumber(1) } },
        template: {
          metadata: {
            labels: { ...workloadLabels('edge', s.environment) },
            annotations: podAnnotations,
          },
          spec: {
            serviceAccountName: 'edge',
            automountServiceAccountToken: false,
            // Long enough for an in-flight issuance (a handshake waits for it) to finish.
            terminationGracePeriodSeconds: 60,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: POD.uid,
              runAsGroup: POD.gid,
              fsGroup: POD.gid,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            topologySpreadConstraints: [
              { maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: selector } },
              { maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selector } },
            ],
            containers: [{
              name: 'openresty',
              image: s.image,
              imagePullPolicy: 'IfNotPresent',
              // -e: the startup error log, before nginx.conf is read (the default path is read-only).
              command: [POD.nginxBinary, '-c', POD.nginxConf, '-e', 'stderr', '-g', 'daemon off;'],
              ports: [
                { name: 'http', containerPort: HTTP_PORT.container },
                { name: 'https', containerPort: HTTPS_PORT.container },
                { name: 'status', containerPort: POD.statusPort },
                { name: 'api', containerPort: POD.apiPort },
              ],
              env: [
                { name: 'REDIS_HOST', value: s.redis.host },
                { name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: s.redisAuthSecretName, key: 'token' } } },
                { name: POD.apiTokenEnv, valueFrom: { secretKeyRef: { name: s.domainsApi.tokenSecretName, key: 'token' } } },
              ],
              resources: {
                requests: { cpu: k8s.Quantity.fromString('500m'), memory: k8s.Quantity.fromString(`${memoryRequestMi}Mi`) },
                limits: { memory: k8s.Quantity.fromString(`${memoryRequestMi * 2}Mi`) },
              },
              // Ready once the origin's addresses are known (nothing could be proxied before);
              // alive as long as nginx answers.
              readinessProbe: {
                httpGet: { path: '/ready', port: k8s.IntOrString.fromNumber(POD.statusPort) },
                periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 2,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: k8s.IntOrString.fromNumber(POD.statusPort) },
                initialDelaySeconds: 10, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 3,
              },
              // Let the NLB stop sending new connections before nginx drains (the image's stop signal is SIGQUIT).
              lifecycle: { preStop: { sleep: { seconds: 15 } } },
              securityContext: {
                runAsNonRoot: true,
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                privileged: false,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'config', mountPath: POD.nginxConf, subPath: 'nginx.conf', readOnly: true },
                { name: 'config-lua', mountPath: POD.luaDir, readOnly: true },
                { name: 'tmp', mountPath: POD.runDir },
                { name: 'auto-ssl', mountPath: POD.autoSslDir },
              ],
            }],
            volumes: [
              { name: 'config', configMap: { name: EDGE_CONFIG_NAME, items: [{ key: 'nginx.conf', path: 'nginx.conf' }] } },
              {
                name: 'config-lua',
                configMap: { name: EDGE_CONFIG_NAME, items: Object.keys(luaModules).map((p) => ({ key: luaKey(p), path: p })) },
              },
              // nginx temp files and pid: small, in memory.
              { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('64Mi') } },
              // lua-resty-auto-ssl's working directory (its renewal job's scratch files; the store is Redis).
              { name: 'auto-ssl', emptyDir: { sizeLimit: k8s.Quantity.fromString('16Mi') } },
            ],
          },
        },
      },
    });

    new k8s.KubeService(this, 'Service', {
      metadata: { name: EDGE_SERVICE_NAME },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [
          { name: 'http', port: HTTP_PORT.service, targetPort: k8s.IntOrString.fromNumber(HTTP_PORT.container), protocol: 'TCP' },
          { name: 'https', port: HTTPS_PORT.service, targetPort: k8s.IntOrString.fromNumber(HTTPS_PORT.container), protocol: 'TCP' },
        ],
      },
    });

    // The domains API, for the product in the cluster: a Service of its own, so nothing that
    // binds the "edge" Service (the NLB's TargetGroupBindings) can reach it.
    new k8s.KubeService(this, 'ApiService', {
      metadata: { name: EDGE_API_SERVICE_NAME },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [{ name: 'api', port: POD.apiPort, targetPort: k8s.IntOrString.fromString('api'), protocol: 'TCP' }],
      },
    });

    new k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { name: 'edge' },
      spec: { maxUnavailable: k8s.IntOrString.fromNumber(1), selector: { matchLabels: selector } },
    });

    new k8s.KubeHorizontalPodAutoscalerV2(this, 'Autoscaler', {
      metadata: { name: 'edge' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'edge' },
        minReplicas: s.replicas,
        maxReplicas: s.maxReplicas,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } }],
        // Scale in slowly: a pod going away drops its in-memory certificate cache.
        behavior: { scaleDown: { stabilizationWindowSeconds: 600 } },
      },
    });

    this.addNetworkPolicies(s, selector);
  }

  private addNetworkPolicies(s: EdgeSettings, selector: Record<string, string>): void {
    const vpc = [{ ipBlock: { cidr: s.vpcCidr } }];
    const tcp = (port: number) => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) });

    new k8s.KubeNetworkPolicy(this, 'EdgeIngress', {
      metadata: { name: 'edge-ingress' },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress'],
        ingress: [
          // The NLB (pod IP targets) carries customers' traffic from VPC addresses.
          { from: vpc, ports: [tcp(HTTP_PORT.container), tcp(HTTPS_PORT.container)] },
          // Probes and metrics scrapers, from inside the VPC.
          { from: vpc, ports: [tcp(POD.statusPort)] },
          // Not the domains API port: edge-api-ingress admits its callers.
        ],
      },
    });

    // The domains API port, from the configured namespaces and address ranges only. With none,
    // no rule: nothing reaches it over the network (`kubectl port-forward` still does, through
    // the kubelet, which NetworkPolicies do not filter).
    const apiPeers = [
      ...s.domainsApi.allowedNamespaces.map((name) => ({ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': name } } })),
      ...s.domainsApi.allowedCidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ];
    new k8s.KubeNetworkPolicy(this, 'ApiIngress', {
      metadata: { name: 'edge-api-ingress' },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Ingress'],
        ingress: apiPeers.length > 0 ? [{ from: apiPeers, ports: [tcp(POD.apiPort)] }] : [],
      },
    });

    const redisEgress = s.redis.inCluster
      ? { to: [{ podSelector: { matchLabels: selectorLabels('redis', s.environment) } }], ports: [tcp(s.redis.port)] }
      : { to: vpc, ports: [tcp(s.redis.port)] };
    new k8s.KubeNetworkPolicy(this, 'EdgeEgress', {
      metadata: { name: 'edge-egress' },
      spec: {
        podSelector: { matchLabels: selector },
        policyTypes: ['Egress'],
        egress: [
          // Cluster DNS.
          { ports: [{ protocol: 'UDP', port: k8s.IntOrString.fromNumber(53) }, tcp(53)] },
          redisEgress,
          // ACME, the domain-check endpoint and the origin: HTTPS only.
          { ports: [tcp(443)] },
        ],
      },
    });
  }
}

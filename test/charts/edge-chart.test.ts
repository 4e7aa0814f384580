import * as path from 'node:path';
import { readLuaModules } from '../../charts/lua-sources';
import { LOAD_BALANCER_DNS_NAME, settingsFor, STATIC_IPS } from './fixtures';
import { edgeObjects, find } from './manifests';

const prodSettings = settingsFor('prod');
const prod = edgeObjects(prodSettings);
const dev = edgeObjects(settingsFor('dev-example'));
const podSpec = (objects: any[]) => find(objects, 'Deployment', 'edge').spec.template.spec;
const container = (objects: any[]) => podSpec(objects).containers[0];

test('every object is in the environment namespace, with stable names and the workload labels', () => {
  expect(prod.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
    'ConfigMap/edge-config', 'Deployment/edge', 'HorizontalPodAutoscaler/edge', 'NetworkPolicy/edge-api-ingress',
    'NetworkPolicy/edge-egress', 'NetworkPolicy/edge-ingress', 'PodDisruptionBudget/edge', 'Service/edge',
    'Service/edge-api', 'ServiceAccount/edge',
  ]);
  for (const o of prod) {
    expect(o.metadata.namespace).toBe('prod');
    expect(o.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'edge', 'app.kubernetes.io/instance': 'prod' });
  }
  for (const o of dev) expect(o.metadata.namespace).toBe('dev-example');
});

describe('Deployment', () => {
  test('image and the command that runs our nginx.conf; the autoscaler owns the replica count', () => {
    const deployment = find(prod, 'Deployment', 'edge');
    expect(deployment.spec.replicas).toBeUndefined();
    expect(find(prod, 'HorizontalPodAutoscaler', 'edge').spec.minReplicas).toBe(3);
    expect(find(dev, 'HorizontalPodAutoscaler', 'edge').spec.minReplicas).toBe(1);
    expect(container(prod).image).toBe(prodSettings.image);
    expect(container(prod).command).toEqual(['/usr/local/openresty/bin/openresty', '-c', '/etc/edge/nginx.conf', '-e', 'stderr', '-g', 'daemon off;']);
  });

  test('rolls without losing capacity, spreads over zones (hard) and nodes (soft)', () => {
    const deployment = find(prod, 'Deployment', 'edge');
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxUnavailable: 0, maxSurge: 1 });
    const spread = podSpec(prod).topologySpreadConstraints;
    expect(spread).toEqual([
      expect.objectContaining({ topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', maxSkew: 1 }),
      expect.objectContaining({ topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway' }),
    ]);
    expect(spread[0].labelSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
  });

  test('ports 8080/8443/8081 and the API\'s 8082, readiness and liveness on the status port', () => {
    expect(container(prod).ports.map((p: any) => [p.name, p.containerPort])).toEqual([['http', 8080], ['https', 8443], ['status', 8081], ['api', 8082]]);
    // Ready only once the origin's addresses are known; alive while nginx answers.
    expect(container(prod).readinessProbe.httpGet).toEqual({ path: '/ready', port: 8081 });
    expect(container(prod).livenessProbe.httpGet).toEqual({ path: '/healthz', port: 8081 });
    expect(container(prod).lifecycle.preStop.sleep.seconds).toBeGreaterThanOrEqual(10);
    expect(podSpec(prod).terminationGracePeriodSeconds).toBeGreaterThan(container(prod).lifecycle.preStop.sleep.seconds);
  });

  test('memory sized from the caches, CPU requested, no CPU limit', () => {
    const { requests, limits } = container(prod).resources;
    // nginx + shared dicts (auto_ssl 125m, edge_cache 10m) + 2 workers x the parsed-certificate
    // cache (12,500 entries x 16 KB = 196 MB).
    expect(requests).toEqual({ cpu: '500m', memory: `${192 + 125 + 10 + 2 * 196}Mi` });
    expect(limits).toEqual({ memory: `${2 * (192 + 125 + 10 + 2 * 196)}Mi` });
    expect(container(dev).resources.requests.memory).toBe(`${192 + 2 + 1 + 2 * 2}Mi`);
  });

  test('non-root, read-only root filesystem, no capabilities, seccomp RuntimeDefault, no service account token', () => {
    expect(podSpec(prod).securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, fsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container(prod).securityContext).toEqual({
      runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(podSpec(prod).automountServiceAccountToken).toBe(false);
    expect(find(prod, 'ServiceAccount', 'edge').automountServiceAccountToken).toBe(false);
  });

  test('writable emptyDirs for what nginx and auto-ssl write; config read-only', () => {
    const mounts = Object.fromEntries(container(prod).volumeMounts.map((m: any) => [m.mountPath, m]));
    expect(mounts['/tmp'].name).toBe('tmp');
    expect(mounts['/var/lib/edge/auto-ssl'].name).toBe('auto-ssl');
    expect(mounts['/etc/edge/nginx.conf']).toMatchObject({ subPath: 'nginx.conf', readOnly: true });
    expect(mounts['/etc/edge/lua']).toMatchObject({ readOnly: true });
    const volumes = Object.fromEntries(podSpec(prod).volumes.map((v: any) => [v.name, v]));
    expect(volumes.tmp.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '64Mi' });
    expect(volumes['auto-ssl'].emptyDir.sizeLimit).toBe('16Mi');
    // nginx creates no parent directories: its pid file and temp paths sit right in a mount
    // (an emptyDir over /tmp hides whatever the image has beneath it).
    const conf = find(prod, 'ConfigMap', 'edge-config').data['nginx.conf'] as string;
    const written = [...conf.matchAll(/^\s*(?:pid|\w+_temp_path) (\S+?);$/gm)].map((m) => path.posix.dirname(m[1]));
    expect(written.length).toBeGreaterThanOrEqual(6);
    for (const dir of written) expect(Object.keys(mounts)).toContain(dir);
  });

  test('Redis host from the settings, the AUTH token and the API token from the synced Secrets, no secret value', () => {
    expect(container(prod).env).toEqual([
      { name: 'REDIS_HOST', value: 'master.prod-store.abc123.euw1.cache.amazonaws.com' },
      { name: 'REDIS_AUTH', valueFrom: { secretKeyRef: { name: 'edge-redis-auth', key: 'token' } } },
      { name: 'EDGE_API_TOKEN', valueFrom: { secretKeyRef: { name: 'edge-domains-api', key: 'token' } } },
    ]);
    expect(container(dev).env[2]).toEqual({ name: 'EDGE_API_TOKEN', valueFrom: { secretKeyRef: { name: 'edge-domains-api', key: 'token' } } });
    expect(prod.filter((o) => o.kind === 'Secret')).toEqual([]);
    // nginx passes on only the variables it is told of: the API token's among them.
    const conf = find(prod, 'ConfigMap', 'edge-config').data['nginx.conf'] as string;
    expect(conf).toMatch(/^env EDGE_API_TOKEN;$/m);
    expect(conf).toContain('token_env = "EDGE_API_TOKEN"');
  });

  test('every Lua module is mounted at its module path', () => {
    const lua = podSpec(prod).volumes.find((v: any) => v.name === 'config-lua').configMap.items;
    const modules = Object.keys(readLuaModules());
    expect(modules).toContain('edge/setup.lua');
    expect(lua.map((i: any) => i.path)).toEqual(modules);
    for (const item of lua) expect(item.key).toBe(item.path.replace(/\//g, '.'));
  });
});

describe('ConfigMap', () => {
  test('holds nginx.conf and our Lua, and a change rolls the pods', () => {
    const config = find(prod, 'ConfigMap', 'edge-config');
    expect(config.data['nginx.conf']).toContain('ssl_certificate_by_lua_block');
    expect(config.data['edge.setup.lua']).toContain('function _M.init(conf)');
    const hash = find(prod, 'Deployment', 'edge').spec.template.metadata.annotations['edge/config-hash'];
    const changed = edgeObjects(prodSettings, { 'edge/setup.lua': '-- changed' });
    expect(find(changed, 'Deployment', 'edge').spec.template.metadata.annotations['edge/config-hash']).not.toBe(hash);
  });
});

test('Service "edge": ports 80 -> 8080 and 443 -> 8443, selecting the edge pods (what the TargetGroupBindings name)', () => {
  const service = find(prod, 'Service', 'edge');
  expect(service.spec.ports.map((p: any) => [p.name, p.port, p.targetPort])).toEqual([['http', 80, 8080], ['https', 443, 8443]]);
  expect(service.spec.selector).toEqual({ 'app.kubernetes.io/name': 'edge', 'app.kubernetes.io/instance': 'prod' });
});

test('Service "edge-api": ClusterIP 8082 -> the "api" port of the edge pods, for the product in the cluster; not on the "edge" Service', () => {
  const service = find(prod, 'Service', 'edge-api');
  expect(service.spec).toEqual({
    type: 'ClusterIP',
    selector: { 'app.kubernetes.io/name': 'edge', 'app.kubernetes.io/instance': 'prod' },
    ports: [{ name: 'api', port: 8082, targetPort: 'api', protocol: 'TCP' }],
  });
  const named = container(prod).ports.find((p: any) => p.name === service.spec.ports[0].targetPort);
  expect(named.containerPort).toBe(8082);
  const edge = find(prod, 'Service', 'edge');
  expect(edge.spec.ports.flatMap((p: any) => [p.port, p.targetPort])).not.toContain(8082);
  expect(edge.spec.ports.map((p: any) => p.name)).not.toContain('api');
});

test('PodDisruptionBudget: at most one edge pod disrupted at a time', () => {
  expect(find(prod, 'PodDisruptionBudget', 'edge').spec).toEqual({
    maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/name': 'edge', 'app.kubernetes.io/instance': 'prod' } },
  });
});

test('HorizontalPodAutoscaler: from replicas to maxReplicas on CPU, scaling in slowly', () => {
  const hpa = find(prod, 'HorizontalPodAutoscaler', 'edge');
  expect(hpa.apiVersion).toBe('autoscaling/v2');
  expect(hpa.spec).toMatchObject({ minReplicas: 3, maxReplicas: 9, scaleTargetRef: { kind: 'Deployment', name: 'edge' } });
  expect(hpa.spec.metrics[0].resource).toEqual({ name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } });
  expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBeGreaterThanOrEqual(300);
});

describe('NetworkPolicies', () => {
  test('ingress: only 8080/8443 (and the status port) from the VPC', () => {
    const policy = find(prod, 'NetworkPolicy', 'edge-ingress');
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const rules = policy.spec.ingress.map((r: any) => [r.from, r.ports.map((p: any) => p.port)]);
    expect(rules).toEqual([
      [[{ ipBlock: { cidr: '10.40.0.0/16' } }], [8080, 8443]],
      [[{ ipBlock: { cidr: '10.40.0.0/16' } }], [8081]],
    ]);
  });

  test('egress: DNS, Redis, HTTPS only', () => {
    const egress = find(prod, 'NetworkPolicy', 'edge-egress').spec.egress;
    expect(egress.map((r: any) => r.ports.map((p: any) => `${p.protocol}/${p.port}`))).toEqual([
      ['UDP/53', 'TCP/53'], ['TCP/6379'], ['TCP/443'],
    ]);
    expect(egress[1].to).toEqual([{ ipBlock: { cidr: '10.40.0.0/16' } }]);
  });

  test('ingress: no rule of edge-ingress admits the API port, or any port (a rule without ports would)', () => {
    for (const objects of [prod, dev]) {
      for (const rule of find(objects, 'NetworkPolicy', 'edge-ingress').spec.ingress) {
        expect(rule.ports.length).toBeGreaterThan(0);
        expect(rule.ports.map((p: any) => p.port)).not.toContain(8082);
      }
    }
  });

  test('API ingress by default: the edge pods, no rule, so nothing reaches 8082 over the network', () => {
    const policy = find(prod, 'NetworkPolicy', 'edge-api-ingress');
    expect(policy.spec.podSelector.matchLabels).toEqual(find(prod, 'Deployment', 'edge').spec.selector.matchLabels);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    expect(policy.spec.ingress).toEqual([]);
    expect(find(dev, 'NetworkPolicy', 'edge-api-ingress').spec.ingress).toEqual([]);
  });

  test('API ingress: 8082 only, from the configured namespaces and CIDRs', () => {
    const objects = edgeObjects(settingsFor('prod', (r) => {
      r.environments[0].domainsApi = { allowedNamespaces: ['product', 'product-jobs'], allowedCidrs: ['10.40.128.0/20'] };
    }));
    expect(find(objects, 'NetworkPolicy', 'edge-api-ingress').spec.ingress).toEqual([{
      from: [
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'product' } } },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'product-jobs' } } },
        { ipBlock: { cidr: '10.40.128.0/20' } },
      ],
      ports: [{ protocol: 'TCP', port: 8082 }],
    }]);
    // The other policies are as they were.
    expect(find(objects, 'NetworkPolicy', 'edge-ingress')).toEqual(find(prod, 'NetworkPolicy', 'edge-ingress'));
  });

  test('dev: Redis egress only to the namespace\'s Redis pods', () => {
    const egress = find(dev, 'NetworkPolicy', 'edge-egress').spec.egress;
    expect(egress[1].to).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/instance': 'dev-example' } } }]);
  });
});

describe('DNS pre-check', () => {
  const initTable = (objects: any[]) => {
    const conf = find(objects, 'ConfigMap', 'edge-config').data['nginx.conf'] as string;
    return conf.slice(conf.indexOf('require("edge.setup").init('), conf.indexOf('init_worker_by_lua_block'));
  };

  test('prod: our edge hostnames and the NLB\'s name, and its Elastic IPs, asked of the cluster DNS', () => {
    expect(prodSettings.dnsPrecheck).toEqual({ names: ['edge.example.com', LOAD_BALANCER_DNS_NAME], addresses: STATIC_IPS });
    const table = initTable(prod);
    expect(table).toContain('resolver = "172.20.0.10:53"');
    for (const value of [LOAD_BALANCER_DNS_NAME, ...STATIC_IPS]) expect(table).toContain(`"${value}"`);
  });

  test('dev (no static IPs): names only', () => {
    expect(settingsFor('dev-example').dnsPrecheck).toEqual({ names: ['edge-dev.example.com', LOAD_BALANCER_DNS_NAME], addresses: [] });
  });

  test('dnsPrecheck: false leaves it out', () => {
    const settings = settingsFor('prod', (r) => { r.environments[0].dnsPrecheck = false; });
    expect(settings.dnsPrecheck).toBeUndefined();
    const objects = edgeObjects(settings);
    expect(initTable(objects)).not.toContain('dns_precheck');
    expect(find(objects, 'Deployment', 'edge').spec.template.metadata.annotations['edge/dns-precheck']).toBeUndefined();
  });

  test('the NLB\'s name and addresses (deploy-time) roll the pods through their own annotation, not the config hash', () => {
    const annotations = (objects: any[]) => find(objects, 'Deployment', 'edge').spec.template.metadata.annotations;
    expect(annotations(prod)['edge/dns-precheck']).toBe(['edge.example.com', LOAD_BALANCER_DNS_NAME, ...STATIC_IPS].join(' '));
    const moved = edgeObjects({ ...prodSettings, dnsPrecheck: { names: ['edge.example.com', 'other.elb.amazonaws.com'], addresses: ['192.0.2.9'] } });
    expect(annotations(moved)['edge/config-hash']).toBe(annotations(prod)['edge/config-hash']);
    expect(annotations(moved)['edge/dns-precheck']).toBe('edge.example.com other.elb.amazonaws.com 192.0.2.9');
    // A config change (our names are also never issued for) changes the hash.
    const renamed = edgeObjects(settingsFor('prod', (r) => { r.environments[0].edgeHostnames = ['cdn.example.com']; }));
    expect(annotations(renamed)['edge/config-hash']).not.toBe(annotations(prod)['edge/config-hash']);
  });
});

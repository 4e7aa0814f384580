import { find, redisObjects } from './manifests';

const objects = redisObjects();
const statefulSet = find(objects, 'StatefulSet', 'redis');
const pod = statefulSet.spec.template.spec;
const container = pod.containers[0];

test('a headless Service "redis" and a StatefulSet in the environment namespace', () => {
  expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(['NetworkPolicy/redis', 'Service/redis', 'StatefulSet/redis']);
  for (const o of objects) expect(o.metadata.namespace).toBe('dev-example');
  expect(find(objects, 'Service', 'redis').spec.clusterIP).toBe('None');
  expect(statefulSet.spec.serviceName).toBe('redis');
});

test('persistent: append-only file on a PVC of the encrypted storage class', () => {
  expect(container.args).toEqual(expect.arrayContaining(['--appendonly', 'yes', '--dir', '/data']));
  expect(container.volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
  expect(statefulSet.spec.volumeClaimTemplates[0].spec).toMatchObject({
    accessModes: ['ReadWriteOnce'], storageClassName: 'encrypted-gp3', resources: { requests: { storage: '2Gi' } },
  });
});

test('a password from the Secret, never its value', () => {
  expect(container.env).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'edge-redis-auth', key: 'token' } } }]);
  expect(container.args).toEqual(expect.arrayContaining(['--requirepass', '$(REDIS_PASSWORD)']));
});

test('non-root, read-only root filesystem, no capabilities', () => {
  expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 999, fsGroup: 999, seccompProfile: { type: 'RuntimeDefault' } });
  expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
});

test('NetworkPolicy: only the same environment\'s edge pods reach Redis, Redis reaches nothing', () => {
  const policy = find(objects, 'NetworkPolicy', 'redis');
  expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
  expect(policy.spec.ingress).toEqual([{
    from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'edge', 'app.kubernetes.io/instance': 'dev-example' } } }],
    ports: [{ protocol: 'TCP', port: 6379 }],
  }]);
  expect(policy.spec.egress).toEqual([]);
});

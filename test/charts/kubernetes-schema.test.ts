import { Namespace, ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { parseAllDocuments } from 'yaml';
import { renderAll } from '../../lib/rendered';
import { defaultRawConfig } from '../helpers';

/** The Kubernetes API models (OpenAPI schemas, via kubernetes-models) of the kinds we render. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const staging = defaultRawConfig();
staging.environments.push({ ...staging.environments[0], name: 'staging' });
const files = renderAll(staging);
const manifests = Object.entries(files)
  .filter(([file]) => file.endsWith('manifests.yaml'))
  .flatMap(([file, text]) => parseAllDocuments(text).map((doc) => ({ file, object: doc.toJS() })));

test('every environment renders manifests', () => {
  expect(Object.keys(files).sort()).toEqual([
    'rendered/dev-example/manifests.yaml', 'rendered/dev-example/nginx.conf',
    'rendered/prod/manifests.yaml', 'rendered/prod/nginx.conf',
    'rendered/staging/manifests.yaml', 'rendered/staging/nginx.conf',
  ]);
  expect(manifests.length).toBeGreaterThan(20);
});

test.each(manifests.map((m) => [`${m.file}: ${m.object.kind}/${m.object.metadata?.name}`, m.object]))(
  '%s is valid against the Kubernetes schema of its kind', (_name, object) => {
    const model = MODELS[`${object.apiVersion}/${object.kind}`];
    expect(model).toBeDefined();
    expect(() => new model(object).validate()).not.toThrow();
  });

test('the schema check rejects a broken manifest (it is not vacuous)', () => {
  const deployment = manifests.find((m) => m.object.kind === 'Deployment')!.object;
  const broken = structuredClone(deployment);
  broken.spec.replicas = 'three';
  delete broken.spec.selector;
  expect(() => new Deployment(broken).validate()).toThrow();
});

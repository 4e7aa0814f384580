import { Testing } from 'cdk8s';
import { EdgeChart } from '../../charts/edge-chart';
import { EdgeSettings } from '../../charts/edge-settings';
import { RedisChart } from '../../charts/redis-chart';

/** The edge chart's objects for settings. */
export function edgeObjects(settings: EdgeSettings, luaModules?: Record<string, string>): any[] {
  return Testing.synth(new EdgeChart(Testing.app(), 'edge', { settings, luaModules }));
}

export function redisObjects(): any[] {
  return Testing.synth(new RedisChart(Testing.app(), 'redis', {
    environment: 'dev-example', passwordSecretName: 'edge-redis-auth', storageClassName: 'encrypted-gp3',
  }));
}

export function find(objects: any[], kind: string, name?: string): any {
  const found = objects.filter((o) => o.kind === kind && (!name || o.metadata.name === name));
  expect(found).toHaveLength(1);
  return found[0];
}

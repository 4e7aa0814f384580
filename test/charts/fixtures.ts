import { resolveConfig } from '../../lib/config';
import { workloadSettings } from '../../lib/workload-settings';
import { EdgeSettings } from '../../charts/edge-settings';
import { defaultRawConfig } from '../helpers';

/** The NLB's name and Elastic IPs in the fixtures (deploy-time values in a stack). */
export const LOAD_BALANCER_DNS_NAME = 'Edge-prod-LoadB-0123456789.elb.eu-west-1.amazonaws.com';
export const STATIC_IPS = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];

/** The settings the stacks give the edge chart, for an environment of the default config. */
export function settingsFor(envName: string, edit?: (raw: any) => void): EdgeSettings {
  const raw = defaultRawConfig();
  edit?.(raw);
  const config = resolveConfig(raw);
  const env = config.environments.find((e) => e.name === envName)!;
  return workloadSettings(config.platform, env, {
    image: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/edge:test',
    elastiCacheHost: env.redisMode === 'elasticache' ? 'master.prod-store.abc123.euw1.cache.amazonaws.com' : undefined,
    loadBalancer: {
      dnsName: LOAD_BALANCER_DNS_NAME,
      staticIps: env.staticIps ? STATIC_IPS : [],
    },
  });
}

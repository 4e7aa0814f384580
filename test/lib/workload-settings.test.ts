import { resolveConfig } from '../../lib/config';
import { DOMAINS_API_SECRET_NAME, workloadSettings } from '../../lib/workload-settings';
import { defaultRawConfig } from '../helpers';

const NLB = 'Edge-prod-LoadB-0123456789.elb.eu-west-1.amazonaws.com';
const EIPS = ['198.51.100.1', '198.51.100.2', '198.51.100.3'];

function settings(envName: string, edit?: (raw: any) => void, staticIps: string[] = EIPS) {
  const raw = defaultRawConfig();
  edit?.(raw);
  const config = resolveConfig(raw);
  const env = config.environments.find((e) => e.name === envName)!;
  return workloadSettings(config.platform, env, {
    image: 'edge:test',
    elastiCacheHost: env.redisMode === 'elasticache' ? 'store.example' : undefined,
    loadBalancer: { dnsName: NLB, staticIps },
  });
}

describe('domains API', () => {
  test('the token Secret edge-domains-api; no peer by default', () => {
    expect(DOMAINS_API_SECRET_NAME).toBe('edge-domains-api');
    expect(settings('prod').domainsApi).toEqual({ tokenSecretName: 'edge-domains-api', allowedNamespaces: [], allowedCidrs: [] });
  });

  test('the configured peers', () => {
    const s = settings('prod', (r) => { r.environments[0].domainsApi = { allowedNamespaces: ['product'], allowedCidrs: ['10.40.128.0/20'] }; });
    expect(s.domainsApi).toEqual({ tokenSecretName: 'edge-domains-api', allowedNamespaces: ['product'], allowedCidrs: ['10.40.128.0/20'] });
  });
});

describe('DNS pre-check targets', () => {
  test('prod: the edge hostnames and the NLB\'s DNS name; its Elastic IPs', () => {
    expect(settings('prod').dnsPrecheck).toEqual({ names: ['edge.example.com', NLB], addresses: EIPS });
  });

  test('without static IPs: no addresses, whatever is given', () => {
    expect(settings('dev-example').dnsPrecheck).toEqual({ names: ['edge-dev.example.com', NLB], addresses: [] });
    expect(settings('prod', (r) => { r.environments[0].staticIps = false; }).dnsPrecheck?.addresses).toEqual([]);
  });

  test('no edge hostnames: the NLB\'s name alone', () => {
    expect(settings('prod', (r) => { r.environments[0].edgeHostnames = []; }).dnsPrecheck?.names).toEqual([NLB]);
  });

  test('dnsPrecheck: false: none', () => {
    expect(settings('prod', (r) => { r.environments[0].dnsPrecheck = false; }).dnsPrecheck).toBeUndefined();
    // Then static IPs need not be given.
    expect(settings('prod', (r) => { r.environments[0].dnsPrecheck = false; }, []).dnsPrecheck).toBeUndefined();
  });

  test('static IPs on but none given: an error naming the environment', () => {
    expect(() => settings('prod', undefined, [])).toThrow('environment prod has static IPs but none was given for the DNS pre-check');
  });
});

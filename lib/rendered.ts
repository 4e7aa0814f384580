import { resolveConfig } from './config';
import { workloadCharts, workloadSettings } from './workload-settings';

/** What stands for a value known only at deploy time in the rendered files. */
export const PLACEHOLDERS = {
  image: '<deploy time: the edge image built from image/Dockerfile>',
  elastiCacheHost: (env: string) => `<deploy time: EdgeCertStore-${env} primary endpoint>`,
  loadBalancerDnsName: (env: string) => `<deploy time: Edge-${env} NLB DNS name>`,
  staticIp: (env: string, zone: string) => `<deploy time: Edge-${env} Elastic IP in ${zone}>`,
};

/**
 * Every environment's charts and nginx.conf, as the stacks build them but with placeholders
 * for deploy-time values: file path (relative to the repository) -> content.
 */
export function renderAll(rawConfig: unknown): Record<string, string> {
  const config = resolveConfig(rawConfig);
  const files: Record<string, string> = {};
  for (const env of config.environments) {
    const settings = workloadSettings(config.platform, env, {
      image: PLACEHOLDERS.image,
      elastiCacheHost: env.redisMode === 'elasticache' ? PLACEHOLDERS.elastiCacheHost(env.name) : undefined,
      // The NLB has an Elastic IP in each zone's public subnet.
      loadBalancer: {
        dnsName: PLACEHOLDERS.loadBalancerDnsName(env.name),
        staticIps: env.staticIps ? config.platform.availabilityZones.map((zone) => PLACEHOLDERS.staticIp(env.name, zone)) : [],
      },
    });
    const { app, edge } = workloadCharts(settings);
    const header = `# ${env.name}: the workload manifests the Edge-${env.name} stack applies. Rendered by \`npm run render\`; do not edit.\n`;
    files[`rendered/${env.name}/manifests.yaml`] = header + app.synthYaml();
    files[`rendered/${env.name}/nginx.conf`] = edge.nginxConf;
  }
  return files;
}

/**
 * Prints the Docker platforms the edge image is deployed for, comma-separated: the CPU
 * architecture of cdk.json's `edge.platform.nodeInstanceTypes`, as lib/config.ts resolves it
 * (Graviton families such as m7g, c7g, r7g, t4g give arm64), the same value the Edge stack
 * gives its DockerImageAsset as `platform`.
 *
 *   npx tsx .github/scripts/image-platforms.ts                        linux/amd64 (or linux/arm64)
 *   npx tsx .github/scripts/image-platforms.ts --also linux/amd64     and the runner's own, for tests
 *   npx tsx .github/scripts/image-platforms.ts --cdk-json other.json  another cdk.json
 *
 * Used by .github/workflows: the pull-request job builds (and runs) the image for these, the
 * deploy job sets up QEMU when one is not the runner's. Exits 1 naming the field on a bad config.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConfigError, resolveConfig } from '../../lib/config';

export type ImagePlatform = 'linux/amd64' | 'linux/arm64';

const PLATFORM_OF_ARCHITECTURE: Record<'x86_64' | 'arm64', ImagePlatform> = {
  x86_64: 'linux/amd64',
  arm64: 'linux/arm64',
};

/** The platforms of the deployed image for a raw `edge` config (one: the config allows one architecture). */
export function imagePlatforms(rawEdgeConfig: unknown): ImagePlatform[] {
  return [PLATFORM_OF_ARCHITECTURE[resolveConfig(rawEdgeConfig).platform.nodeArchitecture]];
}

/** The platforms joined for `--platform`, with `also` added (amd64 first), no repeats. */
export function platformList(platforms: readonly string[], also: readonly string[] = []): string {
  const all = [...new Set([...platforms, ...also])];
  const rank = (p: string) => (p === 'linux/amd64' ? 0 : 1);
  return all.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).join(',');
}

export function main(argv: string[]): string {
  let cdkJson = path.join(__dirname, '..', '..', 'cdk.json');
  const also: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const value = argv[i + 1];
    if (argv[i] === '--cdk-json' && value) cdkJson = path.resolve(argv[++i]);
    else if (argv[i] === '--also' && value && /^linux\/(amd64|arm64)$/.test(value)) also.push(argv[++i]);
    else throw new Error(`usage: image-platforms.ts [--cdk-json <file>] [--also linux/amd64|linux/arm64]... (got "${argv[i]}")`);
  }
  const context = JSON.parse(readFileSync(cdkJson, 'utf8')).context ?? {};
  return platformList(imagePlatforms(context.edge), also);
}

if (require.main === module) {
  try {
    process.stdout.write(`${main(process.argv.slice(2))}\n`);
  } catch (error) {
    process.stderr.write(`${error instanceof ConfigError ? error.message : (error as Error).message}\n`);
    process.exit(1);
  }
}

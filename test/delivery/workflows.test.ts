import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parse, parseAllDocuments } from 'yaml';
import { imagePlatforms, platformList } from '../../.github/scripts/image-platforms';
import { POD } from '../../charts/pod-layout';
import { buildTestApp, cdkJsonContext, defaultRawConfig } from '../helpers';

// GitHub Actions cannot run here: the workflows are checked with GitHub's own workflow parser
// (its schema), then for what they must do.
const dir = path.join(__dirname, '..', '..', '.github', 'workflows');
const load = (name: string) => readFileSync(path.join(dir, name), 'utf8');

async function schemaErrors(name: string): Promise<string[]> {
  const result = parseWorkflow({ name, content: load(name) }, new NoOperationTraceWriter());
  const template = await convertWorkflowTemplate(result.context, result.value!);
  return [
    ...result.context.errors.getErrors().map((e) => e.message),
    ...(template.errors ?? []).map((e) => e.Message),
  ];
}

describe.each(['pull-request.yml', 'deploy.yml'])('%s', (name) => {
  test('is a valid workflow (GitHub\'s workflow parser)', async () => {
    expect(await schemaErrors(name)).toEqual([]);
  });

  test('gets AWS credentials only through OIDC (no keys), on Node 20', () => {
    const text = load(name);
    expect(text).not.toMatch(/aws-access-key-id|aws-secret-access-key|AWS_SECRET/i);
    const workflow = parse(text);
    expect(workflow.permissions['id-token']).toBe('write');
    expect(workflow.permissions.contents).toBe('read');
    const steps = Object.values(workflow.jobs).flatMap((job: any) => job.steps);
    expect(steps.find((s: any) => s.uses?.startsWith('actions/setup-node')).with['node-version']).toBe(20);
  });
});

test('the parser rejects a broken workflow (the check is not vacuous)', async () => {
  const content = 'on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n';
  const result = parseWorkflow({ name: 'broken.yml', content }, new NoOperationTraceWriter());
  expect(result.context.errors.getErrors().map((e) => e.message).join('\n')).toMatch(/stepz/);
});

test('pull requests: test, synth, render check, read-only cdk diff and a review comment', () => {
  const workflow = parse(load('pull-request.yml'));
  expect(Object.keys(workflow.on)).toEqual(['pull_request']);
  const steps = workflow.jobs.check.steps;
  const runs = steps.map((s: any) => s.run).filter(Boolean).join('\n');
  for (const command of ['npm ci', 'npm test', 'npm run synth', 'npm run render -- --check', 'npx cdk diff']) expect(runs).toContain(command);
  const credentials = steps.find((s: any) => s.uses?.startsWith('aws-actions/configure-aws-credentials'));
  expect(credentials.with['role-to-assume']).toBe('${{ vars.AWS_DIFF_ROLE_ARN }}');
  expect(runs).not.toMatch(/cdk deploy/);
  expect(steps.some((s: any) => s.uses?.startsWith('actions/github-script'))).toBe(true);
  expect(workflow.permissions['pull-requests']).toBe('write');
});

test('main: deploys prod through the protected environment with the deploy role, never a dev namespace', () => {
  const workflow = parse(load('deploy.yml'));
  expect(workflow.on.push.branches).toEqual(['main']);
  const job = workflow.jobs.deploy;
  expect(job.environment).toBe('production');
  expect(workflow.concurrency['cancel-in-progress']).toBe(false);
  const credentials = job.steps.find((s: any) => s.uses?.startsWith('aws-actions/configure-aws-credentials'));
  expect(credentials.with['role-to-assume']).toBe('${{ vars.AWS_DEPLOY_ROLE_ARN }}');
  const deploy = job.steps.find((s: any) => s.run?.includes('cdk deploy')).run;
  expect(deploy).toContain('Edge-prod');
  expect(deploy).not.toMatch(/--all|dev-/);
  expect(job.steps.findIndex((s: any) => s.run === 'npm test')).toBeLessThan(job.steps.findIndex((s: any) => s.run?.includes('cdk deploy')));
});

// --- The image: built and run before a deploy, for the nodes' architecture ---------------------

/** Evaluates a step's `if:` as GitHub does, with the given step outputs. */
function condition(expression: string, outputs: Record<string, Record<string, string>>): boolean {
  const steps = new data.Dictionary(...Object.entries(outputs).map(([id, values]) => ({
    key: id,
    value: new data.Dictionary({
      key: 'outputs',
      value: new data.Dictionary(...Object.entries(values).map(([key, value]) => ({ key, value: new data.StringData(value) }))),
    }),
  })));
  const parsed = new Parser(new Lexer(expression.replace(/^\$\{\{(.*)\}\}$/s, '$1')).lex().tokens, ['steps'], []).parse();
  return new Evaluator(parsed, new data.Dictionary({ key: 'steps', value: steps })).evaluate().coerceString() === 'true';
}

const gravitonConfig = () => {
  const raw = defaultRawConfig();
  raw.platform.nodeInstanceTypes = ['m7g.large', 'c7g.xlarge'];
  return raw;
};
const scriptPath = path.join(__dirname, '..', '..', '.github', 'scripts', 'image-platforms.ts');
const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
const stepIndex = (steps: any[], find: (s: any) => boolean) => {
  const i = steps.findIndex(find);
  expect(i).toBeGreaterThanOrEqual(0);
  return i;
};
const usesAction = (name: string) => (s: any) => typeof s.uses === 'string' && s.uses.startsWith(`${name}@`);

describe('image platforms script (.github/scripts/image-platforms.ts)', () => {
  test('x86 node types give linux/amd64; Graviton families (m7g, c7g, r7g, t4g) give linux/arm64', () => {
    expect(imagePlatforms(defaultRawConfig())).toEqual(['linux/amd64']);
    for (const types of [['m7g.large', 'c7g.xlarge'], ['r7g.large'], ['t4g.medium'], ['c7gn.large']]) {
      const raw = defaultRawConfig();
      raw.platform.nodeInstanceTypes = types;
      expect(imagePlatforms(raw)).toEqual(['linux/arm64']);
    }
  });

  test('--also adds a platform for the runner, amd64 first, no repeats', () => {
    expect(platformList(['linux/arm64'], ['linux/amd64'])).toBe('linux/amd64,linux/arm64');
    expect(platformList(['linux/amd64'], ['linux/amd64'])).toBe('linux/amd64');
  });

  test('the command prints them from cdk.json, and refuses a bad config naming the field', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'image-platforms-'));
    try {
      expect(execFileSync(tsx, [scriptPath], { encoding: 'utf8' })).toBe('linux/amd64\n');
      const graviton = path.join(dir, 'cdk.json');
      writeFileSync(graviton, JSON.stringify({ context: { ...cdkJsonContext, edge: gravitonConfig() } }));
      expect(execFileSync(tsx, [scriptPath, '--cdk-json', graviton, '--also', 'linux/amd64'], { encoding: 'utf8' })).toBe('linux/amd64,linux/arm64\n');
      const bad = gravitonConfig();
      bad.platform.nodeInstanceTypes = ['m6i.large', 'm7g.large'];
      writeFileSync(graviton, JSON.stringify({ context: { edge: bad } }));
      const run = spawnSync(tsx, [scriptPath, '--cdk-json', graviton], { encoding: 'utf8' });
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('platform.nodeInstanceTypes: must all be of one CPU architecture');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('agrees with the platform the Edge stack gives its image asset (what cdk deploy builds)', () => {
    for (const raw of [defaultRawConfig(), gravitonConfig()]) {
      const assembly = buildTestApp(raw).app.synth();
      const assets = JSON.parse(readFileSync(path.join(assembly.directory, 'Edge-prod.assets.json'), 'utf8'));
      const images = Object.values(assets.dockerImages) as any[];
      expect(images.map((i) => i.source.platform)).toEqual(imagePlatforms(raw));
    }
  });
});

test('every action is pinned: a full commit SHA (with its version in a comment) or a major version; docker/* by SHA', () => {
  for (const name of ['pull-request.yml', 'deploy.yml']) {
    const uses = load(name).split('\n').filter((line) => /^\s*(-\s+)?uses:/.test(line)).map((line) => line.replace(/^\s*(-\s+)?uses:\s*/, ''));
    expect(uses.length).toBeGreaterThan(0);
    for (const use of uses) {
      expect(use).toMatch(/^[\w.-]+\/[\w.-]+@([0-9a-f]{40} # v\d+\.\d+\.\d+|v\d+)$/);
      if (use.startsWith('docker/')) expect(use).toMatch(/@[0-9a-f]{40} # v\d+/);
    }
  }
});

describe('pull requests: the image, built per platform and run, and the integration suite against it', () => {
  const job = parse(load('pull-request.yml')).jobs.image;
  const steps: any[] = job.steps;
  const platformsStep = steps.find((s) => s.run?.includes('.github/scripts/image-platforms.ts'));

  test('its own job, least privilege: only reads the repository (no OIDC token, no comments)', () => {
    expect(job.permissions).toEqual({ contents: 'read' });
    expect(job['runs-on']).toBe('ubuntu-24.04');
    expect(steps.find(usesAction('actions/setup-node')).with['node-version']).toBe(20);
    expect(JSON.stringify(job)).not.toMatch(/configure-aws-credentials|secrets\./);
  });

  test('the platforms come from the script: the nodes\' ones, and amd64 for the suite on this runner', () => {
    expect(platformsStep.id).toBe('platforms');
    expect(platformsStep.run).toContain('echo "deployed=$(npx tsx .github/scripts/image-platforms.ts)" >> "$GITHUB_OUTPUT"');
    expect(platformsStep.run).toContain('echo "build=$(npx tsx .github/scripts/image-platforms.ts --also linux/amd64)" >> "$GITHUB_OUTPUT"');
  });

  test('QEMU (when arm64 is built), then buildx, then a docker buildx build for each platform', () => {
    const qemu = stepIndex(steps, usesAction('docker/setup-qemu-action'));
    const buildx = stepIndex(steps, usesAction('docker/setup-buildx-action'));
    const build = stepIndex(steps, (s) => s.run?.includes('docker buildx build'));
    expect(stepIndex(steps, (s) => s === platformsStep)).toBeLessThan(qemu);
    expect(qemu).toBeLessThan(buildx);
    expect(buildx).toBeLessThan(build);
    expect(steps[qemu].with.platforms).toBe('arm64');
    expect(condition(steps[qemu].if, { platforms: { build: 'linux/amd64,linux/arm64' } })).toBe(true);
    expect(condition(steps[qemu].if, { platforms: { build: 'linux/amd64' } })).toBe(false);

    const step = steps[build];
    expect(step.env.PLATFORMS).toBe('${{ steps.platforms.outputs.build }}');
    expect(step.run).toContain('for platform in ${PLATFORMS//,/ }; do');
    expect(step.run).toMatch(/docker buildx build --platform "\$platform" --load --tag "edge-image:\$\{platform#linux\/\}"/);
    expect(step.run).toContain('--file "$CONTEXT/$DOCKERFILE" "$CONTEXT"');
  });

  test('builds what cdk deploy builds: the context synth stages, refusing an asset platform other than the nodes\'', () => {
    const asset = steps.find((s) => s.id === 'asset');
    expect(asset.run).toContain('npm run synth');
    expect(asset.run).toContain('cdk.out/Edge-prod.assets.json');
    expect(asset.env.DEPLOYED).toBe('${{ steps.platforms.outputs.deployed }}');
    expect(asset.run).toMatch(/if \[ "\$platform" != "\$DEPLOYED" \]; then[\s\S]*exit 1/);
    const build = steps.find((s) => s.run?.includes('docker buildx build'));
    expect(build.env.CONTEXT).toBe('${{ steps.asset.outputs.context }}');
    expect(build.env.DOCKERFILE).toBe('${{ steps.asset.outputs.dockerfile }}');
  });

  test('runs each platform\'s image as the pod does: its user, read-only root, the pod\'s emptyDirs, the rendered prod nginx.conf', () => {
    const step = steps.find((s) => s.run?.includes('docker run'));
    expect(step.env.PLATFORMS).toBe('${{ steps.platforms.outputs.build }}');
    expect(step.run).toContain('for platform in ${PLATFORMS//,/ }; do');
    expect(step.run).toContain('docker run --rm --platform "$platform" --read-only');
    expect(step.run).toContain(`--volume "$PWD/rendered/prod/nginx.conf:${POD.nginxConf}:ro"`);
    expect(step.run).toMatch(/"\$image" -t$/m);
    expect(step.run).not.toMatch(/--user|--entrypoint/); // the image's own USER and ENTRYPOINT
    // Every emptyDir the pod mounts is an empty tmpfs here (what the image has there is hidden).
    const deployment = parseAllDocuments(readFileSync(path.join(__dirname, '..', '..', 'rendered', 'prod', 'manifests.yaml'), 'utf8'))
      .map((d) => d.toJSON()).find((o) => o?.kind === 'Deployment');
    const pod = deployment.spec.template.spec;
    const emptyDirs = new Set(pod.volumes.filter((v: any) => v.emptyDir).map((v: any) => v.name));
    const container = pod.containers.find((c: any) => c.command?.[0] === POD.nginxBinary);
    expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
    const mounts = container.volumeMounts.filter((m: any) => emptyDirs.has(m.name)).map((m: any) => m.mountPath);
    expect(mounts.length).toBeGreaterThan(0);
    for (const mount of mounts) expect(step.run).toContain(`--tmpfs ${mount}:mode=1777`);
  });

  test('the integration suite runs the image\'s own OpenResty and luarocks tree, at the pod\'s paths, skipping nothing', () => {
    const extract = stepIndex(steps, (s) => s.run?.includes('docker cp'));
    const suite = stepIndex(steps, (s) => s.run?.includes('npm run test:integration'));
    expect(stepIndex(steps, (s) => s.run?.includes('docker buildx build'))).toBeLessThan(extract);
    expect(extract).toBeLessThan(suite);
    const prefix = '/usr/local/openresty';
    expect(POD.nginxBinary.startsWith(`${prefix}/`)).toBe(true);
    expect(POD.luarocksLuaDir).toBe(`${prefix}/luajit/share/lua/5.1`);
    expect(steps[extract].run).toContain('container="$(docker create --platform linux/amd64 edge-image:amd64)"');
    expect(steps[extract].run).toContain(`docker cp "$container:${prefix}" - | sudo tar -x -C ${path.dirname(prefix)}`);

    // Reported even when the pod-like run failed, never without a built image.
    for (const i of [extract, suite]) expect(steps[i].if).toBe("${{ !cancelled() && steps.build.outcome == 'success' }}");
    expect(steps.find((s) => s.run?.includes('docker buildx build')).id).toBe('build');
    const step = steps[suite];
    expect(step.env).toEqual({ NGINX_BIN: POD.nginxBinary, AUTO_SSL_TREE: `${prefix}/luajit` });
    expect(step.shell).toBe('bash'); // -o pipefail: the suite's exit code survives the tee
    expect(step.run).toContain('npm run test:integration 2>&1 | tee integration.log');
    expect(step.run).toMatch(/grep -q '\^SKIPPED:' integration\.log; then[\s\S]*exit 1/);
    const packages = steps.find((s) => s.run?.includes('apt-get install'));
    for (const pkg of ['redis-server', 'pebble']) expect(packages.run).toContain(pkg);
    expect(packages.run).not.toMatch(/libnginx-mod-http-lua|\bnginx\b/);
  });
});

describe('deploy: QEMU for the arm64 image when the nodes are Graviton (the same script)', () => {
  const steps: any[] = parse(load('deploy.yml')).jobs.deploy.steps;

  test('the platforms script, then QEMU only when arm64, then a builder check, all before the AWS credentials and cdk deploy', () => {
    const script = stepIndex(steps, (s) => s.run?.includes('.github/scripts/image-platforms.ts'));
    const qemu = stepIndex(steps, usesAction('docker/setup-qemu-action'));
    const check = stepIndex(steps, (s) => s.run?.includes('docker buildx inspect'));
    const credentials = stepIndex(steps, usesAction('aws-actions/configure-aws-credentials'));
    const deploy = stepIndex(steps, (s) => s.run?.includes('cdk deploy'));
    expect(script).toBeLessThan(qemu);
    expect(qemu).toBeLessThan(check);
    expect(check).toBeLessThan(credentials); // the privileged binfmt container never runs beside the deploy role's credentials
    expect(credentials).toBeLessThan(deploy);

    expect(steps[script].id).toBe('image');
    expect(steps[script].run).toBe('echo "platforms=$(npx tsx .github/scripts/image-platforms.ts)" >> "$GITHUB_OUTPUT"');
    expect(steps[qemu].with.platforms).toBe('arm64');
    const graviton = platformList(imagePlatforms(gravitonConfig()));
    const x86 = platformList(imagePlatforms(defaultRawConfig()));
    expect(condition(steps[qemu].if, { image: { platforms: graviton } })).toBe(true);
    expect(condition(steps[qemu].if, { image: { platforms: x86 } })).toBe(false);
    expect(steps[check].env.PLATFORMS).toBe('${{ steps.image.outputs.platforms }}');
    expect(steps[check].run).toContain('for platform in ${PLATFORMS//,/ }; do');
  });

  test('no docker-container buildx builder: cdk-assets pushes the image from the local image store', () => {
    for (const step of steps.filter(usesAction('docker/setup-buildx-action'))) expect(step.with?.driver).toBe('docker');
  });
});

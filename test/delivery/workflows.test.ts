import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parse } from 'yaml';

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

import { Template } from 'aws-cdk-lib/assertions';
import { buildTestApp, defaultRawConfig } from '../helpers';

const { stacks } = buildTestApp();
const template = Template.fromStack(stacks.delivery!);
const roles = template.findResources('AWS::IAM::Role');
const policies = Object.values(template.findResources('AWS::IAM::Policy')).map((p: any) => p.Properties);

function role(idPart: string): any {
  const [, resource] = Object.entries(roles).find(([id]) => id.includes(idPart))!;
  return (resource as any).Properties;
}
function statementsOf(idPart: string): any[] {
  return policies.filter((p) => JSON.stringify(p.Roles).includes(idPart)).flatMap((p) => p.PolicyDocument.Statement);
}
const condition = (r: any) => r.AssumeRolePolicyDocument.Statement[0].Condition.StringEquals;

test('GitHub\'s OIDC provider, for STS only', () => {
  template.hasResourceProperties('AWS::IAM::OIDCProvider', { Url: 'https://token.actions.githubusercontent.com', ClientIdList: ['sts.amazonaws.com'] });
});

test('the diff role trusts only pull requests of the repository', () => {
  expect(role('DiffRole').AssumeRolePolicyDocument.Statement[0].Action).toBe('sts:AssumeRoleWithWebIdentity');
  expect(condition(role('DiffRole'))).toEqual({
    'token.actions.githubusercontent.com:aud': 'sts.amazonaws.com',
    'token.actions.githubusercontent.com:sub': 'repo:example-org/custom-domain-edge:pull_request',
  });
});

test('the diff role can only read: the app\'s stacks, the bootstrap version, and the read-only lookup role', () => {
  const statements = statementsOf('DiffRole');
  const actions = statements.flatMap((s) => [s.Action].flat());
  for (const action of actions) expect(action).toMatch(/^(cloudformation:(Describe|Get|List)|ssm:GetParameter$|sts:AssumeRole$)/);
  const byId = Object.fromEntries(statements.map((s) => [s.Sid, s]));
  expect(byId.ReadDeployedTemplates.Resource).toBe('arn:aws:cloudformation:eu-west-1:123456789012:stack/Edge*/*');
  expect(byId.AssumeBootstrapLookupRole.Resource).toBe('arn:aws:iam::123456789012:role/cdk-hnb659fds-lookup-role-123456789012-eu-west-1');
  expect(JSON.stringify(statements)).not.toMatch(/deploy-role|"\*"/);
});

test('the deploy role trusts only jobs of the protected environment, and may only assume the CDK bootstrap roles', () => {
  expect(condition(role('DeployRole'))['token.actions.githubusercontent.com:sub']).toBe('repo:example-org/custom-domain-edge:environment:production');
  const statements = statementsOf('DeployRole');
  expect(statements).toHaveLength(1);
  expect([statements[0].Action].flat().sort()).toEqual(['sts:AssumeRole', 'sts:TagSession']);
  expect([...statements[0].Resource].sort()).toEqual(['deploy', 'file-publishing', 'image-publishing', 'lookup']
    .map((k) => `arn:aws:iam::123456789012:role/cdk-hnb659fds-${k}-role-123456789012-eu-west-1`));
});

test('no role has a managed policy or an inline policy beyond these', () => {
  for (const r of Object.values(roles) as any[]) expect(r.Properties.ManagedPolicyArns).toBeUndefined();
  expect(policies).toHaveLength(2);
});

test('an existing GitHub OIDC provider is referenced, not created; no delivery config, no stack', () => {
  const raw = defaultRawConfig();
  raw.delivery.githubOidcProviderExists = true;
  Template.fromStack(buildTestApp(raw).stacks.delivery!).resourceCountIs('AWS::IAM::OIDCProvider', 0);
  delete raw.delivery;
  expect(buildTestApp(raw).stacks.delivery).toBeUndefined();
});

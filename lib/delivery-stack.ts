import { aws_iam as iam, CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { ResolvedDeliveryConfig } from './config';
import { acknowledgeNag } from './nag';

const GITHUB_OIDC = 'token.actions.githubusercontent.com';

export interface DeliveryStackProps extends StackProps {
  readonly delivery: ResolvedDeliveryConfig;
  /** Names of the stacks the CI may read (diff) and deploy, e.g. "Edge*". */
  readonly stackNamePattern: string;
}

/**
 * What GitHub Actions assumes, through GitHub's OIDC provider (no long-lived keys):
 * - the diff role, for pull requests of the repository: reads the deployed templates and the
 *   bootstrap version, and may assume only the CDK bootstrap's read-only lookup role;
 * - the deploy role, for jobs of the protected GitHub environment (required reviewers, main
 *   only): may assume only the CDK bootstrap's roles, which CloudFormation deploys with.
 */
export class DeliveryStack extends Stack {
  readonly diffRole: iam.Role;
  readonly deployRole: iam.Role;

  constructor(scope: Construct, id: string, props: DeliveryStackProps) {
    super(scope, id, props);
    const d = props.delivery;
    const { account, region } = this;

    const provider = d.githubOidcProviderExists
      ? iam.OidcProviderNative.fromOidcProviderArn(this, 'GitHub', `arn:${this.partition}:iam::${account}:oidc-provider/${GITHUB_OIDC}`)
      : new iam.OidcProviderNative(this, 'GitHub', { url: `https://${GITHUB_OIDC}`, clientIds: ['sts.amazonaws.com'] });

    const githubPrincipal = (subject: string) => new iam.OpenIdConnectPrincipal(provider, {
      StringEquals: { [`${GITHUB_OIDC}:aud`]: 'sts.amazonaws.com', [`${GITHUB_OIDC}:sub`]: subject },
    });
    const bootstrapRole = (kind: string) =>
      `arn:${this.partition}:iam::${account}:role/cdk-${d.bootstrapQualifier}-${kind}-role-${account}-${region}`;

    this.diffRole = new iam.Role(this, 'DiffRole', {
      assumedBy: githubPrincipal(`repo:${d.githubRepository}:pull_request`),
      description: `cdk diff from pull requests of ${d.githubRepository}: read-only`,
      maxSessionDuration: Duration.hours(1),
    });
    const stacksArn = `arn:${this.partition}:cloudformation:${region}:${account}:stack/${props.stackNamePattern}/*`;
    this.diffRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadDeployedTemplates',
      actions: ['cloudformation:DescribeStacks', 'cloudformation:GetTemplate', 'cloudformation:GetTemplateSummary', 'cloudformation:ListStackResources'],
      resources: [stacksArn],
    }));
    acknowledgeNag(this.diffRole, 'Read-only CloudFormation actions on this app\'s stacks only; a stack ARN ends in an ID CloudFormation assigns, so it takes a wildcard',
      `IAM5[Resource::${stacksArn}]`);
    this.diffRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadBootstrapVersion',
      actions: ['ssm:GetParameter'],
      resources: [`arn:${this.partition}:ssm:${region}:${account}:parameter/cdk-bootstrap/${d.bootstrapQualifier}/version`],
    }));
    this.diffRole.addToPolicy(new iam.PolicyStatement({
      sid: 'AssumeBootstrapLookupRole',
      actions: ['sts:AssumeRole'],
      resources: [bootstrapRole('lookup')],
    }));

    this.deployRole = new iam.Role(this, 'DeployRole', {
      assumedBy: githubPrincipal(`repo:${d.githubRepository}:environment:${d.deployEnvironment}`),
      description: `cdk deploy from the ${d.deployEnvironment} environment of ${d.githubRepository}`,
      maxSessionDuration: Duration.hours(2),
    });
    this.deployRole.addToPolicy(new iam.PolicyStatement({
      sid: 'AssumeBootstrapRoles',
      actions: ['sts:AssumeRole', 'sts:TagSession'],
      resources: ['deploy', 'file-publishing', 'image-publishing', 'lookup'].map(bootstrapRole),
    }));

    new CfnOutput(this, 'DiffRoleArn', { value: this.diffRole.roleArn, description: 'GitHub secret/variable AWS_DIFF_ROLE_ARN' });
    new CfnOutput(this, 'DeployRoleArn', { value: this.deployRole.roleArn, description: 'GitHub variable AWS_DEPLOY_ROLE_ARN (environment-scoped)' });
  }
}

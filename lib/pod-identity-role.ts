import { aws_iam as iam, Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { acknowledgeNag } from './nag';

export interface PodIdentityRoleProps {
  readonly description: string;
  /** The AWS-managed policy the add-on documents, e.g. "service-role/AmazonEBSCSIDriverPolicy". */
  readonly managedPolicyName: string;
  /** Why that managed policy is acceptable (the cdk-nag acknowledgement). */
  readonly reason: string;
}

/** A role an EKS add-on's service account assumes through EKS Pod Identity. */
export class PodIdentityRole extends iam.Role {
  constructor(scope: Construct, id: string, props: PodIdentityRoleProps) {
    const principal = new iam.ServicePrincipal('pods.eks.amazonaws.com');
    super(scope, id, {
      assumedBy: principal,
      description: props.description,
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName(props.managedPolicyName)],
      maxSessionDuration: Duration.hours(1),
    });
    // Pod Identity also tags the session.
    this.assumeRolePolicy?.addStatements(new iam.PolicyStatement({ actions: ['sts:TagSession'], principals: [principal] }));
    acknowledgeNag(this, props.reason, `IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${props.managedPolicyName}]`);
  }
}

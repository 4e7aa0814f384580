import { aws_eks_v2 as eks, aws_iam as iam, Lazy, Token } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { PodIdentityRole } from './pod-identity-role';

/** The service account of the VPC CNI's DaemonSet (aws-node), which its Pod Identity association names. */
export const VPC_CNI_SERVICE_ACCOUNT = 'aws-node';
/** The AWS-managed policy the VPC CNI documents for IPv4 clusters. */
export const VPC_CNI_POLICY = 'AmazonEKS_CNI_Policy';
/**
 * The add-on's configuration values: its network policy agent on (an eBPF agent in each aws-node
 * pod, the controller in the EKS control plane), so NetworkPolicy objects are enforced.
 * Standard mode: a new pod is open until its policies are programmed (strict mode would deny
 * every pod of the cluster, kube-system included, anything no policy allows).
 */
export const VPC_CNI_CONFIGURATION = { enableNetworkPolicy: 'true' } as const;

export interface VpcCniProps {
  readonly cluster: eks.Cluster;
  /** The EKS Pod Identity agent: aws-node gets its AWS credentials through it. */
  readonly podIdentityAgent: eks.Addon;
  /**
   * The managed node group. Its nodes start only once this CNI is in place (so every pod of the
   * cluster runs under network policy enforcement), and its role loses the CNI policy.
   */
  readonly nodegroup: eks.Nodegroup;
}

/**
 * The Amazon VPC CNI as an EKS add-on instead of the self-managed copy EKS installs with the
 * cluster: network policy enforcement on, and the CNI's EC2 permissions (ENIs and their
 * addresses, on any ENI of the account) on a role of its own through Pod Identity rather than on
 * the node role, whose credentials every host-network pod of a node can take from IMDS.
 */
export class VpcCni extends Construct {
  readonly addon: eks.CfnAddon;
  readonly role: PodIdentityRole;

  constructor(scope: Construct, id: string, props: VpcCniProps) {
    super(scope, id);
    const { cluster, nodegroup } = props;

    this.role = new PodIdentityRole(this, 'Role', {
      description: 'Amazon VPC CNI, aws-node (Pod Identity)',
      managedPolicyName: VPC_CNI_POLICY,
      reason: 'AmazonEKS_CNI_Policy is the policy the VPC CNI documents for IPv4 clusters; AWS keeps it current with the CNI. It sits on this role for aws-node alone, no longer on the node role',
    });

    this.addon = new eks.CfnAddon(this, 'Addon', {
      clusterName: cluster.clusterName,
      addonName: 'vpc-cni',
      // Takes over the aws-node DaemonSet and ConfigMap EKS created with the cluster: this stack
      // is their only source of truth, and nobody edits them by hand.
      resolveConflicts: 'OVERWRITE',
      // Removing the add-on from the stack must not delete aws-node: every node would lose pod networking.
      preserveOnDelete: true,
      configurationValues: JSON.stringify(VPC_CNI_CONFIGURATION),
      podIdentityAssociations: [{ roleArn: this.role.roleArn, serviceAccount: VPC_CNI_SERVICE_ACCOUNT }],
    });
    this.addon.node.addDependency(props.podIdentityAgent);

    // Node group (and its role) after the add-on: nodes boot with this CNI, and on an existing
    // cluster the node role gives up the CNI policy only once aws-node runs with its own role.
    nodegroup.node.addDependency(this.addon);
    withoutCniPolicy(nodegroup.role);
  }
}

/** Detaches AmazonEKS_CNI_Policy from a role aws-eks-v2 created for a node group (it attaches it by default). */
function withoutCniPolicy(role: iam.IRole): void {
  const resource = role.node.defaultChild;
  if (!(resource instanceof iam.CfnRole)) {
    throw new Error(`VpcCni: the node group's role ${role.node.path} must be the one aws-eks-v2 creates, to detach ${VPC_CNI_POLICY} from it`);
  }
  const attached = resource.managedPolicyArns;
  const isCniPolicy = (arn: unknown) => JSON.stringify(arn).includes(`:iam::aws:policy/${VPC_CNI_POLICY}"`);
  resource.managedPolicyArns = Token.asList(Lazy.uncachedAny({
    produce: (context) => (context.resolve(attached) as unknown[]).filter((arn) => !isCniPolicy(arn)),
  }));
}

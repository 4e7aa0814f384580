import { aws_eks_v2 as eks } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { PodIdentityRole } from './pod-identity-role';
import { VpcCni } from './vpc-cni';

/** StorageClass for persistent volumes of the edge (the dev Redis): encrypted gp3 EBS. */
export const ENCRYPTED_STORAGE_CLASS = 'encrypted-gp3';
/** Version of the External Secrets Operator Helm chart (API external-secrets.io/v1). */
export const EXTERNAL_SECRETS_CHART_VERSION = '2.0.0';

export interface ClusterAddonsProps {
  readonly cluster: eks.Cluster;
  /** The managed node group: its nodes start after the VPC CNI add-on, and its role loses the CNI policy. */
  readonly nodegroup: eks.Nodegroup;
}

/**
 * What the environments need from the cluster beyond what EKS installs:
 * - the VPC CNI as a managed add-on with network policy enforcement on (the charts' NetworkPolicies
 *   are otherwise ignored), its permissions on its own role through Pod Identity;
 * - EKS Pod Identity agent, and the EBS CSI driver (with its own role through Pod Identity) so
 *   the dev Redis StatefulSets get volumes, with an encrypted gp3 StorageClass;
 * - the External Secrets Operator, which copies each environment's Redis AUTH token from
 *   Secrets Manager into a Kubernetes Secret of its namespace (no secret in any manifest).
 */
export class ClusterAddons extends Construct {
  readonly vpcCni: VpcCni;
  readonly externalSecrets: eks.HelmChart;
  readonly storageClass: eks.KubernetesManifest;

  constructor(scope: Construct, id: string, props: ClusterAddonsProps) {
    super(scope, id);
    const { cluster } = props;

    const podIdentityAgent = new eks.Addon(this, 'PodIdentityAgent', { cluster, addonName: 'eks-pod-identity-agent' });
    this.vpcCni = new VpcCni(this, 'VpcCni', { cluster, podIdentityAgent, nodegroup: props.nodegroup });

    const ebsCsiRole = new PodIdentityRole(this, 'EbsCsiRole', {
      description: 'EBS CSI driver controller (Pod Identity)',
      managedPolicyName: 'service-role/AmazonEBSCSIDriverPolicy',
      reason: 'AmazonEBSCSIDriverPolicy is the policy the EBS CSI driver documents; it is scoped by tags to volumes the driver creates',
    });
    const ebsCsi = new eks.CfnAddon(this, 'EbsCsiDriver', {
      clusterName: cluster.clusterName,
      addonName: 'aws-ebs-csi-driver',
      resolveConflicts: 'OVERWRITE',
      podIdentityAssociations: [{ roleArn: ebsCsiRole.roleArn, serviceAccount: 'ebs-csi-controller-sa' }],
    });
    ebsCsi.node.addDependency(podIdentityAgent);

    this.storageClass = new eks.KubernetesManifest(this, 'EncryptedStorageClass', {
      cluster,
      manifest: [{
        apiVersion: 'storage.k8s.io/v1',
        kind: 'StorageClass',
        metadata: { name: ENCRYPTED_STORAGE_CLASS },
        provisioner: 'ebs.csi.aws.com',
        parameters: { type: 'gp3', encrypted: 'true' },
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Delete',
        allowVolumeExpansion: true,
      }],
    });
    this.storageClass.node.addDependency(ebsCsi);

    this.externalSecrets = cluster.addHelmChart('ExternalSecrets', {
      chart: 'external-secrets',
      repository: 'https://charts.external-secrets.io',
      version: EXTERNAL_SECRETS_CHART_VERSION,
      namespace: 'external-secrets',
      createNamespace: true,
      release: 'external-secrets',
      wait: true,
      values: { installCRDs: true },
    });
    // `wait` needs its pods running: no earlier than the nodes (which wait for the VPC CNI add-on).
    this.externalSecrets.node.addDependency(props.nodegroup);
  }
}

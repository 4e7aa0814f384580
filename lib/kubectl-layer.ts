import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { KubectlV36Layer } from '@aws-cdk/lambda-layer-kubectl-v36';
import { aws_eks_v2 as eks, aws_lambda as lambda } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { KubernetesVersion } from './config';

/**
 * For each supported cluster version: the EKS version constant and the kubectl layer of the
 * same minor. kubectl is supported only within one minor of the API server, and CDK does not
 * check the pairing, so it is made here, in one table.
 */
const VERSIONS: Record<KubernetesVersion, {
  eksVersion: eks.KubernetesVersion;
  newLayer: (scope: Construct, id: string) => lambda.ILayerVersion;
}> = {
  '1.35': { eksVersion: eks.KubernetesVersion.V1_35, newLayer: (scope, id) => new KubectlV35Layer(scope, id) },
  '1.36': { eksVersion: eks.KubernetesVersion.V1_36, newLayer: (scope, id) => new KubectlV36Layer(scope, id) },
};

/** The EKS version constant for a supported version. */
export function eksVersion(version: KubernetesVersion): eks.KubernetesVersion {
  return VERSIONS[version].eksVersion;
}

/** A kubectl layer whose kubectl has the same minor as the cluster. */
export function kubectlLayerFor(scope: Construct, id: string, version: KubernetesVersion): lambda.ILayerVersion {
  return VERSIONS[version].newLayer(scope, id);
}

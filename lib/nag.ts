import { Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag AwsSolutions findings on one construct (and its children), with the
 * reason the finding does not apply. IDs are exact, suffix included: cdk-nag 3 has no prefix
 * matching, so each acknowledgement covers only the finding it names.
 */
export function acknowledgeNag(scope: IConstruct, reason: string, ...ids: string[]): void {
  Validations.of(scope).acknowledge(...ids.map((id) => ({ id: `AwsSolutions::AwsSolutions-${id}`, reason })));
}

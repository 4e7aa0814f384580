import { aws_sqs as sqs } from 'aws-cdk-lib';
import { buildTestApp } from '../helpers';

describe('the whole app, as `cdk synth` builds it (cdk-nag and CloudFormation validation on)', () => {
  test('synthesizes every stack with no unacknowledged cdk-nag finding and no validation error', () => {
    const { app } = buildTestApp(undefined, { cfnValidation: true });
    const assembly = app.synth();
    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(['Edge-dev-example', 'Edge-prod', 'EdgeCertStore-prod', 'EdgeDelivery', 'EdgePlatform']);
    for (const stack of assembly.stacks) {
      expect(stack.environment).toMatchObject({ account: '123456789012', region: 'eu-west-1' });
    }
  });

  test('an unacknowledged finding fails synth (the check is live, not switched off)', () => {
    const { app, stacks } = buildTestApp();
    new sqs.Queue(stacks.edges.prod, 'UnencryptedQueueWithoutDlq', { encryption: sqs.QueueEncryption.UNENCRYPTED });
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS/);
  });
});

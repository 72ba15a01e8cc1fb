/**
 * The logical IDs of the stateful resources are part of the deployed stack: CloudFormation
 * replaces a resource whose logical ID changes (a new, empty bucket; new queues, dropping their
 * messages; new log groups). They come from the construct path, so creating a resource under a
 * new Construct (rather than with the stack as scope, as infra/parts/ does) changes them. Pinned
 * here as literals, as deployed stacks have them.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../lib/functions.ts';
import { createTestApp, createTestStack, type TestApp } from './synth.ts';

let testApp: TestApp;
let resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;

beforeAll(() => {
  testApp = createTestApp();
  resources = Template.fromStack(createTestStack(testApp.app, 'Ids')).toJSON().Resources;
});
afterAll(() => testApp.cleanup());

/** Logical IDs of the resources of `type`, sorted. */
function idsOf(type: string): string[] {
  return Object.entries(resources)
    .filter(([, r]) => r.Type === type)
    .map(([id]) => id)
    .sort();
}

describe('logical IDs of the stateful resources', () => {
  it('keeps the buckets', () => {
    expect(idsOf('AWS::S3::Bucket')).toEqual(['DataAccessLogsC0C25EE4', 'DataBucketE6B0FAA8']);
  });

  it('keeps the queues and their dead-letter queues', () => {
    expect(idsOf('AWS::SQS::Queue')).toEqual([
      'BatchesDeadLetterQueue4FD6A0C4',
      'BatchesQueue46024A5C',
      'FeaturesDeadLetterQueue9C7998E2',
      'FeaturesQueueFBD5C667',
      'IngestDeadLetterQueueE8016E9B',
      'IngestQueue95F6DB49',
    ]);
  });

  it('keeps the state machine, the API and its key, and every log group', () => {
    expect(idsOf('AWS::StepFunctions::StateMachine')).toEqual(['TrainingStateMachineEAE34FB3']);
    expect(idsOf('AWS::ApiGateway::RestApi')).toEqual(['ApiCD79AAA0']);
    expect(idsOf('AWS::ApiGateway::ApiKey')).toEqual(['ApiApiKey88125E37']);
    expect(idsOf('AWS::Logs::LogGroup')).toEqual([
      'ApiAccessLogs50B185DB',
      'ApiFunctionLogsA98C1C37',
      'BatchPredictFunctionLogs3C07DBD9',
      'CheckReadinessFunctionLogs7AF7C631',
      'DeadLettersFunctionLogs8F808700',
      'DriftMetricFunctionLogsA9F253BD',
      'ExtractFeaturesFunctionLogs23AC95B1',
      'FinishTrainingFunctionLogsEE12F385',
      'PromoteModelFunctionLogsBD92CB9F',
      'StartTrainingFunctionLogs46F8FB3C',
      'TrainHeadFunctionLogsF911BFE7',
      'TrainingLogsE5993150',
    ]);
  });
});

describe('the functions of lib/functions.ts', () => {
  it("are the stack's functions (besides CDK's own providers), each packaged as listed", () => {
    const packages = Object.fromEntries(
      Object.entries(resources)
        .filter(
          ([id, r]) => r.Type === 'AWS::Lambda::Function' && /^[A-Z][A-Za-z]*Function[0-9A-F]{8}$/.test(id),
        )
        .map(([id, r]) => [
          id.replace(/Function[0-9A-F]{8}$/, ''),
          r.Properties?.PackageType === 'Image' ? 'image' : 'zip',
        ]),
    );
    const pascal = (name: string) => name.replace(/(^|-)([a-z])/g, (_, _d, c: string) => c.toUpperCase());
    expect(packages).toEqual(Object.fromEntries(FUNCTIONS.map((f) => [pascal(f.name), f.package])));
  });
});

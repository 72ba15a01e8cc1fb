import { describe, expect, it } from 'vitest';
import { decodeS3EventKey, parseS3EventBody } from '../../../lib/pipeline/s3-events.ts';
import { loadEvent } from '../../integration/pipeline/support.ts';

function sampleBody(): { Records: { eventName: string; s3: { object: Record<string, unknown> } }[] } {
  const event = loadEvent<{ Records: { body: string }[] }>('s3-put-in-sqs.json');
  return JSON.parse(event.Records[0]?.body ?? '');
}

describe('S3 event notifications in SQS bodies', () => {
  it('decodes keys like S3 encodes them: + is a space, %2B a plus, percent-encoded UTF-8', () => {
    expect(decodeS3EventKey('datasets/pets/my+cat%2B1.jpg')).toBe('datasets/pets/my cat+1.jpg');
    expect(decodeS3EventKey('datasets/pets/cat/%C3%A9t%C3%A9.png')).toBe('datasets/pets/cat/été.png');
  });

  it('parses the sample ObjectCreated:Put into a decoded key, an unquoted ETag and a size', () => {
    const parsed = parseS3EventBody(JSON.stringify(sampleBody()));

    expect(parsed).toEqual({
      kind: 'objects',
      objects: [
        {
          bucket: 'tlearn-test',
          key: 'datasets/pets/cat/my cat été+1.png',
          etag: 'd41d8cd98f00b204e9800998ecf8427e',
          size: 1024,
          eventName: 'ObjectCreated:Put',
          eventTime: expect.any(Date),
        },
      ],
      removed: [],
      ignored: [],
    });
  });

  it('recognises the s3:TestEvent', () => {
    const event = loadEvent<{ Records: { body: string }[] }>('s3-test-event-in-sqs.json');

    expect(parseS3EventBody(event.Records[0]?.body ?? '')).toEqual({ kind: 'test-event' });
  });

  it('takes ObjectRemoved as a removal and ignores other events, naming them', () => {
    const body = sampleBody();
    const record = body.Records[0];
    if (!record) throw new Error('sample has no record');
    record.eventName = 'ObjectRemoved:Delete';
    const removed = parseS3EventBody(JSON.stringify(body));
    record.eventName = 'ObjectRestore:Completed';

    const other = parseS3EventBody(JSON.stringify(body));

    expect(removed).toMatchObject({
      kind: 'objects',
      objects: [],
      removed: [{ eventName: 'ObjectRemoved:Delete', key: expect.stringMatching(/^datasets\//) }],
      ignored: [],
    });
    expect(other).toMatchObject({
      kind: 'objects',
      objects: [],
      removed: [],
      ignored: [{ eventName: 'ObjectRestore:Completed' }],
    });
  });

  it('reports bodies that are not JSON, not S3 events, or badly encoded as invalid', () => {
    const badKey = sampleBody();
    const record = badKey.Records[0];
    if (!record) throw new Error('sample has no record');
    record.s3.object.key = 'datasets/pets/%E0%A4%A.png';

    expect(parseS3EventBody('not json')).toEqual({ kind: 'invalid', reason: 'body is not JSON' });
    expect(parseS3EventBody('{"Records": [{"eventName": "x"}]}')).toMatchObject({
      kind: 'invalid',
      reason: expect.stringContaining('Records.0.s3'),
    });
    expect(parseS3EventBody(JSON.stringify(badKey))).toMatchObject({ kind: 'invalid' });
  });
});

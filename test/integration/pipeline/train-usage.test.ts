import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRICES_AS_OF } from '../../../lib/cost/prices.ts';
import { runTrainingJob } from '../../../lib/pipeline/train-job.ts';
import { modelFileKey } from '../../../lib/storage/keys.ts';
import { getObject } from '../../../lib/storage/s3.ts';
import { parseReportDocument } from '../../../lib/training/model-document.ts';
import { silentLog } from '../../../lib/util/log.ts';
import { type Emulator, startEmulator } from '../../helpers/emulator.ts';
import { putImageWithFeature } from './support.ts';

describe("a training report's resources and price", () => {
  let emu: Emulator;
  const commands: string[] = [];

  beforeAll(async () => {
    emu = await startEmulator();
    for (const label of ['cat', 'dog']) {
      for (let i = 0; i < 5; i++)
        await putImageWithFeature(emu, `datasets/pets/${label}/${i}.png`, { seed: i });
    }
    // An independent record of every request the trainer sends.
    emu.clients.s3.middlewareStack.add(
      (next, context) => async (args) => {
        commands.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'record-commands' },
    );
  });
  afterAll(async () => {
    await emu.stop();
  });

  it('lists the S3 requests it sent, its Lambda GB-seconds and the state transitions, priced', async () => {
    const r = await runTrainingJob(
      { dataset: 'pets', trigger: 'manual', requestedAt: '2026-01-01T00:00:00.000Z' },
      {
        s3: emu.clients.s3,
        bucket: emu.bucket,
        training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 100 },
        log: silentLog,
        runtime: { region: 'us-east-1', memoryMb: 3008, architecture: 'arm64' },
      },
    );

    const sent = [...commands];
    const report = parseReportDocument(
      JSON.parse(
        Buffer.from(
          (await getObject(emu.clients.s3, emu.bucket, modelFileKey('pets', r.version, 'report.json'))).body,
        ).toString(),
      ),
    );
    const usage = report.usage;
    const putClass = sent.filter((c) => /^(Put|List)/.test(c)).length;
    const getClass = sent.filter((c) => /^(Get|Head)/.test(c)).length;
    expect(usage?.usage.s3).toEqual({ put: putClass, get: getClass });
    expect(getClass).toBeGreaterThanOrEqual(10); // one GET per feature at least
    expect(usage?.usage.stepFunctions.transitions).toBe(7);
    const lambda = usage?.usage.lambda[0];
    expect(lambda).toMatchObject({ function: 'train-head', memoryMb: 3008, invocations: 1 });
    expect(lambda?.durationMs).toBeGreaterThan(0);
    expect(lambda?.durationMs).toBeLessThanOrEqual(r.timingsMs.total + 1);
    expect(usage?.cost.pricesAsOf).toBe(PRICES_AS_OF);
    expect(usage?.cost.totalUsd).toBeCloseTo(
      (usage?.cost.lines ?? []).reduce((s, l) => s + l.usd, 0),
      15,
    );
  });
});

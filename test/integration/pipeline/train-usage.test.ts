import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRICES_AS_OF } from '../../../lib/cost/prices.ts';
import { TRAINING_TRANSITIONS_HAPPY_PATH } from '../../../lib/cost/usage.ts';
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
    expect(usage?.usage.stepFunctions.transitions).toBe(TRAINING_TRANSITIONS_HAPPY_PATH);
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

  it('counts the S3 requests of two trainings running at once apart', async () => {
    for (const label of ['a', 'b']) {
      for (let i = 0; i < 4; i++)
        await putImageWithFeature(emu, `datasets/more/${label}/${i}.png`, { seed: i });
    }
    const deps = {
      s3: emu.clients.s3,
      bucket: emu.bucket,
      training: { featureConcurrency: 4, refitOnAll: false, C: 1, maxIter: 100 },
      log: silentLog,
      runtime: { region: 'us-east-1' },
    };
    const at = '2026-01-01T00:00:00.000Z';
    commands.length = 0;

    const runs = await Promise.all(
      ['pets', 'more'].map((dataset) =>
        runTrainingJob({ dataset, trigger: 'manual', requestedAt: at }, deps),
      ),
    );

    const sent = [...commands];
    const usages = [];
    for (const r of runs) {
      const key = modelFileKey(r.dataset, r.version, 'report.json');
      const body = (await getObject(emu.clients.s3, emu.bucket, key)).body;
      usages.push(parseReportDocument(JSON.parse(Buffer.from(body).toString())).usage?.usage.s3);
    }
    const [pets, more] = usages;
    expect((pets?.get ?? 0) + (more?.get ?? 0)).toBe(sent.filter((c) => /^(Get|Head)/.test(c)).length);
    expect((pets?.put ?? 0) + (more?.put ?? 0)).toBe(sent.filter((c) => /^(Put|List)/.test(c)).length);
    // Each run read its own features: 10 for pets, 8 for more (at least).
    expect(pets?.get).toBeGreaterThanOrEqual(10);
    expect(more?.get).toBeGreaterThanOrEqual(8);
    expect(pets?.get).not.toBe(more?.get);
  });
});

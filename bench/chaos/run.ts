/**
 * `npm run chaos`: the chaos suite against the real `tlearn local` (see scenarios.ts). Exit code 0
 * only when every scenario run healed.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { runScenario, SCENARIOS, type ScenarioResult } from './scenarios.ts';

const HELP = `usage: npm run chaos -- [options]

Runs the real 'tlearn local' as a child process (free loopback ports, a temp data dir, seeded
random weights, 32x32 avg pooling, the onnx engine), uploads generated images with parallel SDK
PUTs, injects one fault per scenario and waits until the dataset's promoted model counts every
usable image, nothing is pending and no training runs. Prints the time to heal of each.

scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(18)} ${s.fault}`).join('\n')}

options:
  --scenario NAMES   comma-separated scenarios to run (default: all)
  --images N         images per scenario (default 400)
  --timeout S        seconds to wait for a heal (default 600)
  --json FILE        also write the results as JSON
  --keep             keep every data dir (failed scenarios always keep theirs)
  -h, --help         this help

exit codes: 0 every scenario healed, 1 at least one did not, 2 usage error`;

function fail(message: string): never {
  console.error(`chaos: ${message}\n\n${HELP}`);
  process.exit(2);
}

function formatRow(r: ScenarioResult): string {
  const heal = r.healMs === undefined ? 'NOT HEALED' : `healed in ${(r.healMs / 1000).toFixed(1)} s`;
  const restart = r.restartMs === undefined ? '' : ` (restart ${(r.restartMs / 1000).toFixed(1)} s)`;
  return `${r.name.padEnd(18)} ${heal}${restart}; ${r.seen}${r.notes.length ? `\n${''.padEnd(19)}${r.notes.join('; ')}` : ''}`;
}

async function main(): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        scenario: { type: 'string' },
        images: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'string' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const images = Number(values.images ?? 400);
  if (!Number.isInteger(images) || images < 8) fail('--images must be an integer of at least 8');
  const timeout = Number(values.timeout ?? 600);
  if (!Number.isFinite(timeout) || timeout <= 0) fail('--timeout must be a positive number of seconds');
  const names =
    typeof values.scenario === 'string' ? values.scenario.split(',').map((s) => s.trim()) : undefined;
  const unknown = names?.filter((n) => !SCENARIOS.some((s) => s.name === n)) ?? [];
  if (unknown.length > 0) fail(`unknown scenario(s): ${unknown.join(', ')}`);
  const chosen = names ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS;

  const results: ScenarioResult[] = [];
  for (const [i, scenario] of chosen.entries()) {
    const started = performance.now();
    const progress = (m: string) =>
      console.error(
        `[${i + 1}/${chosen.length} ${scenario.name} +${((performance.now() - started) / 1000).toFixed(1)} s] ${m}`,
      );
    progress(scenario.fault);
    const r = await runScenario(scenario, {
      images,
      timeoutMs: timeout * 1000,
      progress,
      keep: values.keep === true,
    });
    progress(r.healed ? 'healed' : 'NOT healed');
    results.push(r);
  }
  console.log(`\nchaos suite: ${images} images per scenario (timings on this machine, which may be shared)`);
  for (const r of results) console.log(formatRow(r));
  if (typeof values.json === 'string') await writeFile(values.json, `${JSON.stringify(results, null, 2)}\n`);
  const bad = results.filter((r) => !r.healed);
  console.log(bad.length === 0 ? 'every scenario healed' : `${bad.length} of ${results.length} did not heal`);
  return bad.length === 0 ? 0 : 1;
}

process.exitCode = await main();

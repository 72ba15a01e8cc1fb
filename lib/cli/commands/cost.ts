import { PRICES, pricesCitation } from '../../cost/prices.ts';
import { type CostEstimate, estimateCost } from '../../estimate/estimate.ts';
import { numberFlag, parseCommandArgs, UsageError } from '../args.ts';
import { EXIT } from '../exit-codes.ts';
import type { Command } from '../main.ts';
import { type CliContext, formatTable, processContext } from '../remote.ts';

const HELP = `tlearn cost --images N [--predictions-per-month M] [options]

Estimates, from a dated table of AWS list prices (no free tier), what a dataset of N images
costs to extract and train, what M predictions a month cost to serve, and the stack's idle
cost: what it bills when nothing happens, item by item. Deploy with
  npx cdk deploy -c tlearn:monitoring=false
to drop the alarms and the dashboard (the largest idle items). A training's report.json
(usage) holds what a real training used, measured.

options:
  --images N                   images in the dataset (required)
  --predictions-per-month M    predictions served a month (default 0)
  --region R                   price region: ${Object.keys(PRICES).join(', ')} (default us-east-1)
  --no-monitoring              as deployed with -c tlearn:monitoring=false
  --extract-ms MS              extract-features Lambda time per image (default 150)
  --train-ms MS                train-head time per image, plus 5 s (default 10)
  --predict-ms MS              api Lambda time per prediction (default 200)
  --image-kb KB                average image size in S3 (default 100)
  --json                       print the estimate as JSON

examples:
  tlearn cost --images 25000 --predictions-per-month 100000
  tlearn cost --images 500 --no-monitoring --region eu-west-1

exit codes: 0 ok, 2 usage`;

function usd(x: number): string {
  if (x === 0) return '$0';
  if (x < 0.000005) return '<$0.00001';
  if (x < 0.01) return `$${x.toFixed(5)}`;
  return `$${x.toFixed(2)}`;
}

/** The estimate as aligned text, one table per part. */
export function formatCostEstimate(e: CostEstimate): string[] {
  const out: string[] = [
    `prices: ${e.region}, list prices as of ${e.pricesAsOf}, USD, no free tier`,
    `source: ${pricesCitation(e.region)}; check them before relying on a figure`,
  ];
  for (const p of e.parts) {
    out.push('', `${p.name}: ${usd(p.totalUsd)}`);
    out.push(
      ...formatTable(
        ['  item', 'quantity', 'unit', 'USD'],
        p.lines.map((l) => [`  ${l.item}`, String(Number(l.quantity.toPrecision(6))), l.unit, usd(l.usd)]),
        [false, true, false, true],
      ),
    );
  }
  return out;
}

/** `tlearn cost`. */
export async function runCost(argv: string[], ctx: CliContext = processContext()): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    images: { type: 'string' },
    'predictions-per-month': { type: 'string' },
    region: { type: 'string' },
    'no-monitoring': { type: 'boolean' },
    'extract-ms': { type: 'string' },
    'train-ms': { type: 'string' },
    'predict-ms': { type: 'string' },
    'image-kb': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  if (values.images === undefined) throw new UsageError('--images N is required');
  const region = values.region ?? 'us-east-1';
  if (PRICES[region] === undefined)
    throw new UsageError(`--region must be one of ${Object.keys(PRICES).join(', ')} (got '${region}')`);
  const estimate = estimateCost({
    images: numberFlag('images', values.images, 0, { min: 0, integer: true }),
    predictionsPerMonth: numberFlag('predictions-per-month', values['predictions-per-month'], 0, {
      min: 0,
      integer: true,
    }),
    region,
    monitoring: values['no-monitoring'] !== true,
    extractMsPerImage: numberFlag('extract-ms', values['extract-ms'], 150, { min: 0 }),
    trainMsPerImage: numberFlag('train-ms', values['train-ms'], 10, { min: 0 }),
    predictMs: numberFlag('predict-ms', values['predict-ms'], 200, { min: 0 }),
    imageKb: numberFlag('image-kb', values['image-kb'], 100, { min: 0 }),
  });
  if (values.json) ctx.out(JSON.stringify(estimate, null, 2));
  else for (const line of formatCostEstimate(estimate)) ctx.out(line);
  return EXIT.OK;
}

export const command: Command = {
  summary: "estimate a dataset's extraction, training and serving cost, and the stack's idle cost",
  help: HELP,
  run: (argv) => runCost(argv),
};

/**
 * Reference figures (measured on a 2-core AVX2 machine like this one, docs/BENCHMARKS.md) and targets,
 * checked against a run's figures.
 */
import type { Figure } from './types.ts';

/** VGG16 conv base, 150x150, batch 1, ms per image. */
export const REFERENCE_FORWARD_MS: readonly { runtime: string; engine: string; ms: number }[] = [
  { runtime: 'onnxruntime-node 1.30, 2 threads', engine: 'onnx', ms: 96 },
  { runtime: 'PyTorch 1.13 CPU (oneDNN), 2 threads', engine: 'pytorch', ms: 138 },
  { runtime: 'tfjs-backend-wasm 4.22 SIMD, 1 thread', engine: 'wasm', ms: 830 },
  { runtime: 'tfjs cpu backend', engine: 'cpu', ms: 24_000 },
];

/** sharp: 500x375 JPEG decoded and resized to 150x150. */
export const REFERENCE_DECODE_MS = 7;
/** scikit-learn 1.2 lbfgs, 20,000 × 8192 binary: whole fit, iterations, ms per objective+gradient. */
export const REFERENCE_SKLEARN_FIT = { ms: 16_000, nIter: 100, msPerEval: 123 } as const;
/** Objective+gradient evaluations in scikit-learn's reference fit (its time / time per evaluation). */
export const REFERENCE_SKLEARN_EVALS = Math.round(REFERENCE_SKLEARN_FIT.ms / REFERENCE_SKLEARN_FIT.msPerEval);
/** PyTorch's whole extraction job per image: decode (~7 ms) + forward (~138 ms). */
export const PYTORCH_MS_PER_IMAGE = REFERENCE_DECODE_MS + 138;

const VGG16_BLOCKS: readonly (readonly number[])[] = [
  [64, 64],
  [128, 128],
  [256, 256, 256],
  [512, 512, 512],
  [512, 512, 512],
];

/**
 * GFLOP of one VGG16 conv-base forward pass at a square input (a multiply-add counts 2, as in the
 * reference figures above: 13.2 at 150, 30.7 at 224). 'same' 3x3 convolutions, 2x2 max pools rounding down.
 */
export function vgg16Gflop(inputSize: number): number {
  let size = inputSize;
  let cin = 3;
  let flops = 0;
  for (const block of VGG16_BLOCKS) {
    for (const cout of block) {
      flops += 2 * size * size * 9 * cin * cout;
      cin = cout;
    }
    size = Math.floor(size / 2);
  }
  return flops / 1e9;
}

/** One target, judged on this run. */
export interface TargetResult {
  id: string;
  description: string;
  /** The bound, in words with the number. */
  goal: string;
  /** What this run measured, in words with the number. */
  actual: string;
  /** `null` when the figures it needs were not measured (or failed). */
  met: boolean | null;
  note?: string;
}

function ok(figures: readonly Figure[], name: string): Figure | undefined {
  const f = figures.find((x) => x.name === name);
  return f?.status === 'ok' && f.summary ? f : undefined;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const fmt = (v: number, digits = 0): string =>
  v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** Judges the targets above on a run's figures. */
export function evaluateTargets(figures: readonly Figure[]): TargetResult[] {
  const out: TargetResult[] = [];

  const extract = ok(figures, 'extract-cli');
  const images = num(extract?.params?.images);
  const wholeMs = num(extract?.extra?.wholeJobMs);
  if (extract && images !== undefined && wholeMs !== undefined) {
    const bound = 3.5 * images * PYTORCH_MS_PER_IMAGE;
    const cores = num(extract.extra?.coresBusy);
    out.push({
      id: 'extract',
      description: 'tlearn extract (decode + forward, all cores) within 3.5x of PyTorch whole-job time',
      goal: `≤ ${fmt(bound / 1000, 1)} s for ${images} images (3.5 × ${images} × ${PYTORCH_MS_PER_IMAGE} ms)`,
      actual: `${fmt(wholeMs / 1000, 1)} s (${fmt(wholeMs / (images * PYTORCH_MS_PER_IMAGE), 1)}x PyTorch; ${extract.backend ?? '?'}${cores !== undefined ? `, ${fmt(cores, 2)} cores busy` : ''})`,
      met: wholeMs <= bound,
      ...(images < 200
        ? { note: `only ${images} images (--quick): process start and weight loading weigh more than on 200` }
        : {}),
    });
  } else {
    out.push(missing('extract', 'tlearn extract within 3.5x of PyTorch whole-job time', 'extract-cli'));
  }

  const fit = ok(figures, 'fit-20000');
  if (fit?.summary) {
    const bound = 1.5 * REFERENCE_SKLEARN_FIT.ms;
    const matrixMB = num(fit.extra?.matrixMB) ?? 0;
    const rss = fit.peakRssMB ?? Number.POSITIVE_INFINITY;
    const msPerEval = num(fit.extra?.msPerEval);
    const prepareMs = num(fit.extra?.prepareMs) ?? 0;
    const nIter = num(fit.extra?.nIter);
    // The synthetic data converge in fewer iterations than scikit-learn's real features did (100),
    // so the whole-job time alone would flatter us: the target is judged on the same amount of
    // work, scikit-learn's evaluation count at our cost per evaluation (plus our preparation).
    const equalWork = msPerEval === undefined ? undefined : prepareMs + REFERENCE_SKLEARN_EVALS * msPerEval;
    const cpuPerEval = num(fit.extra?.cpuMsPerEval);
    const threads = num(fit.extra?.threads) ?? 1;
    const idle =
      cpuPerEval === undefined ? undefined : prepareMs + (REFERENCE_SKLEARN_EVALS * cpuPerEval) / threads;
    const judged = equalWork ?? fit.summary.median;
    out.push({
      id: 'fit',
      description:
        '20,000 × 8192 binary fit within 1.5x of scikit-learn, peak memory ≤ 2 × the feature matrix',
      goal: `≤ ${fmt(bound / 1000, 1)} s (1.5 × ${fmt(REFERENCE_SKLEARN_FIT.ms / 1000)} s); peak RSS ≤ ${fmt(2 * matrixMB)} MB`,
      actual: `${
        equalWork === undefined
          ? ''
          : `${fmt(equalWork / 1000, 1)} s at scikit-learn's ${REFERENCE_SKLEARN_EVALS} evaluations (${fmt(msPerEval ?? 0)} vs ${REFERENCE_SKLEARN_FIT.msPerEval} ms each); `
      }whole job ${fmt(fit.summary.median / 1000, 1)} s in ${nIter ?? '?'} iterations; peak RSS ${fmt(rss)} MB (${fmt(rss / matrixMB, 2)}x the ${fmt(matrixMB)} MB matrix)`,
      met: judged <= bound && rss <= 2 * matrixMB,
      note: `${
        idle === undefined
          ? ''
          : `from CPU time, an idle machine would take ~${fmt(idle / 1000, 1)} s for the same work; `
      }accuracy and objective parity with scikit-learn are checked by the training tests (sklearn fixtures), not here: scikit-learn is not installed on this machine`,
    });
  } else {
    out.push(missing('fit', '20,000 × 8192 binary fit within 1.5x of scikit-learn', 'fit-20000'));
  }

  for (const server of ['', 'wasm-'] as const) {
    const latency = ok(figures, `api-${server}latency-c1`);
    if (latency?.summary === undefined) {
      if (server === '')
        out.push(missing('api', 'warm prediction p50 ≤ forward pass + 40 ms', 'api-latency-c1'));
      continue;
    }
    const backend = latency.backend ?? 'unknown';
    const p50 = latency.summary.median;
    // Requests lost at either concurrency (a figure with failed requests is itself 'failed').
    const lost = [1, 4]
      .map(
        (c) => num(figures.find((f) => f.name === `api-${server}latency-c${c}`)?.extra?.failedRequests) ?? 0,
      )
      .reduce((a, b) => a + b, 0);
    // The forward pass the same requests saw (server-side timings): on a shared machine the
    // standalone forward figure was measured minutes earlier, under another load.
    const inRequest = num(latency.extra?.serverForwardMs);
    const standalone = ok(figures, `forward-${backend}-150-flatten-b1`)?.summary?.median;
    const reference = inRequest ?? standalone;
    const parts = [
      inRequest === undefined
        ? undefined
        : `${fmt(p50 - inRequest)} ms over the forward pass of the same requests (${fmt(inRequest)} ms)`,
      standalone === undefined
        ? undefined
        : `${fmt(p50 - standalone)} ms over the standalone ${backend} forward figure (${fmt(standalone)} ms)`,
    ].filter((x): x is string => x !== undefined);
    out.push({
      id: `api${server ? '-wasm' : ''}`,
      description: `warm prediction latency p50 ≤ forward pass + 40 ms, no request lost (${server ? 'the API handler forced to the wasm fallback' : 'the API handler as deployed'})`,
      goal: `p50 ≤ ${backend} forward pass (150x150, batch 1) + 40 ms; 0 failed requests`,
      actual: `p50 ${fmt(p50)} ms at 1 client: ${parts.join('; ') || 'no forward time to compare'}; ${lost} failed requests`,
      met: reference === undefined ? null : p50 <= reference + 40 && lost === 0,
      ...(inRequest !== undefined && standalone !== undefined
        ? { note: 'judged against the forward time of the same requests' }
        : {}),
    });
  }

  // The quality pass: judged only when its benchmark ran (`--only quality`).
  const quality = ok(figures, 'quality-25000');
  if (quality?.summary) {
    const ratio = num(quality.extra?.peakRssRatio);
    out.push({
      id: 'quality',
      description:
        'data-quality pass at 25,000 × 8192 adds ≤ 60 % to the training step (CPU time), peak memory ≤ 1.3x training alone',
      goal: '≤ 60 %; ≤ 1.3x',
      actual: `${fmt(quality.summary.median, 1)} %; ${ratio === undefined ? '?' : fmt(ratio, 2)}x`,
      met: quality.summary.median <= 60 && ratio !== undefined && ratio <= 1.3,
    });
  }

  // Judged only when their benchmarks ran (`--only quality-25000`, `--only batch`).
  const share = ok(figures, 'quality-share-25000');
  if (share?.summary) {
    out.push({
      id: 'quality-share',
      description:
        "data-quality pass ≤ 40 % of the training step's wall time at 25,000 × 8192 (training + quality pass, the refits on the fit's threads)",
      goal: '≤ 40 %',
      actual: `${fmt(share.summary.median, 1)} %`,
      met: share.summary.median <= 40,
    });
  }
  const batch = ok(figures, 'batch-rate');
  if (batch?.summary) {
    out.push({
      id: 'batch-rate',
      description: "batch scoring rate ≥ 0.9x `tlearn extract`'s rate on the same images",
      goal: '≥ 0.9x',
      actual: `${fmt(batch.summary.median, 2)}x`,
      met: batch.summary.median >= 0.9,
    });
  }
  // Closing the loop: capturing every prediction adds at most 5 ms to the warm p50 (judged when
  // the latency benchmark ran; the figure comes with api-latency).
  const capture = ok(figures, 'api-capture-overhead');
  if (capture?.summary) {
    const off = num(capture.extra?.p50Off);
    const on = num(capture.extra?.p50On);
    const lost = num(capture.extra?.failedRequests) ?? 0;
    const observeOverhead = num(capture.extra?.serverObserveOverheadMs);
    const besideOff = num(capture.extra?.serverBesideForwardOffMs);
    const besideOn = num(capture.extra?.serverBesideForwardOnMs);
    const pairedClient = num(capture.extra?.pairedClientDiffMs);
    const pairedTotal = num(capture.extra?.pairedServerTotalDiffMs);
    const pairedText =
      pairedClient === undefined
        ? ''
        : `; back-to-back pairs (?capture=true or not): median ${fmt(pairedClient, 1)} ms client, ${fmt(pairedTotal ?? Number.NaN, 1)} ms server`;
    const beside =
      besideOff === undefined || besideOn === undefined
        ? ''
        : `; outside the forward pass ${fmt(besideOn - besideOff, 1)} ms more (${fmt(besideOff, 1)} → ${fmt(besideOn, 1)} ms)`;
    out.push({
      id: 'capture',
      description: 'capture on (sample 1.0) adds ≤ 5 ms to the warm prediction p50, no request lost',
      goal: 'p50 (on) − p50 (off) ≤ 5 ms; 0 failed requests',
      actual: `${fmt(capture.summary.median, 1)} ms (p50 ${off === undefined ? '?' : fmt(off, 1)} ms off, ${
        on === undefined ? '?' : fmt(on, 1)
      } ms on); ${lost} failed requests`,
      met: capture.summary.median <= 5 && lost === 0,
      ...(observeOverhead === undefined
        ? {}
        : {
            note: `server side, with capture on: the step after scoring (record + capture document) took ${fmt(observeOverhead, 1)} ms more${beside}${pairedText}; on a busy machine these are the figures to read, the client p50 moves by tens of ms`,
          }),
    });
  }

  const cold = ok(figures, 'api-cold-start');
  out.push(
    cold?.summary
      ? {
          id: 'cold-start',
          description: 'cold start (process start → first answered prediction) with real-size weights, < 5 s',
          goal: '< 5,000 ms',
          actual: `${fmt(cold.summary.median)} ms (${cold.backend ?? '?'})`,
          met: cold.summary.median < 5000,
        }
      : missing('cold-start', 'cold start < 5 s', 'api-cold-start'),
  );
  return out;
}

function missing(id: string, description: string, figure: string): TargetResult {
  return { id, description, goal: '', actual: `not measured (${figure} not run or failed)`, met: null };
}

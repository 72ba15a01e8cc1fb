import { describe, expect, it } from 'vitest';
import { LAMBDA_MAX_RESPONSE_BYTES } from '../../../lib/api/gateway.ts';
import type { ReportDocument } from '../../../lib/training/model-document.ts';
import {
  maxPredictionsPerPage,
  pageCurvePoints,
  REPORT_LIMITS,
  ReportSummarySchema,
  summarizeReport,
  trimUnknownReport,
} from '../../../lib/training/report-summary.ts';
import { reportWithPredictions } from '../../helpers/reports.ts';
import { makeHead, reportDocument } from '../../integration/api/support.ts';

const SPEC = 'vgg16/random-1/32x32/avg/caffe/bilinear';

function report(classes: string[], n: number): ReportDocument {
  return reportWithPredictions(reportDocument(makeHead(classes, 2, SPEC, 1), 'pets', 'v1'), n);
}

describe('the report summary (lib/training/report-summary.ts)', () => {
  it('stays a few KB at 200,000 held-out images, where report.json is far over Lambda’s 6 MB', () => {
    const big = report(['cat', 'dog', 'fox'], 200_000);

    const summary = summarizeReport(big);

    const stored = Buffer.byteLength(JSON.stringify(big));
    const bytes = Buffer.byteLength(JSON.stringify(summary));
    console.log(`200,000 held-out images x 3 classes: report.json ${stored} bytes, summary ${bytes} bytes`);
    expect(stored).toBeGreaterThan(LAMBDA_MAX_RESPONSE_BYTES);
    expect(bytes).toBeLessThan(10_000);
    expect(ReportSummarySchema.parse(summary)).toEqual(summary);
  });

  it('leaves the confusion matrix out above its class limit and says so', () => {
    const classes = Array.from({ length: REPORT_LIMITS.matrixClasses + 1 }, (_, i) => `c${i}`);
    const wide = {
      ...report(['a', 'b'], 10),
      classes,
      confusionMatrix: classes.map(() => classes.map(() => 0)),
    };

    const summary = summarizeReport(wide);

    expect(summary.confusionMatrix).toBeNull();
    expect(summary.omitted?.[0]).toContain(
      `${classes.length} classes is over ${REPORT_LIMITS.matrixClasses}`,
    );
  });

  it('pages curve points across class boundaries without losing or repeating one', () => {
    const r = report(['a', 'b', 'c'], 30);
    const all = (r.thresholds?.curves ?? []).flatMap((c) => c.points.map((p) => ({ label: c.label, ...p })));
    const seen: unknown[] = [];

    for (let offset: number | undefined = 0; offset !== undefined; ) {
      const page = pageCurvePoints(r, { offset, limit: 4 });
      seen.push(...page.items);
      offset = page.next;
    }

    expect(seen).toEqual(all);
  });

  it('bounds a predictions page by its probabilities, and trims an older report’s big parts', () => {
    expect(maxPredictionsPerPage(3)).toBe(REPORT_LIMITS.predictionsPerPage.max);
    expect(maxPredictionsPerPage(10_000)).toBe(10);
    expect(maxPredictionsPerPage(1_000_000)).toBe(1);
    expect(
      trimUnknownReport({ accuracy: 1, predictions: [1], thresholds: { curves: [1], targetPrecision: 0.9 } }),
    ).toEqual({
      accuracy: 1,
      thresholds: { targetPrecision: 0.9 },
    });
  });
});

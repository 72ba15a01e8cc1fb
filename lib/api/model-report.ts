/**
 * A model's evaluation over HTTP in bounded answers (docs/ARCHITECTURE.md "Tenancy"): the summary
 * in `GET /datasets/{d}/model`, and the parts that grow with the held-out images as pages:
 * `GET /datasets/{d}/model/predictions?true=&predicted=&limit=&token=` (a confusion-matrix cell:
 * the console's drill-down) and `GET /datasets/{d}/model/curves?label=&limit=&token=`. Both read
 * the current version's report.json (or `?version=`); a `token` pins the version it was made for,
 * so a promotion between pages does not mix two reports.
 */
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { z } from 'zod';
import { NotFoundError, ValidationError } from '../errors.ts';
import { missingModelError, readCurrentPointer, readReport, type StoredReport } from '../serving/store.ts';
import { MODEL_VERSION_RE } from '../storage/keys.ts';
import type { ReportDocument } from '../training/model-document.ts';
import {
  maxPredictionsPerPage,
  pageCurvePoints,
  pagePredictions,
  REPORT_LIMITS,
  type ReportSummary,
  summarizeReport,
  trimUnknownReport,
} from '../training/report-summary.ts';
import { datasetParam, parseWith } from './http.ts';
import type { CurvesPageSchema, PredictionsPageSchema } from './schemas.ts';
import type { RouteContext } from './types.ts';

/** The report part of `GET /datasets/{d}/model`: the summary, or an older report minus its big parts. */
export function reportForModelRoute(
  stored: StoredReport | undefined,
): ReportSummary | Record<string, unknown> | null {
  if (stored === undefined) return null;
  return stored.kind === 'parsed' ? summarizeReport(stored.report) : trimUnknownReport(stored.raw);
}

const Label = z.string().min(1).max(100);
const Version = z.string().regex(MODEL_VERSION_RE, 'a model version like 20260101T000000Z-abc123');
const Token = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9_-]+$/, 'a token from a previous page');
const limit = (max: number) => z.coerce.number().int().min(1).max(max).optional();

/** Query of `GET /datasets/{d}/model/predictions`. */
export const PredictionsQuery = z.object({
  version: Version.optional(),
  /** Only predictions of this true label (a confusion-matrix row). */
  true: Label.optional(),
  /** Only predictions of this predicted label (a column; with `true`, one cell). */
  predicted: Label.optional(),
  limit: limit(REPORT_LIMITS.predictionsPerPage.max),
  token: Token.optional(),
});

/** Query of `GET /datasets/{d}/model/curves`. */
export const CurvesQuery = z.object({
  version: Version.optional(),
  /** Only this class's curve. */
  label: Label.optional(),
  limit: limit(REPORT_LIMITS.curvePointsPerPage.max),
  token: Token.optional(),
});

/** Answer of `GET /datasets/{d}/model/predictions`. */
export type PredictionsPage = z.infer<typeof PredictionsPageSchema>;

/** Answer of `GET /datasets/{d}/model/curves`. */
export type CurvesPage = z.infer<typeof CurvesPageSchema>;

const TokenBody = z.object({ v: Version, o: z.number().int().nonnegative() });

function encodeToken(version: string, offset: number): string {
  return Buffer.from(JSON.stringify({ v: version, o: offset })).toString('base64url');
}

function decodeToken(token: string): { version: string; offset: number } {
  try {
    const body = TokenBody.parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
    return { version: body.v, offset: body.o };
  } catch (err) {
    throw new ValidationError('token is not one this API made; start again without it', {
      code: 'InvalidToken',
      cause: err,
    });
  }
}

/** The version and offset a page request asks for: its token's, else `?version=`, else the current one. */
async function pageStart(
  ctx: RouteContext,
  dataset: string,
  q: { version?: string | undefined; token?: string | undefined },
): Promise<{ version: string; offset: number }> {
  if (q.token !== undefined) {
    const t = decodeToken(q.token);
    if (q.version !== undefined && q.version !== t.version)
      throw new ValidationError(`token is for version ${t.version}, not ${q.version}`, {
        code: 'InvalidToken',
      });
    return t;
  }
  if (q.version !== undefined) return { version: q.version, offset: 0 };
  const current = await readCurrentPointer(ctx.s3, ctx.config.bucket, dataset);
  if (current === undefined) throw await missingModelError(ctx.s3, ctx.config.bucket, dataset);
  return { version: current.pointer.version, offset: 0 };
}

async function reportOf(
  ctx: RouteContext,
  dataset: string,
  version: string,
): Promise<ReportDocument | undefined> {
  const stored = await readReport(ctx.s3, ctx.config.bucket, dataset, version, ctx.log);
  if (stored === undefined)
    throw new NotFoundError(`dataset '${dataset}' has no report for model version ${version}`, {
      code: 'ReportNotFound',
    });
  // An older report that does not parse has no pages to offer (its summary is in GET …/model).
  return stored.kind === 'parsed' ? stored.report : undefined;
}

/** `GET /datasets/{d}/model/predictions`: a page of held-out predictions, optionally of one cell. */
export async function listHeldOutPredictionsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<PredictionsPage> {
  const dataset = datasetParam(event);
  const q = parseWith(PredictionsQuery, event.queryStringParameters ?? {}, 'query');
  const { version, offset } = await pageStart(ctx, dataset, q);
  const report = await reportOf(ctx, dataset, version);
  const classes = report?.classes ?? [];
  const size = Math.min(
    q.limit ?? REPORT_LIMITS.predictionsPerPage.default,
    maxPredictionsPerPage(classes.length),
  );
  const page = report
    ? pagePredictions(report, { trueLabel: q.true, predicted: q.predicted, offset, limit: size })
    : { items: [], total: 0, next: undefined };
  return {
    dataset,
    version,
    classes,
    items: page.items,
    total: page.total,
    limit: size,
    nextToken: page.next === undefined ? null : encodeToken(version, page.next),
  };
}

/** `GET /datasets/{d}/model/curves`: a page of precision/recall curve points, class by class. */
export async function listCurvePointsRoute(
  event: APIGatewayProxyEvent,
  ctx: RouteContext,
): Promise<CurvesPage> {
  const dataset = datasetParam(event);
  const q = parseWith(CurvesQuery, event.queryStringParameters ?? {}, 'query');
  const { version, offset } = await pageStart(ctx, dataset, q);
  const report = await reportOf(ctx, dataset, version);
  const size = q.limit ?? REPORT_LIMITS.curvePointsPerPage.default;
  const page = report
    ? pageCurvePoints(report, { label: q.label, offset, limit: size })
    : { items: [], total: 0, next: undefined };
  return {
    dataset,
    version,
    items: page.items,
    total: page.total,
    limit: size,
    nextToken: page.next === undefined ? null : encodeToken(version, page.next),
  };
}

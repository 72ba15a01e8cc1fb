/**
 * Shapes of the API answers the console reads: type-only imports of the API's own types (erased
 * by esbuild, checked by `tsc -p console/tsconfig.json`), so the page cannot drift from the API.
 */
import type { ModelSummary } from '../../lib/api/datasets.ts';
import type { ReportSummary } from '../../lib/training/report-summary.ts';

export type { DatasetListItem, DatasetStatus, ModelSummary } from '../../lib/api/datasets.ts';
export type { PredictionsPage } from '../../lib/api/model-report.ts';
export type { FailureItem, ModelVersionItem } from '../../lib/api/model-versions.ts';
export type { PredictionResponse as Prediction } from '../../lib/api/predict.ts';
export type { PresignedUpload } from '../../lib/api/uploads.ts';
export type { HeldOutPrediction } from '../../lib/training/report-summary.ts';
export type Report = ReportSummary;

/** `GET /datasets/{d}/model` (lib/api/datasets.ts getModelRoute; its report is the summary of report.json). */
export interface ModelResponse {
  dataset: string;
  model: ModelSummary & { previous: string | null };
  report: Report | null;
}

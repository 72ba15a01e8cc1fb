/**
 * Shapes of the API answers the console reads: type-only imports of the API's own types (erased
 * by esbuild, checked by `tsc -p console/tsconfig.json`), so the page cannot drift from the API.
 */
import type { ModelSummary } from '../../lib/api/datasets.ts';
import type { VersionSummary } from '../../lib/capture/monitoring.ts';
import type { PoolSuggestions } from '../../lib/capture/suggestions.ts';
import type { ReportDocument } from '../../lib/training/model-document.ts';

export type { DatasetListItem, DatasetStatus, ModelSummary } from '../../lib/api/datasets.ts';
export type { FailureItem, ModelVersionItem } from '../../lib/api/model-versions.ts';
export type { PredictionResponse as Prediction } from '../../lib/api/predict.ts';
export type { PresignedUpload } from '../../lib/api/uploads.ts';
export type { CaptureDocument, CapturePage } from '../../lib/capture/captures.ts';
export type { DatasetSettings } from '../../lib/capture/settings.ts';

export type Report = ReportDocument;
export type HeldOutPrediction = NonNullable<ReportDocument['predictions']>[number];

/** `GET /datasets/{d}/model` (lib/api/datasets.ts getModelRoute; its report typed as written by the trainer). */
export interface ModelResponse {
  dataset: string;
  model: ModelSummary & { previous: string | null };
  report: Report | null;
}

/** `GET /datasets/{d}/suggestions?n=` (lib/capture/suggestions.ts suggestFromPool, with the model it used). */
export type SuggestionsResponse = PoolSuggestions & {
  dataset: string;
  model: { version: string };
};

/** `GET /datasets/{d}/monitoring?days=` (lib/api/loop.ts monitoringRoute). */
export interface MonitoringResponse {
  dataset: string;
  days: string[];
  versions: VersionSummary[];
}

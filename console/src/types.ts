/**
 * Shapes of the API answers the console reads, derived from the route table's schemas through the
 * typed client (lib/api/client.ts `ResponseOf`; type-only, erased by esbuild, checked by
 * `tsc -p console/tsconfig.json`), so the page cannot drift from the API.
 */
import type { ResponseOf } from '../../lib/api/client.ts';

export type DatasetStatus = ResponseOf<'GET /datasets/{d}'>;
export type DatasetListItem = ResponseOf<'GET /datasets'>['datasets'][number];
export type ModelSummary = NonNullable<DatasetStatus['model']>;
export type ModelVersionItem = ResponseOf<'GET /datasets/{d}/models'>['versions'][number];
export type FailureItem = ResponseOf<'GET /datasets/{d}/failures'>['failures'][number];
export type Prediction = ResponseOf<'POST /datasets/{d}/predictions'>;
export type PresignedUpload = ResponseOf<'POST /datasets/{d}/uploads'>['uploads'][number];
export type ExportResponse = ResponseOf<'GET /datasets/{d}/model/export'>;
export type Quality = ResponseOf<'GET /datasets/{d}/quality'>;

/** `GET /datasets/{d}/model`: the model without weights, and the summary of its report. */
export type ModelResponse = ResponseOf<'GET /datasets/{d}/model'>;
export type Report = NonNullable<ModelResponse['report']>;
/** `GET /datasets/{d}/model/predictions`: a page of held-out predictions (a confusion cell). */
export type PredictionsPage = ResponseOf<'GET /datasets/{d}/model/predictions'>;
export type HeldOutPrediction = PredictionsPage['items'][number];

/** Closing the loop (lib/api/loop.ts). */
export type DatasetSettings = ResponseOf<'GET /datasets/{d}/settings'>['settings'];
export type CapturePage = ResponseOf<'GET /datasets/{d}/captures'>;
export type CaptureDocument = CapturePage['captures'][number];
export type SuggestionsResponse = ResponseOf<'GET /datasets/{d}/suggestions'>;
export type MonitoringResponse = ResponseOf<'GET /datasets/{d}/monitoring'>;
export type VersionSummary = MonitoringResponse['versions'][number];

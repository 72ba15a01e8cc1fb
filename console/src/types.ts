/** Shapes of the API answers the console reads (lib/api; kept to the fields used here). */

export interface DatasetListItem {
  name: string;
  images: number;
  labels: number;
  model: { version: string; promotedAt: string } | null;
}

export interface LabelReadiness {
  images: number;
  ready: number;
  failed: number;
  pending: number;
}

export interface ExecutionSummary {
  name: string;
  status: string;
  trigger: string | null;
  startedAt: string;
  stoppedAt: string | null;
  error: string | null;
  cause: string | null;
}

export interface ModelSummary {
  version: string;
  promotedAt: string;
  trainedAt: string;
  spec: string;
  randomWeights: boolean;
  classes: string[];
}

export interface DatasetStatus {
  dataset: string;
  images: { total: number; ready: number; failed: number; pending: number; skipped: number };
  labels: Record<string, LabelReadiness>;
  featuresSettled: boolean;
  model: ModelSummary | null;
  lastTraining: { version: string; at: string | null; promoted: boolean } | null;
  lastExecution: ExecutionSummary | null;
}

export interface ModelVersionItem {
  version: string;
  trainedAt: string | null;
  complete: boolean;
  current: boolean;
  accuracy: number | null;
  classes: string[];
  randomWeights: boolean;
}

export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  support: number;
}

export interface HeldOutPrediction {
  key: string;
  true: string;
  predicted: string;
  probabilities: number[];
}

export interface Report {
  classes: string[];
  evaluation: 'holdout' | 'none';
  note?: string;
  accuracy: number | null;
  logLoss: number | null;
  confusionMatrix: number[][] | null;
  perClass: (ClassScores & { label: string })[];
  macroAvg: ClassScores | null;
  counts: { total: number; train: number; test: number };
  trainedAt: string;
  predictions?: HeldOutPrediction[];
}

export interface ModelResponse {
  dataset: string;
  model: ModelSummary & { previous: string | null };
  report: Report | null;
}

export interface Prediction {
  label: string;
  confidence: number;
  scores: { label: string; probability: number }[];
  timingsMs: Record<string, number>;
  model: { version: string; randomWeights: boolean };
}

export interface FailureItem {
  key: string;
  label: string;
  code: string | null;
  reason: string;
}

export interface PresignedUpload {
  name: string;
  label: string;
  key: string;
  url: string;
  headers: Record<string, string>;
}

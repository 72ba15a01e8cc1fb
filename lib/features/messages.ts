import { z } from 'zod';
import { DatasetName } from '../storage/keys.ts';

/**
 * Messages on the features queue (docs/ARCHITECTURE.md "Messages"). Consumers parse with these schemas and
 * drop (log + metric) what does not parse.
 */
const common = {
  dataset: z.string().min(1),
  label: z.string().min(1),
  imageKey: z.string().startsWith('datasets/'),
  featureKey: z.string().startsWith('features/'),
  sourceEtag: z.string(),
  spec: z.string().min(1),
  at: z.string().datetime(),
};

export const FeatureReadyMessage = z.object({ type: z.literal('feature.ready'), ...common });
export const FeatureFailedMessage = z.object({
  type: z.literal('feature.failed'),
  ...common,
  reason: z.string(),
});
/** An image was deleted (or moved away): its feature and error record are gone; retrain without it. */
export const FeatureRemovedMessage = z.object({
  type: z.literal('feature.removed'),
  dataset: common.dataset,
  label: common.label,
  imageKey: common.imageKey,
  featureKey: common.featureKey,
  at: common.at,
});
export const FeatureMessage = z.discriminatedUnion('type', [
  FeatureReadyMessage,
  FeatureFailedMessage,
  FeatureRemovedMessage,
]);

export type FeatureReadyMessage = z.infer<typeof FeatureReadyMessage>;
export type FeatureFailedMessage = z.infer<typeof FeatureFailedMessage>;
export type FeatureRemovedMessage = z.infer<typeof FeatureRemovedMessage>;
export type FeatureMessage = z.infer<typeof FeatureMessage>;

/**
 * Why a training runs: `auto` (new or failed features), `manual` (POST /trainings, `tlearn train`),
 * `reindex` (a backfill's features), `delete` (images deleted or moved away).
 */
export const TRAINING_TRIGGERS = ['auto', 'manual', 'reindex', 'delete'] as const;
export type TrainingTrigger = (typeof TRAINING_TRIGGERS)[number];

/**
 * Input of the training state machine, the one definition: start-training, the API, the trainer
 * (train-head) and the state machine construct all use this schema/type.
 */
export const TrainingInput = z.object({
  dataset: DatasetName,
  trigger: z.enum(TRAINING_TRIGGERS),
  requestedAt: z.string().datetime(),
});
export type TrainingInput = z.infer<typeof TrainingInput>;

import { z } from 'zod';

/**
 * Messages on the features queue (DESIGN.md "Messages"). Consumers parse with these schemas and
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
export const FeatureMessage = z.discriminatedUnion('type', [FeatureReadyMessage, FeatureFailedMessage]);

export type FeatureReadyMessage = z.infer<typeof FeatureReadyMessage>;
export type FeatureFailedMessage = z.infer<typeof FeatureFailedMessage>;
export type FeatureMessage = z.infer<typeof FeatureMessage>;

/** Input of the training state machine. */
export const TrainingInput = z.object({
  dataset: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
  trigger: z.enum(['auto', 'manual']),
  requestedAt: z.string().datetime(),
});
export type TrainingInput = z.infer<typeof TrainingInput>;

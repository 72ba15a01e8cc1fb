import { z } from 'zod';

/**
 * S3 user metadata carried by every feature object (`.npy`) and error record (`.error.json`),
 * so a HEAD tells whether it is current without reading the body (docs/ARCHITECTURE.md "S3 layout").
 */
export const FEATURE_META = {
  /** ETag of the image the object was computed from. */
  sourceEtag: 'source-etag',
  /** Canonical feature spec string. */
  spec: 'feature-spec',
  /** Label, URI-encoded: S3 metadata is ASCII only (non-ASCII would come back RFC 2047-mangled). */
  label: 'label',
} as const;

/** Metadata for a feature or error object. */
export function featureMetadata(sourceEtag: string, spec: string, label: string): Record<string, string> {
  return {
    [FEATURE_META.sourceEtag]: sourceEtag,
    [FEATURE_META.spec]: spec,
    [FEATURE_META.label]: encodeURIComponent(label),
  };
}

/** Reads the label back from metadata written by `featureMetadata`; undefined when absent or garbled. */
export function metadataLabel(metadata: Record<string, string>): string | undefined {
  const raw = metadata[FEATURE_META.label];
  if (raw === undefined) return undefined;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * `features/{d}/{label}/{file}.error.json`: why an image could not be used. Readiness counts the
 * image as failed (never pending) while `sourceEtag` is the image's current ETag.
 */
export const FeatureErrorRecord = z.object({
  imageKey: z.string(),
  sourceEtag: z.string(),
  spec: z.string(),
  /** Human-readable, e.g. `CorruptImage: png image is truncated…`. */
  reason: z.string(),
  /** ImageDecodeError code: EmptyImage | UnsupportedImageFormat | CorruptImage | ImageTooLarge. */
  code: z.string(),
  at: z.string().datetime(),
});
export type FeatureErrorRecord = z.infer<typeof FeatureErrorRecord>;

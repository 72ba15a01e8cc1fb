/**
 * Typed errors shared by every layer. The HTTP layer maps them to status codes in one place
 * (`lib/api/errors.ts`); CLIs map them to exit codes. Messages say what to do next.
 */

/** Base class: every project error has a stable machine `code` and an HTTP-ish `status`. */
export class TlearnError extends Error {
  /** Stable identifier, e.g. `UnsupportedImageFormat`; goes into `error.code` of API responses. */
  readonly code: string;
  /** HTTP status this error maps to; < 500 means the message is safe to show to a client. */
  readonly status: number;

  constructor(code: string, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }

  /** Whether the message may be shown to a client (only client errors are exposed). */
  get expose(): boolean {
    return this.status < 500;
  }
}

/** Input that breaks a documented rule (a name, a parameter, a body). */
export class ValidationError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'ValidationError', message, 400, options);
  }
}

/** The thing asked for does not exist. */
export class NotFoundError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'NotFound', message, 404, options);
  }
}

/** The request conflicts with the current state (e.g. no promoted model yet). */
export class ConflictError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'Conflict', message, 409, options);
  }
}

/** Body over the size limit. */
export class PayloadTooLargeError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PayloadTooLarge', message, 413, options);
  }
}

/** Content type the endpoint does not take. */
export class UnsupportedMediaTypeError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('UnsupportedMediaType', message, 415, options);
  }
}

/**
 * An image that cannot be used. `code` says why: `EmptyImage`, `UnsupportedImageFormat`,
 * `CorruptImage`, `ImageTooLarge`. Maps to 422 at the API; written as `.error.json` by the extractor.
 */
export class ImageDecodeError extends TlearnError {
  constructor(
    code: 'EmptyImage' | 'UnsupportedImageFormat' | 'CorruptImage' | 'ImageTooLarge',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, 422, options);
  }
}

/** Features or models of a different feature spec than expected. Never mixed, never served. */
export class SpecMismatchError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SpecMismatch', message, 409, options);
  }
}

/** Not enough data to train (labels or images per label). */
export class InsufficientDataError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InsufficientData', message, 422, options);
  }
}

/** Configuration missing or invalid: names the variable. Fails at cold start. */
export class ConfigError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ConfigError', message, 500, options);
  }
}

/** Base model weights missing, unreadable, or of the wrong shape. */
export class WeightsError extends TlearnError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('WeightsError', message, 500, options);
  }
}

/** Returns a readable one-line description of any thrown value (for logs and `.error.json`). */
export function describeError(err: unknown): string {
  if (err instanceof TlearnError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

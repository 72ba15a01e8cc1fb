/**
 * Whether tfjs-node (the engine the Lambda image loads first) loads here. It is an optional
 * dependency whose install downloads libtensorflow, so it is absent offline (this repository's CI)
 * and present in the image and on machines with internet. Engine tests hold either way; the tests
 * of the tfjs-node path run only where it loads, and say why they are skipped elsewhere.
 */
const TFJS_NODE = '@tensorflow/tfjs-node';

export interface EngineAvailability {
  available: boolean;
  /** Why it is not available (printed once by the tests that skip). */
  reason: string;
}

let checked: Promise<EngineAvailability> | undefined;

/** Imports tfjs-node once (which registers its 'tensorflow' backend, as production does). */
export function tfjsNodeAvailability(): Promise<EngineAvailability> {
  checked ??= import(/* @vite-ignore */ TFJS_NODE).then(
    () => ({ available: true, reason: '' }),
    (err: unknown) => {
      const reason = `${TFJS_NODE} does not load here (${err instanceof Error ? err.message.split('\n')[0] : String(err)}); the tfjs-node tests are skipped. It is an optional dependency whose install downloads libtensorflow: it is present only where \`npm ci\` ran with internet access (and in the Lambda image).`;
      console.info(`[skip] ${reason}`);
      return { available: false, reason };
    },
  );
  return checked;
}

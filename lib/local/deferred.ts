/**
 * A promise settled from outside: the local stack (lib/local/stack.ts) starts a server that needs
 * a part loaded later (the API's handler, the Step Functions runner), and requests wait for it.
 */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

/** A {@link Deferred}; settling it again is a no-op, as for any promise. */
export function deferred<T>(): Deferred<T> {
  let resolve: (value: T) => void = () => {};
  let reject: (err: unknown) => void = () => {};
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

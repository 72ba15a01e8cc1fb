/**
 * The hot loop of the logistic-regression fit: loss and gradient over a block of rows.
 *
 * This function is also run inside `worker_threads` from its own source text
 * (`lossGradBlock.toString()`), so it must stay self-contained: no imports, no module-level
 * helpers, no closures; only its arguments and `Math`.
 *
 * Parameter layout (scikit-learn's Fortran-order ravel of its `(K, d+1)` coefficient array):
 * `w[j*K + k]` is the weight of feature j for output k, `w[d*K + k]` the intercept of output k.
 * K = 1 for binary problems (sigmoid), K = number of classes otherwise (softmax).
 *
 * Rows come either dense (`dense` is the n×d float32 matrix, `rows` optionally maps local row r
 * to a matrix row) or compact: local row r's non-zeros are a record in WebAssembly memory at byte
 * offset `rowOff[r]` (`rowNnz[r]` f32 values, then as many u16 column indices; compact-matrix.ts)
 * read by the `wx` kernel (see wasm-kernel.ts); then `w`, `grad` and `z` are views of that memory
 * at `wPtr`, `gPtr`, `zPtr` (the offsets are unused for dense rows).
 * Each row is read once for its logits and once more, while still in cache, for its gradient.
 * Sums are float64 in a fixed order, so a block's result does not depend on which thread ran it.
 *
 * @returns the sum of the rows' log losses; adds the rows' loss gradients (unscaled) into `grad`.
 */
export function lossGradBlock(
  dense: Float32Array | null,
  d: number,
  rows: Int32Array | null,
  rowOff: Uint32Array | null,
  rowNnz: Int32Array | null,
  wx: {
    dot1(p: number, end: number, idxPtr: number, valPtr: number, wPtr: number): number;
    axpy1(p: number, end: number, idxPtr: number, valPtr: number, gPtr: number, r: number): void;
    dotK(p: number, end: number, idxPtr: number, valPtr: number, wPtr: number, K: number, zPtr: number): void;
    axpyK(
      p: number,
      end: number,
      idxPtr: number,
      valPtr: number,
      gPtr: number,
      K: number,
      rPtr: number,
    ): void;
  } | null,
  y: Int32Array,
  K: number,
  start: number,
  end: number,
  w: Float64Array,
  wPtr: number,
  grad: Float64Array,
  gPtr: number,
  z: Float64Array,
  zPtr: number,
): number {
  let loss = 0;
  const bOff = d * K;
  for (let r = start; r < end; r++) {
    const yr = y[r] as number;
    // 1. Logits of row r.
    // Compact row: non-zeros 0..p1 of the record at valPtr (values) / idxPtr (indices).
    const p0 = 0;
    let p1 = 0;
    let valPtr = 0;
    let idxPtr = 0;
    let off = 0;
    if (rowOff !== null && rowNnz !== null) {
      valPtr = rowOff[r] as number;
      p1 = rowNnz[r] as number;
      idxPtr = valPtr + 4 * p1;
    } else if (dense !== null) {
      off = (rows === null ? r : (rows[r] as number)) * d;
    }
    if (K === 1) {
      // Four accumulators: breaks the floating-point add dependency chain.
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      if (wx !== null) {
        a0 = wx.dot1(p0, p1, idxPtr, valPtr, wPtr);
      } else if (dense !== null) {
        let j = 0;
        for (; j + 3 < d; j += 4) {
          a0 += (dense[off + j] as number) * (w[j] as number);
          a1 += (dense[off + j + 1] as number) * (w[j + 1] as number);
          a2 += (dense[off + j + 2] as number) * (w[j + 2] as number);
          a3 += (dense[off + j + 3] as number) * (w[j + 3] as number);
        }
        for (; j < d; j++) a0 += (dense[off + j] as number) * (w[j] as number);
      }
      const zr = (w[bOff] as number) + (a0 + a1 + (a2 + a3));
      // 2. Binomial log loss log(1 + e^z) - y·z, computed without overflow, and its derivative.
      loss += zr > 0 ? zr + Math.log1p(Math.exp(-zr)) - yr * zr : Math.log1p(Math.exp(zr)) - yr * zr;
      const e = Math.exp(-Math.abs(zr));
      const prob = zr >= 0 ? 1 / (1 + e) : e / (1 + e);
      const res = prob - yr;
      // 3. Gradient from the same row.
      if (wx !== null) {
        wx.axpy1(p0, p1, idxPtr, valPtr, gPtr, res);
      } else if (dense !== null) {
        for (let j = 0; j < d; j++) grad[j] = (grad[j] as number) + res * (dense[off + j] as number);
      }
      grad[bOff] = (grad[bOff] as number) + res;
    } else {
      for (let k = 0; k < K; k++) z[k] = w[bOff + k] as number;
      if (wx !== null) {
        wx.dotK(p0, p1, idxPtr, valPtr, wPtr, K, zPtr);
      } else if (dense !== null) {
        for (let j = 0; j < d; j++) {
          const v = dense[off + j] as number;
          if (v === 0) continue; // ReLU features are mostly zeros: skipping saves K multiply-adds
          const base = j * K;
          for (let k = 0; k < K; k++) z[k] = (z[k] as number) + v * (w[base + k] as number);
        }
      }
      // Multinomial log loss logsumexp(z) - z_y, and softmax(z) - onehot(y) in z.
      let mx = z[0] as number;
      for (let k = 1; k < K; k++) if ((z[k] as number) > mx) mx = z[k] as number;
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp((z[k] as number) - mx);
      loss += mx + Math.log(sum) - (z[yr] as number);
      for (let k = 0; k < K; k++) z[k] = Math.exp((z[k] as number) - mx) / sum;
      z[yr] = (z[yr] as number) - 1;
      if (wx !== null) {
        wx.axpyK(p0, p1, idxPtr, valPtr, gPtr, K, zPtr);
      } else if (dense !== null) {
        for (let j = 0; j < d; j++) {
          const v = dense[off + j] as number;
          if (v === 0) continue;
          const base = j * K;
          for (let k = 0; k < K; k++) grad[base + k] = (grad[base + k] as number) + (z[k] as number) * v;
        }
      }
      for (let k = 0; k < K; k++) grad[bOff + k] = (grad[bOff + k] as number) + (z[k] as number);
    }
  }
  return loss;
}

/**
 * The classifier head as plain data (what `models/{d}/{version}/model.json` holds, minus metadata).
 * Shapes follow scikit-learn: two classes → one row of `coef` and one intercept (positive class =
 * classes[1]); K > 2 classes → K rows (multinomial softmax).
 */
export interface Head {
  /** Class labels, sorted (like scikit-learn's `classes_`). */
  classes: string[];
  /** [1][d] for binary, [K][d] otherwise. */
  coef: number[][];
  /** [1] for binary, [K] otherwise. */
  intercept: number[];
  /** Feature spec string the head was trained on; prediction refuses other specs. */
  spec: string;
}

/** Options of the L2 logistic regression (scikit-learn names and defaults). */
export interface FitOptions {
  /** Inverse regularization strength. @default 1.0 */
  C: number;
  /** Maximum L-BFGS iterations. @default 100 */
  maxIter: number;
  /** Gradient tolerance (scikit-learn's `tol`, on the max abs projected gradient). @default 1e-4 */
  tol: number;
}

export const DEFAULT_FIT_OPTIONS: FitOptions = { C: 1.0, maxIter: 100, tol: 1e-4 };

/** Result of a fit, before wrapping into a Head. */
export interface FitResult {
  coef: number[][];
  intercept: number[];
  /** L-BFGS iterations run. */
  nIter: number;
  /** Whether the tolerance was met before maxIter. */
  converged: boolean;
  /** Final objective value (scikit-learn's: sum of log losses + ||w||²/(2C)), for comparisons. */
  objective: number;
  /** Objective+gradient evaluations. */
  nEval: number;
}

/**
 * A dense sample matrix: `n` rows of `d` float32 values, row-major, contiguous.
 * The fit's hot loop reads it; never build per-sample JS objects.
 */
export interface Matrix {
  data: Float32Array;
  n: number;
  d: number;
}

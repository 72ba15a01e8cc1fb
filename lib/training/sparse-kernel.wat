;; The sparse inner loops of the logistic-regression fit (see wasm-kernel.ts for how they are used).
;;
;; Per row of a CSR matrix (p..end is the row's range of non-zeros): a dot product with the
;; weights, and an "axpy" of a residual into the gradient. Same IEEE float64 arithmetic in the same
;; order as the JavaScript loops of logistic-kernel.ts, so results do not change; WebAssembly only
;; removes the bounds checks and deoptimizations (~2.5x faster on these gathers / scatters).
;;
;; Memory is imported (`env.mem`, shared, up to 4 GiB) so worker threads run the same module on the
;; same memory. Pointers are byte offsets: $idx u16 column indices, $val f32 values, weights,
;; gradients and scratch f64.
;;
;; This file is WebAssembly text plus one template device, expanded by
;; scripts/build-sparse-kernel.ts (`npm run build:kernel`, which compiles the result with wabt into
;; sparse-kernel-wasm.ts):
;;   lines between `;; @each K FROM..TO` and `;; @end K` are repeated for K = FROM..TO,
;;   lines between `;; @each k` and `;; @end k` (inside them) for k = 0..K-1,
;;   and in the repeated lines {K}, {k}, {8K}, {8k} and {33+K} are replaced by their values.
;; Everything else is standard WAT (https://webassembly.github.io/spec/core/text/).
(module
  (import "env" "mem" (memory 1 65536 shared))

  (type $dot (func (param i32 i32 i32 i32 i32) (result f64)))
  (type $axpy (func (param i32 i32 i32 i32 i32 f64)))
  (type $rowK (func (param i32 i32 i32 i32 i32 i32 i32)))

  ;; dot1(p, end, idxPtr, valPtr, wPtr) -> Σ val[q]·w[idx[q]], with four interleaved accumulators
  ;; summed as (a0 + a1) + (a2 + a3), exactly like lossGradBlock's JavaScript loop.
  (func $dot1 (export "dot1") (type $dot)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $w i32) (result f64)
    (local $ip i32) (local $vp i32)
    (local $a0 f64) (local $a1 f64) (local $a2 f64) (local $a3 f64)
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    ;; Four at a time while p + 4 <= end: a_j += val[p+j]·w[idx[p+j]].
    (block $done4
      (loop $four
        (br_if $done4 (i32.gt_u (i32.add (local.get $p) (i32.const 4)) (local.get $end)))
        (local.set $a0 (f64.add (local.get $a0) (f64.mul
          (f64.promote_f32 (f32.load offset=0 (local.get $vp)))
          (f64.load (i32.add (local.get $w) (i32.shl (i32.load16_u offset=0 (local.get $ip)) (i32.const 3)))))))
        (local.set $a1 (f64.add (local.get $a1) (f64.mul
          (f64.promote_f32 (f32.load offset=4 (local.get $vp)))
          (f64.load (i32.add (local.get $w) (i32.shl (i32.load16_u offset=2 (local.get $ip)) (i32.const 3)))))))
        (local.set $a2 (f64.add (local.get $a2) (f64.mul
          (f64.promote_f32 (f32.load offset=8 (local.get $vp)))
          (f64.load (i32.add (local.get $w) (i32.shl (i32.load16_u offset=4 (local.get $ip)) (i32.const 3)))))))
        (local.set $a3 (f64.add (local.get $a3) (f64.mul
          (f64.promote_f32 (f32.load offset=12 (local.get $vp)))
          (f64.load (i32.add (local.get $w) (i32.shl (i32.load16_u offset=6 (local.get $ip)) (i32.const 3)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 8)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 16)))
        (br $four)))
    ;; The rest into a0.
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a0 (f64.add (local.get $a0) (f64.mul
          (f64.promote_f32 (f32.load (local.get $vp)))
          (f64.load (i32.add (local.get $w) (i32.shl (i32.load16_u (local.get $ip)) (i32.const 3)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $one)))
    (f64.add
      (f64.add (local.get $a0) (local.get $a1))
      (f64.add (local.get $a2) (local.get $a3))))

  ;; axpy1(p, end, idxPtr, valPtr, gPtr, r): g[idx[q]] += r·val[q].
  (func $axpy1 (export "axpy1") (type $axpy)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $g i32) (param $r f64)
    (local $ip i32) (local $vp i32) (local $addr i32)
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    (block $done
      (loop $one
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (f64.store
          (local.tee $addr
            (i32.add (local.get $g) (i32.shl (i32.load16_u (local.get $ip)) (i32.const 3))))
          (f64.add
            (f64.load (local.get $addr))
            (f64.mul (local.get $r) (f64.promote_f32 (f32.load (local.get $vp))))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $one))))

  ;; dotK(p, end, idxPtr, valPtr, wPtr, K, zPtr): z[k] += val[q]·w[idx[q]·K + k] for k < K, and
  ;; axpyK(p, end, idxPtr, valPtr, gPtr, K, rPtr): g[idx[q]·K + k] += r[k]·val[q].
  ;; Both dispatch on K through $byK: to the version unrolled for that K ($dotK3 … below) when
  ;; there is one, else to the loop over any K ($dotKLoop / $axpyKLoop). One indirect call per row.
  (func $dotK (export "dotK") (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $w i32) (param $K i32) (param $z i32)
    (call_indirect $byK (type $rowK)
      (local.get $p) (local.get $end) (local.get $idx) (local.get $val) (local.get $w) (local.get $K) (local.get $z)
      (select (local.get $K) (i32.const 0) (i32.lt_u (i32.sub (local.get $K) (i32.const 3)) (i32.const 30)))))

  (func $axpyK (export "axpyK") (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $g i32) (param $K i32) (param $r i32)
    (call_indirect $byK (type $rowK)
      (local.get $p) (local.get $end) (local.get $idx) (local.get $val) (local.get $g) (local.get $K) (local.get $r)
      (i32.add (i32.const 33)
        (select (local.get $K) (i32.const 0) (i32.lt_u (i32.sub (local.get $K) (i32.const 3)) (i32.const 30))))))

  ;; Slot K of $byK: dotK unrolled for K outputs; slot 33 + K: axpyK. Slots 0 and 33: the loops,
  ;; taken for K outside 3..32 (K - 3 < 30 unsigned; 32 is the last K of `@each K` below).
  (table $byK 66 funcref)
  (elem (i32.const 0) $dotKLoop)
  (elem (i32.const 33) $axpyKLoop)

  ;; The loop over any K.
  (func $dotKLoop (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $w i32) (param $K i32) (param $z i32)
    (local $ip i32) (local $vp i32) (local $base i32) (local $k i32) (local $v f64) (local $addr i32)
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (f64.promote_f32 (f32.load (local.get $vp))))
        ;; base = w + idx·K·8
        (local.set $base (i32.add (local.get $w)
          (i32.shl (i32.mul (i32.load16_u (local.get $ip)) (local.get $K)) (i32.const 3))))
        (local.set $k (i32.const 0))
        (block $doneK
          (loop $eachK
            (br_if $doneK (i32.ge_u (local.get $k) (local.get $K)))
            ;; z[k] += v·w[base + 8k]
            (f64.store
              (local.tee $addr (i32.add (local.get $z) (i32.shl (local.get $k) (i32.const 3))))
              (f64.add
                (f64.load (local.get $addr))
                (f64.mul
                  (local.get $v)
                  (f64.load (i32.add (local.get $base) (i32.shl (local.get $k) (i32.const 3)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $eachK)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $row))))

  (func $axpyKLoop (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $g i32) (param $K i32) (param $r i32)
    (local $ip i32) (local $vp i32) (local $base i32) (local $k i32) (local $v f64) (local $addr i32)
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (f64.promote_f32 (f32.load (local.get $vp))))
        ;; base = g + idx·K·8
        (local.set $base (i32.add (local.get $g)
          (i32.shl (i32.mul (i32.load16_u (local.get $ip)) (local.get $K)) (i32.const 3))))
        (local.set $k (i32.const 0))
        (block $doneK
          (loop $eachK
            (br_if $doneK (i32.ge_u (local.get $k) (local.get $K)))
            ;; g[base + 8k] += r[k]·v
            (f64.store
              (local.tee $addr (i32.add (local.get $base) (i32.shl (local.get $k) (i32.const 3))))
              (f64.add
                (f64.load (local.get $addr))
                (f64.mul
                  (f64.load (i32.add (local.get $r) (i32.shl (local.get $k) (i32.const 3))))
                  (local.get $v))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $eachK)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $row))))

  ;; Unrolled for a fixed K: the K running sums (dotK) or residuals (axpyK) live in locals instead
  ;; of memory, and the K weights of a feature are read at constant offsets. Same operations in the
  ;; same order as the loops above (the K argument is ignored).
  ;; @each K 3..32
  (elem (i32.const {K}) $dotK{K})
  (elem (i32.const {33+K}) $axpyK{K})

  (func $dotK{K} (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $w i32) (param $K i32) (param $z i32)
    (local $ip i32) (local $vp i32) (local $base i32) (local $v f64)
    ;; @each k
    (local $z{k} f64)
    ;; @end k
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    ;; @each k
    (local.set $z{k} (f64.load offset={8k} (local.get $z)))
    ;; @end k
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (f64.promote_f32 (f32.load (local.get $vp))))
        (local.set $base (i32.add (local.get $w) (i32.mul (i32.load16_u (local.get $ip)) (i32.const {8K}))))
        ;; @each k
        (local.set $z{k} (f64.add (local.get $z{k}) (f64.mul (local.get $v) (f64.load offset={8k} (local.get $base)))))
        ;; @end k
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $row)))
    ;; @each k
    (f64.store offset={8k} (local.get $z) (local.get $z{k}))
    ;; @end k
    )

  (func $axpyK{K} (type $rowK)
    (param $p i32) (param $end i32) (param $idx i32) (param $val i32) (param $g i32) (param $K i32) (param $r i32)
    (local $ip i32) (local $vp i32) (local $base i32) (local $v f64)
    ;; @each k
    (local $r{k} f64)
    ;; @end k
    (local.set $ip (i32.add (local.get $idx) (i32.shl (local.get $p) (i32.const 1))))
    (local.set $vp (i32.add (local.get $val) (i32.shl (local.get $p) (i32.const 2))))
    ;; @each k
    (local.set $r{k} (f64.load offset={8k} (local.get $r)))
    ;; @end k
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $v (f64.promote_f32 (f32.load (local.get $vp))))
        (local.set $base (i32.add (local.get $g) (i32.mul (i32.load16_u (local.get $ip)) (i32.const {8K}))))
        ;; @each k
        (f64.store offset={8k} (local.get $base)
          (f64.add (f64.load offset={8k} (local.get $base)) (f64.mul (local.get $r{k}) (local.get $v))))
        ;; @end k
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $ip (i32.add (local.get $ip) (i32.const 2)))
        (local.set $vp (i32.add (local.get $vp) (i32.const 4)))
        (br $row))))
  ;; @end K
)

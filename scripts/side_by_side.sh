#!/usr/bin/env bash
# Runs the keras-rs benchmark and the reference scripts from ../shared/anchors/py in one go,
# on this machine, and prints one table of medians.
# Usage: scripts/side_by_side.sh [python-with-keras-jax-and-torch] [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-python3}
OUT=${2:-target/side-by-side}
ANCHORS=${ANCHORS:-../shared/anchors/py}
mkdir -p "$OUT"
cargo build --release --example bench
./target/release/examples/bench --json "$OUT/keras-rs.json" | tee "$OUT/keras-rs.md"
for w in W-xor W-iris W-fmnist W-wide W-infer1 W-inferB W-cnn; do
  KERAS_BACKEND=jax ANCHOR_RESULTS="$OUT" "$PY" "$ANCHORS/bench_keras.py" "$w" > /dev/null
  ANCHOR_RESULTS="$OUT" "$PY" "$ANCHORS/bench_torch.py" "$w" > /dev/null
done
"$PY" - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
ours = json.load(open(os.path.join(out, "keras-rs.json")))
# workload: (unit, lower is better, how to read the reference JSON per framework)
spec = {
    "W-xor": ("s per fit", True, {"keras-jax": ("fit_s", "median"), "torch-eager": ("fit_s", "median")}),
    "W-iris": ("s per fit", True, {"keras-jax": ("fit_s", "median"), "torch-eager": ("fit_s", "median")}),
    "W-fmnist": ("s per epoch", True, {"keras-jax": ("epoch_s", "median"), "torch-eager": ("epoch_s", "median")}),
    "W-wide": ("s per epoch", True, {"keras-jax": ("epoch_s", "median"), "torch-eager": ("epoch_s", "median")}),
    "W-infer1": ("us per call", True, {"keras-jax": ("call_backend_tensor_input", "median_us", "median"),
                                       "torch-eager": ("call_inference_mode", "median_us", "median")}),
    "W-inferB": ("samples/s", False, {"keras-jax": ("samples_per_s_median",), "torch-eager": ("samples_per_s_median",)}),
    "W-cnn": ("s per epoch", True, {"keras-jax": ("epoch_s", "median"), "torch-eager": ("epoch_s", "median")}),
}
def ref(fw, w):
    p = os.path.join(out, f"{fw}__{w}.json")
    if w not in spec or not os.path.exists(p):
        return None
    v = json.load(open(p))
    for k in spec[w][2][fw]:
        v = v[k]
    return v
def ratio(ours, theirs, lower):
    if theirs is None:
        return "-"
    x = theirs / ours if lower else ours / theirs
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"
print("| workload | unit | keras-rs | Keras 3 (JAX) | PyTorch (eager) | speed-up vs Keras | vs PyTorch |")
print("|---|---|---|---|---|---|---|")
for w, v in ours.items():
    # A row with no reference script (W-fmnist-2in, ...) prints "-" beside ours.
    unit, lower, _ = spec.get(w, ("-", True, {}))
    k, t = ref("keras-jax", w), ref("torch-eager", w)
    f = lambda x: "-" if x is None else f"{x:.4g}"
    print(f"| {w} | {unit} | {f(v)} | {f(k)} | {f(t)} | {ratio(v, k, lower)} | {ratio(v, t, lower)} |")
PY

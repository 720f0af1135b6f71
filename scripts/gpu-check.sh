#!/usr/bin/env bash
# What only a GPU can check, in one command (README, "GPU"):
#
#   scripts/gpu-check.sh --build     # with Rust: builds the test and bench binaries (feature
#                                    # `cuda`) into target/gpu-check/, which travel to the GPU
#   scripts/gpu-check.sh             # on a machine with a CUDA GPU (driver 580+, CUDA 13.0), no
#                                    # Rust needed: runs them there
#   scripts/gpu-check.sh --emulate   # builds, then runs everything it can on the CUDA emulator
#                                    # (CI runs this mode, so the script is known to work)
#
# It prints the driver and device, compiles every kernel with NVRTC (no spills), runs the
# backend conformance suite and the Keras fixtures on the device (`cuda_gpu` tests, or
# `cuda_emulated` with --emulate), compares the device with the emulator kernel by kernel over
# the suite's op families (`cuda_gpu_vs_emulated`; with --emulate the emulator with the CPU,
# `cuda_emulated_vs_cpu`), times the GPU rows of the benchmark (W-gpu-wide fp32 and TF32,
# W-gpu-small, W-fmnist) and, where PyTorch and the anchors' script are there, the reference
# beside them. Each step has a time limit; the whole GPU run stays under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=target/gpu-check
mode=gpu
case "${1:-}" in
    --build) mode=build ;;
    --emulate) mode=emulate ;;
    "") ;;
    *)
        sed -n '2,18p' "$0" >&2
        exit 2
        ;;
esac

# The features the binaries are built with: `cuda` (what a GPU machine needs). CI passes
# KERAS_GPU_CHECK_FEATURES=all, the README test command's `--workspace --all-features`, whose
# binaries its test run has just built: any other set (even `cuda,mpi`, or the same features
# without --workspace, which unifies dependencies' features differently) compiles the crate,
# the benchmark and the conformance suite again, about 10 minutes on two cores.
features="${KERAS_GPU_CHECK_FEATURES:-cuda}"
if [ "$features" = all ]; then
    feature_args=(--workspace --all-features)
else
    feature_args=(--features "$features")
fi

build() {
    cargo build --release "${feature_args[@]}" --example bench || return 1
    # The test binaries' paths, as cargo reports them.
    cargo test --release "${feature_args[@]}" --test conformance --test cuda_nvrtc --no-run --message-format=json \
        | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' >target/gpu-check-tests.txt || return 1
    mkdir -p "$bin"
    while read -r name path; do cp "$path" "$bin/$name"; done <target/gpu-check-tests.txt
    cp target/release/examples/bench "$bin/bench"
    # Without line tables and symbols the binaries travel light (the device tool carries 64 MiB;
    # with symbols kept they came to 60 MiB on 2026-12-07, stripped to 53). Panics still print
    # their messages and places.
    strip --strip-all "$bin"/* || return 1
    local size
    size=$(du -cm "$bin"/* | tail -1 | cut -f1)
    echo "built: $(ls "$bin" | tr '\n' ' ')($size MiB)"
    if [ "$size" -gt 60 ]; then
        echo "warning: $bin is $size MiB, more than the 60 MiB that can travel to a lent GPU" >&2
        [ "$mode" = build ] && return 1
    fi
    return 0
}

if [ "$mode" = build ]; then
    build
    exit $?
fi
if [ "$mode" = emulate ]; then
    build || exit 1
fi
for b in conformance cuda_nvrtc bench; do
    [ -x "$bin/$b" ] || { echo "error: $bin/$b is missing: run scripts/gpu-check.sh --build first" >&2; exit 1; }
done

failed=()
# step NAME SECONDS COMMAND...: runs one step under a time limit and records a failure.
step() {
    local name=$1 limit=$2
    shift 2
    echo
    echo "== $name"
    local t0=$SECONDS
    timeout "$limit" "$@"
    local rc=$?
    echo "-- $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)") in $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || failed+=("$name")
}

if [ "$mode" = gpu ]; then
    # Time limits add up to 460 s: the whole check stays under 8 minutes.
    step "driver and device" 20 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv
    # CI=true: a missing NVRTC fails the step instead of skipping it.
    step "NVRTC: every kernel for sm_80 and sm_90, no spills" 50 env CI=true "$bin/cuda_nvrtc" --nocapture
    step "conformance and Keras fixtures on the GPU" 170 "$bin/conformance" --ignored cuda_gpu:: --test-threads=1
    # Every kernel of the op families on the GPU and on the emulator, outputs compared after
    # each call (a difference names its kernel); PAIRED_REPORT prints per test how close each
    # kernel's two results came. The emulator is slow: the fixtures stay out.
    step "each kernel: the GPU against the emulator" 70 env PAIRED_REPORT=1 "$bin/conformance" --ignored \
        cuda_gpu_vs_emulated:: --skip keras_fixtures --skip training_matches_the_cpu --test-threads=1 --nocapture
    step "GPU rows of the benchmark" 100 "$bin/bench" --cuda
    anchors=${ANCHORS:-../shared/anchors}
    [ -d "$anchors" ] || anchors=shared/anchors
    if python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null && [ -f "$anchors/gpu/bench_torch_gpu.py" ]; then
        step "reference: PyTorch on the same GPU" 50 python3 "$anchors/gpu/bench_torch_gpu.py"
    else
        echo
        echo "== reference: skipped (needs PyTorch with CUDA and \$ANCHORS/gpu/bench_torch_gpu.py)"
    fi
else
    step "emulator: the host C++ compiler" 10 sh -c 'c++ --version | head -1'
    step "NVRTC: every kernel for sm_80 and sm_90, no spills" 120 "$bin/cuda_nvrtc" --nocapture
    step "conformance and Keras fixtures on the CUDA emulator" 300 "$bin/conformance" cuda_emulated::
    step "each kernel: the emulator against the CPU" 120 "$bin/conformance" cuda_emulated_vs_cpu:: \
        --skip keras_fixtures --skip training_matches_the_cpu
    step "GPU rows of the benchmark, on the emulator (toy sizes)" 120 "$bin/bench" --cuda --emulate W-gpu-wide
fi

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "gpu-check ($mode): every step passed"
else
    echo "gpu-check ($mode): FAILED: ${failed[*]}"
    exit 1
fi

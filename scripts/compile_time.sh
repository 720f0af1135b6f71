#!/usr/bin/env bash
# Compile-time measurements of keras-rs models, for one or two source trees in one run:
#  - W-compile (../shared/anchors/WORKLOADS.md): a 4-layer sequential model in a binary; touch
#    its file, incremental `cargo build --release`;
#  - graph150: a generated 152-layer residual network (`functional!`, 21 blocks of
#    Conv2D-BN-ReLU-Conv2D-BN-Add-ReLU on 32x32x3) in a binary, the same incremental rebuild;
#  - the macro's own cost: the expansion of that model timed in process (keras-macros'
#    ignored test `expansion_time`).
# Each tree gets scratch crates under its target/compile-time/ depending on it by path; their
# dependencies build once (cold, reported), then every incremental build is repeated ROUNDS
# times and the median printed. Usage: scripts/compile_time.sh [ROUNDS] TREE [TREE2]
set -euo pipefail
ROUNDS=${1:-5}
shift
[ $# -ge 1 ] || { echo "usage: $0 [ROUNDS] TREE [TREE2]" >&2; exit 2; }

gen_graph150() {
  python3 - <<'PY'
blocks = 21
lines = ["use keras::prelude::*;", "", "functional! {",
         "    pub struct Graph150(image: [32, 32, 3]) -> out {",
         "        let x = Conv2D(16, 3, padding = \"same\", use_bias = false)(image);",
         "        let x = BatchNormalization()(x);",
         "        let x = Activation(relu)(x);"]
for b in range(blocks):
    lines += [f"        let h = Conv2D(16, 3, padding = \"same\", use_bias = false)(x);",
              "        let h = BatchNormalization()(h);",
              "        let h = Activation(relu)(h);",
              f"        let h = Conv2D(16, 3, padding = \"same\", use_bias = false)(h);",
              "        let h = BatchNormalization()(h);",
              "        let x = Add()(x, h);",
              "        let x = Activation(relu)(x);"]
lines += ["        let x = GlobalAveragePooling2D()(x);", "        let out = Dense(10, softmax)(x);", "    }", "}", "",
          "fn main() {",
          "    let model = Graph150::new(&Cpu::default());",
          "    let x = vec![0.5f32; 32 * 32 * 3];",
          "    let p = model.predict_one_slice(&x).unwrap();",
          "    println!(\"{} layers, {} params, p[0] = {}\", Graph150::LAYER_NAMES.len(), Graph150::PARAMS, p[0]);",
          "}"]
print("\n".join(lines))
PY
}

w_compile() {
  cat <<'RS'
use keras::prelude::*;

sequential! {
    pub struct Mlp = Input(784) => Dense(32, sigmoid) => Dense(32, relu) => Dense(10, sigmoid) => Dense(1, sigmoid);
}

fn main() {
    let model = Mlp::new(&Cpu::default());
    println!("{}", model.predict_one(&[0.5; 784])[0]);
}
RS
}

setup() { # tree name source-fn
  local tree=$1 name=$2 dir="$1/target/compile-time/$2"
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$name"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
keras = { path = "$(cd "$tree" && pwd)" }

[workspace]
TOML
  "$3" > "$dir/src/main.rs"
  echo "$dir"
}

seconds() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); python3 -c "print(f'{$t1 - $t0:.2f}')"; }

median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(v) for v in sys.argv[1:]):.2f}')" "$@"; }

declare -A RESULT
for tree in "$@"; do
  for name in w_compile graph150; do
    src=w_compile; [ $name = graph150 ] && src=gen_graph150
    dir=$(setup "$tree" $name $src)
    export CARGO_TARGET_DIR="$tree/target/compile-time/target"
    RESULT[$tree,$name,cold]=$(seconds cargo build --release --manifest-path "$dir/Cargo.toml")
    cargo build --release --manifest-path "$dir/Cargo.toml" >/dev/null 2>&1 || { echo "build of $dir failed" >&2; cargo build --release --manifest-path "$dir/Cargo.toml"; exit 1; }
  done
done
for r in $(seq 1 "$ROUNDS"); do
  for tree in "$@"; do
    for name in w_compile graph150; do
      dir="$tree/target/compile-time/$name"
      export CARGO_TARGET_DIR="$tree/target/compile-time/target"
      touch "$dir/src/main.rs"
      RESULT[$tree,$name,$r]=$(seconds cargo build --release --manifest-path "$dir/Cargo.toml")
    done
  done
done
echo "| tree | W-compile incremental (median of $ROUNDS) | graph150 incremental (median of $ROUNDS) | graph150 binary | cold build of both (deps included) |"
echo "|---|---|---|---|---|"
for tree in "$@"; do
  w=(); g=()
  for r in $(seq 1 "$ROUNDS"); do w+=("${RESULT[$tree,w_compile,$r]}"); g+=("${RESULT[$tree,graph150,$r]}"); done
  size=$(stat -c %s "$tree/target/compile-time/target/release/graph150")
  echo "| $tree | $(median "${w[@]}") s | $(median "${g[@]}") s | $((size / 1024)) KiB | ${RESULT[$tree,w_compile,cold]} s + ${RESULT[$tree,graph150,cold]} s |"
done
# The macro's own share: graph150's expansion timed in process, in the last tree given.
last="${!#}"
gen_graph150 | sed -n '/^functional! {/,/^}/p' | sed '1d;$d' > "$last/target/compile-time/graph150.dsl"
(cd "$last" && CARGO_TARGET_DIR="$last/target/compile-time/target" KERAS_EXPAND_FILE="$last/target/compile-time/graph150.dsl" \
  cargo test --release -p keras-macros --lib expansion_time -- --ignored --nocapture 2>/dev/null | grep "expansion of")

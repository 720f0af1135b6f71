#!/usr/bin/env bash
# Runs two builds of the benchmark in alternation on this machine and prints each row's median
# over the rounds, side by side, with the ratio (above 1: the second build is faster).
# Usage: scripts/compare_builds.sh OLD_BENCH NEW_BENCH [rounds] [out-dir] [bench args...]
# where OLD_BENCH and NEW_BENCH are built `examples/bench` binaries (for example the one of a
# `git worktree` of the old commit and this checkout's target/release/examples/bench).
set -euo pipefail
OLD=$1
NEW=$2
ROUNDS=${3:-3}
OUT=${4:-target/compare-builds}
shift $(( $# < 4 ? $# : 4 ))
mkdir -p "$OUT"
for r in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    bin=$OLD
    [ "$which" = new ] && bin=$NEW
    echo "round $r: $which" >&2
    "$bin" --json "$OUT/$which-$r.json" "$@" > "$OUT/$which-$r.md"
  done
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, os, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = {w: [json.load(open(os.path.join(out, f"{w}-{r}.json"))) for r in range(1, rounds + 1)] for w in ("old", "new")}
higher_is_better = {"W-inferB"}
print(f"| workload | old (median of {rounds}) | new (median of {rounds}) | new vs old |")
print("|---|---|---|---|")
for row in runs["old"][0]:
    old = statistics.median(r[row] for r in runs["old"])
    new = statistics.median(r[row] for r in runs["new"])
    speed = new / old if row in higher_is_better else old / new
    print(f"| {row} | {old:.4g} | {new:.4g} | {speed:.3f}x |")
PY

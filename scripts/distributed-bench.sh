#!/usr/bin/env bash
# W-fmnist and W-wide trained data-parallel over MPI on this machine, side by side in one run:
# one rank with 2 threads, then 2 ranks with 1 thread each (bench --mpi; the all-reduce's cost
# per step in the notes). Needs OpenMPI (Debian openmpi-bin, libopenmpi-dev, libclang-dev) and
# Fashion-MNIST (dataset-fashion-mnist). Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --features mpi --example bench
bench=target/release/examples/bench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "## No job (plain fit), 2 threads"
KERAS_NUM_THREADS=2 "$bench" "${@:-W-fmnist}" "${@:-W-wide}"
echo
echo "## 1 rank x 2 threads"
KERAS_NUM_THREADS=2 mpirun --bind-to none -np 1 "$bench" --mpi "$@"
echo
echo "## 2 ranks x 1 thread"
mpirun --oversubscribe --bind-to none -np 2 -x KERAS_NUM_THREADS=1 "$bench" --mpi "$@"

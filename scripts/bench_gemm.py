"""float32 GEMM throughput of PyTorch (MKL / oneDNN) and NumPy (OpenBLAS) on given shapes, 2 threads.

    python bench_gemm.py m,k,n,ta,tb ...

`bench --gemm` runs it (with $KERAS_BENCH_PYTHON) to put both beside our GEMM in one run. Each
shape is C[m x n] = A[m x k] . B[k x n], with A stored as k x m when ta is 1 and B as n x k when tb
is 1 (the products are taken on transposed views, as our GEMM takes them). Prints one line per
shape: the median GFLOP/s of PyTorch, then of NumPy ("-" for a library that is missing).
"""
import statistics
import sys
import time

import numpy as np

try:
    import torch

    torch.set_num_threads(2)
except ImportError:
    torch = None
try:
    from threadpoolctl import threadpool_limits

    threadpool_limits(2)
except ImportError:
    print("note: no threadpoolctl; NumPy uses its default thread count", file=sys.stderr)


def gflops(f, flops):
    reps = max(2, int(1e9 / flops))
    f()
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        runs.append((time.perf_counter() - t0) / reps)
    return flops / statistics.median(runs) / 1e9


rng = np.random.default_rng(0)
for spec in sys.argv[1:]:
    m, k, n, ta, tb = (int(v) for v in spec.split(","))
    a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
    av, bv = (a.T if ta else a), (b.T if tb else b)
    c = np.empty((m, n), dtype=np.float32)
    flops = 2.0 * m * n * k
    cells = []
    if torch is not None:
        ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
        tav, tbv = (ta_.t() if ta else ta_), (tb_.t() if tb else tb_)
        tc = torch.from_numpy(c)
        with torch.inference_mode():
            cells.append(f"{gflops(lambda: torch.matmul(tav, tbv, out=tc), flops):.1f}")
    else:
        cells.append("-")
    cells.append(f"{gflops(lambda: np.matmul(av, bv, out=c), flops):.1f}")
    print(" ".join(cells), flush=True)

// WindowOps: sliding windows over NHWC samples (im2col and col2im, the depthwise products over
// patch rows, pooling), the CPU backend's backend/cpu/window.rs on the device. One thread per
// output value, except the depthwise kernel gradient: one block per value, summing over every
// patch row (deterministic, but not in the CPU's row-by-row order). The backward passes that the
// CPU computes by scattering (col2im, pooling) are gathers here: each input value sums the terms
// that reach it in the order the CPU adds them, so the results agree bit for bit and no atomics
// are needed. Products are __fmul_rn so that NVRTC does not fuse them into the sums (the CPU
// rounds each one).

struct Window2d {
    unsigned long long h, w, c, oh, ow, kh, kw, sh, sw, dh, dw, pt, pl;
};

// PoolKind's discriminants.
#define POOL_MAX 0u
#define POOL_AVERAGE 1u

struct Pool2d {
    Window2d window;
    unsigned int kind;
};

struct Depthwise {
    unsigned long long rows, taps, c, dm;
};

// The input row (or column) tap k of output o reads, or -1 when it reads padding
// (Window2d::tap).
__device__ __forceinline__ long long keras_tap(unsigned long long o, unsigned long long k, unsigned long long stride,
                                               unsigned long long dilation, unsigned long long pad,
                                               unsigned long long n) {
    unsigned long long at = o * stride + k * dilation;
    return at >= pad && at - pad < n ? (long long)(at - pad) : -1;
}

// The output row (or column) whose tap k reads input i, or -1 when none does (stride and
// dilation at least 1, checked by the caller: then a later tap reads a given input from an
// earlier output, so the gathers below go through the taps backwards to visit the outputs in
// order, as the CPU does).
__device__ __forceinline__ long long keras_tap_source(unsigned long long i, unsigned long long k,
                                                      unsigned long long stride, unsigned long long dilation,
                                                      unsigned long long pad, unsigned long long n_out) {
    unsigned long long at = i + pad;
    if (at < k * dilation) return -1;
    at -= k * dilation;
    return at % stride == 0 && at / stride < n_out ? (long long)(at / stride) : -1;
}

// The divisor of an average window: its taps inside the input (window.rs's `counts`).
__device__ __forceinline__ float keras_window_count(const Window2d& g, unsigned long long oy, unsigned long long ox) {
    unsigned long long rows = 0, cols = 0;
    for (unsigned long long i = 0; i < g.kh; i++) rows += keras_tap(oy, i, g.sh, g.dh, g.pt, g.h) >= 0;
    for (unsigned long long j = 0; j < g.kw; j++) cols += keras_tap(ox, j, g.sw, g.dw, g.pl, g.w) >= 0;
    return (float)(rows * cols);
}

// Patch rows: cols[(n, oy, ox), (i, j, ch)] = x[n, tap row, tap column, ch], 0 for padding.
extern "C" __global__ void im2col(Window2d g, unsigned long long batch, const float* x, float* cols) {
    unsigned long long taps = g.kh * g.kw;
    KERAS_FOR(e, batch * g.oh * g.ow * taps * g.c) {
        unsigned long long ch = e % g.c, t = (e / g.c) % taps, row = e / (g.c * taps);
        unsigned long long ox = row % g.ow, oy = (row / g.ow) % g.oh, n = row / (g.ow * g.oh);
        long long iy = keras_tap(oy, t / g.kw, g.sh, g.dh, g.pt, g.h);
        long long ix = keras_tap(ox, t % g.kw, g.sw, g.dw, g.pl, g.w);
        cols[e] = iy >= 0 && ix >= 0 ? x[((n * g.h + iy) * g.w + ix) * g.c + ch] : 0.0f;
    }
}

// The adjoint of im2col: dx[n, iy, ix, ch] sums the patch entries that copied it, in the CPU's
// order (output pixels row-major, then taps).
extern "C" __global__ void col2im(Window2d g, unsigned long long batch, const float* cols, float* dx) {
    unsigned long long patch = g.kh * g.kw * g.c;
    KERAS_FOR(e, batch * g.h * g.w * g.c) {
        unsigned long long ch = e % g.c, pixel = e / g.c;
        unsigned long long ix = pixel % g.w, iy = (pixel / g.w) % g.h, n = pixel / (g.w * g.h);
        float s = 0.0f;
        for (unsigned long long i = g.kh; i-- > 0;) {
            long long oy = keras_tap_source(iy, i, g.sh, g.dh, g.pt, g.oh);
            if (oy < 0) continue;
            for (unsigned long long j = g.kw; j-- > 0;) {
                long long ox = keras_tap_source(ix, j, g.sw, g.dw, g.pl, g.ow);
                if (ox < 0) continue;
                s += cols[((n * g.oh + oy) * g.ow + ox) * patch + (i * g.kw + j) * g.c + ch];
            }
        }
        dx[e] = s;
    }
}

// y[r, ch * dm + m] = sum over taps t of cols[r, t * c + ch] * kernel[t, ch * dm + m].
extern "C" __global__ void depthwise(Depthwise d, const float* cols, const float* kernel, float* y) {
    unsigned long long k = d.taps * d.c, n = d.c * d.dm;
    KERAS_FOR(e, d.rows * n) {
        unsigned long long r = e / n, o = e % n, ch = o / d.dm;
        float s = 0.0f;
        for (unsigned long long t = 0; t < d.taps; t++) s += __fmul_rn(cols[r * k + t * d.c + ch], kernel[t * n + o]);
        y[e] = s;
    }
}

// A block-wide sum of one value per thread (blockDim.x a multiple of 32, at most 1024), in a
// fixed order; every thread gets the total. `scratch` holds 32 floats of shared memory.
__device__ float keras_window_block_sum(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// dkernel[t, ch * dm + m] = sum over rows r of cols[r, t * c + ch] * dy[r, ch * dm + m]: one
// block per kernel value (values past gridDim.x by stride), each thread summing every
// blockDim.x-th row, then the block's sum. Deterministic, though not in the CPU's order (which
// sums the rows one after another).
extern "C" __global__ void depthwise_kernel_grad(Depthwise d, const float* cols, const float* dy, float* dkernel) {
    __shared__ float scratch[32];
    unsigned long long k = d.taps * d.c, n = d.c * d.dm;
    for (unsigned long long e = blockIdx.x; e < d.taps * n; e += gridDim.x) {
        unsigned long long t = e / n, o = e % n, ch = o / d.dm;
        float s = 0.0f;
        for (unsigned long long r = threadIdx.x; r < d.rows; r += blockDim.x) {
            s += __fmul_rn(cols[r * k + t * d.c + ch], dy[r * n + o]);
        }
        s = keras_window_block_sum(s, scratch);
        if (threadIdx.x == 0) dkernel[e] = s;
    }
}

// dcols[r, t * c + ch] = sum over m of dy[r, ch * dm + m] * kernel[t, ch * dm + m] (the CPU's
// f32 sum starts from -0.0).
extern "C" __global__ void depthwise_input_grad(Depthwise d, const float* kernel, const float* dy, float* dcols) {
    unsigned long long k = d.taps * d.c, n = d.c * d.dm;
    KERAS_FOR(e, d.rows * k) {
        unsigned long long r = e / k, t = (e % k) / d.c, ch = e % d.c;
        const float* g = dy + r * n + ch * d.dm;
        const float* w = kernel + t * n + ch * d.dm;
        float s = d.dm == 1 ? __fmul_rn(g[0], w[0]) : -0.0f;
        for (unsigned long long m = 0; d.dm != 1 && m < d.dm; m++) s += __fmul_rn(g[m], w[m]);
        dcols[e] = s;
    }
}

// Pooling: y[n, oy, ox, ch] the largest of the window's inputs inside the image (NaN when one
// is NaN, as Keras's lax.max; fmaxf would drop it), or their sum times 1 / their count.
extern "C" __global__ void pool2d(Pool2d p, unsigned long long batch, const float* x, float* y) {
    const Window2d& g = p.window;
    KERAS_FOR(e, batch * g.oh * g.ow * g.c) {
        unsigned long long ch = e % g.c, pixel = e / g.c;
        unsigned long long ox = pixel % g.ow, oy = (pixel / g.ow) % g.oh, n = pixel / (g.ow * g.oh);
        const float* xs = x + n * g.h * g.w * g.c + ch;
        float s = p.kind == POOL_MAX ? -KERAS_INF : 0.0f;
        for (unsigned long long i = 0; i < g.kh; i++) {
            long long iy = keras_tap(oy, i, g.sh, g.dh, g.pt, g.h);
            if (iy < 0) continue;
            for (unsigned long long j = 0; j < g.kw; j++) {
                long long ix = keras_tap(ox, j, g.sw, g.dw, g.pl, g.w);
                if (ix < 0) continue;
                float v = xs[(iy * g.w + ix) * g.c];
                if (p.kind == POOL_MAX) s = (v > s || v != v) ? v : s;
                else s += v;
            }
        }
        if (p.kind != POOL_MAX) s *= 1.0f / keras_window_count(g, oy, ox);
        y[e] = s;
    }
}

// Whether tap (ti, tj) of window (oy, ox) is the first tap inside the image, in tap order, whose
// input equals the window's output y, or is NaN when y is (xs: the sample's channel).
__device__ __forceinline__ bool keras_first_max(const Window2d& g, const float* xs, unsigned long long oy,
                                                unsigned long long ox, unsigned long long ti, unsigned long long tj,
                                                float y) {
    for (unsigned long long i = 0; i < g.kh; i++) {
        long long iy = keras_tap(oy, i, g.sh, g.dh, g.pt, g.h);
        if (iy < 0) continue;
        for (unsigned long long j = 0; j < g.kw; j++) {
            long long ix = keras_tap(ox, j, g.sw, g.dw, g.pl, g.w);
            if (ix < 0) continue;
            float v = xs[(iy * g.w + ix) * g.c];
            if (v == y || (v != v && y != y)) return i == ti && j == tj;
        }
    }
    return false;
}

// The backward pass of pool2d as a gather: dx[n, iy, ix, ch] sums, over the windows that read it
// in the CPU's order, dy for the first input of a max window equal to its output (or NaN, when
// the output is NaN; 0 for the others), or dy / count for an average window.
extern "C" __global__ void pool2d_backward(Pool2d p, unsigned long long batch, const float* x, const float* y,
                                           const float* dy, float* dx) {
    const Window2d& g = p.window;
    KERAS_FOR(e, batch * g.h * g.w * g.c) {
        unsigned long long ch = e % g.c, pixel = e / g.c;
        unsigned long long ix = pixel % g.w, iy = (pixel / g.w) % g.h, n = pixel / (g.w * g.h);
        const float* xs = x + n * g.h * g.w * g.c + ch;
        unsigned long long out = n * g.oh * g.ow * g.c + ch;
        float s = 0.0f;
        for (unsigned long long i = g.kh; i-- > 0;) {
            long long oy = keras_tap_source(iy, i, g.sh, g.dh, g.pt, g.oh);
            if (oy < 0) continue;
            for (unsigned long long j = g.kw; j-- > 0;) {
                long long ox = keras_tap_source(ix, j, g.sw, g.dw, g.pl, g.ow);
                if (ox < 0) continue;
                unsigned long long o = out + (oy * g.ow + ox) * g.c;
                if (p.kind == POOL_MAX) {
                    s += keras_first_max(g, xs, oy, ox, i, j, y[o]) ? dy[o] : 0.0f;
                } else {
                    s += __fmul_rn(dy[o], 1.0f / keras_window_count(g, oy, ox));
                }
            }
        }
        dx[e] = s;
    }
}

// LayoutOps: kernels that move values (axis permutations, repeats, padding and cropping,
// upsampling, column blocks) and the merge layers. One thread per output value; the sums of the
// backward passes are gathers that add each output's terms in the order the CPU backend adds
// them (backend/cpu/shuffle.rs, merge.rs), so the results agree bit for bit. Products are
// __fmul_rn so that NVRTC does not fuse them into the sums (the CPU rounds each one).

#define KERAS_MAX_RANK 8

struct Permutation {
    unsigned long long rank;
    unsigned long long shape[KERAS_MAX_RANK];
    unsigned long long perm[KERAS_MAX_RANK];
};

struct Repeat {
    unsigned long long batch, times, width;
};

struct Border2d {
    unsigned long long h, w, c, top, bottom, left, right;
};

struct Upsample2d {
    unsigned long long h, w, c, sh, sw;
    bool bilinear;
};

struct CopyCols {
    unsigned long long rows, width, src_width, src_off, dst_width, dst_off;
};

// MergeOp's discriminants.
#define MERGE_ADD 0u
#define MERGE_SUBTRACT 1u
#define MERGE_MULTIPLY 2u
#define MERGE_AVERAGE 3u
#define MERGE_MAXIMUM 4u
#define MERGE_MINIMUM 5u

// Each of `batch` samples of p.rank axes (p validated by the caller: a permutation of its axes)
// permuted: output axis a is input axis perm[a]. n = batch * floats per sample.
extern "C" __global__ void permute(Permutation p, const float* x, float* y, unsigned long long n) {
    unsigned long long len = 1;
    for (unsigned long long a = 0; a < p.rank; a++) len *= p.shape[a];
    KERAS_FOR(i, n) {
        unsigned long long sample = i / len, rest = i % len, src = 0;
        // The output's multi-index, last axis first; output axis a steps the input by the
        // stride of input axis perm[a].
        for (unsigned long long a = p.rank; a-- > 0;) {
            unsigned long long axis = p.perm[a], extent = p.shape[axis], stride = 1;
            for (unsigned long long b = axis + 1; b < p.rank; b++) stride *= p.shape[b];
            src += (rest % extent) * stride;
            rest /= extent;
        }
        y[i] = x[sample * len + src];
    }
}

// y[b, t, :] = x[b, :].
extern "C" __global__ void repeat(Repeat r, const float* x, float* y) {
    KERAS_FOR(i, r.batch * r.times * r.width) {
        unsigned long long b = i / (r.times * r.width), k = i % r.width;
        y[i] = x[b * r.width + k];
    }
}

// dx[b, k] = dy[b, 0, k] + dy[b, 1, k] + ..., copies in order (no copies: 0).
extern "C" __global__ void repeat_backward(Repeat r, const float* dy, float* dx) {
    KERAS_FOR(i, r.batch * r.width) {
        unsigned long long b = i / r.width, k = i % r.width;
        const float* g = dy + b * r.times * r.width + k;
        float s = r.times > 0 ? g[0] : 0.0f;
        for (unsigned long long t = 1; t < r.times; t++) s += g[t * r.width];
        dx[i] = s;
    }
}

// Each of `batch` small samples into the middle of a large one, zeros around it (one thread
// per large value).
extern "C" __global__ void pad2d(Border2d g, unsigned long long batch, const float* small, float* large) {
    unsigned long long lh = g.h + g.top + g.bottom, lw = g.w + g.left + g.right;
    KERAS_FOR(i, batch * lh * lw * g.c) {
        unsigned long long ch = i % g.c, pixel = i / g.c;
        unsigned long long x = pixel % lw, y = (pixel / lw) % lh, n = pixel / (lw * lh);
        bool inside = y >= g.top && y < g.top + g.h && x >= g.left && x < g.left + g.w;
        large[i] = inside ? small[((n * g.h + (y - g.top)) * g.w + (x - g.left)) * g.c + ch] : 0.0f;
    }
}

// The middle of each of `batch` large samples into a small one.
extern "C" __global__ void crop2d(Border2d g, unsigned long long batch, const float* large, float* small) {
    unsigned long long lh = g.h + g.top + g.bottom, lw = g.w + g.left + g.right;
    KERAS_FOR(i, batch * g.h * g.w * g.c) {
        unsigned long long ch = i % g.c, pixel = i / g.c;
        unsigned long long x = pixel % g.w, y = (pixel / g.w) % g.h, n = pixel / (g.w * g.h);
        small[i] = large[((n * lh + g.top + y) * lw + g.left + x) * g.c + ch];
    }
}

// The two inputs output o reads along an axis of n inputs scaled by `scale`, and the second
// one's weight: half-pixel centres, clamped at the edges (shuffle.rs's linear_taps, the same
// float operations) or, for nearest upsampling, input o / scale twice with weight 0.
struct AxisTaps {
    unsigned long long i0, i1;
    float t;
};

__device__ __forceinline__ AxisTaps keras_axis_taps(bool bilinear, unsigned long long o, unsigned long long scale,
                                                   unsigned long long n) {
    AxisTaps a;
    if (!bilinear) {
        a.i0 = a.i1 = o / scale;
        a.t = 0.0f;
        return a;
    }
    float src = ((float)o + 0.5f) / (float)scale - 0.5f;
    src = src > 0.0f ? src : 0.0f;
    unsigned long long i0 = (unsigned long long)src;
    a.i0 = i0 < n - 1 ? i0 : n - 1;
    a.i1 = a.i0 + 1 < n - 1 ? a.i0 + 1 : n - 1;
    a.t = src - (float)a.i0;
    return a;
}

// Upsamples `batch` NHWC samples: nearest (each pixel over its block) or bilinear.
extern "C" __global__ void upsample2d(Upsample2d g, unsigned long long batch, const float* x, float* y) {
    unsigned long long oh = g.h * g.sh, ow = g.w * g.sw;
    KERAS_FOR(i, batch * oh * ow * g.c) {
        unsigned long long k = i % g.c, pixel = i / g.c;
        unsigned long long ox = pixel % ow, oy = (pixel / ow) % oh, n = pixel / (ow * oh);
        const float* xs = x + n * g.h * g.w * g.c + k;
        if (!g.bilinear) {
            y[i] = xs[((oy / g.sh) * g.w + ox / g.sw) * g.c];
            continue;
        }
        AxisTaps r = keras_axis_taps(true, oy, g.sh, g.h), c = keras_axis_taps(true, ox, g.sw, g.w);
        float a = xs[(r.i0 * g.w + c.i0) * g.c], b = xs[(r.i0 * g.w + c.i1) * g.c];
        float d = xs[(r.i1 * g.w + c.i0) * g.c], e = xs[(r.i1 * g.w + c.i1) * g.c];
        float top = __fadd_rn(__fmul_rn(a, 1.0f - c.t), __fmul_rn(b, c.t));
        float bottom = __fadd_rn(__fmul_rn(d, 1.0f - c.t), __fmul_rn(e, c.t));
        y[i] = __fadd_rn(__fmul_rn(top, 1.0f - r.t), __fmul_rn(bottom, r.t));
    }
}

// The backward pass of upsample2d as a gather: input value (n, iy, ix, k) sums w * dy over the
// outputs that read it, in the CPU's order (outputs row-major, then the four corners (y0, x0),
// (y0, x1), (y1, x0), (y1, x1), terms of weight 0 skipped). An input is read only by outputs
// within one input pixel of it, scaled: the loops cover those, with a margin.
extern "C" __global__ void upsample2d_backward(Upsample2d g, unsigned long long batch, const float* dy, float* dx) {
    unsigned long long oh = g.h * g.sh, ow = g.w * g.sw;
    KERAS_FOR(i, batch * g.h * g.w * g.c) {
        unsigned long long k = i % g.c, pixel = i / g.c;
        unsigned long long ix = pixel % g.w, iy = (pixel / g.w) % g.h, n = pixel / (g.w * g.h);
        const float* gs = dy + n * oh * ow * g.c + k;
        unsigned long long y_lo = iy > 1 ? (iy - 1) * g.sh - 1 : 0, y_hi = (iy + 2) * g.sh + 1;
        unsigned long long x_lo = ix > 1 ? (ix - 1) * g.sw - 1 : 0, x_hi = (ix + 2) * g.sw + 1;
        y_hi = y_hi < oh ? y_hi : oh;
        x_hi = x_hi < ow ? x_hi : ow;
        float s = 0.0f;
        for (unsigned long long oy = y_lo; oy < y_hi; oy++) {
            AxisTaps r = keras_axis_taps(g.bilinear, oy, g.sh, g.h);
            if (r.i0 != iy && r.i1 != iy) continue;
            for (unsigned long long ox = x_lo; ox < x_hi; ox++) {
                AxisTaps c = keras_axis_taps(g.bilinear, ox, g.sw, g.w);
                if (c.i0 != ix && c.i1 != ix) continue;
                float v = gs[(oy * ow + ox) * g.c];
                unsigned long long rows[2] = {r.i0, r.i1}, cols[2] = {c.i0, c.i1};
                float wys[2] = {1.0f - r.t, r.t}, wxs[2] = {1.0f - c.t, c.t};
                for (int a = 0; a < 2; a++) {
                    for (int b = 0; b < 2; b++) {
                        float w = __fmul_rn(wys[a], wxs[b]);
                        if (w != 0.0f && rows[a] == iy && cols[b] == ix) s = __fadd_rn(s, __fmul_rn(w, v));
                    }
                }
            }
        }
        dx[i] = s;
    }
}

// dst[r, dst_off + k] = src[r, src_off + k] for k < width.
extern "C" __global__ void copy_cols(CopyCols c, const float* src, float* dst) {
    KERAS_FOR(i, c.rows * c.width) {
        unsigned long long r = i / c.width, k = i % c.width;
        dst[r * c.dst_width + c.dst_off + k] = src[r * c.src_width + c.src_off + k];
    }
}

// The merge of the running result a and the next input b: Maximum and Minimum keep a NaN of
// either operand, as Keras's ops.maximum / ops.minimum (and the CPU's fold) do.
__device__ __forceinline__ float keras_merge(unsigned int op, float a, float b) {
    switch (op) {
    case MERGE_SUBTRACT: return a - b;
    case MERGE_MULTIPLY: return a * b;
    case MERGE_MAXIMUM: return (b > a || b != b) ? b : a;
    case MERGE_MINIMUM: return (b < a || b != b) ? b : a;
    default: return a + b;
    }
}

// One input of a merge, folded into y in input order: the first copied (`first`), each later one
// merged; `scale` (Average: 1 / inputs) multiplies the result after the last input (`last`).
extern "C" __global__ void merge_step(unsigned int op, const float* x, float* y, unsigned long long n, bool first,
                                      bool last, float scale) {
    KERAS_FOR(i, n) {
        float v = first ? x[i] : keras_merge(op, y[i], x[i]);
        if (last && op == MERGE_AVERAGE) v *= scale;
        y[i] = v;
    }
}

// dx = dy * factor (Average: 1 / inputs; Subtract: +1 or -1).
extern "C" __global__ void merge_grad_scaled(const float* dy, float* dx, unsigned long long n, float factor) {
    KERAS_FOR(i, n) { dx[i] = dy[i] * factor; }
}

// Multiply's gradient, one other input at a time: dx *= x.
extern "C" __global__ void merge_grad_product(const float* x, float* dx, unsigned long long n) {
    KERAS_FOR(i, n) { dx[i] *= x[i]; }
}

// Maximum and Minimum, first pass, one input at a time: dx counts the inputs equal to y.
extern "C" __global__ void merge_grad_ties(const float* x, const float* y, float* dx, unsigned long long n, bool first) {
    KERAS_FOR(i, n) {
        float hit = x[i] == y[i] ? 1.0f : 0.0f;
        dx[i] = first ? hit : dx[i] + hit;
    }
}

// Maximum and Minimum, last pass: input x gets dy / ties where it equals y (dx holds the ties).
extern "C" __global__ void merge_grad_share(const float* x, const float* y, const float* dy, float* dx,
                                            unsigned long long n) {
    KERAS_FOR(i, n) { dx[i] = x[i] == y[i] ? dy[i] / dx[i] : 0.0f; }
}

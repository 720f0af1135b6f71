// DenseOps: a dense layer's bias and activation epilogue and its backward pass; the activation
// layers with arguments (ReLU, LeakyReLU, ELU, PReLU).

struct BiasAct {
    unsigned long long rows, cols;
    unsigned int act;
};

// In place: y = act(y + bias) elementwise (not softmax); pre (when not null) receives y + bias.
extern "C" __global__ void bias_act(BiasAct a, float* y, const float* bias, float* pre) {
    KERAS_FOR(i, a.rows * a.cols) {
        float v = y[i] + (bias ? bias[i % a.cols] : 0.0f);
        if (pre) pre[i] = v;
        y[i] = keras_act(a.act, v);
    }
}

// Softmax rows: one block per row (blockDim.x a multiple of 32), rows past gridDim.x by stride.
extern "C" __global__ void bias_softmax(BiasAct a, float* y, const float* bias, float* pre) {
    __shared__ float scratch[32];
    for (unsigned long long r = blockIdx.x; r < a.rows; r += gridDim.x) {
        float* row = y + r * a.cols;
        float m = -KERAS_INF;
        for (unsigned long long j = threadIdx.x; j < a.cols; j += blockDim.x) {
            float v = row[j] + (bias ? bias[j] : 0.0f);
            if (pre) pre[r * a.cols + j] = v;
            row[j] = v;
            m = (v > m || v != v) ? v : m;
        }
        m = keras_block_max(m, scratch);
        float s = 0.0f;
        for (unsigned long long j = threadIdx.x; j < a.cols; j += blockDim.x) {
            float e = expf(row[j] - m);
            row[j] = e;
            s += e;
        }
        s = keras_block_sum(s, scratch);
        for (unsigned long long j = threadIdx.x; j < a.cols; j += blockDim.x) row[j] /= s;
        __syncthreads();
    }
}

// In place: g *= act'(x) elementwise (not softmax, not linear).
extern "C" __global__ void act_backward(BiasAct a, float* g, const float* y, const float* pre) {
    KERAS_FOR(i, a.rows * a.cols) { g[i] *= keras_act_grad(a.act, pre ? pre[i] : 0.0f, y[i]); }
}

// Softmax rows: g = y * (g - sum(g * y)); one block per row as in bias_softmax.
extern "C" __global__ void softmax_backward(BiasAct a, float* g, const float* y) {
    __shared__ float scratch[32];
    for (unsigned long long r = blockIdx.x; r < a.rows; r += gridDim.x) {
        float* gr = g + r * a.cols;
        const float* yr = y + r * a.cols;
        float dot = 0.0f;
        for (unsigned long long j = threadIdx.x; j < a.cols; j += blockDim.x) dot += gr[j] * yr[j];
        dot = keras_block_sum(dot, scratch);
        for (unsigned long long j = threadIdx.x; j < a.cols; j += blockDim.x) gr[j] = yr[j] * (gr[j] - dot);
        __syncthreads();
    }
}

// out[c] = sum over rows of m[r, c], rows in order (one thread per column).
extern "C" __global__ void column_sums(const float* m, unsigned long long rows, unsigned long long cols, float* out) {
    KERAS_FOR(c, cols) {
        float s = 0.0f;
        for (unsigned long long r = 0; r < rows; r++) s += m[r * cols + c];
        out[c] = s;
    }
}

// The activation layers with arguments, as backend/cpu/kernels.rs computes them (relu_value,
// relu_derivative, elu, prelu and their backward passes): the same comparisons in the same order,
// so NaN and the kinks take the same (Keras's and JAX's) values on both backends.

enum { RELU_CLIP, RELU_LEAKY, RELU6 };

struct Relu {
    unsigned long long len;
    float max_value, negative_slope, threshold;
    unsigned int form;
};

__device__ __forceinline__ float keras_relu(const Relu& r, float x) {
    float s = r.negative_slope, t = r.threshold;
    if (r.form == RELU_LEAKY) return x >= 0.0f ? x : s * x;
    float p = t != 0.0f ? (x > t ? x : 0.0f) : (x < 0.0f ? 0.0f : x);
    if (p > r.max_value) p = r.max_value;
    if (s != 0.0f) {
        float n = t - x;
        p -= __fmul_rn(s, n < 0.0f ? 0.0f : n);
    }
    return p;
}

__device__ __forceinline__ float keras_relu_grad(const Relu& r, float x) {
    float s = r.negative_slope, t = r.threshold;
    if (r.form == RELU_LEAKY) return x >= 0.0f ? 1.0f : s;
    if (x > t) {
        if (x < r.max_value || r.max_value == KERAS_INF) return 1.0f;
        return x == r.max_value && r.form == RELU_CLIP ? 0.5f : 0.0f;
    }
    return x < t ? s : 0.0f;
}

// ReLU / LeakyReLU: y = relu(x) in Keras's form for the layer's arguments.
extern "C" __global__ void relu(Relu r, const float* x, float* y) {
    KERAS_FOR(i, r.len) { y[i] = keras_relu(r, x[i]); }
}

// dx = dy * relu'(x).
extern "C" __global__ void relu_backward(Relu r, const float* x, const float* dy, float* dx) {
    KERAS_FOR(i, r.len) { dx[i] = dy[i] * keras_relu_grad(r, x[i]); }
}

struct Elu {
    unsigned long long len;
    float alpha;
};

// ELU: y = x > 0 ? x : alpha * expm1(x).
extern "C" __global__ void elu(Elu e, const float* x, float* y) {
    KERAS_FOR(i, e.len) {
        float v = x[i];
        y[i] = v > 0.0f ? v : e.alpha * expm1f(v);
    }
}

// dx = dy * (x > 0 ? 1 : alpha * exp(x)).
extern "C" __global__ void elu_backward(Elu e, const float* x, const float* dy, float* dx) {
    KERAS_FOR(i, e.len) {
        float v = x[i];
        dx[i] = dy[i] * (v > 0.0f ? 1.0f : e.alpha * expf(v));
    }
}

#define KERAS_PRELU_GROUPS 8

struct Prelu {
    unsigned long long rows, width, alphas, groups;
    unsigned long long sizes[KERAS_PRELU_GROUPS];
    unsigned long long shared;
};

// The alpha element position p of a sample uses (ops.rs, Prelu::alpha_of).
__device__ unsigned long long keras_prelu_alpha_of(const Prelu& p, unsigned long long q) {
    unsigned long long a = 0, stride = 1;
    // All the groups, a constant count the compiler unrolls (the sizes stay in registers);
    // those past p.groups have size 1 and change nothing.
    for (int g = KERAS_PRELU_GROUPS; g > 0; g--) {
        unsigned long long size = p.sizes[g - 1];
        if (!(p.shared & (1ull << (g - 1)))) {
            a += (q % size) * stride;
            stride *= size;
        }
        q /= size;
    }
    return a;
}

// The k-th position alpha element j scales (ops.rs, Prelu::position).
__device__ unsigned long long keras_prelu_position(const Prelu& p, unsigned long long j, unsigned long long k) {
    unsigned long long pos = 0, stride = 1;
    for (int g = KERAS_PRELU_GROUPS; g > 0; g--) {
        unsigned long long size = p.sizes[g - 1], c;
        if (!(p.shared & (1ull << (g - 1)))) {
            c = j % size;
            j /= size;
        } else {
            c = k % size;
            k /= size;
        }
        pos += c * stride;
        stride *= size;
    }
    return pos;
}

// PReLU: y = x > 0 ? x : alpha[j] * x.
extern "C" __global__ void prelu(Prelu p, const float* x, const float* alpha, float* y) {
    KERAS_FOR(i, p.rows * p.width) {
        float v = x[i];
        y[i] = v > 0.0f ? v : alpha[keras_prelu_alpha_of(p, i % p.width)] * v;
    }
}

// dx = dy * (x > 0 ? 1 : x < 0 ? alpha[j] : 0).
extern "C" __global__ void prelu_backward(Prelu p, const float* x, const float* alpha, const float* dy, float* dx) {
    KERAS_FOR(i, p.rows * p.width) {
        float v = x[i];
        float d = v > 0.0f ? 1.0f : (v < 0.0f ? alpha[keras_prelu_alpha_of(p, i % p.width)] : 0.0f);
        dx[i] = dy[i] * d;
    }
}

// dalpha[j] = sum of dy * min(x, 0): one thread per alpha element, over the samples then the
// positions it scales in increasing order, as the CPU sums (each product rounded, no FMA).
extern "C" __global__ void prelu_alpha_grad(Prelu p, const float* x, const float* dy, float* dalpha) {
    unsigned long long per_alpha = p.alphas ? p.width / p.alphas : 0;
    KERAS_FOR(j, p.alphas) {
        float acc = 0.0f;
        for (unsigned long long r = 0; r < p.rows; r++) {
            for (unsigned long long k = 0; k < per_alpha; k++) {
                unsigned long long i = r * p.width + keras_prelu_position(p, j, k);
                float v = x[i];
                acc += __fmul_rn(dy[i], v >= 0.0f ? 0.0f : v);
            }
        }
        dalpha[j] = acc;
    }
}

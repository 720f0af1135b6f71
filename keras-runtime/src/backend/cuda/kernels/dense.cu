// DenseOps: a dense layer's bias and activation epilogue and its backward pass.

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

// NormOps: batch and layer normalization and the preprocessing layers' standardization and rescaling, in the CPU backend's order of operations
// (backend/cpu/kernels.rs): a column's or a row's sums run in row or column order in one thread,
// so both backends agree to the last bit where the device's arithmetic is IEEE (no fast math).

struct Norm {
    unsigned long long rows, cols;
    float epsilon;
};

// Per column: the mean, then the biased variance (two passes).
extern "C" __global__ void moments(Norm n, const float* x, float* mean, float* var) {
    KERAS_FOR(c, n.cols) {
        float m = 0.0f;
        for (unsigned long long r = 0; r < n.rows; r++) m += x[r * n.cols + c];
        m /= (float)n.rows;
        float v = 0.0f;
        for (unsigned long long r = 0; r < n.rows; r++) {
            float d = x[r * n.cols + c] - m;
            v += d * d;
        }
        mean[c] = m;
        var[c] = v / (float)n.rows;
    }
}

extern "C" __global__ void moving_average(float momentum, float* moving, const float* value, unsigned long long n) {
    KERAS_FOR(i, n) { moving[i] = moving[i] * momentum + value[i] * (1.0f - momentum); }
}

// var = 1 / sqrt(var + epsilon), per column.
extern "C" __global__ void batch_norm_inv(Norm n, float* var) {
    KERAS_FOR(c, n.cols) { var[c] = 1.0f / sqrtf(var[c] + n.epsilon); }
}

// JAX's order: scale = inv * gamma, y = x * scale + (-mean * scale + beta).
extern "C" __global__ void batch_norm(Norm n, const float* x, const float* mean, const float* inv, const float* gamma,
                                      const float* beta, float* y) {
    KERAS_FOR(i, n.rows * n.cols) {
        unsigned long long c = i % n.cols;
        float scale = inv[c] * (gamma ? gamma[c] : 1.0f);
        y[i] = x[i] * scale + (-mean[c] * scale + (beta ? beta[c] : 0.0f));
    }
}

// Per column: dgamma = sum dy xhat, dbeta = sum dy, dx = gamma inv / n (n dy - sum dy - xhat sum dy xhat).
extern "C" __global__ void batch_norm_backward(Norm n, const float* x, const float* dy, const float* mean,
                                               const float* inv, const float* gamma, float* dgamma, float* dbeta,
                                               float* dx) {
    float rows = (float)n.rows;
    KERAS_FOR(c, n.cols) {
        float sum_dy = 0.0f, sum_dy_xhat = 0.0f;
        for (unsigned long long r = 0; r < n.rows; r++) {
            unsigned long long i = r * n.cols + c;
            sum_dy += dy[i];
            sum_dy_xhat += dy[i] * ((x[i] - mean[c]) * inv[c]);
        }
        if (dgamma) dgamma[c] = sum_dy_xhat;
        if (dbeta) dbeta[c] = sum_dy;
        if (dx) {
            float g = gamma ? gamma[c] : 1.0f;
            for (unsigned long long r = 0; r < n.rows; r++) {
                unsigned long long i = r * n.cols + c;
                float xhat = (x[i] - mean[c]) * inv[c];
                dx[i] = g * inv[c] / rows * (rows * dy[i] - sum_dy - xhat * sum_dy_xhat);
            }
        }
    }
}

// Per row: mean, inv = 1 / sqrt(var + epsilon) into stats, and y.
extern "C" __global__ void layer_norm(Norm n, const float* x, const float* gamma, const float* beta, float* y,
                                      float* stats) {
    float cols = (float)n.cols;
    KERAS_FOR(r, n.rows) {
        const float* xr = x + r * n.cols;
        float mean = 0.0f;
        for (unsigned long long c = 0; c < n.cols; c++) mean += xr[c];
        mean /= cols;
        float var = 0.0f;
        for (unsigned long long c = 0; c < n.cols; c++) var += (xr[c] - mean) * (xr[c] - mean);
        var /= cols;
        float inv = 1.0f / sqrtf(var + n.epsilon);
        for (unsigned long long c = 0; c < n.cols; c++) {
            float scale = inv * (gamma ? gamma[c] : 1.0f);
            y[r * n.cols + c] = xr[c] * scale + (-mean * scale + (beta ? beta[c] : 0.0f));
        }
        stats[2 * r] = mean;
        stats[2 * r + 1] = inv;
    }
}

// Per column over rows: dgamma = sum dy xhat, dbeta = sum dy.
extern "C" __global__ void layer_norm_param_grads(Norm n, const float* x, const float* dy, const float* stats,
                                                  float* dgamma, float* dbeta) {
    KERAS_FOR(c, n.cols) {
        float dg = 0.0f, db = 0.0f;
        for (unsigned long long r = 0; r < n.rows; r++) {
            unsigned long long i = r * n.cols + c;
            dg += dy[i] * ((x[i] - stats[2 * r]) * stats[2 * r + 1]);
            db += dy[i];
        }
        if (dgamma) dgamma[c] = dg;
        if (dbeta) dbeta[c] = db;
    }
}

// Per row: dx = inv / n (n g - sum g - xhat sum g xhat), g = dy gamma.
extern "C" __global__ void layer_norm_input_grad(Norm n, const float* x, const float* dy, const float* stats,
                                                 const float* gamma, float* dx) {
    float cols = (float)n.cols;
    KERAS_FOR(r, n.rows) {
        float mean = stats[2 * r], inv = stats[2 * r + 1];
        float sum_g = 0.0f, sum_g_xhat = 0.0f;
        for (unsigned long long c = 0; c < n.cols; c++) {
            unsigned long long i = r * n.cols + c;
            float g = dy[i] * (gamma ? gamma[c] : 1.0f);
            sum_g += g;
            sum_g_xhat += g * ((x[i] - mean) * inv);
        }
        for (unsigned long long c = 0; c < n.cols; c++) {
            unsigned long long i = r * n.cols + c;
            float g = dy[i] * (gamma ? gamma[c] : 1.0f);
            float xhat = (x[i] - mean) * inv;
            dx[i] = inv / cols * (cols * g - sum_g - xhat * sum_g_xhat);
        }
    }
}

struct Standardize {
    unsigned long long len, features, inner;
    float epsilon;
    bool invert;
};

// max(sqrt(var), epsilon), NaN kept (as jnp.maximum keeps it; fmaxf would drop it).
__device__ __forceinline__ float keras_deviation(float var, float epsilon) {
    float d = sqrtf(var);
    return d < epsilon ? epsilon : d;
}

// Normalization: y = (x - mean) / d per feature, or mean + x * d inverted.
extern "C" __global__ void standardize(Standardize s, const float* x, const float* mean, const float* var, float* y) {
    KERAS_FOR(i, s.len) {
        unsigned long long c = (i / s.inner) % s.features;
        float d = keras_deviation(var[c], s.epsilon);
        y[i] = s.invert ? mean[c] + x[i] * d : (x[i] - mean[c]) / d;
    }
}

// Its input gradient: dx = dy / d, or dy * d inverted.
extern "C" __global__ void standardize_backward(Standardize s, const float* var, const float* dy, float* dx) {
    KERAS_FOR(i, s.len) {
        float d = keras_deviation(var[(i / s.inner) % s.features], s.epsilon);
        dx[i] = s.invert ? dy[i] * d : dy[i] / d;
    }
}

struct Rescale {
    unsigned long long len;
    float scale, offset;
};

// Rescaling: y = x * scale + offset.
extern "C" __global__ void rescale(Rescale r, const float* x, float* y) {
    KERAS_FOR(i, r.len) { y[i] = x[i] * r.scale + r.offset; }
}

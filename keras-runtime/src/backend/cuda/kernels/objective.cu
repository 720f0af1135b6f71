// ObjectiveOps: the losses and their gradients, the metrics' accumulators, the weight penalties,
// as the CPU backend defines them (backend/cpu/losses.rs, metrics.rs, penalties.rs): the same
// formulas in the same order of operations, the same clipping, NaN kept where the CPU keeps it.
// Sums that leave a kernel are reduced on the device in a fixed order (no floating-point atomics
// but AUC's histogram counts, which are whole numbers), so two runs give the same bits.
// Comes after activation.cuh (keras_sigmoid, keras_softplus, keras_clamp, keras_block_sum,
// keras_block_max).

// Keras's fuzz factor (ops::EPSILON).
#define OBJ_EPS 1e-7f
#define OBJ_LN2 0.693147180559945309f

// ---- Descriptors: the #[repr(C)] structs of backend/ops.rs ----

struct LossConfig {
    unsigned int kind;  // Loss, #[repr(u32)]
    bool from_logits;
    float label_smoothing, delta;
    bool apply_class_balancing;
    float alpha, gamma;
};

struct LossBatch {
    LossConfig loss;
    unsigned long long rows, cols;
};

enum {
    LOSS_MSE, LOSS_MAE, LOSS_MAPE, LOSS_MSLE, LOSS_BCE, LOSS_FOCAL, LOSS_CCE, LOSS_SCCE, LOSS_HUBER, LOSS_LOGCOSH,
    LOSS_KL, LOSS_POISSON, LOSS_HINGE, LOSS_SQUARED_HINGE, LOSS_CATEGORICAL_HINGE, LOSS_COSINE
};

// MetricKind, #[repr(C, u32)]: the tag, then the union of the variants' fields.
struct MetricTopK {
    unsigned long long k;
    bool sparse;
};
struct MetricThreshold {
    float threshold;
};
struct MetricAuc {
    unsigned long long num_thresholds;
};
struct MetricF1 {
    unsigned int average;  // Average, #[repr(u32)]
    bool argmax;
    float threshold;
};
union MetricParams {
    MetricTopK top_k;
    MetricThreshold precision, recall;
    MetricAuc auc;
    MetricF1 f1;
};
struct MetricKind {
    unsigned int tag;
    MetricParams p;
};

struct MetricBatch {
    MetricKind kind;
    unsigned long long rows, cols;
};

enum {
    METRIC_BINARY, METRIC_CATEGORICAL, METRIC_SPARSE, METRIC_TOP_K, METRIC_PRECISION, METRIC_RECALL, METRIC_AUC,
    METRIC_F1, METRIC_MSE, METRIC_MAE, METRIC_RMSE, METRIC_R2
};
enum { AVERAGE_MICRO, AVERAGE_MACRO, AVERAGE_WEIGHTED };

struct Regularizer {
    float l1, l2;
};

static_assert(sizeof(LossBatch) == 48, "LossBatch mirrors backend/ops.rs");
static_assert(sizeof(MetricBatch) == 40, "MetricBatch mirrors backend/ops.rs");
static_assert(sizeof(Regularizer) == 8, "Regularizer mirrors backend/ops.rs");

// ---- Scalar helpers, as cpu/losses.rs writes them ----

// jnp.maximum: NaN when either is NaN.
__device__ __forceinline__ float obj_maximum(float a, float b) { return (a != a || b != b) ? KERAS_NAN : fmaxf(a, b); }

// JAX's sign (0 at 0 and NaN).
__device__ __forceinline__ float obj_sign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f); }

__device__ __forceinline__ float obj_log_sigmoid(float x) { return -keras_softplus(-x); }

// Binary crossentropy of a probability clipped to [EPS, 1 - EPS].
__device__ __forceinline__ float obj_bce(float p, float t) {
    float pc = keras_clamp(p, OBJ_EPS, 1.0f - OBJ_EPS);
    return -(t * logf(pc) + (1.0f - t) * logf(1.0f - pc));
}

// d bce / dp: zero outside the clip range.
__device__ __forceinline__ float obj_bce_grad(float p, float t) {
    return (p >= OBJ_EPS && p <= 1.0f - OBJ_EPS) ? (1.0f - t) / (1.0f - p) - t / p : 0.0f;
}

// A class index held as a float, as Rust's `as usize` reads it (NaN and negatives 0, truncated,
// saturated): an index past the row matches no column.
__device__ __forceinline__ unsigned long long obj_class(float t) {
    if (!(t >= 0.0f)) return 0;
    if (t >= 18446744073709551616.0f) return ~0ull;
    return (unsigned long long)t;
}

// Index of the first largest value (NaN never wins); 0 for an empty row.
__device__ unsigned long long obj_argmax(const float* v, unsigned long long n) {
    unsigned long long best = 0;
    for (unsigned long long i = 0; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

// ---- The threads that share a loss row ----

// One thread (`red` null: lane 0 of width 1, reductions are the identity) or a whole block
// (`red` 32 floats of shared memory; blockDim.x a multiple of 32). Every thread of a block takes
// the same branches around the reductions, so all of them reach each barrier.
struct Group {
    unsigned int lane, width;
    float* red;
};

__device__ __forceinline__ float obj_sum(const Group& g, float v) { return g.red ? keras_block_sum(v, g.red) : v; }

// The largest value, a NaN ignored (the CPU's fold with f32::max); -inf when all are NaN.
__device__ float obj_fmax(const Group& g, float v) {
    if (!g.red) return v;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) g.red[warp] = v;
    __syncthreads();
    v = lane < warps ? g.red[lane] : -KERAS_INF;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The largest value, a NaN winning (jnp.max).
__device__ __forceinline__ float obj_nanmax(const Group& g, float v) { return g.red ? keras_block_max(v, g.red) : v; }

// The smallest of the group's unsigned values.
__device__ unsigned int obj_min(const Group& g, unsigned int v) {
    if (!g.red) return v;
    unsigned int* red = (unsigned int*)g.red;
    for (int o = 16; o > 0; o >>= 1) {
        unsigned int w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w < v ? w : v;
    }
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) red[warp] = v;
    __syncthreads();
    v = lane < warps ? red[lane] : 0xffffffffu;
    for (int o = 16; o > 0; o >>= 1) {
        unsigned int w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w < v ? w : v;
    }
    return v;
}

// ---- The losses (cpu/losses.rs `sample`) ----

// An elementwise loss's term at (p, t) and, in *d, its derivative scaled: k = scale / cols.
__device__ float obj_term(const LossConfig& c, float p, float t, float k, float scale, bool binary, float* d) {
    float s = c.label_smoothing;
    switch (c.kind) {
    case LOSS_MSE: *d = k * 2.0f * (p - t); return (t - p) * (t - p);
    case LOSS_MAE: *d = k * obj_sign(p - t); return fabsf(t - p);
    case LOSS_MAPE: {
        float m = obj_maximum(fabsf(t), OBJ_EPS);
        *d = k * 100.0f * obj_sign(p - t) / m;
        return fabsf((t - p) / m);
    }
    case LOSS_MSLE: {
        float pm = obj_maximum(p, OBJ_EPS) + 1.0f;
        float e = logf(pm) - logf(obj_maximum(t, OBJ_EPS) + 1.0f);
        *d = p > OBJ_EPS ? k * 2.0f * e / pm : 0.0f;
        return e * e;
    }
    case LOSS_BCE: {
        t = t * (1.0f - s) + 0.5f * s;
        if (c.from_logits) {
            *d = k * (keras_sigmoid(p) - t);
            return -t * obj_log_sigmoid(p) - (1.0f - t) * obj_log_sigmoid(-p);
        }
        *d = k * obj_bce_grad(p, t);
        return obj_bce(p, t);
    }
    case LOSS_FOCAL: {
        t = t * (1.0f - s) + 0.5f * s;
        float q = c.from_logits ? keras_sigmoid(p) : p;
        float b = obj_bce(q, t);
        float pt = t * q + (1.0f - t) * (1.0f - q);
        float f = powf(1.0f - pt, c.gamma);
        float w = c.apply_class_balancing ? t * c.alpha + (1.0f - t) * (1.0f - c.alpha) : 1.0f;
        // d(1 - p_t)/dq = 1 - 2t.
        float df = c.gamma == 0.0f ? 0.0f : c.gamma * powf(1.0f - pt, c.gamma - 1.0f) * (1.0f - 2.0f * t);
        float g = w * (df * b + f * obj_bce_grad(q, t));
        if (c.from_logits) g *= q * (1.0f - q);
        *d = k * g;
        return w * (f * b);
    }
    case LOSS_HUBER: {
        float e = p - t, delta = c.delta;
        if (fabsf(e) <= delta) {
            *d = k * e;
            return 0.5f * (e * e);
        }
        *d = k * delta * obj_sign(e);
        return delta * fabsf(e) - 0.5f * (delta * delta);
    }
    case LOSS_LOGCOSH: {
        float x = p - t;
        *d = k * (1.0f - 2.0f * keras_sigmoid(-2.0f * x));
        return x + keras_softplus(x * -2.0f) - OBJ_LN2;
    }
    case LOSS_KL: {
        float tc = keras_clamp(t, OBJ_EPS, 1.0f), pc = keras_clamp(p, OBJ_EPS, 1.0f);
        *d = (p > OBJ_EPS && p < 1.0f) ? -scale * tc / pc : 0.0f;
        return tc * logf(tc / pc);
    }
    case LOSS_POISSON: *d = k * (1.0f - t / (p + OBJ_EPS)); return p - t * logf(p + OBJ_EPS);
    case LOSS_HINGE: {
        t = binary ? 2.0f * t - 1.0f : t;
        float m = 1.0f - t * p;
        *d = m > 0.0f ? -k * t : 0.0f;
        return obj_maximum(m, 0.0f);
    }
    case LOSS_SQUARED_HINGE: {
        t = binary ? 2.0f * t - 1.0f : t;
        float m = obj_maximum(1.0f - t * p, 0.0f);
        *d = -k * 2.0f * m * t;
        return m * m;
    }
    default: *d = KERAS_NAN; return KERAS_NAN;
    }
}

// Categorical crossentropy of one row (sparse: `t` holds the class index): probabilities
// normalised by their sum and clipped, or logits through a log-softmax.
__device__ float obj_categorical(const LossBatch& l, const Group& g, const float* p, const float* t, float* grad,
                                 float scale) {
    const unsigned long long cols = l.cols;
    const float n = (float)cols, s = l.loss.label_smoothing;
    const bool sparse = l.loss.kind == LOSS_SCCE;
    const unsigned long long cls = sparse ? obj_class(t[0]) : 0;
#define OBJ_TARGET(j) (sparse ? ((j) == cls ? 1.0f : 0.0f) : (s != 0.0f ? t[j] * (1.0f - s) + s / n : t[j]))
    if (l.loss.from_logits) {
        float mx = -KERAS_INF;
        for (unsigned long long j = g.lane; j < cols; j += g.width) mx = fmaxf(mx, p[j]);
        mx = obj_fmax(g, mx);
        float sum = 0.0f;
        for (unsigned long long j = g.lane; j < cols; j += g.width) sum += expf(p[j] - mx);
        sum = obj_sum(g, sum);
        float log_sum = logf(sum), loss = 0.0f, tsum = 0.0f;
        for (unsigned long long j = g.lane; j < cols; j += g.width) {
            float tj = OBJ_TARGET(j);
            loss -= tj * (p[j] - mx - log_sum);
            tsum += tj;
        }
        loss = obj_sum(g, loss);
        tsum = obj_sum(g, tsum);
        if (grad)
            for (unsigned long long j = g.lane; j < cols; j += g.width)
                grad[j] = (expf(p[j] - mx) / sum * tsum - OBJ_TARGET(j)) * scale;
        return loss;
    }
    float sum = 0.0f;
    for (unsigned long long j = g.lane; j < cols; j += g.width) sum += p[j];
    sum = obj_sum(g, sum);
    float loss = 0.0f;
    for (unsigned long long j = g.lane; j < cols; j += g.width) {
        float tj = OBJ_TARGET(j);
        if (tj != 0.0f) loss -= tj * logf(keras_clamp(p[j] / sum, OBJ_EPS, 1.0f - OBJ_EPS));
    }
    loss = obj_sum(g, loss);
    if (grad) {
        // dL/dq_j = -t_j / q_j inside the clip range, 0 outside; dL/dp = (dL/dq - sum(dL/dq q)) / S.
        float dot = 0.0f;
        for (unsigned long long j = g.lane; j < cols; j += g.width) {
            float q = p[j] / sum, tj = OBJ_TARGET(j);
            float dq = (tj != 0.0f && q >= OBJ_EPS && q <= 1.0f - OBJ_EPS) ? -tj / q : 0.0f;
            grad[j] = dq;
            dot += dq * q;
        }
        dot = obj_sum(g, dot);
        for (unsigned long long j = g.lane; j < cols; j += g.width) grad[j] = (grad[j] - dot) / sum * scale;
    }
    return loss;
#undef OBJ_TARGET
}

// max(max((1 - t) p) - sum(t p) + 1, 0); the gradient flows to the first maximum (the first NaN).
__device__ float obj_categorical_hinge(const LossBatch& l, const Group& g, const float* p, const float* t, float* grad,
                                       float scale) {
    const unsigned long long cols = l.cols;
    float pos = 0.0f, neg = -KERAS_INF;
    for (unsigned long long j = g.lane; j < cols; j += g.width) {
        pos += t[j] * p[j];
        float v = (1.0f - t[j]) * p[j];
        neg = (v > neg || v != v) ? v : neg;
    }
    pos = obj_sum(g, pos);
    neg = obj_nanmax(g, neg);
    float loss = obj_maximum(neg - pos + 1.0f, 0.0f);
    if (grad) {
        unsigned int at = 0xffffffffu;
        for (unsigned long long j = g.lane; j < cols; j += g.width) {
            float v = (1.0f - t[j]) * p[j];
            if (v == neg || (v != v && neg != neg)) {
                at = (unsigned int)j;
                break;
            }
        }
        at = obj_min(g, at);
        for (unsigned long long j = g.lane; j < cols; j += g.width)
            grad[j] = loss > 0.0f ? ((j == at ? 1.0f - t[j] : 0.0f) - t[j]) * scale : 0.0f;
    }
    return loss;
}

// -sum(normalize(t) normalize(p)), Keras's normalize with its 1 / EPS ceiling on the inverse norm.
__device__ float obj_cosine(const LossBatch& l, const Group& g, const float* p, const float* t, float* grad, float scale) {
    const unsigned long long cols = l.cols;
    float sp = 0.0f, st = 0.0f;
    for (unsigned long long j = g.lane; j < cols; j += g.width) {
        sp += p[j] * p[j];
        st += t[j] * t[j];
    }
    sp = obj_sum(g, sp);
    st = obj_sum(g, st);
    // fminf drops a NaN as the CPU's f32::min does.
    float ip = fminf(1.0f / sqrtf(sp), 1.0f / OBJ_EPS), it = fminf(1.0f / sqrtf(st), 1.0f / OBJ_EPS);
    float dot = 0.0f;
    for (unsigned long long j = g.lane; j < cols; j += g.width) dot += (t[j] * it) * (p[j] * ip);
    dot = obj_sum(g, dot);
    if (grad) {
        // Inside the epsilon floor the norm is a constant; otherwise d(p / |p|) projects out p.
        bool clamped = ip >= 1.0f / OBJ_EPS;
        for (unsigned long long j = g.lane; j < cols; j += g.width) {
            float tn = t[j] * it;
            grad[j] = (clamped ? -tn * ip : -(tn - dot * (p[j] * ip)) * ip) * scale;
        }
    }
    return -dot;
}

// One loss row's value (every thread of the group gets it); its gradient, times `scale`, written
// to `grad` unless null.
__device__ float obj_loss_row(const LossBatch& l, const Group& g, const float* p, const float* t, float* grad, float scale,
                              bool binary) {
    switch (l.loss.kind) {
    case LOSS_CCE:
    case LOSS_SCCE: return obj_categorical(l, g, p, t, grad, scale);
    case LOSS_CATEGORICAL_HINGE: return obj_categorical_hinge(l, g, p, t, grad, scale);
    case LOSS_COSINE: return obj_cosine(l, g, p, t, grad, scale);
    default: {
        const float n = (float)l.cols, k = scale / n;
        float sum = 0.0f;
        for (unsigned long long j = g.lane; j < l.cols; j += g.width) {
            float d;
            sum += obj_term(l.loss, p[j], t[j], k, scale, binary, &d);
            if (grad) grad[j] = d;
        }
        sum = obj_sum(g, sum);
        if (l.loss.kind == LOSS_KL) return sum;
        if (l.loss.kind == LOSS_MAPE) return 100.0f * (sum / n);
        return sum / n;
    }
    }
}

// The loss of every row: losses[r] = w_r * loss_r (loss_r without weights), the gradient
// w_r / rows times the row's. per_block: one block per row (blockDim.x a multiple of 32), rows
// past gridDim.x by stride; else one thread per row, grid-stride. `weights` (or null) has one
// weight per `per_sample` rows; `binary` (or null) holds 1 when the hinge losses' targets are
// all 0 or 1 (see loss_binary_targets).
extern "C" __global__ void loss_rows(LossBatch l, const float* pred, const float* target, const float* weights,
                                     unsigned long long per_sample, float* grad, float* losses, const float* binary,
                                     unsigned int per_block) {
    __shared__ float red[32];
    const unsigned long long tcols = l.loss.kind == LOSS_SCCE ? 1 : l.cols;
    const float scale = 1.0f / (float)l.rows;
    const bool bin = binary && *binary != 0.0f;
    Group g;
    unsigned long long first, step;
    if (per_block) {
        g.lane = threadIdx.x;
        g.width = blockDim.x;
        g.red = red;
        first = blockIdx.x;
        step = gridDim.x;
    } else {
        g.lane = 0;
        g.width = 1;
        g.red = nullptr;
        first = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
        step = (unsigned long long)blockDim.x * gridDim.x;
    }
    for (unsigned long long r = first; r < l.rows; r += step) {
        const float w = weights ? weights[r / per_sample] : 1.0f;
        float* gr = grad ? grad + r * l.cols : nullptr;
        float v = obj_loss_row(l, g, pred + r * l.cols, target + r * tcols, gr, weights ? scale * w : scale, bin);
        if (g.lane == 0) losses[r] = weights ? w * v : v;
    }
}

// *flag = 1 when every one of the n targets is 0 or 1, else 0 (one block, any whole warps).
extern "C" __global__ void loss_binary_targets(const float* target, unsigned long long n, float* flag) {
    __shared__ float red[32];
    float other = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x)
        other += (target[i] == 0.0f || target[i] == 1.0f) ? 0.0f : 1.0f;
    other = keras_block_sum(other, red);
    if (threadIdx.x == 0) *flag = other == 0.0f ? 1.0f : 0.0f;
}

// The running mean's accumulators from n per-row values (one block, whole warps, the values
// summed in a fixed order): stats[0] += mean * n (`mean`, the batch loss: sum / n times n, NaN
// for an empty batch as on the CPU) or the sum (the mean-style metrics), stats[1] += n.
extern "C" __global__ void objective_total(const float* values, unsigned long long n, unsigned int mean, float* stats) {
    __shared__ float red[32];
    float s = 0.0f;
    for (unsigned long long i = threadIdx.x; i < n; i += blockDim.x) s += values[i];
    s = keras_block_sum(s, red);
    if (threadIdx.x == 0) {
        const float rows = (float)n;
        stats[0] += mean ? s / rows * rows : s;
        stats[1] += rows;
    }
}

// ---- The metrics (cpu/metrics.rs) ----

// Each row's value of a mean-style metric (accuracies, top-k, MSE, MAE, RMSE), one thread per row.
extern "C" __global__ void metric_rows(MetricBatch m, const float* pred, const float* target, float* values) {
    const unsigned long long cols = m.cols;
    const bool sparse = m.kind.tag == METRIC_SPARSE || (m.kind.tag == METRIC_TOP_K && m.kind.p.top_k.sparse);
    const unsigned long long tcols = sparse ? 1 : cols;
    const float n = (float)cols;
    KERAS_FOR(r, m.rows) {
        const float* p = pred + r * cols;
        const float* t = target + r * tcols;
        float v;
        switch (m.kind.tag) {
        case METRIC_BINARY: {
            unsigned long long hits = 0;
            for (unsigned long long j = 0; j < cols; j++) hits += t[j] == (p[j] > 0.5f ? 1.0f : 0.0f);
            v = (float)hits / n;
            break;
        }
        case METRIC_CATEGORICAL: v = obj_argmax(p, cols) == obj_argmax(t, cols) ? 1.0f : 0.0f; break;
        case METRIC_SPARSE: v = (float)obj_argmax(p, cols) == t[0] ? 1.0f : 0.0f; break;
        case METRIC_TOP_K: {
            unsigned long long cls = sparse ? obj_class(t[0]) : obj_argmax(t, cols);
            float at = cls < cols ? p[cls] : -KERAS_INF;
            if (at != at) at = -KERAS_INF;
            unsigned long long rank = 1;
            for (unsigned long long j = 0; j < cols; j++) rank += p[j] > at;
            v = rank <= m.kind.p.top_k.k ? 1.0f : 0.0f;
            break;
        }
        case METRIC_MSE:
        case METRIC_RMSE: {
            float s = 0.0f;
            for (unsigned long long j = 0; j < cols; j++) s += (t[j] - p[j]) * (t[j] - p[j]);
            v = s / n;
            break;
        }
        case METRIC_MAE: {
            float s = 0.0f;
            for (unsigned long long j = 0; j < cols; j++) s += fabsf(t[j] - p[j]);
            v = s / n;
            break;
        }
        default: v = KERAS_NAN;
        }
        values[r] = v;
    }
}

// Precision's [true positives, false positives] or recall's [true positives, false negatives]
// (one block, whole warps; counts are whole numbers, exact in any order).
extern "C" __global__ void metric_counts(MetricBatch m, const float* pred, const float* target, float* stats) {
    __shared__ float red[32];
    const bool precision = m.kind.tag == METRIC_PRECISION;
    const float threshold = precision ? m.kind.p.precision.threshold : m.kind.p.recall.threshold;
    float a = 0.0f, b = 0.0f;
    for (unsigned long long i = threadIdx.x; i < m.rows * m.cols; i += blockDim.x) {
        bool pos = pred[i] > threshold, label = target[i] != 0.0f;
        a += (pos && label) ? 1.0f : 0.0f;
        b += (precision ? (pos && !label) : (!pos && label)) ? 1.0f : 0.0f;
    }
    a = keras_block_sum(a, red);
    b = keras_block_sum(b, red);
    if (threadIdx.x == 0) {
        stats[0] += a;
        stats[1] += b;
    }
}

// AUC, first step: each prediction counted in the bucket ceil(p (t - 1)) - 1 (at least 0) of the
// positive or negative histogram (stats[4t..5t], stats[5t..6t], zero between batches).
extern "C" __global__ void auc_bins(MetricBatch m, const float* pred, const float* target, float* stats) {
    const unsigned long long t = m.kind.p.auc.num_thresholds;
    float* pos = stats + 4 * t;
    float* neg = stats + 5 * t;
    KERAS_FOR(i, m.rows * m.cols) {
        float p = keras_clamp(pred[i], 0.0f, 1.0f);
        // fmaxf turns a NaN into bucket 0, as the CPU's f32::max does.
        unsigned long long b = (unsigned long long)fmaxf(ceilf(p * ((float)t - 1.0f)) - 1.0f, 0.0f);
        b = b < t - 1 ? b : t - 1;
        atomicAdd(target[i] != 0.0f ? pos + b : neg + b, 1.0f);
    }
}

// AUC, second step (one block, whole warps): the counts above threshold i are the bucket counts
// from i up; adds true/false positives/negatives per threshold and clears the histograms.
extern "C" __global__ void auc_counts(MetricBatch m, float* stats) {
    __shared__ float red[32];
    const unsigned long long t = m.kind.p.auc.num_thresholds;
    float* pos = stats + 4 * t;
    float* neg = stats + 5 * t;
    float total_pos = 0.0f, total_neg = 0.0f;
    for (unsigned long long i = threadIdx.x; i < t; i += blockDim.x) {
        total_pos += pos[i];
        total_neg += neg[i];
    }
    total_pos = keras_block_sum(total_pos, red);
    total_neg = keras_block_sum(total_neg, red);
    for (unsigned long long i = threadIdx.x; i < t; i += blockDim.x) {
        float tp = 0.0f, fp = 0.0f;
        for (unsigned long long b = i; b < t; b++) {
            tp += pos[b];
            fp += neg[b];
        }
        stats[i] += tp;
        stats[t + i] += fp;
        stats[2 * t + i] += total_neg - fp;
        stats[3 * t + i] += total_pos - tp;
    }
    __syncthreads();
    for (unsigned long long i = threadIdx.x; i < t; i += blockDim.x) {
        pos[i] = 0.0f;
        neg[i] = 0.0f;
    }
}

// F1 with argmax: each row's largest output (a NaN ignored), one thread per row.
extern "C" __global__ void f1_row_max(MetricBatch m, const float* pred, float* maxes) {
    KERAS_FOR(r, m.rows) {
        float mx = -KERAS_INF;
        for (unsigned long long j = 0; j < m.cols; j++) mx = fmaxf(mx, pred[r * m.cols + j]);
        maxes[r] = mx;
    }
}

// F1's per-class true positives, false positives, false negatives and true labels, one thread
// per class over the rows in order: out[c], out[cols + c], out[2 cols + c], out[3 cols + c], added
// to (`accumulate`: the per-class averages, in stats) or written (micro's partial sums).
extern "C" __global__ void f1_counts(MetricBatch m, const float* pred, const float* target, const float* maxes, float* out,
                                     unsigned int accumulate) {
    const unsigned long long cols = m.cols;
    const MetricF1 f = m.kind.p.f1;
    KERAS_FOR(c, cols) {
        float tp = accumulate ? out[c] : 0.0f, fp = accumulate ? out[cols + c] : 0.0f;
        float fn = accumulate ? out[2 * cols + c] : 0.0f, ty = accumulate ? out[3 * cols + c] : 0.0f;
        for (unsigned long long r = 0; r < m.rows; r++) {
            const float p = pred[r * cols + c], y = target[r * cols + c];
            const bool hit = f.argmax ? (p >= maxes[r] && fabsf(p) > 1e-9f) : p > f.threshold;
            const float predicted = hit ? 1.0f : 0.0f;
            tp += predicted * y;
            fp += predicted * (1.0f - y);
            fn += (1.0f - predicted) * y;
            ty += y;
        }
        out[c] = tp;
        out[cols + c] = fp;
        out[2 * cols + c] = fn;
        out[3 * cols + c] = ty;
    }
}

// Micro F1: the per-class partial sums added, classes in order, to stats[0..4].
extern "C" __global__ void f1_micro(MetricBatch m, const float* partial, float* stats) {
    for (unsigned int k = threadIdx.x; k < 4; k += blockDim.x) {
        float s = 0.0f;
        for (unsigned long long c = 0; c < m.cols; c++) s += partial[k * m.cols + c];
        stats[k] += s;
    }
}

// R²'s per-output sums of y, y², squared residuals and counts, one thread per output over the
// rows in order.
extern "C" __global__ void r2_sums(MetricBatch m, const float* pred, const float* target, float* stats) {
    const unsigned long long cols = m.cols;
    KERAS_FOR(c, cols) {
        float sy = stats[c], syy = stats[cols + c], sres = stats[2 * cols + c], count = stats[3 * cols + c];
        for (unsigned long long r = 0; r < m.rows; r++) {
            const float y = target[r * cols + c], p = pred[r * cols + c];
            sy += y;
            syy += y * y;
            sres += (y - p) * (y - p);
            count += 1.0f;
        }
        stats[c] = sy;
        stats[cols + c] = syy;
        stats[2 * cols + c] = sres;
        stats[3 * cols + c] = count;
    }
}

// ---- The weight penalties (cpu/penalties.rs) ----

// Each block's share of sum |w| and sum w² into partial[2 b], partial[2 b + 1] (whole warps).
extern "C" __global__ void penalty_partials(const float* w, unsigned long long n, float* partial) {
    __shared__ float red[32];
    float a = 0.0f, b = 0.0f;
    KERAS_FOR(i, n) {
        a += fabsf(w[i]);
        b += w[i] * w[i];
    }
    a = keras_block_sum(a, red);
    b = keras_block_sum(b, red);
    if (threadIdx.x == 0) {
        partial[2 * blockIdx.x] = a;
        partial[2 * blockIdx.x + 1] = b;
    }
}

// stats[0] += scale (l1 sum |w| + l2 sum w²) from `blocks` partial sums (one block, whole warps);
// a zero factor's term left out, as on the CPU.
extern "C" __global__ void penalty_total(Regularizer reg, const float* partial, unsigned long long blocks, float scale,
                                         float* stats) {
    __shared__ float red[32];
    float a = 0.0f, b = 0.0f;
    for (unsigned long long i = threadIdx.x; i < blocks; i += blockDim.x) {
        a += partial[2 * i];
        b += partial[2 * i + 1];
    }
    a = keras_block_sum(a, red);
    b = keras_block_sum(b, red);
    if (threadIdx.x == 0) {
        float p = 0.0f;
        if (reg.l1 != 0.0f) p += reg.l1 * a;
        if (reg.l2 != 0.0f) p += reg.l2 * b;
        stats[0] += scale * p;
    }
}

// g += l1 sign(w) + 2 l2 w, the sign as on the CPU: +1 for w >= 0 (±0 included), else -1 (NaN too).
extern "C" __global__ void penalty_grad(Regularizer reg, const float* w, float* g, unsigned long long n) {
    KERAS_FOR(i, n) {
        const float sign = w[i] >= 0.0f ? 1.0f : -1.0f;
        g[i] += reg.l1 * sign + reg.l2 * (2.0f * w[i]);
    }
}

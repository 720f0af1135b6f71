// OptimizerOps: one optimizer step over a whole parameter arena, operation for operation as the
// CPU backend does it (backend/cpu/optimizer.rs): clipping, the learning rate of the schedule at
// the step count, decoupled weight decay, the rule, `iterations += 1`; and the weight
// constraints (backend/cpu/penalties.rs).
//
// Nothing of a step comes from the host but the descriptors: each block's first thread reads
// the step buffer and evaluates the schedule and the rule's scalars (bias corrections, Nadam's
// momentum schedule) in f32 as the CPU does, the block takes them from shared memory, and
// `optimizer_advance` (one thread, queued after the update) moves the step buffer on. Clipping
// by norm reads sums of squares per piece of each weight tensor (`clip_partials`), which the
// kernels that need a norm add up themselves in a fixed order: no float atomics, the same
// result every run.

// ---- The descriptors of backend/ops.rs, field for field (`#[repr(C)]`, `#[repr(C, u32)]`). ----

struct OptSgd { float momentum; bool nesterov; float decay; };
struct OptAdam { float beta_1, beta_2, epsilon; bool amsgrad; };
struct OptRmsProp { float rho, momentum, epsilon; bool centered; };
struct OptAdagrad { float initial_accumulator_value, epsilon; };
struct OptAdadelta { float rho, epsilon; };
struct OptAdamax { float beta_1, beta_2, epsilon; };
struct OptNadam { float beta_1, beta_2, epsilon; };
struct OptLion { float beta_1, beta_2; };
struct OptFtrl { float lr_power, initial_accumulator_value, l1, l2, l2_shrinkage, beta; };

enum { RULE_SGD, RULE_ADAM, RULE_RMSPROP, RULE_ADAGRAD, RULE_ADADELTA, RULE_ADAMAX, RULE_NADAM, RULE_LION, RULE_FTRL };

struct UpdateRule {
    unsigned int tag;
    union {
        OptSgd sgd;
        OptAdam adam;
        OptRmsProp rmsprop;
        OptAdagrad adagrad;
        OptAdadelta adadelta;
        OptAdamax adamax;
        OptNadam nadam;
        OptLion lion;
        OptFtrl ftrl;
    };
};

#define OPT_MAX_PIECES 16

struct OptExponential { float initial; unsigned long long decay_steps; float rate; bool staircase; };
struct OptPiecewise {
    unsigned long long count;
    unsigned long long boundaries[OPT_MAX_PIECES];
    float values[OPT_MAX_PIECES + 1];
};
struct OptPolynomial { float initial; unsigned long long decay_steps; float end, power; bool cycle; };
struct OptCosine {
    float initial;
    unsigned long long decay_steps;
    float alpha;
    bool warmup;
    float warmup_target;
    unsigned long long warmup_steps;
};

enum { SCHEDULE_CONSTANT, SCHEDULE_EXPONENTIAL, SCHEDULE_PIECEWISE, SCHEDULE_POLYNOMIAL, SCHEDULE_INVERSE_TIME, SCHEDULE_COSINE };

struct Schedule {
    unsigned int tag;
    union {
        OptExponential exponential;
        OptPiecewise piecewise;
        OptPolynomial polynomial;
        OptExponential inverse_time;  // the same fields
        OptCosine cosine;
    };
};

enum { CLIP_NONE, CLIP_VALUE, CLIP_NORM, CLIP_GLOBAL_NORM };

struct Clip {
    unsigned int tag;
    float limit;
};

struct Update {
    UpdateRule rule;
    Schedule schedule;
    float weight_decay;
    Clip clip;
};

enum { CONSTRAINT_MAX_NORM, CONSTRAINT_NON_NEG, CONSTRAINT_UNIT_NORM, CONSTRAINT_MIN_MAX_NORM };

// MaxNorm { max_value } in `a`; MinMaxNorm { min_value, max_value, rate } in `a`, `b`, `c`.
struct Constraint {
    unsigned int tag;
    float a, b, c;
};

// The weight tensors of one clipping launch (at most OPT_BATCH; more take more launches), each
// cut into pieces of `piece` floats: per tensor its offset in the arena, its length, and the
// index of its first piece's sum of squares.
#define OPT_BATCH 64
struct Pieces {
    unsigned long long count;
    unsigned long long piece;
    unsigned long long tensors[OPT_BATCH][3];
};

// The Rust side pins the same sizes (optimizer.rs's tests); the emulator checks each argument's.
static_assert(sizeof(UpdateRule) == 28, "UpdateRule as in Rust");
static_assert(sizeof(Schedule) == 216, "Schedule as in Rust");
static_assert(sizeof(Clip) == 8, "Clip as in Rust");
static_assert(sizeof(Update) == 264, "Update as in Rust");
static_assert(sizeof(Constraint) == 16, "Constraint as in Rust");
static_assert(sizeof(Pieces) == 16 + OPT_BATCH * 24, "Pieces as in Rust");

// ---- The step's values ----

// The smallest normal f32 (Rust's f32::MIN_POSITIVE).
#define OPT_MIN_NORMAL 1.17549435e-38f
#define OPT_PI 3.14159265358979323846f

// A u64 held as two f32 bit patterns, low word first.
__device__ __forceinline__ unsigned long long opt_u64(const float* slots) {
    return (unsigned long long)__float_as_uint(slots[0]) | ((unsigned long long)__float_as_uint(slots[1]) << 32);
}

// x^y in f32, rounded from double: the correctly rounded power, as the CPU's powf gives it (a
// GPU's powf may be some ulps off, which 1 - beta^t would magnify).
__device__ __forceinline__ float opt_pow(float x, float y) { return (float)pow((double)x, (double)y); }

// x^t for a whole number t >= 0 (a step count as f32), by squaring in double: as opt_pow, and
// cheap. A t past 2^64 does not occur (the count is a u64).
__device__ float opt_powi(float x, float t) {
    unsigned long long e = (unsigned long long)t;
    double r = 1.0, b = x;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (float)r;
}

// min(max(x, lo), hi) that keeps NaN, as Rust's f32::clamp.
__device__ __forceinline__ float opt_clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// x, or 0 when |x| is subnormal (the CPU's flush of decaying optimizer state).
__device__ __forceinline__ float opt_flush(float x) { return fabsf(x) < OPT_MIN_NORMAL ? 0.0f : x; }

// The learning rate of a schedule at 0-based step `step`, in f32 as Keras evaluates it; the
// host's rate `host` for Schedule::Constant.
__device__ float opt_schedule(const Schedule& s, unsigned long long step, float host) {
    switch (s.tag) {
    case SCHEDULE_EXPONENTIAL: {
        const OptExponential& e = s.exponential;
        float p = (float)step / (float)e.decay_steps;
        if (e.staircase) p = floorf(p);
        return e.initial * opt_pow(e.rate, p);
    }
    case SCHEDULE_PIECEWISE: {
        const OptPiecewise& q = s.piecewise;
        unsigned long long i = 0;
        while (i < q.count && i < OPT_MAX_PIECES && step > q.boundaries[i]) i++;
        return q.values[i];
    }
    case SCHEDULE_POLYNOMIAL: {
        const OptPolynomial& q = s.polynomial;
        float x = (float)step, decay_steps = (float)q.decay_steps;
        if (q.cycle) {
            float multiplier = step == 0 ? 1.0f : ceilf(x / decay_steps);
            decay_steps *= multiplier;
        } else {
            x = fminf(x, decay_steps);
        }
        float p = x / decay_steps;
        return (q.initial - q.end) * opt_pow(1.0f - p, q.power) + q.end;
    }
    case SCHEDULE_INVERSE_TIME: {
        const OptExponential& e = s.inverse_time;
        float p = (float)step / (float)e.decay_steps;
        if (e.staircase) p = floorf(p);
        return e.initial / (1.0f + e.rate * p);
    }
    case SCHEDULE_COSINE: {
        const OptCosine& c = s.cosine;
        float decay_steps = (float)c.decay_steps, x = (float)step, from = c.initial;
        if (c.warmup) {
            float warmup_steps = (float)c.warmup_steps;
            x = fminf(x, decay_steps + warmup_steps);
            if (x < warmup_steps) return (c.warmup_target - c.initial) * (x / warmup_steps) + c.initial;
            x = x - warmup_steps;
            from = c.warmup_target;
        } else {
            x = fminf(x, decay_steps);
        }
        float completed = x / decay_steps;
        float cosine = 0.5f * (1.0f + (float)cos((double)(OPT_PI * completed)));
        return from * ((1.0f - c.alpha) * cosine + c.alpha);
    }
    default: return host;
    }
}

// One step's scalars, from the descriptor and the step buffer (iterations, the host's rate,
// Nadam's momentum product).
struct StepValues {
    float lr;
    float alpha;       // Adam: lr sqrt(1 - b2^t) / (1 - b1^t)
    float correction;  // Adamax: 1 - b1^t
    // Nadam.
    float u_next, one_minus_u, one_minus_product_next, one_minus_product, v_correction;
    float l2;         // FTRL: l2 + beta / (2 lr)
    float u_product;  // Nadam's product after this step (the buffer's value for other rules)
};

__device__ void opt_step_values(const Update& u, const float* step, StepValues& v) {
    unsigned long long iterations = opt_u64(step);
    float lr = opt_schedule(u.schedule, iterations, step[2]);
    if (u.rule.tag == RULE_SGD && u.rule.sgd.decay != 0.0f) lr = lr / (1.0f + u.rule.sgd.decay * (float)iterations);
    float t = (float)(iterations + 1);
    v.lr = lr;
    v.alpha = v.correction = v.u_next = v.one_minus_u = v.one_minus_product_next = v.one_minus_product = 0.0f;
    v.v_correction = v.l2 = 0.0f;
    v.u_product = step[3];
    switch (u.rule.tag) {
    case RULE_ADAM: {
        const OptAdam& a = u.rule.adam;
        v.alpha = lr * sqrtf(1.0f - opt_powi(a.beta_2, t)) / (1.0f - opt_powi(a.beta_1, t));
        break;
    }
    case RULE_ADAMAX: v.correction = 1.0f - opt_powi(u.rule.adamax.beta_1, t); break;
    case RULE_NADAM: {
        const OptNadam& a = u.rule.nadam;
        float decay = 0.96f;
        float u_t = a.beta_1 * (1.0f - 0.5f * opt_powi(decay, t));
        float u_next = a.beta_1 * (1.0f - 0.5f * opt_powi(decay, t + 1.0f));
        v.u_product = v.u_product * a.beta_1 * (1.0f - 0.5f * opt_powi(decay, t));
        float product_next = v.u_product * u_next;
        v.u_next = u_next;
        v.one_minus_u = 1.0f - u_t;
        v.one_minus_product_next = 1.0f - product_next;
        v.one_minus_product = 1.0f - v.u_product;
        v.v_correction = 1.0f - opt_powi(a.beta_2, t);
        break;
    }
    case RULE_FTRL: v.l2 = u.rule.ftrl.l2 + u.rule.ftrl.beta / (2.0f * lr); break;
    default: break;
    }
}

// A block-wide sum of one value per thread (blockDim.x a multiple of 32); every thread gets the
// same total, summed in the same order in every block. `scratch`: 32 floats of shared memory.
__device__ float opt_block_sum(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// x^e (e = -lr_power >= 0) for FTRL's accumulator (>= 0): a square root for Keras's default
// lr_power of -0.5, else exp2(e log2 x) in double, rounded to the same f32 as opt_pow in all but
// the rarest cases, and far lighter on registers than pow (which would lower the occupancy of
// every rule's update, this loop being one kernel).
__device__ __forceinline__ float opt_acc_pow(float x, float e) {
    return e == 0.5f ? sqrtf(x) : (e == 0.0f ? 1.0f : (float)exp2((double)e * log2((double)x)));
}

// ---- The step ----

// One optimizer step over the n floats of the arena `w` (blockDim.x a multiple of 32): the
// gradient `g` (scaled in place under global clipping; per-tensor clipping scaled it before),
// the rule's state s0, s1, s2 (null where the rule has fewer; SGD without state is plain SGD),
// the step buffer (read only: `optimizer_advance` moves it on), and for global clipping the
// `pieces` sums of squares of every weight tensor's pieces.
extern "C" __global__ void optimizer_update(Update u, float* w, float* g, float* s0, float* s1, float* s2,
                                            const float* step, const float* partials, unsigned long long pieces,
                                            unsigned long long n) {
    __shared__ StepValues values;
    __shared__ float scratch[32];
    float factor = 1.0f;
    if (u.clip.tag == CLIP_GLOBAL_NORM) {
        float s = 0.0f;
        for (unsigned long long i = threadIdx.x; i < pieces; i += blockDim.x) s += partials[i];
        float norm = sqrtf(opt_block_sum(s, scratch));
        // Keras adds `norm - norm`, so that a non-finite norm makes every gradient NaN.
        float c = u.clip.limit;
        factor = fabsf(norm) < KERAS_INF ? c * fminf(1.0f / norm, 1.0f / c) : KERAS_NAN;
    }
    if (threadIdx.x == 0) opt_step_values(u, step, values);
    __syncthreads();
    const StepValues& v = values;
    const float lr = v.lr, wd = u.weight_decay, limit = u.clip.limit;
    const bool rescale = factor != 1.0f, decay = wd != 0.0f, clip_value = u.clip.tag == CLIP_VALUE;
    const UpdateRule& r = u.rule;
    KERAS_FOR(i, n) {
        float wi = w[i], gi = g[i];
        if (rescale) {
            gi *= factor;
            g[i] = gi;
        }
        if (decay) wi -= wi * wd * lr;
        if (clip_value) gi = opt_clamp(gi, -limit, limit);
        switch (r.tag) {
        case RULE_SGD: {
            if (!s0) {
                wi -= gi * lr;
                break;
            }
            float mu = r.sgd.momentum;
            float m = opt_flush(s0[i] * mu - gi * lr);
            s0[i] = m;
            wi += r.sgd.nesterov ? m * mu - gi * lr : m;
            break;
        }
        case RULE_ADAM: {
            const OptAdam& a = r.adam;
            float m = opt_flush(s0[i] + (gi - s0[i]) * (1.0f - a.beta_1));
            float vv = opt_flush(s1[i] + (gi * gi - s1[i]) * (1.0f - a.beta_2));
            s0[i] = m;
            s1[i] = vv;
            if (a.amsgrad) {
                vv = fmaxf(s2[i], vv);
                s2[i] = vv;
            }
            wi -= (m * v.alpha) / (sqrtf(vv) + a.epsilon);
            break;
        }
        case RULE_RMSPROP: {
            const OptRmsProp& a = r.rmsprop;
            bool momentum = a.momentum > 0.0f;
            float* mom = momentum ? s1 : nullptr;
            float* avg = a.centered ? (momentum ? s2 : s1) : nullptr;
            float c = 1.0f - a.rho;
            float vv = opt_flush(a.rho * s0[i] + c * (gi * gi));
            s0[i] = vv;
            float denominator;
            if (avg) {
                float m = opt_flush(a.rho * avg[i] + c * gi);
                avg[i] = m;
                denominator = vv - m * m + a.epsilon;
            } else {
                denominator = vv + a.epsilon;
            }
            float inc = (lr * gi) / sqrtf(denominator);
            if (mom) {
                float m = opt_flush(a.momentum * mom[i] + inc);
                mom[i] = m;
                wi -= m;
            } else {
                wi -= inc;
            }
            break;
        }
        case RULE_ADAGRAD: {
            float acc = s0[i] + gi * gi;
            s0[i] = acc;
            wi -= (lr * gi) / sqrtf(acc + r.adagrad.epsilon);
            break;
        }
        case RULE_ADADELTA: {
            const OptAdadelta& a = r.adadelta;
            float c = 1.0f - a.rho;
            float ag = opt_flush(a.rho * s0[i] + c * (gi * gi));
            float d = -((sqrtf(s1[i] + a.epsilon) * gi) / sqrtf(ag + a.epsilon));
            s0[i] = ag;
            s1[i] = opt_flush(a.rho * s1[i] + c * (d * d));
            wi += lr * d;
            break;
        }
        case RULE_ADAMAX: {
            const OptAdamax& a = r.adamax;
            float m = opt_flush(s0[i] + (gi - s0[i]) * (1.0f - a.beta_1));
            float norm = opt_flush(fmaxf(a.beta_2 * s1[i], fabsf(gi)));
            s0[i] = m;
            s1[i] = norm;
            wi -= (lr * m) / (v.correction * (norm + a.epsilon));
            break;
        }
        case RULE_NADAM: {
            const OptNadam& a = r.nadam;
            float m = opt_flush(s0[i] + (gi - s0[i]) * (1.0f - a.beta_1));
            float vv = opt_flush(s1[i] + (gi * gi - s1[i]) * (1.0f - a.beta_2));
            s0[i] = m;
            s1[i] = vv;
            float m_hat = (v.u_next * m) / v.one_minus_product_next + (v.one_minus_u * gi) / v.one_minus_product;
            float v_hat = vv / v.v_correction;
            wi -= (m_hat * lr) / (sqrtf(v_hat) + a.epsilon);
            break;
        }
        case RULE_LION: {
            const OptLion& a = r.lion;
            float m = s0[i];
            float c = m * a.beta_1 + gi * (1.0f - a.beta_1);
            // jnp.sign: 0 stays 0, NaN stays NaN.
            float sign = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : c);
            wi -= lr * sign;
            s0[i] = opt_flush(m * a.beta_2 + gi * (1.0f - a.beta_2));
            break;
        }
        case RULE_FTRL: {
            const OptFtrl& a = r.ftrl;
            float e = -a.lr_power;
            float acc = s0[i], lin = s1[i];
            float grad_to_use = gi + 2.0f * a.l2_shrinkage * wi;
            float new_acc = acc + gi * gi;
            float new_pow = opt_acc_pow(new_acc, e);
            lin += grad_to_use - ((new_pow - opt_acc_pow(acc, e)) / lr) * wi;
            float quadratic = new_pow / lr + 2.0f * v.l2;
            wi = (opt_clamp(lin, -a.l1, a.l1) - lin) / quadratic;
            s0[i] = new_acc;
            s1[i] = lin;
            break;
        }
        default: break;
        }
        w[i] = wi;
    }
}

// The step buffer after an update (one thread): iterations + 1, Nadam's momentum product
// advanced; the host's rate kept.
extern "C" __global__ void optimizer_advance(Update u, float* step) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        StepValues v;
        opt_step_values(u, step, v);
        unsigned long long iterations = opt_u64(step) + 1;
        step[0] = __uint_as_float((unsigned int)iterations);
        step[1] = __uint_as_float((unsigned int)(iterations >> 32));
        if (u.rule.tag == RULE_NADAM) step[3] = v.u_product;
    }
}

// ---- Clipping by norm ----

// The range of piece blockIdx.x of tensor blockIdx.y of the batch; false (for the whole block)
// past the batch or the tensor.
__device__ __forceinline__ bool opt_piece(const Pieces& p, unsigned long long& start, unsigned long long& end) {
    if (blockIdx.y >= p.count) return false;
    const unsigned long long* t = p.tensors[blockIdx.y];
    start = (unsigned long long)blockIdx.x * p.piece;
    if (start >= t[1]) return false;
    end = t[1] - start < p.piece ? t[1] : start + p.piece;
    return true;
}

// The sum of squares of each piece of the gradient `g` of each tensor of the batch: grid
// (pieces of the batch's longest tensor, tensors), blockDim.x a multiple of 32.
extern "C" __global__ void clip_partials(Pieces p, const float* g, float* partials) {
    __shared__ float scratch[32];
    unsigned long long start, end;
    if (!opt_piece(p, start, end)) return;  // the whole block
    const unsigned long long* t = p.tensors[blockIdx.y];
    float s = 0.0f;
    for (unsigned long long i = start + threadIdx.x; i < end; i += blockDim.x) {
        float x = g[t[0] + i];
        s += x * x;
    }
    s = opt_block_sum(s, scratch);
    if (threadIdx.x == 0) partials[t[2] + blockIdx.x] = s;
}

// Keras's clipnorm per tensor: g c / max(norm, c), the norm from the tensor's piece sums (a NaN
// norm makes the tensor NaN); the geometry of clip_partials.
extern "C" __global__ void clip_scale(Pieces p, float limit, const float* partials, float* g) {
    __shared__ float scratch[32];
    unsigned long long start, end;
    if (!opt_piece(p, start, end)) return;  // the whole block
    const unsigned long long* t = p.tensors[blockIdx.y];
    unsigned long long count = (t[1] + p.piece - 1) / p.piece;
    float s = 0.0f;
    for (unsigned long long i = threadIdx.x; i < count; i += blockDim.x) s += partials[t[2] + i];
    float ss = opt_block_sum(s, scratch);
    float norm = ss > 0.0f ? sqrtf(ss) : ss;
    if (!(norm > limit || norm != norm)) return;
    float factor = limit / norm;
    for (unsigned long long i = start + threadIdx.x; i < end; i += blockDim.x) g[t[0] + i] *= factor;
}

// ---- Constraints ----

// A norm constraint on a rows x cols row-major tensor, norms over axis 0: one thread per column,
// its rows summed in order as the CPU sums them.
extern "C" __global__ void constrain_columns(Constraint c, float* w, unsigned long long rows, unsigned long long cols) {
    const float eps = 1e-7f;
    KERAS_FOR(col, cols) {
        float ss = 0.0f;
        for (unsigned long long r = 0; r < rows; r++) {
            float x = w[r * cols + col];
            ss += x * x;
        }
        float norm = sqrtf(ss), scale;
        switch (c.tag) {
        case CONSTRAINT_MAX_NORM: scale = opt_clamp(norm, 0.0f, c.a) / (eps + norm); break;
        case CONSTRAINT_UNIT_NORM: scale = 1.0f / (eps + norm); break;
        case CONSTRAINT_MIN_MAX_NORM: scale = (c.c * opt_clamp(norm, c.a, c.b) + (1.0f - c.c) * norm) / (eps + norm); break;
        default: scale = 1.0f; break;
        }
        for (unsigned long long r = 0; r < rows; r++) w[r * cols + col] *= scale;
    }
}

// NonNeg: Keras's w * (w >= 0), a NaN kept.
extern "C" __global__ void non_neg(float* w, unsigned long long n) {
    KERAS_FOR(i, n) {
        if (w[i] < 0.0f) w[i] = 0.0f;
    }
}

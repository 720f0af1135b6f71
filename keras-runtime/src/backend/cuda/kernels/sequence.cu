// SequenceOps: embedding lookups, the gate arithmetic of one step of a recurrent layer and its
// backward pass, Bidirectional's merge of its two directions; the CPU backend's
// backend/cpu/recurrent.rs on the device. One thread per output value (per state value for the
// step kernels, which write each gate of that value), a few launches per step, one per phase
// whose inputs an earlier phase writes. The elementwise activations are fused into the phases
// with activation.cuh's keras_act and keras_act_grad, as the dense kernels apply them; softmax is
// row-wise, so for it these kernels apply the identity (and a gradient of 1) and the backend runs
// the dense module's softmax kernels over the block before the next phase reads it, as the CPU
// does. Sums run in the CPU's order (the embedding's backward pass gathers each table value's
// rows in sample order, the bias gradients add their samples in order), so no atomics are
// needed and they agree with the CPU bit for bit; products that feed a sum are __fmul_rn so that
// NVRTC does not fuse them into it (the CPU rounds each one).

// CellKind's discriminants.
#define CELL_SIMPLE 0u
#define CELL_LSTM 1u
#define CELL_GRU 2u
#define CELL_GRU_RESET_BEFORE 3u

// MergeMode's discriminants.
#define MERGE_CONCAT 0u
#define MERGE_SUM 1u
#define MERGE_MUL 2u
#define MERGE_AVE 3u

// RnnCell (repr(C)): usize as unsigned long long, the repr(u32) enums as unsigned int, bool as
// bool (one byte, as Rust's).
struct RnnCell {
    unsigned int kind;
    unsigned long long timesteps, units;
    unsigned int activation, recurrent_activation;
    bool return_sequences, go_backwards;
};

// RnnStep (repr(C)): step s of the cell over batch samples.
struct RnnStep {
    RnnCell cell;
    unsigned long long s, batch;
};

// Directions (repr(C)).
struct Directions {
    unsigned int mode;
    unsigned long long batch, steps, units;
};

static_assert(sizeof(RnnCell) == 40, "RnnCell mirrors the Rust struct");
static_assert(sizeof(RnnStep) == 56, "RnnStep mirrors the Rust struct");
static_assert(sizeof(Directions) == 32, "Directions mirrors the Rust struct");

// The input time step read at step s (RnnCell::time).
__device__ __forceinline__ unsigned long long keras_rnn_time(const RnnStep& st) {
    return st.cell.go_backwards ? st.cell.timesteps - 1 - st.s : st.s;
}

// Gate blocks (RnnCell::gates): 1, 4 or 3.
__device__ __forceinline__ unsigned long long keras_rnn_gates(const RnnCell& c) {
    return c.kind == CELL_SIMPLE ? 1 : (c.kind == CELL_LSTM ? 4 : 3);
}

// An id as the CPU reads it (Rust's `as usize`): truncated, 0 for a negative id or NaN, the
// largest value past the range.
__device__ __forceinline__ unsigned long long keras_id(float id) {
    return id >= 0.0f ? (id < 18446744073709551616.0f ? (unsigned long long)id : ~0ull) : 0ull;
}

// Row i of y is row ids[i] of the table (vocab rows of dim); NaN for an id past the table (the
// layer checks the ids before: this only keeps the read inside the table).
extern "C" __global__ void embedding(unsigned long long dim, unsigned long long count, unsigned long long vocab,
                                     const float* ids, const float* table, float* y) {
    KERAS_FOR(e, count * dim) {
        unsigned long long id = keras_id(ids[e / dim]);
        y[e] = id < vocab ? table[id * dim + e % dim] : KERAS_NAN;
    }
}

// dtable[row, col] (len values, overwritten) sums dy[i, col] over the ids i equal to row, in
// order. One warp per table row: its lanes scan the ids 32 at a time, and each id found (in
// order, from the ballot's mask) adds its dy row, the lanes striding over the columns. So the
// scan costs rows x ids / 32 warp steps and each dy row is read once per match. blockDim.x is a
// multiple of 32 (the backend launches whole warps), so a warp's lanes share their row.
extern "C" __global__ void embedding_backward(unsigned long long dim, unsigned long long count, unsigned long long len,
                                              const float* ids, const float* dy, float* dtable) {
    const unsigned lane = threadIdx.x % 32;
    const unsigned long long rows = (len + dim - 1) / dim;
    const unsigned long long warps = (unsigned long long)gridDim.x * blockDim.x / 32;
    for (unsigned long long row = ((unsigned long long)blockIdx.x * blockDim.x + threadIdx.x) / 32; row < rows;
         row += warps) {
        const unsigned long long at = row * dim, cols = len - at < dim ? len - at : dim;
        for (unsigned long long col = lane; col < cols; col += 32) dtable[at + col] = 0.0f;
        for (unsigned long long base = 0; base < count; base += 32) {
            const unsigned long long i = base + lane;
            unsigned mask = __ballot_sync(0xffffffffu, i < count && keras_id(ids[i]) == row);
            while (mask) {
                const unsigned long long hit = base + (__ffs(mask) - 1);
                mask &= mask - 1;
                for (unsigned long long col = lane; col < cols; col += 32) dtable[at + col] += dy[hit * dim + col];
            }
        }
    }
}

// The pre-activations of the gates whose input is x K + h R (+ b) alone (every gate but the
// GRU's candidate), block-major: pre[g, n, i] = xw[n, t, g, i] + (hu[n, g, i] + rbias[g, i]),
// and post their activations (recurrent_activation for the gates, activation for the LSTM's
// candidate and SimpleRNN's state). hu and rbias may be null (zero).
extern "C" __global__ void rnn_gates(RnnStep st, const float* xw, const float* hu, const float* rbias, float* pre,
                                     float* post) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, gu = keras_rnn_gates(c) * u, nu = st.batch * u, t = keras_rnn_time(st);
    unsigned long long plain = c.kind == CELL_GRU || c.kind == CELL_GRU_RESET_BEFORE ? 2 : keras_rnn_gates(c);
    KERAS_FOR(e, plain * nu) {
        unsigned long long g = e / nu, n = (e % nu) / u, k = g * u + e % u;
        float rec = (hu ? hu[n * gu + k] : 0.0f) + (rbias ? rbias[k] : 0.0f);
        float v = xw[(n * c.timesteps + t) * gu + k] + rec;
        bool candidate = c.kind == CELL_SIMPLE || (c.kind == CELL_LSTM && g == 2);
        pre[e] = v;
        post[e] = keras_act(candidate ? c.activation : c.recurrent_activation, v);
    }
}

// The LSTM's cell state c = f c_prev + i c~ (c_prev from the previous step's pre, zero when
// prev_pre is null), kept in block 4 of pre, and its activation in block 4 of post.
extern "C" __global__ void rnn_lstm_state(RnnStep st, const float* prev_pre, float* pre, float* post) {
    unsigned long long nu = st.batch * st.cell.units;
    KERAS_FOR(idx, nu) {
        float c_prev = prev_pre ? prev_pre[4 * nu + idx] : 0.0f;
        float c = __fmul_rn(post[nu + idx], c_prev) + __fmul_rn(post[idx], post[2 * nu + idx]);
        pre[4 * nu + idx] = c;
        post[4 * nu + idx] = keras_act(st.cell.activation, c);
    }
}

// The GRU's candidate h~ = act(xw_h + r (hu_h + rbias_h)), or with the reset gate before the
// product act(xw_h + (r h) R_h) from the second half of hu; block 3 of pre keeps hu_h + rbias_h
// (zero without reset_after), block 3 of post is zero.
extern "C" __global__ void rnn_gru_candidate(RnnStep st, const float* xw, const float* hu, const float* rbias,
                                             float* pre, float* post) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, gu = 3 * u, nu = st.batch * u, t = keras_rnn_time(st);
    KERAS_FOR(idx, nu) {
        unsigned long long n = idx / u, k = 2 * u + idx % u;
        float x = xw[(n * c.timesteps + t) * gu + k], zh, hrec = 0.0f;
        if (c.kind == CELL_GRU_RESET_BEFORE) {
            zh = x + (hu ? hu[(st.batch + n) * gu + k] : 0.0f);
        } else {
            hrec = (hu ? hu[n * gu + k] : 0.0f) + (rbias ? rbias[k] : 0.0f);
            zh = x + __fmul_rn(post[nu + idx], hrec);
        }
        pre[2 * nu + idx] = zh;
        pre[3 * nu + idx] = hrec;
        post[2 * nu + idx] = keras_act(c.activation, zh);
        post[3 * nu + idx] = 0.0f;
    }
}

// The new state h from the step's activations (SimpleRNN: a; LSTM: o act(c); GRU:
// z h_prev + (1 - z) h~, h_prev zero when prev_h is null), copied into the layer's output y at
// step s with return_sequences, else at the last step.
extern "C" __global__ void rnn_output(RnnStep st, const float* prev_h, const float* post, float* h, float* y) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, nu = st.batch * u;
    KERAS_FOR(idx, nu) {
        float v;
        if (c.kind == CELL_SIMPLE) {
            v = post[idx];
        } else if (c.kind == CELL_LSTM) {
            v = post[3 * nu + idx] * post[4 * nu + idx];
        } else {
            float z = post[idx];
            v = __fmul_rn(z, prev_h ? prev_h[idx] : 0.0f) + __fmul_rn(1.0f - z, post[2 * nu + idx]);
        }
        h[idx] = v;
        unsigned long long n = idx / u, i = idx % u;
        if (c.return_sequences) y[(n * c.timesteps + st.s) * u + i] = v;
        else if (st.s + 1 == c.timesteps) y[idx] = v;
    }
}

// The GRU's reset gate times the state, rh = recurrent_activation(xw_r + hu_r) h; for a softmax
// gate only the pre-activation (the backend applies the softmax and then the product).
extern "C" __global__ void rnn_reset_state(RnnStep st, const float* xw, const float* hu, const float* h, float* rh) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, gu = keras_rnn_gates(c) * u, t = keras_rnn_time(st);
    KERAS_FOR(idx, st.batch * u) {
        unsigned long long n = idx / u, k = u + idx % u;
        float v = xw[(n * c.timesteps + t) * gu + k] + hu[n * gu + k];
        rh[idx] = c.recurrent_activation == ACT_SOFTMAX ? v : keras_act(c.recurrent_activation, v) * h[idx];
    }
}

// The first phase of a step's backward pass, from the state's gradient g = dh (plus the step's
// row of dy where the output holds it) into tmp, block-major: SimpleRNN's gate gradient (dh
// left zero); the LSTM's output gate and the gradient reaching the cell state through h (dh left
// zero); the GRU's update gate and candidate (dh left z g; the reset gate's block zero with the
// reset gate before the product). prev_h may be null (zero).
extern "C" __global__ void rnn_state_grads(RnnStep st, const float* dy, const float* pre, const float* post,
                                           const float* prev_h, float* dh, float* tmp) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, nu = st.batch * u;
    unsigned int act = c.activation, ract = c.recurrent_activation;
    KERAS_FOR(idx, nu) {
        unsigned long long n = idx / u, i = idx % u;
        float g = dh[idx];
        if (c.return_sequences) g += dy[(n * c.timesteps + st.s) * u + i];
        else if (st.s + 1 == c.timesteps) g += dy[idx];
        if (c.kind == CELL_SIMPLE) {
            tmp[idx] = g * keras_act_grad(act, pre[idx], post[idx]);
            dh[idx] = 0.0f;
        } else if (c.kind == CELL_LSTM) {
            tmp[3 * nu + idx] = g * post[4 * nu + idx] * keras_act_grad(ract, pre[3 * nu + idx], post[3 * nu + idx]);
            tmp[2 * nu + idx] = g * post[3 * nu + idx] * keras_act_grad(act, pre[4 * nu + idx], post[4 * nu + idx]);
            dh[idx] = 0.0f;
        } else {
            float z = post[idx], hh = post[2 * nu + idx], hp = prev_h ? prev_h[idx] : 0.0f;
            tmp[2 * nu + idx] = g * (1.0f - z) * keras_act_grad(act, pre[2 * nu + idx], hh);
            tmp[idx] = g * (hp - hh) * keras_act_grad(ract, pre[idx], z);
            if (c.kind == CELL_GRU_RESET_BEFORE) tmp[nu + idx] = 0.0f;
            dh[idx] = g * z;
        }
    }
}

// The LSTM's second phase: the cell state's gradient dc + tmp_c (into dc, times the forget gate,
// for the previous step) to the input, forget and candidate gates' blocks of tmp. prev_pre may be
// null (the previous cell state zero).
extern "C" __global__ void rnn_lstm_cell_grads(RnnStep st, const float* pre, const float* post, const float* prev_pre,
                                               float* dc, float* tmp) {
    const RnnCell& c = st.cell;
    unsigned long long nu = st.batch * c.units;
    unsigned int act = c.activation, ract = c.recurrent_activation;
    KERAS_FOR(idx, nu) {
        float dct = dc[idx] + tmp[2 * nu + idx];
        float c_prev = prev_pre ? prev_pre[4 * nu + idx] : 0.0f;
        tmp[idx] = dct * post[2 * nu + idx] * keras_act_grad(ract, pre[idx], post[idx]);
        tmp[nu + idx] = dct * c_prev * keras_act_grad(ract, pre[nu + idx], post[nu + idx]);
        tmp[2 * nu + idx] = dct * post[idx] * keras_act_grad(act, pre[2 * nu + idx], post[2 * nu + idx]);
        dc[idx] = dct * post[nu + idx];
    }
}

// The GRU's second phase (reset gate after the product): the reset gate's block of tmp from the
// candidate's, times the recurrent term hu_h + rbias_h kept in block 3 of pre.
extern "C" __global__ void rnn_gru_reset_grads(RnnStep st, const float* pre, const float* post, float* tmp) {
    unsigned long long nu = st.batch * st.cell.units;
    KERAS_FOR(idx, nu) {
        float grad = keras_act_grad(st.cell.recurrent_activation, pre[nu + idx], post[nu + idx]);
        tmp[nu + idx] = tmp[2 * nu + idx] * pre[3 * nu + idx] * grad;
    }
}

// The gates' gradients (tmp, block-major) laid out as rows: dxw[n, t] and dhu[n] per sample; the
// GRU's candidate column of dhu times the reset gate (reset_after), or, with the reset gate
// before the product, zero in dhu's first half and the candidate's gradient in its second.
extern "C" __global__ void rnn_grad_rows(RnnStep st, const float* tmp, const float* post, float* dxw, float* dhu) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, gu = keras_rnn_gates(c) * u, nu = st.batch * u, t = keras_rnn_time(st);
    KERAS_FOR(e, st.batch * gu) {
        unsigned long long n = e / gu, k = e % gu, g = k / u, i = k % u;
        float v = tmp[g * nu + n * u + i];
        dxw[(n * c.timesteps + t) * gu + k] = v;
        if (c.kind == CELL_GRU) {
            dhu[e] = g == 2 ? v * post[nu + n * u + i] : v;
        } else if (c.kind == CELL_GRU_RESET_BEFORE) {
            dhu[e] = g == 2 ? 0.0f : v;
            dhu[st.batch * gu + e] = g == 2 ? v : 0.0f;
        } else {
            dhu[e] = v;
        }
    }
}

// The bias gradients, added to: dbias[k] += dxw[n, t, k] and drbias[k] += dhu[n, k], samples in
// order; either may be null (skipped).
extern "C" __global__ void rnn_bias_grads(RnnStep st, const float* dxw, const float* dhu, float* dbias, float* drbias) {
    const RnnCell& c = st.cell;
    unsigned long long gu = keras_rnn_gates(c) * c.units, t = keras_rnn_time(st);
    KERAS_FOR(k, gu) {
        if (dbias) {
            float s = dbias[k];
            for (unsigned long long n = 0; n < st.batch; n++) s += dxw[(n * c.timesteps + t) * gu + k];
            dbias[k] = s;
        }
        if (drbias) {
            float s = drbias[k];
            for (unsigned long long n = 0; n < st.batch; n++) s += dhu[n * gu + k];
            drbias[k] = s;
        }
    }
}

// The reset gate's part of the backward pass with the reset gate before the product: from the
// gradient of r h (drh, with the previous state h; both null at the first step, then zero), the
// reset gate's column of dxw at time t and of dhu, and r drh added to dh.
extern "C" __global__ void rnn_reset_state_backward(RnnStep st, const float* drh, const float* pre, const float* post,
                                                    const float* h, float* dh, float* dxw, float* dhu) {
    const RnnCell& c = st.cell;
    unsigned long long u = c.units, gu = keras_rnn_gates(c) * u, nu = st.batch * u, t = keras_rnn_time(st);
    bool both = drh && h;
    KERAS_FOR(idx, nu) {
        unsigned long long n = idx / u, k = u + idx % u;
        float d = both ? drh[idx] : 0.0f, hp = both ? h[idx] : 0.0f, r = post[nu + idx];
        float dzr = d * hp * keras_act_grad(c.recurrent_activation, pre[nu + idx], r);
        dxw[(n * c.timesteps + t) * gu + k] = dzr;
        dhu[n * gu + k] = dzr;
        dh[idx] = dh[idx] + __fmul_rn(d, r);
    }
}

// Bidirectional's merge: y[n, t] from fwd[n, t] and bwd[n, steps - 1 - t], side by side
// (concat, 2 units wide) or combined value by value.
extern "C" __global__ void merge_directions(Directions d, const float* fwd, const float* bwd, float* y) {
    unsigned long long width = d.mode == MERGE_CONCAT ? 2 * d.units : d.units;
    KERAS_FOR(e, d.batch * d.steps * width) {
        unsigned long long j = e % width, t = (e / width) % d.steps, n = e / (width * d.steps);
        const float* f = fwd + (n * d.steps + t) * d.units;
        const float* b = bwd + (n * d.steps + d.steps - 1 - t) * d.units;
        float v;
        switch (d.mode) {
        case MERGE_CONCAT: v = j < d.units ? f[j] : b[j - d.units]; break;
        case MERGE_SUM: v = f[j] + b[j]; break;
        case MERGE_MUL: v = f[j] * b[j]; break;
        default: v = (f[j] + b[j]) / 2.0f; break;
        }
        y[e] = v;
    }
}

// The backward pass of merge_directions: dfwd[n, t] and dbwd[n, steps - 1 - t] (overwritten)
// from dy[n, t]; fwd and bwd are read for the product only.
extern "C" __global__ void merge_directions_backward(Directions d, const float* dy, const float* fwd, const float* bwd,
                                                     float* dfwd, float* dbwd) {
    unsigned long long width = d.mode == MERGE_CONCAT ? 2 * d.units : d.units;
    KERAS_FOR(e, d.batch * d.steps * d.units) {
        unsigned long long j = e % d.units, t = (e / d.units) % d.steps, n = e / (d.units * d.steps);
        unsigned long long bi = (n * d.steps + d.steps - 1 - t) * d.units + j;
        const float* g = dy + (n * d.steps + t) * width;
        float df, db;
        switch (d.mode) {
        case MERGE_CONCAT: df = g[j]; db = g[d.units + j]; break;
        case MERGE_SUM: df = g[j]; db = g[j]; break;
        case MERGE_MUL: df = g[j] * bwd[bi]; db = g[j] * fwd[e]; break;
        default: df = g[j] / 2.0f; db = g[j] / 2.0f; break;
        }
        dfwd[e] = df;
        dbwd[bi] = db;
    }
}

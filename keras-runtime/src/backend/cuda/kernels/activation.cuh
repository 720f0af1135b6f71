// Keras 3's activations and their derivatives, as the CPU backend defines them
// (backend/cpu/activation.rs): the same formulas, the same values at the kinks (JAX's), NaN kept
// where Keras keeps it. `act` is the Activation enum's discriminant.

enum {
    ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX, ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SOFTSIGN,
    ACT_SWISH, ACT_GELU, ACT_LEAKY_RELU, ACT_RELU6, ACT_HARD_SIGMOID, ACT_EXPONENTIAL, ACT_MISH
};

#define KERAS_SELU_ALPHA 1.6732632f
#define KERAS_SELU_SCALE 1.050701f
#define KERAS_LEAKY_SLOPE 0.2f

__device__ __forceinline__ float keras_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// max(x, 0) + log1p(e^-|x|), JAX's stable form.
__device__ __forceinline__ float keras_softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

// min(max(x, lo), hi) that keeps NaN (fminf/fmaxf would drop it).
__device__ __forceinline__ float keras_clamp(float x, float lo, float hi) { return x < lo ? lo : (x > hi ? hi : x); }

// The activation at x (softmax is row-wise: its kernels handle it; here it is the identity).
__device__ float keras_act(unsigned int act, float x) {
    switch (act) {
    case ACT_RELU: return x < 0.0f ? 0.0f : x;
    case ACT_SIGMOID: return keras_sigmoid(x);
    case ACT_TANH: return tanhf(x);
    case ACT_ELU: return x > 0.0f ? x : expm1f(x);
    case ACT_SELU: return x > 0.0f ? KERAS_SELU_SCALE * x : KERAS_SELU_SCALE * KERAS_SELU_ALPHA * expm1f(x);
    case ACT_SOFTPLUS: return keras_softplus(x);
    case ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case ACT_SWISH: return x * keras_sigmoid(x);
    // erfc keeps precision in the negative tail, where 1 + erf(x) cancels.
    case ACT_GELU: return 0.5f * x * erfcf(-x * 0.70710678f);
    case ACT_LEAKY_RELU: return x >= 0.0f ? x : KERAS_LEAKY_SLOPE * x;
    case ACT_RELU6: return keras_clamp(x, 0.0f, 6.0f);
    case ACT_HARD_SIGMOID: return keras_clamp(x + 3.0f, 0.0f, 6.0f) / 6.0f;
    case ACT_EXPONENTIAL: return expf(x);
    case ACT_MISH: return x * tanhf(keras_softplus(x));
    default: return x;
    }
}

// dy/dx from the input x (read only where the output cannot give it) and the output y.
__device__ float keras_act_grad(unsigned int act, float x, float y) {
    switch (act) {
    case ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case ACT_SIGMOID: return y * (1.0f - y);
    case ACT_TANH: return 1.0f - y * y;
    case ACT_ELU: return x > 0.0f ? 1.0f : expf(x);
    case ACT_SELU: return x > 0.0f ? KERAS_SELU_SCALE : KERAS_SELU_SCALE * KERAS_SELU_ALPHA * expf(x);
    case ACT_SOFTPLUS: return -expm1f(-y);
    case ACT_SOFTSIGN: { float t = 1.0f - fabsf(y); return t * t; }
    case ACT_SWISH: { float s = keras_sigmoid(x); return s * (1.0f + x * (1.0f - s)); }
    case ACT_GELU: {
        float cdf = 0.5f * erfcf(-x * 0.70710678f);
        float pdf = expf(-0.5f * x * x) * 0.3989423f;
        return cdf + x * pdf;
    }
    case ACT_LEAKY_RELU: return y >= 0.0f ? 1.0f : KERAS_LEAKY_SLOPE;
    case ACT_RELU6: return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
    case ACT_HARD_SIGMOID: return y > 0.0f && y < 1.0f ? 1.0f / 6.0f : 0.0f;
    case ACT_EXPONENTIAL: return y;
    case ACT_MISH: {
        float t = tanhf(keras_softplus(x));
        return t + x * (1.0f - t * t) * keras_sigmoid(x);
    }
    default: return 1.0f;
    }
}

// A block-wide sum of one value per thread (blockDim.x a multiple of 32, at most 1024); every
// thread gets the total. `scratch` holds 32 floats of shared memory.
__device__ float keras_block_sum(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// A block-wide maximum (NaN wins, as in the CPU's softmax the max of a row holding NaN makes the
// row NaN); as keras_block_sum.
__device__ float keras_block_max(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) { float w = __shfl_xor_sync(0xffffffffu, v, o); v = (w > v || w != w) ? w : v; }
    unsigned int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -KERAS_INF;
    for (int o = 16; o > 0; o >>= 1) { float w = __shfl_xor_sync(0xffffffffu, v, o); v = (w > v || w != w) ? w : v; }
    return v;
}

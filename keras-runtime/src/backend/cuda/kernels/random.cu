// RandomOps: dropout and Gaussian noise from the counter-based generator of the CPU backend
// (backend/cpu/noise.rs): element i of a draw depends on (seed, step, i) alone, the seed and step
// read from the model's RandomStream buffer, so both backends draw the same numbers and a
// replayed step draws anew after `advance`.

struct Draw {
    float rate;
    unsigned long long key;
    bool fixed;
    unsigned long long rows, channels;
    unsigned long long first;  // the counter of the first draw (a data-parallel rank's offset)
};

// SplitMix64's finalizer.
__device__ __forceinline__ unsigned long long keras_mix(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// A u64 held as two f32 bit patterns, low word first.
__device__ __forceinline__ unsigned long long keras_u64(const float* slots) {
    return (unsigned long long)__float_as_uint(slots[0]) | ((unsigned long long)__float_as_uint(slots[1]) << 32);
}

// The generator's key for a layer's draw at the stream's step (stream: seed, then step).
__device__ __forceinline__ unsigned long long keras_key(const Draw& d, const float* stream) {
    unsigned long long seed = d.fixed ? d.key : (keras_u64(stream) ^ d.key);
    return keras_mix(seed ^ keras_mix(keras_u64(stream + 2) + 0x9e3779b97f4a7c15ull)) + d.first;
}

// Uniform in [0, 1) with 24 random bits.
__device__ __forceinline__ float keras_uniform(unsigned long long key, unsigned long long i) {
    return (float)(keras_mix(key + i) >> 40) * (1.0f / 16777216.0f);
}

// A standard normal number (Box-Muller on the two halves of one draw).
__device__ __forceinline__ float keras_normal(unsigned long long key, unsigned long long i) {
    unsigned long long bits = keras_mix(key + i);
    float u1 = (float)((bits >> 40) + 1) * (1.0f / 16777216.0f);
    float u2 = (float)(bits & 0xffffffull) * (1.0f / 16777216.0f);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

// Elementwise dropout over n values.
extern "C" __global__ void dropout(Draw d, const float* stream, const float* x, float* y, float* mask,
                                   unsigned long long n) {
    unsigned long long key = keras_key(d, stream);
    float keep = 1.0f - d.rate;
    KERAS_FOR(i, n) {
        bool kept = keras_uniform(key, i) >= d.rate;
        mask[i] = kept ? 1.0f : 0.0f;
        y[i] = kept ? x[i] / keep : 0.0f;
    }
}

// SpatialDropout: mask of rows x channels, one draw per (sample, channel).
extern "C" __global__ void dropout_mask(Draw d, const float* stream, float* mask) {
    unsigned long long key = keras_key(d, stream);
    KERAS_FOR(i, d.rows * d.channels) { mask[i] = keras_uniform(key, i) >= d.rate ? 1.0f : 0.0f; }
}

// SpatialDropout applied (forward: x -> y, backward: g -> dx): each of the n values, in samples of
// `sample` values made of positions of `channels`, kept with its channel's mask value.
extern "C" __global__ void dropout_channels(Draw d, const float* mask, unsigned long long sample, const float* x,
                                           float* y, unsigned long long n) {
    float keep = 1.0f - d.rate;
    KERAS_FOR(i, n) {
        unsigned long long r = i / sample, c = (i % sample) % d.channels;
        y[i] = mask[r * d.channels + c] != 0.0f ? x[i] / keep : 0.0f;
    }
}

// Elementwise dropout's backward pass.
extern "C" __global__ void dropout_backward(Draw d, const float* g, const float* mask, float* dx, unsigned long long n) {
    float keep = 1.0f - d.rate;
    KERAS_FOR(i, n) { dx[i] = mask[i] != 0.0f ? g[i] / keep : 0.0f; }
}

// GaussianNoise (noise null: y = x + rate n) and GaussianDropout (noise = 1 + rate n, y = x noise).
extern "C" __global__ void gaussian_noise(Draw d, const float* stream, const float* x, float* y, float* noise,
                                          unsigned long long n) {
    unsigned long long key = keras_key(d, stream);
    KERAS_FOR(i, n) {
        float z = d.rate * keras_normal(key, i);
        if (noise) {
            noise[i] = 1.0f + z;
            y[i] = x[i] * noise[i];
        } else {
            y[i] = x[i] + z;
        }
    }
}

// The stream's step plus one (a single thread).
extern "C" __global__ void advance(float* stream) {
    if (blockIdx.x == 0 && threadIdx.x == 0) {
        unsigned long long step = keras_u64(stream + 2) + 1;
        stream[2] = __uint_as_float((unsigned int)step);
        stream[3] = __uint_as_float((unsigned int)(step >> 32));
    }
}

// The core primitives of the Device trait: fill, copy, add, scale, multiply, and the row gather
// that reads one shuffled batch of a data set held on the device.

extern "C" __global__ void fill(float* dst, unsigned long long n, float value) {
    KERAS_FOR(i, n) { dst[i] = value; }
}

extern "C" __global__ void copy(const float* src, float* dst, unsigned long long n) {
    KERAS_FOR(i, n) { dst[i] = src[i]; }
}

extern "C" __global__ void add(const float* src, float* dst, unsigned long long n) {
    KERAS_FOR(i, n) { dst[i] += src[i]; }
}

extern "C" __global__ void scale(float* v, unsigned long long n, float factor) {
    KERAS_FOR(i, n) { v[i] *= factor; }
}

extern "C" __global__ void multiply(const float* a, const float* b, float* out, unsigned long long n) {
    KERAS_FOR(i, n) { out[i] = a[i] * b[i]; }
}

// dst[r, :] = src[indices[first + r], :] for r < rows; a row index past the `src_rows` rows of
// `src` gives a row of NaN (never a read outside the data set).
extern "C" __global__ void gather_rows(const float* src, unsigned long long src_rows, unsigned long long row_len,
                                       const unsigned int* indices, unsigned long long first, unsigned long long rows,
                                       float* dst) {
    KERAS_FOR(i, rows * row_len) {
        unsigned long long r = i / row_len, c = i % row_len;
        unsigned long long from = indices[first + r];
        dst[i] = from < src_rows ? src[from * row_len + c] : KERAS_NAN;
    }
}

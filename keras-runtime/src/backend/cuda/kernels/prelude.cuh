// keras-rs CUDA prelude, put before every kernel module by both compilers (NVRTC on a GPU, the
// host C++ compiler in the emulator, which defines KERAS_EMU and CUDA's built-ins first).
// Kernels are `extern "C" __global__` so that their names are the names the backend loads.

// NVRTC has no <math.h> constants.
#define KERAS_INF __int_as_float(0x7f800000)
#define KERAS_NAN __int_as_float(0x7fffffff)

// Dynamic shared memory (the launch's `shared_bytes`), declared inside a kernel.
#ifdef KERAS_EMU
#define KERAS_DYNAMIC_SHARED(T, name) T* name = (T*)emu_dynamic_shared()
#else
#define KERAS_DYNAMIC_SHARED(T, name) extern __shared__ __align__(16) T name[]
#endif

// A grid-stride loop over `n` elements.
#define KERAS_FOR(i, n) \
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < (unsigned long long)(n); \
         i += (unsigned long long)blockDim.x * gridDim.x)

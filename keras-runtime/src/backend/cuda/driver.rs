//! The thin device layer under [`Cuda`](super::Cuda): what a CUDA device does for the backend,
//! in the driver's and cuBLAS's own terms, and nothing else. Two implementations: `CudaDevice`
//! (cudarc: the driver API, NVRTC, cuBLAS and cuBLASLt, CUDA graphs) and [`EmuDevice`](super::EmuDevice),
//! which runs the same CUDA C sources on the CPU. Everything above this trait (buffers and views,
//! launch geometry, the row-major to column-major product, the kernels' arguments, capture of a
//! step) is shared, so the emulator tests it.

use crate::Result;
use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// An address in device memory (the driver's `CUdeviceptr`).
pub type DevicePtr = u64;

/// A kernel's launch geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaunchConfig {
    /// Blocks in the grid (x, y, z).
    pub grid: [u32; 3],
    /// Threads in a block (x, y, z).
    pub block: [u32; 3],
    /// Dynamic shared memory per block, in bytes.
    pub shared_bytes: u32,
}

impl LaunchConfig {
    /// A one-dimensional launch: `blocks` blocks of `threads` threads.
    pub const fn linear(blocks: u32, threads: u32) -> LaunchConfig {
        LaunchConfig { grid: [blocks, 1, 1], block: [threads, 1, 1], shared_bytes: 0 }
    }
}

/// One kernel argument as the driver takes it: the address of the value and its size.
#[derive(Clone, Copy)]
pub struct KernelArg<'a> {
    ptr: *const c_void,
    size: usize,
    _value: PhantomData<&'a ()>,
}

// The pointer only ever points at a `Copy` value borrowed for `'a`.
unsafe impl Send for KernelArg<'_> {}
unsafe impl Sync for KernelArg<'_> {}

impl<'a> KernelArg<'a> {
    /// The argument `value`: a device pointer, a number, or a `#[repr(C)]` descriptor.
    pub fn new<T: Copy + 'static>(value: &'a T) -> KernelArg<'a> {
        KernelArg { ptr: value as *const T as *const c_void, size: size_of::<T>(), _value: PhantomData }
    }

    /// The address of the value.
    pub fn ptr(&self) -> *const c_void {
        self.ptr
    }

    /// The value's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// A copy of the value's bytes, padding included (which may be uninitialised, hence
    /// `MaybeUninit`): what a recorded launch keeps.
    pub fn to_bytes(&self) -> Box<[MaybeUninit<u8>]> {
        let mut copy = vec![MaybeUninit::<u8>::uninit(); self.size].into_boxed_slice();
        // SAFETY: `ptr` points at a live `Copy` value of `size` bytes for `'a`; copying bytes
        // that may be uninitialised into `MaybeUninit` storage is allowed.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr as *const MaybeUninit<u8>, copy.as_mut_ptr(), self.size) };
        copy
    }
}

impl fmt::Debug for KernelArg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KernelArg({} bytes)", self.size)
    }
}

/// How cuBLAS reads a matrix operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// One column-major single-precision product in cuBLAS's terms:
/// `C = alpha · op(A) · op(B) + beta · C`, `op(A)` `m x k`, `op(B)` `k x n`, `C` `m x n`, repeated
/// `batch` times with the operands advanced by their strides (in elements), as
/// `cublasSgemmStridedBatched` does. With `beta == 0` `C` is never read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmCall {
    /// How `A` is read.
    pub transa: Op,
    /// How `B` is read.
    pub transb: Op,
    /// Rows of `op(A)` and `C`.
    pub m: usize,
    /// Columns of `op(B)` and `C`.
    pub n: usize,
    /// Columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// The product's factor.
    pub alpha: f32,
    /// `A`.
    pub a: DevicePtr,
    /// `A`'s leading dimension.
    pub lda: usize,
    /// `B`.
    pub b: DevicePtr,
    /// `B`'s leading dimension.
    pub ldb: usize,
    /// `C`'s factor.
    pub beta: f32,
    /// `C`.
    pub c: DevicePtr,
    /// `C`'s leading dimension.
    pub ldc: usize,
    /// How many products (1: a plain `cublasSgemm`).
    pub batch: usize,
    /// Elements between consecutive `A`s, `B`s and `C`s of a batch.
    pub strides: [usize; 3],
    /// Allow TF32 tensor cores (10-bit mantissa inputs); strict fp32 when false.
    pub tf32: bool,
}

impl GemmCall {
    /// Checks the arguments as cuBLAS does (`CUBLAS_STATUS_INVALID_VALUE`): a description of the
    /// first rule broken, or `None`.
    pub fn invalid(&self) -> Option<String> {
        let rows_a = if self.transa == Op::N { self.m } else { self.k };
        let rows_b = if self.transb == Op::N { self.k } else { self.n };
        if self.lda < rows_a.max(1) {
            return Some(format!("lda = {} < max(1, {rows_a})", self.lda));
        }
        if self.ldb < rows_b.max(1) {
            return Some(format!("ldb = {} < max(1, {rows_b})", self.ldb));
        }
        if self.ldc < self.m.max(1) {
            return Some(format!("ldc = {} < max(1, {})", self.ldc, self.m));
        }
        if self.batch == 0 {
            return Some("batch count 0".to_string());
        }
        None
    }
}

/// What cuBLASLt applies to a product before it is stored (`cublasLtEpilogue_t`), for
/// [`GpuDevice::gemm_epilogue`]. The bias is a vector of `m` floats added to each column of the
/// column-major `C`, `bias[i]` to row `i`: for the row-major `y = x · w + b` computed as the
/// column-major `yᵀ = wᵀ · xᵀ` (see `Cuda`'s `gemm`), row `i` of `yᵀ` is column `i` of `y`, so
/// `b` is indexed by the output feature, as a dense layer's bias is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Epilogue {
    /// Nothing: a plain product (`CUBLASLT_EPILOGUE_DEFAULT`).
    None,
    /// `C[i, j] += bias[i]` (`CUBLASLT_EPILOGUE_BIAS`).
    Bias,
    /// `C[i, j] = max(C[i, j] + bias[i], 0)` (`CUBLASLT_EPILOGUE_RELU_BIAS`). cuBLASLt does not
    /// document what its ReLU makes of NaN; it is taken to be `fmaxf`, which turns NaN into 0
    /// (the emulator does so). Keras's relu, and the backend's `bias_act` kernel, keep NaN, so
    /// the backend does not use this epilogue for a relu layer.
    ReluBias,
}

impl Epilogue {
    /// Checks a product with this epilogue against the rules of
    /// [`GpuDevice::gemm_epilogue`] (on top of [`GemmCall::invalid`]): a description of the first
    /// rule broken, or `None`. With an epilogue other than [`Epilogue::None`]: `beta == 0`, a
    /// batch of 1, and a bias pointer that is not null.
    pub fn invalid(self, call: &GemmCall, bias: DevicePtr) -> Option<String> {
        if self == Epilogue::None {
            return None;
        }
        if call.beta != 0.0 {
            return Some(format!("epilogue {self:?} with beta = {} (only beta == 0 is supported)", call.beta));
        }
        if call.batch != 1 {
            return Some(format!("epilogue {self:?} with a batch of {} (only a single product is supported)", call.batch));
        }
        if bias == 0 {
            return Some(format!("epilogue {self:?} with a null bias pointer"));
        }
        None
    }
}

/// What a CUDA device does for the backend. Pointers are device addresses; the methods that
/// take them are `unsafe`: the caller keeps them inside live allocations. Work is queued on one
/// stream in call order; [`GpuDevice::synchronize`] waits for it and returns the first failure
/// (a fault inside a kernel surfaces there, naming the last kernel launched).
pub trait GpuDevice: Send + Sync + fmt::Debug + 'static {
    /// A kernel of a loaded module.
    type Kernel: Send + Sync + fmt::Debug;
    /// A captured sequence of work, replayed as a whole.
    type Graph: Send + Sync + fmt::Debug;

    /// The device's name, for `describe` and errors (`NVIDIA H100 80GB HBM3 (sm_90)`).
    fn name(&self) -> String;
    /// Allocates `bytes` bytes (at least 1).
    fn alloc(&self, bytes: usize) -> Result<DevicePtr>;
    /// Frees an allocation of [`GpuDevice::alloc`].
    ///
    /// # Safety
    /// `ptr` came from `alloc` on this device and is not used again.
    unsafe fn free(&self, ptr: DevicePtr);
    /// Copies host bytes to device memory.
    ///
    /// # Safety
    /// `dst .. dst + src.len()` lies inside one live allocation.
    unsafe fn upload(&self, src: &[u8], dst: DevicePtr) -> Result<()>;
    /// Copies device memory to host bytes, waiting for the work queued before it.
    ///
    /// # Safety
    /// `src .. src + dst.len()` lies inside one live allocation.
    unsafe fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()>;
    /// Compiles a module of CUDA C and returns its kernels in the order of `kernels`. `name`
    /// names the module in errors.
    fn load(&self, name: &str, source: &str, kernels: &[&str]) -> Result<Vec<Self::Kernel>>;
    /// Queues a kernel.
    ///
    /// # Safety
    /// The arguments match the kernel's parameters in number, order and type, and every
    /// pointer among them stays inside live allocations for the kernel's accesses.
    unsafe fn launch(&self, kernel: &Self::Kernel, config: LaunchConfig, args: &[KernelArg<'_>]) -> Result<()>;
    /// Queues a product (see [`GemmCall`]).
    ///
    /// # Safety
    /// The operands, with their leading dimensions and strides, lie inside live allocations.
    unsafe fn gemm(&self, call: &GemmCall) -> Result<()>;
    /// Queues a product with an epilogue, as cuBLASLt's `cublasLtMatmul` does:
    /// `C = epilogue(alpha · op(A) · op(B))`, `bias` a vector of `call.m` floats (see
    /// [`Epilogue`]; unused, and may be 0, with [`Epilogue::None`], which is [`GpuDevice::gemm`]).
    ///
    /// `Ok(true)` when the work is queued. `Ok(false)` when this device does not fuse this
    /// epilogue into this product (no cuBLASLt, a shape or alignment it is not trusted with, or
    /// no algorithm for it): nothing was queued, and the caller runs the product and the
    /// epilogue itself. An error for arguments that break
    /// [`GemmCall::invalid`] or [`Epilogue::invalid`] (`beta != 0`, a batch, a null bias with
    /// an epilogue), and for a failure of the library.
    ///
    /// # Safety
    /// As [`GpuDevice::gemm`]; and `bias .. bias + 4 · call.m` lies inside a live allocation
    /// when the epilogue has a bias.
    unsafe fn gemm_epilogue(&self, call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) -> Result<bool>;
    /// Starts recording the work queued from now on instead of running it.
    fn begin_capture(&self) -> Result<()>;
    /// Ends a recording and returns it.
    fn end_capture(&self) -> Result<Self::Graph>;
    /// Queues a recorded sequence again, with the argument values it was recorded with.
    ///
    /// # Safety
    /// Every allocation the recorded work touches is still live (a graph holds device
    /// addresses, not the buffers).
    unsafe fn replay(&self, graph: &Self::Graph) -> Result<()>;
    /// Waits for the queued work; the first failure since the last call, if any.
    fn synchronize(&self) -> Result<()>;
}

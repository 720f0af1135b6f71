//! [`CudaDevice`]: the device layer on a real GPU, through cudarc's thin `result` layer over the
//! CUDA driver API, NVRTC, cuBLAS and cuBLASLt. Nothing here but the calls: device memory is raw
//! `CUdeviceptr`s from the stream-ordered allocator, kernels are NVRTC binaries for the device's
//! own architecture, products are `cublasSgemm`, products with a bias epilogue are
//! `cublasLtMatmul`, captures are CUDA graphs.
//!
//! cudarc loads the libraries at run time (`libcuda.so`, `libnvrtc.so.13`, `libcublas.so.13`,
//! `libcublasLt.so.13`, found by the dynamic loader: the driver's install, or `LD_LIBRARY_PATH`)
//! and panics when one is missing, so [`CudaDevice::new`] checks for each first and returns an
//! error instead; cuBLASLt is optional (without it an epilogue is left to the caller).

use super::driver::{DevicePtr, Epilogue, GemmCall, GpuDevice, KernelArg, LaunchConfig, Op};
use super::nvrtc;
use crate::error::{Error, Result};
use cudarc::cublas::result::{self as blas, CublasError};
use cudarc::cublas::sys as blas_sys;
use cudarc::cublaslt::result::{self as lt, CublasError as LtError};
use cudarc::cublaslt::sys as lt_sys;
use cudarc::driver::result::{self as cu, DriverError};
use cudarc::driver::sys;
use std::ffi::{CString, c_int, c_void};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// The oldest driver API this build calls (cudarc's `cuda-13000` bindings): CUDA 13.0.
const MIN_DRIVER: c_int = 13000;

/// A GPU driven through the CUDA driver API: its primary context, one stream that all work is
/// queued on in call order, a cuBLAS handle bound to that stream. Memory comes from the
/// stream-ordered allocator, kernels are compiled by NVRTC for the device's own architecture,
/// products are `cublasSgemm` (strict fp32 unless a call asks for TF32), products with a bias
/// epilogue `cublasLtMatmul` (see [`GpuDevice::gemm_epilogue`]), captures are CUDA graphs.
///
/// The libraries are loaded at run time: `libcuda.so` (the driver), `libnvrtc.so.13`,
/// `libcublas.so.13` and, when present, `libcublasLt.so.13`, found by the dynamic loader (the
/// driver's install, a CUDA toolkit, or `LD_LIBRARY_PATH`).
///
/// It is `Send + Sync`: the driver API is thread-safe, each call makes the context current on
/// the calling thread first, and every call that touches the stream or the cuBLAS handle holds
/// one mutex, so work from several threads is queued one call at a time.
pub struct CudaDevice {
    // Declared before `context`, so dropped first: the stream, cuBLAS handle and modules are
    // released while the context is still retained.
    state: Mutex<State>,
    context: Arc<Context>,
    ordinal: usize,
    name: String,
    arch: String,
}

/// A kernel of a module loaded by [`CudaDevice::load`]: the driver's function handle and the
/// sizes of its parameters, which every launch checks its arguments against.
#[derive(Debug)]
pub struct CudaKernel {
    function: sys::CUfunction,
    /// `kernel `name``, for errors.
    label: Arc<str>,
    params: Vec<usize>,
}

/// A captured sequence of work (an instantiated CUDA graph), replayed by
/// [`CudaDevice::replay`]. It keeps its device's context alive, and is destroyed when dropped.
#[derive(Debug)]
pub struct CudaGraph {
    exec: sys::CUgraphExec,
    context: Arc<Context>,
}

/// The device's primary context, retained for as long as the device or one of its graphs lives.
#[derive(Debug)]
struct Context {
    device: sys::CUdevice,
    context: sys::CUcontext,
}

/// What the calls that queue work share, behind the device's mutex.
#[derive(Debug)]
struct State {
    /// The context, to make current when releasing the handles below.
    context: sys::CUcontext,
    stream: sys::CUstream,
    blas: blas_sys::cublasHandle_t,
    /// The cuBLASLt handle, or null when cuBLASLt cannot be loaded (epilogues are then left to
    /// the caller).
    lt: lt_sys::cublasLtHandle_t,
    /// Why epilogues stopped being asked of cuBLASLt: a call of it failed (other than with
    /// NOT_SUPPORTED), so every later product falls back to cuBLAS and a kernel.
    lt_failure: Option<String>,
    /// cuBLAS's workspace, set explicitly so that a captured product runs the same algorithm
    /// as an uncaptured one and never allocates inside a graph. cuBLASLt is given the same
    /// buffer: both queue their work on the one stream, so they never use it at once.
    workspace: DevicePtr,
    /// The workspace's size in bytes.
    workspace_bytes: usize,
    modules: Vec<sys::CUmodule>,
    /// Whether the handle's math mode currently allows TF32.
    tf32: bool,
    /// Whether the stream is being captured.
    capturing: bool,
    /// The last work queued (`kernel `fill``, `cuBLAS sgemm`, `a graph replay`), which a fault
    /// surfacing at the next synchronization is reported after.
    last: Option<Arc<str>>,
    /// A failure of a call that cannot return one (`free`), returned by the next
    /// synchronization.
    pending: Option<Error>,
}

// SAFETY: the raw handles are identifiers the driver accepts from any thread once the context
// is current, which every call ensures first; functions and graph executables are immutable
// after creation, and the stream and cuBLAS handle are only used under `CudaDevice::state`'s
// mutex.
unsafe impl Send for Context {}
unsafe impl Sync for Context {}
unsafe impl Send for State {}
unsafe impl Send for CudaKernel {}
unsafe impl Sync for CudaKernel {}
unsafe impl Send for CudaGraph {}
unsafe impl Sync for CudaGraph {}

impl CudaDevice {
    /// The GPU of this ordinal (0: the first): its primary context, a stream, a cuBLAS handle.
    /// An error, never a panic, when the driver, NVRTC or cuBLAS cannot be loaded, when the
    /// driver is older than CUDA 13.0, or when there is no such device.
    pub fn new(ordinal: usize) -> Result<CudaDevice> {
        libraries_present()?;
        let mut version: c_int = 0;
        // SAFETY: the driver library is present; `cuDriverGetVersion` needs no initialisation.
        driver(unsafe { sys::cuDriverGetVersion(&mut version) }.result(), "cuDriverGetVersion")?;
        if version < MIN_DRIVER {
            return Err(Error::Device(format!(
                "the CUDA driver supports CUDA {}.{}; keras-rs needs CUDA 13.0 (NVIDIA driver 580 or newer)",
                version / 1000,
                version % 1000 / 10
            )));
        }
        driver(cu::init(), "cuInit")?;
        let count = driver(cu::device::get_count(), "cuDeviceGetCount")?;
        let index = c_int::try_from(ordinal)
            .ok()
            .filter(|&i| i < count)
            .ok_or_else(|| Error::Device(format!("no CUDA device {ordinal}: the driver sees {count} device(s)")))?;
        let device = driver(cu::device::get(index), "cuDeviceGet")?;
        let name = driver(cu::device::get_name(device), "cuDeviceGetName")?;
        // SAFETY: `device` came from `cuDeviceGet`.
        let capability = |attribute| driver(unsafe { cu::device::get_attribute(device, attribute) }, "cuDeviceGetAttribute");
        let major = capability(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
        let minor = capability(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
        // SAFETY: as above; released by `Context`'s drop.
        let context =
            Arc::new(Context { device, context: driver(unsafe { cu::primary_ctx::retain(device) }, "cuDevicePrimaryCtxRetain")? });
        context.bind()?;
        // Freed memory stays in the stream-ordered pool instead of going back to the driver at
        // every synchronization.
        let mut keep = u64::MAX;
        // SAFETY: `device` is valid; the release threshold attribute is a u64.
        driver(
            unsafe {
                cu::device::get_default_mem_pool(device).and_then(|pool| {
                    cu::mem_pool::set_attribute(pool, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, (&raw mut keep).cast())
                })
            },
            "setting the memory pool's release threshold",
        )?;
        // Each handle is released by `State`'s drop as soon as it is stored, so an error below
        // leaks nothing.
        let mut state = State {
            context: context.context,
            stream: std::ptr::null_mut(),
            blas: std::ptr::null_mut(),
            lt: std::ptr::null_mut(),
            lt_failure: None,
            workspace: 0,
            workspace_bytes: 0,
            modules: Vec::new(),
            tf32: false,
            capturing: false,
            last: None,
            pending: None,
        };
        state.stream = driver(cu::stream::create(cu::stream::StreamKind::NonBlocking), "cuStreamCreate")?;
        state.blas = cublas(blas::create_handle(), "cublasCreate")?;
        // cuBLAS's recommended workspace: 32 MiB from Hopper on, 4 MiB before.
        let workspace_bytes = if major >= 9 { 32 << 20 } else { 4 << 20 };
        // SAFETY: the context is current and the stream valid.
        state.workspace = alloc_error(unsafe { cu::malloc_sync(workspace_bytes) }, workspace_bytes)?;
        state.workspace_bytes = workspace_bytes;
        // cuBLASLt only adds the epilogues: without it (or without a handle) they fall back.
        // SAFETY: loading a CUDA library runs nothing but its initialisers.
        if unsafe { lt_sys::is_culib_present() } {
            state.lt = lt::create_handle().unwrap_or(std::ptr::null_mut());
        }
        // SAFETY: the handle, stream and workspace are valid and outlive one another in `State`.
        unsafe {
            cublas(blas::set_stream(state.blas, state.stream.cast()), "cublasSetStream")?;
            cublas(
                blas_sys::cublasSetWorkspace_v2(state.blas, state.workspace as *mut c_void, workspace_bytes).result(),
                "cublasSetWorkspace",
            )?;
            cublas(blas_sys::cublasSetMathMode(state.blas, math_mode(false)).result(), "cublasSetMathMode")?;
        }
        Ok(CudaDevice { state: Mutex::new(state), context, ordinal, name, arch: format!("sm_{major}{minor}") })
    }

    /// Whether products with a bias epilogue run fused in cuBLASLt: `in use`, `not loaded`, or
    /// why it was turned off (a call failed; the products then run unfused).
    pub fn cublaslt_status(&self) -> String {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match (&state.lt_failure, state.lt.is_null()) {
            (Some(failure), _) => format!("turned off after a failure: {failure}"),
            (None, true) => "not loaded".to_string(),
            (None, false) => "in use".to_string(),
        }
    }

    /// The device's architecture, as NVRTC names it (`sm_90`).
    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// The state, locked, with the context current on this thread.
    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.context.bind()?;
        Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl GpuDevice for CudaDevice {
    type Kernel = CudaKernel;
    type Graph = CudaGraph;

    fn name(&self) -> String {
        format!("{} ({})", self.name, self.arch)
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        let state = self.lock()?;
        // SAFETY: the stream is valid; inside a capture the allocation becomes a node of the
        // graph, as the driver defines.
        alloc_error(unsafe { cu::malloc_async(state.stream, bytes.max(1)) }, bytes.max(1))
    }

    unsafe fn free(&self, ptr: DevicePtr) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: the caller passes an allocation of `alloc` that is not used again; the free
        // is ordered after the work queued before it.
        let freed = self.context.bind().and_then(|()| driver(unsafe { cu::free_async(ptr, state.stream) }, "cuMemFreeAsync"));
        if let Err(e) = freed {
            state.pending.get_or_insert(e);
        }
    }

    unsafe fn upload(&self, src: &[u8], dst: DevicePtr) -> Result<()> {
        let state = self.lock()?;
        state.not_capturing("upload")?;
        // SAFETY: the caller keeps `dst .. dst + src.len()` inside one allocation. The copy is
        // from pageable memory, so the driver has staged `src` when this returns.
        driver(unsafe { cu::memcpy_htod_async(dst, src, state.stream) }, "cuMemcpyHtoDAsync")
    }

    unsafe fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        let mut state = self.lock()?;
        state.not_capturing("download")?;
        // SAFETY: the caller keeps `src .. src + dst.len()` inside one allocation; the stream
        // is synchronized before `dst` is handed back.
        let copied = unsafe { cu::memcpy_dtoh_async(dst, src, state.stream) };
        match copied.and_then(|()| unsafe { cu::stream::synchronize(state.stream) }) {
            Ok(()) => {
                state.last = None;
                Ok(())
            }
            Err(e) => Err(state.fault("download", e)),
        }
    }

    fn load(&self, name: &str, source: &str, kernels: &[&str]) -> Result<Vec<CudaKernel>> {
        let image = compiled_image(name, source, &self.arch)?;
        let mut state = self.lock()?;
        // SAFETY: `image` is the CUBIN NVRTC produced; the module is unloaded by `State`'s drop.
        let module = driver(unsafe { cu::module::load_data(image.as_ptr().cast()) }, "cuModuleLoadData")?;
        state.modules.push(module);
        kernels
            .iter()
            .map(|&kernel| {
                let symbol = CString::new(kernel).map_err(|_| Error::Device(format!("kernel name {kernel:?} contains a NUL byte")))?;
                // SAFETY: `module` is loaded.
                let function = unsafe { cu::module::get_function(module, symbol) }
                    .map_err(|e| Error::Device(format!("module `{name}` has no kernel `{kernel}`: {}", message(e))))?;
                let mut params = Vec::new();
                let (mut offset, mut size) = (0, 0);
                // SAFETY: `function` is valid; the driver answers CUDA_ERROR_INVALID_VALUE past
                // the last parameter.
                while unsafe { sys::cuFuncGetParamInfo(function, params.len(), &mut offset, &mut size) } == sys::CUresult::CUDA_SUCCESS {
                    params.push(size);
                }
                Ok(CudaKernel { function, label: format!("kernel `{kernel}`").into(), params })
            })
            .collect()
    }

    unsafe fn launch(&self, kernel: &CudaKernel, config: LaunchConfig, args: &[KernelArg<'_>]) -> Result<()> {
        if args.len() != kernel.params.len() || args.iter().zip(&kernel.params).any(|(arg, &size)| arg.size() != size) {
            let given: Vec<usize> = args.iter().map(KernelArg::size).collect();
            return Err(Error::Device(format!(
                "{} takes parameters of {:?} bytes, given arguments of {given:?} bytes",
                kernel.label, kernel.params
            )));
        }
        let mut params: Vec<*mut c_void> = args.iter().map(|arg| arg.ptr().cast_mut()).collect();
        let mut state = self.lock()?;
        let [gx, gy, gz] = config.grid;
        let [bx, by, bz] = config.block;
        // SAFETY: the arguments match the kernel's parameters in number and size (checked
        // above) and, by the caller's contract, in type and extent; the driver copies their
        // values before this returns.
        unsafe { cu::launch_kernel(kernel.function, (gx, gy, gz), (bx, by, bz), config.shared_bytes, state.stream, &mut params) }.map_err(
            |e| Error::Device(format!("launching {} (grid {:?}, block {:?}): {}", kernel.label, config.grid, config.block, message(e))),
        )?;
        state.last = Some(kernel.label.clone());
        Ok(())
    }

    unsafe fn gemm(&self, call: &GemmCall) -> Result<()> {
        if let Some(rule) = call.invalid() {
            return Err(Error::Device(format!("cuBLAS sgemm: CUBLAS_STATUS_INVALID_VALUE: {rule}")));
        }
        let int = |value: usize, what: &str| {
            c_int::try_from(value).map_err(|_| Error::Device(format!("cuBLAS sgemm: {what} = {value} exceeds a 32-bit int")))
        };
        let stride =
            |value: usize| i64::try_from(value).map_err(|_| Error::Device(format!("cuBLAS sgemm: stride {value} exceeds a 64-bit int")));
        let (m, n, k) = (int(call.m, "m")?, int(call.n, "n")?, int(call.k, "k")?);
        let (lda, ldb, ldc) = (int(call.lda, "lda")?, int(call.ldb, "ldb")?, int(call.ldc, "ldc")?);
        let batch = int(call.batch, "batch")?;
        let [sa, sb, sc] = [stride(call.strides[0])?, stride(call.strides[1])?, stride(call.strides[2])?];
        let op = |op| match op {
            Op::N => blas_sys::cublasOperation_t::CUBLAS_OP_N,
            Op::T => blas_sys::cublasOperation_t::CUBLAS_OP_T,
        };
        let (a, b, c) = (call.a as *const f32, call.b as *const f32, call.c as *mut f32);
        let mut state = self.lock()?;
        if state.tf32 != call.tf32 {
            // SAFETY: the handle is valid.
            cublas(unsafe { blas_sys::cublasSetMathMode(state.blas, math_mode(call.tf32)) }.result(), "cublasSetMathMode")?;
            state.tf32 = call.tf32;
        }
        // SAFETY: the caller keeps the operands, with their leading dimensions and strides,
        // inside live allocations; `alpha` and `beta` are host values read before the call
        // returns (captured by value in a graph).
        let done = unsafe {
            if call.batch == 1 {
                blas::sgemm(state.blas, op(call.transa), op(call.transb), m, n, k, &call.alpha, a, lda, b, ldb, &call.beta, c, ldc)
            } else {
                blas::sgemm_strided_batched(
                    state.blas,
                    op(call.transa),
                    op(call.transb),
                    m,
                    n,
                    k,
                    &call.alpha,
                    a,
                    lda,
                    sa,
                    b,
                    ldb,
                    sb,
                    &call.beta,
                    c,
                    ldc,
                    sc,
                    batch,
                )
            }
        };
        cublas(done, "cuBLAS sgemm")?;
        state.last = Some("cuBLAS sgemm".into());
        Ok(())
    }

    unsafe fn gemm_epilogue(&self, call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) -> Result<bool> {
        if epilogue == Epilogue::None {
            // SAFETY: the caller's contract is `gemm`'s.
            return unsafe { self.gemm(call) }.map(|()| true);
        }
        if let Some(rule) = call.invalid().or_else(|| epilogue.invalid(call, bias)) {
            return Err(Error::Device(format!("cuBLASLt matmul: CUBLAS_STATUS_INVALID_VALUE: {rule}")));
        }
        if !lt_takes(call, bias) {
            return Ok(false);
        }
        let mut state = self.lock()?;
        if state.lt.is_null() || state.lt_failure.is_some() {
            return Ok(false);
        }
        // SAFETY: the caller keeps the operands and the bias inside live allocations.
        match unsafe { state.lt_matmul(call, epilogue, bias) } {
            Ok(queued) => {
                if queued {
                    state.last = Some("cuBLASLt matmul".into());
                }
                Ok(queued)
            }
            // Not yet seen on a GPU: a failure turns the epilogues off for this device (the
            // product runs unfused, correctly) and is reported by `cublaslt_status`, which
            // scripts/gpu-check.sh prints.
            Err(e) => {
                state.lt_failure = Some(e.to_string());
                Ok(false)
            }
        }
    }

    fn begin_capture(&self) -> Result<()> {
        let mut state = self.lock()?;
        state.not_capturing("begin_capture")?;
        // Relaxed: `begin_capture` and `end_capture` may come from different threads; the
        // calls that cannot be captured are refused by `not_capturing`.
        // SAFETY: the stream is valid.
        driver(
            unsafe { cu::stream::begin_capture(state.stream, sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_RELAXED) },
            "cuStreamBeginCapture",
        )?;
        state.capturing = true;
        Ok(())
    }

    fn end_capture(&self) -> Result<CudaGraph> {
        let mut state = self.lock()?;
        if !state.capturing {
            return Err(Error::Device("end_capture without begin_capture".to_string()));
        }
        state.capturing = false;
        // SAFETY: the stream is being captured.
        let graph = driver(unsafe { cu::stream::end_capture(state.stream) }, "cuStreamEndCapture")?;
        // SAFETY: `graph` is the captured graph; the executable does not depend on it, so it is
        // destroyed at once.
        let exec = unsafe { cu::graph::instantiate(graph, sys::CUgraphInstantiate_flags(0)) };
        unsafe { cu::graph::destroy(graph) }.ok();
        let exec = driver(exec, "cuGraphInstantiate")?;
        Ok(CudaGraph { exec, context: self.context.clone() })
    }

    unsafe fn replay(&self, graph: &CudaGraph) -> Result<()> {
        if !Arc::ptr_eq(&graph.context, &self.context) {
            return Err(Error::Device("replay of a graph captured on another device".to_string()));
        }
        let mut state = self.lock()?;
        state.not_capturing("replay")?;
        // SAFETY: `graph.exec` is a live executable of this context.
        driver(unsafe { cu::graph::launch(graph.exec, state.stream) }, "cuGraphLaunch")?;
        state.last = Some("a graph replay".into());
        Ok(())
    }

    fn synchronize(&self) -> Result<()> {
        let mut state = self.lock()?;
        state.not_capturing("synchronize")?;
        // SAFETY: the stream is valid.
        if let Err(e) = unsafe { cu::stream::synchronize(state.stream) } {
            return Err(state.fault("synchronize", e));
        }
        state.last = None;
        state.pending.take().map_or(Ok(()), Err)
    }
}

impl fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CudaDevice").field("ordinal", &self.ordinal).field("name", &self.name).field("arch", &self.arch).finish()
    }
}

impl Context {
    /// Makes the context current on the calling thread.
    fn bind(&self) -> Result<()> {
        // SAFETY: the context is retained for as long as `self` lives.
        driver(unsafe { cu::ctx::set_current(self.context) }, "cuCtxSetCurrent")
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: retained in `CudaDevice::new`, released once.
        unsafe { cu::primary_ctx::release(self.device) }.ok();
    }
}

impl State {
    /// Queues `C = epilogue(alpha · op(A) · op(B))` with `cublasLtMatmul` on the stream: a
    /// matmul descriptor (compute type `CUBLAS_COMPUTE_32F`, or `CUBLAS_COMPUTE_32F_FAST_TF32`
    /// when the call allows TF32; the transpositions, the epilogue and its bias pointer), the
    /// operands' layouts (`D` is `C`), a heuristic search limited to the workspace and to the
    /// operands' actual alignment, then the product on the device's workspace, so that a
    /// captured product never allocates. `Ok(false)`, with nothing queued, when cuBLASLt answers
    /// `CUBLAS_STATUS_NOT_SUPPORTED` (no algorithm for this epilogue, shape or alignment).
    ///
    /// # Safety
    /// The arguments passed [`GemmCall::invalid`] and [`Epilogue::invalid`]; the operands and the
    /// bias lie inside live allocations; the cuBLASLt handle is not null.
    unsafe fn lt_matmul(&self, call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) -> Result<bool> {
        use lt_sys::cublasLtMatmulDescAttributes_t as D;
        use lt_sys::cublasLtMatmulPreferenceAttributes_t as P;
        let ld = |value: usize, what: &str| {
            i64::try_from(value).map_err(|_| Error::Device(format!("cuBLASLt matmul: {what} = {value} exceeds a 64-bit int")))
        };
        let (lda, ldb, ldc) = (ld(call.lda, "lda")?, ld(call.ldb, "ldb")?, ld(call.ldc, "ldc")?);
        let (m, n, k) = (call.m as u64, call.n as u64, call.k as u64);
        let (rows_a, cols_a) = if call.transa == Op::N { (m, k) } else { (k, m) };
        let (rows_b, cols_b) = if call.transb == Op::N { (k, n) } else { (n, k) };
        let op = |op| match op {
            Op::N => blas_sys::cublasOperation_t::CUBLAS_OP_N,
            Op::T => blas_sys::cublasOperation_t::CUBLAS_OP_T,
        };
        let compute = if call.tf32 {
            lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32
        } else {
            lt_sys::cublasComputeType_t::CUBLAS_COMPUTE_32F
        };
        let lt_epilogue = match epilogue {
            Epilogue::None => lt_sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_DEFAULT,
            Epilogue::Bias => lt_sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_BIAS,
            Epilogue::ReluBias => lt_sys::cublasLtEpilogue_t::CUBLASLT_EPILOGUE_RELU_BIAS,
        };
        let f32_type = lt_sys::cudaDataType_t::CUDA_R_32F;
        let Some(desc) = lt_call(lt::create_matmul_desc(compute, f32_type), "cublasLtMatmulDescCreate")? else { return Ok(false) };
        let desc = LtDescriptor { handle: desc, destroy: lt::destroy_matmul_desc };
        let mut layouts = Vec::with_capacity(3);
        for (rows, cols, ld) in [(rows_a, cols_a, lda), (rows_b, cols_b, ldb), (m, n, ldc)] {
            let Some(layout) = lt_call(lt::create_matrix_layout(f32_type, rows, cols, ld), "cublasLtMatrixLayoutCreate")? else {
                return Ok(false);
            };
            layouts.push(LtDescriptor { handle: layout, destroy: lt::destroy_matrix_layout });
        }
        let (a_layout, b_layout, c_layout) = (layouts[0].handle, layouts[1].handle, layouts[2].handle);
        let Some(pref) = lt_call(lt::create_matmul_pref(), "cublasLtMatmulPreferenceCreate")? else { return Ok(false) };
        let pref = LtDescriptor { handle: pref, destroy: lt::destroy_matmul_pref };
        let (transa, transb) = (op(call.transa), op(call.transb));
        // Alignments of the operands as they are (a view may start anywhere in its buffer):
        // cuBLASLt otherwise assumes 256 bytes and may pick an algorithm that needs them.
        let [align_a, align_b, align_c] = [call.a, call.b, call.c].map(alignment);
        let workspace_bytes = self.workspace_bytes as u64;
        let descriptor = [
            (D::CUBLASLT_MATMUL_DESC_TRANSA, sized(&transa)),
            (D::CUBLASLT_MATMUL_DESC_TRANSB, sized(&transb)),
            (D::CUBLASLT_MATMUL_DESC_EPILOGUE, sized(&lt_epilogue)),
            (D::CUBLASLT_MATMUL_DESC_BIAS_POINTER, sized(&bias)),
        ];
        for (what, (value, size)) in descriptor {
            // SAFETY: each attribute gets a value of the type cuBLASLt documents for it (the
            // operations and the epilogue are 32-bit enums, the bias a device pointer), read
            // before the call returns.
            let set = unsafe { lt::set_matmul_desc_attribute(desc.handle, what, value, size) };
            if lt_call(set, "cublasLtMatmulDescSetAttribute")?.is_none() {
                return Ok(false);
            }
        }
        let preferences = [
            (P::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, sized(&workspace_bytes)),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, sized(&align_a)),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, sized(&align_b)),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, sized(&align_c)),
            (P::CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, sized(&align_c)),
        ];
        for (what, (value, size)) in preferences {
            // SAFETY: as above (the workspace limit a u64, the alignments u32s).
            let set = unsafe { lt::set_matmul_pref_attribute(pref.handle, what, value, size) };
            if lt_call(set, "cublasLtMatmulPreferenceSetAttribute")?.is_none() {
                return Ok(false);
            }
        }
        // SAFETY: the handle, descriptors and layouts are live (`D` is `C`).
        let heuristic = unsafe { lt::get_matmul_algo_heuristic(self.lt, desc.handle, a_layout, b_layout, c_layout, c_layout, pref.handle) };
        let Some(heuristic) = lt_call(heuristic, "cublasLtMatmulAlgoGetHeuristic")? else { return Ok(false) };
        let (alpha, beta) = (call.alpha, call.beta);
        // SAFETY: the caller keeps the operands and the bias inside live allocations; `alpha` and
        // `beta` are host values read before the call returns (captured by value in a graph); the
        // workspace is the device's own, of the size the heuristic was limited to; with beta == 0
        // `C` is not read, and `D` is `C`.
        let done = unsafe {
            lt::matmul(
                self.lt,
                desc.handle,
                sized(&alpha).0,
                sized(&beta).0,
                call.a as *const c_void,
                a_layout,
                call.b as *const c_void,
                b_layout,
                call.c as *const c_void,
                c_layout,
                call.c as *mut c_void,
                c_layout,
                &heuristic.algo,
                self.workspace as *mut c_void,
                self.workspace_bytes,
                self.stream.cast(),
            )
        };
        Ok(lt_call(done, "cublasLtMatmul")?.is_some())
    }

    /// An error when the stream is being captured: `what` cannot be part of a graph.
    fn not_capturing(&self, what: &str) -> Result<()> {
        if self.capturing {
            return Err(Error::Device(format!(
                "{what} while a graph is being captured (only kernels, products, allocations and frees can be)"
            )));
        }
        Ok(())
    }

    /// The error of a synchronizing call, naming the last work queued (a fault inside a kernel
    /// surfaces here, after the kernel).
    fn fault(&mut self, what: &str, e: DriverError) -> Error {
        match self.last.take() {
            Some(last) => Error::Device(format!("CUDA error {} after {last} (at {what})", message(e))),
            None => Error::Device(format!("{what}: CUDA error {}", message(e))),
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        // Failures are ignored: the handles go away with the context in any case.
        // SAFETY: each handle was created on this context and is released once; the stream is
        // drained first so that no queued work uses what is released.
        unsafe {
            cu::ctx::set_current(self.context).ok();
            if !self.stream.is_null() {
                cu::stream::synchronize(self.stream).ok();
            }
            if !self.blas.is_null() {
                blas::destroy_handle(self.blas).ok();
            }
            if !self.lt.is_null() {
                lt::destroy_handle(self.lt).ok();
            }
            if self.workspace != 0 {
                cu::free_sync(self.workspace).ok();
            }
            for &module in &self.modules {
                cu::module::unload(module).ok();
            }
            if !self.stream.is_null() {
                cu::stream::destroy(self.stream).ok();
            }
        }
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        // SAFETY: `exec` belongs to the context this graph keeps retained; destroyed once.
        if self.context.bind().is_ok() {
            unsafe { cu::graph::exec_destroy(self.exec) }.ok();
        }
    }
}

/// An error unless the driver, NVRTC and cuBLAS can all be loaded (cudarc panics at the first
/// call into a library it cannot load).
fn libraries_present() -> Result<()> {
    // SAFETY: loading a CUDA library runs nothing but its initialisers.
    if !unsafe { sys::is_culib_present() } {
        return Err(Error::Device(
            "no CUDA driver (libcuda.so) found: install the NVIDIA driver (580 or newer, for CUDA 13.0) on a machine with an NVIDIA GPU"
                .to_string(),
        ));
    }
    nvrtc::require()?;
    // SAFETY: as above.
    if !unsafe { blas_sys::is_culib_present() } {
        return Err(Error::Device(
            "cuBLAS (libcublas.so.13) not found: install CUDA 13.0's cuBLAS (the toolkit, or `pip install nvidia-cublas`) and put its lib directory on LD_LIBRARY_PATH".to_string(),
        ));
    }
    Ok(())
}

/// A cuBLASLt descriptor or layout, destroyed when dropped.
struct LtDescriptor<T: Copy> {
    handle: T,
    destroy: unsafe fn(T) -> std::result::Result<(), LtError>,
}

impl<T: Copy> Drop for LtDescriptor<T> {
    fn drop(&mut self) {
        // SAFETY: `handle` came from the create call matching `destroy`, and is destroyed once.
        unsafe { (self.destroy)(self.handle) }.ok();
    }
}

/// Whether a product with an epilogue is given to cuBLASLt at all, before asking it: each of `m`,
/// `n` and `k` from 2 to below 65535 · 32, and a bias aligned to 16 bytes. cuBLASLt has failed
/// outside these bounds where cuBLAS works (PyTorch keeps its bias epilogue inside the same
/// bounds: `cublasLtMatmulAlgoGetHeuristic` answers `CUBLAS_STATUS_INVALID_VALUE` for a
/// dimension of 1, and a bias that is only 4-byte aligned has failed on an A100); elsewhere the
/// caller's product and bias kernel are as good.
fn lt_takes(call: &GemmCall, bias: DevicePtr) -> bool {
    const LIMIT: usize = 65535 * 32;
    [call.m, call.n, call.k].iter().all(|dim| (2..LIMIT).contains(dim)) && bias.is_multiple_of(16)
}

/// The alignment of a device address for cuBLASLt's preferences: the largest power of two that
/// divides it, at most 256 bytes.
fn alignment(ptr: DevicePtr) -> u32 {
    1 << ptr.trailing_zeros().min(8)
}

/// A value's address as the untyped pointer cuBLASLt's attribute and scalar arguments take, and
/// its size in bytes.
fn sized<T>(value: &T) -> (*const c_void, usize) {
    ((value as *const T).cast(), size_of::<T>())
}

/// A cuBLASLt call's result: `Ok(None)` for `CUBLAS_STATUS_NOT_SUPPORTED` (the caller falls
/// back to the product and a kernel), any other error as a [`Error::Device`] naming the call.
fn lt_call<T>(result: std::result::Result<T, LtError>, call: &str) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(LtError(lt_sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED)) => Ok(None),
        Err(e) => Err(Error::Device(format!("{call}: {:?}", e.0))),
    }
}

/// cuBLAS's math mode: TF32 tensor cores, or the default, which keeps SGEMM in strict fp32.
fn math_mode(tf32: bool) -> blas_sys::cublasMath_t {
    if tf32 { blas_sys::cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH } else { blas_sys::cublasMath_t::CUBLAS_DEFAULT_MATH }
}

/// The driver's name and description of an error: `CUDA_ERROR_NO_DEVICE (no CUDA-capable device
/// is detected)`.
fn message(e: DriverError) -> String {
    match (e.error_name(), e.error_string()) {
        (Ok(name), Ok(text)) => format!("{} ({})", name.to_string_lossy(), text.to_string_lossy()),
        _ => format!("{:?}", e.0),
    }
}

/// A driver call's result, its error as a [`Error::Device`] naming the call.
fn driver<T>(result: std::result::Result<T, DriverError>, call: &str) -> Result<T> {
    result.map_err(|e| Error::Device(format!("{call}: CUDA error {}", message(e))))
}

/// A cuBLAS call's result, its error as a [`Error::Device`] naming the call.
fn cublas<T>(result: std::result::Result<T, CublasError>, call: &str) -> Result<T> {
    result.map_err(|e| Error::Device(format!("{call}: {:?}", e.0)))
}

/// An allocation's result; running out of memory says how much was asked and how much is free.
fn alloc_error(result: std::result::Result<DevicePtr, DriverError>, bytes: usize) -> Result<DevicePtr> {
    result.map_err(|e| match (e.0, cu::mem_get_info()) {
        (sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY, Ok((free, total))) => {
            Error::Device(format!("out of device memory: {bytes} bytes requested, {free} of {total} bytes free"))
        }
        _ => Error::Device(format!("allocating {bytes} bytes: CUDA error {}", message(e))),
    })
}

/// The CUBIN of a module for an architecture (in u64 words, aligned as the driver wants it): compiled by NVRTC once per process (a second
/// device, or a second `Cuda` on the same one, loads the same image), keyed by the module's name,
/// source and architecture. A failed compile is not kept: its error is returned each time.
fn compiled_image(name: &str, source: &str, arch: &str) -> Result<Arc<Vec<u64>>> {
    type Images = std::collections::HashMap<(String, String, String), Arc<Vec<u64>>>;
    static IMAGES: std::sync::OnceLock<Mutex<Images>> = std::sync::OnceLock::new();
    let key = (name.to_string(), source.to_string(), arch.to_string());
    let images = IMAGES.get_or_init(Mutex::default);
    if let Some(image) = images.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(image.clone());
    }
    // Compiled outside the lock: another module may compile meanwhile (the same one twice at
    // worst, when two threads race for it; both images are the same).
    let image = Arc::new(nvrtc::compile(name, source, arch, &[])?.cubin);
    images.lock().unwrap_or_else(|e| e.into_inner()).insert(key, image.clone());
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cublaslt_alignment_and_bounds() {
        assert_eq!(alignment(0x7f00_0000_0000), 256);
        assert_eq!(alignment(0x7f00_0000_0104), 4);
        assert_eq!(alignment(0x7f00_0000_0130), 16);
        let call = GemmCall {
            transa: Op::N,
            transb: Op::N,
            m: 7,
            n: 33,
            k: 5,
            alpha: 1.0,
            a: 256,
            lda: 7,
            b: 512,
            ldb: 5,
            beta: 0.0,
            c: 768,
            ldc: 7,
            batch: 1,
            strides: [0; 3],
            tf32: false,
        };
        assert!(lt_takes(&call, 1024));
        assert!(!lt_takes(&call, 1028), "a bias aligned to 4 bytes only");
        assert!(!lt_takes(&GemmCall { k: 1, ..call }, 1024), "a dimension of 1");
        assert!(!lt_takes(&GemmCall { n: 65535 * 32, ..call }, 1024));
    }
}

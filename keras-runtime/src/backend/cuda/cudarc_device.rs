//! [`CudaDevice`]: the device layer on a real GPU, through cudarc's thin `result` layer over the
//! CUDA driver API, NVRTC and cuBLAS. Nothing here but the calls: device memory is raw
//! `CUdeviceptr`s from the stream-ordered allocator, kernels are NVRTC binaries for the device's
//! own architecture, products are `cublasSgemm`, captures are CUDA graphs.
//!
//! cudarc loads the libraries at run time (`libcuda.so`, `libnvrtc.so.13`, `libcublas.so.13`,
//! found by the dynamic loader: the driver's install, or `LD_LIBRARY_PATH`) and panics when one
//! is missing, so [`CudaDevice::new`] checks for each first and returns an error instead.

use super::driver::{DevicePtr, GemmCall, GpuDevice, KernelArg, LaunchConfig, Op};
use super::nvrtc;
use crate::error::{Error, Result};
use cudarc::cublas::result::{self as blas, CublasError};
use cudarc::cublas::sys as blas_sys;
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
/// products are `cublasSgemm` (strict fp32 unless a call asks for TF32), captures are CUDA graphs.
///
/// The libraries are loaded at run time: `libcuda.so` (the driver), `libnvrtc.so.13` and
/// `libcublas.so.13`, found by the dynamic loader (the driver's install, a CUDA toolkit, or
/// `LD_LIBRARY_PATH`).
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
    /// cuBLAS's workspace, set explicitly so that a captured product runs the same algorithm
    /// as an uncaptured one and never allocates inside a graph.
    workspace: DevicePtr,
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
            workspace: 0,
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
        let image = nvrtc::compile(name, source, &self.arch, &[])?.cubin;
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

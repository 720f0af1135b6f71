//! The CUDA emulator: a [`GpuDevice`] that runs the backend's CUDA C kernels on the CPU, so that
//! everything above the device layer is tested on machines without a GPU.
//!
//! - **Kernels.** [`EmuDevice::load`] compiles a module with the host C++ compiler (`$CXX`, or
//!   `c++`) against `cuda_emu.h`, our header of CUDA's built-ins: every CUDA thread a fiber, one
//!   block at a time, so `__syncthreads` and the warp shuffles and votes work as barriers;
//!   `__shared__` memory per block; atomics; the device math functions. Each kernel gets a
//!   generated launcher that checks the arguments' count and sizes against its parameters. A
//!   barrier that part of a block never reaches (a `return` before a `__syncthreads`, a full-mask
//!   shuffle in a partial warp) is an error that names the kernel, not a hang, and so is a
//!   geometry outside CUDA's limits (dynamic shared memory up to 48 KiB, the default without an
//!   opt-in). Compiled modules are cached per process and on disk (`<temp>/keras-emu-<user>/`).
//! - **Memory** is host memory, filled with NaN (`0x7fffffff`) when allocated, as is dynamic
//!   shared memory before each block, so reads of what was never written show. Copies are checked
//!   against the live allocations; out-of-bounds accesses inside kernels are for
//!   AddressSanitizer ([`EmuDevice::with_address_sanitizer`]).
//! - **GEMM** is a reference column-major SGEMM that enforces cuBLAS's argument rules and checks
//!   that its operands lie inside live allocations. Its epilogues
//!   ([`GpuDevice::gemm_epilogue`]) are cuBLASLt's bias and ReLU, applied to each element before
//!   it is stored; the emulator always fuses them (never answers `Ok(false)`).
//! - **Capture** records launches (with copies of their arguments' values) and products; a
//!   replay runs them again. As in a CUDA graph capture, a copy, a free or a synchronize while
//!   capturing is an error that fails the capture.
//!
//! Work runs synchronously on the calling thread. **Errors:** a launch, product or replay that
//! fails returns its error, and the first such error since the last
//! [`synchronize`](GpuDevice::synchronize) is returned again by `synchronize`, as a fault is on a
//! GPU.

mod gemm;
mod module;
#[cfg(test)]
mod tests;

pub use module::EmuKernel;

use super::driver::{DevicePtr, Epilogue, GemmCall, GpuDevice, KernelArg, LaunchConfig, Op};
use crate::{Error, Result};
use module::Compiler;
use std::alloc::Layout;
use std::collections::BTreeMap;
use std::ffi::c_void;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

/// Alignment of allocations, as `cudaMalloc`'s. Their size is exact, so that AddressSanitizer
/// sees an access one past the end.
const ALLOC_ALIGN: usize = 256;

/// The CUDA emulator (see the module documentation). Cloning shares the device.
#[derive(Clone)]
pub struct EmuDevice {
    inner: Arc<Inner>,
}

struct Inner {
    compiler: Compiler,
    address_sanitizer: bool,
    version: OnceLock<String>,
    /// Live allocations: address to requested size in bytes.
    memory: Mutex<BTreeMap<DevicePtr, usize>>,
    stream: Mutex<Stream>,
}

/// The state of the one stream.
#[derive(Debug, Default)]
struct Stream {
    capture: Option<Capture>,
    /// The first failure since the last synchronize.
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Capture {
    work: Vec<Work>,
    /// A failure while capturing: the capture ends with it.
    error: Option<String>,
}

/// One recorded piece of work: a launch, or a product with its epilogue and the epilogue's bias.
#[derive(Clone, Debug)]
enum Work {
    Launch { kernel: EmuKernel, config: LaunchConfig, args: Vec<Box<[std::mem::MaybeUninit<u8>]>> },
    Gemm(GemmCall, Epilogue, DevicePtr),
}

/// A recorded sequence of launches and products (the emulator's CUDA graph).
#[derive(Debug)]
pub struct EmuGraph {
    work: Vec<Work>,
}

impl EmuGraph {
    /// How many launches and products the graph holds.
    pub fn len(&self) -> usize {
        self.work.len()
    }

    /// Whether the graph holds no work.
    pub fn is_empty(&self) -> bool {
        self.work.is_empty()
    }
}

impl fmt::Debug for EmuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmuDevice")
            .field("compiler", &self.inner.compiler.to_string())
            .field("address_sanitizer", &self.inner.address_sanitizer)
            .field("allocations", &self.memory().len())
            .field("capturing", &self.stream().capture.is_some())
            .finish()
    }
}

impl Default for EmuDevice {
    fn default() -> EmuDevice {
        EmuDevice::new()
    }
}

impl EmuDevice {
    /// An emulated device whose kernels are compiled with `$CXX` (or `c++`).
    pub fn new() -> EmuDevice {
        EmuDevice::build(Compiler::from_env(), false)
    }

    /// An emulated device whose kernels are compiled with AddressSanitizer, so that a kernel's
    /// out-of-bounds access aborts the process with a report. Its modules load only into a
    /// process started with `LD_PRELOAD=$(c++ -print-file-name=libasan.so)`.
    pub fn with_address_sanitizer() -> EmuDevice {
        EmuDevice::build(Compiler::from_env(), true)
    }

    fn build(compiler: Compiler, address_sanitizer: bool) -> EmuDevice {
        EmuDevice {
            inner: Arc::new(Inner {
                compiler,
                address_sanitizer,
                version: OnceLock::new(),
                memory: Mutex::default(),
                stream: Mutex::default(),
            }),
        }
    }

    fn stream(&self) -> MutexGuard<'_, Stream> {
        self.inner.stream.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn memory(&self) -> MutexGuard<'_, BTreeMap<DevicePtr, usize>> {
        self.inner.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks that `bytes` bytes at `ptr` lie inside one live allocation.
    fn check_range(&self, what: &str, ptr: DevicePtr, bytes: usize) -> Result<()> {
        let memory = self.memory();
        let inside = memory
            .range(..=ptr)
            .next_back()
            .is_some_and(|(&base, &size)| (ptr - base).checked_add(bytes as u64).is_some_and(|end| end <= size as u64));
        if inside {
            Ok(())
        } else {
            Err(Error::Device(format!("{what}: {bytes} bytes at {ptr:#x} are not inside one live allocation (out of bounds)")))
        }
    }

    /// Synchronous work (copies, frees) is not allowed while capturing; it ends the capture with
    /// an error, as on a GPU.
    fn refuse_while_capturing(&self, what: &str) -> Result<()> {
        let mut stream = self.stream();
        match &mut stream.capture {
            Some(capture) => {
                let message = format!("{what} while capturing (not allowed in a CUDA graph capture)");
                capture.error.get_or_insert_with(|| message.clone());
                Err(Error::Device(message))
            }
            None => Ok(()),
        }
    }

    /// Checks a product's arguments, and that its operands (and its epilogue's bias) lie inside
    /// live allocations.
    fn check_gemm(&self, call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) -> Result<()> {
        if let Some(rule) = call.invalid().or_else(|| epilogue.invalid(call, bias)) {
            return Err(Error::Device(format!("gemm: invalid argument (CUBLAS_STATUS_INVALID_VALUE): {rule}")));
        }
        if epilogue != Epilogue::None && call.m > 0 && call.n > 0 {
            self.check_range("gemm: the epilogue's bias", bias, call.m * 4)?;
        }
        let (rows_a, cols_a) = if call.transa == Op::N { (call.m, call.k) } else { (call.k, call.m) };
        let (rows_b, cols_b) = if call.transb == Op::N { (call.k, call.n) } else { (call.n, call.k) };
        let reads_ab = call.m > 0 && call.n > 0 && call.k > 0 && call.alpha != 0.0;
        let operands = [
            ("A", call.a, rows_a, cols_a, call.lda, call.strides[0], reads_ab),
            ("B", call.b, rows_b, cols_b, call.ldb, call.strides[1], reads_ab),
            ("C", call.c, call.m, call.n, call.ldc, call.strides[2], call.m > 0 && call.n > 0),
        ];
        for (name, ptr, rows, cols, ld, stride, used) in operands {
            if !used {
                continue;
            }
            // The last element of the last item, plus one.
            let elements = (call.batch - 1)
                .checked_mul(stride)
                .and_then(|e| e.checked_add((cols - 1).checked_mul(ld)?))
                .and_then(|e| e.checked_add(rows))
                .and_then(|e| e.checked_mul(4));
            match elements {
                Some(bytes) => self.check_range(&format!("gemm: operand {name}"), ptr, bytes)?,
                None => return Err(Error::Device(format!("gemm: operand {name} spans more than the address space"))),
            }
        }
        Ok(())
    }

    /// Runs one piece of work now; a failure is also kept for the next synchronize.
    fn execute(&self, stream: &mut Stream, work: &Work) -> Result<()> {
        let result = match work {
            Work::Launch { kernel, config, args } => {
                let pointers: Vec<*const c_void> = args.iter().map(|a| a.as_ptr().cast()).collect();
                let sizes: Vec<usize> = args.iter().map(|a| a.len()).collect();
                // SAFETY: the arguments are the bytes `launch` was given; its caller vouched for them.
                unsafe { kernel.run(*config, &pointers, &sizes, false) }
            }
            Work::Gemm(call, epilogue, bias) => self.check_gemm(call, *epilogue, *bias).map(|()| {
                // SAFETY: the arguments are valid and the operands inside live allocations.
                unsafe { gemm::sgemm(call, *epilogue, *bias) }
            }),
        };
        if let Err(e) = &result {
            stream.error.get_or_insert_with(|| message(e));
        }
        result
    }

    /// Runs `work`, or records it when capturing (after the checks that need no running).
    fn submit(&self, work: Work, check: impl FnOnce() -> Result<()>) -> Result<()> {
        let mut stream = self.stream();
        match &mut stream.capture {
            Some(capture) => match check() {
                Ok(()) => {
                    capture.work.push(work);
                    Ok(())
                }
                Err(e) => {
                    capture.error.get_or_insert_with(|| message(&e));
                    Err(e)
                }
            },
            None => self.execute(&mut stream, &work),
        }
    }
}

impl GpuDevice for EmuDevice {
    type Kernel = EmuKernel;
    type Graph = EmuGraph;

    fn name(&self) -> String {
        format!("CUDA emulator on the CPU ({})", self.inner.version.get_or_init(|| self.inner.compiler.version()))
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        let layout = Layout::from_size_align(bytes, ALLOC_ALIGN)
            .ok()
            .filter(|_| bytes > 0)
            .ok_or_else(|| Error::Device(format!("cannot allocate {bytes} bytes")))?;
        // SAFETY: the layout's size is nonzero.
        let ptr = unsafe { std::alloc::alloc(layout) };
        if ptr.is_null() {
            return Err(Error::Device(format!("out of host memory allocating {bytes} bytes")));
        }
        // SAFETY: the allocation holds `bytes` bytes, aligned for u32; a tail shorter than a
        // word gets the NaN's low bytes.
        unsafe {
            std::slice::from_raw_parts_mut(ptr.cast::<u32>(), bytes / 4).fill(0x7fff_ffff);
            std::slice::from_raw_parts_mut(ptr.add(bytes / 4 * 4), bytes % 4).fill(0xff);
        }
        let address = ptr as DevicePtr;
        self.memory().insert(address, bytes);
        Ok(address)
    }

    unsafe fn free(&self, ptr: DevicePtr) {
        let Some(bytes) = self.memory().remove(&ptr) else {
            let message = format!("free of {ptr:#x}, which is not a live allocation");
            self.stream().error.get_or_insert(message);
            return;
        };
        let _ = self.refuse_while_capturing("free");
        // SAFETY: `ptr` was allocated by `alloc` with this layout (it was accepted there).
        unsafe { std::alloc::dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(bytes, ALLOC_ALIGN)) }
    }

    unsafe fn upload(&self, src: &[u8], dst: DevicePtr) -> Result<()> {
        self.refuse_while_capturing("upload")?;
        if src.is_empty() {
            return Ok(());
        }
        self.check_range("upload", dst, src.len())?;
        // SAFETY: the destination lies inside a live allocation, which `src` cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
        Ok(())
    }

    unsafe fn download(&self, src: DevicePtr, dst: &mut [u8]) -> Result<()> {
        self.refuse_while_capturing("download")?;
        if dst.is_empty() {
            return Ok(());
        }
        self.check_range("download", src, dst.len())?;
        // SAFETY: the source lies inside a live allocation, which `dst` cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
        Ok(())
    }

    fn load(&self, name: &str, source: &str, kernels: &[&str]) -> Result<Vec<EmuKernel>> {
        module::load(&self.inner.compiler, self.inner.address_sanitizer, name, source, kernels)
    }

    unsafe fn launch(&self, kernel: &EmuKernel, config: LaunchConfig, args: &[KernelArg<'_>]) -> Result<()> {
        let pointers: Vec<*const c_void> = args.iter().map(KernelArg::ptr).collect();
        let sizes: Vec<usize> = args.iter().map(KernelArg::size).collect();
        let work = Work::Launch { kernel: kernel.clone(), config, args: args.iter().map(KernelArg::to_bytes).collect() };
        // SAFETY: checking reads only the arguments' bytes.
        self.submit(work, || unsafe { kernel.run(config, &pointers, &sizes, true) })
    }

    unsafe fn gemm(&self, call: &GemmCall) -> Result<()> {
        self.submit(Work::Gemm(*call, Epilogue::None, 0), || self.check_gemm(call, Epilogue::None, 0))
    }

    unsafe fn gemm_epilogue(&self, call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) -> Result<bool> {
        self.submit(Work::Gemm(*call, epilogue, bias), || self.check_gemm(call, epilogue, bias)).map(|()| true)
    }

    fn begin_capture(&self) -> Result<()> {
        let mut stream = self.stream();
        if stream.capture.is_some() {
            return Err(Error::Device("begin_capture while already capturing".to_string()));
        }
        stream.capture = Some(Capture::default());
        Ok(())
    }

    fn end_capture(&self) -> Result<EmuGraph> {
        match self.stream().capture.take() {
            None => Err(Error::Device("end_capture without begin_capture".to_string())),
            Some(Capture { error: Some(error), .. }) => Err(Error::Device(format!("the capture failed: {error}"))),
            Some(Capture { work, error: None }) => Ok(EmuGraph { work }),
        }
    }

    unsafe fn replay(&self, graph: &EmuGraph) -> Result<()> {
        let mut stream = self.stream();
        if let Some(capture) = &mut stream.capture {
            capture.work.extend(graph.work.iter().cloned());
            return Ok(());
        }
        graph.work.iter().try_for_each(|work| self.execute(&mut stream, work))
    }

    fn synchronize(&self) -> Result<()> {
        self.refuse_while_capturing("synchronize")?;
        match self.stream().error.take() {
            Some(message) => Err(Error::Device(message)),
            None => Ok(()),
        }
    }
}

/// An error's message without the variant's prefix, to be wrapped again later.
fn message(error: &Error) -> String {
    match error {
        Error::Device(message) => message.clone(),
        other => other.to_string(),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let memory = self.memory.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (&ptr, &bytes) in memory.iter() {
            // SAFETY: every live allocation came from `alloc` with this layout.
            unsafe { std::alloc::dealloc(ptr as *mut u8, Layout::from_size_align_unchecked(bytes, ALLOC_ALIGN)) }
        }
    }
}

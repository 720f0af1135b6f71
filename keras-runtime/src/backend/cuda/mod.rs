//! The CUDA backend, [`Cuda`]: buffers in device memory, kernels written in CUDA C
//! (`kernels/*.cu`, compiled at first use and kept for the process), products by cuBLAS.
//!
//! It is written once over a thin device layer, [`GpuDevice`], with two implementations:
//! [`CudaDevice`] (cudarc: the driver API, NVRTC, cuBLAS, CUDA graphs) on a GPU, and
//! [`EmuDevice`], which compiles the same CUDA C with the host's C++ compiler against a header of
//! CUDA's built-ins and runs it on the CPU (every CUDA thread a fiber). Everything here above the
//! device layer (buffers and views, launch geometry, the row-major to column-major product,
//! argument checks) is shared, so the tests run it on the emulator on any machine.
//!
//! ```no_run
//! use keras_runtime::backend::cuda::Cuda;
//! # fn main() -> keras_runtime::Result<()> {
//! let gpu = Cuda::new(0)?; // an `Err`, not a panic, on a machine without a GPU or driver
//! # let _ = gpu;
//! # Ok(())
//! # }
//! ```
//!
//! Errors: kernels are queued, so a kernel's failure is sticky (see the `backend` module's
//! notes): it is returned by the next download or [`Device::sync`], naming the kernel.

mod cudarc_device;
mod dense;
pub mod driver;
mod emu;
pub mod kernels;
mod layout;
mod norm;
pub mod nvrtc;
mod objective;
mod optimizer;
mod random;
mod record;
mod sequence;
mod window;

pub use cudarc_device::CudaDevice;
pub use driver::{DevicePtr, GemmCall, GpuDevice, KernelArg, LaunchConfig, Op};
pub use emu::{EmuDevice, EmuGraph, EmuKernel};

use super::Device;
use super::ops::{Gemm, Transpose};
use crate::error::{Error, Result};
use kernels::Module;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Threads per block of the elementwise kernels.
const THREADS: u32 = 256;
/// The most blocks an elementwise launch uses; its kernels loop over the rest (grid-stride), so
/// a launch never has more threads than a large GPU keeps resident.
const MAX_BLOCKS: usize = 1024;

/// The CUDA backend over the device layer `D`: [`CudaDevice`] on a GPU (the default), or
/// [`EmuDevice`] on the CPU. Cloning shares the device.
pub struct Cuda<D: GpuDevice = CudaDevice> {
    shared: Arc<Shared<D>>,
    tf32: bool,
    /// Whether [`Device::begin_capture`] records (see [`Cuda::with_graphs`]).
    graphs: bool,
}

/// What the clones of one [`Cuda`] share.
struct Shared<D: GpuDevice> {
    device: D,
    /// Modules compiled so far, by name; a module that failed to compile keeps its error and is
    /// not retried.
    modules: Mutex<HashMap<&'static str, Loaded<D>>>,
    /// The first kernel failure since the last read (sticky).
    failure: Mutex<Option<Error>>,
    /// Working space for kernels that need it between launches (per-tensor norms, partial
    /// sums), grown as needed and kept.
    scratch: Mutex<ScratchArea>,
    /// Recording and replay (see `record.rs`).
    record: record::RecordState,
}

impl<D: GpuDevice> Drop for Shared<D> {
    fn drop(&mut self) {
        let area = self.scratch.get_mut().unwrap_or_else(|e| e.into_inner());
        if area.len > 0 {
            // SAFETY: the area came from this device's `alloc`; nothing uses it any more.
            unsafe { self.device.free(area.ptr) }
        }
        // A recording that never ended leaves its deferred frees.
        self.record.end_dropped(&self.device);
    }
}

/// An allocation of `len` floats (none when `len` is 0).
#[derive(Debug, Default)]
struct ScratchArea {
    ptr: DevicePtr,
    len: usize,
}

/// A module's kernels, or the message of its failed compile.
type Loaded<D> = std::result::Result<Arc<Vec<<D as GpuDevice>::Kernel>>, String>;

/// The device's scratch area, locked for one kernel sequence (see [`Cuda::scratch`]).
pub(crate) struct Scratch<'a> {
    guard: std::sync::MutexGuard<'a, ScratchArea>,
}

impl Scratch<'_> {
    /// The address of the area's first float.
    pub(crate) fn ptr(&self) -> DevicePtr {
        self.guard.ptr
    }
}

impl Cuda<CudaDevice> {
    /// The GPU of this ordinal (0: the first). An `Err` when there is no driver, no such device,
    /// or the driver is older than CUDA 13.0.
    pub fn new(ordinal: usize) -> Result<Self> {
        Ok(Cuda::on(CudaDevice::new(ordinal)?))
    }
}

impl Cuda<EmuDevice> {
    /// The backend on the CUDA emulator: the same kernels, run on the CPU (slowly: for tests).
    pub fn emulated() -> Self {
        Cuda::on(EmuDevice::new())
    }
}

impl<D: GpuDevice> Cuda<D> {
    /// The backend over a device layer.
    pub fn on(device: D) -> Self {
        let shared = Shared {
            device,
            modules: Mutex::default(),
            failure: Mutex::default(),
            scratch: Mutex::default(),
            record: record::RecordState::default(),
        };
        Cuda { shared: Arc::new(shared), tf32: false, graphs: true }
    }

    /// Allows TF32 tensor cores in matrix products (inputs rounded to 10 mantissa bits: about
    /// 8x the fp32 throughput of an H100, and results no longer match the CPU to 1e-5). Strict
    /// fp32 by default.
    pub fn with_tf32(mut self, on: bool) -> Self {
        self.tf32 = on;
        self
    }

    /// The device layer.
    pub fn device(&self) -> &D {
        &self.shared.device
    }

    /// The kernels of a module, compiled at first use; `None` (with the failure recorded) when
    /// it does not compile.
    fn module(&self, module: &'static Module) -> Option<Arc<Vec<D::Kernel>>> {
        let mut modules = self.shared.modules.lock().unwrap_or_else(|e| e.into_inner());
        let loaded = modules.entry(module.name).or_insert_with(|| {
            self.shared.device.load(module.name, module.source, module.kernels).map(Arc::new).map_err(|e| match e {
                Error::Device(message) => message,
                other => other.to_string(),
            })
        });
        match loaded {
            Ok(kernels) => Some(kernels.clone()),
            Err(message) => {
                let error = Error::Device(message.clone());
                drop(modules);
                self.fail(error);
                None
            }
        }
    }

    /// Launches kernel `name` of `module` over `n` elements (a grid-stride kernel).
    fn launch(&self, module: &'static Module, name: &str, n: usize, args: &[KernelArg<'_>]) {
        if n == 0 {
            return;
        }
        let blocks = n.div_ceil(THREADS as usize).min(MAX_BLOCKS) as u32;
        self.launch_with(module, name, LaunchConfig::linear(blocks, THREADS), args);
    }

    /// Launches kernel `name` of `module` with an explicit geometry.
    fn launch_with(&self, module: &'static Module, name: &str, config: LaunchConfig, args: &[KernelArg<'_>]) {
        let Some(kernels) = self.module(module) else { return };
        let Some(index) = module.kernels.iter().position(|k| *k == name) else {
            self.fail(Error::Device(format!("module `{}` has no kernel `{name}`", module.name)));
            return;
        };
        // SAFETY: every caller checks its views' lengths against the sizes it passes, and the
        // argument list follows the kernel's signature in kernels/*.cu.
        if let Err(e) = unsafe { self.shared.device.launch(&kernels[index], config, args) } {
            self.fail(e);
        }
    }

    /// A scratch area of at least `len` floats (contents undefined), held until the guard is
    /// dropped: a kernel sequence launched meanwhile has it to itself (all work runs in order on
    /// one stream, so the next holder's kernels run after these). `None`, with the failure
    /// recorded, when the device is out of memory.
    pub(crate) fn scratch(&self, len: usize) -> Option<Scratch<'_>> {
        let mut guard = self.shared.scratch.lock().unwrap_or_else(|e| e.into_inner());
        if guard.len < len {
            if let Err(e) = self.shared.record.round_trip("an allocation") {
                drop(guard);
                self.fail(e);
                return None;
            }
            if guard.len > 0 {
                // SAFETY: the old area came from `alloc`; work queued on it runs before any
                // later use of the freed memory (one stream).
                unsafe { self.shared.release(guard.ptr) };
                *guard = ScratchArea::default();
            }
            let len = len.max(1024);
            match self.shared.device.alloc(len * size_of::<f32>()) {
                Ok(ptr) => *guard = ScratchArea { ptr, len },
                Err(e) => {
                    drop(guard);
                    self.fail(e);
                    return None;
                }
            }
        }
        Some(Scratch { guard })
    }

    /// Checks that views hold what a kernel will touch; records a failure otherwise.
    fn check(&self, what: &str, checks: &[(usize, usize)]) -> bool {
        for &(len, needed) in checks {
            if len < needed {
                self.fail(Error::shape(what, format!("a view of at least {needed} floats"), format!("{len} floats")));
                return false;
            }
        }
        true
    }
}

impl<D: GpuDevice> Clone for Cuda<D> {
    fn clone(&self) -> Self {
        Cuda { shared: self.shared.clone(), tf32: self.tf32, graphs: self.graphs }
    }
}

impl<D: GpuDevice> fmt::Debug for Cuda<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cuda").field("device", &self.shared.device).field("tf32", &self.tf32).finish()
    }
}

/// A buffer of f32 in device memory, freed when dropped.
pub struct CudaBuffer<D: GpuDevice> {
    ptr: DevicePtr,
    len: usize,
    owner: Arc<Shared<D>>,
}

impl<D: GpuDevice> Drop for CudaBuffer<D> {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `ptr` came from this device's `alloc` and no view outlives the buffer.
            unsafe { self.owner.release(self.ptr) }
        }
    }
}

impl<D: GpuDevice> fmt::Debug for CudaBuffer<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaBuffer({} floats at {:#x})", self.len, self.ptr)
    }
}

/// A read-only range of a [`CudaBuffer`].
#[derive(Clone, Copy, Debug)]
pub struct CudaView<'a> {
    ptr: DevicePtr,
    len: usize,
    _buffer: PhantomData<&'a [f32]>,
}

/// A writable range of a [`CudaBuffer`].
#[derive(Debug)]
pub struct CudaViewMut<'a> {
    ptr: DevicePtr,
    len: usize,
    _buffer: PhantomData<&'a mut [f32]>,
}

/// Row indices (u32) in device memory: a shuffled epoch's order.
pub struct CudaIndices<D: GpuDevice> {
    ptr: DevicePtr,
    len: usize,
    owner: Arc<Shared<D>>,
}

impl<D: GpuDevice> Drop for CudaIndices<D> {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: as for `CudaBuffer`.
            unsafe { self.owner.release(self.ptr) }
        }
    }
}

impl<D: GpuDevice> fmt::Debug for CudaIndices<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaIndices({} at {:#x})", self.len, self.ptr)
    }
}

/// The address of element `i` of an f32 range starting at `ptr`.
const fn at(ptr: DevicePtr, i: usize) -> DevicePtr {
    ptr + (i * size_of::<f32>()) as u64
}

/// The bytes of a slice of plain numbers.
fn bytes<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: f32 and u32 have no padding and every byte pattern is a valid u8.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}

impl<D: GpuDevice> Device for Cuda<D> {
    type Buffer = CudaBuffer<D>;
    type View<'a> = CudaView<'a>;
    type ViewMut<'a> = CudaViewMut<'a>;
    type Indices = CudaIndices<D>;

    fn describe(&self) -> String {
        let math = if self.tf32 { "tf32" } else { "fp32" };
        format!("cuda ({}, {math})", self.shared.device.name())
    }

    fn alloc(&self, len: usize) -> Result<CudaBuffer<D>> {
        self.shared.record.round_trip("an allocation")?;
        let ptr = if len == 0 { 0 } else { self.shared.device.alloc(len * size_of::<f32>())? };
        let mut buf = CudaBuffer { ptr, len, owner: self.shared.clone() };
        self.fill(Self::view_mut(&mut buf, 0..len), 0.0);
        Ok(buf)
    }

    fn len(buf: &CudaBuffer<D>) -> usize {
        buf.len
    }

    fn view(buf: &CudaBuffer<D>, range: Range<usize>) -> CudaView<'_> {
        assert!(range.start <= range.end && range.end <= buf.len, "view {range:?} of a buffer of {}", buf.len);
        CudaView { ptr: at(buf.ptr, range.start), len: range.len(), _buffer: PhantomData }
    }

    fn view_mut(buf: &mut CudaBuffer<D>, range: Range<usize>) -> CudaViewMut<'_> {
        assert!(range.start <= range.end && range.end <= buf.len, "view {range:?} of a buffer of {}", buf.len);
        CudaViewMut { ptr: at(buf.ptr, range.start), len: range.len(), _buffer: PhantomData }
    }

    fn view_len(v: CudaView<'_>) -> usize {
        v.len
    }

    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a> {
        assert!(range.start <= range.end && range.end <= v.len, "sub-view {range:?} of a view of {}", v.len);
        CudaView { ptr: at(v.ptr, range.start), len: range.len(), _buffer: PhantomData }
    }

    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        assert!(mid <= v.len, "split at {mid} of a view of {}", v.len);
        let head = CudaViewMut { ptr: v.ptr, len: mid, _buffer: PhantomData };
        let tail = CudaViewMut { ptr: at(v.ptr, mid), len: v.len - mid, _buffer: PhantomData };
        (head, tail)
    }

    fn reborrow<'s>(v: &'s mut CudaViewMut<'_>) -> CudaViewMut<'s> {
        CudaViewMut { ptr: v.ptr, len: v.len, _buffer: PhantomData }
    }

    fn freeze<'s>(v: &'s CudaViewMut<'_>) -> CudaView<'s> {
        CudaView { ptr: v.ptr, len: v.len, _buffer: PhantomData }
    }

    fn shorten<'s>(v: &'s CudaView<'_>) -> CudaView<'s> {
        CudaView { ptr: v.ptr, len: v.len, _buffer: PhantomData }
    }

    fn upload(&self, src: &[f32], dst: CudaViewMut<'_>) -> Result<()> {
        if src.len() != dst.len {
            return Err(Error::shape("upload", dst.len, src.len()));
        }
        if src.is_empty() {
            return Ok(());
        }
        self.shared.record.round_trip("an upload")?;
        // SAFETY: `dst` is a live range of `src.len()` floats.
        unsafe { self.shared.device.upload(bytes(src), dst.ptr) }
    }

    fn download(&self, src: CudaView<'_>, dst: &mut [f32]) -> Result<()> {
        self.shared.record.round_trip("a download")?;
        self.sync()?;
        if src.len != dst.len() {
            return Err(Error::shape("download", dst.len(), src.len));
        }
        if dst.is_empty() {
            return Ok(());
        }
        // SAFETY: `src` is a live range of `dst.len()` floats; f32 accepts any bit pattern.
        let out = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut u8, std::mem::size_of_val(dst)) };
        unsafe { self.shared.device.download(src.ptr, out) }
    }

    fn sync(&self) -> Result<()> {
        self.shared.record.round_trip("a wait for the device")?;
        let synced = self.shared.device.synchronize();
        if let Some(e) = self.shared.failure.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        synced
    }

    fn fail(&self, error: Error) {
        let Err(error) = self.shared.record.absorb(error) else { return };
        self.shared.failure.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error);
    }

    fn copy(&self, src: CudaView<'_>, dst: CudaViewMut<'_>) {
        let n = dst.len as u64;
        if self.check("copy", &[(src.len, dst.len)]) {
            self.launch(&kernels::CORE, "copy", dst.len, &[KernelArg::new(&src.ptr), KernelArg::new(&dst.ptr), KernelArg::new(&n)]);
        }
    }

    fn fill(&self, dst: CudaViewMut<'_>, value: f32) {
        let n = dst.len as u64;
        self.launch(&kernels::CORE, "fill", dst.len, &[KernelArg::new(&dst.ptr), KernelArg::new(&n), KernelArg::new(&value)]);
    }

    fn gemm(&self, g: &Gemm, a: CudaView<'_>, b: CudaView<'_>, c: CudaViewMut<'_>) {
        let &Gemm { m, n, k, ta, tb, accumulate } = g;
        if !self.check("gemm", &[(a.len, m * k), (b.len, k * n), (c.len, m * n)]) || m == 0 || n == 0 {
            return;
        }
        // A row-major `C = op(A) · op(B)` is the column-major `Cᵀ = op(B)ᵀ · op(A)ᵀ`: the
        // operands swap, keep their transposition flags, and each leading dimension is the
        // stored row length.
        let op = |t: Transpose| if t == Transpose::No { Op::N } else { Op::T };
        let call = GemmCall {
            transa: op(tb),
            transb: op(ta),
            m: n,
            n: m,
            k,
            alpha: 1.0,
            a: b.ptr,
            lda: if tb == Transpose::No { n } else { k }.max(1),
            b: a.ptr,
            ldb: if ta == Transpose::No { k } else { m }.max(1),
            beta: if accumulate { 1.0 } else { 0.0 },
            c: c.ptr,
            ldc: n,
            batch: 1,
            strides: [0; 3],
            tf32: self.tf32,
        };
        // SAFETY: the views hold the operands (checked above) with these leading dimensions.
        if let Err(e) = unsafe { self.shared.device.gemm(&call) } {
            self.fail(e);
        }
    }

    fn add(&self, src: CudaView<'_>, dst: CudaViewMut<'_>) {
        let n = dst.len as u64;
        if self.check("add", &[(src.len, dst.len)]) {
            self.launch(&kernels::CORE, "add", dst.len, &[KernelArg::new(&src.ptr), KernelArg::new(&dst.ptr), KernelArg::new(&n)]);
        }
    }

    fn scale(&self, v: CudaViewMut<'_>, factor: f32) {
        let n = v.len as u64;
        self.launch(&kernels::CORE, "scale", v.len, &[KernelArg::new(&v.ptr), KernelArg::new(&n), KernelArg::new(&factor)]);
    }

    fn multiply(&self, a: CudaView<'_>, b: CudaView<'_>, out: CudaViewMut<'_>) {
        let n = out.len as u64;
        if self.check("multiply", &[(a.len, out.len), (b.len, out.len)]) {
            let args = [KernelArg::new(&a.ptr), KernelArg::new(&b.ptr), KernelArg::new(&out.ptr), KernelArg::new(&n)];
            self.launch(&kernels::CORE, "multiply", out.len, &args);
        }
    }

    fn alloc_indices(&self, len: usize) -> Result<CudaIndices<D>> {
        self.shared.record.round_trip("an allocation")?;
        let ptr = if len == 0 { 0 } else { self.shared.device.alloc(len * size_of::<u32>())? };
        Ok(CudaIndices { ptr, len, owner: self.shared.clone() })
    }

    fn upload_indices(&self, src: &[usize], dst: &mut CudaIndices<D>) -> Result<()> {
        if src.len() > dst.len {
            return Err(Error::shape("row indices", format!("at most {}", dst.len), src.len()));
        }
        let host =
            src.iter().map(|&i| u32::try_from(i).map_err(|_| Error::value("row index", "below 2^32", i))).collect::<Result<Vec<u32>>>()?;
        if host.is_empty() {
            return Ok(());
        }
        self.shared.record.round_trip("an upload")?;
        // SAFETY: `dst` holds at least `src.len()` indices.
        unsafe { self.shared.device.upload(bytes(&host), dst.ptr) }
    }

    fn gather_rows(&self, src: CudaView<'_>, row_len: usize, indices: &CudaIndices<D>, range: Range<usize>, dst: CudaViewMut<'_>) {
        let rows = range.len();
        if range.end > indices.len {
            self.fail(Error::shape("gather_rows", format!("indices up to {}", indices.len), format!("{range:?}")));
            return;
        }
        if !self.check("gather_rows", &[(dst.len, rows * row_len)]) || rows * row_len == 0 {
            return;
        }
        let (row_len, first, count, src_rows) = (row_len as u64, range.start as u64, rows as u64, (src.len / row_len) as u64);
        let args = [
            KernelArg::new(&src.ptr),
            KernelArg::new(&src_rows),
            KernelArg::new(&row_len),
            KernelArg::new(&indices.ptr),
            KernelArg::new(&first),
            KernelArg::new(&count),
            KernelArg::new(&dst.ptr),
        ];
        self.launch(&kernels::CORE, "gather_rows", rows * row_len as usize, &args);
    }

    fn round_trips(&self) -> u64 {
        self.record_round_trips()
    }

    fn records(&self) -> bool {
        self.graphs
    }

    fn begin_capture(&self) -> Result<bool> {
        self.record_begin()
    }

    fn end_capture(&self) -> Result<Option<super::Recording>> {
        self.record_end()
    }

    fn replay(&self, recording: &super::Recording) -> Result<bool> {
        self.record_replay(recording)
    }
}

//! Single-precision matrix multiply for the CPU backend: `C = A·B` or `C += A·B`, with any strides
//! on A and B (so transposes are free to express) and a row-major C.
//!
//! The structure is BLIS's: a register-blocked micro-kernel computes an `MR x NR` tile of C from a
//! panel of A (MR values per step of k, contiguous) and a panel of B (NR values per step of k,
//! contiguous), over blocks of `KC` steps of k. A is packed into panels when its rows are not
//! already contiguous columns; B is read in place when its rows are contiguous and packed
//! otherwise. Packing buffers are thread-local and grow once, so a steady training step allocates
//! nothing. Large products are split over the thread pool along n (or m when n is narrow); each
//! element of C is computed by one thread in the same order whatever the thread count, so results
//! do not depend on it.

use super::kernels;
use super::pool;
#[cfg(target_arch = "x86_64")]
use super::simd::{Avx2, Avx512};
use super::simd::{Level, activate, level};
use crate::backend::ops::{Activation, BiasAct};
use std::cell::RefCell;
use std::marker::PhantomData;

/// Most steps of k per block: a `KC x NR` panel of B stays in L1 while the tiles below it are
/// computed. k is cut into equal blocks of at most this size.
const KC: usize = 256;
/// From this many rows of A, and a B of at least `PACK_MIN_B` floats, B is packed even when its
/// rows are contiguous: the copy is paid once per block and read back by every row panel,
/// sequentially instead of at B's row stride. A small B is read in place, from cache.
const PACK_MIN_ROWS: usize = 64;
const PACK_MIN_B: usize = 1 << 16;
/// Up to this many rows of A (a small batch times a big weight matrix), the threads split k
/// rather than m or n: each reads only its own rows of B, which are the rows the optimizer
/// updated on that thread, so the weights never travel between cores. The partial products are
/// then summed in a fixed order.
const KSPLIT_MAX_ROWS: usize = 48;
const KSPLIT_MIN_K: usize = 256;
/// Products smaller than this many multiply-adds (`m * n * k`) run on the calling thread alone.
pub const PARALLEL_MIN_MACS: usize = 1 << 17;

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    ptr: *const f32,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    _data: PhantomData<&'a [f32]>,
}

// SAFETY: a MatRef is a shared borrow of f32 data.
unsafe impl Send for MatRef<'_> {}
unsafe impl Sync for MatRef<'_> {}

impl<'a> MatRef<'a> {
    /// A `rows x cols` view of `data` with row stride `rs` and column stride `cs`.
    ///
    /// # Panics
    /// If the view reaches past the end of `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * rs + (cols - 1) * cs;
            assert!(last < data.len(), "matrix view {rows}x{cols} (strides {rs}, {cs}) exceeds {} floats", data.len());
        }
        MatRef { ptr: data.as_ptr(), rows, cols, rs, cs, _data: PhantomData }
    }

    /// A row-major `rows x cols` view.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose (a view, no copy).
    pub fn t(self) -> Self {
        MatRef { rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs, ..self }
    }

    /// Columns `r` (a view).
    fn col_range(self, r: std::ops::Range<usize>) -> Self {
        debug_assert!(r.end <= self.cols);
        // SAFETY: the start stays inside the view's data (or one past it for an empty range).
        MatRef { ptr: unsafe { self.ptr.add(r.start * self.cs) }, cols: r.end - r.start, ..self }
    }

    /// Rows `r` (a view).
    fn row_range(self, r: std::ops::Range<usize>) -> Self {
        debug_assert!(r.end <= self.rows);
        // SAFETY: as above.
        MatRef { ptr: unsafe { self.ptr.add(r.start * self.rs) }, rows: r.end - r.start, ..self }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    #[inline(always)]
    unsafe fn at(&self, i: usize, j: usize) -> *const f32 {
        unsafe { self.ptr.add(i * self.rs + j * self.cs) }
    }
}

/// A mutable row-major matrix with row stride `rs`.
#[derive(Debug)]
pub struct MatMut<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    rs: usize,
    _data: PhantomData<&'a mut [f32]>,
}

impl<'a> MatMut<'a> {
    /// A `rows x cols` view of `data` with row stride `rs`.
    ///
    /// # Panics
    /// If the view reaches past the end of `data` or `rs < cols`.
    pub fn new(data: &'a mut [f32], rows: usize, cols: usize, rs: usize) -> Self {
        assert!(rs >= cols || rows <= 1, "row stride {rs} < {cols} columns");
        if rows > 0 && cols > 0 {
            assert!((rows - 1) * rs + cols <= data.len(), "matrix {rows}x{cols} (stride {rs}) exceeds {} floats", data.len());
        }
        MatMut { ptr: data.as_mut_ptr(), rows, cols, rs, _data: PhantomData }
    }

    /// A row-major `rows x cols` matrix over `data`.
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols)
    }
}

/// Raw parts of C shared by the tasks of one product; tasks write disjoint tiles.
#[derive(Clone, Copy)]
struct COut {
    ptr: *mut f32,
    rs: usize,
}
// SAFETY: tasks write disjoint parts of C, and the caller holds the only &mut to it.
unsafe impl Send for COut {}
unsafe impl Sync for COut {}

impl COut {
    /// The same matrix starting `off` floats further.
    ///
    /// # Safety
    /// The result must stay inside the allocation.
    unsafe fn offset(self, off: usize) -> COut {
        COut { ptr: unsafe { self.ptr.add(off) }, rs: self.rs }
    }
}

thread_local! {
    static PACK_B: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    /// The partial products of a k-split product, on the calling thread.
    static PARTIALS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What is done to C as it is stored: `C = act(C + bias)`, the bias per column. Done in the
/// micro-kernel's registers, so that a Dense layer's output is written once.
#[derive(Clone, Copy, Debug)]
pub struct Epilogue<'a> {
    /// One value per column of C.
    pub bias: Option<&'a [f32]>,
    /// The activation (see `kernels::vectorized` for those applied in registers).
    pub act: Activation,
}

/// An [`Epilogue`] as raw parts for the kernels; a null bias adds nothing.
#[derive(Clone, Copy)]
struct Epi {
    bias: *const f32,
    act: Activation,
}
// SAFETY: a shared borrow of the bias, read by the tasks.
unsafe impl Send for Epi {}
unsafe impl Sync for Epi {}

impl Epi {
    const NONE: Epi = Epi { bias: std::ptr::null(), act: Activation::Linear };

    fn is_none(&self) -> bool {
        self.bias.is_null() && self.act == Activation::Linear
    }

    /// The epilogue for the columns from `j` on.
    fn from(self, j: usize) -> Epi {
        // SAFETY: j stays inside the bias (it indexes a column of C, and the bias has one per column).
        Epi { bias: if self.bias.is_null() { self.bias } else { unsafe { self.bias.add(j) } }, act: self.act }
    }
}

/// `C = A·B` (or `C += A·B` if `accumulate`).
///
/// # Panics
/// If the shapes do not agree.
pub fn gemm(a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, accumulate: bool) {
    gemm_with(a, b, c, accumulate, Epi::NONE);
}

/// `C = act(A·B + bias)`.
///
/// # Panics
/// If the shapes do not agree, the bias has not one value per column, or C's rows are not
/// contiguous.
pub fn gemm_epilogue(a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, epilogue: Epilogue<'_>) {
    assert!(c.rs == c.cols || c.rows <= 1, "an epilogue needs contiguous rows of C");
    if let Some(bias) = epilogue.bias {
        assert_eq!(bias.len(), c.cols, "one bias per column");
    }
    let epi = Epi { bias: epilogue.bias.map_or(std::ptr::null(), <[f32]>::as_ptr), act: epilogue.act };
    if kernels::vectorized(epilogue.act) {
        gemm_with(a, b, c, false, epi);
    } else {
        let (ptr, rows, cols) = (c.ptr, c.rows, c.cols);
        gemm_with(a, b, c, false, Epi::NONE);
        // SAFETY: C is rows x cols contiguous, as asserted above.
        let y = unsafe { std::slice::from_raw_parts_mut(ptr, rows * cols) };
        kernels::bias_act(&BiasAct { rows, cols, act: epilogue.act }, y, epilogue.bias, None);
    }
}

/// Applies an epilogue to a contiguous C after the product.
fn apply_after(c: COut, m: usize, n: usize, epi: Epi) {
    if epi.is_none() {
        return;
    }
    // SAFETY: C is m x n contiguous when an epilogue is given (checked by gemm_epilogue); the
    // bias, when not null, has n values.
    let (y, bias) =
        unsafe { (std::slice::from_raw_parts_mut(c.ptr, m * n), (!epi.bias.is_null()).then(|| std::slice::from_raw_parts(epi.bias, n))) };
    kernels::bias_act(&BiasAct { rows: m, cols: n, act: epi.act }, y, bias, None);
}

fn gemm_with(a: MatRef<'_>, b: MatRef<'_>, c: MatMut<'_>, accumulate: bool, epi: Epi) {
    assert!(
        a.cols == b.rows && a.rows == c.rows && b.cols == c.cols,
        "gemm shapes {}x{} * {}x{} -> {}x{}",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    let out = COut { ptr: c.ptr, rs: c.rs };
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i of C is in bounds (checked by MatMut::new).
                unsafe { std::ptr::write_bytes(out.ptr.add(i * out.rs), 0, n) };
            }
        }
        apply_after(out, m, n, epi);
        return;
    }
    match level() {
        #[cfg(target_arch = "x86_64")]
        Level::Avx512 => drive::<Avx512Kernel>(a, b, out, m, n, k, accumulate, epi),
        #[cfg(target_arch = "x86_64")]
        Level::Avx2 => drive::<Avx2Kernel>(a, b, out, m, n, k, accumulate, epi),
        _ => drive::<ScalarKernel>(a, b, out, m, n, k, accumulate, epi),
    }
}

/// A register-blocked micro-kernel for one instruction set.
trait Kernel {
    /// Rows of a tile.
    const MR: usize;
    /// Columns of a tile.
    const NR: usize;
    /// `C[rows x cols] (+)= A·B` over `k` steps, then the epilogue, `A(r, p) = a[r * rsa + p * csa]`,
    /// `B(p, j) = b[p * rsb + j]`, `C(r, j) = c[r * rsc + j]`; `rows <= MR`, `cols <= NR`.
    ///
    /// # Safety
    /// The pointers must be valid for those elements, and the CPU must support the kernel.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tile(
        rows: usize,
        cols: usize,
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        rsb: usize,
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        epi: Epi,
    );

    /// `y (+)= x·B` for one row x of length k (a matrix-vector product), B with contiguous rows.
    ///
    /// # Safety
    /// As for `tile`, with `n` columns.
    #[allow(clippy::too_many_arguments)]
    unsafe fn row(n: usize, k: usize, x: *const f32, csx: usize, b: *const f32, rsb: usize, y: *mut f32, accumulate: bool) {
        let mut j = 0;
        while j < n {
            let cols = Self::NR.min(n - j);
            unsafe { Self::tile(1, cols, k, x, 1, csx, b.add(j), rsb, y.add(j), 0, accumulate, Epi::NONE) };
            j += Self::NR;
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn drive<K: Kernel>(a: MatRef<'_>, b: MatRef<'_>, c: COut, m: usize, n: usize, k: usize, accumulate: bool, epi: Epi) {
    if m == 1 && b.cs == 1 {
        // SAFETY: bounds checked by the views; one row of C of n floats.
        unsafe { K::row(n, k, a.ptr, a.cs, b.ptr, b.rs, c.ptr, accumulate) };
        apply_after(c, m, n, epi);
        return;
    }
    let threads = if m * n * k >= PARALLEL_MIN_MACS { pool::global().threads() } else { 1 };
    {
        let m_panels = m.div_ceil(K::MR);
        let n_panels = n.div_ceil(K::NR);
        let pack = b.cs != 1 || (m >= PACK_MIN_ROWS && k * n >= PACK_MIN_B);
        if threads == 1 {
            block::<K>(a, b, c, 0..m_panels, 0..n_panels, k, accumulate, pack, epi);
            return;
        }
        if !pack && m <= KSPLIT_MAX_ROWS && k >= KSPLIT_MIN_K * threads {
            split_k::<K>(a, b, c, m, n, k, threads, accumulate);
            apply_after(c, m, n, epi);
            return;
        }
        // A packed B is split along n, so that each task packs only its own panels; otherwise m,
        // which measured faster (tasks then share B's rows in cache).
        let split_n = if pack { n_panels >= threads || n_panels >= m_panels } else { m_panels < threads && n_panels > m_panels };
        let panels = if split_n { n_panels } else { m_panels };
        let tasks = threads.min(panels);
        pool::global().run(tasks, &|t| {
            let range = panels * t / tasks..panels * (t + 1) / tasks;
            if split_n {
                block::<K>(a, b, c, 0..m_panels, range, k, accumulate, pack, epi);
            } else {
                block::<K>(a, b, c, range, 0..n_panels, k, accumulate, pack, epi);
            }
        });
    }
}

/// `C (+)= A·B` with k split over the threads: task 0 accumulates into C, the others into
/// partial buffers that are then added to C in task order.
#[allow(clippy::too_many_arguments)]
fn split_k<K: Kernel>(a: MatRef<'_>, b: MatRef<'_>, c: COut, m: usize, n: usize, k: usize, tasks: usize, accumulate: bool) {
    PARTIALS.with_borrow_mut(|buf| {
        let len = (tasks - 1) * m * n;
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
        let partials = COut { ptr: buf.as_mut_ptr(), rs: n };
        let (m_panels, n_panels) = (m.div_ceil(K::MR), n.div_ceil(K::NR));
        pool::global().run(tasks, &|t| {
            let ks = k * t / tasks..k * (t + 1) / tasks;
            let (out, acc) = if t == 0 {
                (c, accumulate)
            } else {
                // SAFETY: task t owns partial t - 1, m * n floats inside buf.
                (unsafe { partials.offset((t - 1) * m * n) }, false)
            };
            block::<K>(a.col_range(ks.clone()), b.row_range(ks.clone()), out, 0..m_panels, 0..n_panels, ks.len(), acc, false, Epi::NONE);
        });
        for t in 1..tasks {
            let part = &buf[(t - 1) * m * n..t * m * n];
            for i in 0..m {
                // SAFETY: row i of C has n floats; no task is running.
                let row = unsafe { std::slice::from_raw_parts_mut(c.ptr.add(i * c.rs), n) };
                for (d, s) in row.iter_mut().zip(&part[i * n..(i + 1) * n]) {
                    *d += s;
                }
            }
        }
    });
}

/// Computes the tiles of C in the given row and column panel ranges.
#[allow(clippy::too_many_arguments)]
fn block<K: Kernel>(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: COut,
    mp: std::ops::Range<usize>,
    np: std::ops::Range<usize>,
    k: usize,
    accumulate: bool,
    packed_b: bool,
    epi: Epi,
) {
    if packed_b {
        PACK_B.with_borrow_mut(|bbuf| blocks::<K>(a, b, c, mp, np, k, accumulate, Some(bbuf), epi));
    } else {
        blocks::<K>(a, b, c, mp, np, k, accumulate, None, epi);
    }
}

/// The k blocks of [`block`]; B is packed into `bbuf` when given.
#[allow(clippy::too_many_arguments)]
fn blocks<K: Kernel>(
    a: MatRef<'_>,
    b: MatRef<'_>,
    c: COut,
    mp: std::ops::Range<usize>,
    np: std::ops::Range<usize>,
    k: usize,
    accumulate: bool,
    mut bbuf: Option<&mut Vec<f32>>,
    epi: Epi,
) {
    let (m, n) = (a.rows, b.cols);
    let j0 = np.start * K::NR;
    let j1 = (np.end * K::NR).min(n);
    let packed_b = bbuf.is_some();
    {
        let blocks = k.div_ceil(KC);
        for blk in 0..blocks {
            let (p0, p1) = (k * blk / blocks, k * (blk + 1) / blocks);
            let kc = p1 - p0;
            let acc = accumulate || p0 > 0;
            // The epilogue applies once C holds the whole sum, at the last block.
            let last = if p1 == k { epi } else { Epi::NONE };
            if let Some(buf) = bbuf.as_deref_mut() {
                pack_b::<K>(b, p0, kc, j0, j1, buf);
            }
            let bbase: *const f32 = bbuf.as_deref().map_or(std::ptr::null(), |v| v.as_ptr());
            // Where panel `jp`'s B lives for this k block: (pointer, row stride).
            let b_panel = |jp: usize| -> (*const f32, usize) {
                if packed_b {
                    // SAFETY: pack_b wrote (j1 - j0) / NR panels of kc x NR floats.
                    (unsafe { bbase.add((jp - np.start) * kc * K::NR) }, K::NR)
                } else {
                    // SAFETY: (p0, jp * NR) is inside B.
                    (unsafe { b.at(p0, jp * K::NR) }, b.rs)
                }
            };
            let tile = |ip: usize, jp: usize| {
                let (i, j) = (ip * K::MR, jp * K::NR);
                let (rows, cols) = (K::MR.min(m - i), K::NR.min(n - j));
                let (bp, rsb) = b_panel(jp);
                // SAFETY: (i, p0) is inside A; the tile (i.., j..) of rows x cols is inside C, and
                // the A and B panels cover kc steps.
                unsafe { K::tile(rows, cols, kc, a.at(i, p0), a.rs, a.cs, bp, rsb, c.ptr.add(i * c.rs + j), c.rs, acc, last.from(j)) };
            };
            if packed_b {
                // A's micro-panel stays in L1 while the packed block of B streams from L2.
                for ip in mp.clone() {
                    for jp in np.clone() {
                        tile(ip, jp);
                    }
                }
            } else {
                // B's panel, read in place, stays in cache while the row panels pass under it.
                for jp in np.clone() {
                    for ip in mp.clone() {
                        tile(ip, jp);
                    }
                }
            }
        }
    }
}

/// Packs rows `p0..p0 + kc` and columns `j0..j1` of B into `NR`-column panels, zero-padded.
fn pack_b<K: Kernel>(b: MatRef<'_>, p0: usize, kc: usize, j0: usize, j1: usize, buf: &mut Vec<f32>) {
    let panels = (j1 - j0).div_ceil(K::NR);
    let len = panels * kc * K::NR;
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    for jp in 0..panels {
        let dst = &mut buf[jp * kc * K::NR..(jp + 1) * kc * K::NR];
        let cols = K::NR.min(j1 - j0 - jp * K::NR);
        let j = j0 + jp * K::NR;
        if b.cs == 1 {
            // Rows of B are contiguous: copy `cols` floats per step of k.
            for p in 0..kc {
                // SAFETY: row p0 + p of B holds columns j..j + cols.
                let src = unsafe { std::slice::from_raw_parts(b.at(p0 + p, j), cols) };
                let d = &mut dst[p * K::NR..(p + 1) * K::NR];
                d[..cols].copy_from_slice(src);
                d[cols..].fill(0.0);
            }
            continue;
        }
        for jj in 0..K::NR {
            if jj < cols {
                for p in 0..kc {
                    // SAFETY: (p0 + p, j + jj) is inside B.
                    dst[p * K::NR + jj] = unsafe { *b.at(p0 + p, j + jj) };
                }
            } else {
                for p in 0..kc {
                    dst[p * K::NR + jj] = 0.0;
                }
            }
        }
    }
}

/// Portable kernel: 4 x 8 tiles.
struct ScalarKernel;

impl Kernel for ScalarKernel {
    const MR: usize = 4;
    const NR: usize = 8;
    unsafe fn tile(
        rows: usize,
        cols: usize,
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        rsb: usize,
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        epi: Epi,
    ) {
        let mut acc = [[0f32; 8]; 4];
        unsafe {
            for p in 0..k {
                for (r, row) in acc.iter_mut().enumerate().take(rows) {
                    let av = *a.add(p * csa + r * rsa);
                    for (j, v) in row.iter_mut().enumerate().take(cols) {
                        *v += av * *b.add(p * rsb + j);
                    }
                }
            }
            for (r, row) in acc.iter().enumerate().take(rows) {
                for (j, v) in row.iter().enumerate().take(cols) {
                    let dst = c.add(r * rsc + j);
                    let mut v = if accumulate { *dst + v } else { *v };
                    if !epi.bias.is_null() {
                        v += *epi.bias.add(j);
                    }
                    *dst = super::simd::activate(super::simd::Scalar, v, epi.act);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// AVX-512 kernel: 12 x 32 tiles (24 accumulators).
#[cfg(target_arch = "x86_64")]
struct Avx512Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512Kernel {
    const MR: usize = 12;
    const NR: usize = 32;
    unsafe fn tile(
        rows: usize,
        cols: usize,
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        rsb: usize,
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        epi: Epi,
    ) {
        unsafe {
            match rows {
                12 => avx512_rows::<12>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                11 => avx512_rows::<11>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                10 => avx512_rows::<10>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                9 => avx512_rows::<9>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                8 => avx512_rows::<8>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                7 => avx512_rows::<7>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                6 => avx512_rows::<6>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                5 => avx512_rows::<5>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                4 => avx512_rows::<4>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                3 => avx512_rows::<3>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                2 => avx512_rows::<2>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                _ => avx512_rows::<1>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
            }
        }
    }

    unsafe fn row(n: usize, k: usize, x: *const f32, csx: usize, b: *const f32, rsb: usize, y: *mut f32, accumulate: bool) {
        unsafe { avx512_row(n, k, x, csx, b, rsb, y, accumulate) }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask16(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { ((1u32 << n) - 1) as u16 }
}

/// Picks the A addressing: unit row stride (A transposed in memory) lets the compiler address
/// the R values of a step as one base and constant offsets.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_rows<const R: usize>(
    cols: usize,
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
    epi: Epi,
) {
    unsafe {
        if rsa == 1 {
            if cols < 32 && !epi.is_none() {
                avx512_tile::<R, true, true>(cols, k, a, 1, csa, b, rsb, c, rsc, accumulate, epi)
            } else {
                avx512_tile::<R, true, false>(cols, k, a, 1, csa, b, rsb, c, rsc, accumulate, epi)
            }
        } else if cols < 32 && !epi.is_none() {
            avx512_tile::<R, false, true>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi)
        } else {
            avx512_tile::<R, false, false>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments, clippy::needless_range_loop)]
unsafe fn avx512_tile<const R: usize, const UNIT: bool, const NARROW_EPILOGUE: bool>(
    cols: usize,
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
    epi: Epi,
) {
    let m0 = mask16(cols);
    let m1 = mask16(cols.saturating_sub(16));
    let mut c0 = [_mm512_setzero_ps(); R];
    let mut c1 = [_mm512_setzero_ps(); R];
    let (mut ap, mut bp) = (a, b);
    unsafe {
        if m1 == 0 {
            for _ in 0..k {
                let b0 = _mm512_maskz_loadu_ps(m0, bp);
                for r in 0..R {
                    let av = _mm512_set1_ps(*ap.add(if UNIT { r } else { r * rsa }));
                    c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                }
                ap = ap.add(csa);
                bp = bp.add(rsb);
            }
        } else if m1 == 0xffff {
            // Full width, unrolled by two steps of k.
            let mut steps = k;
            while steps >= 2 {
                let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
                let (b2, b3) = (_mm512_loadu_ps(bp.add(rsb)), _mm512_loadu_ps(bp.add(rsb + 16)));
                let ap2 = ap.add(csa);
                // One step for every row, then the next: an accumulator's two updates are a
                // whole step apart, not back to back (measured: 142 -> 151 GFLOP/s on one
                // thread at 1024^3, 153 -> 171 on a tile in L1).
                for r in 0..R {
                    let off = if UNIT { r } else { r * rsa };
                    let av = _mm512_set1_ps(*ap.add(off));
                    c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
                }
                for r in 0..R {
                    let off = if UNIT { r } else { r * rsa };
                    let av = _mm512_set1_ps(*ap2.add(off));
                    c0[r] = _mm512_fmadd_ps(av, b2, c0[r]);
                    c1[r] = _mm512_fmadd_ps(av, b3, c1[r]);
                }
                ap = ap2.add(csa);
                bp = bp.add(2 * rsb);
                steps -= 2;
            }
            if steps == 1 {
                let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
                for r in 0..R {
                    let av = _mm512_set1_ps(*ap.add(if UNIT { r } else { r * rsa }));
                    c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
                }
            }
        } else {
            for _ in 0..k {
                let b0 = _mm512_loadu_ps(bp);
                let b1 = _mm512_maskz_loadu_ps(m1, bp.add(16));
                for r in 0..R {
                    let av = _mm512_set1_ps(*ap.add(if UNIT { r } else { r * rsa }));
                    c0[r] = _mm512_fmadd_ps(av, b0, c0[r]);
                    c1[r] = _mm512_fmadd_ps(av, b1, c1[r]);
                }
                ap = ap.add(csa);
                bp = bp.add(rsb);
            }
        }
        // A narrow tile takes its epilogue in registers (re-reading masked stores would stall),
        // in an instance of its own; a full one after its store, from L1, so that the main
        // instance leaves every register to the accumulators.
        let narrow = NARROW_EPILOGUE;
        let s = Avx512::new();
        let (b0, b1) = if narrow && !epi.bias.is_null() {
            (_mm512_maskz_loadu_ps(m0, epi.bias), _mm512_maskz_loadu_ps(m1, epi.bias.add(16)))
        } else {
            (_mm512_setzero_ps(), _mm512_setzero_ps())
        };
        for r in 0..R {
            let cp = c.add(r * rsc);
            if accumulate {
                c0[r] = _mm512_add_ps(c0[r], _mm512_maskz_loadu_ps(m0, cp));
                c1[r] = _mm512_add_ps(c1[r], _mm512_maskz_loadu_ps(m1, cp.add(16)));
            }
            if narrow {
                c0[r] = activate(s, _mm512_add_ps(c0[r], b0), epi.act);
                if m1 != 0 {
                    c1[r] = activate(s, _mm512_add_ps(c1[r], b1), epi.act);
                }
            }
            _mm512_mask_storeu_ps(cp, m0, c0[r]);
            _mm512_mask_storeu_ps(cp.add(16), m1, c1[r]);
        }
        if !narrow && !epi.is_none() {
            avx512_epilogue(R, c, rsc, epi);
        }
    }
}

/// The epilogue on a full-width tile just stored (still in L1). Kept out of the micro-kernel,
/// whose registers all belong to the accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline(never)]
unsafe fn avx512_epilogue(rows: usize, c: *mut f32, rsc: usize, epi: Epi) {
    unsafe {
        let s = Avx512::new();
        let zero = _mm512_setzero_ps();
        let (b0, b1) = if epi.bias.is_null() { (zero, zero) } else { (_mm512_loadu_ps(epi.bias), _mm512_loadu_ps(epi.bias.add(16))) };
        for r in 0..rows {
            let cp = c.add(r * rsc);
            _mm512_storeu_ps(cp, activate(s, _mm512_add_ps(_mm512_loadu_ps(cp), b0), epi.act));
            _mm512_storeu_ps(cp.add(16), activate(s, _mm512_add_ps(_mm512_loadu_ps(cp.add(16)), b1), epi.act));
        }
    }
}

/// One row times B, 128 columns at a time. Rows of B whose x is zero are skipped (inputs such as
/// images and ReLU outputs are often half zeros): the non-zero positions are first compressed
/// into a list without branches, so that the loop over them has none either.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_row(n: usize, k: usize, x: *const f32, csx: usize, b: *const f32, rsb: usize, y: *mut f32, accumulate: bool) {
    const CHUNK: usize = 1024;
    let mut idx = [0u32; CHUNK];
    unsafe {
        let mut j = 0;
        while j < n {
            let w = 128.min(n - j);
            let mut acc = [_mm512_setzero_ps(); 8];
            let mut p0 = 0;
            while p0 < k {
                let len = CHUNK.min(k - p0);
                let count = nonzero_positions(x.add(p0 * csx), csx, len, &mut idx);
                let bp = b.add(p0 * rsb + j);
                if w == 128 {
                    for &p in &idx[..count] {
                        let xs = _mm512_set1_ps(*x.add((p0 + p as usize) * csx));
                        let row = bp.add(p as usize * rsb);
                        for (v, a) in acc.iter_mut().enumerate() {
                            *a = _mm512_fmadd_ps(xs, _mm512_loadu_ps(row.add(v * 16)), *a);
                        }
                    }
                } else {
                    let masks: [__mmask16; 8] = std::array::from_fn(|v| mask16(w.saturating_sub(v * 16)));
                    let vectors = w.div_ceil(16);
                    for &p in &idx[..count] {
                        let xs = _mm512_set1_ps(*x.add((p0 + p as usize) * csx));
                        let row = bp.add(p as usize * rsb);
                        for v in 0..vectors {
                            acc[v] = _mm512_fmadd_ps(xs, _mm512_maskz_loadu_ps(masks[v], row.add(v * 16)), acc[v]);
                        }
                    }
                }
                p0 += len;
            }
            for (v, a) in acc.iter_mut().enumerate().take(w.div_ceil(16)) {
                let m = mask16(w - v * 16);
                let yp = y.add(j + v * 16);
                if accumulate {
                    *a = _mm512_add_ps(*a, _mm512_maskz_loadu_ps(m, yp));
                }
                _mm512_mask_storeu_ps(yp, m, *a);
            }
            j += 128;
        }
    }
}

/// Writes the positions `p < len` where `x[p * csx] != 0` to `idx`; returns how many.
///
/// # Safety
/// `x` must be valid for `len` strided floats and `idx` at least `len` long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn nonzero_positions(x: *const f32, csx: usize, len: usize, idx: &mut [u32]) -> usize {
    let mut count = 0;
    let mut p = 0;
    unsafe {
        if csx == 1 {
            let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            while p + 16 <= len {
                let v = _mm512_loadu_ps(x.add(p));
                let nz = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(v, _mm512_setzero_ps());
                let pos = _mm512_add_epi32(lanes, _mm512_set1_epi32(p as i32));
                _mm512_mask_compressstoreu_epi32(idx.as_mut_ptr().add(count) as *mut _, nz, pos);
                count += nz.count_ones() as usize;
                p += 16;
            }
        }
        while p < len {
            // NaN compares unequal to zero, so it is kept and propagates.
            idx[count] = p as u32;
            count += usize::from(*x.add(p * csx) != 0.0);
            p += 1;
        }
    }
    count
}

/// AVX2 kernel: 6 x 16 tiles (12 accumulators).
#[cfg(target_arch = "x86_64")]
struct Avx2Kernel;

#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2Kernel {
    const MR: usize = 6;
    const NR: usize = 16;
    unsafe fn tile(
        rows: usize,
        cols: usize,
        k: usize,
        a: *const f32,
        rsa: usize,
        csa: usize,
        b: *const f32,
        rsb: usize,
        c: *mut f32,
        rsc: usize,
        accumulate: bool,
        epi: Epi,
    ) {
        unsafe {
            match rows {
                6 => avx2_tile::<6>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                5 => avx2_tile::<5>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                4 => avx2_tile::<4>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                3 => avx2_tile::<3>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                2 => avx2_tile::<2>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
                _ => avx2_tile::<1>(cols, k, a, rsa, csa, b, rsb, c, rsc, accumulate, epi),
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn mask8(n: usize) -> __m256i {
    const M: [i32; 16] = [-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0];
    let n = n.min(8);
    unsafe { _mm256_loadu_si256(M.as_ptr().add(8 - n) as *const __m256i) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn avx2_tile<const R: usize>(
    cols: usize,
    k: usize,
    a: *const f32,
    rsa: usize,
    csa: usize,
    b: *const f32,
    rsb: usize,
    c: *mut f32,
    rsc: usize,
    accumulate: bool,
    epi: Epi,
) {
    let m0 = mask8(cols);
    let m1 = mask8(cols.saturating_sub(8));
    let mut c0 = [_mm256_setzero_ps(); R];
    let mut c1 = [_mm256_setzero_ps(); R];
    let (mut ap, mut bp) = (a, b);
    unsafe {
        for _ in 0..k {
            let b0 = _mm256_maskload_ps(bp, m0);
            let b1 = _mm256_maskload_ps(bp.add(8), m1);
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ap.add(r * rsa));
                c0[r] = _mm256_fmadd_ps(av, b0, c0[r]);
                c1[r] = _mm256_fmadd_ps(av, b1, c1[r]);
            }
            ap = ap.add(csa);
            bp = bp.add(rsb);
        }
        for r in 0..R {
            let cp = c.add(r * rsc);
            if accumulate {
                c0[r] = _mm256_add_ps(c0[r], _mm256_maskload_ps(cp, m0));
                c1[r] = _mm256_add_ps(c1[r], _mm256_maskload_ps(cp.add(8), m1));
            }
            _mm256_maskstore_ps(cp, m0, c0[r]);
            _mm256_maskstore_ps(cp.add(8), m1, c1[r]);
        }
        if !epi.is_none() {
            avx2_epilogue(R, cols, c, rsc, epi);
        }
    }
}

/// The epilogue on a tile just stored, as [`avx512_epilogue`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline(never)]
unsafe fn avx2_epilogue(rows: usize, cols: usize, c: *mut f32, rsc: usize, epi: Epi) {
    let (m0, m1) = (mask8(cols), mask8(cols.saturating_sub(8)));
    unsafe {
        let s = Avx2::new();
        let zero = _mm256_setzero_ps();
        let (b0, b1) =
            if epi.bias.is_null() { (zero, zero) } else { (_mm256_maskload_ps(epi.bias, m0), _mm256_maskload_ps(epi.bias.add(8), m1)) };
        for r in 0..rows {
            let cp = c.add(r * rsc);
            _mm256_maskstore_ps(cp, m0, activate(s, _mm256_add_ps(_mm256_maskload_ps(cp, m0), b0), epi.act));
            _mm256_maskstore_ps(cp.add(8), m1, activate(s, _mm256_add_ps(_mm256_maskload_ps(cp.add(8), m1), b1), epi.act));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: MatRef<'_>, b: MatRef<'_>) -> Vec<f64> {
        let mut c = vec![0f64; a.rows * b.cols];
        for i in 0..a.rows {
            for j in 0..b.cols {
                let mut s = 0f64;
                for p in 0..a.cols {
                    s += unsafe { *a.at(i, p) as f64 * *b.at(p, j) as f64 };
                }
                c[i * b.cols + j] = s;
            }
        }
        c
    }

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn check(m: usize, n: usize, k: usize, ta: bool, tb: bool, accumulate: bool) {
        let av = data(m * k, 1);
        let bv = data(k * n, 2);
        let a = if ta { MatRef::row_major(&av, k, m).t() } else { MatRef::row_major(&av, m, k) };
        let b = if tb { MatRef::row_major(&bv, n, k).t() } else { MatRef::row_major(&bv, k, n) };
        let init = data(m * n, 3);
        let mut c = init.clone();
        gemm(a, b, MatMut::row_major(&mut c, m, n), accumulate);
        let want = naive(a, b);
        for idx in 0..m * n {
            let w = want[idx] + if accumulate { init[idx] as f64 } else { 0.0 };
            let tol = 1e-5 * (k as f64).sqrt() * 4.0 + 1e-6;
            assert!((c[idx] as f64 - w).abs() <= tol, "m={m} n={n} k={k} ta={ta} tb={tb} acc={accumulate} at {idx}: {} vs {w}", c[idx]);
        }
    }

    #[test]
    fn matches_naive_product_for_all_shapes_and_transposes() {
        for &(m, n, k) in &[
            (1, 1, 1),
            (1, 10, 7),
            (3, 5, 2),
            (12, 32, 9),
            (13, 33, 300),
            (32, 128, 784),
            (5, 1, 600),
            (64, 70, 3),
            (100, 200, 513),
            (1, 300, 40),
            (2, 130, 1),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for acc in [false, true] {
                        check(m, n, k, ta, tb, acc);
                    }
                }
            }
        }
    }

    #[test]
    fn one_row_skips_zeros_but_keeps_nans() {
        let k = 40;
        let mut x = vec![0f32; k];
        x[3] = 1.5;
        x[37] = -2.0;
        let b = data(k * 5, 9);
        let mut y = vec![0f32; 5];
        gemm(MatRef::row_major(&x, 1, k), MatRef::row_major(&b, k, 5), MatMut::row_major(&mut y, 1, 5), false);
        for j in 0..5 {
            assert!((y[j] - (1.5 * b[3 * 5 + j] - 2.0 * b[37 * 5 + j])).abs() < 1e-6);
        }
        x[20] = f32::NAN;
        gemm(MatRef::row_major(&x, 1, k), MatRef::row_major(&b, k, 5), MatMut::row_major(&mut y, 1, 5), false);
        assert!(y.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn epilogue_equals_product_then_bias_and_activation() {
        for &(m, n, k) in &[(1, 40, 30), (5, 3, 4), (13, 70, 600), (32, 128, 784), (100, 33, 20)] {
            let av = data(m * k, 11);
            let bv = data(k * n, 12);
            let bias = data(n, 13);
            for &(_, act) in Activation::NAMES {
                let (a, b) = (MatRef::row_major(&av, m, k), MatRef::row_major(&bv, k, n));
                let mut fused = vec![0f32; m * n];
                gemm_epilogue(a, b, MatMut::row_major(&mut fused, m, n), Epilogue { bias: Some(&bias), act });
                let mut plain = vec![0f32; m * n];
                gemm(a, b, MatMut::row_major(&mut plain, m, n), false);
                kernels::bias_act(&BiasAct { rows: m, cols: n, act }, &mut plain, Some(&bias), None);
                let worst = fused.iter().zip(&plain).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0f32, f32::max);
                assert!(worst < 1e-5, "{act:?} {m}x{n}x{k}: {worst}");
            }
        }
    }

    #[test]
    fn empty_k_zeroes_or_keeps_c() {
        let (a, b) = ([0f32; 0], [0f32; 0]);
        let mut c = vec![5.0f32; 6];
        gemm(MatRef::row_major(&a, 2, 0), MatRef::row_major(&b, 0, 3), MatMut::row_major(&mut c, 2, 3), true);
        assert_eq!(c, vec![5.0; 6]);
        gemm(MatRef::row_major(&a, 2, 0), MatRef::row_major(&b, 0, 3), MatMut::row_major(&mut c, 2, 3), false);
        assert_eq!(c, vec![0.0; 6]);
    }

    #[test]
    fn strided_c_leaves_gaps_alone() {
        let av = data(4 * 3, 4);
        let bv = data(3 * 5, 5);
        let mut c = vec![7.0f32; 4 * 8];
        gemm(MatRef::row_major(&av, 4, 3), MatRef::row_major(&bv, 3, 5), MatMut::new(&mut c, 4, 5, 8), false);
        for i in 0..4 {
            assert_eq!(&c[i * 8 + 5..i * 8 + 8], &[7.0; 3]);
        }
    }

    #[test]
    fn parallel_product_matches_row_by_row() {
        // The parallel tiled path against the one-row path, which sums in one pass.
        let (m, n, k) = (96, 256, 300);
        let av = data(m * k, 6);
        let bv = data(k * n, 7);
        let mut par = vec![0f32; m * n];
        gemm(MatRef::row_major(&av, m, k), MatRef::row_major(&bv, k, n), MatMut::row_major(&mut par, m, n), false);
        let mut rows = vec![0f32; m * n];
        for i in 0..m {
            gemm(MatRef::row_major(&av[i * k..], 1, k), MatRef::row_major(&bv, k, n), MatMut::row_major(&mut rows[i * n..], 1, n), false);
        }
        let max = par.iter().zip(&rows).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max < 1e-4, "{max}");
    }
}

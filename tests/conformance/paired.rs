//! Two backends run side by side and compared kernel by kernel: [`Paired`] is a test-only
//! backend (in the spirit of [`HostDevice`]) whose buffers and views are pairs, one half on
//! backend `A`, one on `B`. Every method of the core and of the eight op families is overridden
//! to issue the kernel on both; after each kernel, every output view (each `ViewMut` argument)
//! is read back from both sides and compared elementwise (see [`Tol`]), and then `A`'s result is
//! copied into `B`'s, so the next kernel starts from identical inputs on both. Differences
//! therefore cannot accumulate through a model or a training run: a mismatch names the one
//! kernel whose result differs, with its output, element and values, and is recorded with `A`'s
//! [`Device::fail`], so it surfaces (as a kernel error would) at the next download or sync.
//!
//! `upload` goes to both sides, `download` reads `A`'s: whatever a test checks on a `Paired` it
//! checks on `A`, and the comparison checks `B` against `A`. It runs the CUDA backend on the
//! emulator against the CPU (`cuda_emulated_vs_cpu`), and on a GPU the CUDA backend against the
//! emulator (`cuda_gpu_vs_emulated`, from `scripts/gpu-check.sh`), so a kernel that differs
//! only on the GPU is found by name. [`Paired::compared`] counts the comparisons per kernel, to
//! show that they ran.
//!
//! Random draws (dropout, Gaussian noise) are deterministic functions of the random-stream
//! buffer, which both sides hold identically, so they are compared like any other kernel.
//! A `Paired` does not record ([`Device::records`] is false), so a training loop issues every
//! step as it goes and every kernel is compared.
//!
//! [`HostDevice`]: crate::host_device::HostDevice

use keras::Error;
use keras::backend::{
    Activation, Affine, Backend, BatchStats, BiasAct, Border2d, Constraint, CopyCols, DenseOps, Depthwise, Device, Directions, Draw, Elu,
    Gemm, LayoutOps, Linear, LossBatch, MergeMode, MergeOp, MetricBatch, Norm, NormGrads, NormOps, ObjectiveOps, OptimizerOps, Permutation,
    Pool2d, PoolKind, Prelu, RandomOps, Recording, Regularizer, Relu, Repeat, Rescale, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo,
    Segment, SequenceOps, Standardize, Update, Upsample2d, Window2d, WindowOps,
};

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Relative tolerance of a comparison (about 800 ulps of f32).
pub const RTOL: f64 = 1e-4;
/// Absolute tolerance of a comparison: results near zero are compared at this scale.
pub const ATOL: f64 = 1e-6;

/// How a kernel's output is compared. NaN matches NaN (any payload) and an infinity only the
/// same infinity, except under [`Tol::Bits`].
///
/// The two backends do not round alike, and they are not expected to: a GEMM (cuBLAS or the
/// emulator's reference SGEMM against the CPU's blocked `matrixmultiply`, or cuBLAS against
/// the emulator) sums its products in another order and with or without fused multiply-adds;
/// a reduction (a column sum, a norm, a softmax's denominator, a mean) splits its terms across
/// threads and adds the partial sums in a tree; the GPU's `expf`, `tanhf`, `rsqrtf` differ
/// from the host's libm in the last bits. So beyond the kernels that only move values, results
/// agree within `|a - b| <= RTOL * max(|a|, |b|) + ATOL` ([`Tol::Elem`]); and for a sum the
/// rounding error is proportional to the size of its terms, not of its result (a sum that
/// cancels to nearly zero carries the error of its large terms), so sums compare at the scale
/// of the whole output ([`Tol::Sum`]). A real kernel bug (a wrong index, a missing term, a
/// wrong formula, a race) is off by much more than 1e-4 of that scale.
///
/// Measured over the whole suite with the emulator against the CPU (`PAIRED_REPORT=1`): no
/// kernel came within a tenth of its tolerance, and most agree bit for bit; under the plain
/// elementwise formula `gemm` and `depthwise_kernel_grad` would have failed (by 2.4x and 4.3x
/// on sums that cancel), which is why sums compare at the output's scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tol {
    /// Bit for bit: counters held as `u32` bit patterns in f32 slots (the random stream, the
    /// optimizer's step count), where a NaN pattern is a number like any other.
    Bits,
    /// The same value (`a == b`, so `-0 == 0`): kernels that only move values (copies,
    /// gathers, padding, permutations, a max).
    Same,
    /// `|a - b| <= RTOL * max(|a|, |b|) + ATOL`: elementwise arithmetic on identical inputs,
    /// which differs in the last bits only (contracted multiply-adds, libm functions).
    Elem,
    /// `|a - b| <= RTOL * max(|a|, |b|, scale) + ATOL`, `scale` the largest finite magnitude in
    /// the output on either side: sums, products of matrices, and what is computed from them.
    Sum,
}

impl Tol {
    /// Whether `b` agrees with `a`; `scale` as in [`Tol::Sum`].
    pub fn agree(self, a: f32, b: f32, scale: f64) -> bool {
        if self == Tol::Bits {
            return a.to_bits() == b.to_bits();
        }
        if a.is_nan() || b.is_nan() {
            return a.is_nan() && b.is_nan();
        }
        if self == Tol::Same || a.is_infinite() || b.is_infinite() {
            return a == b;
        }
        let (a, b) = (a as f64, b as f64);
        (a - b).abs() <= self.allowed(a, b, scale)
    }

    /// The difference of `b` from `a` as a fraction of what the tolerance allows, for the
    /// report (0 or infinite where values must match).
    pub fn ratio(self, a: f32, b: f32, scale: f64) -> f64 {
        if matches!(self, Tol::Bits | Tol::Same) || !(a.is_finite() && b.is_finite()) {
            return if self.agree(a, b, scale) { 0.0 } else { f64::INFINITY };
        }
        let (a, b) = (a as f64, b as f64);
        (a - b).abs() / self.allowed(a, b, scale)
    }

    /// The difference allowed between two finite values under [`Tol::Elem`] or [`Tol::Sum`].
    fn allowed(self, a: f64, b: f64, scale: f64) -> f64 {
        let size = a.abs().max(b.abs());
        RTOL * if self == Tol::Sum { size.max(scale) } else { size } + ATOL
    }
}

/// The comparisons of one kernel so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpStats {
    /// Kernel calls compared.
    pub calls: usize,
    /// Output elements compared.
    pub elements: usize,
    /// Elements that differed at all (bit patterns, NaN payloads aside).
    pub differed: usize,
    /// The largest difference as a fraction of the tolerance applied (above 1 fails).
    pub worst: f64,
    /// The largest difference as a fraction of the plain elementwise tolerance (see
    /// [`Tol::Elem`]): above 1 only for outputs compared as sums, where it shows why they are.
    pub worst_elem: f64,
}

/// Two backends run side by side, compared after every kernel (see the module's notes).
/// Cloning shares both backends and the counters.
#[derive(Clone, Debug)]
pub struct Paired<A: Backend, B: Backend> {
    a: A,
    b: B,
    ledger: Arc<Ledger>,
}

/// The comparisons of a [`Paired`] and its clones, per kernel. With `PAIRED_REPORT` set in the
/// environment, the table is printed when the last clone is dropped (after `-- --nocapture`, one
/// per test): how close each kernel's two results came.
#[derive(Debug, Default)]
struct Ledger {
    title: String,
    ops: Mutex<BTreeMap<&'static str, OpStats>>,
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let ops = self.ops.get_mut().unwrap_or_else(|e| e.into_inner());
        if std::env::var_os("PAIRED_REPORT").is_some() && !ops.is_empty() {
            eprintln!("{}\n{}", self.title, table(ops));
        }
    }
}

/// [`Paired::report`]'s table.
fn table(ops: &BTreeMap<&'static str, OpStats>) -> String {
    let mut out =
        format!("{:<26} {:>7} {:>10} {:>9} {:>10} {:>10}\n", "kernel", "calls", "elements", "differed", "worst/tol", "worst/elem");
    for (op, s) in ops {
        out += &format!("{op:<26} {:>7} {:>10} {:>9} {:>10.2e} {:>10.2e}\n", s.calls, s.elements, s.differed, s.worst, s.worst_elem);
    }
    out
}

/// A paired read-only view.
type Pv<'a, A, B> = (<A as Device>::View<'a>, <B as Device>::View<'a>);
/// A paired writable view.
type Pm<'a, A, B> = (<A as Device>::ViewMut<'a>, <B as Device>::ViewMut<'a>);
/// One output of a kernel to compare: its name, how, and its paired view (`None`: not given).
type Out<'s, A, B> = (&'static str, Tol, Option<Pm<'s, A, B>>);
/// A read-only view of device `D`.
type V<'a, D> = <D as Device>::View<'a>;
/// A writable view of device `D`.
type M<'a, D> = <D as Device>::ViewMut<'a>;

impl<A: Backend, B: Backend> Paired<A, B> {
    /// `b` checked against `a`, kernel by kernel; `a`'s results are the ones read.
    pub fn new(a: A, b: B) -> Self {
        let title = format!("kernel by kernel: {} (A) against {} (B)", a.describe(), b.describe());
        Paired { a, b, ledger: Arc::new(Ledger { title, ops: Mutex::default() }) }
    }

    /// Kernel calls compared so far, per kernel (by name, sorted).
    pub fn compared(&self) -> Vec<(&'static str, usize)> {
        self.stats().iter().map(|(&op, s)| (op, s.calls)).collect()
    }

    /// The comparisons so far, per kernel.
    pub fn stats(&self) -> BTreeMap<&'static str, OpStats> {
        self.ledger.ops.lock().unwrap().clone()
    }

    /// A table of the comparisons so far: per kernel, calls, elements, elements that differed,
    /// and the largest difference as a fraction of the tolerance applied and of the plain
    /// elementwise one.
    pub fn report(&self) -> String {
        format!("{}\n{}", self.ledger.title, table(&self.stats()))
    }

    /// The pair's first side, to issue a kernel on (see [`both!`]).
    fn first(&self) -> First<A, B> {
        First(PhantomData)
    }

    /// The pair's second side.
    fn second(&self) -> Second<A, B> {
        Second(PhantomData)
    }

    /// An output to compare.
    fn out<'s>(name: &'static str, tol: Tol, v: &'s mut Pm<'_, A, B>) -> Out<'s, A, B> {
        (name, tol, Some((A::reborrow(&mut v.0), B::reborrow(&mut v.1))))
    }

    /// An optional output to compare.
    fn opt<'s>(name: &'static str, tol: Tol, v: &'s mut Option<Pm<'_, A, B>>) -> Out<'s, A, B> {
        (name, tol, v.as_mut().map(|v| (A::reborrow(&mut v.0), B::reborrow(&mut v.1))))
    }

    /// After kernel `op` ran on both sides: compares each output and copies `A`'s into `B`'s.
    fn check<'s>(&self, op: &'static str, outs: impl IntoIterator<Item = Out<'s, A, B>>) {
        let mut compared = false;
        for (i, (name, tol, view)) in outs.into_iter().enumerate() {
            if let Some(mut view) = view {
                self.compare(op, i, name, tol, &mut view);
                compared = true;
            }
        }
        self.ledger.ops.lock().unwrap().entry(op).or_default().calls += usize::from(compared);
    }

    /// Compares output `index` (`name`) of kernel `op` on both sides; on a mismatch records a
    /// failure naming the first element that differs; then makes `B`'s copy equal to `A`'s.
    fn compare(&self, op: &'static str, index: usize, name: &'static str, tol: Tol, view: &mut Pm<'_, A, B>) {
        let Some(a) = read(&self.a, A::freeze(&view.0), |e| self.a.fail(e)) else { return };
        let Some(b) = read(&self.b, B::freeze(&view.1), |e| self.a.fail(self.b_error(e))) else { return };
        let n = a.len();
        let scale = a.iter().chain(&b).filter(|x| x.is_finite()).fold(0.0f64, |m, &x| m.max((x as f64).abs()));
        let (mut first_bad, mut bad, mut differed, mut worst, mut worst_elem) = (None, 0usize, 0usize, 0.0f64, 0.0f64);
        for (i, (&x, &y)) in a.iter().zip(&b).enumerate() {
            if x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan() && tol != Tol::Bits) {
                continue;
            }
            differed += 1;
            worst = worst.max(tol.ratio(x, y, scale));
            worst_elem = worst_elem.max(Tol::Elem.ratio(x, y, scale));
            if !tol.agree(x, y, scale) {
                bad += 1;
                first_bad.get_or_insert(i);
            }
        }
        {
            let mut stats = self.ledger.ops.lock().unwrap();
            let s = stats.entry(op).or_default();
            s.elements += n;
            s.differed += differed;
            s.worst = s.worst.max(worst);
            s.worst_elem = s.worst_elem.max(worst_elem);
        }
        if let Some(i) = first_bad {
            let (x, y) = (a[i], b[i]);
            let how = match tol {
                Tol::Bits => "bit for bit".to_string(),
                Tol::Same => "the same value".to_string(),
                Tol::Elem => format!("within {RTOL:e} relative + {ATOL:e}"),
                Tol::Sum => format!("within {RTOL:e} of max(|a|, |b|, {scale:e}) + {ATOL:e}"),
            };
            self.a.fail(Error::Device(format!(
                "paired backends disagree: {op}: output {index} ({name}) element {i} of {n}: {x} (A) vs {y} (B) \
                 [bits {:#010x} vs {:#010x}]; {bad} element(s) differ beyond the tolerance ({how}); A is {}, B is {}",
                x.to_bits(),
                y.to_bits(),
                self.a.describe(),
                self.b.describe(),
            )));
        }
        // From here on `B` holds `A`'s result (NaN payloads included).
        if a.iter().zip(&b).any(|(x, y)| x.to_bits() != y.to_bits())
            && let Err(e) = self.b.upload(&a, B::reborrow(&mut view.1))
        {
            self.a.fail(self.b_error(e));
        }
    }

    /// A failure of `B`, to be recorded on `A`.
    fn b_error(&self, e: Error) -> Error {
        Error::Device(format!("on the second backend ({}): {e}", self.b.describe()))
    }

    /// Moves the optimizer's state buffers out of their pairs, one list per side, for the
    /// families' `&mut [Buffer]` (zero-length buffers hold their places meanwhile); `None`, with
    /// the failure recorded and nothing moved, when a placeholder cannot be allocated.
    #[allow(clippy::type_complexity)]
    fn take_state(&self, state: &mut [(A::Buffer, B::Buffer)]) -> Option<(Vec<A::Buffer>, Vec<B::Buffer>)> {
        let mut taken = Vec::with_capacity(state.len());
        for pair in state.iter_mut() {
            match (self.a.alloc(0), self.b.alloc(0)) {
                (Ok(a), Ok(b)) => taken.push(std::mem::replace(pair, (a, b))),
                (Err(e), _) | (_, Err(e)) => {
                    for (p, t) in state.iter_mut().zip(taken) {
                        *p = t;
                    }
                    self.a.fail(e);
                    return None;
                }
            }
        }
        Some(taken.into_iter().unzip())
    }
}

/// A view's contents on `dev`. A read returns (and so takes) a failure recorded earlier, by this
/// kernel or another: the read is tried once more, so the comparison goes on, and `keep` then
/// records the failure again, to surface at the test's next read. `None` when the second read
/// fails too.
fn read<D: Device>(dev: &D, v: D::View<'_>, keep: impl Fn(Error)) -> Option<Vec<f32>> {
    let mut host = vec![0.0; D::view_len(v)];
    let Err(first) = dev.download(v, &mut host) else { return Some(host) };
    let again = dev.download(v, &mut host);
    keep(first);
    match again {
        Ok(()) => Some(host),
        Err(e) => {
            keep(e);
            None
        }
    }
}

/// One side of a [`Paired`], to issue a kernel on: its device, and its half of each paired view
/// and of the structs that carry views. [`First`] is `A`, [`Second`] is `B`.
trait Side<A: Backend, B: Backend>: Copy {
    /// The side's backend.
    type D: Backend;
    /// The side's device.
    fn dev(self, p: &Paired<A, B>) -> &Self::D;
    /// The side's half of a view.
    fn v<'a>(self, v: Pv<'a, A, B>) -> V<'a, Self::D>;
    /// The side's half of a writable view, reborrowed (the pair stays usable for the check).
    fn m<'s>(self, v: &'s mut Pm<'_, A, B>) -> M<'s, Self::D>;
    /// The side's half of a pair of index buffers.
    fn idx(self, i: &(A::Indices, B::Indices)) -> &<Self::D as Device>::Indices;
    /// The side's list of the two.
    fn pick<'x>(self, a: &'x mut [A::Buffer], b: &'x mut [B::Buffer]) -> &'x mut [<Self::D as Device>::Buffer];

    /// The side's half of an optional view.
    fn ov<'a>(self, v: Option<Pv<'a, A, B>>) -> Option<V<'a, Self::D>> {
        v.map(|v| self.v(v))
    }

    /// The side's half of an optional writable view.
    fn om<'s>(self, v: &'s mut Option<Pm<'_, A, B>>) -> Option<M<'s, Self::D>> {
        v.as_mut().map(|v| self.m(v))
    }

    /// The side's halves of a list of views.
    fn vs<'a>(self, xs: &[Pv<'a, A, B>]) -> Vec<V<'a, Self::D>> {
        xs.iter().map(|&x| self.v(x)).collect()
    }

    /// The side's half of each of the views below (a kernel's views that travel together).
    fn affine<'a>(self, a: &Affine<Pv<'a, A, B>>) -> Affine<V<'a, Self::D>> {
        Affine { gamma: self.ov(a.gamma), beta: self.ov(a.beta) }
    }

    fn batch_stats<'a>(self, s: &BatchStats<Pv<'a, A, B>>) -> BatchStats<V<'a, Self::D>> {
        BatchStats { mean: self.v(s.mean), inv: self.v(s.inv) }
    }

    fn norm_grads<'s>(self, g: &'s mut NormGrads<Pm<'_, A, B>>) -> NormGrads<M<'s, Self::D>> {
        NormGrads { dgamma: self.om(&mut g.dgamma), dbeta: self.om(&mut g.dbeta), dx: self.om(&mut g.dx) }
    }

    fn rnn_io<'a, 's>(self, io: &'s mut RnnStepIo<Pv<'a, A, B>, Pm<'_, A, B>>) -> RnnStepIo<V<'a, Self::D>, M<'s, Self::D>> {
        RnnStepIo {
            xw: self.v(io.xw),
            hu: self.ov(io.hu),
            rbias: self.ov(io.rbias),
            prev: io.prev.map(|(h, p)| (self.v(h), self.v(p))),
            pre: self.m(&mut io.pre),
            post: self.m(&mut io.post),
            h: self.m(&mut io.h),
            y: self.m(&mut io.y),
        }
    }

    fn rnn_grads<'a, 's>(self, g: &'s mut RnnStepGrads<Pv<'a, A, B>, Pm<'_, A, B>>) -> RnnStepGrads<V<'a, Self::D>, M<'s, Self::D>> {
        RnnStepGrads {
            dy: self.v(g.dy),
            pre: self.v(g.pre),
            post: self.v(g.post),
            prev: g.prev.map(|(h, p)| (self.v(h), self.v(p))),
            dh: self.m(&mut g.dh),
            dc: self.m(&mut g.dc),
            dxw: self.m(&mut g.dxw),
            dhu: self.m(&mut g.dhu),
            tmp: self.m(&mut g.tmp),
            dbias: self.om(&mut g.dbias),
            drbias: self.om(&mut g.drbias),
        }
    }

    fn rnn_reset_grads<'a, 's>(
        self,
        g: &'s mut RnnResetGrads<Pv<'a, A, B>, Pm<'_, A, B>>,
    ) -> RnnResetGrads<V<'a, Self::D>, M<'s, Self::D>> {
        RnnResetGrads {
            drh: self.ov(g.drh),
            pre: self.v(g.pre),
            post: self.v(g.post),
            h: self.ov(g.h),
            dh: self.m(&mut g.dh),
            dxw: self.m(&mut g.dxw),
            dhu: self.m(&mut g.dhu),
            dbias: self.om(&mut g.dbias),
        }
    }
}

/// Side `A` of a [`Paired`].
struct First<A, B>(PhantomData<fn() -> (A, B)>);
/// Side `B` of a [`Paired`].
struct Second<A, B>(PhantomData<fn() -> (A, B)>);

impl<A, B> Clone for First<A, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, B> Copy for First<A, B> {}
impl<A, B> Clone for Second<A, B> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<A, B> Copy for Second<A, B> {}

impl<A: Backend, B: Backend> Side<A, B> for First<A, B> {
    type D = A;
    fn dev(self, p: &Paired<A, B>) -> &A {
        &p.a
    }
    fn v<'a>(self, v: Pv<'a, A, B>) -> A::View<'a> {
        v.0
    }
    fn m<'s>(self, v: &'s mut Pm<'_, A, B>) -> A::ViewMut<'s> {
        A::reborrow(&mut v.0)
    }
    fn idx(self, i: &(A::Indices, B::Indices)) -> &A::Indices {
        &i.0
    }
    fn pick<'x>(self, a: &'x mut [A::Buffer], _: &'x mut [B::Buffer]) -> &'x mut [A::Buffer] {
        a
    }
}

impl<A: Backend, B: Backend> Side<A, B> for Second<A, B> {
    type D = B;
    fn dev(self, p: &Paired<A, B>) -> &B {
        &p.b
    }
    fn v<'a>(self, v: Pv<'a, A, B>) -> B::View<'a> {
        v.1
    }
    fn m<'s>(self, v: &'s mut Pm<'_, A, B>) -> B::ViewMut<'s> {
        B::reborrow(&mut v.1)
    }
    fn idx(self, i: &(A::Indices, B::Indices)) -> &B::Indices {
        &i.1
    }
    fn pick<'x>(self, _: &'x mut [A::Buffer], b: &'x mut [B::Buffer]) -> &'x mut [B::Buffer] {
        b
    }
}

/// `both!(self, |d, s| d.kernel(.., s.v(x), s.m(&mut y)))`: issues the kernel on side `A`, then
/// the same expression on side `B` (`d` the side's device, `s` the [`Side`] that picks its half
/// of each paired argument).
macro_rules! both {
    ($p:expr, |$d:ident, $s:ident| $body:expr) => {{
        {
            let $s = $p.first();
            let $d = $s.dev($p);
            $body;
        }
        {
            let $s = $p.second();
            let $d = $s.dev($p);
            $body;
        }
    }};
}

impl<A: Backend, B: Backend> Device for Paired<A, B> {
    type Buffer = (A::Buffer, B::Buffer);
    type View<'a> = Pv<'a, A, B>;
    type ViewMut<'a> = Pm<'a, A, B>;
    type Indices = (A::Indices, B::Indices);

    fn describe(&self) -> String {
        format!("paired: {} (A) against {} (B)", self.a.describe(), self.b.describe())
    }

    fn alloc(&self, len: usize) -> keras::Result<Self::Buffer> {
        Ok((self.a.alloc(len)?, self.b.alloc(len).map_err(|e| self.b_error(e))?))
    }

    fn len(buf: &Self::Buffer) -> usize {
        A::len(&buf.0)
    }

    fn view(buf: &Self::Buffer, range: Range<usize>) -> Self::View<'_> {
        (A::view(&buf.0, range.clone()), B::view(&buf.1, range))
    }

    fn view_mut(buf: &mut Self::Buffer, range: Range<usize>) -> Self::ViewMut<'_> {
        (A::view_mut(&mut buf.0, range.clone()), B::view_mut(&mut buf.1, range))
    }

    fn view_len(v: Self::View<'_>) -> usize {
        A::view_len(v.0)
    }

    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a> {
        (A::sub(v.0, range.clone()), B::sub(v.1, range))
    }

    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        let ((a0, a1), (b0, b1)) = (A::split_mut(v.0, mid), B::split_mut(v.1, mid));
        ((a0, b0), (a1, b1))
    }

    fn reborrow<'s>(v: &'s mut Self::ViewMut<'_>) -> Self::ViewMut<'s> {
        (A::reborrow(&mut v.0), B::reborrow(&mut v.1))
    }

    fn freeze<'s>(v: &'s Self::ViewMut<'_>) -> Self::View<'s> {
        (A::freeze(&v.0), B::freeze(&v.1))
    }

    fn shorten<'s>(v: &'s Self::View<'_>) -> Self::View<'s> {
        (A::shorten(&v.0), B::shorten(&v.1))
    }

    /// Host memory in place where both sides read it so.
    fn host_view<'a>(&self, data: &'a [f32]) -> Option<Self::View<'a>> {
        Some((self.a.host_view(data)?, self.b.host_view(data)?))
    }

    fn upload(&self, src: &[f32], dst: Self::ViewMut<'_>) -> keras::Result<()> {
        self.a.upload(src, dst.0)?;
        self.b.upload(src, dst.1).map_err(|e| self.b_error(e))
    }

    /// `A`'s values, after both sides' work; a failure recorded on either side.
    fn download(&self, src: Self::View<'_>, dst: &mut [f32]) -> keras::Result<()> {
        let b = self.b.sync().map_err(|e| self.b_error(e));
        self.a.download(src.0, dst)?;
        b
    }

    fn sync(&self) -> keras::Result<()> {
        let b = self.b.sync().map_err(|e| self.b_error(e));
        self.a.sync()?;
        b
    }

    /// Recorded on `A`, like the comparisons' failures (the first one wins).
    fn fail(&self, error: Error) {
        self.a.fail(error);
    }

    fn copy(&self, src: Self::View<'_>, mut dst: Self::ViewMut<'_>) {
        both!(self, |d, s| d.copy(s.v(src), s.m(&mut dst)));
        self.check("copy", [Self::out("dst", Tol::Same, &mut dst)]);
    }

    fn fill(&self, mut dst: Self::ViewMut<'_>, value: f32) {
        both!(self, |d, s| d.fill(s.m(&mut dst), value));
        self.check("fill", [Self::out("dst", Tol::Same, &mut dst)]);
    }

    fn gemm(&self, g: &Gemm, a: Self::View<'_>, b: Self::View<'_>, mut c: Self::ViewMut<'_>) {
        both!(self, |d, s| d.gemm(g, s.v(a), s.v(b), s.m(&mut c)));
        self.check("gemm", [Self::out("c", Tol::Sum, &mut c)]);
    }

    fn add(&self, src: Self::View<'_>, mut dst: Self::ViewMut<'_>) {
        both!(self, |d, s| d.add(s.v(src), s.m(&mut dst)));
        self.check("add", [Self::out("dst", Tol::Elem, &mut dst)]);
    }

    fn scale(&self, mut v: Self::ViewMut<'_>, factor: f32) {
        both!(self, |d, s| d.scale(s.m(&mut v), factor));
        self.check("scale", [Self::out("v", Tol::Elem, &mut v)]);
    }

    fn multiply(&self, a: Self::View<'_>, b: Self::View<'_>, mut out: Self::ViewMut<'_>) {
        both!(self, |d, s| d.multiply(s.v(a), s.v(b), s.m(&mut out)));
        self.check("multiply", [Self::out("out", Tol::Elem, &mut out)]);
    }

    fn alloc_indices(&self, len: usize) -> keras::Result<Self::Indices> {
        Ok((self.a.alloc_indices(len)?, self.b.alloc_indices(len).map_err(|e| self.b_error(e))?))
    }

    fn upload_indices(&self, src: &[usize], dst: &mut Self::Indices) -> keras::Result<()> {
        self.a.upload_indices(src, &mut dst.0)?;
        self.b.upload_indices(src, &mut dst.1).map_err(|e| self.b_error(e))
    }

    fn gather_rows(&self, src: Self::View<'_>, row_len: usize, indices: &Self::Indices, range: Range<usize>, mut dst: Self::ViewMut<'_>) {
        both!(self, |d, s| d.gather_rows(s.v(src), row_len, s.idx(indices), range.clone(), s.m(&mut dst)));
        self.check("gather_rows", [Self::out("dst", Tol::Same, &mut dst)]);
    }

    // A pair does not record: each kernel is compared as it is issued, which needs reads a
    // recording could not hold. So the training loop never captures, and no round trips are
    // counted (as on any device that does not record).
    fn round_trips(&self) -> u64 {
        0
    }

    fn records(&self) -> bool {
        false
    }

    fn begin_capture(&self) -> keras::Result<bool> {
        Ok(false)
    }

    fn end_capture(&self) -> keras::Result<Option<Recording>> {
        Ok(None)
    }

    fn replay(&self, _: &Recording) -> keras::Result<bool> {
        Ok(false)
    }
}

/// How an activation's backward pass compares: softmax's subtracts a row's weighted sum.
fn act_backward_tol(act: Activation) -> Tol {
    if act == Activation::Softmax { Tol::Sum } else { Tol::Elem }
}

impl<A: Backend, B: Backend> DenseOps for Paired<A, B> {
    fn linear(
        &self,
        l: &Linear,
        x: Self::View<'_>,
        w: Self::View<'_>,
        bias: Option<Self::View<'_>>,
        mut y: Self::ViewMut<'_>,
        mut pre: Option<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.linear(l, s.v(x), s.v(w), s.ov(bias), s.m(&mut y), s.om(&mut pre)));
        self.check("linear", [Self::out("y", Tol::Sum, &mut y), Self::opt("pre", Tol::Sum, &mut pre)]);
    }

    fn bias_act(&self, a: &BiasAct, mut y: Self::ViewMut<'_>, bias: Option<Self::View<'_>>, mut pre: Option<Self::ViewMut<'_>>) {
        both!(self, |d, s| d.bias_act(a, s.m(&mut y), s.ov(bias), s.om(&mut pre)));
        self.check("bias_act", [Self::out("y", Tol::Elem, &mut y), Self::opt("pre", Tol::Elem, &mut pre)]);
    }

    fn act_backward(
        &self,
        a: &BiasAct,
        mut g: Self::ViewMut<'_>,
        y: Self::View<'_>,
        pre: Option<Self::View<'_>>,
        mut dbias: Option<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.act_backward(a, s.m(&mut g), s.v(y), s.ov(pre), s.om(&mut dbias)));
        self.check("act_backward", [Self::out("g", act_backward_tol(a.act), &mut g), Self::opt("dbias", Tol::Sum, &mut dbias)]);
    }

    fn relu(&self, r: &Relu, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.relu(r, s.v(x), s.m(&mut y)));
        self.check("relu", [Self::out("y", Tol::Same, &mut y)]);
    }

    fn relu_backward(&self, r: &Relu, x: Self::View<'_>, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.relu_backward(r, s.v(x), s.v(dy), s.m(&mut dx)));
        self.check("relu_backward", [Self::out("dx", Tol::Same, &mut dx)]);
    }

    fn elu(&self, e: &Elu, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.elu(e, s.v(x), s.m(&mut y)));
        self.check("elu", [Self::out("y", Tol::Elem, &mut y)]);
    }

    fn elu_backward(&self, e: &Elu, x: Self::View<'_>, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.elu_backward(e, s.v(x), s.v(dy), s.m(&mut dx)));
        self.check("elu_backward", [Self::out("dx", Tol::Elem, &mut dx)]);
    }

    fn prelu(&self, p: &Prelu, x: Self::View<'_>, alpha: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.prelu(p, s.v(x), s.v(alpha), s.m(&mut y)));
        self.check("prelu", [Self::out("y", Tol::Same, &mut y)]);
    }

    fn prelu_backward(&self, p: &Prelu, x: Self::View<'_>, alpha: Self::View<'_>, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.prelu_backward(p, s.v(x), s.v(alpha), s.v(dy), s.m(&mut dx)));
        self.check("prelu_backward", [Self::out("dx", Tol::Same, &mut dx)]);
    }

    // Summed in the same order on every backend, each product rounded: the same value.
    fn prelu_alpha_grad(&self, p: &Prelu, x: Self::View<'_>, dy: Self::View<'_>, mut dalpha: Self::ViewMut<'_>) {
        both!(self, |d, s| d.prelu_alpha_grad(p, s.v(x), s.v(dy), s.m(&mut dalpha)));
        self.check("prelu_alpha_grad", [Self::out("dalpha", Tol::Same, &mut dalpha)]);
    }
}

impl<A: Backend, B: Backend> NormOps for Paired<A, B> {
    fn moments(&self, n: &Norm, x: Self::View<'_>, mut mean: Self::ViewMut<'_>, mut var: Self::ViewMut<'_>) {
        both!(self, |d, s| d.moments(n, s.v(x), s.m(&mut mean), s.m(&mut var)));
        self.check("moments", [Self::out("mean", Tol::Sum, &mut mean), Self::out("var", Tol::Sum, &mut var)]);
    }

    fn moving_average(&self, momentum: f32, mut moving: Self::ViewMut<'_>, value: Self::View<'_>) {
        both!(self, |d, s| d.moving_average(momentum, s.m(&mut moving), s.v(value)));
        self.check("moving_average", [Self::out("moving", Tol::Elem, &mut moving)]);
    }

    fn batch_norm(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        mean: Self::View<'_>,
        mut var: Self::ViewMut<'_>,
        affine: Affine<Self::View<'_>>,
        mut y: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.batch_norm(n, s.v(x), s.v(mean), s.m(&mut var), s.affine(&affine), s.m(&mut y)));
        // `var` becomes `1 / sqrt(var + epsilon)` elementwise; `y = x s + (beta - mean s)`
        // cancels where `x` is near the mean.
        self.check("batch_norm", [Self::out("var (inv)", Tol::Elem, &mut var), Self::out("y", Tol::Sum, &mut y)]);
    }

    fn batch_norm_backward(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        stats: BatchStats<Self::View<'_>>,
        gamma: Option<Self::View<'_>>,
        mut grads: NormGrads<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.batch_norm_backward(n, s.v(x), s.v(dy), s.batch_stats(&stats), s.ov(gamma), s.norm_grads(&mut grads)));
        self.check(
            "batch_norm_backward",
            [
                Self::opt("dgamma", Tol::Sum, &mut grads.dgamma),
                Self::opt("dbeta", Tol::Sum, &mut grads.dbeta),
                Self::opt("dx", Tol::Sum, &mut grads.dx),
            ],
        );
    }

    fn layer_norm(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        affine: Affine<Self::View<'_>>,
        mut y: Self::ViewMut<'_>,
        mut stats: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.layer_norm(n, s.v(x), s.affine(&affine), s.m(&mut y), s.m(&mut stats)));
        self.check("layer_norm", [Self::out("y", Tol::Sum, &mut y), Self::out("stats", Tol::Sum, &mut stats)]);
    }

    fn layer_norm_backward(
        &self,
        n: &Norm,
        x: Self::View<'_>,
        dy: Self::View<'_>,
        stats: Self::View<'_>,
        gamma: Option<Self::View<'_>>,
        mut grads: NormGrads<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.layer_norm_backward(n, s.v(x), s.v(dy), s.v(stats), s.ov(gamma), s.norm_grads(&mut grads)));
        self.check(
            "layer_norm_backward",
            [
                Self::opt("dgamma", Tol::Sum, &mut grads.dgamma),
                Self::opt("dbeta", Tol::Sum, &mut grads.dbeta),
                Self::opt("dx", Tol::Sum, &mut grads.dx),
            ],
        );
    }

    fn standardize(&self, st: &Standardize, x: Self::View<'_>, mean: Self::View<'_>, var: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.standardize(st, s.v(x), s.v(mean), s.v(var), s.m(&mut y)));
        self.check("standardize", [Self::out("y", Tol::Elem, &mut y)]);
    }

    fn standardize_backward(&self, st: &Standardize, var: Self::View<'_>, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.standardize_backward(st, s.v(var), s.v(dy), s.m(&mut dx)));
        self.check("standardize_backward", [Self::out("dx", Tol::Elem, &mut dx)]);
    }

    fn rescale(&self, r: &Rescale, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.rescale(r, s.v(x), s.m(&mut y)));
        self.check("rescale", [Self::out("y", Tol::Elem, &mut y)]);
    }
}

impl<A: Backend, B: Backend> WindowOps for Paired<A, B> {
    fn im2col(&self, g: &Window2d, batch: usize, x: Self::View<'_>, mut cols: Self::ViewMut<'_>) {
        both!(self, |d, s| d.im2col(g, batch, s.v(x), s.m(&mut cols)));
        self.check("im2col", [Self::out("cols", Tol::Same, &mut cols)]);
    }

    fn col2im(&self, g: &Window2d, batch: usize, cols: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.col2im(g, batch, s.v(cols), s.m(&mut dx)));
        self.check("col2im", [Self::out("dx", Tol::Sum, &mut dx)]);
    }

    fn depthwise(&self, dw: &Depthwise, cols: Self::View<'_>, kernel: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.depthwise(dw, s.v(cols), s.v(kernel), s.m(&mut y)));
        self.check("depthwise", [Self::out("y", Tol::Sum, &mut y)]);
    }

    // `cols` is scratch (the CPU leaves it, others fill it): only `y` is compared.
    fn depthwise_conv(
        &self,
        g: &Window2d,
        dw: &Depthwise,
        batch: usize,
        x: Self::View<'_>,
        kernel: Self::View<'_>,
        mut cols: Self::ViewMut<'_>,
        mut y: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.depthwise_conv(g, dw, batch, s.v(x), s.v(kernel), s.m(&mut cols), s.m(&mut y)));
        self.check("depthwise_conv", [Self::out("y", Tol::Sum, &mut y)]);
    }

    fn depthwise_kernel_grad(&self, dw: &Depthwise, cols: Self::View<'_>, dy: Self::View<'_>, mut dkernel: Self::ViewMut<'_>) {
        both!(self, |d, s| d.depthwise_kernel_grad(dw, s.v(cols), s.v(dy), s.m(&mut dkernel)));
        self.check("depthwise_kernel_grad", [Self::out("dkernel", Tol::Sum, &mut dkernel)]);
    }

    fn depthwise_input_grad(&self, dw: &Depthwise, kernel: Self::View<'_>, dy: Self::View<'_>, mut dcols: Self::ViewMut<'_>) {
        both!(self, |d, s| d.depthwise_input_grad(dw, s.v(kernel), s.v(dy), s.m(&mut dcols)));
        self.check("depthwise_input_grad", [Self::out("dcols", Tol::Sum, &mut dcols)]);
    }

    fn pool2d(&self, p: &Pool2d, batch: usize, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.pool2d(p, batch, s.v(x), s.m(&mut y)));
        let tol = if p.kind == PoolKind::Max { Tol::Same } else { Tol::Sum };
        self.check("pool2d", [Self::out("y", tol, &mut y)]);
    }

    fn pool2d_backward(
        &self,
        p: &Pool2d,
        batch: usize,
        x: Self::View<'_>,
        y: Self::View<'_>,
        dy: Self::View<'_>,
        mut dx: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.pool2d_backward(p, batch, s.v(x), s.v(y), s.v(dy), s.m(&mut dx)));
        // Overlapping windows add their gradients.
        self.check("pool2d_backward", [Self::out("dx", Tol::Sum, &mut dx)]);
    }
}

impl<A: Backend, B: Backend> SequenceOps for Paired<A, B> {
    fn embedding(&self, dim: usize, ids: Self::View<'_>, table: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.embedding(dim, s.v(ids), s.v(table), s.m(&mut y)));
        self.check("embedding", [Self::out("y", Tol::Same, &mut y)]);
    }

    fn embedding_backward(&self, dim: usize, ids: Self::View<'_>, dy: Self::View<'_>, mut dtable: Self::ViewMut<'_>) {
        both!(self, |d, s| d.embedding_backward(dim, s.v(ids), s.v(dy), s.m(&mut dtable)));
        self.check("embedding_backward", [Self::out("dtable", Tol::Sum, &mut dtable)]);
    }

    // The recurrent steps add the input projection, the recurrent product and a bias, and the
    // LSTM's cell state `f c + i g` cancels: sums.
    fn rnn_step(&self, st: &RnnStep, mut io: RnnStepIo<Self::View<'_>, Self::ViewMut<'_>>) {
        both!(self, |d, s| d.rnn_step(st, s.rnn_io(&mut io)));
        self.check(
            "rnn_step",
            [
                Self::out("pre", Tol::Sum, &mut io.pre),
                Self::out("post", Tol::Sum, &mut io.post),
                Self::out("h", Tol::Sum, &mut io.h),
                Self::out("y", Tol::Sum, &mut io.y),
            ],
        );
    }

    fn rnn_reset_state(&self, st: &RnnStep, xw: Self::View<'_>, hu: Self::View<'_>, h: Self::View<'_>, mut rh: Self::ViewMut<'_>) {
        both!(self, |d, s| d.rnn_reset_state(st, s.v(xw), s.v(hu), s.v(h), s.m(&mut rh)));
        self.check("rnn_reset_state", [Self::out("rh", Tol::Sum, &mut rh)]);
    }

    fn rnn_step_backward(&self, st: &RnnStep, mut g: RnnStepGrads<Self::View<'_>, Self::ViewMut<'_>>) {
        both!(self, |d, s| d.rnn_step_backward(st, s.rnn_grads(&mut g)));
        // `tmp` is working space: what a kernel leaves there is its own business, and nothing
        // reads it afterwards, so it is neither compared nor copied.
        self.check(
            "rnn_step_backward",
            [
                Self::out("dh", Tol::Sum, &mut g.dh),
                Self::out("dc", Tol::Sum, &mut g.dc),
                Self::out("dxw", Tol::Sum, &mut g.dxw),
                Self::out("dhu", Tol::Sum, &mut g.dhu),
                Self::opt("dbias", Tol::Sum, &mut g.dbias),
                Self::opt("drbias", Tol::Sum, &mut g.drbias),
            ],
        );
    }

    fn rnn_reset_state_backward(&self, st: &RnnStep, mut g: RnnResetGrads<Self::View<'_>, Self::ViewMut<'_>>) {
        both!(self, |d, s| d.rnn_reset_state_backward(st, s.rnn_reset_grads(&mut g)));
        self.check(
            "rnn_reset_state_backward",
            [
                Self::out("dh", Tol::Sum, &mut g.dh),
                Self::out("dxw", Tol::Sum, &mut g.dxw),
                Self::out("dhu", Tol::Sum, &mut g.dhu),
                Self::opt("dbias", Tol::Sum, &mut g.dbias),
            ],
        );
    }

    fn merge_directions(&self, dir: &Directions, fwd: Self::View<'_>, bwd: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.merge_directions(dir, s.v(fwd), s.v(bwd), s.m(&mut y)));
        let tol = if dir.mode == MergeMode::Concat { Tol::Same } else { Tol::Elem };
        self.check("merge_directions", [Self::out("y", tol, &mut y)]);
    }

    fn merge_directions_backward(
        &self,
        dir: &Directions,
        dy: Self::View<'_>,
        fwd: Self::View<'_>,
        bwd: Self::View<'_>,
        mut dfwd: Self::ViewMut<'_>,
        mut dbwd: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.merge_directions_backward(dir, s.v(dy), s.v(fwd), s.v(bwd), s.m(&mut dfwd), s.m(&mut dbwd)));
        let tol = if dir.mode == MergeMode::Concat { Tol::Same } else { Tol::Elem };
        self.check("merge_directions_backward", [Self::out("dfwd", tol, &mut dfwd), Self::out("dbwd", tol, &mut dbwd)]);
    }
}

impl<A: Backend, B: Backend> LayoutOps for Paired<A, B> {
    fn permute(&self, p: &Permutation, batch: usize, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.permute(p, batch, s.v(x), s.m(&mut y)));
        self.check("permute", [Self::out("y", Tol::Same, &mut y)]);
    }

    fn repeat(&self, r: &Repeat, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.repeat(r, s.v(x), s.m(&mut y)));
        self.check("repeat", [Self::out("y", Tol::Same, &mut y)]);
    }

    fn repeat_backward(&self, r: &Repeat, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.repeat_backward(r, s.v(dy), s.m(&mut dx)));
        self.check("repeat_backward", [Self::out("dx", Tol::Sum, &mut dx)]);
    }

    fn pad2d(&self, g: &Border2d, batch: usize, small: Self::View<'_>, mut large: Self::ViewMut<'_>) {
        both!(self, |d, s| d.pad2d(g, batch, s.v(small), s.m(&mut large)));
        self.check("pad2d", [Self::out("large", Tol::Same, &mut large)]);
    }

    fn crop2d(&self, g: &Border2d, batch: usize, large: Self::View<'_>, mut small: Self::ViewMut<'_>) {
        both!(self, |d, s| d.crop2d(g, batch, s.v(large), s.m(&mut small)));
        self.check("crop2d", [Self::out("small", Tol::Same, &mut small)]);
    }

    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: Self::View<'_>, mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.upsample2d(g, batch, s.v(x), s.m(&mut y)));
        let tol = if g.bilinear { Tol::Sum } else { Tol::Same };
        self.check("upsample2d", [Self::out("y", tol, &mut y)]);
    }

    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.upsample2d_backward(g, batch, s.v(dy), s.m(&mut dx)));
        self.check("upsample2d_backward", [Self::out("dx", Tol::Sum, &mut dx)]);
    }

    fn copy_cols(&self, c: &CopyCols, src: Self::View<'_>, mut dst: Self::ViewMut<'_>) {
        both!(self, |d, s| d.copy_cols(c, s.v(src), s.m(&mut dst)));
        self.check("copy_cols", [Self::out("dst", Tol::Same, &mut dst)]);
    }

    fn merge(&self, op: MergeOp, xs: &[Self::View<'_>], mut y: Self::ViewMut<'_>) {
        both!(self, |d, s| d.merge(op, &s.vs(xs), s.m(&mut y)));
        let tol = match op {
            MergeOp::Maximum | MergeOp::Minimum => Tol::Same,
            MergeOp::Multiply => Tol::Elem,
            MergeOp::Add | MergeOp::Subtract | MergeOp::Average => Tol::Sum,
        };
        self.check("merge", [Self::out("y", tol, &mut y)]);
    }

    fn merge_backward(
        &self,
        op: MergeOp,
        i: usize,
        xs: &[Self::View<'_>],
        y: Self::View<'_>,
        dy: Self::View<'_>,
        mut dx: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.merge_backward(op, i, &s.vs(xs), s.v(y), s.v(dy), s.m(&mut dx)));
        self.check("merge_backward", [Self::out("dx", Tol::Elem, &mut dx)]);
    }
}

impl<A: Backend, B: Backend> RandomOps for Paired<A, B> {
    fn dropout(&self, dr: &Draw, stream: Self::View<'_>, x: Self::View<'_>, mut y: Self::ViewMut<'_>, mut mask: Self::ViewMut<'_>) {
        both!(self, |d, s| d.dropout(dr, s.v(stream), s.v(x), s.m(&mut y), s.m(&mut mask)));
        self.check("dropout", [Self::out("y", Tol::Elem, &mut y), Self::out("mask", Tol::Same, &mut mask)]);
    }

    fn dropout_backward(&self, dr: &Draw, g: Self::View<'_>, mask: Self::View<'_>, mut dx: Self::ViewMut<'_>) {
        both!(self, |d, s| d.dropout_backward(dr, s.v(g), s.v(mask), s.m(&mut dx)));
        self.check("dropout_backward", [Self::out("dx", Tol::Elem, &mut dx)]);
    }

    fn gaussian_noise(
        &self,
        dr: &Draw,
        stream: Self::View<'_>,
        x: Self::View<'_>,
        mut y: Self::ViewMut<'_>,
        mut noise: Option<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.gaussian_noise(dr, s.v(stream), s.v(x), s.m(&mut y), s.om(&mut noise)));
        // The draws go through a logarithm and a cosine (the libms' last bits), and `x + rate n`
        // cancels.
        self.check("gaussian_noise", [Self::out("y", Tol::Sum, &mut y), Self::opt("noise", Tol::Elem, &mut noise)]);
    }

    fn advance(&self, mut stream: Self::ViewMut<'_>) {
        both!(self, |d, s| d.advance(s.m(&mut stream)));
        self.check("advance", [Self::out("stream", Tol::Bits, &mut stream)]);
    }
}

impl<A: Backend, B: Backend> ObjectiveOps for Paired<A, B> {
    fn loss(
        &self,
        l: &LossBatch,
        pred: Self::View<'_>,
        target: Self::View<'_>,
        weights: Option<Self::View<'_>>,
        mut grad: Option<Self::ViewMut<'_>>,
        mut stats: Self::ViewMut<'_>,
    ) {
        both!(self, |d, s| d.loss(l, s.v(pred), s.v(target), s.ov(weights), s.om(&mut grad), s.m(&mut stats)));
        self.check("loss", [Self::opt("grad", Tol::Sum, &mut grad), Self::out("stats", Tol::Sum, &mut stats)]);
    }

    fn metric(&self, m: &MetricBatch, pred: Self::View<'_>, target: Self::View<'_>, mut stats: Self::ViewMut<'_>) {
        both!(self, |d, s| d.metric(m, s.v(pred), s.v(target), s.m(&mut stats)));
        self.check("metric", [Self::out("stats", Tol::Sum, &mut stats)]);
    }

    fn regularize(
        &self,
        r: &Regularizer,
        w: Self::View<'_>,
        mut g: Option<Self::ViewMut<'_>>,
        scale: f32,
        mut stats: Option<Self::ViewMut<'_>>,
    ) {
        both!(self, |d, s| d.regularize(r, s.v(w), s.om(&mut g), scale, s.om(&mut stats)));
        self.check("regularize", [Self::opt("g", Tol::Sum, &mut g), Self::opt("stats", Tol::Sum, &mut stats)]);
    }
}

impl<A: Backend, B: Backend> OptimizerOps for Paired<A, B> {
    fn update(
        &self,
        u: &Update,
        tensors: &[Segment],
        mut params: Self::ViewMut<'_>,
        mut grads: Self::ViewMut<'_>,
        state: &mut [Self::Buffer],
        mut step: Self::ViewMut<'_>,
    ) {
        let Some((mut sa, mut sb)) = self.take_state(state) else { return };
        both!(self, |d, s| d.update(u, tensors, s.m(&mut params), s.m(&mut grads), s.pick(&mut sa, &mut sb), s.m(&mut step)));
        // The step buffer holds the step count as bit patterns, then the learning rate and
        // Nadam's product; `p - lr * u` cancels, and clipping by norm sums squares.
        let count = Self::view_len(Self::freeze(&step)).min(2);
        let (mut iterations, mut rates) = Self::split_mut(Self::reborrow(&mut step), count);
        let slots = u.rule.slots();
        let mut views: Vec<Pm<'_, A, B>> = sa
            .iter_mut()
            .zip(sb.iter_mut())
            .map(|(a, b)| {
                let n = A::len(a);
                (A::view_mut(a, 0..n), B::view_mut(b, 0..n))
            })
            .collect();
        let mut outs = vec![
            Self::out("params", Tol::Sum, &mut params),
            Self::out("grads", Tol::Sum, &mut grads),
            Self::out("step (iterations)", Tol::Bits, &mut iterations),
            Self::out("step (rates)", Tol::Elem, &mut rates),
        ];
        outs.extend(views.iter_mut().enumerate().map(|(i, v)| Self::out(slots.get(i).map_or("state", |s| s.0), Tol::Sum, v)));
        self.check("update", outs);
        drop(views);
        for (p, t) in state.iter_mut().zip(sa.into_iter().zip(sb)) {
            *p = t;
        }
    }

    fn constrain(&self, c: &Constraint, rows: usize, mut w: Self::ViewMut<'_>) {
        both!(self, |d, s| d.constrain(c, rows, s.m(&mut w)));
        self.check("constrain", [Self::out("w", Tol::Sum, &mut w)]);
    }
}

/// The comparison provably runs: training on the CUDA emulator against the CPU compares the
/// kernels of a dense network's forward and backward passes, its loss, metric and optimizer,
/// its dropout and batch normalization, and the device-side batching.
#[cfg(feature = "cuda")]
#[test]
fn cuda_emulated_vs_cpu_training_compares_every_kernel() {
    let dev = Paired::new(keras::backend::cuda::Cuda::emulated(), keras::Cpu::default());
    crate::fixtures::training_matches_the_cpu(&dev);
    let compared = dev.compared();
    eprintln!("{}", dev.report());
    let count = |op: &str| compared.iter().find(|(o, _)| *o == op).map_or(0, |(_, n)| *n);
    let expected = [
        "gemm",
        "linear",
        "act_backward",
        "loss",
        "metric",
        "update",
        "dropout",
        "dropout_backward",
        "advance",
        "moments",
        "batch_norm",
        "batch_norm_backward",
        "moving_average",
        "copy_cols",
        "gather_rows",
    ];
    let missing: Vec<&str> = expected.iter().copied().filter(|op| count(op) == 0).collect();
    assert!(missing.is_empty(), "kernels never compared: {missing:?}\n{}", dev.report());
    assert!(compared.iter().map(|(_, n)| n).sum::<usize>() > 500, "too few comparisons:\n{}", dev.report());
}

/// A difference is reported by kernel, output and element when the result is next read, and
/// `B` then holds `A`'s result, so the next kernel compares clean. (`B` is a [`HostDevice`],
/// whose failures are its own: the CPU's are per thread, shared by every `Cpu`.)
///
/// [`HostDevice`]: crate::host_device::HostDevice
#[test]
fn a_difference_names_its_kernel_and_is_then_healed() {
    use crate::host_device::HostDevice;
    use keras::Cpu;
    type P = Paired<Cpu, HostDevice>;
    let dev = P::new(Cpu::default(), HostDevice::default());
    let mut x = dev.alloc(4).unwrap();
    dev.upload(&[1.0, 2.0, 3.0, 4.0], P::view_mut(&mut x, 0..4)).unwrap();
    dev.b.upload(&[1.0, 2.0, 3.5, 4.0], HostDevice::view_mut(&mut x.1, 0..4)).unwrap(); // B diverges
    dev.scale(P::view_mut(&mut x, 0..4), 2.0);
    let mut host = [0.0; 4];
    let e = dev.download(P::view(&x, 0..4), &mut host).unwrap_err().to_string();
    assert!(e.contains("scale: output 0 (v) element 2 of 4: 6 (A) vs 7 (B)"), "{e}");
    dev.b.download(HostDevice::view(&x.1, 0..4), &mut host).unwrap();
    assert_eq!(host, [2.0, 4.0, 6.0, 8.0], "B holds A's result");
    dev.scale(P::view_mut(&mut x, 0..4), 0.5);
    dev.download(P::view(&x, 0..4), &mut host).unwrap();
    assert_eq!(host, [1.0, 2.0, 3.0, 4.0]);
    assert_eq!(dev.compared(), [("scale", 2)]);
    // A failure recorded before a kernel is not lost to the comparison's reads (and, the first
    // one, wins over the mismatch), and the comparison goes on: B is healed.
    dev.fail(Error::Config("first".to_string()));
    dev.b.upload(&[5.0], HostDevice::view_mut(&mut x.1, 0..1)).unwrap();
    dev.scale(P::view_mut(&mut x, 0..4), 1.0);
    assert!(dev.sync().unwrap_err().to_string().contains("first"));
    dev.sync().unwrap();
    dev.b.download(HostDevice::view(&x.1, 0..4), &mut host).unwrap();
    assert_eq!(host, [1.0, 2.0, 3.0, 4.0], "B holds A's result");
    // A failure of B's own surfaces too, named as B's.
    dev.b.fail(Error::Config("second".to_string()));
    let e = dev.download(P::view(&x, 0..4), &mut host).unwrap_err().to_string();
    assert!(e.contains("on the second backend") && e.contains("second"), "{e}");
    dev.sync().unwrap();
}

/// The tolerances: NaN meets NaN, an infinity the same infinity; elementwise at the values'
/// scale, sums at the output's; counters bit for bit.
#[test]
fn tolerances() {
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    for tol in [Tol::Same, Tol::Elem, Tol::Sum] {
        assert!(tol.agree(nan, -nan, 1.0) && !tol.agree(nan, 0.0, 1.0) && !tol.agree(1.0, nan, 1.0));
        assert!(tol.agree(inf, inf, 1.0) && !tol.agree(inf, -inf, 1.0) && !tol.agree(inf, f32::MAX, 1.0));
        assert!(tol.agree(0.0, -0.0, 1.0));
    }
    assert!(!Tol::Same.agree(1.0, 1.0 + f32::EPSILON, 1.0));
    assert!(Tol::Elem.agree(1.0, 1.00009, 0.0) && !Tol::Elem.agree(1.0, 1.00011, 0.0));
    assert!(Tol::Elem.agree(0.0, 9e-7, 0.0) && !Tol::Elem.agree(0.0, 1.1e-6, 0.0));
    assert!(!Tol::Elem.agree(1e-3, 1.1e-3, 10.0) && Tol::Sum.agree(1e-3, 1.1e-3, 10.0));
    assert!(!Tol::Sum.agree(1e-3, 2.1e-3, 10.0));
    let (a, b) = (f32::from_bits(0x7fc0_0001), f32::from_bits(0x7fc0_0002));
    assert!(Tol::Elem.agree(a, b, 0.0) && !Tol::Bits.agree(a, b, 0.0) && Tol::Bits.agree(a, a, 0.0));
    assert!(!Tol::Bits.agree(f32::from_bits(5), f32::from_bits(6), 0.0), "counters are bit patterns, not denormals");
    assert!((Tol::Elem.ratio(0.0, 5e-7, 0.0) - 0.5).abs() < 1e-3 && (Tol::Sum.ratio(0.0, 1e-4, 1.0) - 1e-4 / 1.01e-4).abs() < 1e-3);
    assert!(Tol::Same.ratio(1.0, 2.0, 0.0).is_infinite() && Tol::Bits.ratio(1.0, 1.0, 0.0) == 0.0);
}

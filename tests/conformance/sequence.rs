//! `SequenceOps`: embedding lookups, the recurrent layers' step kernels and `Bidirectional`'s
//! merge, against plain f64 references written here. The reference cells follow Keras 3's gate
//! layouts (see `CellKind`); their hand-derived gradients are checked against central
//! differences of the cells themselves before the kernels are held to them.

use crate::support::*;
use keras::backend::{Activation, Backend, CellKind, Directions, MergeMode, RnnCell, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo};

pub fn suite<B: Backend>(dev: &B) {
    embedding(dev);
    reference_cells();
    recurrent_steps(dev);
    merge_directions(dev);
}

/// The cells.
const KINDS: [CellKind; 4] = [CellKind::Simple, CellKind::Lstm, CellKind::Gru, CellKind::GruResetBefore];

/// `(activation, recurrent_activation)`: Keras's default; two with kinks (gates that saturate
/// exactly); and one whose derivative needs the pre-activation, not the output.
const ACTIVATIONS: [(Activation, Activation); 3] =
    [(Activation::Tanh, Activation::Sigmoid), (Activation::Relu, Activation::HardSigmoid), (Activation::Swish, Activation::Softsign)];

/// Samples per batch.
const BATCHES: [usize; 3] = [1, 7, 33];
/// Units of the recurrent layers, and of each direction merged.
const UNITS: [usize; 3] = [1, 3, 7];
/// Steps per sample.
const TIMESTEPS: [usize; 3] = [1, 2, 5];

/// `embedding` copies rows (NaN too); its backward sums them per id, zero where never looked up.
fn embedding<B: Backend>(dev: &B) {
    for vocab in [1, 7, 33, 1000] {
        for count in BATCHES.iter().flat_map(|b| TIMESTEPS.map(|t| b * t)) {
            for dim in [1, 4, 7] {
                let what = format!("embedding of {count} ids into a table of {vocab} rows of {dim}");
                // Every row but the last in turn (the only row when there is one).
                let ids: Vec<usize> = (0..count).map(|i| (i * 7919 + 13) % (vocab - 1).max(1)).collect();
                let mut table = signed(vocab * dim, (vocab * dim) as u64);
                table[ids[0] * dim] = f32::NAN;
                let ids_f: Vec<f32> = ids.iter().map(|&i| i as f32).collect();
                let (ib, tb) = (up(dev, &ids_f), up(dev, &table));
                let mut yb = up(dev, &signed(count * dim, 1));
                dev.embedding(dim, v::<B>(&ib), v::<B>(&tb), vm::<B>(&mut yb));
                let want: Vec<f32> = ids.iter().flat_map(|&i| table[i * dim..(i + 1) * dim].to_vec()).collect();
                same(&what, &down(dev, &yb), &want);

                let dy = signed(count * dim, 2);
                let dyb = up(dev, &dy);
                let mut dtb = up(dev, &signed(vocab * dim, 3));
                dev.embedding_backward(dim, v::<B>(&ib), v::<B>(&dyb), vm::<B>(&mut dtb));
                let mut want = vec![0.0; vocab * dim];
                for (row, &i) in dy.chunks(dim).zip(&ids) {
                    want[i * dim..(i + 1) * dim].iter_mut().zip(row).for_each(|(w, &g)| *w += g as f64);
                }
                let got = down(dev, &dtb);
                close(&format!("{what}: backward"), &got, &want, 2.0 * rtol_for(count.div_ceil((vocab - 1).max(1))));
                for (r, row) in got.chunks(dim).enumerate().filter(|(r, _)| !ids.contains(r)) {
                    assert!(row.iter().all(|&g| g == 0.0), "{what}: row {r} was never looked up, its gradient is {row:?}");
                }
            }
        }
    }
}

/// An activation of the suite at `x` in f64, and its derivative there.
fn act(a: Activation, x: f64) -> (f64, f64) {
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    match a {
        Activation::Tanh => (x.tanh(), 1.0 - x.tanh().powi(2)),
        Activation::Sigmoid => (sigmoid(x), sigmoid(x) * (1.0 - sigmoid(x))),
        Activation::Relu if x > 0.0 => (x, 1.0),
        Activation::Relu => (0.0, 0.0),
        Activation::HardSigmoid if x.abs() < 3.0 => (x / 6.0 + 0.5, 1.0 / 6.0),
        Activation::HardSigmoid => (if x > 0.0 { 1.0 } else { 0.0 }, 0.0),
        Activation::Swish => (x * sigmoid(x), sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))),
        Activation::Softsign => (x / (1.0 + x.abs()), (1.0 + x.abs()).powi(-2)),
        other => unreachable!("{other:?} is not among the suite's activations"),
    }
}

/// f32 values in f64.
fn widen(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&x| x as f64).collect()
}

/// `Σ a b`.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// One step's inputs over the batch in f64, as the kernels read them (zero where the step or
/// the cell has none); also the shape of their gradients.
#[derive(Clone)]
struct StepVals {
    /// The input projections at the step's time, `batch x gates * units`.
    xw: Vec<f64>,
    /// `h R` of the previous state, `batch x gates * units`.
    hu: Vec<f64>,
    /// `(r h) R` ([`CellKind::GruResetBefore`]), `batch x gates * units`.
    hu2: Vec<f64>,
    /// The recurrent bias, `gates * units`.
    rbias: Vec<f64>,
    /// The previous state, `batch x units`.
    h: Vec<f64>,
    /// The previous cell state (LSTM), `batch x units`.
    c: Vec<f64>,
}

impl StepVals {
    /// Zeros for `batch` samples of `cell`.
    fn zeros(cell: &RnnCell, batch: usize) -> StepVals {
        let (gu, nu) = (cell.gates() * cell.units, batch * cell.units);
        let z = vec![0.0; batch * gu];
        StepVals { xw: z.clone(), hu: z.clone(), hu2: z, rbias: vec![0.0; gu], h: vec![0.0; nu], c: vec![0.0; nu] }
    }

    /// Every input, named.
    fn fields(&self) -> [(&'static str, &Vec<f64>); 6] {
        [("xw", &self.xw), ("hu", &self.hu), ("hu2", &self.hu2), ("rbias", &self.rbias), ("h", &self.h), ("c", &self.c)]
    }

    /// Every input, writable (in the order of [`StepVals::fields`]).
    fn fields_mut(&mut self) -> [&mut Vec<f64>; 6] {
        [&mut self.xw, &mut self.hu, &mut self.hu2, &mut self.rbias, &mut self.h, &mut self.c]
    }
}

/// The reference's results of one step: `pre` and `post` block-major as the kernels keep them,
/// the new state, the LSTM's new cell state, and `r h` ([`CellKind::GruResetBefore`]).
struct StepOut {
    pre: Vec<f64>,
    post: Vec<f64>,
    h: Vec<f64>,
    c: Vec<f64>,
    rh: Vec<f64>,
}

/// The gradients reaching one step: of its new state (from later steps and the output), of the
/// LSTM's new cell state, and of `r h` ([`CellKind::GruResetBefore`]).
struct Upstream {
    h: Vec<f64>,
    c: Vec<f64>,
    rh: Vec<f64>,
}

/// How many blocks of a step's `pre` and `post` the contract defines (the GRU's last `post`
/// block, and `pre`'s too without `reset_after`, are the backend's own).
fn defined_blocks(kind: CellKind) -> (usize, usize) {
    match kind {
        CellKind::Simple => (1, 1),
        CellKind::Lstm => (5, 5),
        CellKind::Gru => (4, 3),
        CellKind::GruResetBefore => (3, 3),
    }
}

/// One step of `cell` over `batch` samples, in f64.
fn cell_forward(cell: &RnnCell, batch: usize, x: &StepVals) -> StepOut {
    let (u, gu, nu) = (cell.units, cell.gates() * cell.units, batch * cell.units);
    let (f, g) = (|v| act(cell.activation, v).0, |v| act(cell.recurrent_activation, v).0);
    let blocks = cell.stored() / u;
    let zeros = vec![0.0; nu];
    let mut o = StepOut { pre: vec![0.0; blocks * nu], post: vec![0.0; blocks * nu], h: zeros.clone(), c: zeros.clone(), rh: zeros };
    for n in 0..batch {
        for i in 0..u {
            let idx = n * u + i;
            let gate = |k: usize| x.xw[n * gu + k * u + i] + x.hu[n * gu + k * u + i] + x.rbias[k * u + i];
            let mut put = |k: usize, p: f64, q: f64| {
                o.pre[k * nu + idx] = p;
                o.post[k * nu + idx] = q;
            };
            match cell.kind {
                CellKind::Simple => {
                    put(0, gate(0), f(gate(0)));
                    o.h[idx] = f(gate(0));
                }
                CellKind::Lstm => {
                    let z = [gate(0), gate(1), gate(2), gate(3)];
                    let (ig, fg, cc, og) = (g(z[0]), g(z[1]), f(z[2]), g(z[3]));
                    for (k, q) in [ig, fg, cc, og].into_iter().enumerate() {
                        put(k, z[k], q);
                    }
                    let c = fg * x.c[idx] + ig * cc;
                    put(4, c, f(c));
                    o.c[idx] = c;
                    o.h[idx] = og * f(c);
                }
                CellKind::Gru | CellKind::GruResetBefore => {
                    let (z, r) = (g(gate(0)), g(gate(1)));
                    let hrec = x.hu[n * gu + 2 * u + i] + x.rbias[2 * u + i];
                    let hh = x.xw[n * gu + 2 * u + i] + if cell.kind == CellKind::Gru { r * hrec } else { x.hu2[n * gu + 2 * u + i] };
                    put(0, gate(0), z);
                    put(1, gate(1), r);
                    put(2, hh, f(hh));
                    put(3, hrec, 0.0);
                    o.h[idx] = z * x.h[idx] + (1.0 - z) * f(hh);
                    if cell.kind == CellKind::GruResetBefore {
                        o.rh[idx] = r * x.h[idx];
                    }
                }
            }
        }
    }
    o
}

/// The gradients of `up.h · h + up.c · c + up.rh · rh` after one step of `cell`, with respect to
/// each of the step's inputs (for the previous state, the part that does not pass through `hu`).
fn cell_backward(cell: &RnnCell, batch: usize, x: &StepVals, up: &Upstream) -> StepVals {
    let (u, gu) = (cell.units, cell.gates() * cell.units);
    let (f, g) = (|v| act(cell.activation, v), |v| act(cell.recurrent_activation, v));
    let mut d = StepVals::zeros(cell, batch);
    for n in 0..batch {
        for i in 0..u {
            let (idx, at) = (n * u + i, |k: usize| n * gu + k * u + i);
            let gate = |k: usize| x.xw[at(k)] + x.hu[at(k)] + x.rbias[k * u + i];
            let gh = up.h[idx];
            // Per gate block: the gradients of its input projection and of its recurrent term.
            let (dxw, dhu): ([f64; 4], [f64; 4]) = match cell.kind {
                CellKind::Simple => {
                    let da = gh * f(gate(0)).1;
                    ([da, 0.0, 0.0, 0.0], [da, 0.0, 0.0, 0.0])
                }
                CellKind::Lstm => {
                    let ((ig, dig), (fg, dfg), (cc, dcc), (og, dog)) = (g(gate(0)), g(gate(1)), f(gate(2)), g(gate(3)));
                    let c = fg * x.c[idx] + ig * cc;
                    let dc = up.c[idx] + gh * og * f(c).1;
                    d.c[idx] = dc * fg;
                    let dz = [dc * cc * dig, dc * x.c[idx] * dfg, dc * ig * dcc, gh * f(c).0 * dog];
                    (dz, dz)
                }
                CellKind::Gru | CellKind::GruResetBefore => {
                    let reset_after = cell.kind == CellKind::Gru;
                    let ((z, dz), (r, dr)) = (g(gate(0)), g(gate(1)));
                    let hrec = x.hu[at(2)] + x.rbias[2 * u + i];
                    let hh = x.xw[at(2)] + if reset_after { r * hrec } else { x.hu2[at(2)] };
                    let dhh = gh * (1.0 - z) * f(hh).1;
                    let dgz = gh * (x.h[idx] - f(hh).0) * dz;
                    let drh = if reset_after { 0.0 } else { up.rh[idx] };
                    let dgr = if reset_after { dhh * hrec } else { drh * x.h[idx] } * dr;
                    d.h[idx] = gh * z + drh * r;
                    if !reset_after {
                        d.hu2[at(2)] = dhh;
                    }
                    ([dgz, dgr, dhh, 0.0], [dgz, dgr, if reset_after { dhh * r } else { 0.0 }, 0.0])
                }
            };
            for k in 0..cell.gates() {
                d.xw[at(k)] = dxw[k];
                d.hu[at(k)] = dhu[k];
                d.rbias[k * u + i] += dhu[k];
            }
        }
    }
    d
}

/// A cell of the suite's shapes.
fn rnn_cell(kind: CellKind, timesteps: usize, units: usize, (activation, recurrent_activation): (Activation, Activation)) -> RnnCell {
    RnnCell { kind, timesteps, units, activation, recurrent_activation, return_sequences: false, go_backwards: false }
}

/// The reference cells' gradients agree with central differences of the cells, for every input.
fn reference_cells() {
    for kind in KINDS {
        for acts in ACTIVATIONS {
            for units in [1, 3] {
                let (cell, batch) = (rnn_cell(kind, 1, units, acts), 2);
                let mut x = StepVals::zeros(&cell, batch);
                for (seed, field) in x.fields_mut().into_iter().enumerate() {
                    *field = widen(&data(field.len(), 50 + seed as u64, -3.0, 3.0));
                }
                let nu = batch * units;
                let up = Upstream { h: widen(&signed(nu, 60)), c: widen(&signed(nu, 61)), rh: widen(&signed(nu, 62)) };
                let loss = |x: &StepVals| {
                    let o = cell_forward(&cell, batch, x);
                    dot(&up.h, &o.h) + dot(&up.c, &o.c) + dot(&up.rh, &o.rh)
                };
                let grads = cell_backward(&cell, batch, &x, &up);
                for (field, (name, grad)) in grads.fields().into_iter().enumerate() {
                    for (i, &analytic) in grad.iter().enumerate() {
                        let eps = 1e-6;
                        let (mut plus, mut minus) = (x.clone(), x.clone());
                        plus.fields_mut()[field][i] += eps;
                        minus.fields_mut()[field][i] -= eps;
                        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * eps);
                        assert!(
                            (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                            "reference {kind:?} {acts:?} of {units} units: d{name}[{i}] is {analytic}, central differences give {numeric}"
                        );
                    }
                }
            }
        }
    }
}

/// What the forward pass through time keeps of one step: the inputs its kernels were given, in
/// f64 for the reference, and its outputs on the device.
struct Kept<B: Backend> {
    vals: StepVals,
    pre: B::Buffer,
    post: B::Buffer,
    h: B::Buffer,
}

/// A recurrent layer's cell over a batch, with its data: the input projections of every step,
/// the recurrent kernel, the GRU's recurrent bias, and whether the layer has biases.
struct Sequence {
    cell: RnnCell,
    batch: usize,
    xw: Vec<f32>,
    kernel: Vec<f32>,
    rbias: Option<Vec<f32>>,
    bias: bool,
    what: String,
}

impl Sequence {
    /// `batch` samples through `cell`, with data drawn from `seed`.
    fn new(cell: RnnCell, batch: usize, bias: bool, seed: u64) -> Sequence {
        let gu = cell.gates() * cell.units;
        Sequence {
            cell,
            batch,
            xw: data(batch * cell.timesteps * gu, seed, -3.0, 3.0),
            kernel: data(cell.units * gu, seed + 1, -0.6, 0.6),
            rbias: (bias && cell.kind == CellKind::Gru).then(|| signed(gu, seed + 2)),
            bias,
            what: format!("{cell:?} over {batch} samples, bias {bias}"),
        }
    }

    /// Step `s`.
    fn step(&self, s: usize) -> RnnStep {
        RnnStep { cell: self.cell, s, batch: self.batch }
    }

    /// Where sample `n`'s output lands in `y` at step `s`, if it is written then.
    fn slot(&self, n: usize, s: usize) -> Option<usize> {
        let steps = self.cell.timesteps;
        if self.cell.return_sequences { Some(n * steps + s) } else { (s + 1 == steps).then_some(n) }
    }

    /// `h R` for the rows of `h`, rounded to f32 as a product on the device delivers it.
    fn times_kernel(&self, h: &[f32]) -> Vec<f32> {
        let (u, gu) = (self.cell.units, self.cell.gates() * self.cell.units);
        h.chunks(u)
            .flat_map(|row| (0..gu).map(move |j| (0..u).map(|l| row[l] as f64 * self.kernel[l * gu + j] as f64).sum::<f64>() as f32))
            .collect()
    }

    /// Runs `rnn_step` (and `rnn_reset_state`) forward through time as the layer does, each
    /// step's products `h R` from the previous step's state, and checks every step's results
    /// against the reference cell run on the same inputs.
    fn forward<B: Backend>(&self, dev: &B) -> Vec<Kept<B>> {
        let (cell, batch) = (&self.cell, self.batch);
        let (u, steps, gu, nu) = (cell.units, cell.timesteps, cell.gates() * cell.units, batch * cell.units);
        let reset_before = cell.kind == CellKind::GruResetBefore;
        let (pre_blocks, post_blocks) = defined_blocks(cell.kind);
        let tol = 2.0 * rtol_for(1);
        let xwb = up(dev, &self.xw);
        let rbias = self.rbias.as_ref().map(|b| up(dev, b));
        let y0 = signed(if cell.return_sequences { batch * steps * u } else { nu }, 5);
        let (mut yb, mut y_want) = (up(dev, &y0), widen(&y0));
        let mut kept: Vec<Kept<B>> = Vec::new();
        for s in 0..steps {
            let (t, at) = (cell.time(s), format!("{}, step {s}", self.what));
            let prev = kept.last();
            let mut x = StepVals::zeros(cell, batch);
            for n in 0..batch {
                x.xw[n * gu..][..gu].copy_from_slice(&widen(&self.xw[(n * steps + t) * gu..][..gu]));
            }
            if let Some(b) = &self.rbias {
                x.rbias = widen(b);
            }
            let mut hu = dev.alloc(if reset_before { 2 } else { 1 } * batch * gu).unwrap();
            if let Some(p) = prev {
                let h = down(dev, &p.h);
                let first = self.times_kernel(&h);
                dev.upload(&first, B::view_mut(&mut hu, 0..batch * gu)).unwrap();
                (x.h, x.hu) = (widen(&h), widen(&first));
                if cell.kind == CellKind::Lstm {
                    x.c = widen(&down(dev, &p.pre)[4 * nu..5 * nu]);
                }
                if reset_before {
                    let mut rh = up(dev, &signed(nu, 4));
                    dev.rnn_reset_state(&self.step(s), v::<B>(&xwb), B::view(&hu, 0..batch * gu), v::<B>(&p.h), vm::<B>(&mut rh));
                    let rh = down(dev, &rh);
                    close(&format!("{at}: rnn_reset_state"), &rh, &cell_forward(cell, batch, &x).rh, tol);
                    let second = self.times_kernel(&rh);
                    dev.upload(&second, B::view_mut(&mut hu, batch * gu..2 * batch * gu)).unwrap();
                    x.hu2 = widen(&second);
                }
            }
            let stored = batch * cell.stored();
            let (mut pre, mut post, mut h) = (up(dev, &signed(stored, 6)), up(dev, &signed(stored, 7)), up(dev, &signed(nu, 8)));
            dev.rnn_step(
                &self.step(s),
                RnnStepIo {
                    xw: v::<B>(&xwb),
                    hu: prev.map(|_| v::<B>(&hu)),
                    rbias: rbias.as_ref().map(|b| v::<B>(b)),
                    prev: prev.map(|p| (v::<B>(&p.h), v::<B>(&p.pre))),
                    pre: vm::<B>(&mut pre),
                    post: vm::<B>(&mut post),
                    h: vm::<B>(&mut h),
                    y: vm::<B>(&mut yb),
                },
            );
            let want = cell_forward(cell, batch, &x);
            close(&format!("{at}: pre"), &down(dev, &pre)[..pre_blocks * nu], &want.pre[..pre_blocks * nu], tol);
            close(&format!("{at}: post"), &down(dev, &post)[..post_blocks * nu], &want.post[..post_blocks * nu], tol);
            close(&format!("{at}: h"), &down(dev, &h), &want.h, tol);
            for n in 0..batch {
                if let Some(slot) = self.slot(n, s) {
                    y_want[slot * u..][..u].copy_from_slice(&want.h[n * u..][..u]);
                }
            }
            close(&format!("{at}: y"), &down(dev, &yb), &y_want, tol);
            kept.push(Kept { vals: x, pre, post, h });
        }
        kept
    }

    /// Runs `rnn_step_backward` (and `rnn_reset_state_backward`) back through time over the
    /// steps `forward` kept, each step given its own upstream gradients, and checks each step's
    /// gradients against the reference's.
    fn backward<B: Backend>(&self, dev: &B, kept: &[Kept<B>]) {
        let (cell, batch) = (&self.cell, self.batch);
        let (u, steps, gu, nu) = (cell.units, cell.timesteps, cell.gates() * cell.units, batch * cell.units);
        let reset_before = cell.kind == CellKind::GruResetBefore;
        let tol = 2.0 * rtol_for(1);
        let dy = signed(if cell.return_sequences { batch * steps * u } else { nu }, 9);
        let dyb = up(dev, &dy);
        let dxw0 = signed(batch * steps * gu, 10);
        let (mut dxw, mut dxw_want) = (up(dev, &dxw0), widen(&dxw0));
        let (dbias0, drbias0) = (signed(gu, 11), signed(gu, 12));
        let mut dbias = self.bias.then(|| up(dev, &dbias0));
        let mut drbias = self.rbias.as_ref().map(|_| up(dev, &drbias0));
        let (mut dbias_want, mut drbias_want) = (widen(&dbias0), widen(&drbias0));
        let mut tmp = dev.alloc(batch * gu).unwrap();
        for s in (0..steps).rev() {
            let (t, at) = (cell.time(s), format!("{}, backward step {s}", self.what));
            let (k, prev) = (&kept[s], s.checked_sub(1).map(|p| &kept[p]));
            let (dh_in, dc_in, drh) = (signed(nu, 13 + s as u64), signed(nu, 23 + s as u64), signed(nu, 33 + s as u64));
            let (mut dh, mut dc, drhb) = (up(dev, &dh_in), up(dev, &dc_in), up(dev, &drh));
            let mut dhu = up(dev, &signed(if reset_before { 2 } else { 1 } * batch * gu, 43 + s as u64));
            dev.rnn_step_backward(
                &self.step(s),
                RnnStepGrads {
                    dy: v::<B>(&dyb),
                    pre: v::<B>(&k.pre),
                    post: v::<B>(&k.post),
                    prev: prev.map(|p| (v::<B>(&p.h), v::<B>(&p.pre))),
                    dh: vm::<B>(&mut dh),
                    dc: vm::<B>(&mut dc),
                    dxw: vm::<B>(&mut dxw),
                    dhu: vm::<B>(&mut dhu),
                    tmp: vm::<B>(&mut tmp),
                    dbias: if reset_before { None } else { dbias.as_mut().map(|b| vm::<B>(b)) },
                    drbias: drbias.as_mut().map(|b| vm::<B>(b)),
                },
            );
            let mut upstream = Upstream { h: widen(&dh_in), c: widen(&dc_in), rh: vec![0.0; nu] };
            for n in 0..batch {
                if let Some(slot) = self.slot(n, s) {
                    upstream.h[n * u..][..u].iter_mut().zip(&dy[slot * u..][..u]).for_each(|(g, &d)| *g += d as f64);
                }
            }
            if reset_before {
                let want = cell_backward(cell, batch, &k.vals, &upstream);
                close(&format!("{at}: rnn_step_backward's dh"), &down(dev, &dh), &want.h, tol);
                dev.rnn_reset_state_backward(
                    &self.step(s),
                    RnnResetGrads {
                        drh: prev.map(|_| v::<B>(&drhb)),
                        pre: v::<B>(&k.pre),
                        post: v::<B>(&k.post),
                        h: prev.map(|p| v::<B>(&p.h)),
                        dh: vm::<B>(&mut dh),
                        dxw: vm::<B>(&mut dxw),
                        dhu: B::view_mut(&mut dhu, 0..batch * gu),
                        dbias: dbias.as_mut().map(|b| vm::<B>(b)),
                    },
                );
                if prev.is_some() {
                    upstream.rh = widen(&drh);
                }
            }
            let want = cell_backward(cell, batch, &k.vals, &upstream);
            close(&format!("{at}: dh"), &down(dev, &dh), &want.h, tol);
            if cell.kind == CellKind::Lstm {
                close(&format!("{at}: dc"), &down(dev, &dc), &want.c, tol);
            }
            for n in 0..batch {
                let row = &want.xw[n * gu..][..gu];
                dxw_want[(n * steps + t) * gu..][..gu].copy_from_slice(row);
                dbias_want.iter_mut().zip(row).for_each(|(b, g)| *b += g);
            }
            close(&format!("{at}: dxw"), &down(dev, &dxw), &dxw_want, tol);
            let dhu_want: Vec<f64> = if reset_before { [want.hu, want.hu2].concat() } else { want.hu };
            close(&format!("{at}: dhu"), &down(dev, &dhu), &dhu_want, tol);
            let sum_tol = 2.0 * rtol_for(batch * steps);
            if let Some(b) = &dbias {
                close(&format!("{at}: dbias"), &down(dev, b), &dbias_want, sum_tol);
            }
            if let Some(b) = &drbias {
                drbias_want.iter_mut().zip(&want.rbias).for_each(|(b, g)| *b += g);
                close(&format!("{at}: drbias"), &down(dev, b), &drbias_want, sum_tol);
            }
        }
    }
}

/// The step kernels forward through time, then their backward passes back, in every configuration.
fn recurrent_steps<B: Backend>(dev: &B) {
    let mut seed = 100;
    for kind in KINDS {
        for acts in ACTIVATIONS {
            for units in UNITS {
                for timesteps in TIMESTEPS {
                    // Every combination of `return_sequences`, `go_backwards` and biases.
                    for flags in 0..8 {
                        let cell = RnnCell {
                            return_sequences: flags & 1 == 1,
                            go_backwards: flags & 2 == 2,
                            ..rnn_cell(kind, timesteps, units, acts)
                        };
                        for batch in BATCHES {
                            seed += 3;
                            let sequence = Sequence::new(cell, batch, flags & 4 == 4, seed);
                            // From step 0 (no `hu`, no previous state) on, every step checked.
                            let kept = sequence.forward(dev);
                            sequence.backward(dev, &kept);
                        }
                    }
                }
            }
        }
    }
}

/// `merge_directions` and its backward pass in every mode, the backward direction read reversed.
fn merge_directions<B: Backend>(dev: &B) {
    for mode in [MergeMode::Concat, MergeMode::Sum, MergeMode::Mul, MergeMode::Ave] {
        for batch in BATCHES {
            for steps in TIMESTEPS {
                for units in UNITS {
                    let d = Directions { mode, batch, steps, units };
                    let width = if mode == MergeMode::Concat { 2 * units } else { units };
                    let (len, out) = (batch * steps * units, batch * steps * width);
                    let (mut fwd, mut bwd, dy) = (signed(len, 1), signed(len, 2), signed(out, 3));
                    fwd[0] = f32::NAN;
                    bwd[len - 1] = f32::INFINITY;
                    let (fb, bb, dyb) = (up(dev, &fwd), up(dev, &bwd), up(dev, &dy));
                    let mut yb = up(dev, &signed(out, 4));
                    dev.merge_directions(&d, v::<B>(&fb), v::<B>(&bb), vm::<B>(&mut yb));
                    let (mut dfb, mut dbb) = (up(dev, &signed(len, 5)), up(dev, &signed(len, 6)));
                    dev.merge_directions_backward(&d, v::<B>(&dyb), v::<B>(&fb), v::<B>(&bb), vm::<B>(&mut dfb), vm::<B>(&mut dbb));
                    let (mut y, mut df, mut db) = (vec![0.0; out], vec![0.0; len], vec![0.0; len]);
                    for n in 0..batch {
                        for t in 0..steps {
                            let (fi, bi, yi) = ((n * steps + t) * units, (n * steps + steps - 1 - t) * units, (n * steps + t) * width);
                            for j in 0..units {
                                let (f, b, g) = (fwd[fi + j] as f64, bwd[bi + j] as f64, dy[yi + j] as f64);
                                let (yv, dfv, dbv) = match mode {
                                    MergeMode::Concat => {
                                        y[yi + units + j] = b;
                                        (f, g, dy[yi + units + j] as f64)
                                    }
                                    MergeMode::Sum => (f + b, g, g),
                                    MergeMode::Mul => (f * b, g * b, g * f),
                                    MergeMode::Ave => ((f + b) / 2.0, g / 2.0, g / 2.0),
                                };
                                (y[yi + j], df[fi + j], db[bi + j]) = (yv, dfv, dbv);
                            }
                        }
                    }
                    close(&format!("{d:?}"), &down(dev, &yb), &y, rtol_for(1));
                    close(&format!("{d:?}: dfwd"), &down(dev, &dfb), &df, rtol_for(1));
                    close(&format!("{d:?}: dbwd"), &down(dev, &dbb), &db, rtol_for(1));
                }
            }
        }
    }
}

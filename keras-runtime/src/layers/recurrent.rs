//! `SimpleRNN`, `LSTM` and `GRU`: one layer type over the cells of [`RnnCell`].
//!
//! Forward computes the input projections of every time step in one matrix product, then per
//! step `h R` (a product over the batch) and the cell's gate arithmetic, keeping each step's
//! pre-activations, activations and state in the scratch; backward runs back through time over
//! them (BPTT) and ends with one product each for the kernel's and the input's gradients.

use super::{Backward, Forward, Layer};
use crate::activations::Activation;
use crate::backend::{Backend, CellKind, Gemm, Linear, RnnCell, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo};

/// A recurrent layer over samples of `T` steps of `F` features (`IN = T * F`) with `U` units,
/// `GATES` gate blocks and `BIAS` bias floats (0, `GATES * U`, or `2 * GATES * U` for the GRU's
/// input and recurrent biases); `OUT` is `T * U` with `return_sequences`, else `U`. The cell is in
/// the value. Parameters in Keras's order and layout: `kernel (F, GATES * U)`, `recurrent_kernel
/// (U, GATES * U)`, then `bias`.
pub struct Recurrent<
    const T: usize,
    const F: usize,
    const U: usize,
    const GATES: usize,
    const BIAS: usize,
    const IN: usize,
    const OUT: usize,
> {
    cell: RnnCell,
}

impl<const T: usize, const F: usize, const U: usize, const GATES: usize, const BIAS: usize, const IN: usize, const OUT: usize>
    Recurrent<T, F, U, GATES, BIAS, IN, OUT>
{
    const GU: usize = GATES * U;
    const KERNEL: usize = F * GATES * U;
    const RECURRENT: usize = U * GATES * U;
    /// Floats per step and sample of the kept pre-activations (and activations).
    const STORED: usize = if GATES == 1 { U } else { (GATES + 1) * U };
    /// Recurrent products per step: two for the GRU (`reset_after = false` needs `(r h) R`).
    const PRODUCTS: usize = if GATES == 3 { 2 } else { 1 };
    /// Trainable floats.
    pub const PARAMS: usize = Self::KERNEL + Self::RECURRENT + BIAS;
    /// Per-sample scratch: the input projections (their gradients in backward), `h R` (its
    /// gradient), every step's pre-activations, activations and state, and the state gradients;
    /// for the GRU also every step's `r h` and its gradient; and the step kernels' working space.
    pub const SCRATCH: usize =
        T * Self::GU + Self::PRODUCTS * Self::GU + 2 * T * Self::STORED + T * U + 2 * U + if GATES == 3 { T * U + U } else { 0 } + Self::GU;

    /// The layer with `cell` (whose sizes must agree with the const parameters).
    pub const fn new(cell: RnnCell) -> Self {
        assert!(cell.timesteps == T && cell.units == U && cell.gates() == GATES && cell.stored() == Self::STORED);
        assert!(IN == T * F && OUT == if cell.return_sequences { T * U } else { U });
        let gru = matches!(cell.kind, CellKind::Gru);
        assert!(!matches!(cell.kind, CellKind::GruResetBefore) || GATES == 3);
        assert!(BIAS == 0 || BIAS == if gru { 2 * GATES * U } else { GATES * U });
        Recurrent { cell }
    }

    /// A `SimpleRNN`, `LSTM` or `GRU` cell for these sizes.
    pub const fn cell(
        kind: CellKind,
        activation: Activation,
        recurrent_activation: Activation,
        return_sequences: bool,
        go_backwards: bool,
    ) -> RnnCell {
        RnnCell { kind, timesteps: T, units: U, activation, recurrent_activation, return_sequences, go_backwards }
    }

    /// Splits the parameters into kernel, recurrent kernel, input bias and recurrent bias.
    #[allow(clippy::type_complexity)]
    fn weights<'a, B: Backend>(&self, params: B::View<'a>) -> (B::View<'a>, B::View<'a>, Option<B::View<'a>>, Option<B::View<'a>>) {
        let (k, r) = (Self::KERNEL, Self::KERNEL + Self::RECURRENT);
        let bias = (BIAS > 0).then(|| B::sub(params, r..r + Self::GU));
        let rbias = (BIAS > Self::GU).then(|| B::sub(params, r + Self::GU..r + 2 * Self::GU));
        (B::sub(params, 0..k), B::sub(params, k..r), bias, rbias)
    }

    /// Step `s` over `batch` samples.
    const fn step(&self, s: usize, batch: usize) -> RnnStep {
        RnnStep { cell: self.cell, s, batch }
    }
}

impl<B: Backend, const T: usize, const F: usize, const U: usize, const GATES: usize, const BIAS: usize, const IN: usize, const OUT: usize>
    Layer<B, IN, OUT> for Recurrent<T, F, U, GATES, BIAS, IN, OUT>
{
    /// Runs the sequence through the cell; the output is every step's state or the last one.
    fn forward(&self, Forward { ctx, params, x, mut y, scratch, .. }: Forward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let n = x.rows;
        let (gu, st) = (Self::GU, Self::STORED);
        let (kernel, recurrent, bias, rbias) = self.weights::<B>(params);
        let (mut xw, rest) = B::split_mut(scratch, n * T * gu);
        let (mut hu, rest) = B::split_mut(rest, Self::PRODUCTS * n * gu);
        let (mut pre, rest) = B::split_mut(rest, T * n * st);
        let (mut post, rest) = B::split_mut(rest, T * n * st);
        let (mut h, rest) = B::split_mut(rest, T * n * U);
        let reset_before = self.cell.kind == CellKind::GruResetBefore;
        // Past backward's state gradients: every step's `r h` (GRU with `reset_after = false`).
        let mut rh = B::split_mut(B::split_mut(rest, 2 * n * U).1, if reset_before { T * n * U } else { 0 }).0;
        dev.linear(&Linear { rows: n * T, k: F, n: gu, act: Activation::Linear }, x.view, kernel, bias, B::reborrow(&mut xw), None);
        for s in 0..T {
            let (pre_before, mut pre_now) = B::split_mut(B::reborrow(&mut pre), s * n * st);
            let (h_before, mut h_now) = B::split_mut(B::reborrow(&mut h), s * n * U);
            let (pre_before, h_before) = (B::freeze(&pre_before), B::freeze(&h_before));
            let prev = (s > 0).then(|| (B::sub(h_before, (s - 1) * n * U..s * n * U), B::sub(pre_before, (s - 1) * n * st..s * n * st)));
            if let Some((h_prev, _)) = prev {
                let (mut first, second) = B::split_mut(B::reborrow(&mut hu), n * gu);
                dev.gemm(&Gemm::nn(n, gu, U), h_prev, recurrent, B::reborrow(&mut first));
                if reset_before {
                    let mut rh_now = B::split_mut(B::split_mut(B::reborrow(&mut rh), s * n * U).1, n * U).0;
                    dev.rnn_reset_state(&self.step(s, n), B::freeze(&xw), B::freeze(&first), h_prev, B::reborrow(&mut rh_now));
                    dev.gemm(&Gemm::nn(n, gu, U), B::freeze(&rh_now), recurrent, second);
                }
            }
            let mut post_now = B::split_mut(B::split_mut(B::reborrow(&mut post), s * n * st).1, n * st).0;
            dev.rnn_step(
                &self.step(s, n),
                RnnStepIo {
                    xw: B::freeze(&xw),
                    hu: (s > 0).then(|| B::sub(B::freeze(&hu), 0..Self::PRODUCTS * n * gu)),
                    rbias: rbias.as_ref().map(B::shorten),
                    prev: prev.as_ref().map(|(h, p)| (B::shorten(h), B::shorten(p))),
                    pre: B::split_mut(B::reborrow(&mut pre_now), n * st).0,
                    post: B::reborrow(&mut post_now),
                    h: B::split_mut(B::reborrow(&mut h_now), n * U).0,
                    y: B::reborrow(&mut y.view),
                },
            );
        }
    }

    /// Back through time: gradients of the kernels and biases, and of the input when asked.
    fn backward(&self, Backward { ctx, params, grads, x, scratch, dy, dx, .. }: Backward<'_, B, IN, OUT>) {
        let dev = ctx.device;
        let n = x.rows;
        let (gu, st) = (Self::GU, Self::STORED);
        let (kernel, recurrent, _, _) = self.weights::<B>(params);
        let (mut dxw, rest) = B::split_mut(scratch, n * T * gu);
        let (mut dhu, rest) = B::split_mut(rest, Self::PRODUCTS * n * gu);
        let (pre, rest) = B::split_mut(rest, T * n * st);
        let (post, rest) = B::split_mut(rest, T * n * st);
        let (h, rest) = B::split_mut(rest, T * n * U);
        let (mut dh, rest) = B::split_mut(rest, n * U);
        let (mut dc, rest) = B::split_mut(rest, n * U);
        let reset_before = self.cell.kind == CellKind::GruResetBefore;
        let (rh, rest) = B::split_mut(rest, if reset_before { T * n * U } else { 0 });
        let (mut drh, rest) = B::split_mut(rest, if reset_before { n * U } else { 0 });
        let mut tmp = B::split_mut(rest, n * gu).0;
        let (pre, post, h, rh) = (B::freeze(&pre), B::freeze(&post), B::freeze(&h), B::freeze(&rh));
        let (dkernel, rest) = B::split_mut(grads, Self::KERNEL);
        let (mut drecurrent, dbias_all) = B::split_mut(rest, Self::RECURRENT);
        let (mut dbias, mut drbias) = if BIAS > Self::GU {
            let (a, b) = B::split_mut(dbias_all, Self::GU);
            (Some(a), Some(b))
        } else if BIAS > 0 {
            (Some(dbias_all), None)
        } else {
            (None, None)
        };
        dev.fill(B::reborrow(&mut dh), 0.0);
        dev.fill(B::reborrow(&mut dc), 0.0);
        dev.fill(B::reborrow(&mut drecurrent), 0.0);
        for b in [dbias.as_mut(), drbias.as_mut()].into_iter().flatten() {
            dev.fill(B::reborrow(b), 0.0);
        }
        let dy = B::freeze(&dy.view);
        /// Step `i`'s rows of a time-major store of `len` floats per sample.
        fn step<'s, B: Backend>(v: &'s B::View<'_>, n: usize, len: usize, i: usize) -> B::View<'s> {
            B::sub(B::shorten(v), i * n * len..(i + 1) * n * len)
        }
        for s in (0..T).rev() {
            let prev = (s > 0).then(|| (step::<B>(&h, n, U, s - 1), step::<B>(&pre, n, st, s - 1)));
            dev.rnn_step_backward(
                &self.step(s, n),
                RnnStepGrads {
                    dy: B::shorten(&dy),
                    pre: step::<B>(&pre, n, st, s),
                    post: step::<B>(&post, n, st, s),
                    prev: prev.as_ref().map(|(h, p)| (B::shorten(h), B::shorten(p))),
                    dh: B::reborrow(&mut dh),
                    dc: B::reborrow(&mut dc),
                    dxw: B::reborrow(&mut dxw),
                    dhu: B::reborrow(&mut dhu),
                    tmp: B::reborrow(&mut tmp),
                    dbias: if reset_before { None } else { dbias.as_mut().map(|b| B::reborrow(b)) },
                    drbias: drbias.as_mut().map(|b| B::reborrow(b)),
                },
            );
            if reset_before {
                let (mut first, second) = B::split_mut(B::reborrow(&mut dhu), n * gu);
                let second = B::freeze(&second);
                if s > 0 {
                    dev.gemm(&Gemm::nt(n, U, gu), second, recurrent, B::reborrow(&mut drh));
                    let rh_now = step::<B>(&rh, n, U, s);
                    dev.gemm(&Gemm::tn(U, gu, n).accumulate(), rh_now, second, B::reborrow(&mut drecurrent));
                }
                dev.rnn_reset_state_backward(
                    &self.step(s, n),
                    RnnResetGrads {
                        drh: (s > 0).then(|| B::freeze(&drh)),
                        pre: step::<B>(&pre, n, st, s),
                        post: step::<B>(&post, n, st, s),
                        h: prev.as_ref().map(|(h_prev, _)| B::shorten(h_prev)),
                        dh: B::reborrow(&mut dh),
                        dxw: B::reborrow(&mut dxw),
                        dhu: B::reborrow(&mut first),
                        dbias: dbias.as_mut().map(|b| B::reborrow(b)),
                    },
                );
            }
            if let Some((h_prev, _)) = prev {
                let dz = B::sub(B::freeze(&dhu), 0..n * gu);
                dev.gemm(&Gemm::nt(n, U, gu).accumulate(), dz, recurrent, B::reborrow(&mut dh));
                dev.gemm(&Gemm::tn(U, gu, n).accumulate(), h_prev, dz, B::reborrow(&mut drecurrent));
            }
        }
        let dz = B::freeze(&dxw);
        dev.gemm(&Gemm::tn(F, gu, n * T), x.view, dz, dkernel);
        if let Some(dx) = dx {
            dev.gemm(&Gemm::nt(n * T, F, gu), dz, kernel, dx.view);
        }
    }
}

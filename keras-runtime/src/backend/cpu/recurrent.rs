//! Embedding lookups and the step kernels of the recurrent layers on the CPU. The matrix products
//! of a recurrent layer (all time steps' `x K` at once, `h R` per step) run through the GEMM;
//! these kernels do the gate arithmetic of one step in place, touching each value once.

use super::{activation, kernels};
use crate::backend::ops::{Activation, BiasAct, CellKind, Directions, MergeMode, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo};

/// Row `i` of `y` is row `ids[i]` of `table`.
pub fn embedding(dim: usize, ids: &[f32], table: &[f32], y: &mut [f32]) {
    for (row, &id) in y.chunks_exact_mut(dim).zip(ids) {
        let id = id as usize;
        row.copy_from_slice(&table[id * dim..(id + 1) * dim]);
    }
}

/// `dtable` (overwritten) gets row `i` of `dy` added into row `ids[i]`, in order.
pub fn embedding_backward(dim: usize, ids: &[f32], dy: &[f32], dtable: &mut [f32]) {
    dtable.fill(0.0);
    for (row, &id) in dy.chunks_exact(dim).zip(ids) {
        let id = id as usize;
        for (d, g) in dtable[id * dim..(id + 1) * dim].iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// `y = act(y)` in place over rows of `units`, with the SIMD kernels of the dense layers (which
/// spread large blocks over the thread pool).
fn activate(y: &mut [f32], units: usize, act: Activation) {
    kernels::bias_act(&BiasAct { rows: y.len() / units, cols: units, act }, y, None, None);
}

/// `g *= act'(x)` in place over rows of `units`, given the activation's input `x` and output `y`.
fn activate_backward(g: &mut [f32], x: &[f32], y: &[f32], units: usize, act: Activation) {
    kernels::act_backward(&BiasAct { rows: g.len() / units, cols: units, act }, g, y, Some(x), None);
}

/// See `SequenceOps::rnn_step`. The step's `pre` and `post` are block-major: block `k` (a gate)
/// holds `batch x units` values, so that each activation runs over one contiguous block.
pub fn rnn_step(step: &RnnStep, io: RnnStepIo<&[f32], &mut [f32]>) {
    let (cell, s, batch) = (&step.cell, step.s, step.batch);
    let RnnStepIo { xw, hu, rbias, prev, pre, post, h, y } = io;
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gates, gu, nu) = (cell.gates(), cell.gates() * u, batch * u);
    let (act, ract) = (cell.activation, cell.recurrent_activation);
    let (pre, post, h) = (&mut pre[..cell.stored() * batch], &mut post[..cell.stored() * batch], &mut h[..nu]);
    let reset_before = cell.kind == CellKind::GruResetBefore;
    // The recurrent term of gate column `k` of sample `n` (zero at the first step).
    let rec = |n: usize, k: usize| hu.map_or(0.0, |h| h[n * gu + k]) + rbias.map_or(0.0, |b| b[k]);
    // Pre-activations of the gates whose input is `x K + h R (+ b)` alone: all but the GRU's candidate.
    let plain = match cell.kind {
        CellKind::Simple | CellKind::Lstm => gates,
        CellKind::Gru | CellKind::GruResetBefore => 2,
    };
    for n in 0..batch {
        let x = &xw[(n * steps + t) * gu..][..gu];
        for g in 0..plain {
            for i in 0..u {
                pre[g * nu + n * u + i] = x[g * u + i] + rec(n, g * u + i);
            }
        }
    }
    post[..plain * nu].copy_from_slice(&pre[..plain * nu]);
    let h_prev = |idx: usize| prev.map_or(0.0, |(p, _)| p[idx]);
    match cell.kind {
        CellKind::Simple => {
            activate(&mut post[..nu], u, act);
            h.copy_from_slice(&post[..nu]);
        }
        CellKind::Lstm => {
            activate(&mut post[..2 * nu], u, ract);
            activate(&mut post[2 * nu..3 * nu], u, act);
            activate(&mut post[3 * nu..4 * nu], u, ract);
            for idx in 0..nu {
                let c_prev = prev.map_or(0.0, |(_, p)| p[4 * nu + idx]);
                let c = post[nu + idx] * c_prev + post[idx] * post[2 * nu + idx];
                pre[4 * nu + idx] = c;
                post[4 * nu + idx] = c;
            }
            activate(&mut post[4 * nu..5 * nu], u, act);
            for idx in 0..nu {
                h[idx] = post[3 * nu + idx] * post[4 * nu + idx];
            }
        }
        CellKind::Gru | CellKind::GruResetBefore => {
            activate(&mut post[..2 * nu], u, ract);
            for n in 0..batch {
                let x = &xw[(n * steps + t) * gu..][..gu];
                for i in 0..u {
                    let idx = n * u + i;
                    let zh = if reset_before {
                        // `hu` holds h R, then (r h) R.
                        x[2 * u + i] + hu.map_or(0.0, |h| h[(batch + n) * gu + 2 * u + i])
                    } else {
                        let hrec = rec(n, 2 * u + i);
                        pre[3 * nu + idx] = hrec;
                        x[2 * u + i] + post[nu + idx] * hrec
                    };
                    pre[2 * nu + idx] = zh;
                    post[2 * nu + idx] = zh;
                }
            }
            if reset_before {
                pre[3 * nu..].fill(0.0);
            }
            post[3 * nu..].fill(0.0);
            activate(&mut post[2 * nu..3 * nu], u, act);
            for idx in 0..nu {
                let z = post[idx];
                h[idx] = z * h_prev(idx) + (1.0 - z) * post[2 * nu + idx];
            }
        }
    }
    for n in 0..batch {
        let h = &h[n * u..][..u];
        if cell.return_sequences {
            y[(n * steps + s) * u..][..u].copy_from_slice(h);
        } else if s + 1 == steps {
            y[n * u..][..u].copy_from_slice(h);
        }
    }
}

/// See `SequenceOps::rnn_step_backward`; `tmp` holds `batch x gates * units` floats, the gates'
/// gradients block-major before they are laid out as `dxw` and `dhu` rows.
pub fn rnn_step_backward(step: &RnnStep, g: RnnStepGrads<&[f32], &mut [f32]>) {
    let (cell, s, batch) = (&step.cell, step.s, step.batch);
    let RnnStepGrads { dy, pre, post, prev, dh, dc, dxw, dhu, tmp, dbias, drbias } = g;
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gates, gu, nu) = (cell.gates(), cell.gates() * u, batch * u);
    let (act, ract) = (cell.activation, cell.recurrent_activation);
    let dh = &mut dh[..nu];
    for n in 0..batch {
        let dh = &mut dh[n * u..][..u];
        if cell.return_sequences {
            dh.iter_mut().zip(&dy[(n * steps + s) * u..][..u]).for_each(|(a, b)| *a += b);
        } else if s + 1 == steps {
            dh.iter_mut().zip(&dy[n * u..][..u]).for_each(|(a, b)| *a += b);
        }
    }
    let tmp = &mut tmp[..gates * nu];
    let block = |k: usize| k * nu..(k + 1) * nu;
    let h_prev = |idx: usize| prev.map_or(0.0, |(p, _)| p[idx]);
    let reset_before = cell.kind == CellKind::GruResetBefore;
    match cell.kind {
        CellKind::Simple => {
            tmp.copy_from_slice(dh);
            activate_backward(tmp, &pre[block(0)], &post[block(0)], u, act);
            dh.fill(0.0);
        }
        CellKind::Lstm => {
            let dc = &mut dc[..nu];
            for idx in 0..nu {
                tmp[3 * nu + idx] = dh[idx] * post[4 * nu + idx];
                tmp[2 * nu + idx] = dh[idx] * post[3 * nu + idx];
            }
            activate_backward(&mut tmp[block(2)], &pre[block(4)], &post[block(4)], u, act);
            for idx in 0..nu {
                let dct = dc[idx] + tmp[2 * nu + idx];
                let c_prev = prev.map_or(0.0, |(_, p)| p[4 * nu + idx]);
                tmp[idx] = dct * post[2 * nu + idx];
                tmp[nu + idx] = dct * c_prev;
                tmp[2 * nu + idx] = dct * post[idx];
                dc[idx] = dct * post[nu + idx];
            }
            activate_backward(&mut tmp[..2 * nu], &pre[..2 * nu], &post[..2 * nu], u, ract);
            activate_backward(&mut tmp[block(2)], &pre[block(2)], &post[block(2)], u, act);
            activate_backward(&mut tmp[block(3)], &pre[block(3)], &post[block(3)], u, ract);
            dh.fill(0.0);
        }
        CellKind::Gru | CellKind::GruResetBefore => {
            for idx in 0..nu {
                let (z, hh) = (post[idx], post[2 * nu + idx]);
                tmp[2 * nu + idx] = dh[idx] * (1.0 - z);
                tmp[idx] = dh[idx] * (h_prev(idx) - hh);
                dh[idx] *= z;
            }
            activate_backward(&mut tmp[block(2)], &pre[block(2)], &post[block(2)], u, act);
            activate_backward(&mut tmp[block(0)], &pre[block(0)], &post[block(0)], u, ract);
            if reset_before {
                // The reset gate's part is `rnn_reset_state_backward`'s.
                tmp[block(1)].fill(0.0);
            } else {
                for idx in 0..nu {
                    tmp[nu + idx] = tmp[2 * nu + idx] * pre[3 * nu + idx];
                }
                activate_backward(&mut tmp[block(1)], &pre[block(1)], &post[block(1)], u, ract);
            }
        }
    }
    // Lay the gates' gradients out as rows: `dxw` at time t, `dhu` per sample.
    let (dhu, dhu_second) = if reset_before { dhu.split_at_mut(batch * gu) } else { (dhu, &mut [][..]) };
    for n in 0..batch {
        let dx = &mut dxw[(n * steps + t) * gu..][..gu];
        let dr = &mut dhu[n * gu..][..gu];
        for g in 0..gates {
            dx[g * u..(g + 1) * u].copy_from_slice(&tmp[g * nu + n * u..][..u]);
            dr[g * u..(g + 1) * u].copy_from_slice(&tmp[g * nu + n * u..][..u]);
        }
        match cell.kind {
            // The candidate's recurrent term is scaled by the reset gate.
            CellKind::Gru => {
                for i in 0..u {
                    dr[2 * u + i] *= post[nu + n * u + i];
                }
            }
            CellKind::GruResetBefore => {
                dr[2 * u..].fill(0.0);
                let dr2 = &mut dhu_second[n * gu..][..gu];
                dr2[..2 * u].fill(0.0);
                dr2[2 * u..].copy_from_slice(&dx[2 * u..]);
            }
            CellKind::Simple | CellKind::Lstm => {}
        }
    }
    // Bias gradients: sums over the batch, in sample order.
    if !reset_before {
        add_rows(dbias, dxw, batch, |n| (n * steps + t) * gu, gu);
    }
    add_rows(drbias, dhu, batch, |n| n * gu, gu);
}

/// `sum[k] += Σ_n m[at(n) + k]`, samples in order.
fn add_rows(sum: Option<&mut [f32]>, m: &[f32], batch: usize, at: impl Fn(usize) -> usize, width: usize) {
    if let Some(sum) = sum {
        for n in 0..batch {
            sum.iter_mut().zip(&m[at(n)..at(n) + width]).for_each(|(a, g)| *a += g);
        }
    }
}

/// See `SequenceOps::rnn_reset_state`.
pub fn rnn_reset_state(step: &RnnStep, xw: &[f32], hu: &[f32], h: &[f32], rh: &mut [f32]) {
    let (cell, s, batch) = (&step.cell, step.s, step.batch);
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let gu = cell.gates() * u;
    for n in 0..batch {
        let x = &xw[(n * steps + t) * gu..][..gu];
        let hu = &hu[n * gu..][..gu];
        for i in 0..u {
            rh[n * u + i] = x[u + i] + hu[u + i];
        }
    }
    activate(&mut rh[..batch * u], u, cell.recurrent_activation);
    for (r, h) in rh[..batch * u].iter_mut().zip(h) {
        *r *= h;
    }
}

/// See `SequenceOps::rnn_reset_state_backward`.
pub fn rnn_reset_state_backward(step: &RnnStep, g: RnnResetGrads<&[f32], &mut [f32]>) {
    let (cell, s, batch) = (&step.cell, step.s, step.batch);
    let RnnResetGrads { drh, pre, post, h, dh, dxw, dhu, dbias } = g;
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gu, nu) = (cell.gates() * u, batch * u);
    for n in 0..batch {
        let dx = &mut dxw[(n * steps + t) * gu..][..gu];
        for i in 0..u {
            let idx = n * u + i;
            let (drh, hp) = match (drh, h) {
                (Some(d), Some(h)) => (d[idx], h[idx]),
                _ => (0.0, 0.0),
            };
            let r = post[nu + idx];
            let dzr = drh * hp * activation::derivative(cell.recurrent_activation, pre[nu + idx], r);
            dx[u + i] = dzr;
            dhu[n * gu + u + i] = dzr;
            dh[idx] += drh * r;
        }
    }
    add_rows(dbias, dxw, batch, |n| (n * steps + t) * gu, gu);
}

/// See `SequenceOps::merge_directions`.
pub fn merge_directions(d: &Directions, fwd: &[f32], bwd: &[f32], y: &mut [f32]) {
    let &Directions { mode, batch, steps, units } = d;
    let width = if mode == MergeMode::Concat { 2 * units } else { units };
    for n in 0..batch {
        for t in 0..steps {
            let f = &fwd[(n * steps + t) * units..][..units];
            let b = &bwd[(n * steps + steps - 1 - t) * units..][..units];
            let y = &mut y[(n * steps + t) * width..][..width];
            match mode {
                MergeMode::Concat => {
                    y[..units].copy_from_slice(f);
                    y[units..].copy_from_slice(b);
                }
                MergeMode::Sum => y.iter_mut().zip(f.iter().zip(b)).for_each(|(y, (f, b))| *y = f + b),
                MergeMode::Mul => y.iter_mut().zip(f.iter().zip(b)).for_each(|(y, (f, b))| *y = f * b),
                MergeMode::Ave => y.iter_mut().zip(f.iter().zip(b)).for_each(|(y, (f, b))| *y = (f + b) / 2.0),
            }
        }
    }
}

/// See `SequenceOps::merge_directions_backward`.
pub fn merge_directions_backward(d: &Directions, dy: &[f32], fwd: &[f32], bwd: &[f32], dfwd: &mut [f32], dbwd: &mut [f32]) {
    let &Directions { mode, batch, steps, units } = d;
    let width = if mode == MergeMode::Concat { 2 * units } else { units };
    for n in 0..batch {
        for t in 0..steps {
            let (fi, bi) = ((n * steps + t) * units, (n * steps + steps - 1 - t) * units);
            let dy = &dy[(n * steps + t) * width..][..width];
            for j in 0..units {
                let (df, db) = match mode {
                    MergeMode::Concat => (dy[j], dy[units + j]),
                    MergeMode::Sum => (dy[j], dy[j]),
                    MergeMode::Mul => (dy[j] * bwd[bi + j], dy[j] * fwd[fi + j]),
                    MergeMode::Ave => (dy[j] / 2.0, dy[j] / 2.0),
                };
                dfwd[fi + j] = df;
                dbwd[bi + j] = db;
            }
        }
    }
}

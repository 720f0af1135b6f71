//! Embedding lookups and the step kernels of the recurrent layers on the CPU. The matrix products
//! of a recurrent layer (all time steps' `x K` at once, `h R` per step) run through the GEMM;
//! these kernels do the gate arithmetic of one step in place, touching each value once.

use crate::activations::Activation;
use crate::backend::{CellKind, MergeMode, RnnCell};

/// Row `i` of `y` is row `ids[i]` of `table`.
pub fn embedding(ids: &[f32], dim: usize, table: &[f32], y: &mut [f32]) {
    for (row, &id) in y.chunks_exact_mut(dim).zip(ids) {
        let id = id as usize;
        row.copy_from_slice(&table[id * dim..(id + 1) * dim]);
    }
}

/// `dtable` (overwritten) gets row `i` of `dy` added into row `ids[i]`, in order.
pub fn embedding_backward(ids: &[f32], dim: usize, dy: &[f32], dtable: &mut [f32]) {
    dtable.fill(0.0);
    for (row, &id) in dy.chunks_exact(dim).zip(ids) {
        let id = id as usize;
        for (d, g) in dtable[id * dim..(id + 1) * dim].iter_mut().zip(row) {
            *d += g;
        }
    }
}

/// See [`crate::backend::Backend::rnn_step`].
#[allow(clippy::too_many_arguments)]
pub fn rnn_step(
    cell: &RnnCell,
    s: usize,
    batch: usize,
    xw: &[f32],
    hu: Option<&[f32]>,
    rbias: Option<&[f32]>,
    prev: Option<(&[f32], &[f32])>,
    pre: &mut [f32],
    post: &mut [f32],
    h: &mut [f32],
    y: &mut [f32],
) {
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gu, st) = (cell.gates() * u, cell.stored());
    let (act, ract) = (cell.activation, cell.recurrent_activation);
    let hu_all = hu;
    for n in 0..batch {
        let x = &xw[(n * steps + t) * gu..][..gu];
        let hu = hu.map(|h| &h[n * gu..][..gu]);
        let rec = |k: usize| hu.map_or(0.0, |h| h[k]) + rbias.map_or(0.0, |b| b[k]);
        let (pre, post) = (&mut pre[n * st..][..st], &mut post[n * st..][..st]);
        let h = &mut h[n * u..][..u];
        match cell.kind {
            CellKind::Simple => {
                for j in 0..u {
                    let a = x[j] + rec(j);
                    pre[j] = a;
                    post[j] = act.apply(a);
                    h[j] = post[j];
                }
            }
            CellKind::Lstm => {
                for j in 0..u {
                    let zs = [x[j] + rec(j), x[u + j] + rec(u + j), x[2 * u + j] + rec(2 * u + j), x[3 * u + j] + rec(3 * u + j)];
                    let (i, f, cc, o) = (ract.apply(zs[0]), ract.apply(zs[1]), act.apply(zs[2]), ract.apply(zs[3]));
                    let c_prev = prev.map_or(0.0, |(_, p)| p[n * st + 4 * u + j]);
                    let c = f * c_prev + i * cc;
                    let ac = act.apply(c);
                    for (k, (z, a)) in zs.into_iter().zip([i, f, cc, o]).enumerate() {
                        pre[k * u + j] = z;
                        post[k * u + j] = a;
                    }
                    pre[4 * u + j] = c;
                    post[4 * u + j] = ac;
                    h[j] = o * ac;
                }
            }
            CellKind::GruResetBefore => {
                // `hu` holds h R, then (r h) R.
                let hu2 = hu.map(|_| &hu_all.expect("hu given")[(batch + n) * gu..][..gu]);
                for j in 0..u {
                    let zz = x[j] + rec(j);
                    let zr = x[u + j] + rec(u + j);
                    let (z, r) = (ract.apply(zz), ract.apply(zr));
                    let zh = x[2 * u + j] + hu2.map_or(0.0, |h| h[2 * u + j]);
                    let hh = act.apply(zh);
                    let hp = prev.map_or(0.0, |(p, _)| p[n * u + j]);
                    pre[j] = zz;
                    pre[u + j] = zr;
                    pre[2 * u + j] = zh;
                    pre[3 * u + j] = 0.0;
                    post[j] = z;
                    post[u + j] = r;
                    post[2 * u + j] = hh;
                    post[3 * u + j] = 0.0;
                    h[j] = z * hp + (1.0 - z) * hh;
                }
            }
            CellKind::Gru => {
                for j in 0..u {
                    let zz = x[j] + rec(j);
                    let zr = x[u + j] + rec(u + j);
                    let hrec = rec(2 * u + j);
                    let (z, r) = (ract.apply(zz), ract.apply(zr));
                    let zh = x[2 * u + j] + r * hrec;
                    let hh = act.apply(zh);
                    let hp = prev.map_or(0.0, |(p, _)| p[n * u + j]);
                    pre[j] = zz;
                    pre[u + j] = zr;
                    pre[2 * u + j] = zh;
                    pre[3 * u + j] = hrec;
                    post[j] = z;
                    post[u + j] = r;
                    post[2 * u + j] = hh;
                    post[3 * u + j] = 0.0;
                    h[j] = z * hp + (1.0 - z) * hh;
                }
            }
        }
        if cell.return_sequences {
            y[(n * steps + s) * u..][..u].copy_from_slice(h);
        } else if s + 1 == steps {
            y[n * u..][..u].copy_from_slice(h);
        }
    }
}

/// See [`crate::backend::Backend::rnn_step_backward`].
#[allow(clippy::too_many_arguments)]
pub fn rnn_step_backward(
    cell: &RnnCell,
    s: usize,
    batch: usize,
    dy: &[f32],
    pre: &[f32],
    post: &[f32],
    prev: Option<(&[f32], &[f32])>,
    dh: &mut [f32],
    dc: &mut [f32],
    dxw: &mut [f32],
    dhu: &mut [f32],
    mut dbias: Option<&mut [f32]>,
    mut drbias: Option<&mut [f32]>,
) {
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gu, st) = (cell.gates() * u, cell.stored());
    let (act, ract) = (cell.activation, cell.recurrent_activation);
    let d = |a: Activation, x: f32, y: f32| a.derivative(x, y);
    let (dhu, dhu_second) = if cell.kind == CellKind::GruResetBefore { dhu.split_at_mut(batch * gu) } else { (dhu, &mut [][..]) };
    for n in 0..batch {
        let dh = &mut dh[n * u..][..u];
        if cell.return_sequences {
            dh.iter_mut().zip(&dy[(n * steps + s) * u..][..u]).for_each(|(a, b)| *a += b);
        } else if s + 1 == steps {
            dh.iter_mut().zip(&dy[n * u..][..u]).for_each(|(a, b)| *a += b);
        }
        let (pre, post) = (&pre[n * st..][..st], &post[n * st..][..st]);
        let dx = &mut dxw[(n * steps + t) * gu..][..gu];
        let dr = &mut dhu[n * gu..][..gu];
        match cell.kind {
            CellKind::Simple => {
                for j in 0..u {
                    let da = dh[j] * d(act, pre[j], post[j]);
                    dx[j] = da;
                    dr[j] = da;
                    dh[j] = 0.0;
                }
            }
            CellKind::Lstm => {
                let dc = &mut dc[n * u..][..u];
                for j in 0..u {
                    let (i, f, cc, o, ac) = (post[j], post[u + j], post[2 * u + j], post[3 * u + j], post[4 * u + j]);
                    let c_prev = prev.map_or(0.0, |(_, p)| p[n * st + 4 * u + j]);
                    let dct = dc[j] + dh[j] * o * d(act, pre[4 * u + j], ac);
                    let grads = [
                        dct * cc * d(ract, pre[j], i),
                        dct * c_prev * d(ract, pre[u + j], f),
                        dct * i * d(act, pre[2 * u + j], cc),
                        dh[j] * ac * d(ract, pre[3 * u + j], o),
                    ];
                    for (k, g) in grads.into_iter().enumerate() {
                        dx[k * u + j] = g;
                        dr[k * u + j] = g;
                    }
                    dc[j] = dct * f;
                    dh[j] = 0.0;
                }
            }
            CellKind::GruResetBefore => {
                // `dhu` holds the gradients of h R (the reset gate's block is filled in by
                // `rnn_reset_state_backward`) and of (r h) R.
                for j in 0..u {
                    let (z, hh) = (post[j], post[2 * u + j]);
                    let hp = prev.map_or(0.0, |(p, _)| p[n * u + j]);
                    let dzh = dh[j] * (1.0 - z) * d(act, pre[2 * u + j], hh);
                    let dzz = dh[j] * (hp - hh) * d(ract, pre[j], z);
                    dx[j] = dzz;
                    dx[2 * u + j] = dzh;
                    dr[j] = dzz;
                    dr[2 * u + j] = 0.0;
                    dh[j] *= z;
                }
                let dr2 = &mut dhu_second[n * gu..][..gu];
                dr2[..2 * u].fill(0.0);
                dr2[2 * u..].copy_from_slice(&dx[2 * u..]);
                continue;
            }
            CellKind::Gru => {
                for j in 0..u {
                    let (z, r, hh) = (post[j], post[u + j], post[2 * u + j]);
                    let hp = prev.map_or(0.0, |(p, _)| p[n * u + j]);
                    let dzh = dh[j] * (1.0 - z) * d(act, pre[2 * u + j], hh);
                    let dzz = dh[j] * (hp - hh) * d(ract, pre[j], z);
                    let dzr = dzh * pre[3 * u + j] * d(ract, pre[u + j], r);
                    dx[j] = dzz;
                    dx[u + j] = dzr;
                    dx[2 * u + j] = dzh;
                    dr[j] = dzz;
                    dr[u + j] = dzr;
                    dr[2 * u + j] = dzh * r;
                    dh[j] *= z;
                }
            }
        }
        if let Some(b) = dbias.as_deref_mut() {
            b.iter_mut().zip(dx.iter()).for_each(|(a, g)| *a += g);
        }
        if let Some(b) = drbias.as_deref_mut() {
            b.iter_mut().zip(dr.iter()).for_each(|(a, g)| *a += g);
        }
    }
}

/// See [`crate::backend::Backend::rnn_reset_state`].
pub fn rnn_reset_state(cell: &RnnCell, s: usize, batch: usize, xw: &[f32], hu: &[f32], h: &[f32], rh: &mut [f32]) {
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let gu = cell.gates() * u;
    for n in 0..batch {
        let x = &xw[(n * steps + t) * gu..][..gu];
        let hu = &hu[n * gu..][..gu];
        for j in 0..u {
            let r = cell.recurrent_activation.apply(x[u + j] + hu[u + j]);
            rh[n * u + j] = r * h[n * u + j];
        }
    }
}

/// See [`crate::backend::Backend::rnn_reset_state_backward`].
#[allow(clippy::too_many_arguments)]
pub fn rnn_reset_state_backward(
    cell: &RnnCell,
    s: usize,
    batch: usize,
    drh: Option<&[f32]>,
    pre: &[f32],
    post: &[f32],
    h: Option<&[f32]>,
    dh: &mut [f32],
    dxw: &mut [f32],
    dhu: &mut [f32],
    mut dbias: Option<&mut [f32]>,
) {
    let (u, steps, t) = (cell.units, cell.timesteps, cell.time(s));
    let (gu, st) = (cell.gates() * u, cell.stored());
    for n in 0..batch {
        let dx = &mut dxw[(n * steps + t) * gu..][..gu];
        for j in 0..u {
            let (drh, hp) = match (drh, h) {
                (Some(d), Some(h)) => (d[n * u + j], h[n * u + j]),
                _ => (0.0, 0.0),
            };
            let r = post[n * st + u + j];
            let dzr = drh * hp * cell.recurrent_activation.derivative(pre[n * st + u + j], r);
            dx[u + j] = dzr;
            dhu[n * gu + u + j] = dzr;
            dh[n * u + j] += drh * r;
        }
        if let Some(b) = dbias.as_deref_mut() {
            b.iter_mut().zip(dx.iter()).for_each(|(a, g)| *a += g);
        }
    }
}

/// See [`crate::backend::Backend::merge_directions`].
pub fn merge_directions(mode: MergeMode, batch: usize, steps: usize, units: usize, fwd: &[f32], bwd: &[f32], y: &mut [f32]) {
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

/// See [`crate::backend::Backend::merge_directions_backward`].
#[allow(clippy::too_many_arguments)]
pub fn merge_directions_backward(
    mode: MergeMode,
    batch: usize,
    steps: usize,
    units: usize,
    dy: &[f32],
    fwd: &[f32],
    bwd: &[f32],
    dfwd: &mut [f32],
    dbwd: &mut [f32],
) {
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

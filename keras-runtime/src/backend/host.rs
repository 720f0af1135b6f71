//! The op families' default kernels: a kernel's tensors copied to the host, the CPU backend's
//! kernel run on the copies, the written tensors copied back. Slow, but any backend with a core
//! runs every layer through them. A failed transfer is recorded with [`Device::fail`] (the
//! kernel then computes on NaN), and surfaces at the next read, as a kernel error would.

use super::{Device, NormGrads, RnnResetGrads, RnnStep, RnnStepGrads, RnnStepIo, cpu};

/// A view's contents on the host.
pub(super) fn read<D: Device>(dev: &D, v: D::View<'_>) -> Vec<f32> {
    let mut host = vec![f32::NAN; D::view_len(v)];
    if let Err(e) = dev.download(v, &mut host) {
        dev.fail(e);
    }
    host
}

/// A writable view's contents on the host (kernels that add to their output read it first).
pub(super) fn read_mut<D: Device>(dev: &D, v: &D::ViewMut<'_>) -> Vec<f32> {
    read(dev, D::freeze(v))
}

/// Copies host data back into a view.
pub(super) fn write<D: Device>(dev: &D, host: &[f32], v: D::ViewMut<'_>) {
    if let Err(e) = dev.upload(host, v) {
        dev.fail(e);
    }
}

/// [`write`] for an optional output.
pub(super) fn write_opt<D: Device>(dev: &D, host: Option<Vec<f32>>, v: Option<D::ViewMut<'_>>) {
    if let (Some(h), Some(v)) = (host, v) {
        write(dev, &h, v);
    }
}

/// A kernel with `N` inputs and one output, on host copies.
pub(super) fn run<D: Device, const N: usize>(
    dev: &D,
    inputs: &[D::View<'_>; N],
    out: D::ViewMut<'_>,
    f: impl FnOnce([&[f32]; N], &mut [f32]),
) {
    let hosts: [Vec<f32>; N] = std::array::from_fn(|i| read(dev, inputs[i]));
    let mut o = read_mut(dev, &out);
    f(std::array::from_fn(|i| hosts[i].as_slice()), &mut o);
    write(dev, &o, out);
}

/// Host copies of a normalization's gradients.
pub(super) struct Grads {
    dgamma: Option<Vec<f32>>,
    dbeta: Option<Vec<f32>>,
    dx: Option<Vec<f32>>,
}

impl Grads {
    pub(super) fn read<D: Device>(dev: &D, g: &NormGrads<'_, D>) -> Grads {
        let r = |v: &Option<D::ViewMut<'_>>| v.as_ref().map(|v| read_mut(dev, v));
        Grads { dgamma: r(&g.dgamma), dbeta: r(&g.dbeta), dx: r(&g.dx) }
    }

    pub(super) fn as_mut(&mut self) -> NormGrads<'_, cpu::Cpu> {
        NormGrads { dgamma: self.dgamma.as_deref_mut(), dbeta: self.dbeta.as_deref_mut(), dx: self.dx.as_deref_mut() }
    }

    pub(super) fn write<D: Device>(self, dev: &D, g: NormGrads<'_, D>) {
        write_opt(dev, self.dgamma, g.dgamma);
        write_opt(dev, self.dbeta, g.dbeta);
        write_opt(dev, self.dx, g.dx);
    }
}

/// The default of `SequenceOps::rnn_step`.
pub(super) fn rnn_step<D: Device>(dev: &D, s: &RnnStep, io: RnnStepIo<'_, D>) {
    let xw = read(dev, io.xw);
    let (hu, rbias) = (io.hu.map(|v| read(dev, v)), io.rbias.map(|v| read(dev, v)));
    let prev = io.prev.map(|(h, p)| (read(dev, h), read(dev, p)));
    let (mut pre, mut post) = (read_mut(dev, &io.pre), read_mut(dev, &io.post));
    let (mut h, mut y) = (read_mut(dev, &io.h), read_mut(dev, &io.y));
    cpu::recurrent::rnn_step(
        s,
        RnnStepIo {
            xw: &xw,
            hu: hu.as_deref(),
            rbias: rbias.as_deref(),
            prev: prev.as_ref().map(|(h, p)| (h.as_slice(), p.as_slice())),
            pre: &mut pre,
            post: &mut post,
            h: &mut h,
            y: &mut y,
        },
    );
    write(dev, &pre, io.pre);
    write(dev, &post, io.post);
    write(dev, &h, io.h);
    write(dev, &y, io.y);
}

/// The default of `SequenceOps::rnn_step_backward`.
pub(super) fn rnn_step_backward<D: Device>(dev: &D, s: &RnnStep, g: RnnStepGrads<'_, D>) {
    let (dy, pre, post) = (read(dev, g.dy), read(dev, g.pre), read(dev, g.post));
    let prev = g.prev.map(|(h, p)| (read(dev, h), read(dev, p)));
    let (mut dh, mut dc) = (read_mut(dev, &g.dh), read_mut(dev, &g.dc));
    let (mut dxw, mut dhu, mut tmp) = (read_mut(dev, &g.dxw), read_mut(dev, &g.dhu), read_mut(dev, &g.tmp));
    let mut dbias = g.dbias.as_ref().map(|v| read_mut(dev, v));
    let mut drbias = g.drbias.as_ref().map(|v| read_mut(dev, v));
    cpu::recurrent::rnn_step_backward(
        s,
        RnnStepGrads {
            dy: &dy,
            pre: &pre,
            post: &post,
            prev: prev.as_ref().map(|(h, p)| (h.as_slice(), p.as_slice())),
            dh: &mut dh,
            dc: &mut dc,
            dxw: &mut dxw,
            dhu: &mut dhu,
            tmp: &mut tmp,
            dbias: dbias.as_deref_mut(),
            drbias: drbias.as_deref_mut(),
        },
    );
    write(dev, &dh, g.dh);
    write(dev, &dc, g.dc);
    write(dev, &dxw, g.dxw);
    write(dev, &dhu, g.dhu);
    write(dev, &tmp, g.tmp);
    write_opt(dev, dbias, g.dbias);
    write_opt(dev, drbias, g.drbias);
}

/// The default of `SequenceOps::rnn_reset_state_backward`.
pub(super) fn rnn_reset_state_backward<D: Device>(dev: &D, s: &RnnStep, g: RnnResetGrads<'_, D>) {
    let drh = g.drh.map(|v| read(dev, v));
    let (pre, post, h) = (read(dev, g.pre), read(dev, g.post), g.h.map(|v| read(dev, v)));
    let (mut dh, mut dxw, mut dhu) = (read_mut(dev, &g.dh), read_mut(dev, &g.dxw), read_mut(dev, &g.dhu));
    let mut dbias = g.dbias.as_ref().map(|v| read_mut(dev, v));
    cpu::recurrent::rnn_reset_state_backward(
        s,
        RnnResetGrads {
            drh: drh.as_deref(),
            pre: &pre,
            post: &post,
            h: h.as_deref(),
            dh: &mut dh,
            dxw: &mut dxw,
            dhu: &mut dhu,
            dbias: dbias.as_deref_mut(),
        },
    );
    write(dev, &dh, g.dh);
    write(dev, &dxw, g.dxw);
    write(dev, &dhu, g.dhu);
    write_opt(dev, dbias, g.dbias);
}

//! [`RandomOps`] on the device (`kernels/random.cu`): the CPU backend's counter-based generator,
//! keyed by the model's random stream buffer, which the kernels read and `advance` moves on.

use super::kernels::RANDOM;
use super::{Cuda, CudaView, CudaViewMut, GpuDevice, KernelArg, LaunchConfig};
use crate::backend::ops::{Draw, RandomStream};
use crate::backend::{Device, RandomOps};
use crate::error::Error;

impl<D: GpuDevice> RandomOps for Cuda<D> {
    fn dropout(&self, d: &Draw, stream: CudaView<'_>, x: CudaView<'_>, y: CudaViewMut<'_>, mask: CudaViewMut<'_>) {
        let n = x.len;
        if d.channels == 0 {
            if !self.check("dropout", &[(stream.len, RandomStream::LEN), (y.len, n), (mask.len, n)]) {
                return;
            }
            let n64 = n as u64;
            let args = [
                KernelArg::new(d),
                KernelArg::new(&stream.ptr),
                KernelArg::new(&x.ptr),
                KernelArg::new(&y.ptr),
                KernelArg::new(&mask.ptr),
                KernelArg::new(&n64),
            ];
            self.launch(&RANDOM, "dropout", n, &args);
            return;
        }
        let checks = [(stream.len, RandomStream::LEN), (y.len, n), (mask.len, d.rows * d.channels)];
        let Some(sample) = self.channel_samples("spatial dropout", d, n) else { return };
        if !self.check("spatial dropout", &checks) {
            return;
        }
        let args = [KernelArg::new(d), KernelArg::new(&stream.ptr), KernelArg::new(&mask.ptr)];
        self.launch(&RANDOM, "dropout_mask", d.rows * d.channels, &args);
        self.channels(d, Self::freeze(&mask), sample, x, y);
    }

    fn dropout_backward(&self, d: &Draw, g: CudaView<'_>, mask: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = g.len;
        if d.channels == 0 {
            if self.check("dropout backward", &[(mask.len, n), (dx.len, n)]) {
                let n64 = n as u64;
                let args =
                    [KernelArg::new(d), KernelArg::new(&g.ptr), KernelArg::new(&mask.ptr), KernelArg::new(&dx.ptr), KernelArg::new(&n64)];
                self.launch(&RANDOM, "dropout_backward", n, &args);
            }
            return;
        }
        let Some(sample) = self.channel_samples("spatial dropout backward", d, n) else { return };
        if self.check("spatial dropout backward", &[(mask.len, d.rows * d.channels), (dx.len, n)]) {
            self.channels(d, mask, sample, g, dx);
        }
    }

    fn gaussian_noise(&self, d: &Draw, stream: CudaView<'_>, x: CudaView<'_>, y: CudaViewMut<'_>, noise: Option<CudaViewMut<'_>>) {
        let n = x.len;
        let mut checks = vec![(stream.len, RandomStream::LEN), (y.len, n)];
        checks.extend(noise.as_ref().map(|m| (m.len, n)));
        if !self.check("gaussian noise", &checks) {
            return;
        }
        let (noise, n64) = (noise.map_or(0, |m| m.ptr), n as u64);
        let args = [
            KernelArg::new(d),
            KernelArg::new(&stream.ptr),
            KernelArg::new(&x.ptr),
            KernelArg::new(&y.ptr),
            KernelArg::new(&noise),
            KernelArg::new(&n64),
        ];
        self.launch(&RANDOM, "gaussian_noise", n, &args);
    }

    fn advance(&self, stream: CudaViewMut<'_>) {
        if self.check("random stream", &[(stream.len, RandomStream::LEN)]) {
            self.launch_with(&RANDOM, "advance", LaunchConfig::linear(1, 32), &[KernelArg::new(&stream.ptr)]);
        }
    }
}

impl<D: GpuDevice> Cuda<D> {
    /// The values per sample of a spatial dropout over `n` values: `n` must be `d.rows` whole
    /// samples, each made of positions of `d.channels` values (the kernels index the mask by
    /// sample and channel). `None`, with the failure recorded, otherwise.
    fn channel_samples(&self, what: &str, d: &Draw, n: usize) -> Option<usize> {
        if n == 0 {
            return Some(0);
        }
        let sample = n.checked_div(d.rows).unwrap_or(0);
        if d.rows == 0 || sample * d.rows != n || !sample.is_multiple_of(d.channels) {
            let expected = format!("{} samples of a multiple of {} values", d.rows, d.channels);
            self.fail(Error::shape(what, expected, format!("{n} values")));
            return None;
        }
        Some(sample)
    }

    /// Spatial dropout's mask applied to `x` (forward) or to the gradient (backward).
    fn channels(&self, d: &Draw, mask: CudaView<'_>, sample: usize, x: CudaView<'_>, y: CudaViewMut<'_>) {
        let (sample64, n64) = (sample as u64, x.len as u64);
        let args = [
            KernelArg::new(d),
            KernelArg::new(&mask.ptr),
            KernelArg::new(&sample64),
            KernelArg::new(&x.ptr),
            KernelArg::new(&y.ptr),
            KernelArg::new(&n64),
        ];
        self.launch(&RANDOM, "dropout_channels", x.len, &args);
    }
}

//! [`WindowOps`] on the device (`kernels/window.cu`): im2col and col2im, the depthwise products
//! over patch rows, pooling and its backward pass, one thread per output value. col2im and the
//! pooling backward pass gather each input's terms in the CPU backend's order, so they agree
//! with it bit for bit; the depthwise kernel gradient sums its rows in a block (deterministic,
//! within rounding of the CPU's row-by-row sum).

use super::kernels::WINDOW;
use super::{Cuda, CudaView, CudaViewMut, GpuDevice, KernelArg, LaunchConfig};
use crate::backend::ops::{Depthwise, Pool2d, Window2d};
use crate::backend::{Device, WindowOps};
use crate::error::Error;

/// Threads per block of `depthwise_kernel_grad`, summing rows of `rows`: whole warps, at most 256.
fn sum_threads(rows: usize) -> u32 {
    rows.div_ceil(32).clamp(1, 8) as u32 * 32
}

impl<D: GpuDevice> Cuda<D> {
    /// Checks that a gather over `g` can invert its taps: strides and dilations at least 1 (as
    /// every Keras layer has them).
    fn window_invertible(&self, what: &str, g: &Window2d) -> bool {
        if g.sh == 0 || g.sw == 0 || g.dh == 0 || g.dw == 0 {
            let found = format!("strides ({}, {}), dilations ({}, {})", g.sh, g.sw, g.dh, g.dw);
            self.fail(Error::value(what, "strides and dilations of at least 1", found));
            return false;
        }
        true
    }

    /// Launches a window kernel taking `(geometry, batch, input, .., output)` over `n` outputs.
    fn window_launch<T: Copy + 'static>(&self, kernel: &str, geometry: &T, batch: usize, ptrs: &[u64], n: usize) {
        let batch = batch as u64;
        let mut args = vec![KernelArg::new(geometry), KernelArg::new(&batch)];
        args.extend(ptrs.iter().map(KernelArg::new));
        self.launch(&WINDOW, kernel, n, &args);
    }
}

impl<D: GpuDevice> WindowOps for Cuda<D> {
    fn im2col(&self, g: &Window2d, batch: usize, x: CudaView<'_>, cols: CudaViewMut<'_>) {
        let n = batch * g.out_pixels() * g.patch_len();
        if self.check("im2col", &[(x.len, batch * g.in_len()), (cols.len, n)]) {
            self.window_launch("im2col", g, batch, &[x.ptr, cols.ptr], n);
        }
    }

    fn col2im(&self, g: &Window2d, batch: usize, cols: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = batch * g.in_len();
        if self.check("col2im", &[(cols.len, batch * g.out_pixels() * g.patch_len()), (dx.len, n)]) && self.window_invertible("col2im", g) {
            self.window_launch("col2im", g, batch, &[cols.ptr, dx.ptr], n);
        }
    }

    fn depthwise(&self, d: &Depthwise, cols: CudaView<'_>, kernel: CudaView<'_>, y: CudaViewMut<'_>) {
        let n = d.rows * d.c * d.dm;
        if self.check("depthwise", &[(cols.len, d.rows * d.taps * d.c), (kernel.len, d.taps * d.c * d.dm), (y.len, n)]) {
            let args = [KernelArg::new(d), KernelArg::new(&cols.ptr), KernelArg::new(&kernel.ptr), KernelArg::new(&y.ptr)];
            self.launch(&WINDOW, "depthwise", n, &args);
        }
    }

    fn depthwise_kernel_grad(&self, d: &Depthwise, cols: CudaView<'_>, dy: CudaView<'_>, dkernel: CudaViewMut<'_>) {
        let n = d.taps * d.c * d.dm;
        let checks = [(cols.len, d.rows * d.taps * d.c), (dy.len, d.rows * d.c * d.dm), (dkernel.len, n)];
        if !self.check("depthwise kernel gradient", &checks) || n == 0 {
            return;
        }
        // One block per kernel value, at most 65535 blocks (the kernel strides over the rest).
        let config = LaunchConfig::linear(n.min(65535) as u32, sum_threads(d.rows));
        let args = [KernelArg::new(d), KernelArg::new(&cols.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dkernel.ptr)];
        self.launch_with(&WINDOW, "depthwise_kernel_grad", config, &args);
    }

    fn depthwise_input_grad(&self, d: &Depthwise, kernel: CudaView<'_>, dy: CudaView<'_>, dcols: CudaViewMut<'_>) {
        let n = d.rows * d.taps * d.c;
        if self.check("depthwise input gradient", &[(kernel.len, d.taps * d.c * d.dm), (dy.len, d.rows * d.c * d.dm), (dcols.len, n)]) {
            let args = [KernelArg::new(d), KernelArg::new(&kernel.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dcols.ptr)];
            self.launch(&WINDOW, "depthwise_input_grad", n, &args);
        }
    }

    fn pool2d(&self, p: &Pool2d, batch: usize, x: CudaView<'_>, y: CudaViewMut<'_>) {
        let g = &p.window;
        let n = batch * g.out_pixels() * g.c;
        if self.check("pool2d", &[(x.len, batch * g.in_len()), (y.len, n)]) {
            self.window_launch("pool2d", p, batch, &[x.ptr, y.ptr], n);
        }
    }

    fn pool2d_backward(&self, p: &Pool2d, batch: usize, x: CudaView<'_>, y: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        let g = &p.window;
        let (n, out) = (batch * g.in_len(), batch * g.out_pixels() * g.c);
        let checks = [(x.len, n), (y.len, out), (dy.len, out), (dx.len, n)];
        if self.check("pool2d backward", &checks) && self.window_invertible("pool2d backward", g) {
            self.window_launch("pool2d_backward", p, batch, &[x.ptr, y.ptr, dy.ptr, dx.ptr], n);
        }
    }
}

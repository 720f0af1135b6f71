//! [`NormOps`] on the device (`kernels/norm.cu`): batch and layer normalization, their
//! statistics and backward passes; the preprocessing layers' standardization and rescaling.

use super::kernels::NORM;
use super::{Cuda, CudaView, CudaViewMut, GpuDevice, KernelArg};
use crate::backend::NormOps;
use crate::backend::ops::{Affine, BatchStats, Norm, NormGrads, Rescale, Standardize};

/// The address of an optional view, or null.
fn opt(ptr: Option<u64>) -> u64 {
    ptr.unwrap_or(0)
}

impl<D: GpuDevice> NormOps for Cuda<D> {
    fn moments(&self, n: &Norm, x: CudaView<'_>, mean: CudaViewMut<'_>, var: CudaViewMut<'_>) {
        if self.check("moments", &[(x.len, n.rows * n.cols), (mean.len, n.cols), (var.len, n.cols)]) {
            let args = [KernelArg::new(n), KernelArg::new(&x.ptr), KernelArg::new(&mean.ptr), KernelArg::new(&var.ptr)];
            self.launch(&NORM, "moments", n.cols, &args);
        }
    }

    fn moving_average(&self, momentum: f32, moving: CudaViewMut<'_>, value: CudaView<'_>) {
        let len = moving.len as u64;
        if self.check("moving_average", &[(value.len, moving.len)]) {
            let args = [KernelArg::new(&momentum), KernelArg::new(&moving.ptr), KernelArg::new(&value.ptr), KernelArg::new(&len)];
            self.launch(&NORM, "moving_average", moving.len, &args);
        }
    }

    fn batch_norm(
        &self,
        n: &Norm,
        x: CudaView<'_>,
        mean: CudaView<'_>,
        var: CudaViewMut<'_>,
        affine: Affine<CudaView<'_>>,
        y: CudaViewMut<'_>,
    ) {
        let size = n.rows * n.cols;
        let mut checks = vec![(x.len, size), (mean.len, n.cols), (var.len, n.cols), (y.len, size)];
        checks.extend(affine.gamma.iter().chain(&affine.beta).map(|v| (v.len, n.cols)));
        if !self.check("batch_norm", &checks) {
            return;
        }
        self.launch(&NORM, "batch_norm_inv", n.cols, &[KernelArg::new(n), KernelArg::new(&var.ptr)]);
        let (gamma, beta) = (opt(affine.gamma.map(|v| v.ptr)), opt(affine.beta.map(|v| v.ptr)));
        let args = [
            KernelArg::new(n),
            KernelArg::new(&x.ptr),
            KernelArg::new(&mean.ptr),
            KernelArg::new(&var.ptr),
            KernelArg::new(&gamma),
            KernelArg::new(&beta),
            KernelArg::new(&y.ptr),
        ];
        self.launch(&NORM, "batch_norm", size, &args);
    }

    fn batch_norm_backward(
        &self,
        n: &Norm,
        x: CudaView<'_>,
        dy: CudaView<'_>,
        stats: BatchStats<CudaView<'_>>,
        gamma: Option<CudaView<'_>>,
        grads: NormGrads<CudaViewMut<'_>>,
    ) {
        let size = n.rows * n.cols;
        let mut checks = vec![(x.len, size), (dy.len, size), (stats.mean.len, n.cols), (stats.inv.len, n.cols)];
        checks.extend(gamma.iter().map(|g| (g.len, n.cols)));
        checks.extend(grads.dgamma.iter().chain(&grads.dbeta).map(|g| (g.len, n.cols)));
        checks.extend(grads.dx.iter().map(|g| (g.len, size)));
        if !self.check("batch_norm_backward", &checks) {
            return;
        }
        let gamma = opt(gamma.map(|g| g.ptr));
        let (dgamma, dbeta, dx) = (opt(grads.dgamma.map(|g| g.ptr)), opt(grads.dbeta.map(|g| g.ptr)), opt(grads.dx.map(|g| g.ptr)));
        let args = [
            KernelArg::new(n),
            KernelArg::new(&x.ptr),
            KernelArg::new(&dy.ptr),
            KernelArg::new(&stats.mean.ptr),
            KernelArg::new(&stats.inv.ptr),
            KernelArg::new(&gamma),
            KernelArg::new(&dgamma),
            KernelArg::new(&dbeta),
            KernelArg::new(&dx),
        ];
        self.launch(&NORM, "batch_norm_backward", n.cols, &args);
    }

    fn layer_norm(&self, n: &Norm, x: CudaView<'_>, affine: Affine<CudaView<'_>>, y: CudaViewMut<'_>, stats: CudaViewMut<'_>) {
        let size = n.rows * n.cols;
        let mut checks = vec![(x.len, size), (y.len, size), (stats.len, 2 * n.rows)];
        checks.extend(affine.gamma.iter().chain(&affine.beta).map(|v| (v.len, n.cols)));
        if !self.check("layer_norm", &checks) {
            return;
        }
        let (gamma, beta) = (opt(affine.gamma.map(|v| v.ptr)), opt(affine.beta.map(|v| v.ptr)));
        let args = [
            KernelArg::new(n),
            KernelArg::new(&x.ptr),
            KernelArg::new(&gamma),
            KernelArg::new(&beta),
            KernelArg::new(&y.ptr),
            KernelArg::new(&stats.ptr),
        ];
        self.launch(&NORM, "layer_norm", n.rows, &args);
    }

    fn layer_norm_backward(
        &self,
        n: &Norm,
        x: CudaView<'_>,
        dy: CudaView<'_>,
        stats: CudaView<'_>,
        gamma: Option<CudaView<'_>>,
        grads: NormGrads<CudaViewMut<'_>>,
    ) {
        let size = n.rows * n.cols;
        let mut checks = vec![(x.len, size), (dy.len, size), (stats.len, 2 * n.rows)];
        checks.extend(gamma.iter().map(|g| (g.len, n.cols)));
        checks.extend(grads.dgamma.iter().chain(&grads.dbeta).map(|g| (g.len, n.cols)));
        checks.extend(grads.dx.iter().map(|g| (g.len, size)));
        if !self.check("layer_norm_backward", &checks) {
            return;
        }
        let (dgamma, dbeta) = (opt(grads.dgamma.map(|g| g.ptr)), opt(grads.dbeta.map(|g| g.ptr)));
        if dgamma != 0 || dbeta != 0 {
            let args = [
                KernelArg::new(n),
                KernelArg::new(&x.ptr),
                KernelArg::new(&dy.ptr),
                KernelArg::new(&stats.ptr),
                KernelArg::new(&dgamma),
                KernelArg::new(&dbeta),
            ];
            self.launch(&NORM, "layer_norm_param_grads", n.cols, &args);
        }
        if let Some(dx) = grads.dx {
            let gamma = opt(gamma.map(|g| g.ptr));
            let args = [
                KernelArg::new(n),
                KernelArg::new(&x.ptr),
                KernelArg::new(&dy.ptr),
                KernelArg::new(&stats.ptr),
                KernelArg::new(&gamma),
                KernelArg::new(&dx.ptr),
            ];
            self.launch(&NORM, "layer_norm_input_grad", n.rows, &args);
        }
    }

    fn standardize(&self, s: &Standardize, x: CudaView<'_>, mean: CudaView<'_>, var: CudaView<'_>, y: CudaViewMut<'_>) {
        if self.check("standardize", &[(x.len, s.len), (y.len, s.len), (mean.len, s.features), (var.len, s.features)]) {
            let args =
                [KernelArg::new(s), KernelArg::new(&x.ptr), KernelArg::new(&mean.ptr), KernelArg::new(&var.ptr), KernelArg::new(&y.ptr)];
            self.launch(&NORM, "standardize", s.len, &args);
        }
    }

    fn standardize_backward(&self, s: &Standardize, var: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        if self.check("standardize_backward", &[(dy.len, s.len), (dx.len, s.len), (var.len, s.features)]) {
            let args = [KernelArg::new(s), KernelArg::new(&var.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)];
            self.launch(&NORM, "standardize_backward", s.len, &args);
        }
    }

    fn rescale(&self, r: &Rescale, x: CudaView<'_>, y: CudaViewMut<'_>) {
        if self.check("rescale", &[(x.len, r.len), (y.len, r.len)]) {
            self.launch(&NORM, "rescale", r.len, &[KernelArg::new(r), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr)]);
        }
    }
}

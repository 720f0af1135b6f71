//! [`DenseOps`] on the device: the bias and activation epilogue and its backward pass
//! (`kernels/dense.cu`); the product itself is cuBLAS's. A dense layer with a bias and no
//! activation is one product with cuBLASLt's bias epilogue where the device has it.
//!
//! cuBLASLt's ReLU epilogue (`Epilogue::ReluBias`) is not used: cuBLASLt does not say what its
//! ReLU makes of NaN, and a `max(x, 0)` as `fmaxf` (what CUTLASS-style epilogues compute) turns a
//! NaN into 0, where Keras's relu and our `bias_act` kernel (`x < 0 ? 0 : x`) keep it. A NaN that
//! a diverging model produces would vanish inside a relu layer on the GPU and nowhere else, so a
//! relu layer keeps the product and the `bias_act` kernel (which costs the same one pass over
//! `y` as the bias epilogue followed by a relu pass would).

use super::driver::Epilogue;
use super::kernels::DENSE;
use super::{Cuda, CudaView, CudaViewMut, GemmCall, GpuDevice, KernelArg, LaunchConfig, Op};
use crate::backend::ops::{Activation, BiasAct, Elu, Gemm, Linear, Prelu, Relu};
use crate::backend::{DenseOps, Device};

/// Threads per block for a row-wise kernel over rows of `cols`: whole warps, at most 256.
fn row_threads(cols: usize) -> u32 {
    cols.div_ceil(32).clamp(1, 8) as u32 * 32
}

/// One block per row, at most 65535 blocks (the kernels stride over the rest).
fn row_blocks(rows: usize) -> u32 {
    rows.min(65535) as u32
}

/// A device address, or null.
fn ptr_or_null(v: Option<u64>) -> u64 {
    v.unwrap_or(0)
}

impl<D: GpuDevice> Cuda<D> {
    /// `y = x · w + bias` as one product with the bias epilogue (see [`GpuDevice::gemm_epilogue`]):
    /// `true` when it is queued (or failed, the failure recorded), `false` when the caller runs
    /// the product and the bias kernel instead: the device cannot fuse it, or a view is too short
    /// (the usual path then reports it, as it does without the epilogue).
    fn linear_bias(&self, l: &Linear, x: CudaView<'_>, w: CudaView<'_>, bias: CudaView<'_>, y: &CudaViewMut<'_>) -> bool {
        let &Linear { rows, k, n, .. } = l;
        if x.len < rows * k || w.len < k * n || y.len < rows * n || bias.len < n {
            return false;
        }
        if rows == 0 || n == 0 {
            return true;
        }
        // The row-major `y = x · w` is the column-major `yᵀ = wᵀ · xᵀ` (as in `Cuda::gemm`), whose
        // row `j` is column `j` of `y`: the epilogue's per-row bias is the per-feature bias.
        let call = GemmCall {
            transa: Op::N,
            transb: Op::N,
            m: n,
            n: rows,
            k,
            alpha: 1.0,
            a: w.ptr,
            lda: n,
            b: x.ptr,
            ldb: k.max(1),
            beta: 0.0,
            c: y.ptr,
            ldc: n,
            batch: 1,
            strides: [0; 3],
            tf32: self.tf32,
        };
        // SAFETY: the views hold the operands (checked above) with these leading dimensions,
        // and the bias its `n` floats.
        match unsafe { self.shared.device.gemm_epilogue(&call, Epilogue::Bias, bias.ptr) } {
            Ok(queued) => queued,
            Err(e) => {
                self.fail(e);
                true
            }
        }
    }
}

impl<D: GpuDevice> DenseOps for Cuda<D> {
    /// The product, then the bias and activation kernel; with a bias, no activation and no
    /// `pre`, one product with the bias epilogue where the device has it (the same values either
    /// way: the f32 product plus the bias, rounded to f32).
    fn linear(
        &self,
        l: &Linear,
        x: CudaView<'_>,
        w: CudaView<'_>,
        bias: Option<CudaView<'_>>,
        mut y: CudaViewMut<'_>,
        pre: Option<CudaViewMut<'_>>,
    ) {
        if let (Activation::Linear, Some(b), None) = (l.act, bias, &pre)
            && self.linear_bias(l, x, w, b, &y)
        {
            return;
        }
        self.gemm(&Gemm::nn(l.rows, l.n, l.k), x, w, Self::reborrow(&mut y));
        self.bias_act(&BiasAct { rows: l.rows, cols: l.n, act: l.act }, y, bias, pre);
    }

    fn bias_act(&self, a: &BiasAct, y: CudaViewMut<'_>, bias: Option<CudaView<'_>>, pre: Option<CudaViewMut<'_>>) {
        let n = a.rows * a.cols;
        let mut checks = vec![(y.len, n)];
        checks.extend(bias.map(|b| (b.len, a.cols)));
        checks.extend(pre.as_ref().map(|p| (p.len, n)));
        if n == 0 || !self.check("bias_act", &checks) {
            return;
        }
        let (bias, pre) = (ptr_or_null(bias.map(|b| b.ptr)), ptr_or_null(pre.map(|p| p.ptr)));
        let args = [KernelArg::new(a), KernelArg::new(&y.ptr), KernelArg::new(&bias), KernelArg::new(&pre)];
        if a.act == Activation::Softmax {
            self.launch_with(&DENSE, "bias_softmax", LaunchConfig::linear(row_blocks(a.rows), row_threads(a.cols)), &args);
        } else {
            self.launch(&DENSE, "bias_act", n, &args);
        }
    }

    fn act_backward(&self, a: &BiasAct, g: CudaViewMut<'_>, y: CudaView<'_>, pre: Option<CudaView<'_>>, dbias: Option<CudaViewMut<'_>>) {
        let n = a.rows * a.cols;
        let mut checks = vec![(g.len, n), (y.len, n)];
        if a.act.needs_input() {
            checks.push((pre.map_or(0, |p| p.len), n));
        }
        checks.extend(dbias.as_ref().map(|d| (d.len, a.cols)));
        if !self.check("act_backward", &checks) {
            return;
        }
        match a.act {
            Activation::Linear => {}
            Activation::Softmax if n > 0 => {
                let args = [KernelArg::new(a), KernelArg::new(&g.ptr), KernelArg::new(&y.ptr)];
                let config = LaunchConfig::linear(row_blocks(a.rows), row_threads(a.cols));
                self.launch_with(&DENSE, "softmax_backward", config, &args);
            }
            _ => {
                // The kernel reads `pre` only when it is not null: pass it only when checked.
                let pre = if a.act.needs_input() { ptr_or_null(pre.map(|p| p.ptr)) } else { 0 };
                let args = [KernelArg::new(a), KernelArg::new(&g.ptr), KernelArg::new(&y.ptr), KernelArg::new(&pre)];
                self.launch(&DENSE, "act_backward", n, &args);
            }
        }
        if let Some(db) = dbias {
            let (rows, cols) = (a.rows as u64, a.cols as u64);
            let args = [KernelArg::new(&g.ptr), KernelArg::new(&rows), KernelArg::new(&cols), KernelArg::new(&db.ptr)];
            self.launch(&DENSE, "column_sums", a.cols, &args);
        }
    }

    fn relu(&self, r: &Relu, x: CudaView<'_>, y: CudaViewMut<'_>) {
        if self.check("relu", &[(x.len, r.len), (y.len, r.len)]) {
            self.launch(&DENSE, "relu", r.len, &[KernelArg::new(r), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr)]);
        }
    }

    fn relu_backward(&self, r: &Relu, x: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        if self.check("relu_backward", &[(x.len, r.len), (dy.len, r.len), (dx.len, r.len)]) {
            let args = [KernelArg::new(r), KernelArg::new(&x.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)];
            self.launch(&DENSE, "relu_backward", r.len, &args);
        }
    }

    fn elu(&self, e: &Elu, x: CudaView<'_>, y: CudaViewMut<'_>) {
        if self.check("elu", &[(x.len, e.len), (y.len, e.len)]) {
            self.launch(&DENSE, "elu", e.len, &[KernelArg::new(e), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr)]);
        }
    }

    fn elu_backward(&self, e: &Elu, x: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        if self.check("elu_backward", &[(x.len, e.len), (dy.len, e.len), (dx.len, e.len)]) {
            let args = [KernelArg::new(e), KernelArg::new(&x.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)];
            self.launch(&DENSE, "elu_backward", e.len, &args);
        }
    }

    fn prelu(&self, p: &Prelu, x: CudaView<'_>, alpha: CudaView<'_>, y: CudaViewMut<'_>) {
        let n = p.rows * p.width;
        if self.check("prelu", &[(x.len, n), (alpha.len, p.alphas), (y.len, n)]) {
            let args = [KernelArg::new(p), KernelArg::new(&x.ptr), KernelArg::new(&alpha.ptr), KernelArg::new(&y.ptr)];
            self.launch(&DENSE, "prelu", n, &args);
        }
    }

    fn prelu_backward(&self, p: &Prelu, x: CudaView<'_>, alpha: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = p.rows * p.width;
        if self.check("prelu_backward", &[(x.len, n), (alpha.len, p.alphas), (dy.len, n), (dx.len, n)]) {
            let args =
                [KernelArg::new(p), KernelArg::new(&x.ptr), KernelArg::new(&alpha.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)];
            self.launch(&DENSE, "prelu_backward", n, &args);
        }
    }

    /// One thread per alpha element, each summing its samples and positions in the CPU's order.
    fn prelu_alpha_grad(&self, p: &Prelu, x: CudaView<'_>, dy: CudaView<'_>, dalpha: CudaViewMut<'_>) {
        let n = p.rows * p.width;
        if self.check("prelu_alpha_grad", &[(x.len, n), (dy.len, n), (dalpha.len, p.alphas)]) {
            let args = [KernelArg::new(p), KernelArg::new(&x.ptr), KernelArg::new(&dy.ptr), KernelArg::new(&dalpha.ptr)];
            self.launch(&DENSE, "prelu_alpha_grad", p.alphas, &args);
        }
    }
}

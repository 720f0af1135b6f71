//! [`DenseOps`] on the device: the bias and activation epilogue and its backward pass
//! (`kernels/dense.cu`); the product itself is cuBLAS's.

use super::kernels::DENSE;
use super::{Cuda, CudaView, CudaViewMut, GpuDevice, KernelArg, LaunchConfig};
use crate::backend::DenseOps;
use crate::backend::ops::{Activation, BiasAct};

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

impl<D: GpuDevice> DenseOps for Cuda<D> {
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
}

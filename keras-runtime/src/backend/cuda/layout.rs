//! [`LayoutOps`] on the device (`kernels/layout.cu`): permutations, repeats, padding and
//! cropping, upsampling, column blocks and the merge layers, one thread per output value. The
//! backward passes gather each output's terms in the CPU backend's order, so every result is the
//! CPU's, bit for bit.

use super::kernels::LAYOUT;
use super::{Cuda, CudaView, CudaViewMut, GpuDevice, KernelArg};
use crate::backend::ops::{Border2d, CopyCols, MAX_RANK, MergeOp, Permutation, Repeat, Upsample2d};
use crate::backend::{Device, LayoutOps};
use crate::error::Error;

/// Floats the rows `0..rows` of a strided block touch: up to the end of the last row's block.
fn block_extent(rows: usize, width: usize, stride: usize, off: usize) -> usize {
    if rows == 0 || width == 0 { 0 } else { (rows - 1) * stride + off + width }
}

impl<D: GpuDevice> LayoutOps for Cuda<D> {
    fn permute(&self, p: &Permutation, batch: usize, x: CudaView<'_>, y: CudaViewMut<'_>) {
        // The kernel indexes the shape by `perm`: it must be a permutation of the axes.
        let axes = &p.perm[..p.rank.min(MAX_RANK)];
        let valid = p.rank <= MAX_RANK && (0..p.rank).all(|a| axes.contains(&a));
        if !valid {
            self.fail(Error::value("permute", format!("a permutation of at most {MAX_RANK} axes"), format!("{:?}", axes)));
            return;
        }
        let n = batch * p.len();
        if self.check("permute", &[(x.len, n), (y.len, n)]) {
            let n64 = n as u64;
            let args = [KernelArg::new(p), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr), KernelArg::new(&n64)];
            self.launch(&LAYOUT, "permute", n, &args);
        }
    }

    fn repeat(&self, r: &Repeat, x: CudaView<'_>, y: CudaViewMut<'_>) {
        let n = r.batch * r.times * r.width;
        if self.check("repeat", &[(x.len, r.batch * r.width), (y.len, n)]) {
            self.launch(&LAYOUT, "repeat", n, &[KernelArg::new(r), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr)]);
        }
    }

    fn repeat_backward(&self, r: &Repeat, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = r.batch * r.width;
        if self.check("repeat backward", &[(dy.len, n * r.times), (dx.len, n)]) {
            self.launch(&LAYOUT, "repeat_backward", n, &[KernelArg::new(r), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)]);
        }
    }

    fn pad2d(&self, g: &Border2d, batch: usize, small: CudaView<'_>, large: CudaViewMut<'_>) {
        let n = batch * g.large_len();
        if self.check("pad2d", &[(small.len, batch * g.small_len()), (large.len, n)]) {
            let batch = batch as u64;
            let args = [KernelArg::new(g), KernelArg::new(&batch), KernelArg::new(&small.ptr), KernelArg::new(&large.ptr)];
            self.launch(&LAYOUT, "pad2d", n, &args);
        }
    }

    fn crop2d(&self, g: &Border2d, batch: usize, large: CudaView<'_>, small: CudaViewMut<'_>) {
        let n = batch * g.small_len();
        if self.check("crop2d", &[(large.len, batch * g.large_len()), (small.len, n)]) {
            let batch = batch as u64;
            let args = [KernelArg::new(g), KernelArg::new(&batch), KernelArg::new(&large.ptr), KernelArg::new(&small.ptr)];
            self.launch(&LAYOUT, "crop2d", n, &args);
        }
    }

    fn upsample2d(&self, g: &Upsample2d, batch: usize, x: CudaView<'_>, y: CudaViewMut<'_>) {
        let n = batch * g.out_len();
        if self.check("upsample2d", &[(x.len, batch * g.in_len()), (y.len, n)]) {
            let batch = batch as u64;
            let args = [KernelArg::new(g), KernelArg::new(&batch), KernelArg::new(&x.ptr), KernelArg::new(&y.ptr)];
            self.launch(&LAYOUT, "upsample2d", n, &args);
        }
    }

    fn upsample2d_backward(&self, g: &Upsample2d, batch: usize, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = batch * g.in_len();
        if self.check("upsample2d backward", &[(dy.len, batch * g.out_len()), (dx.len, n)]) {
            let batch = batch as u64;
            let args = [KernelArg::new(g), KernelArg::new(&batch), KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr)];
            self.launch(&LAYOUT, "upsample2d_backward", n, &args);
        }
    }

    fn copy_cols(&self, c: &CopyCols, src: CudaView<'_>, dst: CudaViewMut<'_>) {
        let reads = block_extent(c.rows, c.width, c.src_width, c.src_off);
        let writes = block_extent(c.rows, c.width, c.dst_width, c.dst_off);
        if self.check("copy_cols", &[(src.len, reads), (dst.len, writes)]) {
            self.launch(&LAYOUT, "copy_cols", c.rows * c.width, &[KernelArg::new(c), KernelArg::new(&src.ptr), KernelArg::new(&dst.ptr)]);
        }
    }

    fn merge(&self, op: MergeOp, xs: &[CudaView<'_>], y: CudaViewMut<'_>) {
        let n = y.len;
        if xs.is_empty() {
            self.fail(Error::value("merge", "at least one input", 0));
            return;
        }
        let checks: Vec<(usize, usize)> = xs.iter().map(|x| (x.len, n)).collect();
        if !self.check("merge", &checks) {
            return;
        }
        // One launch per input, folded into `y` in order, as the CPU folds them.
        let (op32, n64, scale) = (op as u32, n as u64, 1.0 / xs.len() as f32);
        for (i, x) in xs.iter().enumerate() {
            let (first, last) = (i == 0, i + 1 == xs.len());
            let args = [
                KernelArg::new(&op32),
                KernelArg::new(&x.ptr),
                KernelArg::new(&y.ptr),
                KernelArg::new(&n64),
                KernelArg::new(&first),
                KernelArg::new(&last),
                KernelArg::new(&scale),
            ];
            self.launch(&LAYOUT, "merge_step", n, &args);
        }
    }

    fn merge_backward(&self, op: MergeOp, i: usize, xs: &[CudaView<'_>], y: CudaView<'_>, dy: CudaView<'_>, dx: CudaViewMut<'_>) {
        let n = dx.len;
        if i >= xs.len() {
            self.fail(Error::value("merge backward", format!("an input below {}", xs.len()), i));
            return;
        }
        let mut checks: Vec<(usize, usize)> = xs.iter().map(|x| (x.len, n)).collect();
        checks.extend([(y.len, n), (dy.len, n)]);
        if !self.check("merge backward", &checks) {
            return;
        }
        let n64 = n as u64;
        let scaled = |factor: f32| {
            let args = [KernelArg::new(&dy.ptr), KernelArg::new(&dx.ptr), KernelArg::new(&n64), KernelArg::new(&factor)];
            self.launch(&LAYOUT, "merge_grad_scaled", n, &args);
        };
        match op {
            MergeOp::Add => self.copy(dy, dx),
            MergeOp::Average => scaled(1.0 / xs.len() as f32),
            MergeOp::Subtract => scaled(if i == 0 { 1.0 } else { -1.0 }),
            MergeOp::Multiply => {
                let dx_ptr = dx.ptr;
                self.copy(dy, dx);
                for x in xs.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, x)| x) {
                    let args = [KernelArg::new(&x.ptr), KernelArg::new(&dx_ptr), KernelArg::new(&n64)];
                    self.launch(&LAYOUT, "merge_grad_product", n, &args);
                }
            }
            MergeOp::Maximum | MergeOp::Minimum => {
                // `dx` first counts the inputs equal to `y`, then gets input i's share.
                for (j, x) in xs.iter().enumerate() {
                    let first = j == 0;
                    let args = [
                        KernelArg::new(&x.ptr),
                        KernelArg::new(&y.ptr),
                        KernelArg::new(&dx.ptr),
                        KernelArg::new(&n64),
                        KernelArg::new(&first),
                    ];
                    self.launch(&LAYOUT, "merge_grad_ties", n, &args);
                }
                let args = [
                    KernelArg::new(&xs[i].ptr),
                    KernelArg::new(&y.ptr),
                    KernelArg::new(&dy.ptr),
                    KernelArg::new(&dx.ptr),
                    KernelArg::new(&n64),
                ];
                self.launch(&LAYOUT, "merge_grad_share", n, &args);
            }
        }
    }
}

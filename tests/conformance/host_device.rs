//! A backend with the core only: buffers it owns, transfers, a plain matrix product, the few
//! primitives, and every op family left at its defaults. It does not read host memory in place,
//! so the training loop holds the training set on it, gathers shuffled batches there and stages
//! the rest, as on a GPU. The suite running on it shows that a new backend trains once its core
//! exists, and that the defaults agree with the references.

use keras::Error;
use keras::backend::{
    DenseOps, Device, Gemm, LayoutOps, NormOps, ObjectiveOps, OptimizerOps, RandomOps, SequenceOps, Transpose, WindowOps,
};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// The core-only backend; its buffers are its own type, its kernel failures sticky.
#[derive(Clone, Debug, Default)]
pub struct HostDevice {
    failure: Arc<Mutex<Option<Error>>>,
}

/// A buffer of [`HostDevice`].
#[derive(Debug)]
pub struct HostBuffer(Vec<f32>);

impl Device for HostDevice {
    type Buffer = HostBuffer;
    type View<'a> = &'a [f32];
    type ViewMut<'a> = &'a mut [f32];
    type Indices = Vec<u32>;

    fn describe(&self) -> String {
        "host device (the core only)".to_string()
    }

    fn alloc(&self, len: usize) -> keras::Result<HostBuffer> {
        Ok(HostBuffer(vec![0.0; len]))
    }

    fn len(buf: &HostBuffer) -> usize {
        buf.0.len()
    }

    fn view(buf: &HostBuffer, range: Range<usize>) -> &[f32] {
        &buf.0[range]
    }

    fn view_mut(buf: &mut HostBuffer, range: Range<usize>) -> &mut [f32] {
        &mut buf.0[range]
    }

    fn view_len(v: &[f32]) -> usize {
        v.len()
    }

    fn sub<'a>(v: Self::View<'a>, range: Range<usize>) -> Self::View<'a> {
        &v[range]
    }

    fn split_mut<'a>(v: Self::ViewMut<'a>, mid: usize) -> (Self::ViewMut<'a>, Self::ViewMut<'a>) {
        v.split_at_mut(mid)
    }

    fn reborrow<'s>(v: &'s mut &mut [f32]) -> &'s mut [f32] {
        v
    }

    fn freeze<'s>(v: &'s &mut [f32]) -> &'s [f32] {
        v
    }

    fn shorten<'s>(v: &'s &[f32]) -> &'s [f32] {
        v
    }

    fn upload(&self, src: &[f32], dst: &mut [f32]) -> keras::Result<()> {
        if src.len() != dst.len() {
            return Err(Error::shape("upload", dst.len(), src.len()));
        }
        dst.copy_from_slice(src);
        Ok(())
    }

    fn download(&self, src: &[f32], dst: &mut [f32]) -> keras::Result<()> {
        self.sync()?;
        if src.len() != dst.len() {
            return Err(Error::shape("download", dst.len(), src.len()));
        }
        dst.copy_from_slice(src);
        Ok(())
    }

    fn sync(&self) -> keras::Result<()> {
        match self.failure.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn fail(&self, error: Error) {
        self.failure.lock().unwrap().get_or_insert(error);
    }

    fn copy(&self, src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }

    fn fill(&self, dst: &mut [f32], value: f32) {
        dst.fill(value);
    }

    fn gemm(&self, g: &Gemm, a: &[f32], b: &[f32], c: &mut [f32]) {
        let &Gemm { m, n, k, ta, tb, accumulate } = g;
        let at = |i: usize, l: usize| if ta == Transpose::No { a[i * k + l] } else { a[l * m + i] };
        let bt = |l: usize, j: usize| if tb == Transpose::No { b[l * n + j] } else { b[j * k + l] };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f32;
                for l in 0..k {
                    s += at(i, l) * bt(l, j);
                }
                c[i * n + j] = if accumulate { c[i * n + j] + s } else { s };
            }
        }
    }

    fn add(&self, src: &[f32], dst: &mut [f32]) {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    }

    fn scale(&self, v: &mut [f32], factor: f32) {
        v.iter_mut().for_each(|x| *x *= factor);
    }

    fn multiply(&self, a: &[f32], b: &[f32], out: &mut [f32]) {
        out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (a, b))| *o = a * b);
    }

    fn alloc_indices(&self, len: usize) -> keras::Result<Vec<u32>> {
        Ok(vec![0; len])
    }

    fn upload_indices(&self, src: &[usize], dst: &mut Vec<u32>) -> keras::Result<()> {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = u32::try_from(s).map_err(|_| Error::value("row index", "below 2^32", s))?;
        }
        Ok(())
    }

    fn gather_rows(&self, src: &[f32], row_len: usize, indices: &Vec<u32>, range: Range<usize>, dst: &mut [f32]) {
        for (d, &r) in dst.chunks_exact_mut(row_len).zip(&indices[range]) {
            let r = r as usize;
            d.copy_from_slice(&src[r * row_len..(r + 1) * row_len]);
        }
    }
}

impl DenseOps for HostDevice {}
impl NormOps for HostDevice {}
impl WindowOps for HostDevice {}
impl SequenceOps for HostDevice {}
impl LayoutOps for HostDevice {}
impl RandomOps for HostDevice {}
impl ObjectiveOps for HostDevice {}
impl OptimizerOps for HostDevice {}

//! Data parallelism, after Keras 3's `keras.distribution.DataParallel`: the same model on every
//! process (rank) of a job, each computing its slice of every global batch.
//!
//! ```no_run
//! # #[cfg(feature = "mpi")]
//! # fn main() -> keras_runtime::Result<()> {
//! // `mpirun -np 4 target/release/examples/distributed`: every rank runs the same program.
//! let dp = keras_runtime::distribution::DataParallel::mpi()?;
//! println!("rank {} of {}", dp.rank(), dp.size());
//! # Ok(()) }
//! # #[cfg(not(feature = "mpi"))]
//! # fn main() {}
//! ```
//!
//! `model.compile(..)?.distribute(&dp)?` broadcasts rank 0's weights, then `fit`, `evaluate`,
//! `predict` and `train_on_batch` run unchanged:
//!
//! - `batch_size` is the global batch. Every rank is given the same arrays (they are checked to
//!   be the same); rank `r` of `N` computes rows `[r R / N, (r + 1) R / N)` of each batch of `R`
//!   rows. The gradients are summed across ranks with one all-reduce over the gradient arena and
//!   every rank applies the same update, so the weights stay identical, and a run on `N` ranks
//!   equals a run on one up to the order of the sums.
//! - `BatchNormalization` normalizes with the global batch's statistics (moments and the
//!   backward pass's sums are all-reduced); dropout draws each sample's mask as a single process
//!   would; the shuffle seed is rank 0's.
//! - Loss and metrics are summed across ranks, so every rank logs the global values and every
//!   callback decides the same. The progress bar and every file a callback writes (checkpoints,
//!   `BackupAndRestore`, `CSVLogger`, `TensorBoard`) belong to rank 0.
//! - A data error on any rank is an `Err` on every rank (no rank is left waiting); a rank that
//!   dies ends the job through MPI. Every rank passes the same callbacks: each one's outcome is
//!   agreed across ranks before the next runs.
//! - A rank whose slice of a batch is empty (a last batch smaller than the job) still takes part
//!   in the step's collectives and adds nothing to the loss.
//!
//! The collective is a small trait ([`Collective`]): MPI ([`DataParallel::mpi`], feature `mpi`,
//! rsmpi over the system's OpenMPI) for clusters of CPUs; NCCL will plug in beside it for
//! several GPUs.

#[cfg(feature = "mpi")]
mod mpi;

use crate::backend::{Backend, BatchStats, Norm, NormGrads};
use crate::error::{Error, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The collective operations of a data-parallel job. Every rank calls the same operations in
/// the same order with the same lengths.
pub trait Collective: Send + Sync {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Sums `values` elementwise across ranks, in place; every rank gets the same sums.
    fn all_reduce_sum(&self, values: &mut [f32]);
    /// [`Collective::all_reduce_sum`] in double precision (statistics and counts).
    fn all_reduce_sum_f64(&self, values: &mut [f64]);
    /// Rank 0's `values` on every rank.
    fn broadcast(&self, values: &mut [u8]);
    /// Every rank's `local` in rank order into `out`, on every rank; `counts[r]` is rank `r`'s
    /// length.
    fn all_gather(&self, local: &[f32], counts: &[usize], out: &mut [f32]);
}

/// The data-parallel strategy: a [`Collective`] and the time spent in its all-reduces. Cheap to
/// clone (shared).
#[derive(Clone)]
pub struct DataParallel {
    inner: Arc<Inner>,
}

struct Inner {
    collective: Box<dyn Collective>,
    /// Gradient all-reduces and the time they took.
    reduced: Mutex<(u64, Duration)>,
}

impl std::fmt::Debug for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataParallel(rank {} of {})", self.rank(), self.size())
    }
}

impl DataParallel {
    /// Data parallelism over `collective`.
    pub fn new(collective: impl Collective + 'static) -> DataParallel {
        DataParallel { inner: Arc::new(Inner { collective: Box::new(collective), reduced: Mutex::new((0, Duration::ZERO)) }) }
    }

    /// Data parallelism over MPI's world communicator (the processes `mpirun` started). MPI is
    /// initialized on the first call and finalized when the last clone of every `DataParallel`
    /// is dropped (keep one alive until the end of `main`); a second call while one lives
    /// returns the same world.
    #[cfg(feature = "mpi")]
    pub fn mpi() -> Result<DataParallel> {
        mpi::world()
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.inner.collective.rank()
    }

    /// The number of ranks.
    pub fn size(&self) -> usize {
        self.inner.collective.size()
    }

    /// Whether this is rank 0, which draws the progress bar and writes files.
    pub fn is_chief(&self) -> bool {
        self.rank() == 0
    }

    /// The collective.
    pub fn collective(&self) -> &dyn Collective {
        &*self.inner.collective
    }

    /// Gradient all-reduces so far and the time they took on this rank (waiting for the slowest
    /// rank included).
    pub fn all_reduce_time(&self) -> (u64, Duration) {
        *self.inner.reduced.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This rank's rows of a global batch of `rows`: `[r rows / N, (r + 1) rows / N)`.
    pub fn slice(&self, rows: usize) -> std::ops::Range<usize> {
        let (r, n) = (self.rank(), self.size());
        r * rows / n..(r + 1) * rows / n
    }

    /// Sums the gradient arena across ranks, timed.
    pub(crate) fn all_reduce_grads(&self, grads: &mut [f32]) {
        let t0 = Instant::now();
        self.collective().all_reduce_sum(grads);
        let mut r = self.inner.reduced.lock().unwrap_or_else(|e| e.into_inner());
        r.0 += 1;
        r.1 += t0.elapsed();
    }

    /// Rank 0's `value` on every rank.
    pub(crate) fn broadcast_u64(&self, value: u64) -> u64 {
        let mut bytes = value.to_le_bytes();
        self.collective().broadcast(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    /// Rank 0's `values` on every rank (the same length everywhere).
    pub(crate) fn broadcast_f32(&self, values: &mut [f32]) {
        let mut bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.collective().broadcast(&mut bytes);
        for (v, b) in values.iter_mut().zip(bytes.chunks_exact(4)) {
            *v = f32::from_le_bytes(b.try_into().expect("4 bytes"));
        }
    }

    /// One outcome for every rank: `local` where every rank's is `Ok`; else an `Err` on every
    /// rank: a failing rank keeps its own error, the others get the lowest failing rank's
    /// message, prefixed with that rank.
    pub fn agree<T>(&self, local: Result<T>) -> Result<T> {
        let (rank, n) = (self.rank(), self.size());
        let mut failed = vec![0.0f64; n];
        failed[rank] = local.is_err() as u8 as f64;
        self.collective().all_reduce_sum_f64(&mut failed);
        let Some(first) = failed.iter().position(|&f| f > 0.0) else { return local };
        // The first failing rank's message reaches every rank: its length, then its bytes.
        let message = match &local {
            Err(e) if first == rank => e.to_string().into_bytes(),
            _ => Vec::new(),
        };
        let mut len = [message.len() as f64];
        self.collective().all_reduce_sum_f64(&mut len);
        let mut bytes = vec![0.0f64; len[0] as usize];
        bytes.iter_mut().zip(&message).for_each(|(b, &m)| *b = m as f64);
        self.collective().all_reduce_sum_f64(&mut bytes);
        match local {
            Err(e) => Err(e),
            Ok(_) => {
                let text = String::from_utf8_lossy(&bytes.iter().map(|&b| b as u8).collect::<Vec<u8>>()).into_owned();
                Err(Error::Config(format!("rank {first} of {n} failed: {text}")))
            }
        }
    }

    /// A checksum of `data` agreed across ranks: `Err` naming the first rank whose data differ
    /// from rank 0's.
    pub(crate) fn check_same(&self, what: &str, data: &[&[f32]]) -> Result<()> {
        // FNV-1a over 64-bit words in eight independent lanes (no dependency chain across
        // lanes: a few GB/s, so checking a training set costs a fraction of an epoch).
        const PRIME: u64 = 0x100_0000_01b3;
        let mut lanes = [0xcbf2_9ce4_8422_2325u64; 8];
        for part in data {
            lanes[0] = (lanes[0] ^ part.len() as u64).wrapping_mul(PRIME);
            let mut words = part.chunks_exact(16);
            for chunk in &mut words {
                for (lane, pair) in lanes.iter_mut().zip(chunk.chunks_exact(2)) {
                    let word = pair[0].to_bits() as u64 | (pair[1].to_bits() as u64) << 32;
                    *lane = (*lane ^ word).wrapping_mul(PRIME);
                }
            }
            for v in words.remainder() {
                lanes[1] = (lanes[1] ^ v.to_bits() as u64).wrapping_mul(PRIME);
            }
        }
        let hash = lanes.iter().fold(0u64, |h, &l| (h ^ l).wrapping_mul(PRIME).rotate_left(29));
        let chief = self.broadcast_u64(hash);
        let mut differs = vec![0.0f64; self.size()];
        differs[self.rank()] = (hash != chief) as u8 as f64;
        self.collective().all_reduce_sum_f64(&mut differs);
        match differs.iter().position(|&d| d > 0.0) {
            None => Ok(()),
            Some(r) => Err(Error::Config(format!(
                "{what}: rank {r} was given different data from rank 0; every rank takes the same arrays and computes its slice of each batch"
            ))),
        }
    }
}

/// A step's share of a global batch, seen by the layers through their context.
#[derive(Clone, Debug)]
pub struct Shard {
    /// The job.
    pub parallel: DataParallel,
    /// This rank's first row within the global batch.
    pub first_row: usize,
    /// This rank's rows (samples) of the batch.
    pub rows: usize,
}

/// Downloads a view (distributed layers work on the host).
fn host<B: Backend>(dev: &B, v: B::View<'_>, len: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; len];
    dev.download(v, &mut out).expect("a device view reads back");
    out
}

/// Batch normalization's batch statistics over the global batch: each column's mean and biased
/// variance (two passes, as the single-process kernel), into `mean` and `var`.
pub(crate) fn global_moments<B: Backend>(shard: &Shard, dev: &B, n: &Norm, x: B::View<'_>, mean: B::ViewMut<'_>, var: B::ViewMut<'_>) {
    let (rows, cols) = (n.rows, n.cols);
    let x = host(dev, x, rows * cols);
    let c = shard.parallel.collective();
    let mut sums = vec![0.0f64; cols + 1];
    for row in x.chunks_exact(cols) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += v as f64);
    }
    sums[cols] = rows as f64;
    c.all_reduce_sum_f64(&mut sums);
    let count = sums[cols].max(1.0);
    let m: Vec<f64> = sums[..cols].iter().map(|s| s / count).collect();
    let mut squares = vec![0.0f64; cols];
    for row in x.chunks_exact(cols) {
        squares.iter_mut().zip(row).zip(&m).for_each(|((s, &v), &m)| *s += (v as f64 - m) * (v as f64 - m));
    }
    c.all_reduce_sum_f64(&mut squares);
    let m32: Vec<f32> = m.iter().map(|&v| v as f32).collect();
    let v32: Vec<f32> = squares.iter().map(|&s| (s / count) as f32).collect();
    dev.upload(&m32, mean).expect("a device view writes");
    dev.upload(&v32, var).expect("a device view writes");
}

/// The backward pass of batch normalization over the global batch (see
/// `NormOps::batch_norm_backward`): `dgamma` and `dbeta` get this rank's sums (the gradient
/// all-reduce adds the ranks'), `dx` uses the global sums.
#[allow(clippy::too_many_arguments)]
pub(crate) fn global_batch_norm_backward<B: Backend>(
    shard: &Shard,
    dev: &B,
    n: &Norm,
    x: B::View<'_>,
    dy: B::View<'_>,
    stats: BatchStats<B::View<'_>>,
    gamma: Option<B::View<'_>>,
    grads: NormGrads<B::ViewMut<'_>>,
) {
    let (rows, cols) = (n.rows, n.cols);
    let (x, dy) = (host(dev, x, rows * cols), host(dev, dy, rows * cols));
    let (mean, inv) = (host(dev, stats.mean, cols), host(dev, stats.inv, cols));
    let gamma = gamma.map(|g| host(dev, g, cols));
    // This rank's Σ dy and Σ dy x̂, then its row count.
    let mut sums = vec![0.0f64; 2 * cols + 1];
    for (xr, gr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)) {
        for c in 0..cols {
            sums[c] += gr[c] as f64;
            sums[cols + c] += (gr[c] * ((xr[c] - mean[c]) * inv[c])) as f64;
        }
    }
    sums[2 * cols] = rows as f64;
    let local: Vec<f32> = sums[..2 * cols].iter().map(|&s| s as f32).collect();
    let NormGrads { dgamma, dbeta, dx } = grads;
    if let Some(dg) = dgamma {
        dev.upload(&local[cols..], dg).expect("a device view writes");
    }
    if let Some(db) = dbeta {
        dev.upload(&local[..cols], db).expect("a device view writes");
    }
    shard.parallel.collective().all_reduce_sum_f64(&mut sums);
    if let Some(dx) = dx {
        let total = sums[2 * cols] as f32;
        let mut out = vec![0.0f32; rows * cols];
        for ((xr, gr), dr) in x.chunks_exact(cols).zip(dy.chunks_exact(cols)).zip(out.chunks_exact_mut(cols)) {
            for c in 0..cols {
                let g = gamma.as_ref().map_or(1.0, |g| g[c]);
                let xhat = (xr[c] - mean[c]) * inv[c];
                dr[c] = g * inv[c] / total * (total * gr[c] - sums[c] as f32 - xhat * sums[cols + c] as f32);
            }
        }
        dev.upload(&out, dx).expect("a device view writes");
    }
}

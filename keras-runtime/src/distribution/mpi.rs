//! The MPI collective: rsmpi over the system's MPI (OpenMPI on Debian), the world communicator.

use super::{Collective, DataParallel, Inner};
use crate::error::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::{Threading, Universe};
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};
use std::sync::{Mutex, Weak};

/// The world of the processes `mpirun` started. MPI is finalized when this is dropped.
struct MpiWorld {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    /// Calls are made one at a time (MPI initialized for `MPI_THREAD_SERIALIZED`), holding this
    /// lock and its send buffer, kept between calls (rsmpi has no `MPI_IN_PLACE`, and a fresh
    /// buffer the size of a gradient arena costs more than the copy).
    lock: Mutex<Vec<f32>>,
    /// Dropped last: finalizes MPI.
    _universe: Universe,
}

// SAFETY: MPI was initialized with `MPI_THREAD_SERIALIZED`, so any thread may call it as long as
// no two calls overlap, which `lock` guarantees for every call made through this value.
unsafe impl Send for MpiWorld {}
// SAFETY: as above; shared references only reach MPI under `lock`.
unsafe impl Sync for MpiWorld {}

/// The live world, shared by every `DataParallel::mpi()` while one is alive.
static WORLD: Mutex<Option<Weak<Inner>>> = Mutex::new(None);

pub(super) fn world() -> Result<DataParallel> {
    let mut live = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(inner) = live.as_ref().and_then(Weak::upgrade) {
        return Ok(DataParallel { inner });
    }
    let Some((universe, threading)) = mpi::initialize_with_threading(Threading::Serialized) else {
        return Err(Error::Config(
            "DataParallel::mpi: MPI was already initialized and finalized in this process; keep one DataParallel alive for the whole program"
                .to_string(),
        ));
    };
    if threading < Threading::Serialized {
        return Err(Error::Config(format!(
            "DataParallel::mpi: this MPI library offers only {threading:?} threading, and keras-rs needs MPI_THREAD_SERIALIZED"
        )));
    }
    let world = universe.world();
    let (rank, size) = (world.rank() as usize, world.size() as usize);
    let parallel = DataParallel::new(MpiWorld { world, rank, size, lock: Mutex::new(Vec::new()), _universe: universe });
    *live = Some(std::sync::Arc::downgrade(&parallel.inner));
    Ok(parallel)
}

impl MpiWorld {
    fn locked(&self) -> std::sync::MutexGuard<'_, Vec<f32>> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    // Every rank passes the same lengths, so an empty buffer is skipped on all of them (MPI
    // rejects a zero-length buffer's dangling pointer).
    fn all_reduce_sum(&self, values: &mut [f32]) {
        if values.is_empty() {
            return;
        }
        let mut send = self.locked();
        send.clear();
        send.extend_from_slice(values);
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        if values.is_empty() {
            return;
        }
        let _guard = self.locked();
        let send = values.to_vec();
        self.world.all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn broadcast(&self, values: &mut [u8]) {
        if values.is_empty() {
            return;
        }
        let _guard = self.locked();
        self.world.process_at_rank(0).broadcast_into(values);
    }

    fn all_gather(&self, local: &[f32], counts: &[usize], out: &mut [f32]) {
        if out.is_empty() {
            return;
        }
        let _guard = self.locked();
        let counts32: Vec<i32> = counts.iter().map(|&c| c as i32).collect();
        let displs: Vec<i32> = counts32.iter().scan(0, |at, &c| Some(std::mem::replace(at, *at + c))).collect();
        let mut partition = PartitionMut::new(out, counts32, displs);
        self.world.all_gather_varcount_into(local, &mut partition);
    }
}

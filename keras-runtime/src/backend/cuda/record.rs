//! Recording device work and replaying it: [`Device::begin_capture`], [`Device::end_capture`]
//! and [`Device::replay`] on [`Cuda`], over the device layer's capture (CUDA graphs on a GPU,
//! recorded launches on the emulator).
//!
//! While recording, the host round trips that a graph cannot hold are refused before they reach
//! the device: an upload, download, allocation or wait fails with an error that breaks the
//! recording, and a free (a buffer dropped) is deferred to the end of the recording, which it
//! also breaks. A kernel failure while recording breaks it too. A broken recording ends as
//! `Ok(None)`: nothing recorded has run, so the caller issues the work again unrecorded (and
//! meets the same failure, if it was one, at its next read).
//!
//! A recording holds device addresses, not buffers. Every free of the device is counted, and a
//! replay runs only when none happened since the recording: then every buffer the recorded work
//! touches is still live, which makes [`Device::replay`] safe to call.

use super::{Cuda, DevicePtr, GpuDevice, Shared};
use crate::backend::Recording;
use crate::error::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A device's recording state, shared by the clones of a [`Cuda`].
#[derive(Debug, Default)]
pub(super) struct RecordState {
    /// Whether work is being recorded.
    capturing: AtomicBool,
    /// Why the current recording is broken, if it is.
    broken: Mutex<Option<String>>,
    /// Frees so far (a recording replays only while this is unchanged).
    frees: AtomicU64,
    /// Uploads, downloads, allocations, frees and waits so far.
    round_trips: AtomicU64,
    /// Recordings replayed so far.
    replays: AtomicU64,
    /// Frees asked for while recording, done when it ends.
    deferred: Mutex<Vec<DevicePtr>>,
}

/// What [`Cuda`] keeps in a [`Recording`]: the device's graph, the free count it is valid for,
/// and the device (which the graph's addresses belong to).
struct CudaRecording<D: GpuDevice> {
    graph: D::Graph,
    frees: u64,
    owner: Arc<Shared<D>>,
}

impl RecordState {
    /// Breaks the current recording (the first reason is kept).
    fn break_with(&self, reason: String) {
        self.broken.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(reason);
    }

    /// Whether work is being recorded.
    pub(super) fn capturing(&self) -> bool {
        self.capturing.load(Ordering::Acquire)
    }

    /// Counts a round trip, or refuses it (breaking the recording) while recording.
    pub(super) fn round_trip(&self, what: &str) -> Result<()> {
        if self.capturing() {
            let message = format!("{what} inside a recorded step (a CUDA graph cannot hold it)");
            self.break_with(message.clone());
            return Err(Error::Device(message));
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A failure while recording: it breaks the recording instead of becoming sticky (the work
    /// runs again unrecorded and fails there). `Err(error)` back when not recording.
    pub(super) fn absorb(&self, error: Error) -> std::result::Result<(), Error> {
        if self.capturing() {
            self.break_with(error.to_string());
            Ok(())
        } else {
            Err(error)
        }
    }
}

impl<D: GpuDevice> Shared<D> {
    /// Frees an allocation of the device, or defers the free to the end of the recording.
    ///
    /// # Safety
    /// `ptr` came from `alloc` on this device and is not used again.
    pub(super) unsafe fn release(&self, ptr: DevicePtr) {
        let rec = &self.record;
        if rec.capturing() {
            rec.deferred.lock().unwrap_or_else(|e| e.into_inner()).push(ptr);
            rec.break_with("a free inside a recorded step".to_string());
            return;
        }
        rec.frees.fetch_add(1, Ordering::AcqRel);
        rec.round_trips.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as the caller promises.
        unsafe { self.device.free(ptr) }
    }

    /// Does the frees deferred by a recording.
    fn flush_deferred(&self) {
        let deferred = std::mem::take(&mut *self.record.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        for ptr in deferred {
            // SAFETY: each came from `release`, whose caller gave it up.
            unsafe { self.release(ptr) }
        }
    }
}

impl<D: GpuDevice> Cuda<D> {
    /// Records steps as CUDA graphs (the default) or not: `fit` then runs every step as it is
    /// issued, kernel by kernel.
    pub fn with_graphs(mut self, on: bool) -> Self {
        self.graphs = on;
        self
    }

    /// Recordings replayed so far on this device (training steps run as one graph each).
    pub fn replays(&self) -> u64 {
        self.shared.record.replays.load(Ordering::Relaxed)
    }

    pub(super) fn record_round_trips(&self) -> u64 {
        self.shared.record.round_trips.load(Ordering::Relaxed)
    }

    pub(super) fn record_begin(&self) -> Result<bool> {
        let rec = &self.shared.record;
        if !self.graphs {
            return Ok(false);
        }
        if rec.capturing() {
            return Err(Error::Device("begin_capture while already recording".to_string()));
        }
        *rec.broken.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.shared.device.begin_capture()?;
        rec.capturing.store(true, Ordering::Release);
        Ok(true)
    }

    pub(super) fn record_end(&self) -> Result<Option<Recording>> {
        let rec = &self.shared.record;
        if !rec.capturing() {
            return Err(Error::Device("end_capture without begin_capture".to_string()));
        }
        let graph = self.shared.device.end_capture();
        rec.capturing.store(false, Ordering::Release);
        let broken = rec.broken.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.shared.flush_deferred();
        match (graph, broken) {
            (Ok(graph), None) => {
                let frees = rec.frees.load(Ordering::Acquire);
                Ok(Some(Recording::new(CudaRecording::<D> { graph, frees, owner: self.shared.clone() })))
            }
            _ => Ok(None),
        }
    }

    pub(super) fn record_replay(&self, recording: &Recording) -> Result<bool> {
        let rec = &self.shared.record;
        let Some(r) = recording.get::<CudaRecording<D>>().filter(|r| Arc::ptr_eq(&r.owner, &self.shared)) else {
            return Err(Error::Device("replay of a recording made on another device".to_string()));
        };
        if rec.capturing() {
            return Err(Error::Device("replay while recording".to_string()));
        }
        if r.frees != rec.frees.load(Ordering::Acquire) {
            return Ok(false);
        }
        // SAFETY: no allocation of this device has been freed since the recording, so every
        // address the recorded work holds (all within live allocations when it was recorded,
        // as every launch checks its views) is still live.
        if let Err(e) = unsafe { self.shared.device.replay(&r.graph) } {
            super::Device::fail(self, e);
        }
        rec.replays.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

impl RecordState {
    /// Frees what a recording that never ended deferred (the device is being dropped).
    pub(super) fn end_dropped<D: GpuDevice>(&mut self, device: &D) {
        for ptr in std::mem::take(self.deferred.get_mut().unwrap_or_else(|e| e.into_inner())) {
            // SAFETY: each came from `release`, whose caller gave it up; nothing runs any more.
            unsafe { device.free(ptr) }
        }
    }
}

//! A fork-join thread pool for the CPU kernels.
//!
//! Why not rayon: a training step of a small model makes a handful of parallel calls of a few
//! microseconds each, and must not allocate (DESIGN decision 3). Rayon's injection queue allocates
//! a block every 63 jobs sent from outside the pool, and its caller sleeps while workers run. Here
//! the caller takes a share of the tasks itself, workers spin briefly before they park, and a job
//! is a borrowed closure: no allocation, no boxing, microsecond dispatch.
//!
//! Tasks go to threads statically, task `t` to thread `t % threads` (the caller is thread 0): the
//! kernels split their data the same way every call, so each thread keeps finding its part of the
//! parameters, gradients and optimizer moments in its own core's cache.

use std::cell::UnsafeCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;

/// Spin iterations a worker waits for the next job before it parks (about 50-100 µs).
const SPIN_ROUNDS: usize = 1 << 15;

type Task = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped by the caller each time it publishes a job.
    generation: AtomicUsize,
    /// The published job; written only while no worker is inside a job.
    job: UnsafeCell<(*const Task, usize)>,
    /// Workers that have not yet finished the current job.
    active: AtomicUsize,
    /// Workers parked on `wake`.
    sleeping: AtomicUsize,
    /// Set when a task panicked.
    panicked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

// SAFETY: `job` is written by the caller only while every worker is outside the job (the caller
// waits for `active == 0` before returning), and read by workers only between a generation bump
// and their `active` decrement.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// A fixed set of worker threads that run the tasks of one job at a time, with the caller.
pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
    /// Serialises callers: a second thread that finds the pool busy runs its job alone.
    busy: Mutex<()>,
}

impl Pool {
    /// A pool in which `threads` threads (the caller included) share each job.
    pub fn new(threads: usize) -> Pool {
        let workers = threads.max(1) - 1;
        let shared = Arc::new(Shared {
            generation: AtomicUsize::new(0),
            job: UnsafeCell::new((std::ptr::null::<fn(usize)>() as *const Task, 0)),
            active: AtomicUsize::new(0),
            sleeping: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("keras-cpu-{}", i + 1))
                .spawn(move || worker(&shared, i + 1, workers + 1))
                .expect("keras-rs could not start a CPU worker thread");
        }
        Pool { shared, workers, busy: Mutex::new(()) }
    }

    /// The number of threads that share a job, the caller included.
    pub fn threads(&self) -> usize {
        self.workers + 1
    }

    /// Runs `f(0), f(1), .., f(tasks - 1)`, spread over the pool; returns when all have run.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        if tasks == 0 {
            return;
        }
        let guard = if tasks > 1 && self.workers > 0 { self.busy.try_lock().ok() } else { None };
        let Some(_guard) = guard else {
            (0..tasks).for_each(f);
            return;
        };
        let s = &*self.shared;
        // SAFETY: every worker is outside any job (the last `run` waited for `active == 0`), so
        // nobody reads `job` now. The lifetime is erased; `run` does not return before the
        // workers are done with the closure.
        unsafe {
            let f: *const Task = std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const Task>(f);
            *s.job.get() = (f, tasks);
        }
        s.active.store(self.workers, SeqCst);
        s.generation.fetch_add(1, SeqCst);
        if s.sleeping.load(SeqCst) > 0 {
            let _l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.wake.notify_all();
        }
        let threads = self.workers + 1;
        let mine = catch_unwind(AssertUnwindSafe(|| (0..tasks).step_by(threads).for_each(f)));
        let mut spins = 0usize;
        while s.active.load(SeqCst) != 0 {
            spins += 1;
            if spins < SPIN_ROUNDS {
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if s.panicked.swap(false, SeqCst) {
            panic!("a keras-rs CPU kernel task panicked on a worker thread");
        }
    }
}

fn worker(s: &Shared, index: usize, threads: usize) {
    let mut seen = 0usize;
    loop {
        let mut spins = 0usize;
        while s.generation.load(SeqCst) == seen {
            spins += 1;
            if spins < SPIN_ROUNDS {
                std::hint::spin_loop();
                continue;
            }
            let mut l = s.lock.lock().unwrap_or_else(|e| e.into_inner());
            s.sleeping.fetch_add(1, SeqCst);
            while s.generation.load(SeqCst) == seen {
                l = s.wake.wait(l).unwrap_or_else(|e| e.into_inner());
            }
            s.sleeping.fetch_sub(1, SeqCst);
            break;
        }
        seen = s.generation.load(SeqCst);
        // SAFETY: the caller published `job` before bumping the generation and does not touch
        // it again until this worker decrements `active`.
        let (f, tasks) = unsafe { *s.job.get() };
        let f: &Task = unsafe { &*f };
        if catch_unwind(AssertUnwindSafe(|| (index..tasks).step_by(threads).for_each(f))).is_err() {
            s.panicked.store(true, SeqCst);
        }
        s.active.fetch_sub(1, SeqCst);
    }
}

static POOL: OnceLock<Pool> = OnceLock::new();
static REQUESTED_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of CPU threads keras-rs uses; takes effect only before the first parallel
/// kernel runs. Returns `false` if the pool already exists.
pub fn set_num_threads(threads: usize) -> bool {
    REQUESTED_THREADS.store(threads.max(1), SeqCst);
    POOL.get().is_none()
}

/// The process-wide pool, created on first use with the thread count of [`set_num_threads`], else
/// `KERAS_NUM_THREADS`, else the number of available cores.
pub fn global() -> &'static Pool {
    POOL.get_or_init(|| {
        let requested = REQUESTED_THREADS.load(SeqCst);
        let threads = if requested > 0 {
            requested
        } else if let Some(n) = std::env::var("KERAS_NUM_THREADS").ok().and_then(|v| v.parse().ok()) {
            n
        } else {
            thread::available_parallelism().map_or(1, |n| n.get())
        };
        Pool::new(threads)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn every_task_runs_exactly_once() {
        let pool = Pool::new(3);
        for tasks in [0usize, 1, 2, 3, 7, 100] {
            let hits: Vec<AtomicU64> = (0..tasks).map(|_| AtomicU64::new(0)).collect();
            pool.run(tasks, &|t| {
                hits[t].fetch_add(1, SeqCst);
            });
            assert!(hits.iter().all(|h| h.load(SeqCst) == 1), "tasks = {tasks}");
        }
    }

    #[test]
    fn many_jobs_in_a_row_and_after_parking() {
        let pool = Pool::new(2);
        let sum = AtomicU64::new(0);
        for round in 0..2000u64 {
            pool.run(4, &|t| {
                sum.fetch_add(t as u64 + round, SeqCst);
            });
        }
        let expected: u64 = (0..2000u64).map(|r| 6 + 4 * r).sum();
        assert_eq!(sum.load(SeqCst), expected);
        thread::sleep(std::time::Duration::from_millis(20));
        let after = AtomicU64::new(0);
        pool.run(8, &|_| {
            after.fetch_add(1, SeqCst);
        });
        assert_eq!(after.load(SeqCst), 8);
    }

    #[test]
    fn concurrent_callers_do_not_interfere() {
        let pool = Arc::new(Pool::new(2));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let pool = Arc::clone(&pool);
                thread::spawn(move || {
                    for _ in 0..200 {
                        let n = AtomicU64::new(0);
                        pool.run(5, &|_| {
                            n.fetch_add(1, SeqCst);
                        });
                        assert_eq!(n.load(SeqCst), 5);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    }

    #[test]
    fn a_panicking_task_reaches_the_caller() {
        let pool = Pool::new(2);
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(4, &|t| assert!(t != 1, "boom"))));
        assert!(r.is_err());
        let n = AtomicU64::new(0);
        pool.run(4, &|_| {
            n.fetch_add(1, SeqCst);
        });
        assert_eq!(n.load(SeqCst), 4);
    }
}

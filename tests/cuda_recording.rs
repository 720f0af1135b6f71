//! Training steps recorded once and replayed (CUDA graphs), on the CUDA emulator: a recorded
//! run gives the same weights, history, optimizer step count and random stream, bit for bit, as
//! the same run issued kernel by kernel (Adam's step count, schedules evaluated on the device and
//! on the host, a rate a callback changes, dropout and batch statistics all advance per step);
//! and the device API's rules: a round trip breaks a recording without running any of it, a
//! freed buffer makes a recording stale, a recording replays only on its own device.
#![cfg(feature = "cuda")]

use keras::backend::cuda::{Cuda, EmuDevice};
use keras::backend::{Device, RandomStream};
use keras::ndarray::{Array1, Array2, ArrayD};
use keras::prelude::*;

type Emu = Cuda<EmuDevice>;

sequential! {
    struct Noisy = Dense(12, in = 5, relu) => Dropout(0.25) => BatchNormalization() => Dense(3, softmax);
}

/// 44 samples: five full batches of 8 and a partial one of 4 per epoch.
fn data() -> (Array2<f32>, Array1<u8>, Array1<f32>) {
    let x = Array2::from_shape_fn((44, 5), |(i, j)| ((i * 5 + j * 7) % 13) as f32 / 13.0 - 0.45);
    let y = Array1::from_shape_fn(44, |i| ((i * 7) % 3) as u8);
    let w = Array1::from_shape_fn(44, |i| 0.5 + (i % 4) as f32 * 0.25);
    (x, y, w)
}

/// What a run leaves: history, weights, optimizer steps, the random stream.
#[derive(Debug, PartialEq)]
struct Run {
    history: Vec<f32>,
    weights: Vec<ArrayD<f32>>,
    iterations: u64,
    stream: RandomStream,
}

/// Trains a [`Noisy`] from fixed weights and seed on `dev` for three shuffled epochs.
fn train(dev: &Emu, optimizer: Adam, weighted: bool, rate_callback: bool) -> Run {
    let cpu = Cpu::default();
    let reference = Noisy::new(&cpu);
    let mut model = Noisy::new(dev);
    model.set_weights(&reference.get_weights().unwrap()).unwrap();
    model.core_mut().set_random_stream(RandomStream { seed: 0xface, step: 0 }).unwrap();
    let mut m = model.compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    let (x, y, w) = data();
    let mut scheduler = keras::callbacks::LearningRateScheduler::new(|epoch, lr| if epoch == 0 { lr } else { lr * 0.5 });
    let mut args = FitArgs::default().epochs(3).batch_size(8).verbose(0);
    if weighted {
        args = args.sample_weight(&w);
    }
    if rate_callback {
        args = args.callback(&mut scheduler);
    }
    let h = m.fit(&x, &y, args).unwrap();
    let history = h.loss().iter().chain(&h["accuracy"]).copied().collect();
    let iterations = m.optimizer().iterations();
    let stream = m.model().core().random_stream().unwrap();
    Run { history, weights: m.get_weights().unwrap(), iterations, stream }
}

/// The global generator (initial weights, shuffling) is shared by the tests of this file.
static SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A recorded run against the same run issued kernel by kernel.
fn compare(optimizer: impl Fn() -> Adam, weighted: bool, rate_callback: bool) {
    let _seeded = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let recorded = Cuda::emulated();
    let issued = Cuda::emulated().with_graphs(false);
    keras::utils::set_random_seed(7);
    let got = train(&recorded, optimizer(), weighted, rate_callback);
    keras::utils::set_random_seed(7);
    let want = train(&issued, optimizer(), weighted, rate_callback);
    assert_eq!(issued.replays(), 0);
    // 18 steps: the first two of each shape run as issued (one allocates, the next proves that
    // the step makes no round trip), so at least 12 full batches are replays.
    assert!(recorded.replays() >= 12, "only {} steps were replayed", recorded.replays());
    assert_eq!(got.iterations, 18);
    assert_eq!(got.stream.step, 18);
    assert_eq!(got, want, "a recorded run differs from the same run issued kernel by kernel");
}

#[test]
fn recorded_steps_match_steps_issued_kernel_by_kernel() {
    // Adam's step count and bias correction, dropout's stream and batch statistics.
    compare(|| Adam::new(0.01), false, false);
}

#[test]
fn recorded_steps_follow_schedules_and_rate_changes() {
    // A schedule the update kernel evaluates from the device's step count.
    compare(|| Adam::new(ExponentialDecay::new(0.02, 3, 0.8)).clipnorm(0.5), true, false);
    // One it cannot (more than 16 boundaries): the host writes each step's rate before it.
    let boundaries: Vec<u64> = (1..=20).collect();
    let values: Vec<f32> = (0..=20).map(|i| 0.02 / (1.0 + i as f32)).collect();
    compare(|| Adam::new(PiecewiseConstantDecay::new(boundaries.clone(), values.clone())), false, false);
    // A rate a callback sets between epochs.
    compare(|| Adam::new(0.01), true, true);
}

/// `dst = value` recorded, then replayed.
fn record_fill(dev: &Emu, buf: &mut <Emu as Device>::Buffer, value: f32) -> keras::backend::Recording {
    assert!(dev.begin_capture().unwrap());
    let n = Emu::len(buf);
    dev.fill(Emu::view_mut(buf, 0..n), value);
    dev.end_capture().unwrap().expect("a fill can be recorded")
}

fn read(dev: &Emu, buf: &<Emu as Device>::Buffer) -> Vec<f32> {
    let mut host = vec![0.0; Emu::len(buf)];
    dev.download(Emu::view(buf, 0..host.len()), &mut host).unwrap();
    host
}

#[test]
fn a_recording_runs_only_when_replayed_and_only_while_its_buffers_live() {
    let dev = Cuda::emulated();
    let mut a = dev.alloc(37).unwrap();
    let spare = dev.alloc(3).unwrap();
    let recording = record_fill(&dev, &mut a, 2.5);
    assert_eq!(read(&dev, &a), vec![0.0; 37], "recorded work ran while recording");
    assert!(dev.replay(&recording).unwrap());
    assert_eq!(read(&dev, &a), vec![2.5; 37]);
    dev.fill(Emu::view_mut(&mut a, 0..37), 0.0);
    // A free anywhere on the device makes every earlier recording stale: it runs nothing.
    drop(spare);
    assert!(!dev.replay(&recording).unwrap());
    assert_eq!(read(&dev, &a), vec![0.0; 37]);
    let again = record_fill(&dev, &mut a, 1.0);
    assert!(dev.replay(&again).unwrap());
    assert_eq!(read(&dev, &a), vec![1.0; 37]);
    assert_eq!(dev.replays(), 2);
    // Another device's recording is refused.
    let other = Cuda::emulated();
    let err = other.replay(&again).unwrap_err().to_string();
    assert!(err.contains("another device"), "{err}");
}

#[test]
fn round_trips_break_a_recording_and_nothing_of_it_runs() {
    let dev = Cuda::emulated();
    let mut a = dev.alloc(5).unwrap();
    let mut b = dev.alloc(5).unwrap();
    let before = dev.round_trips();
    // An upload, a download, an allocation: each refused while recording.
    for case in 0..3 {
        assert!(dev.begin_capture().unwrap());
        dev.fill(Emu::view_mut(&mut a, 0..5), 7.0);
        match case {
            0 => assert!(dev.upload(&[1.0; 5], Emu::view_mut(&mut b, 0..5)).is_err()),
            1 => assert!(dev.download(Emu::view(&b, 0..5), &mut [0.0; 5]).is_err()),
            _ => assert!(dev.alloc(4).is_err()),
        }
        assert!(dev.end_capture().unwrap().is_none(), "case {case}: the recording was not broken");
        assert_eq!(read(&dev, &a), vec![0.0; 5], "case {case}: broken work ran");
        assert_eq!(read(&dev, &b), vec![0.0; 5], "case {case}: the refused transfer happened");
    }
    // A buffer dropped while recording is freed when the recording ends, which it breaks.
    let c = dev.alloc(8).unwrap();
    assert!(dev.begin_capture().unwrap());
    drop(c);
    assert!(dev.end_capture().unwrap().is_none());
    // Nothing of it became a sticky error.
    dev.sync().unwrap();
    assert!(dev.round_trips() > before);
    // A kernel's failure while recording breaks the recording; issued again, it is reported.
    assert!(dev.begin_capture().unwrap());
    dev.copy(Emu::view(&a, 0..3), Emu::view_mut(&mut b, 0..5));
    assert!(dev.end_capture().unwrap().is_none());
    dev.sync().unwrap();
    dev.copy(Emu::view(&a, 0..3), Emu::view_mut(&mut b, 0..5));
    assert!(dev.sync().is_err());
}

#[test]
fn devices_that_do_not_record_say_so() {
    let cpu = Cpu::default();
    assert!(!cpu.records());
    assert!(!cpu.begin_capture().unwrap());
    let off = Cuda::emulated().with_graphs(false);
    assert!(!off.records());
    assert!(!off.begin_capture().unwrap());
}

/// A user's loss and metric run on the host whatever the device: on the emulated GPU they
/// train as on the CPU, and the step's round trip keeps it from being recorded (no replays).
#[test]
fn custom_losses_run_on_the_host_and_are_not_recorded() {
    struct Squared;
    impl keras::losses::CustomLoss for Squared {
        fn call<T: keras::autodiff::Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
            y_true.iter().zip(y_pred).map(|(&t, &p)| (p - t).square()).sum::<T>() / y_pred.len() as f32
        }
    }
    fn within(t: &[f32], p: &[f32]) -> f32 {
        t.iter().zip(p).filter(|(t, p)| (*t - *p).abs() < 0.5).count() as f32 / p.len() as f32
    }
    let _seeded = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let (x, labels, w) = data();
    let y = keras::utils::to_categorical(&labels, 3).unwrap();
    let start = Noisy::new(&Cpu::default()).get_weights().unwrap();
    fn run<B: keras::Backend>(
        mut model: Noisy<B>,
        start: &[ArrayD<f32>],
        x: &Array2<f32>,
        y: &Array2<f32>,
        w: &Array1<f32>,
    ) -> (Vec<f32>, Vec<ArrayD<f32>>) {
        model.set_weights(start).unwrap();
        model.core_mut().set_random_stream(RandomStream { seed: 0xbeef, step: 0 }).unwrap();
        let mut m = model.compile(Sgd::new(0.1), Squared, [within]).unwrap();
        let h = m.fit(x, y, FitArgs::default().epochs(2).batch_size(8).shuffle(false).sample_weight(w).verbose(0)).unwrap();
        (h.loss().iter().chain(&h["within"]).copied().collect(), m.get_weights().unwrap())
    }
    let dev = Cuda::emulated();
    let (gpu_history, gpu_weights) = run(Noisy::new(&dev), &start, &x, &y, &w);
    let (cpu_history, cpu_weights) = run(Noisy::new(&Cpu::default()), &start, &x, &y, &w);
    assert_eq!(dev.replays(), 0, "a step with a host round trip is not recorded");
    for (g, c) in gpu_history.iter().zip(&cpu_history) {
        assert!((g - c).abs() <= 1e-5 * c.abs().max(1.0), "history {gpu_history:?} vs {cpu_history:?}");
    }
    for (g, c) in gpu_weights.iter().zip(&cpu_weights) {
        for (a, b) in g.iter().zip(c) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "weights differ: {a} vs {b}");
        }
    }
}

sequential! {
    struct Swished = Dense(12, in = 5) => Lambda(|x| x * x.sigmoid()) => Dense(3, softmax);
}

/// A `Lambda` layer runs on the host whatever the device: on the emulated GPU a model with one
/// trains as on the CPU, and its steps' round trips keep them from being recorded.
#[test]
fn lambda_layers_run_on_the_host_and_are_not_recorded() {
    let _seeded = SEED.lock().unwrap_or_else(|e| e.into_inner());
    let (x, labels, _) = data();
    let y = keras::utils::to_categorical(&labels, 3).unwrap();
    let start = Swished::new(&Cpu::default()).get_weights().unwrap();
    fn run<B: keras::Backend>(
        mut model: Swished<B>,
        start: &[ArrayD<f32>],
        x: &Array2<f32>,
        y: &Array2<f32>,
    ) -> (Vec<f32>, Vec<ArrayD<f32>>) {
        model.set_weights(start).unwrap();
        let mut m = model.compile(Adam::default(), "categorical_crossentropy", ["accuracy"]).unwrap();
        let h = m.fit(x, y, FitArgs::default().epochs(3).batch_size(8).shuffle(false).verbose(0)).unwrap();
        (h.loss().to_vec(), m.get_weights().unwrap())
    }
    let dev = Cuda::emulated();
    let (gpu_history, gpu_weights) = run(Swished::new(&dev), &start, &x, &y);
    let (cpu_history, cpu_weights) = run(Swished::new(&Cpu::default()), &start, &x, &y);
    assert_eq!(dev.replays(), 0, "a step with a host round trip is not recorded");
    for (g, c) in gpu_history.iter().zip(&cpu_history) {
        assert!((g - c).abs() <= 1e-5 * c.abs().max(1.0), "history {gpu_history:?} vs {cpu_history:?}");
    }
    for (g, c) in gpu_weights.iter().zip(&cpu_weights) {
        for (a, b) in g.iter().zip(c) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "weights differ: {a} vs {b}");
        }
    }
}

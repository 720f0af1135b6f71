//! Data-parallel training over MPI (feature `mpi`): `mpirun -np 2` runs this test binary's
//! `rank_side::` cases, one process per rank; the tests here compare what the ranks wrote with a
//! single process's run of the same case (this binary without `mpirun`).
//!
//! Needs OpenMPI's `mpirun` (Debian `openmpi-bin`); without it the tests skip, except under CI
//! (`CI=true`), where they fail.
#![cfg(feature = "mpi")]

mod common;

use common::rel_err;
use keras::History;
use keras::callbacks::{BackupAndRestore, LambdaCallback, ModelCheckpoint};
use keras::distribution::DataParallel;
use keras::ndarray::{Array1, Array2, Array4};
use keras::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

sequential! {
    /// W-fmnist's model.
    pub struct Fmnist = Dense(128, in = 784, relu) => Dense(10, softmax);
}

sequential! {
    /// A small CNN with batch normalization and dropout. The convolution has no bias, as before
    /// any batch normalization: a bias there has a zero gradient up to rounding, which Adam
    /// turns into steps of the learning rate in whichever direction the rounding went.
    /// Two dropouts: one over feature maps (many rows per sample) and one over vectors.
    pub struct Cnn = Input((8, 8, 1)) => Conv2D(4, (3, 3), use_bias = false) => BatchNormalization() => Activation(relu)
        => Dropout(0.1) => MaxPooling2D((2, 2)) => Flatten() => Dropout(0.25) => Dense(3, softmax);
}

/// Deterministic data: `n` samples of `features` values in [-1, 1), labels of `classes`.
fn data(n: usize, features: usize, classes: usize) -> (Array2<f32>, Array1<u8>) {
    let mut rng = keras::utils::Rng::new(7);
    let x = Array2::from_shape_fn((n, features), |_| (rng.uniform() * 2.0 - 1.0) as f32);
    let y = Array1::from_shape_fn(n, |i| ((i * 7 + (x[[i, 0]] > 0.0) as usize) % classes) as u8);
    (x, y)
}

/// What a case leaves in its output directory: the history, then every weight, flat.
fn write_result(dir: &Path, who: &str, history: &History, weights: &[keras::ndarray::ArrayD<f32>]) {
    let mut values: Vec<f32> = Vec::new();
    for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
        values.extend(history.get(key).map(|v| v.to_vec()).unwrap_or_default());
    }
    let split = values.len();
    for w in weights {
        values.extend(w.iter().copied());
    }
    let text: Vec<String> = values.iter().map(|v| v.to_bits().to_string()).collect();
    std::fs::write(dir.join(format!("{who}.txt")), format!("{split}\n{}", text.join(" "))).unwrap();
}

/// `(history, weights)` that a case wrote.
fn read_result(dir: &Path, who: &str) -> CaseResult {
    let text = std::fs::read_to_string(dir.join(format!("{who}.txt"))).unwrap_or_else(|e| panic!("{who}'s result: {e}"));
    let (split, values) = text.split_once('\n').unwrap();
    let values: Vec<f32> = values.split(' ').map(|v| f32::from_bits(v.parse().unwrap())).collect();
    let split: usize = split.parse().unwrap();
    (values[..split].to_vec(), values[split..].to_vec())
}

/// The job a rank-side case runs in: MPI's world, or none when run as a single process.
fn job() -> Option<DataParallel> {
    (std::env::var("KERAS_TEST_SINGLE").is_err()).then(|| DataParallel::mpi().expect("MPI initializes"))
}

fn out_dir() -> PathBuf {
    PathBuf::from(std::env::var("KERAS_TEST_OUT").expect("KERAS_TEST_OUT names the output directory"))
}

fn who(job: &Option<DataParallel>) -> String {
    job.as_ref().map_or("single".to_string(), |p| format!("rank{}", p.rank()))
}

/// The cases `mpirun` runs, one process per rank (ignored in a plain `cargo test`).
mod rank_side {
    use super::*;

    /// W-fmnist's model with Adam: shuffled batches, a last batch of one sample (193 = 3 x 64 + 1:
    /// rank 0 computes nothing of it), validation split off the end.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn fmnist() {
        keras::utils::set_random_seed(42);
        let job = job();
        let (x, y) = data(241, 784, 10);
        let model = Fmnist::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
        if let Some(p) = &job {
            m = m.distribute(p).unwrap();
        }
        let args = FitArgs::default().epochs(3).batch_size(64).validation_split(0.2).verbose(0);
        let history = m.fit(&x, &y, args).unwrap();
        write_result(&out_dir(), &who(&job), &history, &m.get_weights().unwrap());
        let p = m.predict(&x).unwrap();
        let e = m.evaluate(&x, &y).unwrap();
        let text = format!("{} {}", e.loss(), p.iter().map(|v| v.to_bits().to_string()).collect::<Vec<_>>().join(" "));
        std::fs::write(out_dir().join(format!("{}-predict.txt", who(&job))), text).unwrap();
    }

    /// A CNN with BatchNormalization and Dropout: the global batch's statistics, each sample's
    /// dropout mask as one process draws it.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn cnn() {
        keras::utils::set_random_seed(43);
        let job = job();
        let (x, y) = data(90, 64, 3);
        let x = Array4::from_shape_vec((90, 8, 8, 1), x.into_raw_vec_and_offset().0).unwrap();
        let model = Cnn::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-2), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
        if let Some(p) = &job {
            m = m.distribute(p).unwrap();
        }
        let history = m.fit(&x, &y, FitArgs::default().epochs(3).batch_size(32).verbose(0)).unwrap();
        write_result(&out_dir(), &who(&job), &history, &m.get_weights().unwrap());
    }

    /// The CNN trained by `fit_dataset` from a dataset every rank reads alike (batches of 32,
    /// in order), with a validation dataset.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn dataset() {
        keras::utils::set_random_seed(45);
        let job = job();
        let (x, y) = data(90, 64, 3);
        let x = Array4::from_shape_vec((90, 8, 8, 1), x.into_raw_vec_and_offset().0).unwrap();
        let y = y.mapv(f32::from);
        let model = Cnn::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-2), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
        if let Some(p) = &job {
            m = m.distribute(p).unwrap();
        }
        let mut train = keras::datasets::ArrayDataset::new(&x, &y, 32).unwrap();
        let mut val =
            keras::datasets::ArrayDataset::new(&x.slice(keras::ndarray::s![..20, .., .., ..]), &y.slice(keras::ndarray::s![..20]), 8)
                .unwrap();
        let args = FitArgs::default().epochs(2).shuffle(false).verbose(0).validation_dataset(&mut val);
        let history = m.fit_dataset(&mut train, args).unwrap();
        write_result(&out_dir(), &who(&job), &history, &m.get_weights().unwrap());
    }

    /// Rank 1 holds a NaN (`KERAS_TEST_FAULT=nan`), an out-of-range label (`label`) or other
    /// data than rank 0 (`data`): every rank gets an `Err` and ends normally.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn data_fault() {
        let job = job().expect("run under mpirun");
        let (mut x, mut y) = data(64, 784, 10);
        if job.rank() == 1 {
            match std::env::var("KERAS_TEST_FAULT").as_deref() {
                Ok("nan") => x[[5, 3]] = f32::NAN,
                Ok("label") => y[9] = 12,
                Ok("data") => x[[7, 7]] += 1.0,
                other => panic!("unknown fault {other:?}"),
            }
        }
        let model = Fmnist::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ["accuracy"]).unwrap().distribute(&job).unwrap();
        let err = m.fit(&x, &y, FitArgs::default().epochs(1).batch_size(16).verbose(0)).unwrap_err();
        std::fs::write(out_dir().join(format!("rank{}-error.txt", job.rank())), err.to_string()).unwrap();
        // predict checks its input on every rank too.
        let err = m.predict(&x).err().map_or("ok".to_string(), |e| e.to_string());
        std::fs::write(out_dir().join(format!("rank{}-predict-error.txt", job.rank())), err).unwrap();
    }

    /// A callback that fails on rank 0 alone (CSVLogger, which only rank 0 opens, in a missing
    /// directory) before one that makes collective calls (BackupAndRestore): every rank gets
    /// an `Err`, none waits.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn callback_fault() {
        let job = job().expect("run under mpirun");
        let (x, y) = data(64, 784, 10);
        let model = Fmnist::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ["accuracy"]).unwrap().distribute(&job).unwrap();
        let dir = out_dir();
        let mut csv = keras::callbacks::CSVLogger::new(dir.join("no/such/dir/log.csv"));
        let mut backup = BackupAndRestore::new(dir.join("backup"));
        let args = FitArgs::default().epochs(2).batch_size(16).verbose(0).callback(&mut csv).callback(&mut backup);
        let err = m.fit(&x, &y, args).unwrap_err();
        std::fs::write(dir.join(format!("rank{}-error.txt", job.rank())), err.to_string()).unwrap();
    }

    /// Five epochs with a checkpoint and a backup each epoch; with `KERAS_TEST_FAULT=kill` rank 1
    /// dies as the third epoch begins.
    #[test]
    #[ignore = "run by mpirun from the tests below"]
    fn backup() {
        keras::utils::set_random_seed(44);
        let job = job().expect("run under mpirun");
        let dir = out_dir();
        let (x, y) = data(128, 784, 10);
        let model = Fmnist::new(&Cpu::default());
        let mut m = model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ["accuracy"]).unwrap().distribute(&job).unwrap();
        let rank = job.rank();
        let kill = std::env::var("KERAS_TEST_FAULT").as_deref() == Ok("kill");
        let mut die = LambdaCallback::default().on_epoch_begin(move |epoch| {
            if kill && rank == 1 && epoch == 2 {
                std::process::abort();
            }
        });
        let mut backup = BackupAndRestore::new(dir.join("backup"));
        let mut checkpoint = ModelCheckpoint::new(dir.join("ckpt/weights.safetensors").to_str().unwrap().to_string());
        let args =
            FitArgs::default().epochs(5).batch_size(32).verbose(0).callback(&mut backup).callback(&mut checkpoint).callback(&mut die);
        let history = m.fit(&x, &y, args).unwrap();
        write_result(&dir, &who(&Some(job)), &history, &m.get_weights().unwrap());
    }
}

/// `mpirun`, or `None` (the test skips) where OpenMPI is missing; under CI a missing `mpirun`
/// fails.
fn mpirun() -> Option<Command> {
    let found = Command::new("mpirun").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "mpirun not found: install openmpi-bin (.ci/run does)");
        eprintln!("skipped: mpirun not found (install openmpi-bin)");
        return None;
    }
    let mut cmd = Command::new("mpirun");
    // Two ranks on a machine of any size, as root in CI containers.
    cmd.args(["--oversubscribe", "--bind-to", "none"]);
    cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    Some(cmd)
}

/// A fresh output directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keras-distributed-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd` (this binary's rank-side `case`), killing it after `limit`: its exit status, or
/// `None` when it had to be killed (a hang).
fn run_case(mut cmd: Command, case: &str, dir: &Path, env: &[(&str, &str)], limit: Duration) -> Option<std::process::ExitStatus> {
    let exe = std::env::current_exe().unwrap();
    cmd.arg(exe).args(["--ignored", "--exact", &format!("rank_side::{case}"), "--test-threads=1"]);
    cmd.env("KERAS_TEST_OUT", dir).env("KERAS_NUM_THREADS", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What a case wrote: its history and its weights.
type CaseResult = (Vec<f32>, Vec<f32>);

/// Runs `case` on two ranks and as a single process; the output directory and rank 0's result.
fn two_ranks_and_one(case: &str) -> Option<(PathBuf, CaseResult)> {
    let mpi = mpirun()?;
    let dir = scratch(case);
    let mut two = mpi;
    two.args(["-np", "2"]);
    let status = run_case(two, case, &dir, &[], Duration::from_secs(240)).expect("the 2-rank run ends");
    assert!(status.success(), "mpirun -np 2 {case}: {status}");
    let single =
        run_case(Command::new(std::env::current_exe().unwrap()), case, &dir, &[("KERAS_TEST_SINGLE", "1")], Duration::from_secs(240))
            .expect("the single run ends");
    assert!(single.success(), "single {case}: {single}");
    let (r0, r1) = (read_result(&dir, "rank0"), read_result(&dir, "rank1"));
    // One update on every rank: bit for bit the same weights and logs.
    assert!(r0.1.iter().zip(&r1.1).all(|(a, b)| a.to_bits() == b.to_bits()), "{case}: the ranks' weights differ");
    assert_eq!(r0.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), r1.0.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    Some((dir, r0))
}

/// Asserts a 2-rank result equals the single process's within `1e-5`.
fn assert_matches_single(case: &str, dir: &Path, two: &CaseResult) {
    let single = read_result(dir, "single");
    assert_eq!(two.0.len(), single.0.len(), "{case}: history lengths");
    assert!(two.0.iter().chain(&two.1).chain(&single.0).chain(&single.1).all(|v| v.is_finite()), "{case}: a NaN: {:?}", two.0);
    let (eh, ew) = (rel_err(&two.0, &single.0), rel_err(&two.1, &single.1));
    eprintln!("{case}: 2 ranks against 1: history {eh:.2e}, weights {ew:.2e} (relative, max norm)");
    assert!(eh <= 1e-5 && ew <= 1e-5, "{case}: 2 ranks differ from 1: history {eh:.2e}, weights {ew:.2e}");
}

#[test]
fn two_ranks_train_w_fmnist_as_one() {
    let Some((dir, two)) = two_ranks_and_one("fmnist") else { return };
    assert_matches_single("fmnist", &dir, &two);
    // predict and evaluate are sharded and gathered: every rank has every prediction.
    let read = |who: &str| std::fs::read_to_string(dir.join(format!("{who}-predict.txt"))).unwrap();
    let parse =
        |t: String| t.split(' ').map(|v| v.parse::<f32>().unwrap_or_else(|_| f32::from_bits(v.parse().unwrap()))).collect::<Vec<f32>>();
    let (p0, p1, p) = (parse(read("rank0")), parse(read("rank1")), parse(read("single")));
    assert_eq!(p0.len(), 1 + 241 * 10);
    assert_eq!(p0, p1, "every rank gathers the same predictions and loss");
    assert!(rel_err(&p0, &p) <= 1e-5, "predictions and evaluate's loss on 2 ranks against 1: {:.2e}", rel_err(&p0, &p));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_ranks_train_a_cnn_with_batch_norm_and_dropout_as_one() {
    let Some((dir, two)) = two_ranks_and_one("cnn") else { return };
    assert_matches_single("cnn", &dir, &two);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_ranks_train_from_a_dataset_as_one() {
    let Some((dir, two)) = two_ranks_and_one("dataset") else { return };
    assert_matches_single("dataset", &dir, &two);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_data_error_on_one_rank_is_an_error_on_every_rank() {
    for (fault, rank1, rank0) in [
        ("nan", "non-finite value (NaN)", "rank 1 of 2 failed: x contains a non-finite value (NaN)"),
        ("label", "12", "rank 1 of 2 failed:"),
        ("data", "rank 1 was given different data from rank 0", "rank 1 was given different data from rank 0"),
    ] {
        let Some(mut mpi) = mpirun() else { return };
        let dir = scratch(&format!("fault-{fault}"));
        mpi.args(["-np", "2"]);
        let status = run_case(mpi, "data_fault", &dir, &[("KERAS_TEST_FAULT", fault)], Duration::from_secs(120));
        let status = status.unwrap_or_else(|| panic!("{fault}: the job hung"));
        assert!(status.success(), "{fault}: both ranks return their error and end normally: {status}");
        let message = |r: usize| std::fs::read_to_string(dir.join(format!("rank{r}-error.txt"))).unwrap();
        assert!(message(1).contains(rank1), "{fault}: rank 1 says {}", message(1));
        assert!(message(0).contains(rank0), "{fault}: rank 0 says {}", message(0));
        let predicted = |r: usize| std::fs::read_to_string(dir.join(format!("rank{r}-predict-error.txt"))).unwrap();
        if fault == "nan" {
            assert!(predicted(1).contains("non-finite value (NaN)"), "{}", predicted(1));
            assert!(predicted(0).starts_with("rank 1 of 2 failed: x contains a non-finite value (NaN)"), "{}", predicted(0));
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_callback_failing_on_rank_0_alone_is_an_error_on_every_rank() {
    let Some(mut mpi) = mpirun() else { return };
    let dir = scratch("callback-fault");
    mpi.args(["-np", "2"]);
    let status = run_case(mpi, "callback_fault", &dir, &[], Duration::from_secs(120)).expect("the job ends (no rank waits)");
    assert!(status.success(), "both ranks return their error: {status}");
    let message = |r: usize| std::fs::read_to_string(dir.join(format!("rank{r}-error.txt"))).unwrap();
    assert!(message(0).contains("log.csv"), "rank 0: {}", message(0));
    assert!(message(1).starts_with("rank 0 of 2 failed: ") && message(1).contains("log.csv"), "rank 1: {}", message(1));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_killed_rank_ends_the_job_and_backup_and_restore_resumes_it() {
    let Some(mut mpi) = mpirun() else { return };
    let dir = scratch("kill");
    mpi.args(["-np", "2"]);
    let status = run_case(mpi, "backup", &dir, &[("KERAS_TEST_FAULT", "kill")], Duration::from_secs(120));
    let status = status.expect("a dead rank ends the job (MPI aborts it), no hang");
    assert!(!status.success(), "the job fails when a rank dies");
    // The backup holds the two completed epochs, and the checkpoint is whole.
    let backup = dir.join("backup");
    assert!(backup.exists(), "rank 0 backed up the completed epochs");
    let mut model = Fmnist::new(&Cpu::default());
    model.load_weights(dir.join("ckpt/weights.safetensors")).expect("the checkpoint is a complete file");
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("ckpt")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left beside the checkpoint: {leftovers:?}");

    // The same job again resumes from epoch 2 and ends as a run that never stopped.
    let Some(mut mpi) = mpirun() else { return };
    mpi.args(["-np", "2"]);
    let status = run_case(mpi, "backup", &dir, &[], Duration::from_secs(120)).expect("the resumed job ends");
    assert!(status.success(), "the resumed job: {status}");
    let resumed = read_result(&dir, "rank0");
    assert_eq!(resumed.0.len(), 2 * 3, "the resumed run trains epochs 3 to 5 (loss and accuracy of 3 epochs)");
    assert!(!backup.exists(), "the backup is removed when the run completes");

    let whole = scratch("kill-whole");
    let Some(mut mpi) = mpirun() else { return };
    mpi.args(["-np", "2"]);
    let status = run_case(mpi, "backup", &whole, &[], Duration::from_secs(120)).expect("the uninterrupted job ends");
    assert!(status.success());
    let uninterrupted = read_result(&whole, "rank0");
    assert_eq!(resumed.1, uninterrupted.1, "resumed weights equal an uninterrupted run's");
    // History: the loss of each epoch, then the accuracy.
    let (loss, accuracy) = uninterrupted.0.split_at(5);
    assert_eq!(resumed.0, [&loss[2..], &accuracy[2..]].concat(), "the resumed epochs log what the uninterrupted run logged");
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(whole);
}

//! The fuzz corpora (`fuzz/corpus/<target>/`) and the crash inputs fixed since
//! (`fuzz/regressions/<target>/`), replayed through their loaders on stable Rust: every file
//! must give `Ok` or `Err`, never a panic, and never an allocation of what the file declares
//! (a counting allocator checks that no single allocation exceeds [`LIMIT`]). The models are
//! those of `fuzz/src/lib.rs`.

use keras::ndarray::Array2;
use keras::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/pack.rs"]
mod pack;

/// The largest single allocation a loader may make for one of these (small) inputs.
const LIMIT: usize = 64 << 20;

thread_local! {
    /// The largest allocation this thread has made since [`largest_since`] last reset it.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, recording the largest allocation of each thread.
struct Recording;

fn record(size: usize) {
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// The largest allocation `f` makes on this thread.
fn largest_in<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}

sequential! { struct Normalized = Dense(8, in = 2, use_bias = false) => BatchNormalization() => Dense(1); }
sequential! { struct Net = Input(4) => Dense(5, relu) => Dense(3, softmax); }
sequential! {
    struct SmallCnn = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(3, softmax);
}

functional! {
    /// The architecture of the `E_functional_three_inputs` Keras fixture (three inputs).
    struct ThreeInputs(a: [6], b: [3], meta: [2]) -> out {
        let enc = Dense(4, relu, name = "enc");
        let x = enc(a);
        let m = Dense(3, tanh, name = "m")(meta);
        let y = Dense(4, relu, name = "by")(b);
        let j = Concatenate(name = "j")(x, y, m);
        let out = Dense(3, softmax, name = "out")(j);
    }
}

functional! {
    /// The architecture of the `E_functional_shared_three` Keras fixture (a layer called thrice).
    struct SharedThree(x: [6]) -> out {
        let h = Dense(5, tanh, name = "h")(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add(name = "add")(h, b, c);
        let out = Dense(3, softmax, name = "out")(s);
    }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The corpus files and fixed crash inputs of `target`, sorted.
fn inputs(target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["corpus", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) {
            files.extend(entries.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files
}

/// Runs every input of `target` through `load` (true for `Ok`), and fails naming each input
/// that panicked or allocated more than [`LIMIT`] at once. Also checks that the corpus holds inputs that load and inputs that do not, so
/// that both paths of the loader are replayed.
fn replay(target: &str, load: impl Fn(&[u8]) -> bool) {
    let files = inputs(target);
    assert!(files.len() >= 2, "fuzz/corpus/{target}/ holds {} files: expected the minimized corpus", files.len());
    let (mut panicked, mut greedy) = (Vec::new(), Vec::new());
    let (mut ok, mut err) = (0, 0);
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let (outcome, largest) = largest_in(|| catch_unwind(AssertUnwindSafe(|| load(&bytes))));
        match outcome {
            Ok(true) => ok += 1,
            Ok(false) => err += 1,
            Err(_) => panicked.push(file.display().to_string()),
        }
        if largest > LIMIT {
            greedy.push(format!("{} ({largest} bytes at once)", file.display()));
        }
    }
    assert!(panicked.is_empty(), "{target}: these inputs panic instead of giving an Err: {panicked:#?}");
    assert!(greedy.is_empty(), "{target}: these inputs make allocations over {LIMIT} bytes: {greedy:#?}");
    assert!(ok > 0 && err > 0, "{target}: {ok} inputs load and {err} do not: expected some of each in the corpus");
}

fn keras_file(bytes: &[u8]) -> bool {
    let net = keras::io::keras_file::weights_from_bytes::<Net>(bytes.to_vec()).is_ok();
    let cnn = keras::io::keras_file::weights_from_bytes::<SmallCnn>(bytes.to_vec()).is_ok();
    let three = keras::io::keras_file::weights_from_bytes::<ThreeInputs>(bytes.to_vec()).is_ok();
    let shared = keras::io::keras_file::weights_from_bytes::<SharedThree>(bytes.to_vec()).is_ok();
    net || cnn || three || shared
}

#[test]
fn safetensors_weights_corpus() {
    replay("weights", |b| {
        let mut model = Normalized::new(&Cpu::default());
        keras::io::weights::load_weights_from_bytes(&mut model, b, "corpus.safetensors".as_ref()).is_ok()
    });
}

#[test]
fn training_state_corpus() {
    let path = std::env::temp_dir().join(format!("keras-fuzz-corpus-state-{}.safetensors", std::process::id()));
    replay("state", |b| {
        let mut model = Normalized::new(&Cpu::default()).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).unwrap();
        std::fs::write(&path, b).unwrap();
        model.load_state(&path).is_ok()
    });
    let _ = std::fs::remove_file(&path);
}

#[test]
fn keras_archive_corpus() {
    replay("keras_zip", keras_file);
}

#[test]
fn keras_members_corpus() {
    replay("keras_members", |b| {
        let Some((n, rest)) = b.split_first_chunk::<2>() else { return false };
        let split = usize::from(u16::from_le_bytes(*n)).min(rest.len());
        keras_file(&pack::keras_archive(&rest[..split], &rest[split..]))
    });
}

#[test]
fn hdf5_corpus() {
    replay("h5", keras_file);
}

#[test]
fn idx_corpus() {
    replay("idx", |b| b.split_first().is_some_and(|(&flag, rest)| keras::datasets::idx::from_reader(rest, flag & 1 == 1).is_ok()));
}

#[test]
fn csv_corpus() {
    replay("csv", |b| b.split_first().is_some_and(|(&flag, rest)| keras::datasets::from_csv_reader(rest, flag & 1 == 1).is_ok()));
}

#[test]
fn npy_corpus() {
    replay("npy", |b| keras::datasets::read_npy_bytes(b).is_ok());
}

#[test]
fn npz_corpus() {
    replay("npz", |b| keras::datasets::read_npz_bytes(b.to_vec()).is_ok());
}

/// Writes the seeds of the weights, state and keras_zip targets, saved by the library itself
/// (`cargo test --release --test fuzz_corpus -- --ignored write_seeds`); the other seeds come
/// from `fuzz/make_seeds.py`.
#[test]
#[ignore = "writes the fuzz seeds into fuzz/corpus/"]
fn write_seeds() {
    keras::utils::set_random_seed(5);
    let corpus = fuzz_dir().join("corpus");
    let x = Array2::from_shape_fn((16, 2), |(i, j)| ((i * 7 + j * 3) % 5) as f32 / 2.0 - 1.0);
    let y = Array2::from_shape_fn((16, 1), |(i, _)| x[[i, 0]] - x[[i, 1]]);
    let mut model = Normalized::new(&Cpu::default()).compile(Adam::default(), "mse", [Metric::Accuracy; 0]).unwrap();
    model.save_weights(corpus.join("weights/untrained.safetensors")).unwrap();
    model.save_state(corpus.join("state/untrained.safetensors"), 0).unwrap();
    model.fit(&x, &y, FitArgs::default().epochs(2).batch_size(8).shuffle(true).verbose(0)).unwrap();
    model.save_weights(corpus.join("weights/trained.safetensors")).unwrap();
    model.save_state(corpus.join("state/trained.safetensors"), 2).unwrap();
    Net::new(&Cpu::default()).save_keras(corpus.join("keras_zip/saved_by_keras_rs.keras")).unwrap();
    SmallCnn::new(&Cpu::default()).save_keras(corpus.join("keras_zip/cnn_saved_by_keras_rs.keras")).unwrap();
}

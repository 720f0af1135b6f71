//! The standard workloads (`WORKLOADS.md` of the anchors): medians after a warm-up, as a
//! Markdown table.
//!
//! ```text
//! cargo run --release --example bench                 # every CPU row
//! cargo run --release --example bench -- W-fmnist     # some rows
//! cargo run --release --example bench -- --accuracy   # also W-fmnist test accuracy after 5 epochs
//! cargo run --release --example bench -- --gemm       # the FMA peak; our GEMM per workload shape
//!                                                     # beside matrixmultiply, PyTorch and NumPy
//! cargo run --release --example bench -- --json f.json # also the medians as JSON (s, us, samples/s)
//! cargo run --release --example bench -- --applications  # ResNet50 and MobileNetV2 (issue 16's rows)
//! cargo run --release --features cuda --example bench -- --cuda            # the GPU rows
//! cargo run --release --features cuda --example bench -- --cuda --emulate  # the same, tiny, on the emulator
//! scripts/distributed-bench.sh   # W-fmnist and W-wide data-parallel: 1 rank x 2 threads, 2 ranks x 1 thread
//! ```
//! Fashion-MNIST comes from Debian's `dataset-fashion-mnist`; its rows are skipped with a message
//! when it is absent.

use keras::datasets::{fashion_mnist, iris};
use keras::ndarray::{Array1, Array2, Axis, array, s};
use keras::prelude::*;
use std::time::Instant;

sequential! { struct XorNet = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid); }
sequential! { struct IrisNet = Dense(8, in = 4, relu) => Dense(3, softmax); }
sequential! { struct FmnistNet = Dense(128, in = 784, relu) => Dense(10, softmax); }
sequential! {
    struct CnnNet = Input((28, 28, 1)) => Conv2D(32, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(10, softmax);
}
functional! {
    /// W-fmnist's model as a functional graph on two inputs (an image's top and bottom halves,
    /// joined): what the several-inputs path costs beside W-fmnist, in the same run.
    struct FmnistTwoInputs(top: [392], bottom: [392]) -> out {
        let x = Concatenate()(top, bottom);
        let h = Dense(128, relu)(x);
        let out = Dense(10, softmax)(h);
    }
}
sequential! { struct WideNet = Dense(1024, in = 784, relu) => Dense(1024, relu) => Dense(10, softmax); }
keras::application! {
    struct ResNet50 = ResNet50();
    struct MobileNetV2 = MobileNetV2();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs `f` once to warm up, then `runs` times; the median of the seconds it returns.
fn timed(runs: usize, mut f: impl FnMut() -> f64) -> f64 {
    f();
    median((0..runs).map(|_| f()).collect())
}

struct Row {
    id: &'static str,
    value: String,
    note: String,
    /// The median in the unit of the reference scripts' JSON (seconds, µs or samples/s).
    raw: f64,
}

/// Fashion-MNIST flattened and scaled: training images and labels, then test images and labels.
type Flat = (Array2<f32>, Array1<u8>, Array2<f32>, Array1<u8>);

fn fmnist() -> Option<Flat> {
    match fashion_mnist::load_data() {
        Ok(((xt, yt), (xv, yv))) => {
            let flat = |x: keras::ndarray::Array3<u8>| {
                let n = x.shape()[0];
                x.into_shape_with_order((n, 784)).expect("28x28 images").mapv(|p| p as f32 / 255.0)
            };
            Some((flat(xt), yt, flat(xv), yv))
        }
        Err(e) => {
            eprintln!("skipping the Fashion-MNIST rows: {e}");
            None
        }
    }
}

fn main() -> keras::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |id: &str| args.iter().filter(|a| a.starts_with("W-")).count() == 0 || args.iter().any(|a| a == id);
    if args.iter().any(|a| a == "--gemm") {
        // `--gemm 1024x784x1024 ...`: only those shapes (m x k x n), for profiling.
        let only: Vec<String> = args.iter().filter(|a| a.contains('x') && !a.starts_with('-')).cloned().collect();
        gemm_table(&only);
        return Ok(());
    }
    let mut rows = Vec::new();
    if args.iter().any(|a| a == "--applications") {
        let mut rows = Vec::new();
        application_rows(&mut rows)?;
        return print_rows(&rows, &args);
    }
    if args.iter().any(|a| a == "--mpi") {
        return mpi_rows(&args);
    }
    if args.iter().any(|a| a == "--cuda") {
        gpu_rows(&args, &mut rows)?;
        print_rows(&rows, &args)?;
        return Ok(());
    }
    println!("keras-rs {} on {}\n", env!("CARGO_PKG_VERSION"), Cpu::default().describe());

    if wanted("W-xor") {
        let x = array![[0.0f32, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]];
        let y = array![[0.0f32], [1.0], [1.0], [0.0]];
        let mut preds = Vec::new();
        let t = timed(7, || {
            keras::utils::set_random_seed(2);
            let mut m = XorNet::new(&Cpu::default()).compile(Sgd::new(1.0), "mse", [Metric::Accuracy; 0]).expect("compile");
            let t0 = Instant::now();
            m.fit(&x, &y, FitArgs::default().epochs(1500).verbose(0)).expect("fit");
            let dt = t0.elapsed().as_secs_f64();
            preds = m.predict(&x).expect("predict").iter().map(|p| format!("{p:.2}")).collect();
            dt
        });
        rows.push(Row {
            id: "W-xor",
            value: format!("{:.3} ms", t * 1e3),
            note: format!("fit of 1500 epochs; predictions [{}]", preds.join(", ")),
            raw: t,
        });
    }

    if wanted("W-iris") {
        let (x, labels) = iris::load_data();
        let y = keras::utils::to_categorical(&labels, 3)?;
        let mut acc = 0.0;
        let t = timed(7, || {
            keras::utils::set_random_seed(1);
            let mut m = IrisNet::new(&Cpu::default()).compile(Adam::new(1e-3), "categorical_crossentropy", ["accuracy"]).expect("compile");
            let t0 = Instant::now();
            let h = m.fit(&x, &y, FitArgs::default().epochs(100).batch_size(16).verbose(0)).expect("fit");
            let dt = t0.elapsed().as_secs_f64();
            acc = *h["accuracy"].last().expect("100 epochs");
            dt
        });
        rows.push(Row {
            id: "W-iris",
            value: format!("{:.3} ms", t * 1e3),
            note: format!("fit of 100 epochs; train accuracy {acc:.3} (raw features, lr 1e-3)"),
            raw: t,
        });
    }

    let fm =
        if ["W-fmnist", "W-fmnist-2in", "W-wide", "W-infer1", "W-inferB", "W-cnn"].iter().any(|id| wanted(id)) { fmnist() } else { None };
    if let Some((xt, yt, xv, yv)) = &fm {
        if wanted("W-fmnist") {
            let t = timed(3, || {
                keras::utils::set_random_seed(1);
                let mut m = FmnistNet::new(&Cpu::default())
                    .compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])
                    .expect("compile");
                let t0 = Instant::now();
                m.fit(xt, yt, FitArgs::default().epochs(1).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            });
            let mut note = "1 epoch, batch 32, Adam".to_string();
            if args.iter().any(|a| a == "--accuracy") {
                keras::utils::set_random_seed(1);
                let mut m = FmnistNet::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
                m.fit(xt, yt, FitArgs::default().epochs(5).verbose(0))?;
                note += &format!("; test accuracy after 5 epochs {:.4}", m.evaluate(xv, yv)?["accuracy"]);
            }
            rows.push(Row { id: "W-fmnist", value: format!("{t:.3} s/epoch"), note, raw: t });
        }
        if wanted("W-fmnist-2in") {
            let (top, bottom) = (xt.slice(keras::ndarray::s![.., ..392]).to_owned(), xt.slice(keras::ndarray::s![.., 392..]).to_owned());
            let t = timed(3, || {
                keras::utils::set_random_seed(1);
                let mut m = FmnistTwoInputs::new(&Cpu::default())
                    .compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])
                    .expect("compile");
                let t0 = Instant::now();
                m.fit(&[top.view(), bottom.view()], yt, FitArgs::default().epochs(1).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            });
            let note = "W-fmnist as functional! on two inputs (Concatenate): keras-rs only, no reference".to_string();
            rows.push(Row { id: "W-fmnist-2in", value: format!("{t:.3} s/epoch"), note, raw: t });
        }
        if wanted("W-cnn") {
            let images = xt.view().into_shape_with_order((xt.nrows(), 28, 28, 1)).expect("28x28 images");
            let t = timed(3, || {
                keras::utils::set_random_seed(1);
                let mut m = CnnNet::new(&Cpu::default())
                    .compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])
                    .expect("compile");
                let t0 = Instant::now();
                m.fit(&images, yt, FitArgs::default().epochs(1).batch_size(128).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            });
            rows.push(Row { id: "W-cnn", value: format!("{t:.3} s/epoch"), note: "1 epoch, batch 128, Adam".to_string(), raw: t });
        }
        if wanted("W-wide") {
            let t = timed(3, || {
                keras::utils::set_random_seed(1);
                let mut m = WideNet::new(&Cpu::default())
                    .compile(Sgd::new(0.01), "sparse_categorical_crossentropy", ["accuracy"])
                    .expect("compile");
                let t0 = Instant::now();
                m.fit(xt, yt, FitArgs::default().epochs(1).batch_size(256).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            });
            let flops = 6.0 * WideNet::PARAMS as f64 * 60_000.0;
            rows.push(Row {
                id: "W-wide",
                value: format!("{t:.3} s/epoch"),
                note: format!("{:.0} samples/s, {:.0} GFLOP/s (6 x params x samples / time)", 60_000.0 / t, flops / t / 1e9),
                raw: t,
            });
        }
        if wanted("W-infer1") {
            keras::utils::set_random_seed(1);
            let mut m = FmnistNet::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
            m.fit(&xt.slice(s![..6000, ..]), &yt.slice(s![..6000]), FitArgs::default().verbose(0))?;
            let model = m.into_inner();
            let samples: Vec<[f32; 784]> = xv.axis_iter(Axis(0)).take(10_000).map(|r| r.to_vec().try_into().expect("784 pixels")).collect();
            let mut lat = Vec::with_capacity(samples.len());
            let mut sink = 0.0f32;
            for _ in 0..2 {
                lat.clear();
                for s in &samples {
                    let t0 = Instant::now();
                    let p = model.predict_one(s);
                    lat.push(t0.elapsed().as_secs_f64());
                    sink += p[0];
                }
            }
            let us = median(lat) * 1e6;
            rows.push(Row {
                id: "W-infer1",
                value: format!("{us:.2} us"),
                note: format!("median of 10k predict_one calls (checksum {sink:.1})"),
                raw: us,
            });
        }
        if wanted("W-inferB") {
            keras::utils::set_random_seed(1);
            let m = WideNet::new(&Cpu::default());
            let x = xv.slice(s![..10_000, ..]);
            let t = timed(5, || {
                let t0 = Instant::now();
                for chunk in x.axis_chunks_iter(Axis(0), 1024) {
                    m.predict_on_batch(&chunk).expect("predict");
                }
                t0.elapsed().as_secs_f64()
            });
            rows.push(Row {
                id: "W-inferB",
                value: format!("{:.1}k samples/s", 10_000.0 / t / 1e3),
                note: "10k samples, batch 1024, W-wide model".to_string(),
                raw: 10_000.0 / t,
            });
        }
    }

    print_rows(&rows, &args)
}

/// Keras's applications at 224x224 (scripts/bench_applications.py runs the same in Keras and
/// PyTorch): ResNet50 inference at batch 1 and 32, one ResNet50 training step at batch 32 (SGD,
/// sparse categorical cross-entropy), MobileNetV2 at batch 1. Deterministic images in [-1, 1].
fn application_rows(rows: &mut Vec<Row>) -> keras::Result<()> {
    let images = |n: usize| {
        keras::ndarray::Array4::from_shape_fn((n, 224, 224, 3), |(i, y, x, c)| (((i * 7 + y * 3 + x * 5 + c) % 255) as f32 / 127.5) - 1.0)
    };
    let (x1, x32) = (images(1), images(32));
    let resnet = ResNet50::new(&Cpu::default());
    let t = timed(15, || {
        let t0 = Instant::now();
        resnet.predict_on_batch(&x1).expect("predict");
        t0.elapsed().as_secs_f64()
    });
    rows.push(Row { id: "A-resnet50-b1", value: format!("{:.1} ms", t * 1e3), note: "ResNet50, one 224x224 image".into(), raw: t });
    let t = timed(5, || {
        let t0 = Instant::now();
        resnet.predict_on_batch(&x32).expect("predict");
        t0.elapsed().as_secs_f64()
    });
    rows.push(Row {
        id: "A-resnet50-b32",
        value: format!("{:.1} images/s", 32.0 / t),
        note: "ResNet50, a batch of 32".into(),
        raw: 32.0 / t,
    });
    let mut model = resnet.compile(Sgd::new(0.01), "sparse_categorical_crossentropy", [Metric::Accuracy; 0])?;
    let y = keras::ndarray::Array1::from_shape_fn(32, |i| (i * 31 % 1000) as u32);
    let t = timed(5, || {
        let t0 = Instant::now();
        model.train_on_batch(&x32, &y).expect("train");
        t0.elapsed().as_secs_f64()
    });
    rows.push(Row {
        id: "A-resnet50-train32",
        value: format!("{:.3} s/step", t),
        note: "ResNet50, one SGD step on 32 images".into(),
        raw: t,
    });
    let mobilenet = MobileNetV2::new(&Cpu::default());
    let t = timed(25, || {
        let t0 = Instant::now();
        mobilenet.predict_on_batch(&x1).expect("predict");
        t0.elapsed().as_secs_f64()
    });
    rows.push(Row { id: "A-mobilenetv2-b1", value: format!("{:.2} ms", t * 1e3), note: "MobileNetV2, one 224x224 image".into(), raw: t });
    Ok(())
}

/// The table, and the JSON file `--json` asks for.
fn print_rows(rows: &[Row], args: &[String]) -> keras::Result<()> {
    println!("| workload | keras-rs (median) | notes |");
    println!("|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.id, r.value, r.note);
    }
    if let Some(path) = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1)) {
        let body: Vec<String> = rows.iter().map(|r| format!("  \"{}\": {}", r.id, r.raw)).collect();
        std::fs::write(path, format!("{{\n{}\n}}\n", body.join(",\n")))
            .map_err(|source| keras::Error::Io { path: path.clone(), source })?;
    }
    Ok(())
}

#[cfg(not(feature = "mpi"))]
fn mpi_rows(_args: &[String]) -> keras::Result<()> {
    Err(keras::Error::Config("the data-parallel rows need MPI: cargo run --release --features mpi --example bench -- --mpi".into()))
}

/// W-fmnist and W-wide trained data-parallel in the MPI job this process is part of (a single
/// rank when started without `mpirun`), with the gradient all-reduce's share of a step; rank 0
/// prints. `scripts/distributed-bench.sh` runs it on 1 rank x 2 threads and 2 ranks x 1 thread.
#[cfg(feature = "mpi")]
fn mpi_rows(args: &[String]) -> keras::Result<()> {
    let wanted = |id: &str| args.iter().filter(|a| a.starts_with("W-")).count() == 0 || args.iter().any(|a| a == id);
    let job = keras::distribution::DataParallel::mpi()?;
    let threads = std::env::var("KERAS_NUM_THREADS").unwrap_or_else(|_| "all cores".to_string());
    if job.is_chief() {
        println!("keras-rs {} on {}: {} rank(s) x {threads} thread(s)\n", env!("CARGO_PKG_VERSION"), Cpu::default().describe(), job.size());
    }
    let Some((xt, yt, ..)) = fmnist() else { return Ok(()) };
    let mut rows = Vec::new();
    // One epoch of `fit` in the job: its seconds, and the all-reduces' seconds per step.
    let epoch = |fit: &mut dyn FnMut() -> keras::Result<()>| -> keras::Result<(f64, f64)> {
        let mut reduce = Vec::new();
        let t = timed(3, || {
            let (n0, t0r) = job.all_reduce_time();
            let t0 = Instant::now();
            fit().expect("fit");
            let dt = t0.elapsed().as_secs_f64();
            let (n1, t1r) = job.all_reduce_time();
            reduce.push((t1r - t0r).as_secs_f64() / (n1 - n0).max(1) as f64);
            dt
        });
        Ok((t, median(reduce)))
    };
    let ranks = job.size();
    if wanted("W-fmnist") {
        let (t, r) = epoch(&mut || {
            keras::utils::set_random_seed(1);
            let m = FmnistNet::new(&Cpu::default()).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
            m.distribute(&job)?.fit(&xt, &yt, FitArgs::default().epochs(1).verbose(0)).map(drop)
        })?;
        let note = format!("{ranks} rank(s) x {threads} thread(s); all-reduce {:.3} ms/step of {:.3}", r * 1e3, t / 1875.0 * 1e3);
        rows.push(Row { id: "W-fmnist", value: format!("{t:.3} s/epoch"), note, raw: t });
    }
    if wanted("W-wide") {
        let (t, r) = epoch(&mut || {
            keras::utils::set_random_seed(1);
            let m = WideNet::new(&Cpu::default()).compile(Sgd::new(0.01), "sparse_categorical_crossentropy", ["accuracy"])?;
            m.distribute(&job)?.fit(&xt, &yt, FitArgs::default().epochs(1).batch_size(256).verbose(0)).map(drop)
        })?;
        let note = format!("{ranks} rank(s) x {threads} thread(s); all-reduce {:.3} ms/step of {:.3}", r * 1e3, t / 235.0 * 1e3);
        rows.push(Row { id: "W-wide", value: format!("{t:.3} s/epoch"), note, raw: t });
    }
    if job.is_chief() {
        print_rows(&rows, args)?;
    }
    Ok(())
}

#[cfg(not(feature = "cuda"))]
fn gpu_rows(_args: &[String], _rows: &mut Vec<Row>) -> keras::Result<()> {
    Err(keras::Error::Config("the GPU rows need the CUDA backend: cargo run --release --features cuda --example bench -- --cuda".into()))
}

#[cfg(feature = "cuda")]
sequential! {
    struct GpuWideNet = Dense(4096, in = 784, relu) => Dense(4096, relu) => Dense(4096, relu) => Dense(10, softmax);
}

/// The GPU rows (`WORKLOADS.md`): W-gpu-wide in fp32 and TF32, W-gpu-small, W-fmnist. With
/// `--emulate` they run on the CUDA emulator at toy sizes (a check that the rows work, not a
/// measurement).
#[cfg(feature = "cuda")]
fn gpu_rows(args: &[String], rows: &mut Vec<Row>) -> keras::Result<()> {
    use keras::backend::cuda::Cuda;
    if args.iter().any(|a| a == "--emulate") {
        gpu_rows_on(Cuda::emulated(), true, args, rows)
    } else {
        let dev = Cuda::new(0)?;
        let ran = gpu_rows_on(dev.clone(), false, args, rows);
        println!("cuBLASLt bias epilogues: {}", dev.device().cublaslt_status());
        ran
    }
}

#[cfg(feature = "cuda")]
fn gpu_rows_on<D: keras::backend::cuda::GpuDevice>(
    dev: keras::backend::cuda::Cuda<D>,
    emulate: bool,
    args: &[String],
    rows: &mut Vec<Row>,
) -> keras::Result<()> {
    let wanted = |id: &str| args.iter().filter(|a| a.starts_with("W-")).count() == 0 || args.iter().any(|a| a == id);
    println!("keras-rs {} on {}\n", env!("CARGO_PKG_VERSION"), dev.describe());
    let runs = if emulate { 1 } else { 3 };
    if wanted("W-gpu-wide") {
        let (batch, steps) = if emulate { (8, 2) } else { (4096, 20) };
        let n = batch * steps;
        let x = Array2::from_shape_fn((n, 784), |(i, j)| ((i * 31 + j * 7) % 255) as f32 / 255.0);
        let y = Array1::from_shape_fn(n, |i| (i % 10) as u8);
        let params = (784 * 4096 + 4096) + 2 * (4096 * 4096 + 4096) + (4096 * 10 + 10);
        for (tf32, label) in [(false, "fp32"), (true, "TF32")] {
            let device = dev.clone().with_tf32(tf32);
            let mut m = GpuWideNet::new(&device).compile(Sgd::default(), "sparse_categorical_crossentropy", Vec::<&str>::new())?;
            let t = timed(runs, || {
                let t0 = Instant::now();
                m.fit(&x, &y, FitArgs::default().epochs(1).batch_size(batch).shuffle(false).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            }) / steps as f64;
            let tflops = 6.0 * params as f64 * batch as f64 / t / 1e12;
            rows.push(Row {
                id: if tf32 { "W-gpu-wide-tf32" } else { "W-gpu-wide" },
                value: format!("{:.2} ms/step", t * 1e3),
                note: format!("{label}, batch {batch}, SGD; {tflops:.1} TFLOP/s"),
                raw: t * 1e3,
            });
        }
    }
    let fm = if wanted("W-gpu-small") || wanted("W-fmnist") { fmnist() } else { None };
    if let Some((xt, yt, _, _)) = &fm {
        let take = if emulate { 512 } else { xt.nrows() };
        let (xt, yt) = (xt.slice(s![..take, ..]), yt.slice(s![..take]));
        // W-gpu-small also runs with every step issued kernel by kernel (no graphs), beside.
        for (id, batch, graphs) in [("W-gpu-small", 128, true), ("W-gpu-small-issued", 128, false), ("W-fmnist", 32, true)] {
            if !wanted(id.trim_end_matches("-issued")) {
                continue;
            }
            let device = dev.clone().with_graphs(graphs);
            let replays = device.replays();
            let mut m = FmnistNet::new(&device).compile(Adam::default(), "sparse_categorical_crossentropy", ["accuracy"])?;
            let t = timed(runs, || {
                let t0 = Instant::now();
                m.fit(&xt, &yt, FitArgs::default().epochs(1).batch_size(batch).verbose(0)).expect("fit");
                t0.elapsed().as_secs_f64()
            });
            let steps = take.div_ceil(batch) as f64;
            let replayed = device.replays() - replays;
            let row = if id != "W-fmnist" {
                Row {
                    id,
                    value: format!("{:.0} us/step", t / steps * 1e6),
                    note: format!(
                        "batch {batch}, Adam, {take} samples, {replayed} of {} steps replayed as graphs",
                        steps as usize * (runs + 1)
                    ),
                    raw: t / steps * 1e6,
                }
            } else {
                Row { id, value: format!("{t:.3} s/epoch"), note: format!("batch {batch}, Adam, {take} samples, on the GPU"), raw: t }
            };
            rows.push(row);
        }
    }
    Ok(())
}

/// The GEMM products of W-fmnist, W-wide, W-inferB and W-cnn: (workload, product, m, k, n,
/// A transposed, B transposed). `dW` is `Xᵀ·dY`, `dX` is `dY·Wᵀ`; a first layer's `dX` is not
/// computed by training, so it is not listed.
const GEMM_SHAPES: &[(&str, &str, usize, usize, usize, bool, bool)] = &[
    ("W-fmnist", "dense 1 forward", 32, 784, 128, false, false),
    ("W-fmnist", "dense 1 dW", 784, 32, 128, true, false),
    ("W-fmnist", "dense 2 forward", 32, 128, 10, false, false),
    ("W-fmnist", "dense 2 dW", 128, 32, 10, true, false),
    ("W-fmnist", "dense 2 dX", 32, 10, 128, false, true),
    ("W-wide", "dense 1 forward", 256, 784, 1024, false, false),
    ("W-wide", "dense 1 dW", 784, 256, 1024, true, false),
    ("W-wide", "dense 2 forward", 256, 1024, 1024, false, false),
    ("W-wide", "dense 2 dW", 1024, 256, 1024, true, false),
    ("W-wide", "dense 2 dX", 256, 1024, 1024, false, true),
    ("W-wide", "dense 3 forward", 256, 1024, 10, false, false),
    ("W-wide", "dense 3 dW", 1024, 256, 10, true, false),
    ("W-wide", "dense 3 dX", 256, 10, 1024, false, true),
    ("W-inferB", "dense 1 forward", 1024, 784, 1024, false, false),
    ("W-inferB", "dense 2 forward", 1024, 1024, 1024, false, false),
    ("W-inferB", "dense 3 forward", 1024, 1024, 10, false, false),
    ("W-cnn", "conv forward (im2col)", 86528, 9, 32, false, false),
    ("W-cnn", "conv dW", 9, 86528, 32, true, false),
    ("W-cnn", "dense forward", 128, 5408, 10, false, false),
    ("W-cnn", "dense dW", 5408, 128, 10, true, false),
    ("W-cnn", "dense dX", 128, 10, 5408, false, true),
    // ResNet50 at batch 1 (issue 16's A-resnet50-b1): each convolution's im2col product, pixels
    // x (kh * kw * c) x filters.
    ("ResNet50 b1", "conv1 7x7/2", 12544, 147, 64, false, false),
    ("ResNet50 b1", "conv2 1x1 64->64", 3136, 64, 64, false, false),
    ("ResNet50 b1", "conv2 3x3 64", 3136, 576, 64, false, false),
    ("ResNet50 b1", "conv2 1x1 64->256", 3136, 64, 256, false, false),
    ("ResNet50 b1", "conv2 1x1 256->64", 3136, 256, 64, false, false),
    ("ResNet50 b1", "conv3 3x3 128", 784, 1152, 128, false, false),
    ("ResNet50 b1", "conv3 1x1 128->512", 784, 128, 512, false, false),
    ("ResNet50 b1", "conv3 1x1 512->128", 784, 512, 128, false, false),
    ("ResNet50 b1", "conv4 3x3 256", 196, 2304, 256, false, false),
    ("ResNet50 b1", "conv4 1x1 256->1024", 196, 256, 1024, false, false),
    ("ResNet50 b1", "conv4 1x1 1024->256", 196, 1024, 256, false, false),
    ("ResNet50 b1", "conv5 3x3 512", 49, 4608, 512, false, false),
    ("ResNet50 b1", "conv5 1x1 512->2048", 49, 512, 2048, false, false),
    ("ResNet50 b1", "conv5 1x1 2048->512", 49, 2048, 512, false, false),
    ("ceiling", "2048^3 (anchors' gemm_ceiling)", 2048, 2048, 2048, false, false),
    ("micro-kernel", "one 12 x 32 tile, in L1", 12, 256, 32, true, false),
];

/// This machine's float32 multiply-add peak in GFLOP/s on `threads` threads: every thread runs
/// independent chains of fused multiply-adds on the widest vectors the CPU has (enough chains to
/// cover the instruction's latency on both FMA ports), and the figure is the median of 7 runs.
fn fma_peak(threads: usize) -> f64 {
    const ITERS: usize = 20_000_000;
    let (flops_per_iter, run): (f64, fn(usize) -> f32) = fma_kernel();
    timed(7, || {
        let t0 = Instant::now();
        let sum: f32 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || run(std::hint::black_box(ITERS)))).collect();
            hs.into_iter().map(|h| h.join().expect("peak thread")).sum()
        });
        std::hint::black_box(sum);
        let secs = t0.elapsed().as_secs_f64();
        // Seconds per unit of work, so that the median picks the steadiest run.
        secs / (threads as f64 * ITERS as f64 * flops_per_iter)
    })
    .recip()
        / 1e9
}

/// The peak loop for this CPU: (flops per iteration, the loop).
fn fma_kernel() -> (f64, fn(usize) -> f32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: AVX-512F was detected.
            return (24.0 * 16.0 * 2.0, |n| unsafe { peak::avx512(n) });
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected.
            return (12.0 * 8.0 * 2.0, |n| unsafe { peak::avx2(n) });
        }
    }
    (8.0 * 2.0, |n| {
        let mut acc: [f32; 8] = std::array::from_fn(|i| 1.0 + i as f32 / 64.0);
        for _ in 0..n {
            for a in &mut acc {
                *a = a.mul_add(0.999, 0.001);
            }
        }
        acc.iter().sum()
    })
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use std::arch::{asm, x86_64::*};

    /// `n` iterations of 24 independent 16-wide multiply-adds (in assembly: written with
    /// intrinsics over an array, the compiler keeps the chains in memory).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn avx512(n: usize) -> f32 {
        let (a, b, start) = (_mm512_set1_ps(0.999), _mm512_set1_ps(0.001), _mm512_set1_ps(1.0));
        let out: __m512;
        // SAFETY: registers only; the loop runs n >= 1 times.
        unsafe {
            asm!(
            "vmovaps zmm0, zmm26",
            "vmovaps zmm1, zmm26",
            "vmovaps zmm2, zmm26",
            "vmovaps zmm3, zmm26",
            "vmovaps zmm4, zmm26",
            "vmovaps zmm5, zmm26",
            "vmovaps zmm6, zmm26",
            "vmovaps zmm7, zmm26",
            "vmovaps zmm8, zmm26",
            "vmovaps zmm9, zmm26",
            "vmovaps zmm10, zmm26",
            "vmovaps zmm11, zmm26",
            "vmovaps zmm12, zmm26",
            "vmovaps zmm13, zmm26",
            "vmovaps zmm14, zmm26",
            "vmovaps zmm15, zmm26",
            "vmovaps zmm16, zmm26",
            "vmovaps zmm17, zmm26",
            "vmovaps zmm18, zmm26",
            "vmovaps zmm19, zmm26",
            "vmovaps zmm20, zmm26",
            "vmovaps zmm21, zmm26",
            "vmovaps zmm22, zmm26",
            "vmovaps zmm23, zmm26",
            "2:",
            "vfmadd213ps zmm0, zmm24, zmm25",
            "vfmadd213ps zmm1, zmm24, zmm25",
            "vfmadd213ps zmm2, zmm24, zmm25",
            "vfmadd213ps zmm3, zmm24, zmm25",
            "vfmadd213ps zmm4, zmm24, zmm25",
            "vfmadd213ps zmm5, zmm24, zmm25",
            "vfmadd213ps zmm6, zmm24, zmm25",
            "vfmadd213ps zmm7, zmm24, zmm25",
            "vfmadd213ps zmm8, zmm24, zmm25",
            "vfmadd213ps zmm9, zmm24, zmm25",
            "vfmadd213ps zmm10, zmm24, zmm25",
            "vfmadd213ps zmm11, zmm24, zmm25",
            "vfmadd213ps zmm12, zmm24, zmm25",
            "vfmadd213ps zmm13, zmm24, zmm25",
            "vfmadd213ps zmm14, zmm24, zmm25",
            "vfmadd213ps zmm15, zmm24, zmm25",
            "vfmadd213ps zmm16, zmm24, zmm25",
            "vfmadd213ps zmm17, zmm24, zmm25",
            "vfmadd213ps zmm18, zmm24, zmm25",
            "vfmadd213ps zmm19, zmm24, zmm25",
            "vfmadd213ps zmm20, zmm24, zmm25",
            "vfmadd213ps zmm21, zmm24, zmm25",
            "vfmadd213ps zmm22, zmm24, zmm25",
            "vfmadd213ps zmm23, zmm24, zmm25",
            "dec {n}",
            "jnz 2b",
            "vaddps zmm27, zmm0, zmm23",
            n = inout(reg) n.max(1) => _,
            lateout("zmm27") out,
            in("zmm24") a,
            in("zmm25") b,
            in("zmm26") start,
            out("zmm0") _,
            out("zmm1") _,
            out("zmm2") _,
            out("zmm3") _,
            out("zmm4") _,
            out("zmm5") _,
            out("zmm6") _,
            out("zmm7") _,
            out("zmm8") _,
            out("zmm9") _,
            out("zmm10") _,
            out("zmm11") _,
            out("zmm12") _,
            out("zmm13") _,
            out("zmm14") _,
            out("zmm15") _,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("zmm20") _,
            out("zmm21") _,
            out("zmm22") _,
            out("zmm23") _,
            options(nostack),
            );
        }
        _mm512_reduce_add_ps(out)
    }

    /// `n` iterations of 12 independent 8-wide multiply-adds.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn avx2(n: usize) -> f32 {
        let (a, b, start) = (_mm256_set1_ps(0.999), _mm256_set1_ps(0.001), _mm256_set1_ps(1.0));
        let out: __m256;
        // SAFETY: registers only; the loop runs n >= 1 times.
        unsafe {
            asm!(
            "vmovaps ymm0, ymm14",
            "vmovaps ymm1, ymm14",
            "vmovaps ymm2, ymm14",
            "vmovaps ymm3, ymm14",
            "vmovaps ymm4, ymm14",
            "vmovaps ymm5, ymm14",
            "vmovaps ymm6, ymm14",
            "vmovaps ymm7, ymm14",
            "vmovaps ymm8, ymm14",
            "vmovaps ymm9, ymm14",
            "vmovaps ymm10, ymm14",
            "vmovaps ymm11, ymm14",
            "2:",
            "vfmadd213ps ymm0, ymm12, ymm13",
            "vfmadd213ps ymm1, ymm12, ymm13",
            "vfmadd213ps ymm2, ymm12, ymm13",
            "vfmadd213ps ymm3, ymm12, ymm13",
            "vfmadd213ps ymm4, ymm12, ymm13",
            "vfmadd213ps ymm5, ymm12, ymm13",
            "vfmadd213ps ymm6, ymm12, ymm13",
            "vfmadd213ps ymm7, ymm12, ymm13",
            "vfmadd213ps ymm8, ymm12, ymm13",
            "vfmadd213ps ymm9, ymm12, ymm13",
            "vfmadd213ps ymm10, ymm12, ymm13",
            "vfmadd213ps ymm11, ymm12, ymm13",
            "dec {n}",
            "jnz 2b",
            "vaddps ymm15, ymm0, ymm11",
            n = inout(reg) n.max(1) => _,
            lateout("ymm15") out,
            in("ymm12") a,
            in("ymm13") b,
            in("ymm14") start,
            out("ymm0") _,
            out("ymm1") _,
            out("ymm2") _,
            out("ymm3") _,
            out("ymm4") _,
            out("ymm5") _,
            out("ymm6") _,
            out("ymm7") _,
            out("ymm8") _,
            out("ymm9") _,
            out("ymm10") _,
            out("ymm11") _,
            options(nostack),
            );
        }
        let mut lanes = [0f32; 8];
        // SAFETY: lanes holds 8 floats.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), out) };
        lanes.iter().sum()
    }
}

/// GFLOP/s of PyTorch (MKL/oneDNN) and NumPy (OpenBLAS) on [`GEMM_SHAPES`], both on 2 threads,
/// from `scripts/bench_gemm.py` run by `$KERAS_BENCH_PYTHON` (a Python with torch, numpy and
/// threadpoolctl); `None` per library when it is not there.
fn python_gemm() -> Vec<(Option<f64>, Option<f64>)> {
    let none = vec![(None, None); GEMM_SHAPES.len()];
    let Ok(py) = std::env::var("KERAS_BENCH_PYTHON") else {
        eprintln!("(set KERAS_BENCH_PYTHON to a Python with torch, numpy and threadpoolctl for the PyTorch and NumPy columns)");
        return none;
    };
    let shapes: Vec<String> = GEMM_SHAPES.iter().map(|&(_, _, m, k, n, ta, tb)| format!("{m},{k},{n},{},{}", ta as u8, tb as u8)).collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench_gemm.py");
    let out = match std::process::Command::new(&py).arg(script).args(&shapes).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!("{script} failed: {}", String::from_utf8_lossy(&o.stderr));
            return none;
        }
        Err(e) => {
            eprintln!("cannot run {py}: {e}");
            return none;
        }
    };
    // One line per shape: "<torch GFLOP/s or -> <numpy GFLOP/s or ->".
    let rows: Vec<(Option<f64>, Option<f64>)> = out
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace().map(|v| v.parse::<f64>().ok());
            (f.next().flatten(), f.next().flatten())
        })
        .collect();
    if rows.len() == GEMM_SHAPES.len() { rows } else { none }
}

/// `bench --gemm`: the FMA peak on 1 and 2 threads, then every GEMM product of the CPU
/// workloads: our GFLOP/s and its fraction of the peak of the threads it runs on (products under
/// `PARALLEL_MIN_MACS` run on one), beside matrixmultiply, PyTorch and NumPy on the same shapes
/// (2 threads each).
fn gemm_table(only: &[String]) {
    use keras::backend::cpu::gemm::{MatMut, MatRef, PARALLEL_MIN_MACS, gemm};
    let (peak1, peak2) = (fma_peak(1), fma_peak(2));
    println!("keras-rs {} on {}\n", env!("CARGO_PKG_VERSION"), Cpu::default().describe());
    println!("FMA peak (float32, median of 7): {peak1:.0} GFLOP/s on 1 thread, {peak2:.0} GFLOP/s on 2 threads\n");
    let reference = if only.is_empty() { python_gemm() } else { vec![(None, None); GEMM_SHAPES.len()] };
    println!("| workload | product | m x k x n (op) | keras-rs GFLOP/s | of peak (its threads) | matrixmultiply | PyTorch | NumPy |");
    println!("|---|---|---|---|---|---|---|---|");
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    for (&(workload, what, m, k, n, ta, tb), &(torch, numpy)) in GEMM_SHAPES.iter().zip(&reference) {
        let shape = format!("{m}x{k}x{n}");
        if !only.is_empty() && !only.contains(&shape) {
            continue;
        }
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1 - 0.6).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.1 - 0.5).collect();
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((1e9 / flops) as usize).max(2);
        let ours = timed(7, || {
            let t0 = Instant::now();
            for _ in 0..reps {
                let am = if ta { MatRef::row_major(&a, k, m).t() } else { MatRef::row_major(&a, m, k) };
                let bm = if tb { MatRef::row_major(&b, n, k).t() } else { MatRef::row_major(&b, k, n) };
                gemm(am, bm, MatMut::row_major(&mut c, m, n), false);
            }
            t0.elapsed().as_secs_f64() / reps as f64
        });
        let theirs = timed(7, || {
            let (rsa, csa) = if ta { (1, m as isize) } else { (k as isize, 1) };
            let (rsb, csb) = if tb { (1, k as isize) } else { (n as isize, 1) };
            let t0 = Instant::now();
            for _ in 0..reps {
                // SAFETY: the strides describe a and b, and c is m x n.
                unsafe {
                    matrixmultiply::sgemm(m, k, n, 1.0, a.as_ptr(), rsa, csa, b.as_ptr(), rsb, csb, 0.0, c.as_mut_ptr(), n as isize, 1)
                };
            }
            t0.elapsed().as_secs_f64() / reps as f64
        });
        let op = format!("{}{}", if ta { "T" } else { "N" }, if tb { "T" } else { "N" });
        let g = flops / ours / 1e9;
        // A small product runs on one thread: its fraction is of the one-thread peak.
        let peak = if m * n * k < PARALLEL_MIN_MACS { peak1 } else { peak2 };
        println!(
            "| {workload} | {what} | {m} x {k} x {n} ({op}) | {g:.0} | {:.0}% | {:.0} | {} | {} |",
            100.0 * g / peak,
            flops / theirs / 1e9,
            cell(torch),
            cell(numpy)
        );
    }
}

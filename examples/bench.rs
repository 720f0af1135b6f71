//! The standard workloads (`WORKLOADS.md` of the anchors): medians after a warm-up, as a
//! Markdown table.
//!
//! ```text
//! cargo run --release --example bench                 # every CPU row
//! cargo run --release --example bench -- W-fmnist     # some rows
//! cargo run --release --example bench -- --accuracy   # also W-fmnist test accuracy after 5 epochs
//! cargo run --release --example bench -- --gemm       # our GEMM beside matrixmultiply's
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
        gemm_table();
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

/// Our GEMM beside matrixmultiply on the W-wide and W-fmnist shapes (2 threads each).
fn gemm_table() {
    use keras::backend::cpu::gemm::{MatMut, MatRef, gemm};
    let cases = [
        (256, 784, 1024, false, false),
        (256, 1024, 1024, false, false),
        (256, 1024, 1024, false, true),
        (1024, 256, 1024, true, false),
        (784, 256, 1024, true, false),
        (32, 784, 128, false, false),
        (784, 32, 128, true, false),
    ];
    println!("| m x k x n (op) | keras-rs GFLOP/s | matrixmultiply GFLOP/s |");
    println!("|---|---|---|");
    for (m, k, n, ta, tb) in cases {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 11) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let reps = ((2e9 / (2.0 * (m * n * k) as f64)) as usize).max(3);
        let flops = 2.0 * (m * n * k) as f64;
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
        println!("| {m} x {k} x {n} ({op}) | {:.0} | {:.0} |", flops / ours / 1e9, flops / theirs / 1e9);
    }
}

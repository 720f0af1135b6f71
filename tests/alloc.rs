//! After the first step of a given batch size, `train_on_batch` (weighted or not) allocates nothing: the parameter
//! arena, the workspace, the optimizer state (of every optimizer, with clipping and schedules)
//! and the GEMM packing buffers are all reused.
//! `predict_one` allocates nothing after its first call on a thread (recurrent layers and Embedding included). (A counting global allocator; one test in this binary,
//! so that nothing else allocates meanwhile.)

use keras::ndarray::{Array1, Array2};
use keras::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

sequential! {
    struct Net = Input(784) => Dense(256, relu) => Dropout(0.2) => Dense(128, gelu) => Dense(10, softmax);
}

sequential! {
    struct ConvNet = Input((28, 28, 1)) => Conv2D(8, (3, 3), relu) => MaxPooling2D(2) => Conv2D(8, 3, tanh, padding = "same")
        => AveragePooling2D(2) => Flatten() => Dense(10, softmax);
}

sequential! {
    struct ConvFamily = Input((28, 28, 2)) => DepthwiseConv2D(3, relu, depth_multiplier = 2) => SeparableConv2D(8, 3, gelu, strides = 2)
        => Conv2DTranspose(4, 3, tanh, strides = 2, padding = "same") => Reshape((576, 4)) => Conv1D(4, 3, padding = "causal")
        => MaxPooling1D(4) => AveragePooling1D(2) => GlobalAveragePooling1D() => Dense(10, softmax);
}

sequential! {
    struct ReshapeNet = Input((6, 6, 2)) => ZeroPadding2D(1) => Cropping2D(((1, 0), (0, 1))) => UpSampling2D(2, interpolation = "bilinear")
        => SpatialDropout2D(0.2) => GaussianNoise(0.1) => GaussianDropout(0.1) => Permute((2, 1, 3)) => TimeDistributed(Dense(4, relu))
        => Flatten() => RepeatVector(2) => TimeDistributed(Dense(3)) => Flatten() => Dense(10, softmax);
}

sequential! {
    struct Words = Input(20) => Embedding(1000, 16) => LSTM(32, return_sequences = true) => GRU(16) => Dense(8, relu) => Dense(1, sigmoid);
}

sequential! { struct Rnn = Input((12, 5)) => SimpleRNN(8, go_backwards = true, return_sequences = true) => Bidirectional(GRU(4, reset_after = false), "mul") => Dense(1); }

#[test]
fn steady_state_steps_and_predict_one_allocate_nothing() {
    train_on_batch_allocates_nothing();
    conv_train_on_batch_allocates_nothing();
    conv_family_train_on_batch_allocates_nothing();
    reshaping_train_on_batch_allocates_nothing();
    recurrent_train_on_batch_allocates_nothing();
    predict_one_allocates_nothing();
}

fn train_on_batch_allocates_nothing() {
    keras::utils::set_random_seed(1);
    for (batch, optimizer) in [(32usize, "adam"), (256, "sgd")] {
        steady_steps_allocate_nothing(batch, optimizer, optimizer);
    }
    for name in ["rmsprop", "adagrad", "adadelta", "adamw", "adamax", "nadam", "lion", "ftrl"] {
        steady_steps_allocate_nothing(32, name, name);
    }
    steady_steps_allocate_nothing(32, Adam::default().clipnorm(0.01), "adam with clipnorm");
    steady_steps_allocate_nothing(
        32,
        Sgd::new(ExponentialDecay::new(0.1, 10, 0.9)).global_clipnorm(0.01),
        "sgd with a schedule and global_clipnorm",
    );
    steady_steps_allocate_nothing(
        32,
        RmsProp::default().momentum(0.5).centered(true).clipvalue(0.01).weight_decay(0.1),
        "centered rmsprop",
    );
}

fn steady_steps_allocate_nothing(batch: usize, optimizer: impl keras::optimizers::IntoOptimizer, what: &str) {
    let x = Array2::from_shape_fn((batch, 784), |(i, j)| ((i * 31 + j * 7) % 17) as f32 / 17.0);
    let y = Array1::from_shape_fn(batch, |i| (i % 10) as f32);
    let mut model = Net::new(&Cpu::default()).compile(optimizer, "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    // Warm-up: the workspace, optimizer moments and thread-local packing buffers are sized.
    for _ in 0..3 {
        model.train_on_batch(&x, &y).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(before > 0, "the counter sees the warm-up allocations");
    let mut loss = 0.0;
    for _ in 0..50 {
        loss = model.train_on_batch(&x, &y).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 50 steady steps of batch {batch} ({what})");
    // With sample weights (one f32 per sample, read in place).
    let w = Array1::from_shape_fn(batch, |i| (i % 3) as f32 * 0.5);
    model.train_on_batch_weighted(&x, &y, &w).unwrap();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..20 {
        loss = model.train_on_batch_weighted(&x, &y, &w).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 20 weighted steps of batch {batch} ({what})");
}

fn conv_train_on_batch_allocates_nothing() {
    // Batch 64 spreads the im2col and pooling kernels over the thread pool.
    let batch = 64;
    let x = keras::ndarray::Array4::from_shape_fn((batch, 28, 28, 1), |(i, h, w, _)| ((i * 31 + h * 7 + w) % 17) as f32 / 17.0);
    let y = Array1::from_shape_fn(batch, |i| (i % 10) as f32);
    let mut model = ConvNet::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    for _ in 0..3 {
        model.train_on_batch(&x, &y).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut loss = 0.0;
    for _ in 0..10 {
        loss = model.train_on_batch(&x, &y).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 10 steady conv steps");
}

fn conv_family_train_on_batch_allocates_nothing() {
    let batch = 32;
    let x = keras::ndarray::Array4::from_shape_fn((batch, 28, 28, 2), |(i, h, w, c)| ((i * 31 + h * 7 + w + c) % 17) as f32 / 17.0);
    let y = Array1::from_shape_fn(batch, |i| (i % 10) as f32);
    let mut model = ConvFamily::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    for _ in 0..3 {
        model.train_on_batch(&x, &y).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut loss = 0.0;
    for _ in 0..10 {
        loss = model.train_on_batch(&x, &y).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 10 steady steps of the convolution family");
}

fn reshaping_train_on_batch_allocates_nothing() {
    // Batch 64 spreads the padding, upsampling and noise kernels over the thread pool.
    let batch = 64;
    let x = keras::ndarray::Array4::from_shape_fn((batch, 6, 6, 2), |(i, h, w, c)| ((i * 31 + h * 7 + w * 3 + c) % 17) as f32 / 17.0);
    let y = Array1::from_shape_fn(batch, |i| (i % 10) as f32);
    let mut model = ReshapeNet::new(&Cpu::default()).compile("adam", "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
    for _ in 0..3 {
        model.train_on_batch(&x, &y).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut loss = 0.0;
    for _ in 0..10 {
        loss = model.train_on_batch(&x, &y).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 10 steady steps of the reshaping layers");
}

fn recurrent_train_on_batch_allocates_nothing() {
    // Ids as f32 are read in place (integer arrays are converted to f32 once per call).
    let batch = 32;
    let x = Array2::from_shape_fn((batch, 20), |(i, j)| ((i * 31 + j * 7) % 1000) as f32);
    let y = Array1::from_shape_fn(batch, |i| (i % 2) as f32);
    let mut model = Words::new(&Cpu::default()).compile("adam", "binary_crossentropy", ["accuracy"]).unwrap();
    let xs = keras::ndarray::Array3::from_shape_fn((batch, 12, 5), |(i, t, f)| ((i + t * 3 + f) % 7) as f32 / 7.0);
    let mut rnn = Rnn::new(&Cpu::default()).compile("rmsprop", "mse", ["mae"]).unwrap();
    for _ in 0..3 {
        model.train_on_batch(&x, &y).unwrap();
        rnn.train_on_batch(&xs, &y).unwrap();
    }
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut loss = 0.0;
    for _ in 0..10 {
        loss = model.train_on_batch(&x, &y).unwrap().loss() + rnn.train_on_batch(&xs, &y).unwrap().loss();
    }
    let allocations = ALLOCATIONS.load(Ordering::SeqCst) - before;
    assert!(loss.is_finite());
    assert_eq!(allocations, 0, "{allocations} allocations in 10 steady recurrent steps");
    let ids: [i32; 20] = std::array::from_fn(|j| (j * 37 % 1000) as i32);
    let first = model.model().predict_one(&ids).unwrap();
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..10 {
        assert_eq!(model.model().predict_one(&ids).unwrap(), first);
    }
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst) - before, 0, "predict_one over ids allocated");
}

fn predict_one_allocates_nothing() {
    let model = Net::new(&Cpu::default());
    let x: [f32; 784] = std::array::from_fn(|i| (i % 7) as f32 / 7.0);
    let first = model.predict_one(&x);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let mut same = true;
    for _ in 0..100 {
        same &= model.predict_one(&x) == first;
    }
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst) - before, 0, "predict_one allocated");
    assert!(same, "predict_one is deterministic");
}

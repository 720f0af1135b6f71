//! Backward passes checked against central finite differences of the training loss, for every
//! activation, every loss and loss option, Dropout (same mask), the Activation layer, Dense on 3-D input,
//! the convolution and pooling layers, 1-D and 2-D, the reshaping, noise and wrapper layers, Embedding,
//! the recurrent layers with their options and Bidirectional, the preprocessing and the activation
//! layers (a Dense in front of each checks its input gradient; PReLU's `alpha` with the weights).

mod common;

use keras::losses::IntoLoss;
use keras::ndarray::{ArrayD, IxDyn};
use keras::prelude::*;
use keras::utils::Rng;

fn random(shape: &[usize], rng: &mut Rng, scale: f64) -> ArrayD<f32> {
    let n: usize = shape.iter().product();
    ArrayD::from_shape_vec(IxDyn(shape), (0..n).map(|_| (rng.normal() * scale) as f32).collect()).unwrap()
}

/// Compares `gradients()` with central differences of the same loss, tensor by tensor
/// (relative error at the tensor's scale).
fn check<M: Model<Backend = Cpu>>(what: &str, loss: impl IntoLoss, x: &ArrayD<f32>, y: &ArrayD<f32>) {
    check_step::<M, _>(what, loss, x, y, 1e-3);
}

/// [`check`] with difference step `h`: the recurrent layers' small gradients (a long chain of
/// products) need a larger step than 1e-3 to rise above the f32 loss's rounding.
fn check_step<M: Model<Backend = Cpu>, X: keras::Inputs + ?Sized>(what: &str, loss: impl IntoLoss, x: &X, y: &ArrayD<f32>, h: f32) {
    keras::utils::set_random_seed(11);
    check_model(what, M::create(&Cpu::default()).unwrap(), loss, x, y, h);
}

/// [`check_step`] of a model as it is: the gradient of every trainable weight against central
/// differences; a non-trainable weight's (a Normalization's statistics) must be zero.
fn check_model<M: Model<Backend = Cpu>, X: keras::Inputs + ?Sized>(
    what: &str,
    model: M,
    loss: impl IntoLoss,
    x: &X,
    y: &ArrayD<f32>,
    h: f32,
) {
    let no_metrics: [Metric; 0] = [];
    let mut m = model.compile(Sgd::default(), loss, no_metrics).unwrap();
    let (_, analytic) = m.gradients(x, y).unwrap();
    let weights = m.get_weights().unwrap();
    for (t, w) in weights.iter().enumerate() {
        if M::WEIGHTS[t].arena == keras::model::Arena::NonTrainable {
            assert!(analytic[t].iter().all(|&g| g == 0.0), "{what}: weight {t} is not trained, yet has a gradient");
            continue;
        }
        let mut numeric = vec![0.0f32; w.len()];
        for (i, slot) in numeric.iter_mut().enumerate() {
            let mut probe = |delta: f32| {
                let mut ws = weights.clone();
                ws[t].as_slice_mut().unwrap()[i] += delta;
                m.set_weights(&ws).unwrap();
                m.gradients(x, y).unwrap().0 as f64
            };
            *slot = ((probe(h) - probe(-h)) / (2.0 * h as f64)) as f32;
        }
        m.set_weights(&weights).unwrap();
        let err = common::rel_err(analytic[t].as_slice().unwrap(), &numeric);
        assert!(
            err < 5e-3,
            "{what}: weight {t}: relative error {err:.2e}\n analytic {:?}\n numeric  {numeric:?}",
            analytic[t].as_slice().unwrap()
        );
    }
}

macro_rules! activation_gradients {
    ($($name:ident: $model:ident = $act:ident;)*) => {$(
        sequential! { struct $model = Dense(5, in = 3, $act) => Dense(2, $act); }
        #[test]
        fn $name() {
            let mut rng = Rng::new(3);
            let x = random(&[6, 3], &mut rng, 1.0);
            let y = random(&[6, 2], &mut rng, 0.5);
            check::<$model>(stringify!($act), "mse", &x, &y);
        }
    )*};
}

activation_gradients! {
    grad_linear: GLinear = linear;
    grad_relu: GRelu = relu;
    grad_sigmoid: GSigmoid = sigmoid;
    grad_tanh: GTanh = tanh;
    grad_softmax: GSoftmax = softmax;
    grad_elu: GElu = elu;
    grad_selu: GSelu = selu;
    grad_softplus: GSoftplus = softplus;
    grad_softsign: GSoftsign = softsign;
    grad_swish: GSwish = swish;
    grad_gelu: GGelu = gelu;
    grad_leaky_relu: GLeakyRelu = leaky_relu;
    grad_relu6: GRelu6 = relu6;
    grad_hard_sigmoid: GHardSigmoid = hard_sigmoid;
    grad_exponential: GExponential = exponential;
    grad_mish: GMish = mish;
}

sequential! { struct Regression = Dense(4, in = 3, tanh) => Dense(2); }
sequential! { struct Binary = Dense(4, in = 3, tanh) => Dense(2, sigmoid); }
sequential! { struct Classes = Dense(4, in = 3, tanh) => Dense(3, softmax); }

#[test]
fn grad_losses() {
    let mut rng = Rng::new(5);
    let x = random(&[7, 3], &mut rng, 1.0);
    check::<Regression>("mean_squared_error", "mean_squared_error", &x, &random(&[7, 2], &mut rng, 1.0));
    let bits = ArrayD::from_shape_vec(IxDyn(&[7, 2]), (0..14).map(|i| (i % 3 == 0) as u8 as f32).collect()).unwrap();
    check::<Binary>("binary_crossentropy", "binary_crossentropy", &x, &bits);
    let labels = ArrayD::from_shape_vec(IxDyn(&[7]), vec![0.0f32, 2.0, 1.0, 1.0, 0.0, 2.0, 2.0]).unwrap();
    check::<Classes>("sparse_categorical_crossentropy", "sparse_categorical_crossentropy", &x, &labels);
    let onehot = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| (labels[[i[0]]] as usize == i[1]) as u8 as f32);
    check::<Classes>("categorical_crossentropy", "categorical_crossentropy", &x, &onehot);
}

sequential! { struct Positive = Dense(4, in = 3, tanh) => Dense(2, softplus); }
sequential! { struct Logits2 = Dense(4, in = 3, tanh) => Dense(2); }
sequential! { struct Logits3 = Dense(4, in = 3, tanh) => Dense(3); }

#[test]
fn grad_regression_losses() {
    let mut rng = Rng::new(6);
    let x = random(&[7, 3], &mut rng, 1.0);
    let y = random(&[7, 2], &mut rng, 1.0);
    for loss in ["mean_absolute_error", "mean_absolute_percentage_error", "huber", "log_cosh", "cosine_similarity"] {
        check::<Regression>(loss, loss, &x, &y);
    }
    check::<Regression>("huber delta 0.3", Loss::huber(0.3), &x, &y);
    let counts = y.mapv(|v| v.abs());
    for loss in ["mean_squared_logarithmic_error", "poisson"] {
        check::<Positive>(loss, loss, &x, &counts);
    }
}

/// A user's loss (a softmax crossentropy with a margin, written over `Real`): the model's
/// gradients by dual numbers against central differences of the loss itself.
struct MarginCrossentropy;

impl keras::losses::CustomLoss for MarginCrossentropy {
    fn call<T: keras::autodiff::Real>(&self, y_true: &[T], y_pred: &[T]) -> T {
        // Logits with the true class lowered by a margin, then softmax crossentropy.
        let z: Vec<T> = y_true.iter().zip(y_pred).map(|(&t, &p)| p - t * 0.5).collect();
        let max = z.iter().copied().fold(z[0], |a, b| a.max(b));
        let log_sum = z.iter().map(|&v| (v - max).exp()).sum::<T>().ln() + max;
        y_true.iter().zip(&z).map(|(&t, &v)| t * (log_sum - v)).sum()
    }
}

#[test]
fn grad_custom_loss() {
    let mut rng = Rng::new(9);
    let x = random(&[7, 3], &mut rng, 1.0);
    let labels = [0usize, 2, 1, 1, 0, 2, 2];
    let onehot = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| (labels[i[0]] == i[1]) as u8 as f32);
    // A step above the f32 loss's rounding (the first layer's bias gradients are ~0.01).
    check_step::<Logits3, _>("custom margin crossentropy", MarginCrossentropy, &x, &onehot, 1e-2);
}

#[test]
fn grad_classification_losses() {
    let mut rng = Rng::new(8);
    let x = random(&[7, 3], &mut rng, 1.0);
    let bits = ArrayD::from_shape_vec(IxDyn(&[7, 2]), (0..14).map(|i| (i % 3 == 0) as u8 as f32).collect()).unwrap();
    let signed = bits.mapv(|b| 2.0 * b - 1.0);
    check::<Binary>("binary_focal_crossentropy", "binary_focal_crossentropy", &x, &bits);
    check::<Binary>("binary_crossentropy label_smoothing", Loss::BinaryCrossentropy.label_smoothing(0.2), &x, &bits);
    check::<Logits2>("binary_crossentropy from_logits", Loss::BinaryCrossentropy.from_logits(true).label_smoothing(0.1), &x, &bits);
    let focal = Loss::BinaryFocalCrossentropy.from_logits(true).apply_class_balancing(true).alpha(0.4).gamma(1.5).label_smoothing(0.1);
    check::<Logits2>("binary_focal_crossentropy options", focal, &x, &bits);
    for loss in ["hinge", "squared_hinge"] {
        check::<Logits2>(loss, loss, &x, &bits);
        check::<Logits2>(loss, loss, &x, &signed);
    }
    let labels = ArrayD::from_shape_vec(IxDyn(&[7]), vec![0.0f32, 2.0, 1.0, 1.0, 0.0, 2.0, 2.0]).unwrap();
    let onehot = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| (labels[[i[0]]] as usize == i[1]) as u8 as f32);
    check::<Logits3>("categorical_hinge", "categorical_hinge", &x, &onehot);
    check::<Logits3>("sparse_categorical_crossentropy from_logits", Loss::SparseCategoricalCrossentropy.from_logits(true), &x, &labels);
    check::<Logits3>(
        "categorical_crossentropy from_logits",
        Loss::CategoricalCrossentropy.from_logits(true).label_smoothing(0.1),
        &x,
        &onehot,
    );
    check::<Classes>("categorical_crossentropy label_smoothing", Loss::CategoricalCrossentropy.label_smoothing(0.1), &x, &onehot);
    let soft = ArrayD::from_shape_fn(IxDyn(&[7, 3]), |i| [0.2f32, 0.5, 0.3][(i[0] + i[1]) % 3]);
    check::<Classes>("kl_divergence", "kl_divergence", &x, &soft);
}

sequential! { struct WithDropout = Dense(6, in = 4, tanh) => Dropout(0.5) => Dense(2); }
sequential! { struct WithActivation = Dense(4, in = 3) => Activation(gelu) => Dense(3) => Activation(softmax); }
sequential! { struct Sequence = Input((3, 4)) => Dense(5, tanh) => Dense(2); }
// The Dense layers before batch normalization have no bias: normalization cancels its gradient.
sequential! { struct WithBatchNorm = Dense(5, in = 3, use_bias = false) => BatchNormalization(momentum = 0.9) => Activation(tanh) => Dense(2); }
sequential! { struct WithLayerNorm = Input((2, 3)) => Dense(5) => LayerNormalization() => Activation(tanh) => Dense(2); }
sequential! { struct LayerNormBare = Dense(4, in = 3) => LayerNormalization(center = false, scale = false) => Dense(2); }
sequential! { struct BatchNormBare = Input((3, 4)) => Dense(5, use_bias = false) => BatchNormalization(center = false, scale = false) => Dense(2); }

#[test]
fn grad_layers() {
    let mut rng = Rng::new(9);
    check::<WithDropout>("dropout", "mse", &random(&[8, 4], &mut rng, 1.0), &random(&[8, 2], &mut rng, 1.0));
    let labels = ArrayD::from_shape_vec(IxDyn(&[5]), vec![0.0f32, 2.0, 1.0, 1.0, 0.0]).unwrap();
    check::<WithActivation>("activation layers", "sparse_categorical_crossentropy", &random(&[5, 3], &mut rng, 1.0), &labels);
    check::<Sequence>("dense on (None, 3, 4)", "mse", &random(&[4, 3, 4], &mut rng, 1.0), &random(&[4, 3, 2], &mut rng, 1.0));
    check::<WithBatchNorm>("batch normalization", "mse", &random(&[6, 3], &mut rng, 1.0), &random(&[6, 2], &mut rng, 1.0));
    check::<WithLayerNorm>("layer normalization", "mse", &random(&[3, 2, 3], &mut rng, 1.0), &random(&[3, 2, 2], &mut rng, 1.0));
    check::<LayerNormBare>(
        "layer normalization without gamma and beta",
        "mse",
        &random(&[4, 3], &mut rng, 1.0),
        &random(&[4, 2], &mut rng, 1.0),
    );
    check::<BatchNormBare>(
        "batch normalization over positions",
        "mse",
        &random(&[3, 3, 4], &mut rng, 1.0),
        &random(&[3, 3, 2], &mut rng, 1.0),
    );
}

/// The weighted batch loss `sum(w_i * loss_i) / N` through the CPU kernel: its gradient with
/// respect to the predictions against central differences, for a regression, a classification
/// and a sparse loss, and for an output with several loss rows per sample.
#[test]
fn grad_sample_weights() {
    use keras::backend::LossBatch;
    let mut rng = Rng::new(12);
    let weights = [0.5f32, 0.0, 2.0, 1.25];
    let cases: [(keras::LossConfig, usize, usize, Vec<f32>); 4] = [
        (Loss::huber(0.5), 4, 3, random(&[12], &mut rng, 1.0).into_raw_vec_and_offset().0),
        (Loss::BinaryFocalCrossentropy.from_logits(true).apply_class_balancing(true), 4, 3, (0..12).map(|i| (i % 2) as f32).collect()),
        (Loss::SparseCategoricalCrossentropy.from_logits(true), 4, 3, vec![0.0, 2.0, 1.0, 1.0]),
        // Two loss rows per sample (a (None, 2, 3) output): both take the sample's weight.
        (Loss::MeanSquaredError.config(), 8, 3, random(&[24], &mut rng, 1.0).into_raw_vec_and_offset().0),
    ];
    let cpu = Cpu::default();
    for (config, rows, cols, target) in cases {
        let pred = random(&[rows * cols], &mut rng, 1.0).into_raw_vec_and_offset().0;
        let batch_loss = |p: &[f32], g: Option<&mut [f32]>| {
            let mut stats = [0.0f32; 2];
            cpu.loss(&LossBatch { loss: config, rows, cols }, p, &target, Some(&weights), g, &mut stats);
            (stats[0] / stats[1]) as f64
        };
        let mut analytic = vec![0.0f32; rows * cols];
        batch_loss(&pred, Some(&mut analytic));
        let h = 1e-3f32;
        let numeric: Vec<f32> = (0..pred.len())
            .map(|i| {
                let (mut up, mut down) = (pred.clone(), pred.clone());
                up[i] += h;
                down[i] -= h;
                ((batch_loss(&up, None) - batch_loss(&down, None)) / (2.0 * h as f64)) as f32
            })
            .collect();
        let err = common::rel_err(&analytic, &numeric);
        assert!(err < 5e-3, "{config:?}: relative error {err:.2e}\n analytic {analytic:?}\n numeric  {numeric:?}");
        let per_sample = rows / weights.len();
        assert!(analytic[per_sample * cols..2 * per_sample * cols].iter().all(|&g| g == 0.0), "a zero weight gives a zero gradient");
    }
}

sequential! { struct ConvValid = Input((6, 5, 2)) => Dense(3, tanh) => Conv2D(4, (3, 2), sigmoid) => Flatten() => Dense(2); }
sequential! { struct ConvSame = Input((7, 6, 2)) => Dense(3, tanh) => Conv2D(2, 3, gelu, strides = (2, 1), padding = "same", use_bias = false) => Flatten() => Dense(2); }
sequential! { struct ConvDilated = Input((7, 7, 1)) => Dense(2, tanh) => Conv2D(3, 3, tanh, dilation_rate = 2, padding = "same") => Flatten() => Dense(2); }
sequential! { struct MaxPool = Input((6, 6, 2)) => Dense(3, tanh) => MaxPooling2D(3, 2, "same") => Flatten() => Dense(2); }
sequential! { struct AvgPool = Input((7, 7, 2)) => Dense(3, tanh) => AveragePooling2D((3, 2), padding = "same") => Flatten() => Dense(2); }
sequential! { struct GlobalMax = Input((4, 5, 2)) => Dense(3, tanh) => GlobalMaxPooling2D() => Dense(2); }

sequential! { struct Conv1Valid = Input((7, 2)) => Dense(3, tanh) => Conv1D(4, 3, sigmoid) => Flatten() => Dense(2); }
sequential! { struct Conv1Same = Input((7, 2)) => Dense(3, tanh) => Conv1D(2, 3, gelu, strides = 2, padding = "same", use_bias = false) => Flatten() => Dense(2); }
sequential! { struct Conv1Causal = Input((7, 2)) => Dense(3, tanh) => Conv1D(3, 2, tanh, padding = "causal", dilation_rate = 3) => Flatten() => Dense(2); }
sequential! { struct MaxPool1 = Input((7, 2)) => Dense(3, tanh) => MaxPooling1D(3, 2, "same") => Flatten() => Dense(2); }
sequential! { struct AvgPool1 = Input((7, 2)) => Dense(3, tanh) => AveragePooling1D(2, padding = "same") => Flatten() => Dense(2); }
sequential! { struct GlobalAvg1 = Input((5, 2)) => Dense(3, tanh) => GlobalAveragePooling1D() => Dense(2); }
sequential! { struct GlobalMax1 = Input((5, 2)) => Dense(3, tanh) => GlobalMaxPooling1D() => Dense(2); }

#[test]
fn one_dimensional_convolution_and_pooling_gradients() {
    let mut rng = Rng::new(10);
    let x = random(&[3, 7, 2], &mut rng, 1.0);
    let y = random(&[3, 2], &mut rng, 1.0);
    check::<Conv1Valid>("conv1d valid", "mse", &x, &y);
    check::<Conv1Same>("conv1d same strided", "mse", &x, &y);
    check::<Conv1Causal>("conv1d causal dilated", "mse", &x, &y);
    check::<MaxPool1>("max pooling 1d", "mse", &x, &y);
    check::<AvgPool1>("average pooling 1d", "mse", &x, &y);
    let x = random(&[3, 5, 2], &mut rng, 1.0);
    check::<GlobalAvg1>("global average pooling 1d", "mse", &x, &y);
    check::<GlobalMax1>("global max pooling 1d", "mse", &x, &y);
}

sequential! { struct Depthwise = Input((6, 5, 2)) => Dense(3, tanh) => DepthwiseConv2D((3, 2), sigmoid) => Flatten() => Dense(2); }
sequential! { struct DepthwiseMultiplier = Input((7, 6, 2)) => Dense(2, tanh) => DepthwiseConv2D(3, gelu, strides = 2, padding = "same", depth_multiplier = 3, use_bias = false) => Flatten() => Dense(2); }
sequential! { struct DepthwiseDilated = Input((7, 7, 1)) => Dense(2, tanh) => DepthwiseConv2D(2, tanh, strides = 2, dilation_rate = 2, depth_multiplier = 2) => Flatten() => Dense(2); }
sequential! { struct Separable = Input((6, 5, 2)) => Dense(3, tanh) => SeparableConv2D(2, (3, 2), sigmoid) => Flatten() => Dense(2); }
sequential! { struct SeparableMultiplier = Input((7, 6, 2)) => Dense(2, tanh) => SeparableConv2D(3, 3, gelu, strides = 2, padding = "same", depth_multiplier = 2, use_bias = false) => Flatten() => Dense(2); }
sequential! { struct Transposed = Input((3, 4, 2)) => Dense(3, tanh) => Conv2DTranspose(2, (3, 2), sigmoid) => Flatten() => Dense(2); }
sequential! { struct TransposedSame = Input((3, 3, 2)) => Dense(3, tanh) => Conv2DTranspose(2, 3, gelu, strides = (2, 3), padding = "same", use_bias = false) => Flatten() => Dense(2); }
sequential! { struct TransposedDilated = Input((3, 4, 1)) => Dense(2, tanh) => Conv2DTranspose(3, 2, tanh, strides = 3, padding = "valid") => Conv2DTranspose(1, 3, dilation_rate = 2, padding = "same") => Flatten() => Dense(2); }

#[test]
fn depthwise_separable_and_transposed_convolution_gradients() {
    let mut rng = Rng::new(13);
    let y = random(&[3, 2], &mut rng, 1.0);
    let x = random(&[3, 6, 5, 2], &mut rng, 1.0);
    check::<Depthwise>("depthwise", "mse", &x, &y);
    check::<Separable>("separable", "mse", &x, &y);
    let x = random(&[3, 7, 6, 2], &mut rng, 1.0);
    check::<DepthwiseMultiplier>("depthwise same strided multiplier", "mse", &x, &y);
    check::<SeparableMultiplier>("separable same strided multiplier", "mse", &x, &y);
    check::<DepthwiseDilated>("depthwise strided dilated", "mse", &random(&[3, 7, 7, 1], &mut rng, 1.0), &y);
    check::<Transposed>("transposed valid", "mse", &random(&[3, 3, 4, 2], &mut rng, 1.0), &y);
    check::<TransposedSame>("transposed same strided", "mse", &random(&[3, 3, 3, 2], &mut rng, 1.0), &y);
    check::<TransposedDilated>("transposed stride over kernel, then dilated", "mse", &random(&[3, 3, 4, 1], &mut rng, 1.0), &y);
}

#[test]
fn convolution_and_pooling_gradients() {
    let mut rng = Rng::new(9);
    let mut run = |what: &str, x: &[usize], check_model: &dyn Fn(&ArrayD<f32>, &ArrayD<f32>)| {
        let xs = random(x, &mut rng, 1.0);
        let ys = random(&[x[0], 2], &mut rng, 1.0);
        eprintln!("{what}");
        check_model(&xs, &ys);
    };
    run("conv2d valid", &[3, 6, 5, 2], &|x, y| check::<ConvValid>("conv2d valid", "mse", x, y));
    run("conv2d same strided", &[3, 7, 6, 2], &|x, y| check::<ConvSame>("conv2d same strided", "mse", x, y));
    run("conv2d dilated", &[3, 7, 7, 1], &|x, y| check::<ConvDilated>("conv2d dilated", "mse", x, y));
    run("max pooling", &[3, 6, 6, 2], &|x, y| check::<MaxPool>("max pooling", "mse", x, y));
    run("average pooling", &[3, 7, 7, 2], &|x, y| check::<AvgPool>("average pooling", "mse", x, y));
    run("global max pooling", &[3, 4, 5, 2], &|x, y| check::<GlobalMax>("global max pooling", "mse", x, y));
}

sequential! { struct GradPermute = Input((3, 4, 2)) => Dense(3, tanh) => Permute((3, 1, 2)) => Flatten() => Dense(2); }
sequential! { struct GradRepeat = Dense(3, in = 4, tanh) => RepeatVector(3) => Dense(2, tanh) => Flatten() => Dense(2); }
sequential! { struct GradUpNearest = Input((3, 2, 2)) => Dense(2, tanh) => UpSampling2D((2, 3)) => Flatten() => Dense(2); }
sequential! {
    struct GradUpBilinear = Input((3, 4, 2)) => Dense(2, tanh) => UpSampling2D((3, 2), interpolation = "bilinear") => Flatten() => Dense(2);
}
sequential! {
    struct GradPad = Input((3, 3, 2)) => Dense(2, tanh) => ZeroPadding2D(((1, 0), (2, 1))) => Conv2D(2, 2, tanh) => ZeroPadding2D((1, 2))
        => ZeroPadding2D(1) => Flatten() => Dense(2);
}
sequential! {
    struct GradCrop = Input((8, 9, 2)) => Dense(2, tanh) => Cropping2D(((1, 2), (0, 3))) => Cropping2D((1, 0)) => Cropping2D(1) => Flatten() => Dense(2);
}
sequential! { struct GradGaussianNoise = Dense(6, in = 4, tanh) => GaussianNoise(0.5) => Dense(2); }
sequential! { struct GradGaussianDropout = Dense(6, in = 4, tanh) => GaussianDropout(0.3) => Dense(2); }
sequential! { struct GradSpatialDropout = Input((2, 3, 4)) => Dense(4, tanh) => SpatialDropout2D(0.5) => Flatten() => Dense(2); }
sequential! { struct GradTdDense = Input((3, 4)) => TimeDistributed(Dense(3, tanh)) => Flatten() => Dense(2); }
sequential! { struct GradTdConv = Input((2, 4, 4, 2)) => Dense(2, tanh) => TimeDistributed(Conv2D(2, 3, tanh)) => Flatten() => Dense(2); }
sequential! {
    struct GradTdDropout = Input((3, 4)) => Dense(5, tanh) => TimeDistributed(Dropout(0.5)) => TimeDistributed(Dense(2, use_bias = false)) => Flatten() => Dense(2);
}

/// The reshaping, noise and wrapper layers, a Dense in front of each to check its input
/// gradient; the noise layers in training mode, with the noise of the forward pass (the same in
/// every probe: `gradients` does not advance the step).
#[test]
fn reshaping_noise_and_wrapper_gradients() {
    let mut rng = Rng::new(13);
    /// `M` on random inputs of `shape` against random targets of two values per sample.
    fn mse<M: Model<Backend = Cpu>>(what: &str, shape: &[usize], rng: &mut Rng) {
        let (x, y) = (random(shape, rng, 1.0), random(&[shape[0], 2], rng, 1.0));
        check::<M>(what, "mse", &x, &y);
    }
    mse::<GradPermute>("permute", &[3, 3, 4, 2], &mut rng);
    mse::<GradRepeat>("repeat vector", &[4, 4], &mut rng);
    mse::<GradUpNearest>("upsampling nearest", &[3, 3, 2, 2], &mut rng);
    mse::<GradUpBilinear>("upsampling bilinear", &[3, 3, 4, 2], &mut rng);
    mse::<GradPad>("zero padding", &[3, 3, 3, 2], &mut rng);
    mse::<GradCrop>("cropping", &[3, 8, 9, 2], &mut rng);
    mse::<GradGaussianNoise>("gaussian noise", &[5, 4], &mut rng);
    mse::<GradGaussianDropout>("gaussian dropout", &[5, 4], &mut rng);
    mse::<GradSpatialDropout>("spatial dropout", &[4, 2, 3, 4], &mut rng);
    mse::<GradTdDense>("time distributed dense", &[3, 3, 4], &mut rng);
    mse::<GradTdConv>("time distributed conv2d", &[3, 2, 4, 4, 2], &mut rng);
    mse::<GradTdDropout>("time distributed dropout", &[3, 3, 4], &mut rng);
}

sequential! { struct GradRescaling = Input(4) => Dense(5, tanh) => Rescaling(2.5, offset = -0.5) => Dense(2); }
sequential! { struct GradRescalingSeq = Input((3, 4)) => Dense(3, tanh) => Rescaling(-0.75) => Flatten() => Dense(2); }
sequential! {
    struct GradNormGiven = Input(4) => Dense(3, tanh) => Normalization(mean = [0.5, -1.0, 0.0], variance = [2.0, 0.5, 1.5]) => Dense(2);
}
sequential! { struct GradNormInvert = Input(4) => Dense(3, tanh) => Normalization(mean = 0.25, variance = 3.0, invert = true) => Dense(2); }
sequential! { struct GradNormAdapted = Input((3, 4)) => Dense(2, tanh) => Normalization(axis = 1) => Flatten() => Dense(2); }
sequential! { struct GradNormAdaptedInvert = Input((3, 4)) => Dense(2, tanh) => Normalization(axis = None, invert = true) => Flatten() => Dense(2); }

/// The preprocessing layers inside a model: a Dense in front of each checks its input gradient
/// (Rescaling's is `scale`, Normalization's `1 / max(sqrt(variance), 1e-7)`, inverted its
/// reciprocal), with statistics given or adapted (to data of other means and spreads).
#[test]
fn preprocessing_gradients() {
    let mut rng = Rng::new(17);
    /// `M` on random inputs of `shape` against random targets of two values per sample.
    fn mse<M: Model<Backend = Cpu>>(what: &str, shape: &[usize], rng: &mut Rng) {
        let (x, y) = (random(shape, rng, 1.0), random(&[shape[0], 2], rng, 1.0));
        check::<M>(what, "mse", &x, &y);
    }
    mse::<GradRescaling>("rescaling", &[5, 4], &mut rng);
    mse::<GradRescalingSeq>("rescaling over steps", &[5, 3, 4], &mut rng);
    mse::<GradNormGiven>("normalization given its statistics", &[5, 4], &mut rng);
    mse::<GradNormInvert>("inverted normalization", &[5, 4], &mut rng);
    /// `M` with its Normalization adapted to `(20, 3, 2)` values of scale 3 around 0.5.
    fn adapted<M: Model<Backend = Cpu>>(what: &str, rng: &mut Rng) {
        keras::utils::set_random_seed(11);
        let mut model = M::create(&Cpu::default()).unwrap();
        model.adapt("normalization", &random(&[20, 3, 2], rng, 3.0).mapv(|v| v + 0.5)).unwrap();
        let (x, y) = (random(&[5, 3, 4], rng, 1.0), random(&[5, 2], rng, 1.0));
        check_model(what, model, "mse", &x, &y, 1e-3);
    }
    adapted::<GradNormAdapted>("adapted normalization of axis 1", &mut rng);
    adapted::<GradNormAdaptedInvert>("adapted inverted normalization of every axis", &mut rng);
}

sequential! { struct GradRelu = Input(4) => Dense(6) => ReLU(max_value = 0.8, negative_slope = 0.15, threshold = 0.1) => Dense(2); }
sequential! { struct GradLeaky = Input((3, 4)) => Dense(3) => LeakyReLU() => Flatten() => Dense(2); }
sequential! { struct GradElu = Input(4) => Dense(5) => ELU(0.6) => Dense(2); }
sequential! { struct GradLambda = Input((3, 4)) => Dense(3) => Lambda(|x| x * x.sigmoid() + x.clip(-0.3, 0.3)) => Flatten() => Dense(2); }
sequential! { struct GradSoftmax = Input((3, 4)) => Dense(3) => Softmax() => Flatten() => Dense(2); }
sequential! { struct GradPRelu = Input((3, 4)) => Dense(3) => PReLU(alpha_initializer = random_uniform) => Flatten() => Dense(2); }
sequential! {
    struct GradPReluShared = Input((4, 4, 2)) => Conv2D(3, 2) => PReLU(alpha_initializer = random_normal, shared_axes = [1, 2])
        => Flatten() => Dense(2);
}

/// The activation layers inside a model: a Dense (or a convolution) in front of each checks its
/// input gradient; PReLU's `alpha` gradient (random slopes, one per position or per channel) is
/// checked with the other weights. Random inputs land on the kinks with probability 0.
#[test]
fn activation_layer_gradients() {
    let mut rng = Rng::new(23);
    fn mse<M: Model<Backend = Cpu>>(what: &str, shape: &[usize], rng: &mut Rng) {
        let (x, y) = (random(shape, rng, 1.5), random(&[shape[0], 2], rng, 1.0));
        check::<M>(what, "mse", &x, &y);
    }
    mse::<GradRelu>("ReLU with a cap, a slope and a threshold", &[6, 4], &mut rng);
    mse::<GradLeaky>("LeakyReLU over steps", &[5, 3, 4], &mut rng);
    mse::<GradElu>("ELU", &[6, 4], &mut rng);
    // The softmax's Jacobian rows sum to 0, so its bias gradients are small differences: a
    // larger step (the function is smooth) lifts them above the f32 loss's rounding.
    let (x, y) = (random(&[5, 3, 4], &mut rng, 1.5), random(&[5, 2], &mut rng, 1.0));
    check_step::<GradSoftmax, _>("Softmax over the last axis", "mse", &x, &y, 1e-2);
    mse::<GradPRelu>("PReLU, an alpha per position", &[5, 3, 4], &mut rng);
    mse::<GradPReluShared>("PReLU, an alpha per channel", &[4, 4, 4, 2], &mut rng);
    mse::<GradLambda>("Lambda, differentiated by dual numbers", &[5, 3, 4], &mut rng);
}

#[path = "models/custom_layers.rs"]
mod custom_models;
use custom_models::{Affine, Linear};

sequential! { struct GradCustom = Input((3, 4)) => Affine() => Linear(out = 3) => Activation(tanh) => Flatten() => Dense(2); }
functional! {
    struct GradCustomShared(a: [4], b: [4]) -> out {
        let shared = Linear(out = 3);
        let ha = shared(a);
        let hb = shared(b);
        let h = Multiply()(ha, hb);
        let h = Affine()(h);
        let out = Dense(2)(h);
    }
}

/// Layers of the user's own: their weights' gradients, as their `backward` writes them and the
/// model sums them (a layer shared by two inputs), against finite differences of the loss.
#[test]
fn custom_layer_gradients() {
    let mut rng = Rng::new(29);
    let (x, y) = (random(&[5, 3, 4], &mut rng, 1.0), random(&[5, 2], &mut rng, 1.0));
    check::<GradCustom>("Affine then Linear over steps", "mse", &x, &y);
    let (a, b, y) = (random(&[5, 4], &mut rng, 1.0), random(&[5, 4], &mut rng, 1.0), random(&[5, 2], &mut rng, 1.0));
    let a = a.into_dimensionality::<keras::ndarray::Ix2>().unwrap();
    let b = b.into_dimensionality::<keras::ndarray::Ix2>().unwrap();
    check_step::<GradCustomShared, _>("a Linear shared by two inputs", "mse", &[a.view(), b.view()][..], &y, 1e-3);
}

sequential! { struct EmbedGrad = Input(5) => Embedding(7, 3) => Flatten() => Dense(2); }
sequential! { struct EmbedRnn = Input(4) => Embedding(7, 3, embeddings_regularizer = l2(0.01)) => SimpleRNN(4, return_sequences = true) => Flatten() => Dense(2); }
// A Dense in front of each recurrent layer checks the recurrent layer's input gradient.
sequential! { struct RnnGrad = Input((5, 3)) => Dense(4, tanh) => SimpleRNN(4) => Dense(2); }
sequential! { struct RnnGradOptions = Input((5, 3)) => Dense(4, tanh) => SimpleRNN(3, swish, use_bias = false, go_backwards = true, return_sequences = true) => Flatten() => Dense(2); }
sequential! { struct LstmGrad = Input((5, 3)) => Dense(4, tanh) => LSTM(4) => Dense(2); }
sequential! { struct LstmGradSeq = Input((5, 3)) => Dense(4, tanh) => LSTM(3, return_sequences = true, go_backwards = true) => Flatten() => Dense(2); }
sequential! {
    struct LstmGradOptions = Input((4, 3)) => Dense(4, tanh) => LSTM(3, gelu, recurrent_activation = hard_sigmoid, use_bias = false,
        kernel_regularizer = l2(0.01), recurrent_regularizer = l2(0.05)) => Dense(2);
}
sequential! { struct GruGrad = Input((5, 3)) => Dense(4, tanh) => GRU(4) => Dense(2); }
sequential! { struct GruGradSeq = Input((5, 3)) => Dense(4, tanh) => GRU(3, return_sequences = true, go_backwards = true, bias_regularizer = l2(0.1)) => Flatten() => Dense(2); }
sequential! { struct GruGradOptions = Input((4, 3)) => Dense(4, tanh) => GRU(3, softsign, recurrent_activation = tanh, use_bias = false) => Dense(2); }
sequential! { struct GruGradResetBefore = Input((5, 3)) => Dense(4, tanh) => GRU(3, reset_after = false, return_sequences = true) => Flatten() => Dense(2); }
sequential! { struct GruGradResetBeforeOptions = Input((4, 3)) => Dense(4, tanh) => GRU(3, reset_after = false, go_backwards = true, use_bias = false, recurrent_activation = hard_sigmoid) => Dense(2); }
sequential! { struct BiGradConcat = Input((4, 3)) => Dense(3, tanh) => Bidirectional(LSTM(3, return_sequences = true)) => Flatten() => Dense(2); }
sequential! { struct BiGradSum = Input((4, 3)) => Dense(3, tanh) => Bidirectional(GRU(3), "sum") => Dense(2); }
sequential! { struct BiGradMul = Input((4, 3)) => Dense(3, tanh) => Bidirectional(SimpleRNN(3, return_sequences = true), merge_mode = "mul") => Flatten() => Dense(2); }
sequential! { struct BiGradAve = Input((4, 3)) => Dense(3, tanh) => Bidirectional(GRU(3, reset_after = false, return_sequences = true), "ave") => Flatten() => Dense(2); }
sequential! { struct StackedGrad = Input((4, 2)) => LSTM(3, return_sequences = true) => GRU(3, return_sequences = true) => SimpleRNN(2); }

#[test]
fn embedding_gradients() {
    let mut rng = Rng::new(21);
    // Repeated ids: their rows' gradients add up.
    let ids = ArrayD::from_shape_vec(
        IxDyn(&[4, 5]),
        vec![0.0f32, 3.0, 3.0, 6.0, 1.0, 2.0, 2.0, 2.0, 5.0, 0.0, 6.0, 4.0, 1.0, 1.0, 3.0, 0.0, 0.0, 5.0, 4.0, 2.0],
    )
    .unwrap();
    check::<EmbedGrad>("embedding", "mse", &ids, &random(&[4, 2], &mut rng, 1.0));
    let ids = ids.slice(keras::ndarray::s![.., 0..4]).to_owned().into_dyn();
    check_step::<EmbedRnn, _>("embedding into a simple rnn", "mse", &ids, &random(&[4, 2], &mut rng, 1.0), 1e-2);
}

/// A gradient check of one model, given its name, inputs and targets.
type NamedCheck = dyn Fn(&str, &ArrayD<f32>, &ArrayD<f32>);

#[test]
fn recurrent_gradients() {
    let mut rng = Rng::new(22);
    let mut run = |what: &str, x: &[usize], y: &[usize], check_model: &NamedCheck| {
        let xs = random(x, &mut rng, 1.0);
        let ys = random(y, &mut rng, 1.0);
        eprintln!("{what}");
        check_model(what, &xs, &ys);
    };
    run("simple rnn", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<RnnGrad, _>(w, "mse", x, y, 1e-2));
    run("simple rnn options", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<RnnGradOptions, _>(w, "mse", x, y, 1e-2));
    run("lstm", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<LstmGrad, _>(w, "mse", x, y, 1e-2));
    run("lstm sequences backwards", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<LstmGradSeq, _>(w, "mse", x, y, 1e-2));
    run("lstm options", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<LstmGradOptions, _>(w, "mse", x, y, 1e-2));
    run("gru", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<GruGrad, _>(w, "mse", x, y, 1e-2));
    run("gru sequences backwards", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<GruGradSeq, _>(w, "mse", x, y, 1e-2));
    run("gru options", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<GruGradOptions, _>(w, "mse", x, y, 1e-2));
    run("gru reset_after = false", &[3, 5, 3], &[3, 2], &|w, x, y| check_step::<GruGradResetBefore, _>(w, "mse", x, y, 1e-2));
    run("gru reset_after = false options", &[3, 4, 3], &[3, 2], &|w, x, y| {
        check_step::<GruGradResetBeforeOptions, _>(w, "mse", x, y, 1e-2)
    });
    run("bidirectional concat", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<BiGradConcat, _>(w, "mse", x, y, 1e-2));
    run("bidirectional sum", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<BiGradSum, _>(w, "mse", x, y, 1e-2));
    run("bidirectional mul", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<BiGradMul, _>(w, "mse", x, y, 1e-2));
    run("bidirectional ave", &[3, 4, 3], &[3, 2], &|w, x, y| check_step::<BiGradAve, _>(w, "mse", x, y, 1e-2));
    run("stacked", &[3, 4, 2], &[3, 2], &|w, x, y| check_step::<StackedGrad, _>(w, "mse", x, y, 1e-2));
}

// Functional graphs: a layer called three times (its weight gradients summed over the calls), a
// tensor feeding several layers (its gradient summed over consumers, the same tensor twice into
// one merge included), every merge layer, Concatenate along the last and an inner axis, a
// penalty on a shared layer's outputs. InceptionResNetV2's CustomScaleLayer (`x + y * scale`)
// among the merges.
functional! {
    struct FunGradShared(x: [5]) -> out {
        let h = Dense(5, tanh)(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add()(h, b, c);
        let out = Dense(2)(s);
    }
}
functional! {
    struct FunGradMerges(x: [4]) -> out {
        let h = Dense(4, tanh)(x);
        let g = Dense(4, tanh)(x);
        let sq = Multiply()(h, h);
        let d = Subtract()(sq, g);
        let m = Multiply()(d, g, h);
        let av = Average()(m, h, g);
        let mx = Maximum()(av, g);
        let mn = Minimum()(mx, h, d);
        let sc = CustomScaleLayer(0.17)(mn, g);
        let sc = CustomScaleLayer(scale = -2.5)(sc, sc);
        let c = Concatenate()(sc, h, av);
        let out = Dense(2)(c);
    }
}
functional! {
    struct FunGradInnerAxis(x: [3, 4]) -> out {
        let a = Dense(2, tanh)(x);
        let b = Dense(3, tanh)(x);
        let c = Concatenate(axis = 1)(a, a);
        let d = Concatenate(axis = -1)(b, a);
        let f = Flatten()(c);
        let g = Flatten()(d);
        let j = Concatenate()(f, g);
        let out = Dense(2)(j);
    }
}
functional! {
    struct FunGradActivity(x: [4]) -> out {
        let h = Dense(4, tanh)(x);
        let p = Dense(4, tanh, activity_regularizer = l2(0.1), name = "p");
        let a = p(h);
        let b = p(a);
        let out = Dense(2)(b);
    }
}

#[test]
fn functional_gradients() {
    let mut rng = Rng::new(31);
    let mut run = |what: &str, x: &[usize], y: &[usize], check_model: &NamedCheck| {
        let xs = random(x, &mut rng, 1.0);
        let ys = random(y, &mut rng, 1.0);
        eprintln!("{what}");
        check_model(what, &xs, &ys);
    };
    run("shared layer called three times", &[4, 5], &[4, 2], &|w, x, y| check::<FunGradShared>(w, "mse", x, y));
    run("every merge", &[4, 4], &[4, 2], &|w, x, y| check::<FunGradMerges>(w, "mse", x, y));
    run("concatenate along an inner axis", &[4, 3, 4], &[4, 2], &|w, x, y| check::<FunGradInnerAxis>(w, "mse", x, y));
    run("activity penalty on a shared layer", &[4, 4], &[4, 2], &|w, x, y| check::<FunGradActivity>(w, "mse", x, y));
}

// Deep models: more than 32 layer calls, so that the generated forward and backward passes are
// cut into several functions (expand.rs, FORWARD_PART); the parts must hand the tensors on.
functional! {
    struct FunGradDeep(x: [3]) -> out {
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let h = Dense(3, tanh)(x);
        let x = Add()(x, h);
        let out = Dense(2)(x);
    }
}
sequential! {
    struct SeqGradDeep = Input(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(3, tanh) => Dense(3) => Dense(3) => Dense(2);
}

#[test]
fn deep_model_gradients() {
    let mut rng = Rng::new(37);
    let (x, y) = (random(&[4, 3], &mut rng, 1.0), random(&[4, 2], &mut rng, 1.0));
    check::<FunGradDeep>("18 residual blocks (37 calls)", "mse", &x, &y);
    // A deep plain chain's first gradients fall under the f32 loss's rounding, so the sequential
    // model (the same generated parts) is checked against its forward pass done by hand.
    let seq = SeqGradDeep::new(&Cpu::default());
    let weights = seq.get_weights().unwrap();
    let mut h: Vec<Vec<f64>> = x.outer_iter().map(|r| r.iter().map(|&v| v as f64).collect()).collect();
    for (l, pair) in weights.chunks(2).enumerate() {
        let (w, b) = (&pair[0], &pair[1]);
        let (fan_in, units) = (w.shape()[0], w.shape()[1]);
        let tanh = l % 3 == 0 && l < 36;
        h = h
            .iter()
            .map(|row| {
                (0..units)
                    .map(|j| {
                        let z = (0..fan_in).map(|i| row[i] * w[[i, j]] as f64).sum::<f64>() + b[[j]] as f64;
                        if tanh { z.tanh() } else { z }
                    })
                    .collect()
            })
            .collect();
    }
    let p = seq.predict(&x).unwrap();
    for (got, want) in p.outer_iter().zip(&h) {
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-5 * w.abs().max(1.0), "37 Dense layers: predicted {g}, by hand {w}");
        }
    }
    // predict (Model::infer) runs the same parts as the training pass's forward.
    keras::utils::set_random_seed(3);
    let model = FunGradDeep::new(&Cpu::default());
    let p = model.predict(&x).unwrap();
    let mut m = model.compile(Sgd::default(), "mse", [Metric::Accuracy; 0]).unwrap();
    let loss = m.evaluate(&x, &p).unwrap()["loss"];
    assert_eq!(loss, 0.0, "evaluate's forward pass and predict's differ");
}

// Merges straight on the model's inputs (no gradient flows to an input), layers with state or
// masks in a graph (Dropout, BatchNormalization), and recurrent layers on two sequence inputs.
functional! {
    struct FunGradOnInputs(a: [4], b: [4]) -> out {
        let s = Multiply()(a, b);
        let d = Dropout(0.3, seed = 5)(s);
        let h = Dense(4, tanh)(d);
        let n = BatchNormalization()(h);
        let j = Concatenate()(n, a);
        let out = Dense(2)(j);
    }
}
functional! {
    struct FunGradSequences(a: [4, 3], b: [5, 3]) -> out {
        let enc = LSTM(3);
        let x = enc(a);
        let y = GRU(3)(b);
        let j = Subtract()(x, y);
        let out = Dense(2)(j);
    }
}

functional! {
    /// One LSTM over sequences of two lengths (its weights fit both).
    struct FunGradSharedShapes(a: [4, 3], b: [6, 3]) -> out {
        let enc = LSTM(3);
        let x = enc(a);
        let y = enc(b);
        let j = Subtract()(x, y);
        let out = Dense(2)(j);
    }
}

#[test]
fn functional_gradients_with_inputs_masks_and_sequences() {
    // These models take two inputs: x is a pair of arrays.
    fn check2<M: Model<Backend = Cpu>>(what: &str, xa: &ArrayD<f32>, xb: &ArrayD<f32>, y: &ArrayD<f32>, h: f32) {
        check_step::<M, _>(what, "mse", &[xa.view(), xb.view()], y, h);
    }
    let mut rng = Rng::new(41);
    let (a, b, y) = (random(&[6, 4], &mut rng, 1.0), random(&[6, 4], &mut rng, 1.0), random(&[6, 2], &mut rng, 1.0));
    check2::<FunGradOnInputs>("merge on inputs, dropout, batch norm", &a, &b, &y, 1e-3);
    let (a, b, y) = (random(&[3, 4, 3], &mut rng, 1.0), random(&[3, 5, 3], &mut rng, 1.0), random(&[3, 2], &mut rng, 1.0));
    check2::<FunGradSequences>("lstm and gru on two inputs", &a, &b, &y, 1e-2);
    let (a, b, y) = (random(&[3, 4, 3], &mut rng, 1.0), random(&[3, 6, 3], &mut rng, 1.0), random(&[3, 2], &mut rng, 1.0));
    check2::<FunGradSharedShapes>("one lstm over two sequence lengths", &a, &b, &y, 1e-2);
}

// A residual connection: the model's one input read by an elementwise merge (found by review:
// it did not compile).
functional! {
    struct FunGradResidual(x: [4]) -> out {
        let h = Dense(4, tanh)(x);
        let s = Add()(h, x);
        let m = Multiply()(s, x, h);
        let out = Dense(2)(m);
    }
}

#[test]
fn functional_residual_gradients() {
    let mut rng = Rng::new(43);
    let (x, y) = (random(&[4, 4], &mut rng, 1.0), random(&[4, 2], &mut rng, 1.0));
    check::<FunGradResidual>("residual", "mse", &x, &y);
}

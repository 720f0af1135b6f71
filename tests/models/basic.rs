//! The models of the optimizer, activation and small-model fixtures (`A_opt_*`, `S_*`, `C_act_*`,
//! normalization, XOR), and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! { pub struct Softmax3 = Dense(5, in = 4, relu) => Dense(3, softmax); }
sequential! { pub struct XorNet = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid); }
sequential! { pub struct BatchNormNet = Dense(5, in = 4) => BatchNormalization() => Activation(relu) => Dense(3, softmax); }

// The moving mean and variance are the non-trainable weights Keras reports.
const _: () = assert!(BatchNormNet::NON_TRAINABLE_PARAMS == 10);
sequential! { pub struct LayerNormNet = Dense(6, in = 4) => LayerNormalization() => Dense(3, softmax); }
sequential! { pub struct FlattenNet = Input((3, 4)) => Flatten() => Dense(3, softmax); }

/// Every Keras optimizer, its common options (weight decay and the three clippings) and
/// learning-rate schedules driving training, on the same small classifier.
pub const OPTIMIZER_CASES: [&str; 27] = [
    "A_opt_sgd",
    "A_opt_sgd_default_lr",
    "A_opt_sgd_momentum",
    "A_opt_sgd_nesterov",
    "A_opt_adam",
    "A_opt_adam_amsgrad",
    "A_opt_adam_clipnorm",
    "A_opt_adam_clipvalue",
    "A_opt_adam_global_clipnorm",
    "A_opt_adam_weight_decay",
    "A_opt_adamw",
    "A_opt_adamax",
    "A_opt_nadam",
    "A_opt_rmsprop",
    "A_opt_rmsprop_momentum_centered",
    "A_opt_adagrad",
    "A_opt_adadelta",
    "A_opt_lion",
    "S_opt_ftrl",
    "S_opt_ftrl_regularized",
    "S_opt_sgd_nesterov_clipnorm_weight_decay",
    "S_opt_nadam_global_clipnorm",
    "S_opt_lion_clipvalue_weight_decay",
    "S_opt_adadelta_weight_decay",
    "S_sched_sgd_inverse_time",
    "S_sched_adam_cosine_warmup",
    "S_sched_rmsprop_exponential_staircase",
];

/// The optimizer fixtures on `device`.
pub fn optimizers<B: Backend>(device: &B) {
    for case in OPTIMIZER_CASES {
        run_fixture_on::<Softmax3<B>>(device, case, 1e-5);
    }
}

/// The small models: batch normalization (batch statistics in training, moving ones after),
/// layer normalization, flatten, the XOR tutorial's 1500 epochs, and a partial last batch (the
/// epoch's loss weighs each batch's mean by its size, as Keras's loss tracker does).
pub fn small_models<B: Backend>(device: &B) {
    run_fixture_on::<BatchNormNet<B>>(device, "D_layer_batchnorm", 1e-5);
    run_fixture_on::<LayerNormNet<B>>(device, "D_layer_layernorm", 1e-5);
    run_fixture_on::<FlattenNet<B>>(device, "D_layer_flatten", 1e-5);
    run_fixture_on::<XorNet<B>>(device, "F_xor_tutorial", 1e-5);
    run_fixture_on::<Softmax3<B>>(device, "D_misc_partial_last_batch", 1e-5);
}

/// One model per activation, `Dense(4, in = 3, activation)`, and the list of their fixtures.
macro_rules! activation_models {
    ($($model:ident = $act:ident, $case:literal;)*) => {
        $(sequential! { pub struct $model = Dense(4, in = 3, $act); })*

        /// Every activation's fixture (`C_act_*`) on `device`.
        pub fn activations<B: Backend>(device: &B) {
            $(run_fixture_on::<$model<B>>(device, $case, 1e-5);)*
        }

        /// The activation fixtures' names.
        pub const ACTIVATION_CASES: &[&str] = &[$($case),*];
    };
}

activation_models! {
    ActLinear = linear, "C_act_linear";
    ActRelu = relu, "C_act_relu";
    ActSigmoid = sigmoid, "C_act_sigmoid";
    ActTanh = tanh, "C_act_tanh";
    ActSoftmax = softmax, "C_act_softmax";
    ActElu = elu, "C_act_elu";
    ActSelu = selu, "C_act_selu";
    ActSoftplus = softplus, "C_act_softplus";
    ActSoftsign = softsign, "C_act_softsign";
    ActSwish = swish, "C_act_swish";
    ActSilu = silu, "C_act_silu";
    ActGelu = gelu, "C_act_gelu";
    ActLeakyRelu = leaky_relu, "C_act_leaky_relu";
    ActRelu6 = relu6, "C_act_relu6";
    ActHardSigmoid = hard_sigmoid, "C_act_hard_sigmoid";
    ActExponential = exponential, "C_act_exponential";
    ActMish = mish, "C_act_mish";
}

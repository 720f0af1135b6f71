//! The CUDA C kernels, one module per file, compiled at first use and kept for the process.

/// The prelude put before every module: portable constants and macros (see `prelude.cuh`).
pub const PRELUDE: &str = include_str!("prelude.cuh");

/// One module of CUDA C: its source and the kernels the backend loads from it.
#[derive(Debug)]
pub struct Module {
    /// The module's name (its file's stem).
    pub name: &'static str,
    /// The CUDA C source, without the prelude.
    pub source: &'static str,
    /// The `extern "C" __global__` kernels, in the order the backend indexes them.
    pub kernels: &'static [&'static str],
}

/// The core primitives: fill, copy, add, scale, multiply, gather_rows.
pub static CORE: Module =
    Module { name: "core", source: include_str!("core.cu"), kernels: &["fill", "copy", "add", "scale", "multiply", "gather_rows"] };

/// DenseOps: bias and activation epilogues (softmax row-wise), their backward passes, column sums;
/// the activation layers with arguments (ReLU, ELU, PReLU) and their backward passes.
pub static DENSE: Module = Module {
    name: "dense",
    source: concat!(include_str!("activation.cuh"), include_str!("dense.cu")),
    kernels: &[
        "bias_act",
        "bias_softmax",
        "act_backward",
        "softmax_backward",
        "column_sums",
        "relu",
        "relu_backward",
        "elu",
        "elu_backward",
        "prelu",
        "prelu_backward",
        "prelu_alpha_grad",
    ],
};

/// RandomOps: dropout (of elements and of channels), Gaussian noise, the stream's advance.
pub static RANDOM: Module = Module {
    name: "random",
    source: include_str!("random.cu"),
    kernels: &["dropout", "dropout_mask", "dropout_channels", "dropout_backward", "gaussian_noise", "advance"],
};

/// NormOps: batch and layer normalization, their statistics and backward passes; standardization
/// (with its backward pass) and rescaling.
pub static NORM: Module = Module {
    name: "norm",
    source: include_str!("norm.cu"),
    kernels: &[
        "moments",
        "moving_average",
        "batch_norm_inv",
        "batch_norm",
        "batch_norm_backward",
        "layer_norm",
        "layer_norm_param_grads",
        "layer_norm_input_grad",
        "standardize",
        "standardize_backward",
        "rescale",
    ],
};

/// OptimizerOps: the optimizer step over a whole arena and the step buffer's advance, clipping by
/// norm (sums of squares per piece of each weight tensor, per-tensor scaling), the constraints.
pub static OPTIMIZER: Module = Module {
    name: "optimizer",
    source: include_str!("optimizer.cu"),
    kernels: &["optimizer_update", "optimizer_advance", "clip_partials", "clip_scale", "constrain_columns", "non_neg"],
};

/// ObjectiveOps: the losses and their gradients, the metrics' accumulators, the weight penalties.
pub static OBJECTIVE: Module = Module {
    name: "objective",
    source: concat!(include_str!("activation.cuh"), include_str!("objective.cu")),
    kernels: &[
        "loss_rows",
        "loss_binary_targets",
        "objective_total",
        "metric_rows",
        "metric_counts",
        "auc_bins",
        "auc_counts",
        "f1_row_max",
        "f1_counts",
        "f1_micro",
        "r2_sums",
        "penalty_partials",
        "penalty_total",
        "penalty_grad",
    ],
};

/// LayoutOps: permutations, repeats, padding and cropping, upsampling, column blocks, merges.
pub static LAYOUT: Module = Module {
    name: "layout",
    source: include_str!("layout.cu"),
    kernels: &[
        "permute",
        "repeat",
        "repeat_backward",
        "pad2d",
        "crop2d",
        "upsample2d",
        "upsample2d_backward",
        "copy_cols",
        "merge_step",
        "merge_grad_scaled",
        "merge_grad_product",
        "merge_grad_ties",
        "merge_grad_share",
    ],
};

/// WindowOps: im2col and col2im, depthwise products over patch rows, pooling.
pub static WINDOW: Module = Module {
    name: "window",
    source: include_str!("window.cu"),
    kernels: &["im2col", "col2im", "depthwise", "depthwise_kernel_grad", "depthwise_input_grad", "pool2d", "pool2d_backward"],
};

/// SequenceOps: embedding lookups, the recurrent layers' step kernels and their backward passes,
/// `Bidirectional`'s merge.
pub static SEQUENCE: Module = Module {
    name: "sequence",
    source: concat!(include_str!("activation.cuh"), include_str!("sequence.cu")),
    kernels: &[
        "embedding",
        "embedding_backward",
        "rnn_gates",
        "rnn_lstm_state",
        "rnn_gru_candidate",
        "rnn_output",
        "rnn_reset_state",
        "rnn_state_grads",
        "rnn_lstm_cell_grads",
        "rnn_gru_reset_grads",
        "rnn_grad_rows",
        "rnn_bias_grads",
        "rnn_reset_state_backward",
        "merge_directions",
        "merge_directions_backward",
    ],
};

/// Every module, for the checks that compile them all (NVRTC in CI).
pub static MODULES: &[&Module] = &[&CORE, &DENSE, &RANDOM, &NORM, &OPTIMIZER, &OBJECTIVE, &LAYOUT, &WINDOW, &SEQUENCE];

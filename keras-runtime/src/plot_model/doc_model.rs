// Not a module of the crate: the doc examples of `plot_model` include this file (`include!`),
// because a doc test of keras-runtime cannot use the `functional!` macro (it expands to `::keras`
// paths). It spells out, by hand, what
//
//     functional! {
//         struct TwoTowers(in_a: [6], in_b: [3]) -> dense_out {
//             let a = Dense(4, relu, name = "dense_a")(in_a);
//             let b = Dense(4, relu, name = "dense_b")(in_b);
//             let joined = Concatenate(name = "concat")(a, b);
//             let dense_out = Dense(2, softmax, name = "dense_out")(joined);
//         }
//     }
//
// generates for plotting (the layers and their calls); it cannot run. Examples in the `keras`
// crate (README, tests/plot_model.rs) use the macro itself.

/// Two inputs, a Dense on each, a Concatenate, a Dense: the layers and calls of a functional model.
pub struct TwoTowers(keras_runtime::model::ModelCore<keras_runtime::Cpu>);

impl keras_runtime::Model for TwoTowers {
    type Backend = keras_runtime::Cpu;
    type OutputDim = keras_runtime::ndarray::Ix2;
    type Predictions = keras_runtime::ndarray::Array2<f32>;
    type InputElement = f32;
    const NAME: &'static str = "two_towers";
    const INPUT_SHAPE: &'static [usize] = &[9];
    const OUTPUT_SHAPE: &'static [usize] = &[2];
    const INPUT_SIZE: usize = 9;
    const INPUTS: &'static [keras_runtime::model::InputSpec] = &[
        keras_runtime::model::InputSpec { name: "in_a", shape: &[6], indices: None },
        keras_runtime::model::InputSpec { name: "in_b", shape: &[3], indices: None },
    ];
    const OUTPUT_SIZE: usize = 2;
    const PARAMS: usize = 28 + 16 + 18;
    const TRAINABLE_PARAMS: usize = 0;
    const NON_TRAINABLE_PARAMS: usize = 0;
    const LAYERS: &'static [keras_runtime::model::LayerSpec] = {
        use keras_runtime::activations::Activation;
        use keras_runtime::model::{ConfigValue, LayerSpec};
        const fn layer(name: &'static str, class: &'static str, output_shape: &'static [usize], params: usize) -> LayerSpec {
            LayerSpec { name, class, output_shape, params, activity_regularizer: None, config: &[] }
        }
        const RELU: &[(&str, ConfigValue)] = &[("activation", ConfigValue::Activation(Activation::Relu))];
        const SOFTMAX: &[(&str, ConfigValue)] = &[("activation", ConfigValue::Activation(Activation::Softmax))];
        &[
            layer("in_a", "InputLayer", &[6], 0),
            layer("in_b", "InputLayer", &[3], 0),
            LayerSpec { config: RELU, ..layer("dense_a", "Dense", &[4], 28) },
            LayerSpec { config: RELU, ..layer("dense_b", "Dense", &[4], 16) },
            layer("concat", "Concatenate", &[8], 0),
            LayerSpec { config: SOFTMAX, ..layer("dense_out", "Dense", &[2], 18) },
        ]
    };
    const NODES: &'static [keras_runtime::model::NodeSpec] = {
        use keras_runtime::model::NodeSpec;
        &[
            NodeSpec { layer: 2, inputs: &[(0, 0)], output: &[4] },
            NodeSpec { layer: 3, inputs: &[(1, 0)], output: &[4] },
            NodeSpec { layer: 4, inputs: &[(2, 0), (3, 0)], output: &[8] },
            NodeSpec { layer: 5, inputs: &[(4, 0)], output: &[2] },
        ]
    };
    const WEIGHTS: &'static [keras_runtime::model::WeightSpec] = &[];
    const SLOTS: &'static [usize] = &[];
    const OUTPUT_SLOT: usize = 0;
    const OUTPUT_GRAD_SLOT: usize = 0;

    fn core(&self) -> &keras_runtime::model::ModelCore<keras_runtime::Cpu> {
        &self.0
    }
    fn core_mut(&mut self) -> &mut keras_runtime::model::ModelCore<keras_runtime::Cpu> {
        &mut self.0
    }
    fn from_core(core: keras_runtime::model::ModelCore<keras_runtime::Cpu>) -> Self {
        TwoTowers(core)
    }
    fn forward(_: &mut keras_runtime::model::ModelCore<keras_runtime::Cpu>, _: &[f32], _: usize, _: bool) {
        unreachable!("a stand-in for plotting only")
    }
    fn infer(_: &keras_runtime::model::ModelCore<keras_runtime::Cpu>, _: &mut keras_runtime::model::Workspace<keras_runtime::Cpu>, _: &[f32], _: usize) {
        unreachable!("a stand-in for plotting only")
    }
    fn backward(_: &mut keras_runtime::model::ModelCore<keras_runtime::Cpu>, _: &[f32], _: usize) {
        unreachable!("a stand-in for plotting only")
    }
}

//! The models the fuzz targets load files into. `tests/fuzz_corpus.rs` defines the same models,
//! so that the kept corpora replay through exactly the code they were found with.

use keras::prelude::*;

mod pack;
pub use pack::keras_archive;

sequential! {
    /// A model with trainable and non-trainable weights (BatchNormalization's moving statistics),
    /// for the safetensors weights and training-state targets.
    pub struct Normalized = Dense(8, in = 2, use_bias = false) => BatchNormalization() => Dense(1);
}

sequential! {
    /// The architecture of the `G_files_dense` Keras fixtures.
    pub struct Net = Input(4) => Dense(5, relu) => Dense(3, softmax);
}

sequential! {
    /// The architecture of the `G_files_conv2d` Keras fixtures.
    pub struct SmallCnn = Input((6, 6, 2)) => Conv2D(3, (3, 3), relu) => MaxPooling2D((2, 2)) => Flatten() => Dense(3, softmax);
}

functional! {
    /// The architecture of the `E_functional_three_inputs` Keras fixture (three inputs).
    pub struct ThreeInputs(a: [6], b: [3], meta: [2]) -> out {
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
    pub struct SharedThree(x: [6]) -> out {
        let h = Dense(5, tanh, name = "h")(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add(name = "add")(h, b, c);
        let out = Dense(3, softmax, name = "out")(s);
    }
}

/// Runs `bytes` through the Keras file reader for the fixture architectures. Any outcome but a
/// panic is fine: a damaged file must come back as an `Err`.
pub fn read_keras_file(bytes: &[u8]) {
    let _ = keras::io::keras_file::weights_from_bytes::<Net>(bytes.to_vec());
    let _ = keras::io::keras_file::weights_from_bytes::<SmallCnn>(bytes.to_vec());
    let _ = keras::io::keras_file::weights_from_bytes::<ThreeInputs>(bytes.to_vec());
    let _ = keras::io::keras_file::weights_from_bytes::<SharedThree>(bytes.to_vec());
}

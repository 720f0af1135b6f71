#![warn(missing_docs)]
//! # keras-rs: Keras for Rust, checked by the compiler
//!
//! A model is a macro. The compiler checks that every layer fits the one before it, counts the
//! parameters, and generates straight-line forward and backward code for exactly these shapes:
//!
//! ```
//! use keras::prelude::*;
//!
//! sequential! {
//!     /// The network from the Keras tutorial.
//!     pub struct Mlp = Dense(32, in = 784, sigmoid) => Dense(10, sigmoid) => Dense(1, sigmoid);
//! }
//! const _: () = assert!(Mlp::PARAMS == 25_461);
//!
//! let model = Mlp::new(&Cpu::default());
//! println!("{}", model.summary());
//! ```
//!
//! Then the Keras workflow: `compile`, `fit`, `evaluate`, `predict`:
//!
//! ```
//! use keras::prelude::*;
//! use keras::ndarray::array;
//!
//! sequential! { struct Xor = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid); }
//!
//! # fn main() -> keras::Result<()> {
//! let x = array![[0.0f32, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]];
//! let y = array![[0.0f32], [1.0], [1.0], [0.0]];
//! let mut model = Xor::new(&Cpu::default()).compile(Sgd::new(1.0), "mse", ["accuracy"])?;
//! let history = model.fit(&x, &y, FitArgs::default().epochs(10).verbose(0))?;
//! assert_eq!(history.loss().len(), 10);
//! let predictions = model.predict(&x)?; // shape (4, 1)
//! # let _ = predictions;
//! # Ok(())
//! # }
//! ```
//!
//! A shape mistake is a compile error that points at the layer:
//!
//! ```compile_fail
//! use keras::prelude::*;
//! sequential! { struct Bad = Dense(32, in = 784) => Dense(10, in = 64); }
//! ```

pub use keras_macros::sequential;
pub use keras_runtime::*;

/// Everything a model definition and its training need: `use keras::prelude::*;`.
pub mod prelude {
    pub use keras_macros::sequential;
    pub use keras_runtime::{Adam, Backend, Compile, Cpu, FitArgs, Loss, Metric, Model, Network, Sgd};
}

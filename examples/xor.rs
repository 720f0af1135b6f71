//! The XOR tutorial: a 3-4-1 sigmoid network trained with SGD on the four XOR patterns.
//!
//! `cargo run --release --example xor`

use keras::ndarray::array;
use keras::prelude::*;

sequential! {
    /// Two inputs and a bias input, four hidden units, one output.
    struct Xor = Dense(4, in = 3, sigmoid) => Dense(1, sigmoid);
}

fn main() -> keras::Result<()> {
    keras::utils::set_random_seed(2);
    let x = array![[0.0f32, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0]];
    let y = array![[0.0f32], [1.0], [1.0], [0.0]];
    let mut model = Xor::new(&Cpu::default()).compile(Sgd::new(1.0), "mse", ["accuracy"])?;
    let history = model.fit(&x, &y, FitArgs::default().epochs(1500).verbose(0))?;
    println!("loss after 1500 epochs: {:.4}", history.loss().last().unwrap_or(&f32::NAN));
    println!("predictions (want 0, 1, 1, 0): {:.3}", model.predict(&x)?.column(0));
    Ok(())
}

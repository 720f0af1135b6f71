//! An LSTM on a sequence task it makes itself: each sample is 24 steps of noisy ±1 increments,
//! and the label says whether their running sum ends above zero. A model that looks at one step,
//! or at the sequence without adding it up, stays near chance; the LSTM has to carry the sum
//! through its cell state. A second model (Embedding => GRU) reads the same task as tokens.
//!
//! `cargo run --release --example lstm`

use keras::ndarray::{Array2, Array3};
use keras::prelude::*;
use keras::utils::Rng;
use std::time::Instant;

const STEPS: usize = 24;

sequential! {
    /// Reads the sequence, keeps the running sum in its state, decides at the end.
    struct SumSign = Input((24, 1)) => LSTM(32) => Dense(16, relu) => Dense(1, sigmoid);
}

sequential! {
    /// The same task with the increments as tokens: 0 for -1, 1 for +1, 2 for "no change".
    struct TokenSum = Input(24) => Embedding(3, 8) => GRU(24) => Dense(1, sigmoid);
}

/// `n` sequences of increments (+1, -1 or 0 with probabilities 0.4, 0.4, 0.2), the increments
/// as tokens, noisy real values, and the labels (1 when the sum ends above zero). Ties (a sum
/// of exactly zero) are redrawn so that every label is decided by the data.
fn make(n: usize, rng: &mut Rng) -> (Array2<i32>, Array3<f32>, Array2<f32>) {
    let mut tokens = Array2::<i32>::zeros((n, STEPS));
    let mut values = Array3::<f32>::zeros((n, STEPS, 1));
    let mut labels = Array2::<f32>::zeros((n, 1));
    for i in 0..n {
        loop {
            let mut sum = 0i32;
            for t in 0..STEPS {
                let u = rng.uniform();
                let (token, step) = if u < 0.4 {
                    (1, 1)
                } else if u < 0.8 {
                    (0, -1)
                } else {
                    (2, 0)
                };
                tokens[[i, t]] = token;
                values[[i, t, 0]] = step as f32 + 0.3 * rng.normal() as f32;
                sum += step;
            }
            if sum != 0 {
                labels[[i, 0]] = (sum > 0) as u8 as f32;
                break;
            }
        }
    }
    (tokens, values, labels)
}

fn main() -> keras::Result<()> {
    keras::utils::set_random_seed(42);
    let mut rng = Rng::new(7);
    let (train_tokens, train_x, train_y) = make(4000, &mut rng);
    let (test_tokens, test_x, test_y) = make(1000, &mut rng);
    let chance = test_y.mean().unwrap_or(0.5).max(1.0 - test_y.mean().unwrap_or(0.5));

    let start = Instant::now();
    let mut model = SumSign::new(&Cpu::default()).compile(Adam::new(0.005), "binary_crossentropy", ["accuracy"])?;
    println!("{}", model.summary());
    model.fit(&train_x, &train_y, FitArgs::default().epochs(12).batch_size(64).verbose(2))?;
    let logs = model.evaluate(&test_x, &test_y)?;
    println!(
        "LSTM on noisy values: test accuracy {:.4} (loss {:.4}; always guessing the common label: {:.4}), {:.1} s",
        logs["accuracy"],
        logs.loss(),
        chance,
        start.elapsed().as_secs_f32()
    );

    let start = Instant::now();
    let mut tokens = TokenSum::new(&Cpu::default()).compile(Adam::new(0.01), "binary_crossentropy", ["accuracy"])?;
    tokens.fit(&train_tokens, &train_y, FitArgs::default().epochs(12).batch_size(64).verbose(0))?;
    let logs = tokens.evaluate(&test_tokens, &test_y)?;
    println!(
        "Embedding => GRU on tokens: test accuracy {:.4} (loss {:.4}), {:.1} s",
        logs["accuracy"],
        logs.loss(),
        start.elapsed().as_secs_f32()
    );
    let first: [i32; STEPS] = std::array::from_fn(|t| test_tokens[[0, t]]);
    println!("first test sequence {first:?}: P(sum > 0) = {:.3}, label {}", tokens.model().predict_one(&first)?[0], test_y[[0, 0]]);
    Ok(())
}

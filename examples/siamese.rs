//! A functional model: are two 8x8 digit images the same digit? One encoder, shared by both
//! images (one set of weights, trained by both), then the two codes compared (`Subtract`,
//! `Multiply`) and joined (`Concatenate`) before a sigmoid. Pairs are drawn from the digits
//! embedded in keras-rs, half of them matching; the test pairs come from the test digits only.
//! The model's plot (`keras::utils::plot_model`) goes to `siamese-model.png` in the temporary
//! directory.
//!
//! `cargo run --release --example siamese`

use keras::datasets::digits;
use keras::ndarray::{Array1, Array2, ArrayView3, Axis};
use keras::prelude::*;
use keras::utils::{PlotModel, Rng, plot_model};

functional! {
    /// Same digit or not.
    pub struct SameDigit(left: [64], right: [64]) -> same {
        let encoder = Dense(32, relu, name = "encoder");
        let a = encoder(left);
        let b = encoder(right);
        let diff = Subtract()(a, b);
        let prod = Multiply()(a, b);
        let joined = Concatenate()(diff, prod);
        let hidden = Dense(16, relu)(joined);
        let same = Dense(1, sigmoid)(hidden);
    }
}

/// `n` pairs from `images` (flattened, scaled to [0, 1]), half of the same digit, and whether
/// each pair matches.
fn pairs(images: ArrayView3<'_, u8>, labels: &Array1<u8>, n: usize, rng: &mut Rng) -> (Array2<f32>, Array2<f32>, Array1<f32>) {
    let flat = images.to_shape((images.len_of(Axis(0)), 64)).expect("8x8 images").mapv(|p| p as f32 / 16.0);
    let by_digit: Vec<Vec<usize>> =
        (0..10u8).map(|d| labels.iter().enumerate().filter(|(_, l)| **l == d).map(|(i, _)| i).collect()).collect();
    let pick = |rng: &mut Rng, v: &[usize]| v[(rng.uniform() * v.len() as f64) as usize % v.len()];
    let (mut left, mut right, mut same) = (Array2::zeros((n, 64)), Array2::zeros((n, 64)), Array1::zeros(n));
    for k in 0..n {
        let d = (rng.uniform() * 10.0) as usize % 10;
        let matching = k % 2 == 0;
        let e = if matching { d } else { (d + 1 + (rng.uniform() * 9.0) as usize % 9) % 10 };
        left.row_mut(k).assign(&flat.row(pick(rng, &by_digit[d])));
        right.row_mut(k).assign(&flat.row(pick(rng, &by_digit[e])));
        same[k] = matching as u8 as f32;
    }
    (left, right, same)
}

fn main() -> keras::Result<()> {
    keras::utils::set_random_seed(3);
    let mut rng = Rng::new(3);
    let ((x_train, y_train), (x_test, y_test)) = digits::load_data();
    let (l_train, r_train, s_train) = pairs(x_train.view(), &y_train, 8000, &mut rng);
    let (l_test, r_test, s_test) = pairs(x_test.view(), &y_test, 2000, &mut rng);

    let model = SameDigit::new(&Cpu::default());
    println!("{}", model.summary());

    // The graph, as `keras.utils.plot_model(model, "model.png", show_shapes=True)` draws it: the
    // two inputs, the shared encoder, the merges. Rendering needs Graphviz's `dot`; without it,
    // the DOT text is written instead (render it elsewhere with `dot -Tpng`).
    let options = PlotModel::default().show_shapes(true).show_layer_names(true);
    let plot = std::env::temp_dir().join("siamese-model.png");
    match plot_model(&model, &plot, &options) {
        Ok(()) => println!("model plot: {}", plot.display()),
        Err(e) => {
            let dot = plot.with_extension("dot");
            plot_model(&model, &dot, &options)?;
            println!("no PNG ({e}); the DOT text is in {}", dot.display());
        }
    }
    let mut model = model.compile(Adam::new(1e-3), "binary_crossentropy", ["accuracy"])?;
    let history =
        model.fit(&[l_train.view(), r_train.view()], &s_train, FitArgs::default().epochs(15).batch_size(64).validation_split(0.1))?;
    println!("validation accuracy by epoch: {:.3?}", &history["val_accuracy"]);
    let logs = model.evaluate(&[l_test.view(), r_test.view()], &s_test)?;
    println!("test pairs: loss {:.4} - accuracy {:.4} (chance 0.5)", logs.loss(), logs["accuracy"]);

    // One pair, as an embedded model would run it: one argument per input.
    let (a, b): ([f32; 64], [f32; 64]) = (l_test.row(0).to_vec().try_into().unwrap(), r_test.row(0).to_vec().try_into().unwrap());
    let p = model.model().predict_one(&a, &b)[0];
    println!("first test pair: same = {}, predicted probability {p:.3}", s_test[0] == 1.0);
    Ok(())
}

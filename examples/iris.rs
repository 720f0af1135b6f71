//! Iris: a 4-8-3 network classifies Fisher's iris flowers (data embedded in keras-rs).
//!
//! `cargo run --release --example iris`

use keras::datasets::iris;
use keras::ndarray::Axis;
use keras::prelude::*;

sequential! {
    /// Four measurements in, three species out.
    struct IrisNet = Dense(8, in = 4, relu) => Dense(3, softmax);
}

fn main() -> keras::Result<()> {
    keras::utils::set_random_seed(7);
    let (x, labels) = iris::load_data();
    // Standardize each feature, as a scikit-learn StandardScaler would.
    let (mean, std) = (x.mean_axis(Axis(0)).expect("150 samples"), x.std_axis(Axis(0), 0.0));
    let x = (&x - &mean) / &std;
    let y = keras::utils::to_categorical(&labels, 3)?;

    let mut model = IrisNet::new(&Cpu::default()).compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"])?;
    model.fit(&x, &y, FitArgs::default().epochs(100).batch_size(16).verbose(0))?;
    let logs = model.evaluate(&x, &y)?;
    println!("training accuracy after 100 epochs: {:.4} (loss {:.4})", logs["accuracy"], logs.loss());
    Ok(())
}

//! Models may take any name: one named `B` (the generated backend parameter's usual name) or
//! after a prelude trait (`Network`, `Model`, `Compile`) builds, trains and predicts; the
//! prelude keeps the traits' methods in scope when a model's name shadows theirs.

use keras::ndarray::Array2;
use keras::prelude::*;

sequential! {
    struct B = Dense(4, in = 3, relu) => Dense(1);
}

sequential! {
    pub struct Network = Dense(2, in = 3) => Dense(1, sigmoid);
}

mod more {
    use keras::prelude::*;
    sequential! {
        pub struct Model = Dense(2, in = 3) => Dense(1);
    }
    functional! {
        pub struct Compile(x: [3]) -> y {
            let y = Dense(1)(x);
        }
    }
}

/// Each model trains, evaluates and predicts through the prelude's traits.
#[test]
fn models_named_like_generated_or_prelude_items_work() {
    let x = Array2::from_shape_fn((8, 3), |(i, j)| (i * 3 + j) as f32 / 24.0);
    let y = Array2::from_shape_fn((8, 1), |(i, _)| (i % 2) as f32);
    let args = || FitArgs::default().epochs(1).verbose(0);

    let model: B = B::new(&Cpu::default());
    assert_eq!(model.count_params(), 21);
    let mut m = model.compile(Sgd::default(), "mse", ["mae"]).unwrap();
    assert_eq!(m.fit(&x, &y, args()).unwrap().loss().len(), 1);
    assert_eq!(m.predict(&x).unwrap().shape(), [8, 1]);

    let mut m = Network::new(&Cpu::default()).compile(Sgd::default(), "binary_crossentropy", ["accuracy"]).unwrap();
    assert!(m.evaluate(&x, &y).unwrap().loss().is_finite());
    assert!(m.model_mut().predict_one(&[0.1, 0.2, 0.3])[0].is_finite());

    let mut m = more::Model::new(&Cpu::default()).compile(Sgd::default(), "mse", ["mae"]).unwrap();
    assert_eq!(m.fit(&x, &y, args()).unwrap().loss().len(), 1);
    let mut m = more::Compile::new(&Cpu::default()).compile(Sgd::default(), "mse", ["mae"]).unwrap();
    assert_eq!(m.fit(&x, &y, args()).unwrap().loss().len(), 1);
}

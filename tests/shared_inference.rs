//! Inference that a server can share: models are `Send + Sync`, `predict`, `predict_on_batch`
//! and `predict_one` take `&self`, and four threads predicting through one `Arc` (each with
//! other batch sizes, at once) get exactly what one thread gets.

use keras::ndarray::Array2;
use keras::prelude::*;
use std::sync::Arc;

sequential! {
    struct Classifier = Dense(32, in = 6, relu) => BatchNormalization() => Dropout(0.5) => Dense(4, softmax);
}

functional! {
    struct Towers(a: [6], b: [3]) -> out {
        let h = Dense(8, tanh)(a);
        let j = Concatenate()(h, b);
        let out = Dense(2)(j);
    }
}

fn shared<T: Send + Sync>() {}

#[test]
fn models_are_send_and_sync() {
    shared::<Classifier>();
    shared::<Towers>();
    shared::<Arc<Classifier>>();
}

#[test]
fn four_threads_share_one_model() {
    keras::utils::set_random_seed(3);
    let mut model = Classifier::new(&Cpu::default()).compile(Adam::default(), "categorical_crossentropy", ["accuracy"]).unwrap();
    let x = Array2::from_shape_fn((203, 6), |(i, j)| ((i * 13 + j * 7) % 29) as f32 / 14.0 - 1.0);
    let y = Array2::from_shape_fn((203, 4), |(i, j)| (i % 4 == j) as u8 as f32);
    // Trained, so that the batch statistics (state) are not the initial ones.
    model.fit(&x, &y, FitArgs::default().epochs(2).verbose(0)).unwrap();
    let model = Arc::new(model.into_inner());
    let want = model.predict(&x).unwrap();
    let one: Vec<[f32; 4]> = (0..x.nrows()).map(|i| model.predict_one(x.row(i).as_slice().unwrap().try_into().unwrap())).collect();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (model, x) = (Arc::clone(&model), x.clone());
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for round in 0..10 {
                    // Threads run other batch sizes at once, in workspaces of their own.
                    let rows = 20 + 37 * ((t + round) % 5);
                    let part = x.slice(keras::ndarray::s![..rows, ..]);
                    got.push((rows, model.predict(&part).unwrap(), model.predict_on_batch(&part).unwrap()));
                }
                got
            })
        })
        .collect();
    for t in threads {
        for (rows, predicted, on_batch) in t.join().unwrap() {
            assert_eq!(predicted, want.slice(keras::ndarray::s![..rows, ..]), "predict in a thread");
            for i in 0..rows {
                for j in 0..4 {
                    assert!((on_batch[[i, j]] - want[[i, j]]).abs() < 1e-6, "predict_on_batch in a thread");
                    assert!((one[i][j] - want[[i, j]]).abs() < 1e-6, "predict_one");
                }
            }
        }
    }
}

#[test]
fn a_functional_model_predicts_on_shared_references() {
    keras::utils::set_random_seed(4);
    let model = Towers::new(&Cpu::default());
    let a = Array2::from_shape_fn((10, 6), |(i, j)| (i + j) as f32 / 10.0);
    let b = Array2::from_shape_fn((10, 3), |(i, j)| (i * j) as f32 / 30.0);
    let reference = &model;
    let want = reference.predict(&[a.view(), b.view()]).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| reference.predict(&[a.view(), b.view()]).unwrap())).collect();
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
    });
}

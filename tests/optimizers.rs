//! Optimizers and learning-rate schedules against real Keras 3: schedules evaluated step by step
//! (`schedules.json`, from `tests/fixtures/gen_schedules.py`), Keras 2's SGD decay, and the
//! optimizers' API: names, validation, learning-rate control and state export. Every optimizer
//! fixture (`A_opt_*`, `S_opt_*`, `S_sched_*`) trains on every backend in the conformance suite
//! (`tests/conformance/`, the list in `tests/models/basic.rs`).

mod common;
#[path = "models/basic.rs"]
mod models;

use common::{Fixture, learning_rate_of};
use keras::optimizers::*;
use keras::prelude::*;
use models::Softmax3;

const RTOL: f64 = 1e-5;

/// Keras 2's `SGD(0.1, momentum=0.9, decay=0.5)` is Keras 3's SGD on `InverseTimeDecay(0.1, 1, 0.5)`.
#[test]
fn sgd_legacy_decay_matches_the_keras_inverse_time_schedule() {
    let f = Fixture::load("S_sched_sgd_inverse_time");
    let mut model = Softmax3::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let mut model = model.compile(Sgd::new(0.1).momentum(0.9).decay(0.5), "categorical_crossentropy", [Metric::Accuracy; 0]).unwrap();
    let history = model
        .fit(&f.tensor("x"), &f.tensor("y"), FitArgs::default().epochs(f.usize(&["fit", "epochs"])).batch_size(4).shuffle(false).verbose(0))
        .unwrap();
    let worst = common::assert_close("legacy decay history.loss", history.loss(), &f.history_loss(), RTOL).max(common::assert_all_close(
        "legacy decay weights_after",
        &model.get_weights().unwrap(),
        &f.weights("weights_after"),
        RTOL,
    ));
    eprintln!("S_sched_sgd_inverse_time (Sgd::decay): worst relative error {worst:.2e}");

    // Callbacks read and set the base rate, as in Keras 2: a scheduler that keeps the rate it is
    // given changes nothing, and the decay still applies.
    let mut model = Softmax3::new(&Cpu::default());
    model.set_weights(&f.weights("weights_init")).unwrap();
    let mut model = model.compile(Sgd::new(0.1).momentum(0.9).decay(0.5), "categorical_crossentropy", [Metric::Accuracy; 0]).unwrap();
    let mut keep = keras::callbacks::LearningRateScheduler::new(|_, lr| lr);
    let args = FitArgs::default().epochs(f.usize(&["fit", "epochs"])).batch_size(4).shuffle(false).verbose(0).callback(&mut keep);
    let with_callback = model.fit(&f.tensor("x"), &f.tensor("y"), args).unwrap();
    assert_eq!(with_callback.loss(), history.loss());
    assert!(with_callback["learning_rate"].iter().all(|&lr| lr == 0.1), "{:?}", &with_callback["learning_rate"]);
}

#[test]
fn schedules_match_keras_step_by_step() {
    let f = Fixture::load("schedules");
    for case in f.value("cases").as_array().unwrap() {
        let lr = learning_rate_of(case);
        let name = case["name"].as_str().unwrap();
        let steps = case["steps"].as_array().unwrap();
        let values = case["values"].as_array().unwrap();
        let mut worst = 0.0f64;
        for (step, want) in steps.iter().zip(values) {
            let (step, want) = (step.as_u64().unwrap(), want.as_f64().unwrap() as f32);
            let got = lr.at(step);
            let err = ((got - want).abs() / want.abs().max(1e-12)) as f64;
            assert!(err <= 1e-6, "{name} at step {step}: {got} vs Keras {want}");
            worst = worst.max(err);
        }
        eprintln!("schedule {name}: worst relative error {worst:.2e}");
    }
}

#[test]
fn every_keras_name_compiles_and_trains() {
    let x = keras::ndarray::Array2::from_shape_fn((8, 4), |(i, j)| ((i * 3 + j) % 5) as f32 / 5.0);
    let y = keras::ndarray::Array2::from_shape_fn((8, 3), |(i, j)| (i % 3 == j) as u8 as f32);
    for name in ["sgd", "rmsprop", "adagrad", "adadelta", "adam", "adamw", "adamax", "nadam", "lion", "ftrl"] {
        let mut model = Softmax3::new(&Cpu::default()).compile(name, "categorical_crossentropy", [Metric::Accuracy; 0]).unwrap();
        assert_eq!(model.optimizer().name(), name);
        let before = model.get_weights().unwrap();
        let loss = model.train_on_batch(&x, &y).unwrap().loss();
        assert!(loss.is_finite(), "{name}");
        assert_ne!(model.get_weights().unwrap(), before, "{name} changed no weight");
        assert_eq!(model.optimizer().iterations(), 1);
    }
}

fn compile_err(opt: impl IntoOptimizer) -> String {
    Softmax3::new(&Cpu::default()).compile(opt, "mse", [Metric::Accuracy; 0]).err().expect("an error").to_string()
}

#[test]
fn bad_settings_are_named_at_compile() {
    assert_eq!(compile_err(RmsProp::default().rho(1.0)), "RmsProp rho: expected a finite number in (0, 1), found 1");
    assert_eq!(compile_err(Adagrad::default().epsilon(0.0)), "Adagrad epsilon: expected a finite number in (0, inf), found 0");
    assert_eq!(compile_err(Nadam::new(-1.0)), "Nadam learning_rate: expected a finite number in [0, inf), found -1");
    assert_eq!(compile_err(Lion::default().beta_2(1.5)), "Lion beta_2: expected a finite number in [0, 1], found 1.5");
    assert_eq!(
        compile_err(Ftrl::default().learning_rate_power(0.5)),
        "Ftrl learning_rate_power: expected a finite number in (-inf, 0], found 0.5"
    );
    assert_eq!(compile_err(Adam::default().weight_decay(-0.1)), "Adam weight_decay: expected a finite number in [0, inf), found -0.1");
    assert_eq!(compile_err(Sgd::default().clipnorm(0.0)), "Sgd clipnorm: expected a finite number in (0, inf), found 0");
    assert_eq!(
        compile_err(Adamax::default().clipnorm(1.0).clipvalue(0.5)),
        "Adamax: only one of clipnorm, clipvalue and global_clipnorm can be set, found clipnorm = 1 and clipvalue = 0.5"
    );
    assert!(compile_err(Sgd::new(ExponentialDecay::new(0.1, 0, 0.9))).starts_with("ExponentialDecay decay_steps"));
    assert!(compile_err(Sgd::new(PiecewiseConstantDecay::new([10, 5], [1.0, 0.5, 0.1]))).starts_with("PiecewiseConstantDecay boundaries"));
    assert!(compile_err("adamw2").contains("sgd, rmsprop, adagrad, adadelta, adam, adamw, adamax, nadam, lion, ftrl"));
}

#[test]
fn learning_rate_is_settable_unless_it_is_a_schedule() {
    let mut model = Softmax3::new(&Cpu::default()).compile(Adam::new(0.01), "mse", [Metric::Accuracy; 0]).unwrap();
    assert_eq!(model.optimizer().learning_rate(), 0.01);
    keras::Control::set_learning_rate(&mut model, 0.5).unwrap();
    assert_eq!(keras::Control::learning_rate(&model), 0.5);

    let schedule = PiecewiseConstantDecay::new([0], [0.3, 0.1]);
    let mut model = Softmax3::new(&Cpu::default()).compile(Sgd::new(schedule), "mse", [Metric::Accuracy; 0]).unwrap();
    assert_eq!(model.optimizer().learning_rate(), 0.3);
    let err = keras::Control::set_learning_rate(&mut model, 0.5).unwrap_err().to_string();
    assert!(err.contains("schedule"), "{err}");
    let x = keras::ndarray::Array2::<f32>::zeros((2, 4));
    let y = keras::ndarray::Array2::<f32>::zeros((2, 3));
    model.train_on_batch(&x, &y).unwrap();
    assert_eq!(model.optimizer().learning_rate(), 0.1, "the schedule is evaluated at the iteration count");
}

/// Exported state restores an optimizer exactly: training on from a restored copy gives the
/// same weights as training on from the original.
#[test]
fn optimizer_variables_round_trip() {
    let x = keras::ndarray::Array2::from_shape_fn((8, 4), |(i, j)| ((i * 7 + j) % 5) as f32 / 5.0 - 0.3);
    let y = keras::ndarray::Array2::from_shape_fn((8, 3), |(i, j)| (i % 3 == j) as u8 as f32);
    let dev = Cpu::default();
    let make = |name: &str, m: Softmax3| -> keras::Compiled<Softmax3> {
        let loss = "categorical_crossentropy";
        match name {
            "nadam" => m.compile(Nadam::new(0.01), loss, [Metric::Accuracy; 0]),
            "rmsprop" => m.compile(RmsProp::new(0.01).momentum(0.5).centered(true), loss, [Metric::Accuracy; 0]),
            _ => m.compile(Ftrl::new(0.1).l1_regularization_strength(0.01), loss, [Metric::Accuracy; 0]),
        }
        .unwrap()
    };
    for name in ["nadam", "rmsprop", "ftrl"] {
        keras::utils::set_random_seed(3);
        let mut a = make(name, Softmax3::new(&dev));
        for _ in 0..3 {
            a.train_on_batch(&x, &y).unwrap();
        }
        let vars = a.optimizer().variables(&dev).unwrap();
        assert_eq!(vars[0], ("iterations".to_string(), vec![3.0]), "{name}");
        let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        match name {
            "nadam" => assert_eq!(names, ["iterations", "u_product", "momentum", "velocity"]),
            "rmsprop" => assert_eq!(names, ["iterations", "velocity", "momentum", "average_gradient"]),
            _ => assert_eq!(names, ["iterations", "accumulator", "linear"]),
        }
        let mut b = make(name, Softmax3::new(&dev));
        b.set_weights(&a.get_weights().unwrap()).unwrap();
        b.optimizer_mut().set_variables(&dev, &vars).unwrap();
        assert_eq!(b.optimizer().variables(&dev).unwrap(), vars);
        for _ in 0..2 {
            a.train_on_batch(&x, &y).unwrap();
            b.train_on_batch(&x, &y).unwrap();
        }
        assert_eq!(a.get_weights().unwrap(), b.get_weights().unwrap(), "{name}");
        assert_eq!(b.optimizer().iterations(), 5);
        let err =
            b.optimizer_mut().set_variables(&dev, &[("iterations".to_string(), vec![1.0]), ("bogus".to_string(), vec![])]).unwrap_err();
        assert!(err.to_string().contains("unknown `bogus`"), "{err}");
    }
}

//! Save, reload in another process, predict: the test binary re-executes itself with
//! `KERAS_CROSS_PROCESS_DIR` set, and that second process loads the files the first saved
//! (safetensors weights and a `.keras` archive) into fresh models and writes their predictions,
//! which must be bit-identical to the first process's.

use keras::ndarray::Array2;
use keras::prelude::*;
use std::path::Path;
use std::process::Command;

sequential! { struct Classifier = Input(4) => Dense(8, relu) => Dense(3, softmax); }

const CHILD_ENV: &str = "KERAS_CROSS_PROCESS_DIR";

/// Four features, three classes, 48 samples.
fn data() -> (Array2<f32>, Array2<f32>) {
    let x = Array2::from_shape_fn((48, 4), |(i, j)| ((i * 5 + j * 11) % 13) as f32 / 6.0 - 1.0);
    let y = Array2::from_shape_fn((48, 3), |(i, k)| f32::from(u8::from((i * 5 % 13 + i % 3) % 3 == k)));
    (x, y)
}

fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|v| v.to_bits()).collect()
}

fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("the second process wrote no {}: {e}", path.display()));
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The second process: fresh models (from another seed), the saved files, predictions.
fn child(dir: &Path) {
    keras::utils::set_random_seed(999);
    let (x, _) = data();
    let mut from_weights = Classifier::new(&Cpu::default());
    from_weights.load_weights(dir.join("model.safetensors")).unwrap();
    write_f32(&dir.join("weights.f32"), from_weights.predict(&x).unwrap().as_slice().unwrap());
    let mut from_keras = Classifier::new(&Cpu::default());
    from_keras.load_keras(dir.join("model.keras")).unwrap();
    write_f32(&dir.join("keras.f32"), from_keras.predict(&x).unwrap().as_slice().unwrap());
}

#[test]
fn predictions_survive_a_save_and_a_reload_in_another_process() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let dir = std::env::temp_dir().join(format!("keras-cross-process-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();

    keras::utils::set_random_seed(3);
    let (x, y) = data();
    let mut model = Classifier::new(&Cpu::default()).compile(Adam::new(0.01), "categorical_crossentropy", ["accuracy"]).unwrap();
    model.fit(&x, &y, FitArgs::default().epochs(20).batch_size(16).verbose(0)).unwrap();
    let ours = model.predict(&x).unwrap();
    model.save_weights(dir.join("model.safetensors")).unwrap();
    model.save_keras(dir.join("model.keras")).unwrap();

    // The comparison means something: an untrained model predicts otherwise.
    keras::utils::set_random_seed(999);
    let fresh = Classifier::new(&Cpu::default()).predict(&x).unwrap();
    assert_ne!(bits(fresh.as_slice().unwrap()), bits(ours.as_slice().unwrap()));

    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "predictions_survive_a_save_and_a_reload_in_another_process", "--test-threads=1", "--nocapture"])
        .env(CHILD_ENV, &dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the second process failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for file in ["weights.f32", "keras.f32"] {
        let theirs = read_f32(&dir.join(file));
        assert_eq!(bits(&theirs), bits(ours.as_slice().unwrap()), "{file}: the second process predicts otherwise");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

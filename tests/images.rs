//! Images in: `keras::utils::load_img` and `img_to_array` against Keras's own (Pillow) on the
//! files of `tests/fixtures/gen_images.py`: every color mode, at the file's size and resized up and
//! down with the nearest and bilinear filters. PNG pixels are equal to Keras's; JPEG decoders
//! may round a level apart (libjpeg's and the `image` crate's inverse DCTs).

use keras::utils::{ColorMode, Interpolation, LoadImg, img_to_array, load_img};
use serde_json::Value;

fn fixtures() -> String {
    format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn load_img_is_keras_load_img() {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(format!("{}/images.json", fixtures())).unwrap()).unwrap();
    let cases = json["cases"].as_array().unwrap();
    assert!(cases.len() >= 100);
    for case in cases {
        let file = case["file"].as_str().unwrap();
        let mode = match case["color_mode"].as_str().unwrap() {
            "rgb" => ColorMode::Rgb,
            "rgba" => ColorMode::Rgba,
            _ => ColorMode::Grayscale,
        };
        let interpolation = if case["interpolation"] == "bilinear" { Interpolation::Bilinear } else { Interpolation::Nearest };
        let mut args = LoadImg::default().color_mode(mode).interpolation(interpolation);
        if let Some(t) = case["target_size"].as_array() {
            args = args.target_size(t[0].as_u64().unwrap() as usize, t[1].as_u64().unwrap() as usize);
        }
        let what = format!("{file} {mode:?} {:?} {interpolation:?}", args.target_size);
        let got = img_to_array(&load_img(format!("{}/images/{file}", fixtures()), args).unwrap());
        let shape: Vec<usize> = case["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(got.shape(), &shape[..], "{what}");
        let want: Vec<f32> = case["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let tolerance = if file.ends_with(".jpg") { 2.0 } else { 0.0 };
        assert!(worst <= tolerance, "{what}: values differ from Keras's by up to {worst}");
    }
}

#[test]
fn bad_files_are_errors_naming_them() {
    let dir = std::env::temp_dir().join(format!("keras-rs-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.png");
    let e = load_img(&missing, LoadImg::default()).unwrap_err().to_string();
    assert!(e.contains("missing.png") && e.contains("No such file"), "{e}");
    let png = std::fs::read(format!("{}/images/rgb.png", fixtures())).unwrap();
    let damaged = dir.join("damaged.png");
    std::fs::write(&damaged, &png[..png.len() / 2]).unwrap();
    let e = load_img(&damaged, LoadImg::default()).unwrap_err().to_string();
    assert!(e.contains("damaged.png") && e.contains("not an image keras-rs can read"), "{e}");
    let text = dir.join("notes.png");
    std::fs::write(&text, "not an image").unwrap();
    assert!(load_img(&text, LoadImg::default()).unwrap_err().to_string().contains("notes.png"));
    let e = load_img(format!("{}/images/rgb.png", fixtures()), LoadImg::default().target_size(0, 4)).unwrap_err().to_string();
    assert!(e.contains("target_size") && e.contains("(0, 4)"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

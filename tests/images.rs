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

mod directory {
    use super::fixtures;
    use keras::datasets::{Dataset, ImageDirectory, LabelMode, Resize, Subset, image_dataset_from_directory, resize};
    use keras::prelude::*;
    use keras::utils::{Image, LoadImg, load_img};
    use std::path::PathBuf;

    /// `birds/` (2 images, one in a nested folder), `cats/` (3, and a text file that is no
    /// image), `dogs/` (1): classes in name order, 6 images.
    fn tree(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("keras-rs-image-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let copy = |from: &str, to: &str| {
            let to = root.join(to);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(format!("{}/images/{from}", fixtures()), to).unwrap();
        };
        copy("rgb.png", "cats/c1.png");
        copy("gray.png", "cats/c0.PNG");
        copy("smooth.jpg", "cats/c2.jpg");
        copy("rgba.png", "dogs/d0.png");
        copy("palette.png", "birds/nested/b1.png");
        copy("rgb.png", "birds/b0.png");
        std::fs::write(root.join("cats/notes.txt"), "not an image").unwrap();
        root
    }

    #[test]
    fn classes_files_labels_and_batches_are_keras_s() {
        let root = tree("plain");
        let args = ImageDirectory { batch_size: 4, image_size: (6, 8), shuffle: false, ..Default::default() };
        let mut ds = image_dataset_from_directory(&root, args).unwrap();
        assert_eq!(ds.class_names(), ["birds", "cats", "dogs"]);
        let names: Vec<String> = ds.file_paths().iter().map(|p| p.strip_prefix(&root).unwrap().display().to_string()).collect();
        assert_eq!(names, ["birds/b0.png", "birds/nested/b1.png", "cats/c0.PNG", "cats/c1.png", "cats/c2.jpg", "dogs/d0.png"]);
        assert_eq!(ds.labels(), [0, 0, 1, 1, 1, 2]);
        assert_eq!(ds.len(), 2);
        let first = ds.get(0).unwrap();
        assert_eq!(first.x[0].shape(), [4, 6, 8, 3]);
        assert_eq!(first.y.as_ref().unwrap().as_slice().unwrap(), [0.0, 0.0, 1.0, 1.0]);
        let last = ds.get(1).unwrap();
        assert_eq!(last.x[0].shape(), [2, 6, 8, 3]);
        // Each image is load_img's, resized as TensorFlow resizes.
        let img = load_img(root.join("cats/c2.jpg"), LoadImg::default()).unwrap();
        let want = resize(&img, 6, 8, Resize::Bilinear);
        assert_eq!(last.x[0].as_slice().unwrap()[..6 * 8 * 3], want[..]);
        let categorical = ImageDirectory { batch_size: 6, label_mode: LabelMode::Categorical, shuffle: false, ..Default::default() };
        let y = image_dataset_from_directory(&root, categorical).unwrap().get(0).unwrap().y.unwrap();
        assert_eq!(y.shape(), [6, 3]);
        assert_eq!(y.as_slice().unwrap()[15..], [0.0, 0.0, 1.0]);
        let unlabeled = ImageDirectory { label_mode: LabelMode::None, image_size: (4, 4), ..Default::default() };
        assert!(image_dataset_from_directory(&root, unlabeled).unwrap().get(0).unwrap().y.is_none());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn shuffles_split_and_mistakes() {
        let root = tree("split");
        let args = |subset| ImageDirectory {
            seed: Some(7),
            validation_split: Some(0.34),
            subset: Some(subset),
            image_size: (4, 4),
            ..Default::default()
        };
        let train = image_dataset_from_directory(&root, args(Subset::Training)).unwrap();
        let val = image_dataset_from_directory(&root, args(Subset::Validation)).unwrap();
        assert_eq!((train.file_paths().len(), val.file_paths().len()), (4, 2), "int(0.34 * 6) = 2 held out");
        let mut all: Vec<PathBuf> = train.file_paths().iter().chain(val.file_paths()).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 6, "the subsets are disjoint and cover every file");
        let again = image_dataset_from_directory(&root, args(Subset::Training)).unwrap();
        assert_eq!(again.file_paths(), train.file_paths(), "the same seed, the same order");
        let e = image_dataset_from_directory(
            &root,
            ImageDirectory { validation_split: Some(0.2), subset: Some(Subset::Training), ..Default::default() },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("needs a seed"), "{e}");
        let e = image_dataset_from_directory(&root, ImageDirectory { label_mode: LabelMode::Binary, ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly 2 classes") && e.contains("3"), "{e}");
        let e = image_dataset_from_directory(
            &root,
            ImageDirectory { class_names: Some(vec!["cats".into(), "fish".into()]), ..Default::default() },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("\"fish\""), "{e}");
        let empty = root.join("cats/nested-empty");
        std::fs::create_dir_all(&empty).unwrap();
        let e = image_dataset_from_directory(&empty, ImageDirectory::default()).unwrap_err().to_string();
        assert!(e.contains("none"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// TensorFlow's resize, half-pixel centers: the same size is the image, an exact halving
    /// by bilinear is the mean of each 2x2 block, a one-pixel image is constant, nearest keeps
    /// pixel values.
    #[test]
    fn resize_is_tensorflow_s() {
        let img = Image { height: 4, width: 6, channels: 1, pixels: (0..24).map(|v| (v * 10) as u8).collect() };
        assert_eq!(resize(&img, 4, 6, Resize::Bilinear), img.pixels.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let half = resize(&img, 2, 3, Resize::Bilinear);
        let px = |y: usize, x: usize| img.pixels[y * 6 + x] as f32;
        let want: Vec<f32> = (0..2)
            .flat_map(|y| (0..3).map(move |x| (y, x)))
            .map(|(y, x)| (px(2 * y, 2 * x) + px(2 * y, 2 * x + 1) + px(2 * y + 1, 2 * x) + px(2 * y + 1, 2 * x + 1)) / 4.0)
            .collect();
        assert_eq!(half, want);
        let dot = Image { height: 1, width: 1, channels: 3, pixels: vec![10, 20, 30] };
        assert_eq!(resize(&dot, 2, 3, Resize::Bilinear), [10.0, 20.0, 30.0].repeat(6));
        let near = resize(&img, 3, 5, Resize::Nearest);
        assert!(near.iter().all(|v| img.pixels.contains(&(*v as u8))));
    }

    /// A small CNN trains on a directory through `fit_dataset`.
    #[test]
    fn fit_dataset_trains_on_a_directory() {
        sequential! {
            struct Tiny = Input((8, 8, 3)) => Rescaling(1.0 / 255.0) => Conv2D(2, 3, relu) => Flatten() => Dense(3, softmax);
        }
        let root = tree("fit");
        let mut ds =
            image_dataset_from_directory(&root, ImageDirectory { batch_size: 3, image_size: (8, 8), seed: Some(1), ..Default::default() })
                .unwrap();
        keras::utils::set_random_seed(3);
        let mut model = Tiny::new(&Cpu::default()).compile(Adam::new(0.05), "sparse_categorical_crossentropy", ["accuracy"]).unwrap();
        let h = model.fit_dataset(&mut ds, FitArgs::default().epochs(15).verbose(0)).unwrap();
        assert!(h.loss()[14] < h.loss()[0], "{:?}", h.loss());
        std::fs::remove_dir_all(&root).unwrap();
    }
}

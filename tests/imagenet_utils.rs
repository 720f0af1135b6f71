//! `keras::applications::imagenet_utils`: `preprocess_input` against Keras's own in the three
//! modes (fixtures from `tests/fixtures/gen_imagenet_utils.py`: a batch, one image and a 2-D
//! array of pixels, and the batch through ResNet50's, MobileNetV2's and DenseNet121's
//! `preprocess_input`), within 1e-6 relative; `decode_predictions` and the built-in class table.
//!
//! Keras's `decode_predictions` downloads its class table (`imagenet_class_index.json`), which
//! cannot be done here, so it is not run: the ranking is checked by its definition (the `top`
//! highest scores, highest first) and the table by known classes, its size and its ids.

use keras::Error;
use keras::applications::imagenet_utils::{IMAGENET_CLASSES, Mode, Prediction, decode_predictions, preprocess_input};
use keras::ndarray::{Array2, ArrayD, Axis, Ix4, IxDyn, arr0};
use serde_json::Value;

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/imagenet_utils.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn tensor(v: &Value) -> ArrayD<f32> {
    let shape: Vec<usize> = v["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data = v["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
    ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap()
}

fn mode(name: &str) -> Mode {
    match name {
        "caffe" => Mode::Caffe,
        "tf" => Mode::Tf,
        "torch" => Mode::Torch,
        other => panic!("unknown mode {other}"),
    }
}

fn assert_close(got: &ArrayD<f32>, want: &ArrayD<f32>, what: &str) {
    assert_eq!(got.shape(), want.shape(), "{what}");
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{what}: value {i} is {a}, Keras's {b}");
    }
}

#[test]
fn preprocess_input_is_keras_preprocess_input() {
    let f = fixture();
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let x = tensor(&case["x"]);
        for (m, want) in case["outputs"].as_object().unwrap() {
            let mut got = x.clone();
            preprocess_input(&mut got, mode(m)).unwrap();
            assert_close(&got, &tensor(want), &format!("{name} {m}"));
        }
        if let Some(apps) = case["applications"].as_object() {
            assert_eq!(apps.len(), 3);
            for (app, v) in apps {
                let mut got = x.clone();
                preprocess_input(&mut got, mode(v["mode"].as_str().unwrap())).unwrap();
                assert_close(&got, &tensor(&v["output"]), &format!("{name} through {app}.preprocess_input"));
            }
        }
    }
}

/// Fixed-rank arrays and views are scaled in place as dynamic ones are.
#[test]
fn preprocess_input_takes_any_dimension_and_views() {
    let f = fixture();
    let batch = &f["cases"][0];
    let x = tensor(&batch["x"]).into_dimensionality::<Ix4>().unwrap();
    let want = tensor(&batch["outputs"]["caffe"]);
    let mut fixed = x.clone();
    preprocess_input(&mut fixed, Mode::Caffe).unwrap();
    assert_close(&fixed.into_dyn(), &want, "Array4 caffe");
    // The second image only, through a mutable view of the batch.
    let mut whole = x.clone();
    let mut second = whole.index_axis_mut(Axis(0), 1);
    preprocess_input(&mut second, Mode::Caffe).unwrap();
    assert_eq!(whole.index_axis(Axis(0), 0), x.index_axis(Axis(0), 0), "the first image is untouched");
    assert_close(&whole.index_axis(Axis(0), 1).to_owned().into_dyn(), &want.index_axis(Axis(0), 1).to_owned(), "view");
}

#[test]
fn caffe_and_torch_need_three_channels() {
    for m in [Mode::Caffe, Mode::Torch] {
        let mut x = ArrayD::<f32>::from_elem(IxDyn(&[2, 3, 4, 4]), 10.0);
        let e = preprocess_input(&mut x, m).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("(2, 3, 4, 4)") && e.contains("(..., 3)"), "{e}");
        assert!(x.iter().all(|&v| v == 10.0), "a refused array is unchanged");
        let mut scalar = arr0(5.0f32);
        let e = preprocess_input(&mut scalar, m).unwrap_err().to_string();
        assert!(e.contains("found ()"), "{e}");
    }
    // tf scales every value alike: any shape.
    let mut x = ArrayD::<f32>::from_elem(IxDyn(&[2, 5]), 255.0);
    preprocess_input(&mut x, Mode::Tf).unwrap();
    assert!(x.iter().all(|&v| v == 1.0));
}

#[test]
fn an_empty_batch_is_accepted() {
    for m in [Mode::Caffe, Mode::Tf, Mode::Torch] {
        let mut x = ArrayD::<f32>::zeros(IxDyn(&[0, 224, 224, 3]));
        preprocess_input(&mut x, m).unwrap();
        assert_eq!(x.shape(), &[0, 224, 224, 3]);
    }
    let mut none = Array2::<f32>::zeros((0, 3));
    preprocess_input(&mut none, Mode::Torch).unwrap();
}

fn scores(rows: &[&[(usize, f32)]]) -> Array2<f32> {
    let mut s = Array2::zeros((rows.len(), 1000));
    for (r, row) in rows.iter().enumerate() {
        for &(i, v) in *row {
            s[[r, i]] = v;
        }
    }
    s
}

#[test]
fn a_one_hot_row_gives_its_class() {
    for class in [0, 2, 134, 281, 517, 999] {
        let p = decode_predictions(scores(&[&[(class, 1.0)]]).view(), 1).unwrap();
        let (id, name) = IMAGENET_CLASSES[class];
        assert_eq!(p, vec![vec![Prediction { class_id: id, name, score: 1.0 }]]);
    }
}

#[test]
fn predictions_are_highest_first_ties_by_lower_index() {
    let s = scores(&[&[(281, 0.5), (285, 0.3), (7, 0.1), (900, 0.1)], &[(999, 0.9), (10, -1.0)]]);
    let p = decode_predictions(s.view(), 5).unwrap();
    assert_eq!(p.len(), 2);
    let names: Vec<&str> = p[0].iter().map(|p| p.name).collect();
    // 281 tabby, 285 Egyptian_cat, then the two 0.1 (7 before 900), then the first of the zeros.
    assert_eq!(names, ["tabby", "Egyptian_cat", "cock", IMAGENET_CLASSES[900].1, "tench"]);
    assert_eq!(p[0].iter().map(|p| p.score).collect::<Vec<_>>(), [0.5, 0.3, 0.1, 0.1, 0.0]);
    assert_eq!(p[1][0], Prediction { class_id: "n15075141", name: "toilet_tissue", score: 0.9 });
    // Zeros from index 0 on; the negative score is last of all.
    assert_eq!(
        p[1][1..].iter().map(|p| p.class_id).collect::<Vec<_>>(),
        [IMAGENET_CLASSES[0].0, IMAGENET_CLASSES[1].0, IMAGENET_CLASSES[2].0, IMAGENET_CLASSES[3].0]
    );
    let all = decode_predictions(s.view(), 5000).unwrap();
    assert_eq!(all[1].len(), 1000, "top over 1000 gives 1000");
    assert_eq!(all[1][999].name, IMAGENET_CLASSES[10].1);
    assert!(all[0].windows(2).all(|w| w[0].score >= w[1].score));
    assert_eq!(decode_predictions(s.view(), 0).unwrap(), vec![Vec::<Prediction>::new(); 2]);
    assert!(decode_predictions(Array2::<f32>::zeros((0, 1000)).view(), 5).unwrap().is_empty());
}

#[test]
fn a_nan_score_ranks_first_as_numpy_sorts_it() {
    let s = scores(&[&[(3, f32::NAN), (4, 0.7)]]);
    let p = decode_predictions(s.view(), 2).unwrap();
    assert_eq!(p[0][0].class_id, IMAGENET_CLASSES[3].0);
    assert!(p[0][0].score.is_nan());
    assert_eq!(p[0][1].name, IMAGENET_CLASSES[4].1);
}

#[test]
fn a_row_not_1000_long_is_an_error() {
    for shape in [(2, 999), (1, 1001), (3, 0)] {
        let e = decode_predictions(Array2::<f32>::zeros(shape).view(), 5).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.starts_with("decode_predictions preds"), "{e}");
        assert!(e.contains("(samples, 1000)") && e.contains(&format!("found ({}, {})", shape.0, shape.1)), "{e}");
    }
}

#[test]
fn the_class_table_is_keras_s() {
    assert_eq!(IMAGENET_CLASSES.len(), 1000);
    for (i, id, name) in [
        (0, "n01440764", "tench"),
        (1, "n01443537", "goldfish"),
        (2, "n01484850", "great_white_shark"),
        (134, "n02012849", "crane"),
        (248, "n02109961", "Eskimo_dog"),
        (281, "n02123045", "tabby"),
        (285, "n02124075", "Egyptian_cat"),
        (517, "n03126707", "crane"),
        (607, "n03590841", "jack-o'-lantern"),
        (638, "n03710637", "maillot"),
        (639, "n03710721", "maillot"),
        (836, "n04355933", "sunglass"),
        (837, "n04356056", "sunglasses"),
        (999, "n15075141", "toilet_tissue"),
    ] {
        assert_eq!(IMAGENET_CLASSES[i], (id, name), "class {i}");
    }
    let mut ids: Vec<&str> = IMAGENET_CLASSES.iter().map(|c| c.0).collect();
    assert!(ids.iter().all(|id| id.len() == 9 && id.starts_with('n') && id[1..].bytes().all(|b| b.is_ascii_digit())));
    // ImageNet orders its classes by WordNet id.
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids are sorted, hence distinct");
    ids.dedup();
    assert_eq!(ids.len(), 1000);
    assert!(IMAGENET_CLASSES.iter().all(|c| !c.1.is_empty() && !c.1.contains(' ')));
}

//! Classifies an image with ResNet50, as Keras's applications tutorial does:
//!
//! ```text
//! cargo run --release --example classify -- image.jpg [resnet50_weights_tf_dim_ordering_tf_kernels.h5]
//! ```
//!
//! The weights are Keras's own file: the one given, else Keras's cache
//! (`~/.keras/models/resnet50_weights_tf_dim_ordering_tf_kernels.h5`, where Python Keras keeps
//! it), else random weights with a warning (the top 5 are then meaningless). Nothing is
//! downloaded.

use keras::applications::{decode_predictions, resnet50};
use keras::ndarray::Axis;
use keras::prelude::*;
use keras::utils::{LoadImg, img_to_array, load_img};

keras::application! {
    /// Keras's `ResNet50()`: 224x224 RGB images, the 1000 ImageNet classes.
    struct ResNet50 = ResNet50();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(image) = args.first() else {
        eprintln!("usage: classify IMAGE [WEIGHTS.h5]");
        std::process::exit(2);
    };
    let device = Cpu::default();
    let model = match args.get(1) {
        Some(weights) => {
            let mut model = ResNet50::try_new(&device)?;
            model.load_keras(weights)?;
            model
        }
        None => match ResNet50::from_keras_cache(&device) {
            Ok(model) => model,
            Err(e) => {
                eprintln!("warning: random weights, the classes below mean nothing ({e})");
                ResNet50::try_new(&device)?
            }
        },
    };

    // img = keras.utils.load_img(path, target_size=(224, 224)); x = img_to_array(img)
    let img = load_img(image, LoadImg::default().target_size(224, 224))?;
    let mut x = img_to_array(&img).insert_axis(Axis(0));
    resnet50::preprocess_input(&mut x)?;

    let preds = model.predict(&x)?;
    let preds = preds.into_shape_with_order((1, 1000))?;
    println!("Predicted:");
    for (rank, p) in decode_predictions(preds.view(), 5)?[0].iter().enumerate() {
        println!("{}. {} ({}): {:.4}", rank + 1, p.name, p.class_id, p.score);
    }
    Ok(())
}

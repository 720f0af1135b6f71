//! `image_dataset_from_directory`: a directory of images by class as a [`Dataset`], read batch by
//! batch, as Keras's `keras.utils.image_dataset_from_directory`.

use super::{DataBatch, Dataset};
use crate::io::img::{ColorMode, Image, LoadImg, load_img};
use crate::random::{Rng, next_seed};
use crate::{Error, Result};
use ndarray::{Array1, Array2, Array4, ArrayD};
use std::path::{Path, PathBuf};

/// How the labels come, as Keras's `label_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelMode {
    /// The class index, `(batch,)` (`"int"`, the default): for `sparse_categorical_crossentropy`.
    #[default]
    Int,
    /// One-hot, `(batch, classes)` (`"categorical"`).
    Categorical,
    /// 0 or 1, `(batch, 1)`, for exactly two classes (`"binary"`).
    Binary,
    /// No labels (`None`): batches of images alone, for `predict`.
    None,
}

/// Which part of a split the dataset is, as Keras's `subset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subset {
    /// All but the last `validation_split` of the (shuffled) files.
    Training,
    /// The last `validation_split` of them.
    Validation,
}

/// How images are resized to `image_size`, as Keras's `interpolation` here (TensorFlow's
/// `tf.image.resize`, half-pixel centers, no antialiasing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Resize {
    /// Linear between the four nearest pixels (`"bilinear"`, the default).
    #[default]
    Bilinear,
    /// The nearest pixel (`"nearest"`).
    Nearest,
}

/// `image_dataset_from_directory`'s options, Keras's keyword arguments and defaults.
#[derive(Clone, Debug)]
pub struct ImageDirectory {
    /// Images per batch (32).
    pub batch_size: usize,
    /// `(height, width)` every image is resized to ((256, 256)).
    pub image_size: (usize, usize),
    /// The labels.
    pub label_mode: LabelMode,
    /// The classes, in label order: the subdirectories to read (default: every subdirectory,
    /// sorted by name).
    pub class_names: Option<Vec<String>>,
    /// The channels.
    pub color_mode: ColorMode,
    /// Whether the files are shuffled (once, with `seed`; `fit_dataset`'s `shuffle` then
    /// shuffles the batch order every epoch).
    pub shuffle: bool,
    /// The shuffle's seed (a fresh one from `set_random_seed`'s stream when `None`).
    pub seed: Option<u64>,
    /// The fraction of files held out for validation, with `subset`.
    pub validation_split: Option<f32>,
    /// Which side of the split this dataset is.
    pub subset: Option<Subset>,
    /// The resize's filter.
    pub interpolation: Resize,
}

impl Default for ImageDirectory {
    fn default() -> Self {
        ImageDirectory {
            batch_size: 32,
            image_size: (256, 256),
            label_mode: LabelMode::Int,
            class_names: None,
            color_mode: ColorMode::Rgb,
            shuffle: true,
            seed: None,
            validation_split: None,
            subset: None,
            interpolation: Resize::Bilinear,
        }
    }
}

/// The extensions read, as Keras's (its `ALLOWLIST_FORMATS`), any case.
const FORMATS: [&str; 5] = ["bmp", "gif", "jpeg", "jpg", "png"];

/// A directory of images by class: `directory/<class>/**/<image>`, read batch by batch.
#[derive(Debug)]
pub struct ImageDataset {
    files: Vec<PathBuf>,
    labels: Vec<usize>,
    class_names: Vec<String>,
    args: ImageDirectory,
}

/// The images under `directory`, one subdirectory per class, as
/// `keras.utils.image_dataset_from_directory(directory, ...)`: classes in name order (or
/// `class_names`), files found at any depth in each and sorted, shuffled with `seed`, split by
/// `validation_split` and `subset`; each batch's images resized to `image_size` as floats in
/// `[0, 255]`, `(batch, height, width, channels)`, with their labels. Reading happens batch by
/// batch, so a directory larger than memory trains with `fit_dataset`.
///
/// The shuffle is keras-rs's own generator: with the same seed it draws another order than
/// NumPy's, so the split holds other files than Keras's.
pub fn image_dataset_from_directory(directory: impl AsRef<Path>, args: ImageDirectory) -> Result<ImageDataset> {
    let dir = directory.as_ref();
    let shown = dir.display().to_string();
    if args.batch_size == 0 || args.image_size.0 == 0 || args.image_size.1 == 0 {
        return Err(Error::value(
            "image_dataset_from_directory",
            "a batch_size and an image_size of at least 1",
            format!("batch_size {}, image_size {:?}", args.batch_size, args.image_size),
        ));
    }
    let subdirs = |d: &Path| -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(d).map_err(|source| Error::Io { path: d.display().to_string(), source })? {
            let entry = entry.map_err(|source| Error::Io { path: d.display().to_string(), source })?;
            if entry.path().is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    };
    let found = subdirs(dir)?;
    let class_names = match &args.class_names {
        None => found,
        Some(given) => {
            if let Some(missing) = given.iter().find(|c| !found.contains(c)) {
                return Err(Error::value(
                    format!("image_dataset_from_directory: class_names of {shown}"),
                    format!("subdirectories of it (it has {found:?})"),
                    format!("{missing:?}"),
                ));
            }
            given.clone()
        }
    };
    if args.label_mode == LabelMode::Binary && class_names.len() != 2 {
        return Err(Error::value(
            "image_dataset_from_directory with label_mode Binary",
            "exactly 2 classes",
            format!("{} ({class_names:?}) in {shown}", class_names.len()),
        ));
    }
    let mut files = Vec::new();
    let mut labels = Vec::new();
    for (label, class) in class_names.iter().enumerate() {
        let mut found = Vec::new();
        walk(&dir.join(class), &mut found)?;
        found.sort();
        labels.extend(std::iter::repeat_n(label, found.len()));
        files.extend(found);
    }
    if files.is_empty() {
        return Err(Error::value(
            format!("image_dataset_from_directory({shown})"),
            format!("images ({}) in subdirectories, one per class", FORMATS.join(", ")),
            "none",
        ));
    }
    if args.shuffle {
        if args.validation_split.is_some() && args.seed.is_none() {
            return Err(Error::Config(
                "image_dataset_from_directory: a validation_split of shuffled files needs a seed, so that the training and validation subsets hold different files".into(),
            ));
        }
        let seed = args.seed.unwrap_or_else(next_seed);
        let mut order: Vec<usize> = (0..files.len()).collect();
        Rng::new(seed).shuffle(&mut order);
        files = order.iter().map(|&i| files[i].clone()).collect();
        labels = order.iter().map(|&i| labels[i]).collect();
    }
    match (args.validation_split, args.subset) {
        (None, None) => {}
        (Some(split), Some(subset)) if (0.0..1.0).contains(&split) && split > 0.0 => {
            let held = (split as f64 * files.len() as f64) as usize;
            let cut = files.len() - held;
            let (f, l) = match subset {
                Subset::Training => (files[..cut].to_vec(), labels[..cut].to_vec()),
                Subset::Validation => (files[cut..].to_vec(), labels[cut..].to_vec()),
            };
            if f.is_empty() {
                return Err(Error::value(
                    format!("image_dataset_from_directory({shown}): the {subset:?} subset"),
                    "at least one file",
                    format!("none of {} with validation_split {split}", files.len()),
                ));
            }
            (files, labels) = (f, l);
        }
        (split, subset) => {
            return Err(Error::value(
                "image_dataset_from_directory: validation_split and subset",
                "both or neither, the split in (0, 1)",
                format!("validation_split {split:?}, subset {subset:?}"),
            ));
        }
    }
    Ok(ImageDataset { files, labels, class_names, args })
}

/// Every image file under `dir`, at any depth.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.display().to_string(), source })? {
        let path = entry.map_err(|source| Error::Io { path: dir.display().to_string(), source })?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| FORMATS.contains(&e.to_ascii_lowercase().as_str())) {
            out.push(path);
        }
    }
    Ok(())
}

impl ImageDataset {
    /// The classes, in label order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The files, in the dataset's order.
    pub fn file_paths(&self) -> &[PathBuf] {
        &self.files
    }

    /// Their labels (class indices).
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.files.len().div_ceil(self.args.batch_size)
    }

    fn get(&mut self, index: usize) -> Result<DataBatch> {
        let b = self.args.batch_size;
        let range = index * b..((index + 1) * b).min(self.files.len());
        let (h, w) = self.args.image_size;
        let mut images = Vec::with_capacity(range.len());
        for path in &self.files[range.clone()] {
            let img = load_img(path, LoadImg::default().color_mode(self.args.color_mode))?;
            images.push(resize(&img, h, w, self.args.interpolation));
        }
        let c = images.first().map_or(3, |i| i.len() / (h * w));
        let x = Array4::from_shape_vec((range.len(), h, w, c), images.concat()).expect("each image holds h * w * c values").into_dyn();
        let labels = &self.labels[range];
        let y: Option<ArrayD<f32>> = match self.args.label_mode {
            LabelMode::None => None,
            LabelMode::Int => Some(Array1::from_iter(labels.iter().map(|&l| l as f32)).into_dyn()),
            LabelMode::Binary => Some(Array2::from_shape_fn((labels.len(), 1), |(i, _)| labels[i] as f32).into_dyn()),
            LabelMode::Categorical => {
                let k = self.class_names.len();
                Some(Array2::from_shape_fn((labels.len(), k), |(i, j)| (labels[i] == j) as u8 as f32).into_dyn())
            }
        };
        let batch = DataBatch::inputs(vec![x]);
        Ok(match y {
            Some(y) => batch.with_targets(y),
            None => batch,
        })
    }
}

/// TensorFlow's `tf.image.resize` of an 8-bit image to `height x width` floats (half-pixel
/// centers, no antialiasing): bilinear reads `(o + 0.5) * in / out - 0.5` between its two
/// neighbours per axis, nearest reads `floor((o + 0.5) * in / out)`.
pub fn resize(img: &Image, height: usize, width: usize, method: Resize) -> Vec<f32> {
    let c = img.channels;
    let px = |y: usize, x: usize, ch: usize| img.pixels[(y * img.width + x) * c + ch] as f32;
    let mut out = Vec::with_capacity(height * width * c);
    if (height, width) == (img.height, img.width) {
        out.extend(img.pixels.iter().map(|&v| v as f32));
        return out;
    }
    let (sy, sx) = (img.height as f32 / height as f32, img.width as f32 / width as f32);
    match method {
        Resize::Nearest => {
            for y in 0..height {
                let iy = (((y as f32 + 0.5) * sy).floor() as usize).min(img.height - 1);
                for x in 0..width {
                    let ix = (((x as f32 + 0.5) * sx).floor() as usize).min(img.width - 1);
                    out.extend((0..c).map(|ch| px(iy, ix, ch)));
                }
            }
        }
        Resize::Bilinear => {
            // Per axis: the lower and upper source index and the weight of the upper.
            let axis = |o: usize, scale: f32, n: usize| {
                let at = (o as f32 + 0.5) * scale - 0.5;
                let lower = at.floor();
                let lerp = at - lower;
                ((lower.max(0.0) as usize).min(n - 1), (at.ceil().max(0.0) as usize).min(n - 1), lerp)
            };
            for y in 0..height {
                let (y0, y1, dy) = axis(y, sy, img.height);
                for x in 0..width {
                    let (x0, x1, dx) = axis(x, sx, img.width);
                    for ch in 0..c {
                        let top = px(y0, x0, ch) + (px(y0, x1, ch) - px(y0, x0, ch)) * dx;
                        let bottom = px(y1, x0, ch) + (px(y1, x1, ch) - px(y1, x0, ch)) * dx;
                        out.push(top + (bottom - top) * dy);
                    }
                }
            }
        }
    }
    out
}

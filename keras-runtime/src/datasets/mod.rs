//! Datasets of the Keras tutorials (`keras.datasets`), as ndarray arrays.
//!
//! Iris and the 8x8 digits are embedded in the crate; Fashion-MNIST and MNIST are read from the
//! IDX files Keras downloads (`~/.keras/datasets/`) or Debian installs (`/usr/share/datasets/`).
//! Users' own data comes in through [`from_csv`], [`read_npy`] and [`read_npz`], and data too
//! large for memory through a [`Dataset`] read batch by batch ([`CsvDataset`], or your own).

pub mod digits;
pub mod fashion_mnist;
mod files;
pub mod idx;
mod images;
pub mod iris;
pub mod mnist;
mod stream;

pub use files::{Csv, from_csv, from_csv_reader, read_npy, read_npy_bytes, read_npz, read_npz_bytes};
pub use images::{ImageDataset, ImageDirectory, LabelMode, Resize, Subset, image_dataset_from_directory, resize};
pub use stream::{ArrayDataset, CsvDataset, DataBatch, Dataset};

use ndarray::{Array1, Array3};

/// `((x_train, y_train), (x_test, y_test))`: images `(n, height, width)` and labels `(n,)` as
/// bytes, as Keras's `load_data()` returns them.
pub type ImageSplits = ((Array3<u8>, Array1<u8>), (Array3<u8>, Array1<u8>));

use crate::{Error, Result};
use std::path::PathBuf;

/// Where an IDX dataset may be: `~/.keras/datasets/<name>/`, then the system directories.
fn candidate_dirs(name: &str, system: &[&str]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".keras").join("datasets").join(name));
    }
    dirs.extend(system.iter().map(PathBuf::from));
    dirs
}

/// Loads the four IDX files of an (MNIST-like) image dataset from the first directory that has
/// them (`.gz` or uncompressed), checking their shapes agree.
fn load_idx_splits(title: &str, name: &str, system: &[&str], install_hint: &str) -> Result<ImageSplits> {
    const FILES: [&str; 4] = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
    let dirs = candidate_dirs(name, system);
    let find = |dir: &PathBuf, f: &str| [format!("{f}.gz"), f.to_string()].into_iter().map(|n| dir.join(n)).find(|p| p.is_file());
    let Some(dir) = dirs.iter().find(|d| FILES.iter().all(|f| find(d, f).is_some())) else {
        let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(Error::Io {
            path: looked,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{title} not found (expected {} there, each .gz or not); {install_hint}", FILES.join(", ")),
            ),
        });
    };
    let mut parts = Vec::new();
    for f in FILES {
        let path = find(dir, f).expect("checked above");
        let t = idx::read(&path)?;
        let is_images = f.contains("images");
        if (is_images && t.dims.len() != 3) || (!is_images && t.dims.len() != 1) {
            return Err(Error::Format {
                path: path.display().to_string(),
                message: format!("expected {} dimensions, found {:?}", if is_images { 3 } else { 1 }, t.dims),
            });
        }
        parts.push((path, t));
    }
    let mut it = parts.into_iter();
    let mut split = || -> Result<(Array3<u8>, Array1<u8>)> {
        let (ipath, images) = it.next().expect("four files");
        let (_, labels) = it.next().expect("four files");
        if images.dims[0] != labels.dims[0] {
            return Err(Error::Format {
                path: ipath.display().to_string(),
                message: format!("{} images but {} labels", images.dims[0], labels.dims[0]),
            });
        }
        let x = Array3::from_shape_vec((images.dims[0], images.dims[1], images.dims[2]), images.data).expect("IDX size checked");
        Ok((x, Array1::from(labels.data)))
    };
    let train = split()?;
    let test = split()?;
    Ok((train, test))
}

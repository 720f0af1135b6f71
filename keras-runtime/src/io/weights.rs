//! Weights and training state in the [safetensors](https://github.com/huggingface/safetensors)
//! format: one F32 little-endian tensor per weight, named by its Keras path (`dense/kernel`,
//! `dense_1/bias`), and string metadata in `__metadata__`.
//!
//! Reading checks every name, shape and dtype against what the model expects before anything
//! is written to the model, so a file for another architecture is an error, never a partial load.

use super::atomic::write_atomic;
use crate::model::{Model, WeightSpec};
use crate::{Error, Result};
use ndarray::{ArrayD, IxDyn};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The version written into every file's metadata.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A tensor to write: its name, shape and values.
pub(crate) struct Named<'a> {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: &'a [f32],
}

/// A tensor read from a file; `data` is empty unless the dtype is F32.
pub(crate) struct Tensor {
    pub name: String,
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Writes `tensors` and `metadata` to `path` atomically.
pub(crate) fn write(path: &Path, tensors: &[Named<'_>], metadata: HashMap<String, String>) -> Result<()> {
    let display = || path.display().to_string();
    let bytes: Vec<Vec<u8>> = tensors.iter().map(|t| t.data.iter().flat_map(|v| v.to_le_bytes()).collect()).collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| TensorView::new(Dtype::F32, t.shape.clone(), b).map(|v| (t.name.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Format { path: display(), message: format!("cannot serialise: {e}") })?;
    let file = safetensors::serialize(views, Some(metadata.into_iter().collect()))
        .map_err(|e| Error::Format { path: display(), message: format!("cannot serialise: {e}") })?;
    write_atomic(path, |w| w.write_all(&file).map_err(|source| Error::Io { path: display(), source }))
}

/// Reads every tensor and the metadata of the safetensors file at `path`. The declared sizes are
/// checked against the file's length before anything they describe is used.
pub(crate) fn read(path: &Path) -> Result<(Vec<Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse(&bytes, path)
}

/// Every tensor and the metadata of a safetensors file's `bytes`; `path` names it in errors.
pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<(Vec<Tensor>, HashMap<String, String>)> {
    let display = || path.display().to_string();
    // Keras's own files, given to the safetensors reader: say which call reads them.
    let keras = if bytes.starts_with(b"PK\x03\x04") {
        Some("a zip archive (a Keras `.keras` file?)")
    } else if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        Some("an HDF5 file (a Keras `.h5` or `.weights.h5` file?)")
    } else {
        None
    };
    if let Some(what) = keras {
        return Err(Error::Format {
            path: display(),
            message: format!("not a safetensors weights file but {what}: read Keras files with `load_keras`"),
        });
    }
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Format { path: display(), message: format!("not a valid safetensors file ({e})") })?;
    let (_, meta) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Format { path: display(), message: format!("not a valid safetensors file ({e})") })?;
    let tensors = file
        .iter()
        .map(|(name, view)| Tensor {
            name: name.to_string(),
            dtype: view.dtype(),
            shape: view.shape().to_vec(),
            data: if view.dtype() == Dtype::F32 {
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            } else {
                Vec::new()
            },
        })
        .collect();
    Ok((tensors, meta.metadata().clone().unwrap_or_default().into_iter().collect()))
}

/// The weights of `specs` from `tensors` (the file's tensors named without `prefix`), in Keras
/// order, after checking that names, shapes and dtypes match exactly. The error lists the
/// differences, the first in Keras order first.
pub(crate) fn match_weights(path: &Path, specs: &[WeightSpec], tensors: &[&Tensor]) -> Result<Vec<ArrayD<f32>>> {
    let mut problems = Vec::new();
    let mut arrays = Vec::with_capacity(specs.len());
    for spec in specs {
        let name = spec.path();
        match tensors.iter().find(|t| t.name == name) {
            None => problems.push(format!("missing tensor `{name}` (shape {})", crate::error::tuple_shape(spec.shape))),
            Some(t) if t.dtype != Dtype::F32 => problems.push(format!("tensor `{name}`: expected dtype F32, found {:?}", t.dtype)),
            Some(t) if t.shape != spec.shape => problems.push(format!(
                "tensor `{name}`: expected shape {}, found {}",
                crate::error::tuple_shape(spec.shape),
                crate::error::tuple_shape(&t.shape)
            )),
            Some(t) => {
                if let Some((index, &value)) = t.data.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                    problems.push(format!("tensor `{name}` holds a non-finite value ({value}) at flat index {index}"));
                } else {
                    arrays.push(ArrayD::from_shape_vec(IxDyn(spec.shape), t.data.clone()).expect("shape checked"));
                }
            }
        }
    }
    let mut unexpected: Vec<&str> = tensors.iter().filter(|t| !specs.iter().any(|s| s.path() == t.name)).map(|t| t.name.as_str()).collect();
    unexpected.sort_unstable();
    problems.extend(unexpected.iter().map(|n| format!("unexpected tensor `{n}`")));
    if problems.is_empty() {
        Ok(arrays)
    } else {
        Err(Error::Format {
            path: path.display().to_string(),
            message: format!("the weights do not fit the model: {}", problems.join("; ")),
        })
    }
}

/// The tensors for a model's weights, named by Keras path.
pub(crate) fn named(specs: &[WeightSpec], weights: &[ArrayD<f32>]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    specs.iter().zip(weights).map(|(s, w)| (s.path(), s.shape.to_vec(), w.iter().copied().collect())).collect()
}

/// Metadata every file of keras-rs carries.
pub(crate) fn base_metadata<M: Model>(format: &str) -> HashMap<String, String> {
    HashMap::from([
        ("format".to_string(), format.to_string()),
        ("model".to_string(), M::NAME.to_string()),
        ("keras_rs_version".to_string(), VERSION.to_string()),
    ])
}

/// Saves `model`'s weights (trainable and not) to `path`, atomically.
pub fn save_weights<M: Model>(model: &M, path: &Path) -> Result<()> {
    let weights = model.core().get_weights(M::WEIGHTS)?;
    // Keras's own formats by their names, as Keras 3 names them: `.weights.h5` (and `.h5`) is
    // its weights file, `.keras` its archive.
    let name = path.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
    let keras = if name.ends_with(".h5") {
        Some(crate::io::keras_file::weights_file::<M>(&weights))
    } else if name.ends_with(".keras") {
        Some(crate::io::keras_file::keras_archive::<M>(&weights))
    } else {
        None
    };
    if let Some(bytes) = keras {
        let shown = path.display().to_string();
        let bytes = bytes.map_err(|message| Error::Format { path: shown.clone(), message })?;
        return write_atomic(path, |w| w.write_all(&bytes).map_err(|source| Error::Io { path: shown.clone(), source }));
    }
    let owned = named(M::WEIGHTS, &weights);
    let tensors: Vec<Named<'_>> = owned.iter().map(|(n, s, d)| Named { name: n.clone(), shape: s.clone(), data: d }).collect();
    write(path, &tensors, base_metadata::<M>("weights"))
}

/// Loads the weights saved by [`save_weights`] into `model`; nothing is written unless every
/// tensor of the file matches a weight of the model in name, shape and dtype, and every weight
/// is there.
pub fn load_weights<M: Model>(model: &mut M, path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    load_weights_from_bytes(model, &bytes, path)
}

/// [`load_weights`] over the bytes of a safetensors file already in memory; `name` stands for
/// the file in error messages. The same checks apply: nothing is written unless every tensor fits.
pub fn load_weights_from_bytes<M: Model>(model: &mut M, bytes: &[u8], name: &Path) -> Result<()> {
    // Keras's files (a `.keras` archive, an HDF5 weights or model file), told by their contents.
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        let weights = crate::io::keras_file::weights_from_bytes::<M>(bytes.to_vec())
            .map_err(|message| Error::Format { path: name.display().to_string(), message })?;
        return model.core_mut().set_weights(M::WEIGHTS, &weights);
    }
    let (tensors, _) = parse(bytes, name)?;
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let arrays = match_weights(name, M::WEIGHTS, &refs)?;
    model.core_mut().set_weights(M::WEIGHTS, &arrays)
}

//! `adapt`: a `Normalization` layer's statistics computed from data, as Keras's
//! `layer.adapt(data)` computes them.

use crate::error::{batch_shape, tuple_shape};
use crate::model::{ConfigValue, LayerSpec, Model};
use crate::{Error, Result};
use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

/// The mean and biased variance of every feature over the batches seen, combined batch by batch
/// as Keras combines a data set's (its weighted "lack-of-fit" update), in f64.
struct Moments {
    mean: Vec<f64>,
    var: Vec<f64>,
    count: f64,
}

impl Moments {
    /// Adds a batch whose value `i` (in row-major order) belongs to feature
    /// `(i / inner) % features`.
    fn add<'a>(&mut self, values: impl Iterator<Item = &'a f32> + Clone, inner: usize) {
        let features = self.mean.len();
        let (mut mean, mut var) = (vec![0.0f64; features], vec![0.0f64; features]);
        let mut len = 0;
        for (i, &v) in values.clone().enumerate() {
            mean[(i / inner) % features] += v as f64;
            len += 1;
        }
        let count = (len / features) as f64;
        mean.iter_mut().for_each(|m| *m /= count);
        for (i, &v) in values.enumerate() {
            let c = (i / inner) % features;
            var[c] += (v as f64 - mean[c]).powi(2);
        }
        var.iter_mut().for_each(|s| *s /= count);
        self.count += count;
        let (weight, existing) = (count / self.count, 1.0 - count / self.count);
        for c in 0..features {
            let total = self.mean[c] * existing + mean[c] * weight;
            self.var[c] = (self.var[c] + (self.mean[c] - total).powi(2)) * existing + (var[c] + (mean[c] - total).powi(2)) * weight;
            self.mean[c] = total;
        }
    }
}

/// Sets the statistics of `model`'s `Normalization` layer named `name` from `batches` of its
/// input (see `Network::adapt_batches`), the first error of which is returned; errors number the
/// batches when `batched`.
pub(crate) fn adapt<M: Model, S: Data<Elem = f32>, D: Dimension>(
    model: &mut M,
    name: &str,
    batches: impl IntoIterator<Item = Result<ArrayBase<S, D>>>,
    batched: bool,
) -> Result<()> {
    let layer = normalization_layer::<M>(name)?;
    let input = layer.output_shape;
    let axis = match layer.config.iter().find(|(key, _)| *key == "axis") {
        Some((_, ConfigValue::Axes(axis))) => *axis,
        _ => unreachable!("a Normalization's config has its axis"),
    };
    // The kept axes, as axes of the batch (the batch axis 0 is never kept).
    let ndim = input.len() + 1;
    let mut kept: Vec<usize> = axis.iter().map(|&a| a.rem_euclid(ndim as i64) as usize).collect();
    kept.sort_unstable();
    let features: usize = kept.iter().map(|&a| input[a - 1]).product();
    let mut moments = Moments { mean: vec![0.0; features], var: vec![0.0; features], count: 0.0 };
    for (b, batch) in batches.into_iter().enumerate() {
        let batch = batch?;
        let shape = batch.shape();
        let what = || match batched {
            true => format!("adapt: batch {b} of the data for layer `{name}`"),
            false => format!("adapt: the data for layer `{name}`"),
        };
        // Only the kept axes must match, as in Keras (a sequence's length may differ).
        if shape.len() != ndim || kept.iter().any(|&a| shape[a] != input[a - 1]) {
            return Err(Error::shape(what(), batch_shape(input).replacen("None", "n", 1), tuple_shape(shape)));
        }
        if shape[0] == 0 {
            continue;
        }
        if let Some((index, &value)) = batch.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFinite { what: what(), value, index });
        }
        let inner = kept.last().map_or(batch.len() / shape[0], |&last| shape[last + 1..].iter().product());
        moments.add(batch.iter(), inner);
    }
    if moments.count == 0.0 {
        return Err(Error::Empty { what: format!("adapt: the data for layer `{name}`") });
    }
    let stats: Vec<usize> = kept.iter().map(|&a| input[a - 1]).collect();
    let array = |v: &[f64]| ArrayD::from_shape_vec(IxDyn(&stats), v.iter().map(|&x| x as f32).collect()).expect("one value per feature");
    let (first, _) =
        M::WEIGHTS.iter().enumerate().find(|(_, w)| w.layer == layer.name && w.name == "mean").expect("an adapted layer's mean");
    let mut weights = model.core().get_weights(M::WEIGHTS)?;
    weights[first] = array(&moments.mean);
    weights[first + 1] = array(&moments.var);
    model.core_mut().set_weights(M::WEIGHTS, &weights)
}

/// The layer named `name`, when it is a `Normalization` that can be adapted; else an error that
/// names the ones that can.
fn normalization_layer<M: Model>(name: &str) -> Result<&'static LayerSpec> {
    let adaptable =
        |l: &LayerSpec| l.class == "Normalization" && l.config.iter().any(|(key, value)| *key == "mean" && *value == ConfigValue::None);
    let names = M::LAYERS.iter().filter(|l| adaptable(l)).map(|l| l.name).collect::<Vec<_>>().join(", ");
    let Some(layer) = M::LAYERS.iter().find(|l| l.name == name) else {
        if names.is_empty() {
            return Err(Error::Config(format!("adapt: the model has no layer `{name}`, and no Normalization layer to adapt")));
        }
        return Err(Error::Unknown { kind: "layer", name: name.to_string(), expected: names });
    };
    if layer.class != "Normalization" {
        let expected = if names.is_empty() {
            "a Normalization layer (this model has none to adapt)".to_string()
        } else {
            format!("a Normalization layer (this model's: {names})")
        };
        return Err(Error::value(format!("adapt: layer `{name}`"), expected, format!("a {} layer", layer.class)));
    }
    if !adaptable(layer) {
        return Err(Error::Config(format!(
            "adapt: layer `{name}` was given its `mean` and `variance`, so it has nothing to adapt (leave them out to adapt it)"
        )));
    }
    Ok(layer)
}

//! Turning user arrays into the flat f32 tables the training loop batches from, with the checks
//! that give a clear error instead of silent garbage.

use crate::error::{batch_shape, tuple_shape};
use crate::losses::LossSpec;
use crate::model::{InputSpec, OutputSpec};
use crate::{Error, Result};
use ndarray::{ArrayBase, Data, Dimension};
use std::borrow::Cow;

/// A numeric element type accepted in `x` and `y` (converted to f32 as Keras casts to float32).
pub trait Element: Copy + Send + Sync + 'static {
    /// The value as f32.
    fn to_f32(self) -> f32;
    /// The slice itself when the elements already are f32 (no copy).
    fn as_f32s(_s: &[Self]) -> Option<&[f32]> {
        None
    }
}

impl Element for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn as_f32s(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
}

macro_rules! cast_elements {
    ($($t:ty),*) => {$(
        impl Element for $t {
            fn to_f32(self) -> f32 {
                self as f32
            }
        }
    )*};
}
cast_elements!(f64, u8, i8, u16, i16, u32, i32, u64, i64, usize, isize);

/// A batch-major array flattened to rows of f32, borrowed when the input already is contiguous
/// f32.
#[derive(Debug)]
pub struct Table<'a> {
    /// Row-major values, `rows * row_len`.
    pub data: Cow<'a, [f32]>,
    /// The full shape, batch axis first.
    pub shape: Cow<'a, [usize]>,
    /// For a model with several inputs: one table per input (`data` is then empty, `shape` is
    /// `(rows, all inputs' floats)`). A batch is staged input by input: the batch's rows of
    /// the first input, then of the second, ..., so no copy of the whole data set is made.
    pub parts: Vec<Table<'a>>,
}

impl Table<'_> {
    /// Number of samples.
    pub fn rows(&self) -> usize {
        self.shape[0]
    }

    /// The values: `data`, or each input's for several inputs.
    pub fn slices(&self) -> Vec<&[f32]> {
        if self.parts.is_empty() { vec![&self.data[..]] } else { self.parts.iter().map(|p| &p.data[..]).collect() }
    }

    /// Floats per sample.
    pub fn row_len(&self) -> usize {
        self.shape[1..].iter().product()
    }

    /// The per-sample shape.
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape[1..]
    }

    /// Rows `r`.
    pub fn slice(&self, r: std::ops::Range<usize>) -> &[f32] {
        let n = self.row_len();
        &self.data[r.start * n..r.end * n]
    }
}

/// Flattens `a` (batch axis first), checking it has samples and only finite values.
pub fn table<'a, A: Element, S: Data<Elem = A>, D: Dimension>(a: &'a ArrayBase<S, D>, what: &str) -> Result<Table<'a>> {
    let shape = a.shape();
    if shape.is_empty() {
        return Err(Error::shape(what, "an array with a batch axis", "a scalar (shape ())"));
    }
    if shape[0] == 0 || shape.contains(&0) {
        return Err(Error::Empty { what: format!("{what} (shape {})", tuple_shape(shape)) });
    }
    let data: Cow<'a, [f32]> = match a.as_slice().and_then(A::as_f32s) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().map(|v| v.to_f32()).collect()),
    };
    check_finite(&data, what)?;
    Ok(Table { data, shape: Cow::Borrowed(shape), parts: Vec::new() })
}

/// What can be given as `x`: one array, or for a model with several inputs one array per input,
/// in the model's order, as Keras's `model.fit([x_a, x_b], y)`: a slice, array or `Vec` of arrays
/// or views (`&[xa.view(), xb.view()]`), or a tuple of arrays of different element types
/// (`&(xa, xb)`).
///
/// ```ignore
/// functional! {
///     struct Two(a: [3], b: [2]) -> out {
///         let j = Concatenate()(a, b);
///         let out = Dense(1)(j);
///     }
/// }
/// let mut model = Two::new(&Cpu::default());
/// let (a, b) = (Array2::<f32>::ones((4, 3)), Array2::<u8>::zeros((4, 2)));
/// model.predict(&(a.view(), b.view()))?; // or &[a.view(), b2.view()] for one element type
/// assert!(model.predict(&a).is_err()); // two inputs, one array
/// ```
///
/// (The `keras` crate's README runs this through `fit`.)
pub trait Inputs {
    /// Each array flattened to a table (batch axis first), checked for samples and finite values;
    /// `what` names them in errors (`x`, `x[1]`).
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>>;
    /// Whether this is a list of arrays (one per input) rather than one array.
    fn is_list(&self) -> bool;
    /// The one table the training loop batches from, for a model with `inputs` (see
    /// `join_inputs`).
    fn input_table(&self, inputs: &[InputSpec], what: &str) -> Result<Table<'_>> {
        join_inputs(self.tables(what)?, self.is_list(), inputs, what)
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> Inputs for ArrayBase<S, D> {
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
        Ok(vec![table(self, what)?])
    }
    fn is_list(&self) -> bool {
        false
    }
    // One array for a one-input model: no list to build (a training step allocates nothing).
    fn input_table(&self, inputs: &[InputSpec], what: &str) -> Result<Table<'_>> {
        if inputs.len() > 1 {
            return join_inputs(self.tables(what)?, false, inputs, what);
        }
        table(self, what)
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> Inputs for [ArrayBase<S, D>] {
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
        self.iter().enumerate().map(|(k, a)| table(a, &format!("{what}[{k}]"))).collect()
    }
    fn is_list(&self) -> bool {
        true
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension, const N: usize> Inputs for [ArrayBase<S, D>; N] {
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
        self[..].tables(what)
    }
    fn is_list(&self) -> bool {
        true
    }
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> Inputs for Vec<ArrayBase<S, D>> {
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
        self[..].tables(what)
    }
    fn is_list(&self) -> bool {
        true
    }
}

impl<T: Inputs + ?Sized> Inputs for &T {
    fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
        (**self).tables(what)
    }
    fn is_list(&self) -> bool {
        (**self).is_list()
    }
    fn input_table(&self, inputs: &[InputSpec], what: &str) -> Result<Table<'_>> {
        (**self).input_table(inputs, what)
    }
}

macro_rules! tuple_inputs {
    ($(($($t:ident $i:tt),+))*) => {$(
        impl<$($t: AsInput),+> Inputs for ($($t,)+) {
            fn tables(&self, what: &str) -> Result<Vec<Table<'_>>> {
                Ok(vec![$(self.$i.table(&format!("{what}[{}]", $i))?),+])
            }
            fn is_list(&self) -> bool {
                true
            }
        }
    )*};
}

/// One array of a tuple of inputs: an array, a view, or a reference to one.
pub trait AsInput {
    /// The array as a table.
    fn table(&self, what: &str) -> Result<Table<'_>>;
}

impl<A: Element, S: Data<Elem = A>, D: Dimension> AsInput for ArrayBase<S, D> {
    fn table(&self, what: &str) -> Result<Table<'_>> {
        table(self, what)
    }
}

impl<T: AsInput + ?Sized> AsInput for &T {
    fn table(&self, what: &str) -> Result<Table<'_>> {
        (**self).table(what)
    }
}

tuple_inputs! { (T0 0, T1 1) (T0 0, T1 1, T2 2) (T0 0, T1 1, T2 2, T3 3) (T0 0, T1 1, T2 2, T3 3, T4 4) }

/// `x` as the one table the training loop batches from: for a model with several `inputs`, each
/// array checked against its input, kept as a part of the table (see [`Table::parts`]).
pub fn join_inputs<'a>(parts: Vec<Table<'a>>, list: bool, inputs: &[InputSpec], what: &str) -> Result<Table<'a>> {
    let expected = || inputs.iter().map(|i| format!("{}: {}", i.name, batch_shape(i.shape))).collect::<Vec<_>>().join(", ");
    if inputs.len() <= 1 {
        if parts.len() != 1 {
            return Err(Error::value(what, "one array (the model has one input)", format!("{} arrays", parts.len())));
        }
        return Ok(parts.into_iter().next().expect("one part"));
    }
    if !list {
        return Err(Error::value(
            what,
            format!("{} arrays, one per input ({})", inputs.len(), expected()),
            format!("one array of shape {}", tuple_shape(&parts[0].shape)),
        ));
    }
    if parts.len() != inputs.len() {
        return Err(Error::value(
            what,
            format!("{} arrays, one per input ({})", inputs.len(), expected()),
            format!("{} arrays", parts.len()),
        ));
    }
    let rows = parts[0].rows();
    for (k, (t, spec)) in parts.iter().zip(inputs).enumerate() {
        if t.sample_shape() != spec.shape {
            return Err(Error::shape(format!("{what}[{k}] (input `{}`)", spec.name), batch_shape(spec.shape), tuple_shape(&t.shape)));
        }
        if t.rows() != rows {
            return Err(Error::value(
                format!("{what}[{k}] (input `{}`)", spec.name),
                format!("{rows} samples, as many as {what}[0]"),
                format!("{} samples", t.rows()),
            ));
        }
        if let Some(n) = spec.indices
            && let Some((index, &value)) = t.data.iter().enumerate().find(|&(_, &v)| !(v >= 0.0 && v < n as f32 && v.fract() == 0.0))
        {
            let row_len = t.row_len();
            return Err(Error::value(
                format!("{what}[{k}] (input `{}`, token id of sample {}, position {})", spec.name, index / row_len, index % row_len),
                format!("an integer in [0, {n}) (the Embedding's input_dim is {n})"),
                value,
            ));
        }
    }
    let width: usize = parts.iter().map(Table::row_len).sum();
    Ok(Table { data: Cow::Borrowed(&[]), shape: Cow::Owned(vec![rows, width]), parts })
}

/// [`Inputs`] converted and joined for a model with `inputs`.
pub fn input_table<'a, X: Inputs + ?Sized>(x: &'a X, inputs: &[InputSpec], what: &str) -> Result<Table<'a>> {
    x.input_table(inputs, what)
}

/// An error naming the first NaN or infinity in `v`.
pub fn check_finite(v: &[f32], what: &str) -> Result<()> {
    if !crate::backend::cpu::kernels::any_non_finite(v) {
        return Ok(());
    }
    let (index, &value) = v.iter().enumerate().find(|(_, x)| !x.is_finite()).expect("a non-finite value exists");
    Err(Error::NonFinite { what: what.to_string(), value, index })
}

/// Checks that `x` has the model's per-sample input shape and, for a model whose first layer is
/// an `Embedding` of `indices` rows, that every value is an integer id in `[0, indices)`.
pub fn check_input(x: &Table<'_>, input_shape: &[usize], indices: Option<usize>) -> Result<()> {
    if x.sample_shape() != input_shape {
        return Err(Error::shape("x", format!("{} (the model's input)", batch_shape(input_shape)), tuple_shape(&x.shape)));
    }
    if let Some(n) = indices
        && let Some((index, &value)) = x.data.iter().enumerate().find(|&(_, &v)| !(v >= 0.0 && v < n as f32 && v.fract() == 0.0))
    {
        let row_len = x.row_len();
        return Err(Error::value(
            format!("x (token id of sample {}, position {})", index / row_len, index % row_len),
            format!("an integer in [0, {n}) (the Embedding's input_dim is {n})"),
            value,
        ));
    }
    Ok(())
}

/// Checks targets against the output shape and loss: class indices in range for sparse losses,
/// the output's shape otherwise (a `(N,)` target is accepted for a one-unit output), and the
/// same number of samples as `x`.
pub fn check_targets(y: &Table<'_>, x_rows: usize, output_shape: &[usize], loss: &LossSpec) -> Result<()> {
    if y.rows() != x_rows {
        return Err(Error::value(
            "y",
            format!("{x_rows} samples, as many as x"),
            format!("{} samples (shape {})", y.rows(), tuple_shape(&y.shape)),
        ));
    }
    let (outer, classes) = output_shape.split_at(output_shape.len() - 1);
    let found = y.sample_shape();
    if loss.sparse_targets() {
        let ok = found == outer || (found.len() == output_shape.len() && found[..outer.len()] == *outer && found[outer.len()] == 1);
        if !ok {
            return Err(Error::shape("y (class indices for sparse_categorical_crossentropy)", batch_shape(outer), tuple_shape(&y.shape)));
        }
        let n = classes[0];
        if let Some((index, &value)) = y.data.iter().enumerate().find(|&(_, &v)| v < 0.0 || v >= n as f32 || v.fract() != 0.0) {
            return Err(Error::value(
                format!("y (class index at flat position {index})"),
                format!("an integer in [0, {n}) for {n} output classes"),
                value,
            ));
        }
    } else {
        let ok = found == output_shape || (output_shape == [1] && found.is_empty());
        if !ok {
            return Err(Error::shape(
                format!("y (targets for {loss})"),
                format!("{} (the model's output)", batch_shape(output_shape)),
                tuple_shape(&y.shape),
            ));
        }
    }
    Ok(())
}

/// `y` as the one table of targets for a model with `outputs` (empty for one output): one array,
/// or one per output in the model's order, each a part of the table. `list`: given as a list.
pub fn join_targets<'a>(mut parts: Vec<Table<'a>>, list: bool, outputs: &[OutputSpec], what: &str) -> Result<Table<'a>> {
    if outputs.is_empty() {
        // (A list of one array is that array, as in Keras.)
        if parts.len() != 1 {
            return Err(Error::value(what, "one array (the model has one output)", format!("a list of {} arrays", parts.len())));
        }
        return Ok(parts.remove(0));
    }
    let names = outputs.iter().map(|o| o.name).collect::<Vec<_>>().join(", ");
    let n = outputs.len();
    if !list || parts.len() != n {
        let found = if list { format!("{} arrays", parts.len()) } else { format!("one array of shape {}", tuple_shape(&parts[0].shape)) };
        return Err(Error::value(what, format!("{n} arrays, one per output ({names})"), found));
    }
    let rows = parts[0].rows();
    if let Some((k, t)) = parts.iter().enumerate().find(|(_, t)| t.rows() != rows) {
        return Err(Error::value(
            format!("{what}[{k}] (output `{}`)", outputs[k].name),
            format!("{rows} samples, as many as {what}[0]"),
            format!("{} samples", t.rows()),
        ));
    }
    let width: usize = parts.iter().map(Table::row_len).sum();
    Ok(Table { data: Cow::Borrowed(&[]), shape: Cow::Owned(vec![rows, width]), parts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::Loss;
    use ndarray::{Array1, Array2, array};

    #[test]
    fn borrows_contiguous_f32_and_converts_others() {
        let a = Array2::<f32>::zeros((3, 4));
        assert!(matches!(table(&a, "x").unwrap().data, Cow::Borrowed(_)));
        let t = a.t();
        assert!(matches!(table(&t, "x").unwrap().data, Cow::Owned(_)));
        let b = array![[1u8, 2], [3, 4]];
        assert_eq!(&*table(&b, "x").unwrap().data, &[1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn errors_name_expected_and_found() {
        let x = array![[1.0f32, f32::NAN]];
        assert_eq!(table(&x, "x").unwrap_err().to_string(), "x contains a non-finite value (NaN) at flat index 1: expected finite numbers");
        let e = Array2::<f32>::zeros((0, 3));
        assert!(table(&e, "x").unwrap_err().to_string().starts_with("x (shape (0, 3)) is empty"));
        let x = Array2::<f32>::zeros((5, 3));
        let tx = table(&x, "x").unwrap();
        assert_eq!(check_input(&tx, &[4], None).unwrap_err().to_string(), "x: expected shape (None, 4) (the model's input), found (5, 3)");
        let ids = array![[1i32, 2, 9], [0, 10, 3]];
        let tids = table(&ids, "x").unwrap();
        check_input(&tids, &[3], Some(11)).unwrap();
        let err = check_input(&tids, &[3], Some(10)).unwrap_err().to_string();
        assert_eq!(err, "x (token id of sample 1, position 1): expected an integer in [0, 10) (the Embedding's input_dim is 10), found 10");
        let frac = array![[1.0f32, 2.5]];
        let err = check_input(&table(&frac, "x").unwrap(), &[2], Some(10)).unwrap_err().to_string();
        assert!(err.contains("position 1") && err.ends_with("found 2.5"), "{err}");
        let neg = array![[-1i64]];
        assert!(check_input(&table(&neg, "x").unwrap(), &[1], Some(10)).unwrap_err().to_string().ends_with("found -1"));
        let y = Array1::from(vec![0.0f32, 1.0, 2.0, 3.0, 1.0]);
        let ty = table(&y, "y").unwrap();
        let err = check_targets(&ty, 5, &[3], &Loss::SparseCategoricalCrossentropy.into()).unwrap_err().to_string();
        assert_eq!(err, "y (class index at flat position 3): expected an integer in [0, 3) for 3 output classes, found 3");
        assert!(
            check_targets(&ty, 4, &[3], &Loss::SparseCategoricalCrossentropy.into())
                .unwrap_err()
                .to_string()
                .contains("expected 4 samples")
        );
        let err = check_targets(&ty, 5, &[3], &Loss::CategoricalCrossentropy.into()).unwrap_err().to_string();
        assert_eq!(err, "y (targets for categorical_crossentropy): expected shape (None, 3) (the model's output), found (5,)");
        check_targets(&ty, 5, &[1], &Loss::MeanSquaredError.into()).unwrap();
    }
}

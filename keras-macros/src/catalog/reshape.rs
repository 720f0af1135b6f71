//! `Reshape(target_shape)` (one dimension may be `-1`, inferred) and
//! `ActivityRegularization(l1 = .., l2 = ..)`: layers that copy their input.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, float, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Expr;

pub const SIGNATURE: (&[&str], usize) = (&["target_shape"], 1);

/// The registry's row for `Reshape`.
pub const ENTRY: Entry =
    Entry { class: "Reshape", signature: SIGNATURE, build: |call, args, diag| Reshape::build(call, args, diag).map(Layer::new) };

pub struct Reshape {
    /// The target dimensions; `None` for the one given as `-1`.
    target: Vec<Option<usize>>,
}

impl Reshape {
    pub fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Reshape> {
        let Some(a) = args.get("target_shape", SIGNATURE.0) else {
            diag.error(call, "Reshape needs a `target_shape`, as in `Reshape((28, 28, 1))`");
            return None;
        };
        let dims: Vec<&Expr> = match &a.value {
            Expr::Tuple(t) => t.elems.iter().collect(),
            Expr::Array(arr) => arr.elems.iter().collect(),
            Expr::Paren(p) => vec![&*p.expr],
            other => vec![other],
        };
        let mut target = Vec::new();
        for d in dims {
            match int(d) {
                Some(-1) if !target.contains(&None) => target.push(None),
                Some(v) if v >= 1 && v <= u32::MAX as i128 => target.push(Some(v as usize)),
                _ => {
                    diag.error(
                        d,
                        format!("Reshape's target dimensions are positive integers, with at most one -1, found `{}`", d.to_token_stream()),
                    );
                    return None;
                }
            }
        }
        if target.is_empty() {
            diag.error(a, "Reshape's `target_shape` needs at least one dimension");
            return None;
        }
        Some(Reshape { target })
    }
}

impl Kind for Reshape {
    fn class(&self) -> &'static str {
        "Reshape"
    }

    /// Keras's configuration: `target_shape` as written (`-1` kept).
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let dims = self.target.iter().map(|d| d.map_or(-1, |d| d as i64));
        vec![quote!(("target_shape", ::keras::model::ConfigValue::Shape(&[#(#dims),*])))]
    }

    /// The target shape, with `-1` inferred; an error when the sizes do not multiply out.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let n: usize = input.iter().product();
        let known: usize = self.target.iter().flatten().product();
        let show = |t: &[Option<usize>]| {
            let dims: Vec<String> = t.iter().map(|d| d.map_or("-1".to_string(), |d| d.to_string())).collect();
            format!("(None, {})", dims.join(", "))
        };
        let missing = if self.target.contains(&None) {
            if known == 0 || !n.is_multiple_of(known) {
                return Err(format!(
                    "Reshape cannot turn {} ({n} values per sample) into {}: {n} is not a multiple of {known}",
                    super::fmt_shape(input),
                    show(&self.target)
                ));
            }
            n / known
        } else {
            if known != n {
                return Err(format!(
                    "Reshape cannot turn {} ({n} values per sample) into {} ({known} values)",
                    super::fmt_shape(input),
                    show(&self.target)
                ));
            }
            0
        };
        Ok(self.target.iter().map(|d| d.unwrap_or(missing)).collect())
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        copy_runtime(input)
    }
}

/// A layer that copies a sample of `input` unchanged.
fn copy_runtime(input: &[usize]) -> Runtime {
    let n: usize = input.iter().product();
    let ty = quote!(::keras::layers::Reshape<#n>);
    Runtime { ctor: quote!(<#ty>::new()), ty, in_width: n, out_width: n, rows_per_sample: 1 }
}

pub const ACTIVITY_SIGNATURE: (&[&str], usize) = (&["l1", "l2"], 2);

/// The registry's row for `ActivityRegularization`.
pub const ACTIVITY_REGULARIZATION: Entry = Entry {
    class: "ActivityRegularization",
    signature: ACTIVITY_SIGNATURE,
    build: |_, args, diag| ActivityRegularization::build(args, diag).map(Layer::new),
};

/// `ActivityRegularization(l1, l2)`: the identity, with a penalty on its output.
pub struct ActivityRegularization {
    pub regularizer: TokenStream,
}

impl ActivityRegularization {
    pub fn build(args: &Args<'_>, diag: &mut Diag) -> Option<ActivityRegularization> {
        let mut factor = |key: &str| match args.get(key, ACTIVITY_SIGNATURE.0) {
            None => Some(0.0),
            Some(a) => match float(&a.value) {
                Some(v) if v >= 0.0 && v.is_finite() => Some(v as f32),
                _ => {
                    diag.error(
                        a,
                        format!("ActivityRegularization's `{key}` expects a non-negative number, found `{}`", a.value.to_token_stream()),
                    );
                    None
                }
            },
        };
        let (l1, l2) = (factor("l1"), factor("l2"));
        let (l1, l2) = (l1?, l2?);
        Some(ActivityRegularization { regularizer: quote!(::keras::regularizers::Regularizer { l1: #l1, l2: #l2 }) })
    }
}

impl Kind for ActivityRegularization {
    fn class(&self) -> &'static str {
        "ActivityRegularization"
    }

    fn activity_regularizer(&self) -> Option<TokenStream> {
        Some(self.regularizer.clone())
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        copy_runtime(input)
    }
}

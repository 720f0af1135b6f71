//! `Normalization(axis = -1, mean = .., variance = .., invert = false)`: Keras 3's preprocessing
//! layer. Without `mean` and `variance` it has the non-trainable weights `mean`, `variance` (the
//! shape of the kept axes) and `count` (a scalar Keras keeps for old files), set by `adapt`;
//! given them, it has no weights and they become the model's constants.

use super::{Args, Entry, Kind, Layer, Runtime, Shape, Weight, boolean, float, fmt_shape, int};
use crate::diag::Diag;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::Expr;

pub const SIGNATURE: (&[&str], usize) = (&["axis", "mean", "variance", "invert"], 1);

/// A statistic given to the layer: one number for every index, or one per index of the last
/// kept axis (broadcast over the others, as Keras aligns it).
#[derive(Clone, PartialEq)]
enum Stat {
    Number(f64),
    List(Vec<f64>),
}

impl Stat {
    fn shape(&self) -> String {
        match self {
            Stat::Number(_) => "()".to_string(),
            Stat::List(v) => format!("({},)", v.len()),
        }
    }

    /// Broadcast over `features` values whose last kept axis has `last` indices.
    fn broadcast(&self, features: usize, last: usize) -> Vec<f32> {
        (0..features)
            .map(|k| match self {
                Stat::Number(v) => *v as f32,
                Stat::List(v) if v.len() == 1 => v[0] as f32,
                Stat::List(v) => v[k % last] as f32,
            })
            .collect()
    }

    fn config(&self) -> TokenStream {
        match self {
            Stat::Number(v) => quote!(::keras::model::ConfigValue::Float(#v)),
            Stat::List(v) => quote!(::keras::model::ConfigValue::List(&[#(::keras::model::ConfigValue::Float(#v)),*])),
        }
    }
}

/// The registry's row for `Normalization`.
pub const ENTRY: Entry = Entry {
    class: "Normalization",
    signature: SIGNATURE,
    build: |call, args, diag| Normalization::build(call, args, diag).map(Layer::new),
};

pub struct Normalization {
    /// Keras's `axis` as a tuple, as written (empty for `None`).
    axis: Vec<i64>,
    /// `mean` and `variance`, when given.
    given: Option<(Stat, Stat)>,
    pub invert: bool,
}

impl Normalization {
    pub fn build(_call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Normalization> {
        let (sig, _) = SIGNATURE;
        let errors = diag.len();
        let axis = match args.get("axis", sig) {
            None => vec![-1],
            Some(a) => {
                let elems: Option<Vec<&Expr>> = match &a.value {
                    Expr::Path(p) if p.path.is_ident("None") => Some(Vec::new()),
                    Expr::Tuple(t) => Some(t.elems.iter().collect()),
                    Expr::Array(arr) => Some(arr.elems.iter().collect()),
                    Expr::Paren(p) => Some(vec![&*p.expr]),
                    other => int(other).map(|_| vec![other]),
                };
                match elems.and_then(|e| e.iter().map(|d| int(d).and_then(|v| i64::try_from(v).ok())).collect::<Option<Vec<_>>>()) {
                    Some(axis) => axis,
                    None => {
                        diag.error(
                            a,
                            format!(
                                "Normalization's `axis` expects an integer, a tuple of integers or `None`, found `{}`",
                                a.value.to_token_stream()
                            ),
                        );
                        Vec::new()
                    }
                }
            }
        };
        let mut stat = |key: &str| {
            let a = args.get(key, sig)?;
            let number = |e: &Expr| float(e).filter(|v| v.is_finite() && (*v as f32).is_finite());
            let value = match &a.value {
                Expr::Array(arr) => arr.elems.iter().map(number).collect::<Option<Vec<_>>>().filter(|v| !v.is_empty()).map(Stat::List),
                other => number(other).map(Stat::Number),
            };
            if value.is_none() {
                diag.error(
                    a,
                    format!(
                        "Normalization's `{key}` expects a number or a list of numbers (one per index of the last axis it keeps), \
                         as in `{key} = [0.5, 2.0]`, found `{}`",
                        a.value.to_token_stream()
                    ),
                );
            }
            Some((a, value))
        };
        let (mean, variance) = (stat("mean"), stat("variance"));
        let given = match (mean, variance) {
            (None, None) => None,
            (Some((a, _)), None) | (None, Some((a, _))) => {
                let (has, lacks) = if a.key().is_some_and(|k| k == "mean") { ("mean", "variance") } else { ("variance", "mean") };
                diag.error(a, format!("Normalization: when setting values directly, both `mean` and `variance` must be set; `{has}` is given without `{lacks}`"));
                None
            }
            (Some((_, Some(m))), Some((va, Some(v)))) => {
                if m.shape() != v.shape() {
                    diag.error(
                        va,
                        format!(
                            "Normalization: `mean` and `variance` must have the same shape; found mean shape {} and variance shape {}",
                            m.shape(),
                            v.shape()
                        ),
                    );
                } else if let Some(bad) = match &v {
                    Stat::Number(x) => Some(*x).filter(|x| *x < 0.0),
                    Stat::List(xs) => xs.iter().copied().find(|x| *x < 0.0),
                } {
                    diag.error(va, format!("Normalization's `variance` must not be negative (its square root divides), found {bad}"));
                } else if axis.is_empty() && matches!(m, Stat::List(_)) {
                    diag.error(
                        va,
                        "Normalization with `axis = None` keeps one mean and one variance: give each as a number, \
                         as in `mean = 0.5, variance = 2.0`",
                    );
                }
                Some((m, v))
            }
            _ => None,
        };
        let invert = match args.get("invert", sig) {
            None => false,
            Some(a) => boolean(&a.value).unwrap_or_else(|| {
                diag.error(a, format!("Normalization's `invert` expects `true` or `false`, found `{}`", a.value.to_token_stream()));
                false
            }),
        };
        if diag.len() > errors {
            return None;
        }
        Some(Normalization { axis, given, invert })
    }

    /// `axis` as Keras prints it in messages: `-1`, `(1, 2)`, `None`.
    fn written(&self) -> String {
        match self.axis.as_slice() {
            [] => "None".to_string(),
            [a] => a.to_string(),
            many => format!("({})", many.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")),
        }
    }

    /// The kept axes as indices into the per-sample shape `input`, in order; an error in Keras's
    /// words for an axis out of range, the batch axis, or axes that are not consecutive.
    fn kept(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let ndim = input.len() as i64 + 1;
        let written = self.written();
        let mut kept = Vec::new();
        for &a in &self.axis {
            if a < -ndim || a >= ndim {
                return Err(format!(
                    "Normalization: all `axis` values must be in the range [-ndim, ndim); its input {} has ndim={ndim}, found axis = {written}",
                    fmt_shape(input)
                ));
            }
            let resolved = a.rem_euclid(ndim) as usize;
            if resolved == 0 {
                return Err(format!(
                    "Normalization: all `axis` values to be kept must have a known size, but axis {a} of its input {} is the batch axis; \
                     found axis = {written}",
                    fmt_shape(input)
                ));
            }
            if kept.contains(&(resolved - 1)) {
                return Err(format!(
                    "Normalization's `axis` names axis {resolved} of its input {} twice: axis = {written}",
                    fmt_shape(input)
                ));
            }
            kept.push(resolved - 1);
        }
        kept.sort_unstable();
        if kept.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(format!(
                "Normalization keeps statistics over consecutive axes only, as in axis = (1, 2); found axis = {written} for its input {}",
                fmt_shape(input)
            ));
        }
        Ok(kept)
    }
}

impl Kind for Normalization {
    fn class(&self) -> &'static str {
        "Normalization"
    }

    /// Normalization keeps the shape.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let kept = self.kept(input)?;
        if let (Some((mean, _)), Some(&last)) = (&self.given, kept.last())
            && let Stat::List(values) = mean
            && values.len() != 1
            && values.len() != input[last]
        {
            return Err(format!(
                "Normalization's `mean` and `variance` have {} values, but axis {} of its input {} has {} indices: \
                 give one value per index, or a single number",
                values.len(),
                last + 1,
                fmt_shape(input),
                input[last]
            ));
        }
        Ok(input.to_vec())
    }

    /// `mean`, `variance` (the kept axes' shape) and `count` (a scalar), non-trainable, unless
    /// the statistics are given.
    fn weights(&self, input: &[usize]) -> Vec<Weight> {
        if self.given.is_some() {
            return Vec::new();
        }
        let shape: Shape = self.kept(input).expect("checked by output_shape").iter().map(|&d| input[d]).collect();
        let i = quote!(::keras::initializers::Initializer);
        let weight =
            |name, shape: &Shape, init| Weight { name, shape: shape.clone(), trainable: false, init, regularizer: None, constraint: None };
        vec![
            weight("mean", &shape, quote!(#i::Zeros)),
            weight("variance", &shape, quote!(#i::Ones)),
            weight("count", &Vec::new(), quote!(#i::Zeros)),
        ]
    }

    /// Given statistics, broadcast over the kept axes: the mean, then the variance.
    fn constants(&self, input: &[usize]) -> Vec<f32> {
        let Some((mean, variance)) = &self.given else { return Vec::new() };
        let kept = self.kept(input).expect("checked by output_shape");
        let features = kept.iter().map(|&d| input[d]).product();
        let last = kept.last().map_or(1, |&d| input[d]);
        let mut out = mean.broadcast(features, last);
        out.extend(variance.broadcast(features, last));
        out
    }

    /// Keras's `get_config()` entries: `axis` (a tuple), `invert`, `mean` and `variance` (`None`
    /// unless given).
    fn config(&self, _input: &[usize]) -> Vec<TokenStream> {
        let (axis, invert) = (&self.axis, self.invert);
        let none = quote!(::keras::model::ConfigValue::None);
        let (mean, variance) = match &self.given {
            Some((m, v)) => (m.config(), v.config()),
            None => (none.clone(), none),
        };
        vec![
            quote!(("axis", ::keras::model::ConfigValue::Axes(&[#(#axis),*]))),
            quote!(("invert", ::keras::model::ConfigValue::Bool(#invert))),
            quote!(("mean", #mean)),
            quote!(("variance", #variance)),
        ]
    }

    /// Rows start at the first kept axis (every axis for `axis = None`): each row holds every
    /// statistic once, each repeated over the axes after the kept ones.
    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let kept = self.kept(input).expect("checked by output_shape");
        let first = kept.first().copied().unwrap_or(0);
        let w: usize = input[first..].iter().product();
        let features: usize = kept.iter().map(|&d| input[d]).product();
        let invert = self.invert;
        let ty = quote!(::keras::layers::Normalization<#w, #features, #invert>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: w, out_width: w, rows_per_sample: input[..first].iter().product() }
    }
}

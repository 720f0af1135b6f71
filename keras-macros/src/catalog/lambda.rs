//! `Lambda(function)`: a user's function applied value by value, any input shape, no weights.
//! The function is a closure of one value, `Lambda(|x| x * x.sigmoid())`, or the path of a
//! function generic over `keras::autodiff::Real`, `Lambda(my_swish)` with
//! `fn my_swish<T: Real>(x: T) -> T`; either way it is written once and the generated code
//! instantiates it at `f32` (the values) and at a dual number (the derivative).

use super::{Args, Entry, Kind, Layer, Runtime};
use crate::diag::Diag;
use crate::parse::Call;
use quote::{ToTokens, quote};
use syn::{Expr, Pat};

pub const SIGNATURE: (&[&str], usize) = (&["function"], 1);

/// The registry's row.
pub const ENTRY: Entry =
    Entry { class: "Lambda", signature: SIGNATURE, build: |call, args, diag| Lambda::build(call, args, diag).map(Layer::new) };

pub struct Lambda {
    /// The body of the generic function `f<T: Real>(x: T) -> T`.
    body: proc_macro2::TokenStream,
}

const EXPECTED: &str = "a function of one value: a closure, as in `Lambda(|x| x * x.sigmoid())`, or the path of a \
                        function generic over keras::autodiff::Real, `fn f<T: Real>(x: T) -> T`";

impl Lambda {
    fn build(call: &Call, args: &Args<'_>, diag: &mut Diag) -> Option<Lambda> {
        let Some(a) = args.get("function", SIGNATURE.0) else {
            diag.error(call, format!("Lambda needs {EXPECTED}"));
            return None;
        };
        let body = match &a.value {
            Expr::Closure(c) => {
                let untyped = matches!(c.inputs.first(), Some(Pat::Ident(p)) if p.by_ref.is_none() && p.subpat.is_none());
                if c.inputs.len() != 1 || !untyped {
                    diag.error(
                        &c.inputs,
                        format!(
                            "Lambda's closure takes one value, written untyped as `|x| ..` (the function is generic over \
                             keras::autodiff::Real), found `|{}|`",
                            c.inputs.to_token_stream()
                        ),
                    );
                    return None;
                }
                if let Some(m) = &c.capture {
                    diag.error(m, "Lambda's closure captures nothing: remove `move`");
                    return None;
                }
                let Some(Pat::Ident(x)) = c.inputs.first() else { unreachable!("checked above") };
                let (ident, ret, body) = (&x.ident, &c.output, &c.body);
                let ret = match ret {
                    syn::ReturnType::Default => quote!(),
                    syn::ReturnType::Type(arrow, ty) => quote!(#arrow #ty),
                };
                quote!((|#ident: T| #ret #body)(x))
            }
            Expr::Path(p) if p.qself.is_none() => quote!(#p(x)),
            other => {
                diag.error(other, format!("Lambda expects {EXPECTED}, found `{}`", other.to_token_stream()));
                return None;
            }
        };
        Some(Lambda { body })
    }
}

impl Kind for Lambda {
    fn class(&self) -> &'static str {
        "Lambda"
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let w = *input.last().expect("shapes have at least one dimension");
        let body = &self.body;
        let ty = quote!(::keras::layers::Lambda<#w>);
        Runtime {
            ctor: quote!({
                #[allow(clippy::redundant_closure_call, non_camel_case_types)]
                fn keras_lambda<T: ::keras::autodiff::Real>(x: T) -> T {
                    #body
                }
                <#ty>::new(keras_lambda::<f32>, keras_lambda::<::keras::autodiff::Dual>)
            }),
            ty,
            in_width: w,
            out_width: w,
            rows_per_sample: input[..input.len() - 1].iter().product(),
        }
    }
}

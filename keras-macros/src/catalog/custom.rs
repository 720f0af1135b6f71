//! A layer of the user's own: `Affine()`, `Scale(2.0)`, `Linear(out = 16)` in either macro, where
//! the name is a type implementing `keras::layers::custom::CustomLayer<IN, OUT>` (not a Keras
//! class the DSL knows, nor one close to it: `Dence` is still a typo). The macro knows its input
//! width `IN` (the input's last axis) and its output width `OUT` (`out = N`, else `IN`); rustc
//! knows its weights and shape rule, read from the impl at compile time.

use super::{Args, Kind, Runtime, Shape, int};
use crate::diag::Diag;
use crate::expand::CustomRef;
use crate::parse::Call;
use proc_macro2::TokenStream;
use quote::{ToTokens, quote, quote_spanned};

pub struct Custom {
    /// The user's type, as written (a name or a path).
    ty: TokenStream,
    /// Its name, for spans.
    ident: syn::Ident,
    /// The class name shown in the summary and saved in Keras files: the type's name.
    class: &'static str,
    /// The constructor's arguments (`Type::new(..)`); none: `Type::default()`.
    ctor_args: Vec<syn::Expr>,
    /// `out = N`.
    out: Option<usize>,
}

impl Custom {
    /// Whether a call of a class the DSL does not know names a custom layer's type: one
    /// written with a path (`self::Sampling(..)`), or a capitalized name, as types are, that is
    /// no typo of a known class (`Dence` is one slip from `Dense`, and reported as a typo).
    pub fn is_candidate(call: &Call, known: &[&str]) -> bool {
        let name = call.kind.to_string();
        call.path.is_some() || (name.starts_with(|c: char| c.is_ascii_uppercase()) && keras_naming::typo_of(&name, known).is_none())
    }

    /// What an unknown-layer message adds for a capitalized name taken as a typo: how to use a
    /// layer of one's own of that name.
    pub fn typo_hint(name: &str) -> String {
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            format!(" (for a layer of your own named `{name}`, write its path: `self::{name}(..)`)")
        } else {
            String::new()
        }
    }

    /// The custom layer of `call`, its arguments bound: positional ones go to the constructor,
    /// `out = N` is the output width, `in`, `name` and `params` as for every layer.
    pub fn build<'a>(call: &'a Call, diag: &mut Diag) -> (Option<Custom>, Args<'a>) {
        let mut args = Args { values: vec![None], input: None, name: None, params: None };
        let mut ctor_args = Vec::new();
        let mut ok = true;
        for arg in &call.args {
            let Some(key) = arg.key() else {
                ctor_args.push(arg.value.clone());
                continue;
            };
            let slot = match key.to_string().as_str() {
                "out" => &mut args.values[0],
                "in" => &mut args.input,
                "name" => &mut args.name,
                "params" => &mut args.params,
                other => {
                    diag.error(
                        key,
                        format!(
                            "a custom layer takes its constructor's arguments by position (`{}(2.0)` calls `{}::new(2.0)`) and `out`, `in`, `name`, `params` by name, found `{other}`",
                            call.kind, call.kind
                        ),
                    );
                    ok = false;
                    continue;
                }
            };
            if slot.is_some() {
                diag.error(arg, format!("`{key}` is given twice"));
                ok = false;
            }
            *slot = Some(arg);
        }
        let out = match args.values[0] {
            None => None,
            Some(a) => match int(&a.value) {
                Some(v) if v >= 1 && v <= u32::MAX as i128 => Some(v as usize),
                _ => {
                    diag.error(a, format!("`out` expects the output width, a positive integer, found `{}`", a.value.to_token_stream()));
                    ok = false;
                    None
                }
            },
        };
        let class: &'static str = Box::leak(call.kind.to_string().into_boxed_str());
        let ty = match &call.path {
            Some(p) => p.to_token_stream(),
            None => call.kind.to_token_stream(),
        };
        (ok.then(|| Custom { ty, ident: call.kind.clone(), class, ctor_args, out }), args)
    }

    fn widths(&self, input: &[usize]) -> (usize, usize) {
        let i = *input.last().expect("shapes have at least one dimension");
        (i, self.out.unwrap_or(i))
    }
}

impl Kind for Custom {
    fn class(&self) -> &'static str {
        self.class
    }

    /// The input's shape, its last axis `OUT` wide.
    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        let mut out = input.to_vec();
        *out.last_mut().expect("shapes have at least one dimension") = self.widths(input).1;
        Ok(out)
    }

    fn custom(&self, input: &[usize]) -> Option<CustomRef> {
        let (in_width, out_width) = self.widths(input);
        Some(CustomRef { ty: self.ty.clone(), in_width, out_width })
    }

    /// The compile-time checks at the call: the type is a custom layer of these widths, and
    /// its shape rule accepts them.
    fn checks(&self, input: &[usize]) -> Vec<TokenStream> {
        let (i, o) = self.widths(input);
        let ty = &self.ty;
        let span = self.ident.span();
        vec![quote_spanned! {span=>
            if let ::core::result::Result::Err(why) = <#ty as ::keras::layers::custom::CustomLayer<#i, #o>>::SHAPE {
                ::core::panic!("{}", why);
            }
        }]
    }

    fn runtime(&self, input: &[usize], output: &[usize], _index: usize) -> Runtime {
        let (i, o) = self.widths(input);
        let ty = &self.ty;
        let span = self.ident.span();
        let value = if self.ctor_args.is_empty() {
            quote_spanned!(span=> <#ty as ::core::default::Default>::default())
        } else {
            let args = &self.ctor_args;
            quote_spanned!(span=> #ty::new(#(#args),*))
        };
        let rt = quote!(::keras::layers::custom::Custom<#i, #o, #ty>);
        Runtime {
            ctor: quote!(<#rt>::new(#value)),
            ty: rt,
            in_width: i,
            out_width: o,
            rows_per_sample: output[..output.len() - 1].iter().product(),
        }
    }
}

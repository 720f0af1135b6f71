#![warn(missing_docs)]
//! The `sequential!` and `functional!` macros of keras-rs. The logic lives in ordinary functions over
//! `proc_macro2::TokenStream` (parse -> check -> expand), unit-tested without a compiler run;
//! this file only wires them to `#[proc_macro]`.

mod catalog;
mod check;
mod diag;
mod expand;
mod functional;
mod parse;
#[cfg(test)]
mod tests;

/// Defines a Sequential model whose layer shapes and parameter counts are checked at compile
/// time. See the `keras` crate for the DSL.
#[proc_macro]
pub fn sequential(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand::sequential(input.into()).into()
}

/// Defines a functional model: a graph of layer calls over named inputs, with shared layers and
/// merge layers, its shapes and parameter counts checked at compile time. See the `keras` crate.
#[proc_macro]
pub fn functional(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    functional::functional(input.into()).into()
}

//! `Flatten()`: `(None, d1, d2, ..) -> (None, d1 * d2 * ..)`.

use super::{Entry, Kind, Layer, Runtime, Shape};
use quote::quote;

pub const SIGNATURE: (&[&str], usize) = (&[], 0);

/// The registry's row.
pub const ENTRY: Entry = Entry { class: "Flatten", signature: SIGNATURE, build: |_, _, _| Some(Layer::new(Flatten)) };

pub struct Flatten;

impl Kind for Flatten {
    fn class(&self) -> &'static str {
        "Flatten"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Shape, String> {
        input
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .map(|n| vec![n])
            .ok_or_else(|| "Flatten's output size overflows".to_string())
    }

    fn runtime(&self, input: &[usize], _output: &[usize], _index: usize) -> Runtime {
        let n: usize = input.iter().product();
        let ty = quote!(::keras::layers::Flatten<#n>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: n, out_width: n, rows_per_sample: 1 }
    }
}

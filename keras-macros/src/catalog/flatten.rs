//! `Flatten()`: `(None, d1, d2, ..) -> (None, d1 * d2 * ..)`.

use super::{Runtime, Shape};
use quote::quote;

pub const SIGNATURE: (&[&str], usize) = (&[], 0);

pub struct Flatten;

impl Flatten {
    pub fn output_shape(input: &[usize]) -> Result<Shape, String> {
        input
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .map(|n| vec![n])
            .ok_or_else(|| "Flatten's output size overflows".to_string())
    }

    pub fn runtime(input: &[usize]) -> Runtime {
        let n: usize = input.iter().product();
        let ty = quote!(::keras::layers::Flatten<#n>);
        Runtime { ctor: quote!(<#ty>::new()), ty, in_width: n, out_width: n, rows_per_sample: 1 }
    }
}

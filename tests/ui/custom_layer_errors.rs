// A custom layer is checked at compile time where it is called: its type implements
// `CustomLayer` for the widths it is called with, its shape rule accepts them, its arguments are
// its constructor's (by position) and `out`, `in`, `name`, `params` (by name), and `params = N`
// is checked against the weights rustc counts.
use keras::initializers::Initializer;
use keras::layers::custom::{CustomLayer, Grads, Weight, Weights};
use keras::prelude::*;

#[derive(Default)]
pub struct Affine;

impl<const D: usize> CustomLayer<D, D> for Affine {
    const WEIGHTS: &'static [Weight] = &[Weight::new("gamma", &[D], Initializer::Ones)];
    fn forward(&self, _: &Weights<'_>, _: &[f32], _: &mut [f32], _: bool) {}
    fn backward(&self, _: &Weights<'_>, _: &[f32], _: &[f32], _: &[f32], _: Option<&mut [f32]>, _: &mut Grads<'_>) {}
}

/// Keeps the width by the default shape rule, for every pair of widths.
#[derive(Default)]
pub struct Keeper;

impl<const I: usize, const O: usize> CustomLayer<I, O> for Keeper {
    fn forward(&self, _: &Weights<'_>, _: &[f32], _: &mut [f32], _: bool) {}
    fn backward(&self, _: &Weights<'_>, _: &[f32], _: &[f32], _: &[f32], _: Option<&mut [f32]>, _: &mut Grads<'_>) {}
}

#[derive(Default)]
pub struct NotALayer;

sequential! {
    pub struct Narrowing = Input(4) => Keeper(out = 2) => Dense(1);
}
sequential! {
    pub struct WrongWidths = Input(4) => Affine(out = 3) => Dense(1);
}
sequential! {
    pub struct Plain = Input(4) => NotALayer() => Dense(1);
}
sequential! {
    pub struct Arguments = Input(4) => Affine(units = 3) => Affine(out = 0) => Dense(1);
}
sequential! {
    pub struct Counted = Input(4) => Affine(params = 5) => Dense(1);
}
sequential! {
    #[params(100)]
    pub struct Total = Input(4) => Affine() => Dense(1);
}

sequential! {
    pub struct Wrapped = Input((3, 4)) => TimeDistributed(Affine()) => Dense(1);
}

sequential! {
    pub struct Slip = Input(4) => ReLU6() => Dense(1);
}

fn main() {}

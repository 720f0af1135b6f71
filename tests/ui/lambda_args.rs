// Lambda takes a function of one value, untyped and capturing nothing; its body is checked by
// rustc against keras::autodiff::Real, where a constant goes on the right (`x * 2.0`).
use keras::prelude::*;

sequential! {
    pub struct NotAFunction = Input(4) => Lambda(3.0) => Lambda();
}
sequential! {
    pub struct TwoValues = Input(4) => Lambda(|x, y| x + y) => Lambda(|x: f32| x) => Lambda(move |x| x);
}
sequential! {
    pub struct ConstantOnTheLeft = Input(4) => Lambda(|x| 2.0 * x);
}

fn main() {}

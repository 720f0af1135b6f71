use keras::layers::custom::{CustomLayer, Grads, Weights};
use keras::prelude::*;

#[derive(Default)]
pub struct Keeper;

impl<const D: usize> CustomLayer<D, D> for Keeper {
    fn forward(&self, _: &Weights<'_>, _: &[f32], _: &mut [f32], _: bool) {}
    fn backward(&self, _: &Weights<'_>, _: &[f32], _: &[f32], _: &[f32], _: Option<&mut [f32]>, _: &mut Grads<'_>) {}
}

sequential! {
    struct WithCustom = Input(6) => Keeper() => Dense(2);
}

sequential! {
    struct Encoder = Input(6) => Dense(4, relu);
}

functional! {
    struct TwoHeads(a: [6]) -> (x, y) {
        let x = Dense(1, name = "x")(a);
        let y = Dense(2, name = "y")(a);
    }
}

sequential! {
    struct Broken = Input(6) => Dense(0);
}

// The input a model is called on must be the one it was made for.
functional! {
    use Encoder;
    struct WrongInput(x: [7]) -> y {
        let y = Encoder()(x);
    }
}

sequential! {
    use Encoder;
    struct WrongChain = Input(5) => Encoder() => Dense(1);
}

sequential! {
    use Encoder;
    struct AfterDense = Input(6) => Dense(3) => Encoder();
}

// A model used as a layer is made as it is: no `in`, no `params`.
sequential! {
    use Encoder;
    struct WithIn = Encoder(in = 6) => Dense(1);
}

// A model with several outputs, or with errors of its own, is no layer.
functional! {
    use TwoHeads;
    struct Heads(a: [6]) -> y {
        let y = TwoHeads()(a);
    }
}

sequential! {
    use WithCustom;
    struct UsesCustom = Input(6) => WithCustom() => Dense(1);
}

sequential! {
    use Broken;
    struct UsesBroken = Input(6) => Broken() => Dense(1);
}

// `use` names a model made by `sequential!` or `functional!`.
sequential! {
    use NotAModel;
    struct Missing = Input(6) => Dense(1);
}

fn main() {}

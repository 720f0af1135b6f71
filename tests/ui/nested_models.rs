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

// Only a name is given where a model is used.
sequential! {
    use Encoder;
    struct Args = Input(6) => Encoder(4, params = 24) => Dense(1);
}

// An Embedding-first model reads ids: one of this model's inputs.
sequential! {
    struct Ids = Input(5) => Embedding(10, 3) => Flatten();
}

sequential! {
    use Ids;
    struct IdsInChain = Input(5) => Dense(5) => Ids();
}

functional! {
    use Ids;
    struct IdsInGraph(x: [5]) -> y {
        let h = Dense(5)(x);
        let y = Ids()(h);
    }
}

functional! {
    use Encoder;
    struct TwoTensors(a: [6], b: [6]) -> y {
        let y = Encoder()(a, b);
    }
}

// Two outputs that are calls of one model are two outputs of one name.
functional! {
    use Encoder;
    struct TwoCalls(a: [6], b: [6]) -> (za, zb) {
        let e = Encoder();
        let za = e(a);
        let zb = e(b);
    }
}

// A Lambda's function would be looked up where the model is used.
sequential! {
    struct WithLambda = Input(6) => Lambda(|x| x * x) => Dense(2);
}

sequential! {
    use WithLambda;
    struct UsesLambda = Input(6) => WithLambda() => Dense(1);
}

// A model called without `use` is taken for a custom layer; rustc's note says what to write.
sequential! {
    struct NoUse = Input(6) => Encoder() => Dense(1);
}

// `use` names a model made by `sequential!` or `functional!`.
sequential! {
    use NotAModel;
    struct Missing = Input(6) => Dense(1);
}

sequential! {
    use Encoder
    struct NoSemicolon = Input(6) => Dense(1);
}

fn main() {}

use keras::prelude::*;

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
    use Broken;
    struct UsesBroken = Input(6) => Broken() => Dense(1);
}

// `use` names a model made by `sequential!` or `functional!`.
sequential! {
    use NotAModel;
    struct Missing = Input(6) => Dense(1);
}

fn main() {}

use keras::prelude::*;

functional! {
    #[params(10)]
    struct Total(a: [6], b: [6]) -> out {
        let shared = Dense(4);
        let x = shared(a);
        let y = shared(b);
        let s = Add()(x, y);
        let out = Dense(2)(s);
    }
}

functional! {
    struct PerLayer(a: [6]) -> out {
        let shared = Dense(4, params = 30);
        let x = shared(a);
        let out = Dense(2, in = 4)(x);
    }
}

fn main() {}

use keras::prelude::*;

functional! {
    struct Net(a: [6], b: [3]) -> out {
        let shared = Dense(4);
        let x = shared(a);
        let y = shared(b);
        let two = Dense(2)(x, x);
        let out = Add()(x, y);
    }
}

fn main() {}

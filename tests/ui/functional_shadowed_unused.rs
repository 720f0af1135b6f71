// A shadowed tensor that nothing reads is an error at its `let`, as any unused tensor.
use keras::prelude::*;

functional! {
    struct Lost(x: [6]) -> out {
        let h = Dense(8)(x);
        let h = Dense(4)(x);
        let out = Dense(1)(h);
    }
}

fn main() {}

use keras::prelude::*;

functional! {
    struct Net(a: [6], b: [3]) -> out {
        let s = Add()(a, b);
        let c = Concatenate(axis = 1)(a, b);
        let t = Subtract()(a, a, a);
        let one = Multiply()(a);
        let out = Dense(1)(s);
    }
}

fn main() {}

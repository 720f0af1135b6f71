use keras::prelude::*;

functional! {
    struct Net(ids: [6]) -> out {
        let h = Dense(4)(ids);
        let e = Embedding(20, 4)(h);
        let out = Dense(1)(e);
    }
}

fn main() {}

use keras::prelude::*;

functional! {
    struct Twice(a: [6]) -> (out, out) {
        let out = Dense(1)(a);
    }
}

functional! {
    struct Several(a: [6], unused: [2]) -> (x, y) {
        let h = Dense(4)(a);
        let dead = Dense(3)(h);
        let x = Dense(1)(h);
        let y = Dense(2)(h);
    }
}

functional! {
    struct InputOut(a: [6]) -> (a, y) {
        let y = Dense(2)(a);
    }
}

functional! {
    struct SharedHead(a: [6], b: [6]) -> (x, y) {
        let head = Dense(2);
        let x = head(a);
        let y = head(b);
    }
}

fn main() {}

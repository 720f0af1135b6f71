use keras::prelude::*;

functional! {
    struct Unused(a: [6], extra: [3]) -> out {
        let h = Dense(4)(a);
        let dead = Dense(2)(h);
        let never = Dense(3);
        let out = Dense(1)(h);
    }
}

functional! {
    struct Names(a: [6]) -> out {
        let h = Dense(4)(missing);
        let g = a(h);
        let d = Dense(2, name = "a");
        let k = Dense(4, name = "k");
        let j = Dense(1)(k);
        let out = Dense(1)(a);
    }
}

functional! {
    struct NoLayer(a: [6]) -> a {
        let h = Dens(4)(a);
    }
}

fn main() {}

use keras::prelude::*;

functional! {
    struct Net(a: [6], b: [3]) -> out {
        let s = CustomScaleLayer(0.5)(a, b);
        let t = CustomScaleLayer(0.5)(a, a, a);
        let u = CustomScaleLayer()(a, a);
        let v = CustomScaleLayer(scale = "big")(a, a);
        let out = Dense(1)(s);
    }
}

fn main() {}

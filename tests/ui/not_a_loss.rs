// A closure is not a loss: the error says what a loss is and how to make one of a closure.
use keras::prelude::*;

sequential! {
    struct Net = Dense(1, in = 4);
}

fn main() {
    let model = Net::new(&Cpu::default());
    let _ = model.compile(Sgd::default(), |t: &[f32], p: &[f32]| (t[0] - p[0]).abs(), ["mae"]);
}

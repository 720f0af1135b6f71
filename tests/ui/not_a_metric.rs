// A number is not a metric: the error lists what a metric can be.
use keras::prelude::*;

sequential! {
    struct Net = Dense(1, in = 4);
}

fn main() {
    let model = Net::new(&Cpu::default());
    let _ = model.compile(Sgd::default(), "mse", [0.5f32]);
}

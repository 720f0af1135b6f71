use keras::ndarray::Array2;
use keras::prelude::*;

sequential! {
    struct Net = Dense(1, in = 4);
}

fn main() {
    let x = Array2::<f32>::zeros((8, 4));
    let y = Array2::<f32>::zeros((8, 1));
    let mut model = Net::new(&Cpu::default());
    model.fit(&x, &y, FitArgs::default());
}

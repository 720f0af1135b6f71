use keras::prelude::*;

sequential! {
    struct Flat = Input(20) => LSTM(32) => Dense(1, sigmoid);
}

sequential! {
    struct Image = Input((8, 8, 3)) => GRU(4);
}

sequential! {
    struct Stacked = Input((10, 4)) => SimpleRNN(8) => SimpleRNN(8);
}

fn main() {}

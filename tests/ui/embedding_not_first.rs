use keras::prelude::*;

sequential! {
    struct Late = Input(20) => Dense(16) => Embedding(1000, 16) => Flatten() => Dense(1);
}

sequential! {
    struct Twice = Input(20) => Embedding(1000, 16) => Embedding(16, 4) => LSTM(8);
}

fn main() {}

use keras::prelude::*;

sequential! {
    struct NotRecurrent = Input((5, 3)) => Bidirectional(Dense(4));
}

sequential! {
    struct NotALayer = Input((5, 3)) => Bidirectional(4);
}

sequential! {
    struct Mode = Input((5, 3)) => Bidirectional(LSTM(4), merge_mode = "max");
}

sequential! {
    struct Backwards = Input((5, 3)) => Bidirectional(GRU(4, go_backwards = true));
}

sequential! {
    struct Flat = Input(5) => Bidirectional(LSTM(4));
}

sequential! {
    struct InnerShape = Input((5, 3)) => Bidirectional(SimpleRNN(4, in = (5, 3)));
}

fn main() {}

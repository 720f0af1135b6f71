use keras::prelude::*;

sequential! {
    struct NoUnits = Input((5, 3)) => LSTM(activation = tanh);
}

sequential! {
    struct ZeroUnits = Input((5, 3)) => GRU(0);
}

sequential! {
    struct Flags = Input((5, 3)) => SimpleRNN(4, return_sequences = 1, go_backwards = "yes");
}

sequential! {
    struct WrongKeyword = Input((5, 3)) => SimpleRNN(4, recurrent_activation = sigmoid);
}

sequential! {
    struct OldGru = Input((5, 3)) => GRU(4, reset_after = "false");
}

sequential! {
    struct SoftmaxState = Input((5, 3)) => LSTM(4, softmax);
}

sequential! {
    struct BadEmbedding = Input(5) => Embedding(0, 4) => Flatten();
}

sequential! {
    struct HalfEmbedding = Input(5) => Embedding(10) => Flatten();
}

fn main() {}

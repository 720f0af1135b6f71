use keras::prelude::*;

sequential! {
    struct NoSteps = Input(8) => TimeDistributed(Dense(3));
}

sequential! {
    struct NotALayer = Input((5, 8)) => TimeDistributed(3);
}

sequential! {
    struct InnerShape = Input((5, 8)) => TimeDistributed(Dense(3, in = 8));
}

sequential! {
    struct InnerRank = Input((5, 8)) => TimeDistributed(Conv2D(2, 3));
}

sequential! {
    struct WrappedIds = Input((5, 8)) => TimeDistributed(Embedding(10, 4));
}

sequential! {
    struct WrappedRnn = Input((5, 8, 3)) => TimeDistributed(LSTM(4));
}

fn main() {}

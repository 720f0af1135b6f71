use keras::prelude::*;

// An input dimension of zero.
sequential! {
    struct EmptyInput = Input((0, 5)) => Flatten() => Dense(1);
}

// A pooling window of zero.
sequential! {
    struct ZeroPool = Input((8, 8, 1)) => MaxPooling2D(0) => Flatten() => Dense(1);
}

// Strides and dilation together (Keras refuses them for Conv2D).
sequential! {
    struct StridedDilated = Input((16, 16, 1)) => Conv2D(4, 3, strides = 2, dilation_rate = 2);
}

// Reshape with -1: the known sizes must divide the input.
sequential! {
    struct NotAMultiple = Input(12) => Reshape((-1, 5));
}

// Reshape: at most one -1, no zero.
sequential! {
    struct TwoUnknowns = Input(12) => Reshape((-1, -1));
}

sequential! {
    struct ZeroDim = Input(12) => Reshape((0, 12));
}

// 1-D pooling needs (steps, channels); 2-D global pooling needs (h, w, c).
sequential! {
    struct Pool1dRank = Input((4, 4, 2)) => AveragePooling1D(2);
}

sequential! {
    struct GlobalRank = Input(8) => GlobalMaxPooling2D();
}

// Ids travel as f32: the vocabulary is at most 2^24.
sequential! {
    struct HugeVocabulary = Input(4) => Embedding(20000000, 8);
}

fn main() {}

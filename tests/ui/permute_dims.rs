use keras::prelude::*;

sequential! {
    struct NotAPermutation = Input((3, 4)) => Permute((2, 3));
}

sequential! {
    struct ZeroBased = Input((3, 4)) => Permute((0, 1));
}

fn main() {}

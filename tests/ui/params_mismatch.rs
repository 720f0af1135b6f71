use keras::prelude::*;

sequential! {
    #[params(60)]
    struct Net = Dense(8, in = 4, params = 41) => Dense(1, params = 9);
}

fn main() {}

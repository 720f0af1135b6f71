//! The functional models of the group E fixtures (shared layers, merges, several inputs), and
//! those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

functional! {
    /// E_functional_shared_dense_add.
    pub struct SharedDenseAdd(in_a: [6], in_b: [6]) -> out {
        let shared = Dense(4, relu, name = "shared_dense");
        let a = shared(in_a);
        let b = shared(in_b);
        let s = Add()(a, b);
        let out = Dense(2, softmax, name = "dense_out")(s);
    }

    /// E_functional_two_input_concat.
    pub struct TwoInputConcat(in_a: [6], in_b: [3]) -> out {
        let a = Dense(4, relu, name = "dense_a")(in_a);
        let b = Dense(4, relu, name = "dense_b")(in_b);
        let joined = Concatenate(name = "concat")(a, b);
        let out = Dense(2, softmax, name = "dense_out")(joined);
    }

    /// gen_functional.py `merges`.
    pub struct Merges(in_a: [5], in_b: [5]) -> out {
        let ha = Dense(4, tanh, name = "ha")(in_a);
        let hb = Dense(4, tanh, name = "hb")(in_b);
        let d = Subtract(name = "sub")(ha, hb);
        let m = Multiply(name = "mul")(d, ha, hb);
        let av = Average(name = "avg")(m, ha);
        let mx = Maximum(name = "max")(av, hb);
        let mn = Minimum(name = "min")(mx, ha, d);
        let c = Concatenate(name = "cat")(mn, av);
        let out = Dense(3, softmax, name = "out")(c);
    }

    /// gen_functional.py `shared_three`.
    pub struct SharedThree(x: [6]) -> out {
        let h = Dense(5, tanh, name = "h")(x);
        let shared = Dense(5, tanh, name = "shared");
        let a = shared(h);
        let b = shared(a);
        let c = shared(b);
        let s = Add(name = "add")(h, b, c);
        let out = Dense(3, softmax, name = "out")(s);
    }

    /// gen_functional.py `three_inputs`: `meta` is nearer the output than `a` and `b`, so Keras
    /// lists the layers (and weights) by depth, not in the order they are written.
    pub struct ThreeInputs(a: [6], b: [3], meta: [2]) -> out {
        let enc = Dense(4, relu, name = "enc");
        let x = enc(a);
        let m = Dense(3, tanh, name = "m")(meta);
        let y = Dense(4, relu, name = "by")(b);
        let j = Concatenate(name = "j")(x, y, m);
        let out = Dense(3, softmax, name = "out")(j);
    }

    /// gen_functional.py `chain`: summarized as Keras summarizes a Sequential model.
    pub struct Chain(x: [6]) -> out {
        let h = Dense(4, relu, name = "h")(x);
        let d = Dropout(0.0, name = "drop")(h);
        let out = Dense(3, softmax, name = "out")(d);
    }

    /// gen_functional.py `text_meta`: token ids beside floats.
    pub struct TextMeta(ids: [6], meta: [3]) -> out {
        let e = Embedding(20, 4, name = "emb")(ids);
        let p = GlobalAveragePooling1D(name = "pool")(e);
        let m = Dense(4, relu, name = "m")(meta);
        let j = Concatenate(name = "j")(p, m);
        let out = Dense(3, softmax, name = "out")(j);
    }

    /// gen_functional.py `inner_axis`.
    pub struct InnerAxis(seq: [3, 4]) -> out {
        let a = Dense(2, tanh, name = "a")(seq);
        let b = Dense(3, tanh, name = "b")(seq);
        let c = Concatenate(axis = 1, name = "rows")(a, a);
        let d = Concatenate(axis = -1, name = "cols")(b, a);
        let f1 = Flatten(name = "f1")(c);
        let f2 = Flatten(name = "f2")(d);
        let j = Concatenate(name = "j")(f1, f2);
        let out = Dense(3, softmax, name = "out")(j);
    }
}

const _: () = assert!(SharedDenseAdd::PARAMS == 38 && Merges::PARAMS == 75);

/// Every functional fixture, trained on `device` to Keras's numbers.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<SharedDenseAdd<B>>(device, "E_functional_shared_dense_add", 1e-5);
    run_fixture_on::<TwoInputConcat<B>>(device, "E_functional_two_input_concat", 1e-5);
    run_fixture_on::<Merges<B>>(device, "E_functional_merges", 1e-5);
    run_fixture_on::<SharedThree<B>>(device, "E_functional_shared_three", 1e-5);
    run_fixture_on::<ThreeInputs<B>>(device, "E_functional_three_inputs", 1e-5);
    run_fixture_on::<Chain<B>>(device, "E_functional_chain", 1e-5);
    run_fixture_on::<InnerAxis<B>>(device, "E_functional_inner_axis", 1e-5);
    run_fixture_on::<TextMeta<B>>(device, "E_functional_text_meta", 1e-5);
}

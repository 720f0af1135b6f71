//! The models of the recurrent and embedding fixtures, and those fixtures run on a device.
#![allow(dead_code)]

use crate::common::run_fixture_on;
use keras::prelude::*;

sequential! { pub struct EmbedNet = Input(5) => Embedding(10, 4) => Flatten() => Dense(3, softmax); }
sequential! { pub struct RnnLast = Input((4, 3)) => SimpleRNN(5) => Dense(3, softmax); }
sequential! { pub struct RnnSeq = Input((4, 3)) => SimpleRNN(5, return_sequences = true) => Flatten() => Dense(3, softmax); }
sequential! { pub struct LstmLast = Input((4, 3)) => LSTM(5) => Dense(3, softmax); }
sequential! { pub struct LstmSeq = Input((4, 3)) => LSTM(5, return_sequences = true) => Flatten() => Dense(3, softmax); }
sequential! { pub struct GruLast = Input((4, 3)) => GRU(5) => Dense(3, softmax); }
sequential! { pub struct GruSeq = Input((4, 3)) => GRU(5, return_sequences = true) => Flatten() => Dense(3, softmax); }
sequential! { pub struct LstmBackSeq = Input((4, 3)) => LSTM(5, return_sequences = true, go_backwards = true) => Flatten() => Dense(3, softmax); }
sequential! { pub struct GruBack = Input((4, 3)) => GRU(5, go_backwards = true) => Dense(3, softmax); }
sequential! { pub struct RnnReluNoBias = Input((4, 3)) => SimpleRNN(5, relu, use_bias = false, go_backwards = true) => Dense(3, softmax); }
sequential! {
    pub struct LstmOptions = Input((4, 3)) => LSTM(5, softsign, recurrent_activation = hard_sigmoid, use_bias = false) => Dense(3, softmax);
}
sequential! { pub struct EmbedLstm = Input(6) => Embedding(12, 4) => LSTM(6) => Dense(3, softmax); }
sequential! { pub struct BiLstmSeq = Input((4, 3)) => Bidirectional(LSTM(4, return_sequences = true)) => Flatten() => Dense(3, softmax); }
sequential! { pub struct BiGruSum = Input((4, 3)) => Bidirectional(GRU(4), merge_mode = "sum") => Dense(3, softmax); }
sequential! { pub struct BiRnnMulSeq = Input((4, 3)) => Bidirectional(SimpleRNN(4, return_sequences = true), "mul") => Flatten() => Dense(3, softmax); }
sequential! { pub struct BiLstmAve = Input((4, 3)) => Bidirectional(LSTM(4), merge_mode = ave) => Dense(3, softmax); }

/// Every fixture of this group, trained on `device` to Keras's numbers.
pub fn run_all<B: Backend>(device: &B) {
    run_fixture_on::<EmbedNet<B>>(device, "D_layer_embedding", 1e-5);
    run_fixture_on::<RnnLast<B>>(device, "D_layer_simplernn_last", 1e-5);
    run_fixture_on::<RnnSeq<B>>(device, "D_layer_simplernn_seq", 1e-5);
    run_fixture_on::<LstmLast<B>>(device, "D_layer_lstm_last", 1e-5);
    run_fixture_on::<LstmSeq<B>>(device, "D_layer_lstm_seq", 1e-5);
    run_fixture_on::<GruLast<B>>(device, "D_layer_gru_last", 1e-5);
    run_fixture_on::<GruSeq<B>>(device, "D_layer_gru_seq", 1e-5);
    run_fixture_on::<LstmBackSeq<B>>(device, "D_layer_lstm_backwards_seq", 1e-5);
    run_fixture_on::<GruBack<B>>(device, "D_layer_gru_backwards_last", 1e-5);
    run_fixture_on::<RnnReluNoBias<B>>(device, "D_layer_simplernn_relu_nobias_backwards", 1e-5);
    run_fixture_on::<LstmOptions<B>>(device, "D_layer_lstm_options", 1e-5);
    run_fixture_on::<EmbedLstm<B>>(device, "D_layer_embedding_lstm", 1e-5);
    run_fixture_on::<BiLstmSeq<B>>(device, "D_layer_bidirectional_lstm_concat_seq", 1e-5);
    run_fixture_on::<BiGruSum<B>>(device, "D_layer_bidirectional_gru_sum", 1e-5);
    run_fixture_on::<BiRnnMulSeq<B>>(device, "D_layer_bidirectional_simplernn_mul_seq", 1e-5);
    run_fixture_on::<BiLstmAve<B>>(device, "D_layer_bidirectional_lstm_ave", 1e-5);
}

// The activation layers' arguments are checked as Keras checks them, and their shape rules at the
// layer: a negative slope, cap or threshold, a non-number, a softmax over an axis other than the
// last, a PReLU sharing an axis its input lacks or the batch axis.
use keras::prelude::*;

sequential! {
    pub struct Slopes = Input(4) => ReLU(negative_slope = -0.1) => LeakyReLU(-1.0) => ReLU(max_value = -6) => ReLU(threshold = -0.5);
}
sequential! {
    pub struct Words = Input(4) => ELU(alpha = big) => ReLU(max_value = None) => Softmax(axis = 0);
}
sequential! {
    pub struct Axes = Input((3, 4)) => Softmax(axis = 1) => PReLU(shared_axes = [3]);
}
sequential! {
    pub struct Batch = Input((3, 4)) => PReLU(shared_axes = [0, 1]);
}
sequential! {
    pub struct Missing = Input((3, 4)) => PReLU(shared_axes = (1, 3));
}

fn main() {}

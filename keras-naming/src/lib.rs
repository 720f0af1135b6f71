#![warn(missing_docs)]
//! Keras's naming rules, in one place for the keras-rs macros (at compile time) and runtime (at
//! run time): the snake_case of a class name that Keras derives layer and model names from, and
//! the "did you mean" suggestion for a mistyped name.

/// Keras's `naming.to_snake_case` of a class name: `Conv2DTranspose` -> `conv2d_transpose`,
/// `SimpleRNN` -> `simple_rnn`, `XORNet` -> `xor_net`. Characters other than letters, digits
/// and `_` are dropped.
///
/// ```
/// assert_eq!(keras_naming::snake_case("FashionNet"), "fashion_net");
/// assert_eq!(keras_naming::snake_case("MaxPooling2D"), "max_pooling2d");
/// ```
pub fn snake_case(class: &str) -> String {
    let c: Vec<char> = class.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    let mut out = String::new();
    for (i, &ch) in c.iter().enumerate() {
        if i > 0 && ch.is_uppercase() {
            // `(.)([A-Z][a-z]+)` and `([a-z])([A-Z])`.
            let next_lower = c.get(i + 1).is_some_and(|n| n.is_lowercase());
            if next_lower || c[i - 1].is_lowercase() {
                out.push('_');
            }
        }
        out.extend(ch.to_lowercase());
    }
    out
}

/// The candidate closest to `word` by edit distance (ignoring case), if close enough to be a
/// likely typo: at most a third of the candidate's length plus one edit, and fewer edits than
/// the candidate has letters.
///
/// ```
/// assert_eq!(keras_naming::suggest("Dence", &["Input", "Dense", "Dropout"]), Some("Dense"));
/// assert_eq!(keras_naming::suggest("Conv2D", &["Input", "Dense"]), None);
/// ```
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates
        .iter()
        .map(|c| (distance(&w, &c.to_lowercase()), *c))
        .filter(|&(d, c)| d <= (c.len() / 3).max(1) + 1 && d < c.len())
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// The candidate `word` is one slip away from (case aside): a letter missing, extra or wrong,
/// as `Dence` is from `Dense`; stricter than [`suggest`], for telling a typo from a new name.
pub fn typo_of<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_lowercase();
    candidates.iter().find(|c| distance(&w, &c.to_lowercase()) <= 1).copied()
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_keras() {
        for (class, snake) in [
            ("Mlp", "mlp"),
            ("FashionNet", "fashion_net"),
            ("XORNet", "xor_net"),
            ("Net2D", "net2d"),
            ("MaxPooling2D", "max_pooling2d"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("SimpleRNN", "simple_rnn"),
            ("GRU", "gru"),
            ("LSTM", "lstm"),
            ("Pinball", "pinball"),
            ("already_snake", "already_snake"),
        ] {
            assert_eq!(snake_case(class), snake, "{class}");
        }
    }

    #[test]
    fn a_typo_is_one_slip() {
        let known = ["Dense", "Conv2D", "UpSampling2D", "ReLU", "Attention"];
        assert_eq!(typo_of("Dence", &known), Some("Dense"));
        assert_eq!(typo_of("Dens", &known), Some("Dense"));
        assert_eq!(typo_of("conv2d", &known), Some("Conv2D"));
        assert_eq!(typo_of("ReLU6", &known), Some("ReLU"));
        assert_eq!(typo_of("Sampling", &known), None);
        assert_eq!(typo_of("MyDense", &known), None);
        assert_eq!(typo_of("Affine", &known), None);
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(suggest("Dence", &["Input", "Dense", "Dropout"]), Some("Dense"));
        assert_eq!(suggest("rleu", &["relu", "elu", "selu"]), Some("relu"));
        assert_eq!(suggest("unit", &["units", "activation"]), Some("units"));
        assert_eq!(suggest("Conv2D", &["Input", "Dense", "Dropout"]), None);
        assert_eq!(suggest("mse", &["mean_squared_error", "mae"]), Some("mae"));
        assert_eq!(
            suggest("categorial_crossentropy", &["categorical_crossentropy", "binary_crossentropy"]),
            Some("categorical_crossentropy")
        );
    }
}

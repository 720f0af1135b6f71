//! `Logs` (metric values at a point in training) and `History` (their values per epoch).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Named metric values (`loss`, `accuracy`, `val_loss`, ..), sorted by name as Keras logs them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs {
    entries: Vec<(Cow<'static, str>, f32)>,
}

impl Logs {
    /// No values.
    pub fn new() -> Self {
        Logs::default()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<f32> {
        self.entries.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    /// The loss.
    ///
    /// # Panics
    /// If the logs hold no `loss` (logs from `fit`, `evaluate` and `*_on_batch` always do).
    pub fn loss(&self) -> f32 {
        self["loss"]
    }

    /// Sets `name` to `value`, keeping names sorted.
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, value: f32) {
        let name = name.into();
        match self.entries.binary_search_by(|(n, _)| n.as_ref().cmp(name.as_ref())) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (name, value)),
        }
    }

    /// Removes every value (keeping the allocation).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> {
        self.entries.iter().map(|(n, v)| (n.as_ref(), *v))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl std::ops::Index<&str> for Logs {
    type Output = f32;
    fn index(&self, name: &str) -> &f32 {
        match self.entries.iter().find(|(n, _)| n == name) {
            Some((_, v)) => v,
            None => panic!("no `{name}` in logs (have: {})", self.entries.iter().map(|(n, _)| n.as_ref()).collect::<Vec<_>>().join(", ")),
        }
    }
}

/// `accuracy: 0.8242 - loss: 0.4991`, as Keras prints them.
impl fmt::Display for Logs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (n, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(" - ")?;
            }
            write!(f, "{n}: {v:.4}")?;
        }
        Ok(())
    }
}

/// What `fit` returns: every logged value, per epoch (Keras's `History.history`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// The epochs run (0-based).
    pub epochs: Vec<usize>,
    values: BTreeMap<String, Vec<f32>>,
}

impl History {
    /// The values of `name` per epoch (`loss`, `accuracy`, `val_loss`, ..).
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.values.get(name).map(Vec::as_slice)
    }

    /// The training loss per epoch.
    pub fn loss(&self) -> &[f32] {
        self.get("loss").unwrap_or(&[])
    }

    /// The names logged, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Records the logs of `epoch`.
    pub fn push(&mut self, epoch: usize, logs: &Logs) {
        self.epochs.push(epoch);
        for (n, v) in logs.iter() {
            match self.values.get_mut(n) {
                Some(vs) => vs.push(v),
                None => {
                    self.values.insert(n.to_string(), vec![v]);
                }
            }
        }
    }
}

impl std::ops::Index<&str> for History {
    type Output = [f32];
    fn index(&self, name: &str) -> &[f32] {
        match self.get(name) {
            Some(v) => v,
            None => panic!("no `{name}` in history (have: {})", self.keys().collect::<Vec<_>>().join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_stay_sorted_and_print_like_keras() {
        let mut l = Logs::new();
        l.set("loss", 0.4991);
        l.set("accuracy", 0.8242);
        l.set("val_loss", 0.5);
        assert_eq!(l.to_string(), "accuracy: 0.8242 - loss: 0.4991 - val_loss: 0.5000");
        l.set("loss", 0.3);
        assert_eq!(l["loss"], 0.3);
        let mut h = History::default();
        h.push(0, &l);
        h.push(1, &l);
        assert_eq!(h["accuracy"], [0.8242, 0.8242]);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["accuracy", "loss", "val_loss"]);
    }
}

//! `summary()`: Keras 3's table, character for character as Keras prints it to a pipe.

use crate::error::batch_shape;
use crate::model::{LayerSpec, Model, NodeSpec};
use std::fmt;

/// Column widths (between the borders, padding included) of Keras's Sequential summary at its
/// default 80-column console: 34/80/100 % of 76 characters, less rich's borders.
const WIDTHS: [usize; 3] = [33, 24, 15];

/// Column widths of Keras's summary of a functional model that is not a plain chain (it adds
/// "Connected to"): 30/56/74/100 % of the same width.
const FUNCTIONAL_WIDTHS: [usize; 4] = [21, 19, 12, 19];

/// A model summary; `Display` renders Keras's table.
#[derive(Clone, Debug)]
pub struct Summary {
    name: &'static str,
    layers: &'static [LayerSpec],
    trainable: usize,
    non_trainable: usize,
    /// What feeds each layer (Keras's "Connected to"), for a functional model that is not a plain chain.
    connections: Option<Vec<String>>,
}

impl Summary {
    /// The summary of model type `M`.
    pub fn of<M: Model>() -> Summary {
        Summary {
            name: M::NAME,
            layers: M::LAYERS,
            trainable: M::TRAINABLE_PARAMS,
            non_trainable: M::NON_TRAINABLE_PARAMS,
            connections: connections(M::LAYERS, M::NODES),
        }
    }
}

/// Keras's "Connected to" column, one cell per layer (`dense[0][0], dense[1][0]`; `-` for an
/// input), unless the model is a plain chain (one input, every call on one tensor, no layer
/// called twice, no tensor read twice: Keras's one node per depth), which Keras prints as it
/// prints a Sequential model.
fn connections(layers: &[LayerSpec], nodes: &[NodeSpec]) -> Option<Vec<String>> {
    let inputs = layers.iter().filter(|l| l.class == "InputLayer").count();
    let shared = (0..layers.len()).any(|i| nodes.iter().filter(|n| n.layer == i).count() > 1);
    let read_twice =
        nodes.iter().flat_map(|n| n.inputs).enumerate().any(|(k, t)| nodes.iter().flat_map(|n| n.inputs).skip(k + 1).any(|u| u == t));
    if nodes.is_empty() || (inputs == 1 && !shared && !read_twice && nodes.iter().all(|n| n.inputs.len() == 1)) {
        return None;
    }
    Some(
        (0..layers.len())
            .map(|i| {
                let inbound: Vec<String> = nodes
                    .iter()
                    .filter(|n| n.layer == i)
                    .flat_map(|n| n.inputs.iter().map(|&(l, call)| format!("{}[{call}][0]", layers[l].name)))
                    .collect();
                if inbound.is_empty() { "-".to_string() } else { inbound.join(", ") }
            })
            .collect(),
    )
}

/// `1,234,567`.
pub fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Keras's `readable_memory_size` of `count` float32 values: `99.46 KB`.
fn memory(count: usize) -> String {
    let mut size = count as f64 * 4.0;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

/// Splits `text` into lines of at most `width` characters at spaces, as rich wraps a cell; a
/// word longer than the cell is cut with an ellipsis.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let word: String =
            if word.chars().count() > width { word.chars().take(width - 1).chain(['…']).collect() } else { word.to_string() };
        if line.is_empty() {
            line = word;
        } else if line.chars().count() + 1 + word.chars().count() <= width {
            line.push(' ');
            line.push_str(&word);
        } else {
            lines.push(std::mem::take(&mut line));
            line = word;
        }
    }
    lines.push(line);
    lines
}

fn border(f: &mut fmt::Formatter<'_>, widths: &[usize], [left, fill, mid, right]: [char; 4]) -> fmt::Result {
    f.write_char(left)?;
    for (i, w) in widths.iter().enumerate() {
        for _ in 0..*w {
            f.write_char(fill)?;
        }
        f.write_char(if i + 1 < widths.len() { mid } else { right })?;
    }
    f.write_char('\n')
}

/// One table row; the third column (`Param #`) is right-aligned.
fn row(f: &mut fmt::Formatter<'_>, widths: &[usize], sep: char, cells: &[&str]) -> fmt::Result {
    let wrapped: Vec<Vec<String>> = cells.iter().zip(widths).map(|(c, w)| wrap(c, w - 2)).collect();
    let height = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    for line in 0..height {
        f.write_char(sep)?;
        for (col, w) in widths.iter().enumerate() {
            let text = wrapped[col].get(line).map_or("", String::as_str);
            let inner = w - 2;
            if col == 2 {
                write!(f, " {text:>inner$} ")?;
            } else {
                write!(f, " {text:<inner$} ")?;
            }
            f.write_char(sep)?;
        }
        f.write_char('\n')?;
    }
    Ok(())
}

use fmt::Write as _;

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Model: \"{}\"", self.name)?;
        let functional = self.connections.is_some();
        let widths: &[usize] = if functional { &FUNCTIONAL_WIDTHS } else { &WIDTHS };
        let header: &[&str] = &["Layer (type)", "Output Shape", "Param #", "Connected to"];
        border(f, widths, ['┏', '━', '┳', '┓'])?;
        row(f, widths, '┃', &header[..widths.len()])?;
        border(f, widths, ['┡', '━', '╇', '┩'])?;
        for (i, l) in self.layers.iter().enumerate() {
            if i > 0 {
                border(f, widths, ['├', '─', '┼', '┤'])?;
            }
            let (name, shape, params) = (format!("{} ({})", l.name, l.class), batch_shape(l.output_shape), thousands(l.params));
            let inbound = self.connections.as_ref().map_or("", |c| c[i].as_str());
            row(f, widths, '│', &[name.as_str(), &shape, &params, inbound][..widths.len()])?;
        }
        border(f, widths, ['└', '─', '┴', '┘'])?;
        let total = self.trainable + self.non_trainable;
        writeln!(f, " Total params: {} ({})", thousands(total), memory(total))?;
        writeln!(f, " Trainable params: {} ({})", thousands(self.trainable), memory(self.trainable))?;
        writeln!(f, " Non-trainable params: {} ({})", thousands(self.non_trainable), memory(self.non_trainable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_sizes_as_keras_prints_them() {
        assert_eq!(thousands(25_461), "25,461");
        assert_eq!(thousands(1_863_690), "1,863,690");
        assert_eq!(thousands(0), "0");
        assert_eq!(memory(25_461), "99.46 KB");
        assert_eq!(memory(0), "0.00 B");
        assert_eq!(memory(1_863_690), "7.11 MB");
    }

    #[test]
    fn long_cells_wrap_at_spaces_and_cut_long_words() {
        assert_eq!(wrap("input_layer (InputLayer)", 17), ["input_layer", "(InputLayer)"]);
        assert_eq!(wrap("input_layer_1[0][0]", 17), ["input_layer_1[0]…"]);
        assert_eq!(wrap("dense (Dense)", 31), ["dense (Dense)"]);
    }
}

//! The one error type of keras-rs.

use std::fmt;

/// Everything that can go wrong at run time: bad user data, bad configuration, I/O.
///
/// Each variant's message says what was expected and what was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An array's shape does not fit the model or another array.
    #[error("{what}: expected shape {expected}, found {found}")]
    Shape {
        /// The argument or tensor whose shape is wrong (`x`, `y`, `weight 1 (dense/bias)`).
        what: String,
        /// The shape the model needs, in Keras notation (`(None, 784)`).
        expected: String,
        /// The shape that was given.
        found: String,
    },
    /// A data set has no samples.
    #[error("{what} is empty: expected at least one sample")]
    Empty {
        /// The argument that is empty.
        what: String,
    },
    /// A NaN or an infinity in user data.
    #[error("{what} contains a non-finite value ({value}) at flat index {index}: expected finite numbers")]
    NonFinite {
        /// The argument holding the value.
        what: String,
        /// The offending value.
        value: f32,
        /// Its index in the row-major flattened array.
        index: usize,
    },
    /// A value outside its allowed range (a class label too large, a negative batch size).
    #[error("{what}: expected {expected}, found {found}")]
    Value {
        /// The argument or setting.
        what: String,
        /// What is allowed.
        expected: String,
        /// What was given.
        found: String,
    },
    /// A name that keras-rs does not know (a loss, a metric, an optimizer).
    #[error("unknown {kind} `{name}`: {}expected one of {expected}", did_you_mean(name, expected))]
    Unknown {
        /// What kind of thing was named (`loss`, `metric`).
        kind: &'static str,
        /// The name given.
        name: String,
        /// The valid names.
        expected: String,
    },
    /// A configuration that does not apply to this model (a metric that cannot apply to the output).
    #[error("{0}")]
    Config(String),
    /// An operating-system I/O error, with the path involved.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file whose contents are not what its format requires.
    #[error("{path}: {message}")]
    Format {
        /// The file involved.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// A device (backend) failure: out of memory, a driver error.
    #[error("device error: {0}")]
    Device(String),
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::Shape`] error.
    pub fn shape(what: impl Into<String>, expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        Error::Shape { what: what.into(), expected: expected.to_string(), found: found.to_string() }
    }

    /// A [`Error::Value`] error.
    pub fn value(what: impl Into<String>, expected: impl fmt::Display, found: impl fmt::Display) -> Self {
        Error::Value { what: what.into(), expected: expected.to_string(), found: found.to_string() }
    }
}

/// Formats a per-sample shape as Keras prints a batch shape: `(None, 28, 28)`.
pub fn batch_shape(per_sample: &[usize]) -> String {
    let mut s = String::from("(None");
    for d in per_sample {
        s.push_str(", ");
        s.push_str(&d.to_string());
    }
    s.push(')');
    s
}

/// Formats a full shape as a tuple: `(60000, 784)`; a 1-D shape gets Python's trailing comma.
pub fn tuple_shape(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

/// `did you mean `x`? ` for a name close to one of `expected` (a comma-separated list), else
/// nothing.
fn did_you_mean(name: &str, expected: &str) -> String {
    let candidates: Vec<&str> = expected.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    keras_naming::suggest(name, &candidates).map(|s| format!("did you mean `{s}`? ")).unwrap_or_default()
}

//! Users' own data: CSV files and NumPy's `.npy` / `.npz` files, as ndarray arrays.

use crate::{Error, Result};
use ndarray::{Array2, ArrayD};
use std::fs::File;
use std::path::Path;

fn format_error(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Format { path: path.display().to_string(), message: message.to_string() }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|source| Error::Io { path: path.display().to_string(), source })
}

/// A CSV file of numbers: the column names (from the header line, or `column_0`, `column_1`, ..
/// without one) and the values as a `(rows, columns)` array.
#[derive(Clone, Debug, PartialEq)]
pub struct Csv {
    /// The column names.
    pub columns: Vec<String>,
    /// The values, one row per line.
    pub data: Array2<f32>,
}

impl Csv {
    /// The column called `name`, or an error listing the columns.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| Error::value("CSV column", format!("one of {}", self.columns.join(", ")), format!("`{name}`")))
    }

    /// Splits off one column as targets: `(features, targets)`, as tutorials do with
    /// `df.pop("label")`.
    pub fn split_target(&self, name: &str) -> Result<(Array2<f32>, ndarray::Array1<f32>)> {
        let t = self.column_index(name)?;
        let keep: Vec<usize> = (0..self.columns.len()).filter(|&c| c != t).collect();
        Ok((self.data.select(ndarray::Axis(1), &keep), self.data.column(t).to_owned()))
    }
}

/// Reads a CSV file of numbers (comma-separated; `header` says whether the first line names the
/// columns). A cell that is not a number, or a line with a different number of cells, is an
/// error naming its line and column.
pub fn from_csv(path: impl AsRef<Path>, header: bool) -> Result<Csv> {
    let path = path.as_ref();
    let mut reader = csv::ReaderBuilder::new().has_headers(header).flexible(true).trim(csv::Trim::All).from_reader(open(path)?);
    let mut columns: Vec<String> =
        if header { reader.headers().map_err(|e| format_error(path, e))?.iter().map(str::to_string).collect() } else { Vec::new() };
    let mut values = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| format_error(path, e))?;
        let line = record.position().map_or(rows + 1 + usize::from(header), |p| p.line() as usize);
        if columns.is_empty() {
            columns = (0..record.len()).map(|i| format!("column_{i}")).collect();
        }
        if record.len() != columns.len() {
            return Err(format_error(path, format!("line {line}: expected {} cells, found {}", columns.len(), record.len())));
        }
        for (c, cell) in record.iter().enumerate() {
            let v: f32 = cell
                .parse()
                .map_err(|_| format_error(path, format!("line {line}, column `{}`: expected a number, found `{cell}`", columns[c])))?;
            values.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::Empty { what: path.display().to_string() });
    }
    let data = Array2::from_shape_vec((rows, columns.len()), values).expect("every row has one value per column");
    Ok(Csv { columns, data })
}

/// Reads a `.npy` file of float32 values (as `np.save` writes them).
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    ndarray_npy::ReadNpyExt::read_npy(open(path)?).map_err(|e: ndarray_npy::ReadNpyError| format_error(path, e))
}

/// Reads every array of a `.npz` file (`np.savez` or `np.savez_compressed`) as float32, by name.
/// Integer and float64 arrays are converted; other types are an error naming the array.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    let path = path.as_ref();
    let mut npz = ndarray_npy::NpzReader::new(open(path)?).map_err(|e| format_error(path, e))?;
    let names = npz.names().map_err(|e| format_error(path, e))?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let key = name.trim_end_matches(".npy").to_string();
        let arr: ArrayD<f32> = match npz.by_name::<ndarray::OwnedRepr<f32>, ndarray::IxDyn>(&name) {
            Ok(a) => a,
            Err(_) => match npz.by_name::<ndarray::OwnedRepr<f64>, ndarray::IxDyn>(&name) {
                Ok(a) => a.mapv(|v| v as f32),
                Err(_) => match npz.by_name::<ndarray::OwnedRepr<i64>, ndarray::IxDyn>(&name) {
                    Ok(a) => a.mapv(|v| v as f32),
                    Err(_) => match npz.by_name::<ndarray::OwnedRepr<u8>, ndarray::IxDyn>(&name) {
                        Ok(a) => a.mapv(f32::from),
                        Err(e) => {
                            return Err(format_error(path, format!("array `{key}`: expected float32, float64, int64 or uint8 values: {e}")));
                        }
                    },
                },
            },
        };
        out.push((key, arr));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("keras-rs-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn csv_with_and_without_header() {
        let p = temp("a.csv", b"x,y,label\n1,2.5,0\n-3, 4e1 ,1\n");
        let csv = from_csv(&p, true).unwrap();
        assert_eq!(csv.columns, ["x", "y", "label"]);
        assert_eq!(csv.data, ndarray::array![[1.0, 2.5, 0.0], [-3.0, 40.0, 1.0]]);
        let (x, y) = csv.split_target("label").unwrap();
        assert_eq!(x, ndarray::array![[1.0, 2.5], [-3.0, 40.0]]);
        assert_eq!(y, ndarray::array![0.0, 1.0]);
        assert!(csv.split_target("z").unwrap_err().to_string().contains("one of x, y, label"));
        let p = temp("b.csv", b"1,2\n3,4\n");
        assert_eq!(from_csv(&p, false).unwrap().columns, ["column_0", "column_1"]);
    }

    #[test]
    fn bad_csv_names_line_and_column() {
        let p = temp("c.csv", b"x,y\n1,2\n3,oops\n");
        let e = from_csv(&p, true).unwrap_err().to_string();
        assert!(e.ends_with("line 3, column `y`: expected a number, found `oops`"), "{e}");
        let p = temp("d.csv", b"x,y\n1,2\n3\n");
        let e = from_csv(&p, true).unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        let p = temp("e.csv", b"x,y\n");
        assert!(matches!(from_csv(&p, true), Err(Error::Empty { .. })));
        assert!(matches!(from_csv("/nonexistent/file.csv", true), Err(Error::Io { .. })));
    }

    /// `np.save("a.npy", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))`.
    const NPY: &[u8] = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }                                                          \n\x00\x00\x80?\x00\x00\x00@\x00\x00@@\x00\x00\x80@\x00\x00\xa0@\x00\x00\xc0@";

    #[test]
    fn npy_reads_and_hostile_bytes_are_errors() {
        let p = temp("a.npy", NPY);
        let a = read_npy(&p).unwrap();
        assert_eq!(a.shape(), [2, 3]);
        assert_eq!(a.as_slice().unwrap(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        for cut in [0, 5, 9, 40, NPY.len() - 3] {
            let p = temp("cut.npy", &NPY[..cut]);
            assert!(read_npy(&p).is_err(), "truncated at {cut}");
        }
        let mut huge = NPY.to_vec();
        let at = huge.windows(6).position(|w| w == b"(2, 3)").unwrap();
        huge[at..at + 6].copy_from_slice(b"(9, 9)");
        assert!(read_npy(temp("huge.npy", &huge)).is_err());
    }
}

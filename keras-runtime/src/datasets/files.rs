//! Users' own data: CSV files and NumPy's `.npy` / `.npz` files, as ndarray arrays.

use crate::{Error, Result};
use ndarray::{Array2, ArrayD};
use std::fs::File;
use std::io::Read;
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
    csv_from(open(path)?, header, &path.display().to_string())
}

/// [`from_csv`] over CSV text from any reader (a string, a network stream); errors name it
/// "CSV data".
///
/// ```
/// let csv = keras_runtime::datasets::from_csv_reader("x,y\n1,2\n3,4\n".as_bytes(), true)?;
/// assert_eq!(csv.columns, ["x", "y"]);
/// assert_eq!(csv.data, ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
/// assert!(keras_runtime::datasets::from_csv_reader("x\nseven\n".as_bytes(), true).is_err());
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub fn from_csv_reader(reader: impl Read, header: bool) -> Result<Csv> {
    csv_from(reader, header, "CSV data")
}

fn csv_from(reader: impl Read, header: bool, shown: &str) -> Result<Csv> {
    let err = |message: String| Error::Format { path: shown.to_string(), message };
    let mut reader = csv::ReaderBuilder::new().has_headers(header).flexible(true).trim(csv::Trim::All).from_reader(reader);
    let mut columns: Vec<String> =
        if header { reader.headers().map_err(|e| err(e.to_string()))?.iter().map(str::to_string).collect() } else { Vec::new() };
    let mut values = Vec::new();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.map_err(|e| err(e.to_string()))?;
        let line = record.position().map_or(rows + 1 + usize::from(header), |p| p.line() as usize);
        if columns.is_empty() {
            columns = (0..record.len()).map(|i| format!("column_{i}")).collect();
        }
        if record.len() != columns.len() {
            return Err(err(format!("line {line}: expected {} cells, found {}", columns.len(), record.len())));
        }
        for (c, cell) in record.iter().enumerate() {
            let v: f32 =
                cell.parse().map_err(|_| err(format!("line {line}, column `{}`: expected a number, found `{cell}`", columns[c])))?;
            values.push(v);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(Error::Empty { what: shown.to_string() });
    }
    Array2::from_shape_vec((rows, columns.len()), values)
        .map_err(|e| err(format!("cannot shape the values: {e}")))
        .map(|data| Csv { columns, data })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io { path: path.display().to_string(), source })
}

/// Reads a `.npy` file of float32 values (as `np.save` writes them).
pub fn read_npy(path: impl AsRef<Path>) -> Result<ArrayD<f32>> {
    let path = path.as_ref();
    npy_f32(&read_file(path)?).map_err(|e| format_error(path, e))
}

/// [`read_npy`] over the bytes of a `.npy` file already in memory; errors name it ".npy data".
///
/// ```
/// let mut npy = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }".to_vec();
/// npy.resize(127, b' ');
/// npy.push(b'\n');
/// npy.extend([1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()));
/// let a = keras_runtime::datasets::read_npy_bytes(&npy)?;
/// assert_eq!(a.as_slice().unwrap(), [1.5, -2.0]);
/// assert!(keras_runtime::datasets::read_npy_bytes(&npy[..npy.len() - 1]).is_err());
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub fn read_npy_bytes(bytes: &[u8]) -> Result<ArrayD<f32>> {
    npy_f32(bytes).map_err(|e| format_error(Path::new(".npy data"), e))
}

/// Reads every array of a `.npz` file (`np.savez` or `np.savez_compressed`) as float32, by name.
/// Integer and float64 arrays are converted; other types are an error naming the array.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, ArrayD<f32>)>> {
    let path = path.as_ref();
    npz_f32(read_file(path)?).map_err(|e| format_error(path, e))
}

/// [`read_npz`] over the bytes of a `.npz` file already in memory; errors name it ".npz data".
pub fn read_npz_bytes(bytes: Vec<u8>) -> Result<Vec<(String, ArrayD<f32>)>> {
    npz_f32(bytes).map_err(|e| format_error(Path::new(".npz data"), e))
}

/// The header of a `.npy` file, checked against the bytes that follow it: its dtype descriptor
/// (`<f4`), and where the data starts. Nothing the file declares is allocated before it is known
/// to be there.
fn npy_header(bytes: &[u8]) -> std::result::Result<(String, usize), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if !bytes.starts_with(MAGIC) {
        return Err("not a .npy file: expected the magic bytes \\x93NUMPY at the start".to_string());
    }
    let truncated = |what: &str| format!("truncated .npy file: it ends inside the {what}");
    let (len, start) = match bytes.get(6) {
        Some(1) => (bytes.get(8..10).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]]))), 10),
        Some(2 | 3) => (bytes.get(8..12).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize), 12),
        Some(v) => return Err(format!("unsupported .npy format version {v}: expected 1, 2 or 3")),
        None => return Err(truncated("version")),
    };
    let end = len
        .ok_or_else(|| truncated("header length"))?
        .checked_add(start)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| truncated("header"))?;
    let header = ndarray_npy::npy::header::Header::from_reader(&mut &bytes[..end]).map_err(|e| format!("unreadable .npy header: {e}"))?;
    let descr = header.type_descriptor.to_string().trim_matches(|c| c == '\'' || c == '"').to_string();
    let item: usize = descr
        .get(2..)
        .and_then(|n| n.parse().ok())
        .filter(|_| descr.is_ascii())
        .ok_or_else(|| format!("unsupported .npy dtype {descr}: expected a number type such as <f4"))?;
    let declared = header.shape.iter().try_fold(item, |a, &d| a.checked_mul(d)).ok_or("the .npy shape overflows")?;
    let found = bytes.len() - end;
    if declared != found {
        return Err(format!(
            "the .npy header declares shape {} of {descr} ({declared} bytes), but the file holds {found} bytes of data",
            crate::error::tuple_shape(&header.shape)
        ));
    }
    Ok((descr, end))
}

/// A `.npy` array of element type `T`, from bytes whose header [`npy_header`] has checked.
fn npy_array<T: ndarray_npy::ReadableElement>(bytes: &[u8]) -> std::result::Result<ArrayD<T>, String> {
    ndarray_npy::ReadNpyExt::read_npy(bytes).map_err(|e: ndarray_npy::ReadNpyError| e.to_string())
}

fn npy_f32(bytes: &[u8]) -> std::result::Result<ArrayD<f32>, String> {
    npy_header(bytes)?;
    npy_array(bytes)
}

/// The arrays of a `.npz` archive, converted to float32.
fn npz_f32(bytes: Vec<u8>) -> std::result::Result<Vec<(String, ArrayD<f32>)>, String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| format!("not a .npz file (zip): {e}"))?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut member = zip.by_index(i).map_err(|e| format!("damaged .npz file: member {i}: {e}"))?;
        let key = member.name().strip_suffix(".npy").unwrap_or(member.name()).to_string();
        let declared = member.size();
        // The buffer grows with the data actually there, never to the size the archive declares.
        let mut npy = Vec::new();
        (&mut member).take(declared.saturating_add(1)).read_to_end(&mut npy).map_err(|e| format!("array `{key}`: {e}"))?;
        if npy.len() as u64 != declared {
            return Err(format!("damaged .npz file: array `{key}` declares {declared} bytes, holds {}", npy.len()));
        }
        let (descr, _) = npy_header(&npy).map_err(|e| format!("array `{key}`: {e}"))?;
        let arr = match descr.get(1..) {
            Some("f4") => npy_array::<f32>(&npy),
            Some("f8") => npy_array::<f64>(&npy).map(|a| a.mapv(|v| v as f32)),
            Some("i8") => npy_array::<i64>(&npy).map(|a| a.mapv(|v| v as f32)),
            Some("u1") => npy_array::<u8>(&npy).map(|a| a.mapv(f32::from)),
            _ => Err(format!("expected float32, float64, int64 or uint8 values, found dtype {descr}")),
        }
        .map_err(|e| format!("array `{key}`: {e}"))?;
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

    #[test]
    fn npy_declared_sizes_are_checked_before_allocation() {
        // Version 2 declares a 4 GiB header; the file holds a few bytes of it.
        let mut v2 = b"\x93NUMPY\x02\x00".to_vec();
        v2.extend(0xFFFF_FFF0u32.to_le_bytes());
        v2.extend(b"{'descr'");
        assert!(read_npy_bytes(&v2).unwrap_err().to_string().contains("ends inside the header"));
        let mut huge = NPY.to_vec();
        let at = huge.windows(6).position(|w| w == b"(2, 3)").unwrap();
        huge[at..at + 6].copy_from_slice(b"(9**9)");
        assert!(read_npy_bytes(&huge).is_err());
        huge[at..at + 6].copy_from_slice(b"(99,9)");
        let e = read_npy_bytes(&huge).unwrap_err().to_string();
        assert!(e.contains("declares shape (99, 9) of <f4 (3564 bytes), but the file holds 24 bytes"), "{e}");
        assert!(read_npy_bytes(b"\x93NUMPY\x07\x00").unwrap_err().to_string().contains("version 7"));
    }

    #[test]
    fn npz_converts_every_accepted_dtype_and_refuses_the_rest() {
        let mut npz = ndarray_npy::NpzWriter::new_compressed(std::io::Cursor::new(Vec::new()));
        npz.add_array("f", &ndarray::array![1.5f32, 2.0]).unwrap();
        npz.add_array("d", &ndarray::array![[3.0f64]]).unwrap();
        npz.add_array("i", &ndarray::array![-4i64]).unwrap();
        npz.add_array("u", &ndarray::array![5u8]).unwrap();
        let bytes = npz.finish().unwrap().into_inner();
        let arrays = read_npz_bytes(bytes.clone()).unwrap();
        let flat: Vec<(&str, Vec<f32>)> = arrays.iter().map(|(k, a)| (k.as_str(), a.iter().copied().collect())).collect();
        assert_eq!(flat, [("f", vec![1.5, 2.0]), ("d", vec![3.0]), ("i", vec![-4.0]), ("u", vec![5.0])]);
        assert_eq!(read_npz(temp("a.npz", &bytes)).unwrap().len(), 4);

        let mut npz = ndarray_npy::NpzWriter::new(std::io::Cursor::new(Vec::new()));
        npz.add_array("b", &ndarray::array![true]).unwrap();
        let e = read_npz_bytes(npz.finish().unwrap().into_inner()).unwrap_err().to_string();
        assert!(e.contains("array `b`: expected float32, float64, int64 or uint8 values, found dtype |b1"), "{e}");
        assert!(read_npz_bytes(bytes[..bytes.len() / 2].to_vec()).is_err());
        assert!(read_npz_bytes(NPY.to_vec()).unwrap_err().to_string().contains("not a .npz file"));
    }
}

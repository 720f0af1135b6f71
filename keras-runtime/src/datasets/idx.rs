//! The IDX format of (Fashion-)MNIST: a big-endian header (`0, 0, type, rank`, then `rank`
//! 32-bit dimensions) and the values, optionally gzipped.
//!
//! A hostile file cannot make the reader allocate more than the data it actually holds: the
//! declared size is checked against the bytes read, which are themselves capped.
//! [`read`] reads a file; [`from_reader`] and [`parse`] read data already at hand.

use crate::{Error, Result};
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// Largest decompressed IDX file accepted (the MNIST training images are 47 MB).
const MAX_BYTES: u64 = 1 << 30;

/// An unsigned-byte IDX tensor: its dimensions and values.
#[derive(Debug)]
pub struct Idx {
    /// The dimensions, outermost first (`[60000, 28, 28]` for the MNIST training images).
    pub dims: Vec<usize>,
    /// The values in row-major order; as many as the dimensions declare.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, gzipped when its name ends in `.gz`.
pub fn read(path: &Path) -> Result<Idx> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::Io { path: shown.clone(), source: e })?;
    from_reader(file, path.extension().is_some_and(|e| e == "gz")).map_err(|message| Error::Format { path: shown, message })
}

/// Reads IDX data from `reader`, gunzipping it first when `gzipped`; at most 1 GiB of
/// (decompressed) data is read, whatever the header declares. The error is a message saying
/// what was expected and what was found.
///
/// ```
/// use keras_runtime::datasets::idx;
/// let t = idx::from_reader(&[0u8, 0, 8, 1, 0, 0, 0, 2, 7, 9][..], false).unwrap();
/// assert_eq!((t.dims, t.data), (vec![2], vec![7, 9]));
/// assert!(idx::from_reader(&[0u8, 0, 8, 1, 0, 0, 0, 3, 7][..], false).is_err());
/// ```
pub fn from_reader(reader: impl Read, gzipped: bool) -> std::result::Result<Idx, String> {
    let mut bytes = Vec::new();
    let reader: Box<dyn Read> = if gzipped { Box::new(GzDecoder::new(reader)) } else { Box::new(reader) };
    reader.take(MAX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!("larger than {MAX_BYTES} bytes: not an IDX dataset file"));
    }
    parse(&bytes)
}

/// Parses IDX bytes (already decompressed).
pub fn parse(bytes: &[u8]) -> std::result::Result<Idx, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file: expected the magic bytes 00 00 at the start".to_string());
    }
    if bytes[2] != 0x08 {
        return Err(format!("expected unsigned-byte data (type 0x08), found type {:#04x}", bytes[2]));
    }
    let rank = bytes[3] as usize;
    if rank == 0 || rank > 4 {
        return Err(format!("expected 1 to 4 dimensions, found {rank}"));
    }
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err(format!("truncated header: expected {header} bytes, found {}", bytes.len()));
    }
    let dims: Vec<usize> =
        (0..rank).map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize).collect();
    let declared = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("declared size overflows")?;
    let found = bytes.len() - header;
    if declared != found {
        return Err(format!("dimensions {dims:?} declare {declared} values, but the file holds {found}"));
    }
    Ok(Idx { dims, data: bytes[header..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dims: &[u32], extra: usize) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        let n: u32 = dims.iter().product();
        b.extend((0..n as usize + extra).map(|i| i as u8));
        b
    }

    #[test]
    fn reads_and_rejects() {
        let ok = parse(&file(&[2, 3], 0)).unwrap();
        assert_eq!(ok.dims, [2, 3]);
        assert_eq!(ok.data, [0, 1, 2, 3, 4, 5]);
        assert!(parse(&file(&[2, 3], 1)).unwrap_err().contains("declare 6 values, but the file holds 7"));
        let mut huge = vec![0, 0, 8, 2];
        huge.extend(65536u32.to_be_bytes());
        huge.extend(65536u32.to_be_bytes());
        assert!(parse(&huge).unwrap_err().contains("declare 4294967296 values, but the file holds 0"));
        let mut overflow = vec![0, 0, 8, 4];
        for _ in 0..4 {
            overflow.extend(u32::MAX.to_be_bytes());
        }
        assert!(parse(&overflow).unwrap_err().contains("overflows"));
        assert!(parse(b"PK\x03\x04").unwrap_err().contains("magic"));
        assert!(parse(&[0, 0, 0x0d, 1]).unwrap_err().contains("type 0x0d"));
        assert!(parse(&[0, 0, 8, 2, 0, 0]).unwrap_err().contains("truncated header"));
        assert!(parse(&[]).is_err());
    }
}

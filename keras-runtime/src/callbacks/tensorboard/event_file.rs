//! TensorBoard's event files, as TensorFlow's summary writer (`tf.summary.create_file_writer`)
//! writes them: `Event` protocol buffers, each in TFRecord framing.
//!
//! A record is the data's length (u64, little-endian), the masked CRC32C of those 8 bytes, the
//! data, and the masked CRC32C of the data. A file starts with an event holding only
//! `file_version: "brain.Event:2"`; each summary value then gets an event of its own, as
//! TensorFlow writes them. Records are appended whole, so a file cut short (a killed run) holds
//! every record written before the cut intact, and readers stop at the partial one.
//!
//! The protocol buffers are encoded by hand, here: the writer emits six small messages (`Event`,
//! `Summary`, `Summary.Value`, `SummaryMetadata` with its `PluginData`, `TensorProto`,
//! `TensorShapeProto`) and never reads any, which takes a varint, two fixed-width numbers and
//! length-delimited nesting. A protobuf crate would add generated types (with a build step or
//! derive macros) for that. The field numbers are those of TensorFlow's `event.proto`,
//! `summary.proto`, `tensor.proto`, `tensor_shape.proto` and `types.proto`; the tests read the
//! files with TensorBoard itself.

use crate::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// CRC32C (Castagnoli), the checksum of TFRecord framing.
const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// Distinguishes the files one process creates, as TensorFlow's writers number theirs.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The tensor of one summary value.
#[derive(Clone, Copy, Debug)]
pub(super) enum Tensor<'a> {
    /// A scalar `DT_FLOAT` (what `tf.summary.scalar` writes).
    Scalar(f32),
    /// A `DT_DOUBLE` tensor of shape `[k, 3]`: histogram buckets (left edge, right edge, count),
    /// what `tf.summary.histogram` writes.
    Buckets(&'a [[f64; 3]]),
    /// A scalar `DT_STRING` (the Keras model's JSON).
    Text(&'a str),
}

/// One summary value: a tag, the plugin that shows it (with that plugin's metadata content),
/// and its tensor.
#[derive(Clone, Copy, Debug)]
pub(super) struct Value<'a> {
    /// The tag TensorBoard lists (`epoch_loss`).
    pub tag: &'a str,
    /// The plugin that reads it: `scalars`, `histograms`, `graph_keras_model`.
    pub plugin: &'a str,
    /// The plugin's metadata content (empty for scalars and histograms, whose plugin data at
    /// version 0 serializes to nothing).
    pub content: &'a [u8],
    /// The value.
    pub tensor: Tensor<'a>,
}

/// An event file being appended to.
pub(super) struct EventFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventFile {
    /// Creates `dir` (and its parents) and a new event file in it, named as TensorFlow names
    /// them (`events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2`), and writes the file-version
    /// event. An error names the directory or the file.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.display().to_string(), source })?;
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("events.out.tfevents.{secs:010}.{host}.{}.{n}.v2", std::process::id()));
        let file = File::options().write(true).create_new(true).open(&path);
        let file = file.map_err(|source| Error::Io { path: path.display().to_string(), source })?;
        let mut event_file = EventFile { path, out: BufWriter::new(file) };
        let mut event = event_header(wall_time(), 0);
        event.bytes(3, b"brain.Event:2");
        event_file.append(&event.0)?;
        Ok(event_file)
    }

    /// Appends an event holding `value` at `step`, stamped with the current time.
    pub fn write(&mut self, step: i64, value: &Value<'_>) -> Result<()> {
        let mut event = event_header(wall_time(), step);
        let mut summary = Message::default();
        summary.message(1, summary_value(value));
        event.message(5, summary);
        self.append(&event.0)
    }

    /// Writes what is buffered to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io { path: self.path.display().to_string(), source })
    }

    /// Appends one record in TFRecord framing.
    fn append(&mut self, data: &[u8]) -> Result<()> {
        let record = record(data);
        self.out.write_all(&record).map_err(|source| Error::Io { path: self.path.display().to_string(), source })
    }
}

/// Seconds since the Unix epoch, as `Event.wall_time` holds them.
fn wall_time() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// `data` in TFRecord framing.
fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// TFRecord's masked CRC32C: the checksum rotated right by 15 bits, plus a constant.
fn masked_crc(data: &[u8]) -> u32 {
    CRC32C.checksum(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

/// An `Event` with its time and step (`wall_time` = 1, `step` = 2; a zero step left out, as
/// protobuf leaves out default values).
fn event_header(wall_time: f64, step: i64) -> Message {
    let mut event = Message::default();
    event.double(1, wall_time);
    if step != 0 {
        event.varint(2, step as u64);
    }
    event
}

/// A `Summary.Value`: `tag` = 1, `tensor` = 8, `metadata` = 9 (`SummaryMetadata.plugin_data` = 1,
/// `PluginData.plugin_name` = 1, `PluginData.content` = 2).
fn summary_value(value: &Value<'_>) -> Message {
    let mut plugin_data = Message::default();
    plugin_data.bytes(1, value.plugin.as_bytes());
    if !value.content.is_empty() {
        plugin_data.bytes(2, value.content);
    }
    let mut metadata = Message::default();
    metadata.message(1, plugin_data);
    let mut out = Message::default();
    out.bytes(1, value.tag.as_bytes());
    out.message(8, tensor_proto(value.tensor));
    out.message(9, metadata);
    out
}

/// A `TensorProto`: `dtype` = 1 (`DT_FLOAT` 1, `DT_DOUBLE` 2, `DT_STRING` 7), `tensor_shape` = 2
/// (`TensorShapeProto.dim` = 2, `Dim.size` = 1), numbers little-endian in `tensor_content` = 4 (as
/// TensorFlow's writer stores them), strings in `string_val` = 8.
fn tensor_proto(tensor: Tensor<'_>) -> Message {
    let mut out = Message::default();
    match tensor {
        Tensor::Scalar(v) => {
            out.varint(1, 1);
            out.message(2, Message::default());
            out.bytes(4, &v.to_le_bytes());
        }
        Tensor::Buckets(rows) => {
            out.varint(1, 2);
            let mut shape = Message::default();
            for size in [rows.len() as u64, 3] {
                let mut dim = Message::default();
                // A zero size is protobuf's default, which the encoding leaves out.
                if size != 0 {
                    dim.varint(1, size);
                }
                shape.message(2, dim);
            }
            out.message(2, shape);
            let content: Vec<u8> = rows.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
            if !content.is_empty() {
                out.bytes(4, &content);
            }
        }
        Tensor::Text(s) => {
            out.varint(1, 7);
            out.message(2, Message::default());
            out.bytes(8, s.as_bytes());
        }
    }
    out
}

/// A protocol-buffer message being encoded: its fields' bytes, in order.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    /// A field's key: its number and wire type (0 varint, 1 fixed 64-bit, 2 length-delimited).
    fn key(&mut self, field: u32, wire_type: u8) {
        self.raw_varint((u64::from(field) << 3) | u64::from(wire_type));
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// An integer or enum field (negative `int64`s as their two's complement, ten bytes).
    fn varint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.raw_varint(v);
    }

    /// A `double` field.
    fn double(&mut self, field: u32, v: f64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A `bytes` or `string` field.
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    /// An embedded message field.
    fn message(&mut self, field: u32, m: Message) {
        self.bytes(field, &m.0);
    }
}

/// The buckets `tf.summary.histogram` makes of `data` (TensorBoard's `summary_v2._buckets`):
/// `count` buckets of equal width from the minimum to the maximum, the last one closed; all
/// values in the last bucket, with both edges at the value, when they are all equal; zeros when
/// there is no data.
pub(super) fn histogram_buckets(data: &[f32], count: usize) -> Vec<[f64; 3]> {
    if data.is_empty() || count == 0 {
        return vec![[0.0; 3]; count];
    }
    let (min, max) = data.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(f64::from(v)), hi.max(f64::from(v))));
    let range = max - min;
    let mut counts = vec![0.0f64; count];
    if range == 0.0 || !range.is_finite() {
        counts[count - 1] = data.len() as f64;
        return counts.into_iter().map(|c| [max, max, c]).collect();
    }
    let width = range / count as f64;
    for &v in data {
        let index = ((f64::from(v) - min) / width).floor();
        // NaN lands in the first bucket (`as` saturates), so the counts still sum to the size.
        counts[(index as usize).min(count - 1)] += 1.0;
    }
    // tf.linspace(min, max, count + 1), its last edge set to max exactly.
    let edge = |i: usize| if i == count { max } else { min + i as f64 * (range / count as f64) };
    counts.into_iter().enumerate().map(|(i, c)| [edge(i), edge(i + 1), c]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_castagnoli_and_masked_as_tfrecord_masks_it() {
        // The CRC-32C check value, and TFRecord's masking of it.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        let c = 0xe306_9283u32;
        assert_eq!(masked_crc(b"123456789"), c.rotate_right(15).wrapping_add(0xa282_ead8));
    }

    #[test]
    fn records_are_framed_with_length_and_checksums() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
        assert_eq!(&r[15..], &masked_crc(b"abc").to_le_bytes());
    }

    #[test]
    fn varints_and_keys_encode_as_protobuf() {
        let mut m = Message::default();
        m.varint(2, 300);
        m.bytes(3, b"hi");
        m.double(1, 1.0);
        let mut want = vec![0x10, 0xac, 0x02, 0x1a, 2, b'h', b'i', 0x09];
        want.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(m.0, want);
    }

    #[test]
    fn histograms_bucket_as_tensorboard_does() {
        let b = histogram_buckets(&[0.0, 1.0, 2.0, 3.0], 3);
        assert_eq!(b, [[0.0, 1.0, 1.0], [1.0, 2.0, 1.0], [2.0, 3.0, 2.0]]);
        assert_eq!(histogram_buckets(&[2.5, 2.5], 3), [[2.5, 2.5, 0.0], [2.5, 2.5, 0.0], [2.5, 2.5, 2.0]]);
        assert_eq!(histogram_buckets(&[], 2), [[0.0; 3]; 2]);
        let b = histogram_buckets(&[-1.0, f32::NAN, 1.0], 30);
        assert_eq!(b.iter().map(|r| r[2]).sum::<f64>(), 3.0);
    }
}

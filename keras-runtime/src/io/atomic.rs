//! Atomic file replacement: a reader (or a crash) sees the old file or the new one, never half.

use crate::{Error, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes the temporary files of concurrent writes within one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes the file at `path` through `write`, atomically: the bytes go to a temporary file in
/// the same directory (`.{name}.tmp.{pid}.{n}`), which is flushed to disk and renamed over
/// `path`; on Unix the directory is then synced so that the rename survives a crash.
///
/// On any error, including one `write` returns halfway, the temporary file is removed and the
/// file previously at `path` is left as it was.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("keras-doc-atomic-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// use keras_runtime::io::write_atomic;
/// let path = dir.join("notes.txt");
/// write_atomic(&path, |w| w.write_all(b"epoch 3").map_err(|e| keras_runtime::Error::Io { path: "notes.txt".into(), source: e }))?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"epoch 3");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let path = path.as_ref();
    let io_err = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::Io { path: p, source }
    };
    let name =
        path.file_name().ok_or_else(|| Error::Io { path: path.display().to_string(), source: std::io::Error::other("not a file path") })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp.{}.{n}", name.to_string_lossy(), std::process::id()));
    let file = File::options().write(true).create_new(true).open(&tmp).map_err(io_err(&tmp))?;
    let result = (|| {
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| Error::Io { path: tmp.display().to_string(), source: e.into_error() })?;
        file.sync_all().map_err(io_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir).map_err(io_err(&dir))
}

/// Makes a rename in `dir` durable (Unix); elsewhere the rename itself is all there is.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keras-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_the_file() {
        let dir = scratch("replace");
        let path = dir.join("w.bin");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, |w| w.write_all(b"new contents").map_err(|e| Error::Io { path: String::new(), source: e })).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(entries(&dir), ["w.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = scratch("fail");
        let path = dir.join("w.bin");
        let old: Vec<u8> = (0..=255).collect();
        fs::write(&path, &old).unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(&[7; 100_000]).map_err(|e| Error::Io { path: String::new(), source: e })?;
            Err(Error::Config("disk on fire".to_string()))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
        assert_eq!(fs::read(&path).unwrap(), old);
        assert_eq!(entries(&dir), ["w.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error() {
        let dir = scratch("missing");
        let err = write_atomic(dir.join("no/such/w.bin"), |_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

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
/// - Missing directories on the way to `path` are created (as `ModelCheckpoint` creates them).
/// - An existing file keeps its permissions; a read-only one is not replaced (an `Err`, as
///   opening it for writing would be).
/// - Temporary files that a killed process left beside `path` (their process no longer runs)
///   are removed.
/// - Errors name `path`, and the directory where that is where the trouble is.
///
/// On any error, including one `write` returns halfway, the temporary file is removed and the
/// file previously at `path` is left as it was.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("keras-doc-atomic-{}", std::process::id()));
/// use keras_runtime::io::write_atomic;
/// let path = dir.join("run/notes.txt");
/// write_atomic(&path, |w| w.write_all(b"epoch 3").map_err(|e| keras_runtime::Error::Io { path: "notes.txt".into(), source: e }))?;
/// assert_eq!(std::fs::read(&path).unwrap(), b"epoch 3");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), keras_runtime::Error>(())
/// ```
pub fn write_atomic(path: impl AsRef<Path>, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    // An error about `path`, with what was being done where.
    let failed = |what: String| {
        let shown = shown.clone();
        move |e: std::io::Error| Error::Io { path: shown, source: std::io::Error::new(e.kind(), format!("{what}: {e}")) }
    };
    let name = path.file_name().ok_or_else(|| Error::Io { path: shown.clone(), source: std::io::Error::other("not a file path") })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(failed(format!("cannot create the directory {}", dir.display())))?;
    let permissions = match fs::metadata(path) {
        Ok(meta) if meta.permissions().readonly() => {
            let e = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the file is read-only");
            return Err(failed("not replaced".to_string())(e));
        }
        Ok(meta) => Some(meta.permissions()),
        Err(_) => None,
    };
    remove_stale_temporaries(&dir, &name.to_string_lossy());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp.{}.{n}", name.to_string_lossy(), std::process::id()));
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(failed(format!("cannot create a file in the directory {}", dir.display())))?;
    let result = (|| {
        if let Some(permissions) = permissions {
            file.set_permissions(permissions).map_err(failed("cannot keep the file's permissions".to_string()))?;
        }
        let mut w = BufWriter::new(file);
        write(&mut w)?;
        let file = w.into_inner().map_err(|e| failed("cannot write".to_string())(e.into_error()))?;
        file.sync_all().map_err(failed("cannot flush to disk".to_string()))?;
        drop(file);
        fs::rename(&tmp, path).map_err(failed(format!("cannot replace it in the directory {}", dir.display())))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(&dir).map_err(failed(format!("cannot sync the directory {}", dir.display())))
}

/// Removes `dir`'s temporary files of `name` (`.{name}.tmp.{pid}.{n}`) whose process is gone: a
/// save killed halfway (`kill -9`) leaves one. Only where running processes can be told
/// (Linux's `/proc`); best effort, as a failure here must not fail the save.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp.");
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    fn missing_directories_are_created() {
        let dir = scratch("missing");
        let path = dir.join("no/such/w.bin");
        write_atomic(&path, |w| w.write_all(b"x").map_err(|e| Error::Io { path: String::new(), source: e })).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_path_and_the_directory() {
        let dir = scratch("blocked");
        // A file where a directory should be: neither it nor the file can be created.
        fs::write(dir.join("plain"), b"").unwrap();
        let path = dir.join("plain/sub/w.bin");
        let err = write_atomic(&path, |_| Ok(())).unwrap_err().to_string();
        assert!(err.starts_with(&path.display().to_string()), "{err}");
        assert!(err.contains(&format!("cannot create the directory {}", dir.join("plain/sub").display())), "{err}");
        assert!(!err.contains(".tmp."), "the temporary file is ours, not the user's: {err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn permissions_are_kept_and_a_read_only_file_is_not_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("modes");
        let path = dir.join("w.bin");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        write_atomic(&path, |w| w.write_all(b"new").map_err(|e| Error::Io { path: String::new(), source: e })).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        let err = write_atomic(&path, |w| w.write_all(b"newer").map_err(|e| Error::Io { path: String::new(), source: e })).unwrap_err();
        assert!(err.to_string().contains("not replaced: the file is read-only"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o444);
        assert_eq!(entries(&dir), ["w.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_of_killed_saves_are_removed() {
        if !Path::new("/proc/self").exists() {
            return;
        }
        let dir = scratch("stale");
        let path = dir.join("w.bin");
        // Left by a process that no longer runs (no pid is that large), by this process (a save
        // in progress on another thread), and another file's.
        let own = format!(".w.bin.tmp.{}.77", std::process::id());
        for name in [".w.bin.tmp.999999999.3", own.as_str(), ".v.bin.tmp.999999999.0"] {
            fs::write(dir.join(name), [0u8; 64]).unwrap();
        }
        write_atomic(&path, |w| w.write_all(b"x").map_err(|e| Error::Io { path: String::new(), source: e })).unwrap();
        assert_eq!(entries(&dir), [".v.bin.tmp.999999999.0", own.as_str(), "w.bin"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}

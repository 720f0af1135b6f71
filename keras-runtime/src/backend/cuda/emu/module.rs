//! Compiling a module of CUDA C with the host C++ compiler, and the caches of compiled modules:
//! one per process (each module is compiled and loaded once) and one on disk, shared by
//! processes (parallel test binaries compile a module once between them).

use super::super::driver::LaunchConfig;
use super::super::kernels::PRELUDE;
use crate::{Error, Result};
use libloading::Library;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// CUDA's built-ins for the CPU, put before every module.
const HEADER: &str = include_str!("cuda_emu.h");

/// Compiler output kept in an error, in lines.
const MAX_STDERR_LINES: usize = 60;

/// A launch as the generated launchers read it (`EmuConfig` in `cuda_emu.h`).
#[repr(C)]
struct EmuConfig {
    grid: [u32; 3],
    block: [u32; 3],
    shared_bytes: u32,
    check_only: c_int,
    error: *mut c_char,
    error_capacity: usize,
}

/// `emu_launch_<kernel>`: the arguments as cudarc passes them (a pointer to each value, and
/// the values' sizes); 0, or nonzero with an error written to the config's buffer.
type LaunchFn = unsafe extern "C" fn(*const *const c_void, c_int, *const usize, *const EmuConfig) -> c_int;

/// The C++ compiler command: `$CXX` (split at spaces, as `ccache c++`) or `c++`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Compiler(Vec<String>);

impl Compiler {
    /// `$CXX`, or `c++`.
    pub(super) fn from_env() -> Compiler {
        let words: Vec<String> = std::env::var("CXX").unwrap_or_default().split_whitespace().map(String::from).collect();
        Compiler(if words.is_empty() { vec!["c++".to_string()] } else { words })
    }

    #[cfg(test)]
    pub(super) fn new(command: &str) -> Compiler {
        Compiler(vec![command.to_string()])
    }

    pub(super) fn command(&self) -> Command {
        let mut command = Command::new(&self.0[0]);
        command.args(&self.0[1..]);
        command
    }

    /// The first line of `--version`, or why there is none.
    pub(super) fn version(&self) -> String {
        match self.command().arg("--version").output() {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().trim().to_string(),
            _ => format!("`{self}` not found"),
        }
    }
}

impl fmt::Display for Compiler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// A compiled and loaded module; kept for the process, so its kernels stay valid.
struct Loaded {
    name: String,
    library: Library,
}

/// A kernel of a module the emulator compiled.
#[derive(Clone)]
pub struct EmuKernel {
    name: Arc<str>,
    module: Arc<Loaded>,
    launch: LaunchFn,
}

impl fmt::Debug for EmuKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmuKernel({}::{})", self.module.name, self.name)
    }
}

impl EmuKernel {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs the kernel on this thread, or with `check_only` only checks the arguments (count and
    /// sizes) and the geometry.
    ///
    /// # Safety
    /// `args` point at `sizes` readable bytes each; when the kernel runs, its pointers stay in
    /// bounds.
    pub(super) unsafe fn run(&self, config: LaunchConfig, args: &[*const c_void], sizes: &[usize], check_only: bool) -> Result<()> {
        let nargs = c_int::try_from(args.len()).map_err(|_| Error::Device(format!("kernel `{}`: {} arguments", self.name, args.len())))?;
        let mut error = vec![0u8; 1024];
        let emu = EmuConfig {
            grid: config.grid,
            block: config.block,
            shared_bytes: config.shared_bytes,
            check_only: c_int::from(check_only),
            error: error.as_mut_ptr().cast(),
            error_capacity: error.len(),
        };
        // SAFETY: the launcher reads `nargs` pointers and sizes and the config; the caller vouches
        // for the arguments.
        let status = unsafe { (self.launch)(args.as_ptr(), nargs, sizes.as_ptr(), &emu) };
        if status == 0 {
            return Ok(());
        }
        let end = error.iter().position(|&b| b == 0).unwrap_or(error.len());
        Err(Error::Device(String::from_utf8_lossy(&error[..end]).into_owned()))
    }
}

/// Compiles (or finds compiled) the module and returns its kernels in the order of `kernels`.
pub(super) fn load(compiler: &Compiler, sanitize: bool, name: &str, source: &str, kernels: &[&str]) -> Result<Vec<EmuKernel>> {
    if let Some(bad) = kernels.iter().find(|k| !is_identifier(k)) {
        return Err(Error::Device(format!("module `{name}`: `{bad}` is not a kernel name")));
    }
    let text = translation_unit(name, source, kernels);
    let mut flags = vec!["-std=c++17", "-fPIC", "-shared", "-fvisibility=hidden", "-w"];
    let optimize: &[&str] = if sanitize { &["-O1", "-g", "-fsanitize=address", "-fno-omit-frame-pointer"] } else { &["-O2"] };
    flags.extend(optimize);
    let key = format!("{:032x}", fnv1a(&[compiler.to_string().as_str(), &flags.join(" "), &text]));

    // One slot per module: a module is compiled once even when threads ask for it together,
    // while different modules compile in parallel.
    type Slot = Arc<Mutex<Option<Arc<Loaded>>>>;
    static LOADED: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let slot = LOADED.get_or_init(Mutex::default).lock().unwrap_or_else(PoisonError::into_inner).entry(key.clone()).or_default().clone();
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    let module = match &*slot {
        Some(module) => module.clone(),
        None => {
            let library = compile(compiler, &flags, sanitize, name, &key, &text)?;
            slot.insert(Arc::new(Loaded { name: name.to_string(), library })).clone()
        }
    };
    kernels
        .iter()
        .map(|kernel| {
            // SAFETY: every `emu_launch_*` of the generated launchers has the type `LaunchFn`.
            let launch = unsafe { module.library.get::<LaunchFn>(format!("emu_launch_{kernel}").as_str()) }
                .map(|symbol| *symbol)
                .map_err(|e| Error::Device(format!("module `{name}`: no kernel `{kernel}`: {e}")))?;
            Ok(EmuKernel { name: Arc::from(*kernel), module: module.clone(), launch })
        })
        .collect()
}

fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The module as one C++ translation unit: the header, the prelude, the source, then a
/// launcher per kernel. `#line` makes the compiler's messages point into the module's own file.
fn translation_unit(name: &str, source: &str, kernels: &[&str]) -> String {
    let file: String = name.chars().map(|c| if c == '"' || c == '\\' { '_' } else { c }).collect();
    let mut text = format!(
        "#define KERAS_EMU 1\n#line 1 \"cuda_emu.h\"\n{HEADER}\n#line 1 \"prelude.cuh\"\n{PRELUDE}\n#line 1 \"{file}.cu\"\n{source}\n#line 1 \"{file} (launchers)\"\n"
    );
    for kernel in kernels {
        text.push_str(&format!("EMU_EXPORT({kernel})\n"));
    }
    text
}

/// 128-bit FNV-1a: a stable name for a compiled module (std's hasher may change between builds).
fn fnv1a(parts: &[&str]) -> u128 {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(&[0xff]) {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    }
    hash
}

/// `<temp>/keras-emu-<user>`, private to the user.
fn cache_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .or_else(|| std::fs::metadata("/proc/self").ok().map(|m| m.uid().to_string()))
        .unwrap_or_else(|| "user".to_string());
    let dir = std::env::temp_dir().join(format!("keras-emu-{user}"));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
    // Libraries are loaded from here: refuse a directory someone else owns or can write to.
    let meta = std::fs::symlink_metadata(&dir)?;
    let own = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(meta.uid());
    if !meta.is_dir() || meta.uid() != own || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!("{} is not a directory owned by this user and writable only by it", dir.display())));
    }
    Ok(dir)
}

/// The module's library: from the disk cache, or compiled into it (to a unique name, then
/// renamed, so processes compiling the same module at once never see half a file).
fn compile(compiler: &Compiler, flags: &[&str], sanitize: bool, name: &str, key: &str, text: &str) -> Result<Library> {
    let device = |what: String| Error::Device(format!("kernel module `{name}`: {what}"));
    let dir = cache_dir().map_err(|e| device(format!("cannot create the emulator's cache directory: {e}")))?;
    let library = dir.join(format!("{key}.so"));
    if library.exists()
        && let Ok(loaded) = open(&library, sanitize)
    {
        return Ok(loaded);
    }
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let stem = format!("{key}.{}.{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::Relaxed));
    let source = dir.join(format!("{stem}.cpp"));
    let partial = dir.join(format!("{stem}.so"));
    std::fs::write(&source, text).map_err(|e| device(format!("cannot write {}: {e}", source.display())))?;
    let output = compiler
        .command()
        .args(flags)
        .arg("-o")
        .arg(&partial)
        .arg(&source)
        .output()
        .map_err(|e| device(format!("cannot run the C++ compiler `{compiler}` (set CXX to choose one): {e}")))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        let kept = dir.join(format!("{key}.cpp"));
        let _ = std::fs::rename(&source, &kept);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.trim().lines().collect();
        let mut message = lines[..lines.len().min(MAX_STDERR_LINES)].join("\n");
        if lines.len() > MAX_STDERR_LINES {
            message.push_str(&format!("\n... ({} more lines)", lines.len() - MAX_STDERR_LINES));
        }
        return Err(device(format!("`{compiler}` failed ({}):\n{message}\n(generated source: {})", output.status, kept.display())));
    }
    let _ = std::fs::remove_file(&source);
    std::fs::rename(&partial, &library).map_err(|e| device(format!("cannot store {}: {e}", library.display())))?;
    open(&library, sanitize).map_err(device)
}

fn open(path: &Path, sanitize: bool) -> std::result::Result<Library, String> {
    // SAFETY: the library is ours: its initialisers only set up the C++ runtime's statics.
    unsafe { Library::new(path) }.map_err(|e| {
        let hint = if sanitize {
            " (a module built with AddressSanitizer loads only into a process started with \
             LD_PRELOAD=$(c++ -print-file-name=libasan.so))"
        } else {
            ""
        };
        format!("cannot load {}: {e}{hint}", path.display())
    })
}

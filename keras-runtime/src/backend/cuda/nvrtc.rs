//! NVRTC, CUDA's run-time compiler: compiles a kernel module (the prelude, then its source) to a
//! binary for one GPU architecture. [`CudaDevice`](super::CudaDevice) compiles for its own GPU;
//! [`compile_check`] compiles for any architecture without a GPU or a driver, and reports what
//! each kernel uses (registers, shared memory, spills), which CI checks for every module.
//!
//! cudarc loads NVRTC at run time by name (`libnvrtc.so`, then `libnvrtc.so.13`, ...), through
//! the dynamic loader: a CUDA toolkit's `lib64` on the loader's path, or the lib directory of
//! the `nvidia-cuda-nvrtc` 13.0 wheel on `LD_LIBRARY_PATH` (as `.ci/run` sets it).

use super::kernels::{Module, PRELUDE};
use crate::error::{Error, Result};
use cudarc::nvrtc::result::{self, NvrtcError};
use cudarc::nvrtc::sys;
use std::ffi::{CString, c_char};
use std::sync::OnceLock;

/// What one kernel uses, as ptxas reports it for one architecture.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelResources {
    /// The kernel (or a device function ptxas kept out of line, which reports only its stack
    /// and spills).
    pub kernel: String,
    /// Registers per thread.
    pub registers: u32,
    /// Static shared memory per block, in bytes.
    pub shared_bytes: u32,
    /// Stack frame per thread, in bytes.
    pub stack_bytes: u32,
    /// Bytes of registers spilled to local memory.
    pub spill_stores: u32,
    /// Bytes of spilled registers loaded back.
    pub spill_loads: u32,
}

/// A module compiled by NVRTC.
pub(crate) struct Compiled {
    /// The binary for the architecture asked, 8-byte aligned as the driver's loader wants it.
    pub(crate) cubin: Vec<u64>,
    /// NVRTC's log (ptxas's report with `--ptxas-options=-v`).
    pub(crate) log: String,
}

/// Whether NVRTC's library can be loaded (see the [module](self) notes on where it is looked
/// for). Checked once per process.
pub fn available() -> bool {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: loading NVRTC runs nothing but its initialisers.
    *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() })
}

/// An error saying what to install unless NVRTC can be loaded (cudarc panics at the first call
/// into a library it cannot load).
pub(crate) fn require() -> Result<()> {
    if available() {
        return Ok(());
    }
    Err(Error::Device(
        "NVRTC (libnvrtc.so.13) not found: install CUDA 13.0's NVRTC (the toolkit, or `pip install nvidia-cuda-nvrtc==13.0.88`) and put its lib directory on LD_LIBRARY_PATH".to_string(),
    ))
}

/// Compiles `module` to a binary for `arch` (`sm_80`) with ptxas's report, and returns what each
/// of its kernels uses, in the module's order, then any device function ptxas kept out of line.
/// An error with NVRTC's log when the module does not compile, or when a kernel the module lists
/// is not among those compiled.
pub fn compile_check(module: &Module, arch: &str) -> Result<Vec<KernelResources>> {
    if !arch.starts_with("sm_") {
        return Err(Error::Device(format!("compile_check needs a GPU architecture (sm_XY) for ptxas, not `{arch}`")));
    }
    let log = compile(module.name, module.source, arch, &["--ptxas-options=-v"])?.log;
    let mut reported = parse_ptxas(&log);
    let mut kernels = Vec::with_capacity(reported.len());
    for &kernel in module.kernels {
        let Some(index) = reported.iter().position(|r| r.kernel == kernel) else {
            return Err(Error::Device(format!(
                "module `{}` for {arch}: kernel `{kernel}` is not among those compiled (is it `extern \"C\" __global__`?); NVRTC's log:\n{log}",
                module.name
            )));
        };
        kernels.push(reported.remove(index));
    }
    kernels.append(&mut reported);
    Ok(kernels)
}

/// Compiles the prelude and `source` (module `name`) to a binary for `arch`, with the backend's
/// options (C++17, functions `__device__` by default, IEEE division and square root, fused
/// multiply-add) and `extra`.
pub(crate) fn compile(name: &str, source: &str, arch: &str, extra: &[&str]) -> Result<Compiled> {
    require()?;
    if !arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Error::Device(format!("`{arch}` is not a GPU architecture")));
    }
    let nul = |what: &str| Error::Device(format!("module `{name}`: its {what} contains a NUL byte"));
    // Both outlive the program, which refers to them. `#line` keeps NVRTC's line numbers those
    // of each file.
    let text = CString::new(format!("#line 1 \"prelude.cuh\"\n{PRELUDE}\n#line 1 \"{name}.cu\"\n{source}")).map_err(|_| nul("source"))?;
    let file = CString::new(format!("{name}.cu")).map_err(|_| nul("name"))?;
    let program = Program(result::create_program(&text, Some(&file)).map_err(|e| failure(name, arch, "nvrtcCreateProgram", e))?);
    let mut options = vec![format!("--gpu-architecture={arch}"), "--std=c++17".to_string(), "-default-device".to_string()];
    options.extend(extra.iter().map(|option| option.to_string()));
    // SAFETY: `program` is live; the options contain no NUL byte (`arch` is checked above, the
    // extra options are the crate's own).
    let compiled = unsafe { result::compile_program(program.0, &options) };
    // SAFETY: as above.
    let log = unsafe { result::get_program_log(program.0) }.map(|log| text_of(&log)).unwrap_or_default();
    if let Err(e) = compiled {
        return Err(Error::Device(format!("NVRTC could not compile module `{name}` for {arch} ({:?}):\n{log}", e.0)));
    }
    let mut size = 0;
    // SAFETY: `program` compiled for a real architecture, so it has a CUBIN of `size` bytes,
    // which fits the buffer.
    unsafe { sys::nvrtcGetCUBINSize(program.0, &mut size) }.result().map_err(|e| failure(name, arch, "nvrtcGetCUBINSize", e))?;
    let mut cubin = vec![0u64; size.div_ceil(8)];
    unsafe { sys::nvrtcGetCUBIN(program.0, cubin.as_mut_ptr().cast()) }.result().map_err(|e| failure(name, arch, "nvrtcGetCUBIN", e))?;
    Ok(Compiled { cubin, log })
}

/// An NVRTC program, destroyed when dropped.
struct Program(sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: created by `nvrtcCreateProgram`, destroyed once.
        unsafe { result::destroy_program(self.0) }.ok();
    }
}

/// An NVRTC call's error, naming the module and architecture.
fn failure(name: &str, arch: &str, call: &str, e: NvrtcError) -> Error {
    Error::Device(format!("{call} for module `{name}` ({arch}): {:?}", e.0))
}

/// A C string NVRTC wrote (NUL-terminated) as text.
fn text_of(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars.iter().map(|&c| c as u8).take_while(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// ptxas's verbose report, one entry per function in the order first named:
///
/// ```text
/// ptxas info    : Compiling entry function 'fill' for 'sm_80'
/// ptxas info    : Function properties for fill
///     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
/// ptxas info    : Used 10 registers, 380 bytes cmem[0]
/// ```
fn parse_ptxas(log: &str) -> Vec<KernelResources> {
    let mut functions: Vec<KernelResources> = Vec::new();
    let mut current = None;
    for line in log.lines() {
        let named = line
            .split_once("Compiling entry function '")
            .and_then(|(_, rest)| rest.split_once('\''))
            .map(|(name, _)| name)
            .or_else(|| line.split_once("Function properties for ").map(|(_, name)| name.trim()));
        if let Some(name) = named {
            current = Some(functions.iter().position(|f| f.kernel == name).unwrap_or_else(|| {
                functions.push(KernelResources { kernel: name.to_string(), ..KernelResources::default() });
                functions.len() - 1
            }));
            continue;
        }
        let Some(function) = current.map(|i| &mut functions[i]) else { continue };
        for part in line.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let number = |word: &str| word.parse::<u32>().unwrap_or(0);
            match words.as_slice() {
                [.., "Used", n, "registers"] => function.registers = number(n),
                [.., n, "bytes", "smem"] => function.shared_bytes = number(n),
                [.., n, "bytes", "stack", "frame"] => function.stack_bytes = number(n),
                [.., n, "bytes", "spill", "stores"] => function.spill_stores = number(n),
                [.., n, "bytes", "spill", "loads"] => function.spill_loads = number(n),
                _ => {}
            }
        }
    }
    functions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptxas_report_is_parsed_per_function() {
        let log = "ptxas info    : 0 bytes gmem\n\
            ptxas info    : Compiling entry function 'fill' for 'sm_80'\n\
            ptxas info    : Function properties for fill\n    \
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
            ptxas info    : Used 10 registers, 380 bytes cmem[0]\n\
            ptxas info    : Function properties for helper\n    \
            16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n\
            ptxas info    : Compiling entry function 'softmax' for 'sm_80'\n\
            ptxas info    : Function properties for softmax\n    \
            0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n\
            ptxas info    : Used 32 registers, used 1 barriers, 1024 bytes smem, 384 bytes cmem[0]\n";
        let parsed = parse_ptxas(log);
        let row = |kernel: &str, registers, shared_bytes, stack_bytes, spill_stores, spill_loads| KernelResources {
            kernel: kernel.to_string(),
            registers,
            shared_bytes,
            stack_bytes,
            spill_stores,
            spill_loads,
        };
        assert_eq!(parsed, vec![row("fill", 10, 0, 0, 0, 0), row("helper", 0, 0, 16, 8, 4), row("softmax", 32, 1024, 0, 0, 0)]);
    }
}

//! The backend conformance suite: every kernel of every op family, forward and backward, against
//! a plain reference written here, at awkward sizes (1, 7, 33, 1000, empty where legal) and with
//! NaN and infinities where Keras propagates them; then whole models, the Keras fixtures of the
//! other test files, trained on the backend to Keras's numbers.
//!
//! Everything is generic over `B: Backend`. A backend joins with one line,
//! `conformance!(name, device_expression);`. It runs here for the CPU, for [`HostDevice`], a
//! backend with the core only (every op family at its defaults, no reading of host memory), and
//! with the `cuda` feature for the CUDA backend on the CUDA emulator (`Cuda<EmuDevice>`).
//!
//! [`HostDevice`]: host_device::HostDevice

#[path = "../models/activation_layers.rs"]
mod activation_models;
#[path = "../models/basic.rs"]
mod basic_models;
#[path = "../common/mod.rs"]
mod common;
#[path = "../models/custom_layers.rs"]
mod custom_models;
mod dense;
mod fixtures;
#[path = "../models/functional.rs"]
mod functional_models;
mod host_device;
#[path = "../models/layers.rs"]
mod layer_models;
mod layout;
#[path = "../models/losses.rs"]
mod loss_models;
mod norm;
mod objective;
mod optimizer;
#[cfg(feature = "cuda")]
mod paired;
#[path = "../models/preprocessing.rs"]
mod preprocessing_models;
mod primitives;
mod random;
#[path = "../models/recurrent.rs"]
mod recurrent_models;
#[path = "../models/reshape.rs"]
mod reshape_models;
mod sequence;
mod support;
mod window;

/// The whole suite for one backend, as a module of tests named `$name`: one test per op family
/// and per group of fixtures.
macro_rules! conformance {
    ($(#[$attr:meta])* $name:ident, $device:expr) => {
        kernel_conformance!($(#[$attr])* $name, $device, {
            #[test]
            $(#[$attr])*
            fn keras_fixtures_optimizers() {
                fixtures::optimizers(&$device);
            }
            #[test]
            $(#[$attr])*
            fn keras_fixtures_losses_and_activations() {
                fixtures::losses_and_activations(&$device);
            }
            #[test]
            $(#[$attr])*
            fn keras_fixtures_layers() {
                fixtures::layers(&$device);
            }
            #[test]
            $(#[$attr])*
            fn keras_fixtures_recurrent() {
                fixtures::recurrent(&$device);
            }
            #[test]
            $(#[$attr])*
            fn keras_fixtures_functional() {
                fixtures::functional(&$device);
            }
        });
    };
}

/// The op families and one training run (the fixtures' many models left out: each backend type
/// compiles its own copy of every model), as a module of tests named `$name`, with `$more` items.
macro_rules! kernel_conformance {
    ($(#[$attr:meta])* $name:ident, $device:expr $(, { $($more:item)* })?) => {
        mod $name {
            use super::*;

            #[test]
            $(#[$attr])*
            fn core() {
                primitives::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn dense_ops() {
                dense::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn norm_ops() {
                norm::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn window_ops() {
                window::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn sequence_ops() {
                sequence::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn layout_ops() {
                layout::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn random_ops() {
                random::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn objective_ops() {
                objective::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn optimizer_ops() {
                optimizer::suite(&$device);
            }
            #[test]
            $(#[$attr])*
            fn training_matches_the_cpu() {
                fixtures::training_matches_the_cpu(&$device);
            }
            $($($more)*)?
        }
    };
}

conformance!(cpu, keras::Cpu::new());
conformance!(core_only, host_device::HostDevice::default());
#[cfg(feature = "cuda")]
conformance!(cuda_emulated, keras::backend::cuda::Cuda::emulated());
// On a GPU: run by scripts/gpu-check.sh (`--ignored`) on a machine with one.
#[cfg(feature = "cuda")]
conformance!(
    #[ignore = "needs a CUDA GPU: run by scripts/gpu-check.sh"]
    cuda_gpu,
    keras::backend::cuda::Cuda::new(0).expect("a CUDA GPU")
);
// Under AddressSanitizer (a kernel's out-of-bounds read aborts with a report): run by
// `cuda_address_sanitizer` in a child process with the sanitizer's runtime preloaded.
#[cfg(feature = "cuda")]
kernel_conformance!(
    #[ignore = "needs libasan preloaded: run by cuda_address_sanitizer"]
    cuda_asan,
    keras::backend::cuda::Cuda::on(keras::backend::cuda::EmuDevice::with_address_sanitizer())
);

/// The emulated suite's op families under AddressSanitizer: every kernel at every size the
/// suite tries, with exact-size allocations, so that a read or write past a buffer fails here.
/// (The fixtures' models repeat the same kernels at friendlier sizes; they are left out to keep
/// the run short.)
#[cfg(feature = "cuda")]
#[test]
fn cuda_address_sanitizer() {
    let cxx = std::env::var("CXX").ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "c++".to_string());
    let mut words = cxx.split_whitespace();
    let found = std::process::Command::new(words.next().unwrap()).args(words).arg("-print-file-name=libasan.so").output();
    let libasan = found.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    if !libasan.starts_with('/') {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "the C++ compiler ({cxx}) has no libasan.so, which CI needs");
        eprintln!("skipped: the C++ compiler ({cxx}) has no libasan.so");
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["cuda_asan::", "--ignored", "--skip", "keras_fixtures", "--skip", "training_matches_the_cpu"])
        .env("LD_PRELOAD", &libasan)
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
    assert!(child.status.success(), "the op families failed under AddressSanitizer:\n{stdout}\n{stderr}");
    assert!(stdout.contains("9 passed"), "expected the nine op-family tests to run:\n{stdout}");
}

// The CUDA backend kernel by kernel against a second backend (see `paired`): every kernel's
// outputs compared after each call, then made equal, so a difference names its kernel. On the
// emulator against the CPU here; on a GPU against the emulator, from scripts/gpu-check.sh.
#[cfg(feature = "cuda")]
kernel_conformance!(cuda_emulated_vs_cpu, paired::Paired::new(keras::backend::cuda::Cuda::emulated(), keras::Cpu::default()));
#[cfg(feature = "cuda")]
kernel_conformance!(
    #[ignore = "needs a CUDA GPU: run by scripts/gpu-check.sh"]
    cuda_gpu_vs_emulated,
    paired::Paired::new(keras::backend::cuda::Cuda::new(0).expect("a CUDA GPU"), keras::backend::cuda::Cuda::emulated())
);

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

#[path = "../models/basic.rs"]
mod basic_models;
#[path = "../common/mod.rs"]
mod common;
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
            #[test]
            $(#[$attr])*
            fn training_matches_the_cpu() {
                fixtures::training_matches_the_cpu(&$device);
            }
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

//! The backend conformance suite: every kernel of every op family, forward and backward, against
//! a plain reference written here, at awkward sizes (1, 7, 33, 1000, empty where legal) and with
//! NaN and infinities where Keras propagates them; then whole models, the Keras fixtures of the
//! other test files, trained on the backend to Keras's numbers.
//!
//! Everything is generic over `B: Backend`. A backend joins with one line,
//! `conformance!(name, device_expression);`. It runs here for the CPU, and for [`HostDevice`], a
//! backend with the core only (every op family at its defaults, no reading of host memory).
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
    ($name:ident, $device:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn core() {
                primitives::suite(&$device);
            }
            #[test]
            fn dense_ops() {
                dense::suite(&$device);
            }
            #[test]
            fn norm_ops() {
                norm::suite(&$device);
            }
            #[test]
            fn window_ops() {
                window::suite(&$device);
            }
            #[test]
            fn sequence_ops() {
                sequence::suite(&$device);
            }
            #[test]
            fn layout_ops() {
                layout::suite(&$device);
            }
            #[test]
            fn random_ops() {
                random::suite(&$device);
            }
            #[test]
            fn objective_ops() {
                objective::suite(&$device);
            }
            #[test]
            fn optimizer_ops() {
                optimizer::suite(&$device);
            }
            #[test]
            fn keras_fixtures_optimizers() {
                fixtures::optimizers(&$device);
            }
            #[test]
            fn keras_fixtures_losses_and_activations() {
                fixtures::losses_and_activations(&$device);
            }
            #[test]
            fn keras_fixtures_layers() {
                fixtures::layers(&$device);
            }
            #[test]
            fn keras_fixtures_recurrent() {
                fixtures::recurrent(&$device);
            }
            #[test]
            fn keras_fixtures_functional() {
                fixtures::functional(&$device);
            }
            #[test]
            fn training_matches_the_cpu() {
                fixtures::training_matches_the_cpu(&$device);
            }
        }
    };
}

conformance!(cpu, keras::Cpu::new());
conformance!(core_only, host_device::HostDevice::default());

//! What a backend needs for one optimizer step: the rule with this step's scalars precomputed
//! on the host, so that a backend implements every optimizer with one elementwise kernel.

/// One step's elementwise update, every scalar already evaluated for this step (learning rate
/// from its schedule, bias corrections). `g` is the (clipped) gradient, `w` the weight; the
/// state buffers a backend receives are listed per rule, in order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UpdateRule {
    /// Without momentum (no state): `w -= g lr`. With momentum (state: `m`): `m = mu m - g lr`,
    /// then `w += m`, or with Nesterov `w += mu m - g lr`.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum; 0 for none.
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
    },
    /// State `m`, `v` (and `vhat` for AMSGrad): `m += (g - m)(1 - b1)`, `v += (g^2 - v)(1 - b2)`,
    /// `w -= m alpha / (sqrt(v) + eps)` (AMSGrad: `vhat = max(vhat, v)` in place of `v`).
    Adam {
        /// `lr sqrt(1 - b2^t) / (1 - b1^t)`.
        alpha: f32,
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the root.
        epsilon: f32,
        /// Keep the running maximum of `v`.
        amsgrad: bool,
    },
    /// State `v`, then `mom` when `momentum > 0`, then `avg` when centered:
    /// `v = rho v + (1 - rho) g^2`; centered: `avg = rho avg + (1 - rho) g`, `d = v - avg^2 + eps`,
    /// else `d = v + eps`; `inc = lr g / sqrt(d)`; `mom = momentum mom + inc; w -= mom`, or `w -= inc`.
    RmsProp {
        /// Learning rate.
        lr: f32,
        /// Decay of the averages.
        rho: f32,
        /// Momentum; 0 for none.
        momentum: f32,
        /// Added to the denominator.
        epsilon: f32,
        /// Subtract the squared mean gradient.
        centered: bool,
    },
    /// State `acc`: `acc += g^2`, `w -= lr g / sqrt(acc + eps)`.
    Adagrad {
        /// Learning rate.
        lr: f32,
        /// Added under the root.
        epsilon: f32,
    },
    /// State `ag`, `ad`: `ag = rho ag + (1 - rho) g^2`, `d = -sqrt(ad + eps) g / sqrt(ag + eps)`,
    /// `ad = rho ad + (1 - rho) d^2`, `w += lr d`.
    Adadelta {
        /// Learning rate.
        lr: f32,
        /// Decay of the averages.
        rho: f32,
        /// Added under the roots.
        epsilon: f32,
    },
    /// State `m`, `u`: `m += (g - m)(1 - b1)`, `u = max(b2 u, |g|)`, `w -= lr m / (c (u + eps))`.
    Adamax {
        /// Learning rate.
        lr: f32,
        /// `1 - b1^t`.
        correction: f32,
        /// First-moment decay.
        beta_1: f32,
        /// Decay of the infinity norm.
        beta_2: f32,
        /// Added to the norm.
        epsilon: f32,
    },
    /// State `m`, `v`: Adam's moments, then `mhat = u_next m / (1 - prod_next) + (1 - u) g / (1 - prod)`,
    /// `vhat = v / (1 - b2^t)`, `w -= mhat lr / (sqrt(vhat) + eps)`.
    Nadam {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta_1: f32,
        /// Second-moment decay.
        beta_2: f32,
        /// Added to the root.
        epsilon: f32,
        /// The momentum schedule at the next step, `u_{t+1}`.
        u_next: f32,
        /// `1 - u_t`.
        one_minus_u: f32,
        /// `1 - u_1 ... u_{t+1}`.
        one_minus_product_next: f32,
        /// `1 - u_1 ... u_t`.
        one_minus_product: f32,
        /// `1 - b2^t`.
        v_correction: f32,
    },
    /// State `m`: `w -= lr sign(b1 m + (1 - b1) g)`, `m = b2 m + (1 - b2) g`.
    Lion {
        /// Learning rate.
        lr: f32,
        /// Interpolation for the update's sign.
        beta_1: f32,
        /// Decay of the momentum.
        beta_2: f32,
    },
    /// State `acc`, `lin`: FTRL-proximal as Keras's `Ftrl.update_step`.
    Ftrl {
        /// Learning rate.
        lr: f32,
        /// The learning rate power (`<= 0`).
        lr_power: f32,
        /// L1 regularisation.
        l1: f32,
        /// L2 regularisation plus `beta / (2 lr)`.
        l2: f32,
        /// L2 shrinkage regularisation.
        l2_shrinkage: f32,
    },
}

/// One optimizer step: Keras's weight decay and value clipping, then the rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Update {
    /// The elementwise rule.
    pub rule: UpdateRule,
    /// `(weight_decay, lr)`: first `w -= w * weight_decay * lr`.
    pub weight_decay: Option<(f32, f32)>,
    /// Each gradient clipped to `[-c, c]` before use.
    pub clipvalue: Option<f32>,
}

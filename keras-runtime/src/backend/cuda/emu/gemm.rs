//! The reference column-major SGEMM behind [`EmuDevice::gemm`](super::EmuDevice): cuBLAS's
//! semantics, with plain `f32` accumulation in `k` order; and cuBLASLt's bias and ReLU
//! epilogues behind `gemm_epilogue`.

use super::super::driver::{DevicePtr, Epilogue, GemmCall, Op};

/// Rounds to TF32 (10 explicit mantissa bits), to nearest, ties to even, as a tensor core's
/// inputs are; infinities and NaNs pass unchanged.
pub(super) fn round_tf32(x: f32) -> f32 {
    if !x.is_finite() {
        return x;
    }
    let bits = x.to_bits();
    f32::from_bits(bits.wrapping_add(0x0fff + ((bits >> 13) & 1)) & !0x1fff)
}

/// Runs `call`: `C = epilogue(alpha · op(A) · op(B) + beta · C)` for each item of the batch.
/// With `beta == 0` `C` is only written; with `k == 0` or `alpha == 0` `A` and `B` are not read.
/// The epilogue is cuBLASLt's: [`Epilogue::Bias`] adds `bias[i]` to row `i`, then
/// [`Epilogue::ReluBias`] takes `max(x, 0)` as `fmaxf` does (NaN becomes 0: what cuBLASLt's
/// ReLU is taken to do, see [`Epilogue::ReluBias`]).
///
/// # Safety
/// The arguments are valid ([`GemmCall::invalid`] and [`Epilogue::invalid`] are `None`), the
/// operands, with their leading dimensions and strides, lie inside live allocations, and so do
/// the `m` floats at `bias` when the epilogue has a bias.
pub(super) unsafe fn sgemm(call: &GemmCall, epilogue: Epilogue, bias: DevicePtr) {
    let GemmCall { m, n, k, alpha, beta, lda, ldb, ldc, .. } = *call;
    if m == 0 || n == 0 {
        return;
    }
    let round = |x: f32| if call.tf32 { round_tf32(x) } else { x };
    // op(A) (m x k) and op(B) (k x n), column-major and contiguous.
    let mut a = vec![0.0f32; m * k];
    let mut b = vec![0.0f32; k * n];
    let mut column = vec![0.0f32; m];
    for item in 0..call.batch {
        let pa = (call.a as *const f32).wrapping_add(item * call.strides[0]);
        let pb = (call.b as *const f32).wrapping_add(item * call.strides[1]);
        let pc = (call.c as *mut f32).wrapping_add(item * call.strides[2]);
        let multiply = k > 0 && alpha != 0.0;
        if multiply {
            for p in 0..k {
                for i in 0..m {
                    let at = if call.transa == Op::N { i + p * lda } else { p + i * lda };
                    // SAFETY: inside A (the caller's promise).
                    a[i + p * m] = round(unsafe { pa.add(at).read_unaligned() });
                }
                for j in 0..n {
                    let at = if call.transb == Op::N { p + j * ldb } else { j + p * ldb };
                    // SAFETY: inside B.
                    b[p + j * k] = round(unsafe { pb.add(at).read_unaligned() });
                }
            }
        }
        for j in 0..n {
            column.fill(0.0);
            if multiply {
                // Each element accumulates its k products in order, as a dot product would.
                for p in 0..k {
                    let bpj = b[p + j * k];
                    for (acc, &aip) in column.iter_mut().zip(&a[p * m..(p + 1) * m]) {
                        *acc += aip * bpj;
                    }
                }
            }
            for (i, &acc) in column.iter().enumerate() {
                // SAFETY: inside C.
                let c = unsafe { pc.add(i + j * ldc) };
                let product = if multiply { alpha * acc } else { 0.0 };
                let value = if beta == 0.0 { product } else { product + beta * unsafe { c.read_unaligned() } };
                // SAFETY: inside the bias (`i < m`), which an epilogue other than None has.
                let biased = || value + unsafe { (bias as *const f32).add(i).read_unaligned() };
                let value = match epilogue {
                    Epilogue::None => value,
                    Epilogue::Bias => biased(),
                    // `f32::max` is IEEE maxNum, as `fmaxf`: NaN gives the other operand.
                    Epilogue::ReluBias => biased().max(0.0),
                };
                unsafe { c.write_unaligned(value) };
            }
        }
    }
}

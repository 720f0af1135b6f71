//! The emulator against references: each CUDA feature the header emulates, the errors it turns
//! hangs and silent garbage into, the reference GEMM, capture and replay.

use super::*;
use crate::backend::cuda::kernels::CORE;
use std::process::Command;
use std::time::Instant;

/// The test kernels, one module (compiled once per process, and cached on disk).
const SOURCE: &str = r#"
// y = a * x + y over n elements, grid-stride.
extern "C" __global__ void axpy(float a, const float* x, float* y, unsigned long long n) {
    KERAS_FOR(i, n) { y[i] = a * x[i] + y[i]; }
}

// out[b] = the sum of block b's grid-stride share of x: a shared-memory tree for any blockDim.
extern "C" __global__ void block_sum(const float* x, unsigned n, float* out) {
    __shared__ float partial[1024];
    const unsigned t = threadIdx.x;
    float v = 0.0f;
    for (unsigned i = blockIdx.x * blockDim.x + t; i < n; i += blockDim.x * gridDim.x) v += x[i];
    partial[t] = v;
    __syncthreads();
    for (unsigned stride = 1; stride < blockDim.x; stride *= 2) {
        if (t % (2 * stride) == 0 && t + stride < blockDim.x) partial[t] += partial[t + stride];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = partial[0];
}

// Reverses each block's chunk of x into y through dynamic shared memory (blockDim + 1 floats);
// probe[b] gets the extra slot, which no thread writes.
extern "C" __global__ void reverse_chunks(const float* x, float* y, unsigned n, float* probe) {
    KERAS_DYNAMIC_SHARED(float, chunk);
    const unsigned t = threadIdx.x, first = blockIdx.x * blockDim.x;
    if (t == 0) probe[blockIdx.x] = chunk[blockDim.x];
    if (first + t < n) chunk[t] = x[first + t];
    __syncthreads();
    const unsigned len = min(blockDim.x, n - first);
    if (t < len) y[first + t] = chunk[len - 1 - t];
}

// Warp sums by __shfl_down_sync (lane 0 holds it) and by __shfl_xor_sync (every lane does).
extern "C" __global__ void warp_sums(const float* x, unsigned n, float* down, float* butterfly) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    float d = i < n ? x[i] : 0.0f, b = d;
    for (int offset = 16; offset > 0; offset /= 2) {
        d += __shfl_down_sync(0xffffffffu, d, offset);
        b += __shfl_xor_sync(0xffffffffu, b, offset);
    }
    if (threadIdx.x % 32 == 0) down[i / 32] = d;
    butterfly[i] = b;
}

// Inclusive prefix sums in each warp (__shfl_up_sync), and lane 3 of each 8-lane segment.
extern "C" __global__ void warp_scan(const int* x, int* scan, int* lane3) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x, lane = threadIdx.x % 32;
    int s = x[i];
    for (unsigned d = 1; d < 32; d *= 2) {
        const int up = __shfl_up_sync(0xffffffffu, s, d);
        if (lane >= d) s += up;
    }
    scan[i] = s;
    lane3[i] = __shfl_sync(0xffffffffu, x[i], 3, 8);
}

extern "C" __global__ void votes(const float* x, unsigned* ballot, int* any, int* all) {
    const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
    const int p = x[i] > 0.0f;
    const unsigned b = __ballot_sync(0xffffffffu, p);
    const int a = __any_sync(0xffffffffu, p), l = __all_sync(0xffffffffu, p);
    if (threadIdx.x % 32 == 0) {
        ballot[i / 32] = b;
        any[i / 32] = a;
        all[i / 32] = l;
    }
}

extern "C" __global__ void count(unsigned long long n, float* total, unsigned* hits, int* largest) {
    KERAS_FOR(i, n) {
        atomicAdd(total, 1.0f);
        atomicAdd(hits, 1u);
        atomicMax(largest, (int)i);
    }
}

// Threads from `active` on return before the barrier.
extern "C" __global__ void early_return(float* out, unsigned active) {
    if (threadIdx.x >= active) return;
    out[threadIdx.x] = 1.0f;
    __syncthreads();
}

extern "C" __global__ void full_shuffle(float* out) {
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, (float)threadIdx.x, 1);
}

extern "C" __global__ void trap_at(unsigned thread) {
    if (threadIdx.x == thread) __trap();
}

// Row softmax of a rows x cols matrix: a block per row, blockDim a power of 2.
extern "C" __global__ void row_softmax(const float* x, float* y, unsigned cols) {
    __shared__ float scratch[1024];
    const float* row = x + (unsigned long long)blockIdx.x * cols;
    float* out = y + (unsigned long long)blockIdx.x * cols;
    const unsigned t = threadIdx.x;
    float m = -KERAS_INF;
    for (unsigned c = t; c < cols; c += blockDim.x) m = fmaxf(m, row[c]);
    scratch[t] = m;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s) scratch[t] = fmaxf(scratch[t], scratch[t + s]);
        __syncthreads();
    }
    m = scratch[0];
    __syncthreads();
    float sum = 0.0f;
    for (unsigned c = t; c < cols; c += blockDim.x) sum += expf(row[c] - m);
    scratch[t] = sum;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s) scratch[t] += scratch[t + s];
        __syncthreads();
    }
    const float inverse = 1.0f / scratch[0];
    for (unsigned c = t; c < cols; c += blockDim.x) out[c] = expf(row[c] - m) * inverse;
}

// The order blocks ran in: order[block] = how many blocks ran before it.
extern "C" __global__ void block_order(unsigned* counter, unsigned* order) {
    if (threadIdx.x == 0 && threadIdx.y == 0) order[blockIdx.y * gridDim.x + blockIdx.x] = atomicAdd(counter, 1u);
}
"#;

const KERNELS: &[&str] = &[
    "axpy",
    "block_sum",
    "reverse_chunks",
    "warp_sums",
    "warp_scan",
    "votes",
    "count",
    "early_return",
    "full_shuffle",
    "trap_at",
    "row_softmax",
    "block_order",
];

fn kernel(device: &EmuDevice, name: &str) -> EmuKernel {
    let kernels = device.load("emu_test", SOURCE, KERNELS).unwrap();
    kernels[KERNELS.iter().position(|k| *k == name).unwrap()].clone()
}

/// A device buffer holding `data`.
fn buffer<T: Copy>(device: &EmuDevice, data: &[T]) -> DevicePtr {
    let ptr = device.alloc(size_of_val(data).max(1)).unwrap();
    // SAFETY: plain numbers, viewed as bytes.
    let bytes = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), size_of_val(data)) };
    unsafe { device.upload(bytes, ptr) }.unwrap();
    ptr
}

/// `len` values of a device buffer.
fn read<T: Copy + Default>(device: &EmuDevice, ptr: DevicePtr, len: usize) -> Vec<T> {
    let mut out = vec![T::default(); len];
    // SAFETY: plain numbers, viewed as bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<u8>(), size_of_val(out.as_slice())) };
    unsafe { device.download(ptr, bytes) }.unwrap();
    out
}

fn launch(device: &EmuDevice, kernel: &EmuKernel, config: LaunchConfig, args: &[KernelArg<'_>]) -> Result<()> {
    // SAFETY: the tests pass each kernel its parameters, over buffers large enough.
    unsafe { device.launch(kernel, config, args) }
}

fn config(grid: u32, block: u32, shared_bytes: u32) -> LaunchConfig {
    LaunchConfig { grid: [grid, 1, 1], block: [block, 1, 1], shared_bytes }
}

/// Deterministic values in [-1, 1).
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn device_error(result: Result<()>) -> String {
    match result {
        Err(Error::Device(message)) => message,
        other => panic!("expected a device error, got {other:?}"),
    }
}

#[test]
fn emu_grid_stride_loop_covers_odd_sizes() {
    let device = EmuDevice::new();
    let axpy = kernel(&device, "axpy");
    for n in [1usize, 7, 33, 1000] {
        for (blocks, threads) in [(1, 1), (1, 32), (3, 64), (8, 256)] {
            let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
            let (px, py) = (buffer(&device, &x), device.alloc(4 * (n + 3)).unwrap());
            unsafe { device.upload(&vec![0u8; 4 * n], py) }.unwrap();
            let (a, n64) = (2.0f32, n as u64);
            launch(
                &device,
                &axpy,
                config(blocks, threads, 0),
                &[KernelArg::new(&a), KernelArg::new(&px), KernelArg::new(&py), KernelArg::new(&n64)],
            )
            .unwrap();
            let y: Vec<f32> = read(&device, py, n + 3);
            assert!(y[..n].iter().enumerate().all(|(i, &v)| v == 2.0 * i as f32), "n {n}, {blocks} x {threads}");
            assert!(y[n..].iter().all(|v| v.to_bits() == 0x7fff_ffff), "past the end is untouched");
            unsafe { device.free(px) };
            unsafe { device.free(py) };
        }
    }
    device.synchronize().unwrap();
}

#[test]
fn emu_shared_memory_block_reduction() {
    let device = EmuDevice::new();
    let block_sum = kernel(&device, "block_sum");
    let n = 1000u32;
    let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32).collect();
    let px = buffer(&device, &x);
    for threads in [96u32, 256] {
        let grid = 3u32;
        let out = device.alloc(4 * grid as usize).unwrap();
        launch(&device, &block_sum, config(grid, threads, 0), &[KernelArg::new(&px), KernelArg::new(&n), KernelArg::new(&out)]).unwrap();
        let expected: Vec<f32> = (0..grid)
            .map(|b| (0..threads).flat_map(|t| (b * threads + t..n).step_by((threads * grid) as usize)).map(|i| x[i as usize]).sum())
            .collect();
        assert_eq!(read::<f32>(&device, out, grid as usize), expected, "blockDim {threads}");
    }
}

#[test]
fn emu_dynamic_shared_memory_is_per_block_and_nan_filled() {
    let device = EmuDevice::new();
    let reverse = kernel(&device, "reverse_chunks");
    let (n, threads, grid) = (100u32, 32u32, 4u32);
    let x: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let (px, py, probe) = (buffer(&device, &x), device.alloc(4 * n as usize).unwrap(), device.alloc(4 * grid as usize).unwrap());
    launch(
        &device,
        &reverse,
        config(grid, threads, 4 * (threads + 1)),
        &[KernelArg::new(&px), KernelArg::new(&py), KernelArg::new(&n), KernelArg::new(&probe)],
    )
    .unwrap();
    let y: Vec<f32> = read(&device, py, n as usize);
    for (i, &v) in y.iter().enumerate() {
        let (first, t) = (i as u32 / threads * threads, i as u32 % threads);
        let len = threads.min(n - first);
        assert_eq!(v, (first + len - 1 - t) as f32, "element {i}");
    }
    assert!(read::<f32>(&device, probe, grid as usize).iter().all(|p| p.to_bits() == 0x7fff_ffff));
}

/// The shuffle trees of `warp_sums` on one warp, in the kernel's order: lane 0's sum by
/// `__shfl_down_sync`, and every lane's by `__shfl_xor_sync`.
fn warp_trees(lanes: &[f32]) -> (f32, Vec<f32>) {
    let (mut down, mut butterfly) = (lanes.to_vec(), lanes.to_vec());
    for offset in [16, 8, 4, 2, 1] {
        let (d, b) = (down.clone(), butterfly.clone());
        for l in 0..32 {
            down[l] = d[l] + d[if l + offset < 32 { l + offset } else { l }];
            butterfly[l] = b[l] + b[l ^ offset];
        }
    }
    (down[0], butterfly)
}

#[test]
fn emu_warp_shuffles_match_reference() {
    let device = EmuDevice::new();
    let (n, threads, grid) = (70u32, 64u32, 2u32);
    let x = values(n as usize, 1);
    let (px, down, butterfly) = (buffer(&device, &x), device.alloc(4 * 4).unwrap(), device.alloc(4 * 128).unwrap());
    let args = [KernelArg::new(&px), KernelArg::new(&n), KernelArg::new(&down), KernelArg::new(&butterfly)];
    launch(&device, &kernel(&device, "warp_sums"), config(grid, threads, 0), &args).unwrap();
    let (got_down, got_butterfly) = (read::<f32>(&device, down, 4), read::<f32>(&device, butterfly, 128));
    for w in 0..4 {
        let lanes: Vec<f32> = (w * 32..w * 32 + 32).map(|i| if i < n as usize { x[i] } else { 0.0 }).collect();
        let (d, b) = warp_trees(&lanes);
        assert_eq!(got_down[w].to_bits(), d.to_bits(), "warp {w}");
        assert_eq!(
            got_butterfly[w * 32..w * 32 + 32].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
    }

    let ints: Vec<i32> = (0..64).map(|i| (i * 37 % 11) - 5).collect();
    let (pi, scan, lane3) = (buffer(&device, &ints), device.alloc(4 * 64).unwrap(), device.alloc(4 * 64).unwrap());
    launch(&device, &kernel(&device, "warp_scan"), config(1, 64, 0), &[KernelArg::new(&pi), KernelArg::new(&scan), KernelArg::new(&lane3)])
        .unwrap();
    let expected_scan: Vec<i32> = (0..64).map(|i| ints[i / 32 * 32..=i].iter().sum()).collect();
    let expected_lane3: Vec<i32> = (0..64).map(|i| ints[i / 8 * 8 + 3]).collect();
    assert_eq!(read::<i32>(&device, scan, 64), expected_scan);
    assert_eq!(read::<i32>(&device, lane3, 64), expected_lane3);
}

#[test]
fn emu_ballot_any_all() {
    let device = EmuDevice::new();
    // Warp 0 all positive, warp 1 every third lane, warp 2 none.
    let x: Vec<f32> = (0..96).map(|i| if i < 32 || (i < 64 && i % 3 == 0) { 1.0 } else { -1.0 }).collect();
    let (px, ballot, any, all) = (buffer(&device, &x), device.alloc(12).unwrap(), device.alloc(12).unwrap(), device.alloc(12).unwrap());
    let args = [KernelArg::new(&px), KernelArg::new(&ballot), KernelArg::new(&any), KernelArg::new(&all)];
    launch(&device, &kernel(&device, "votes"), config(1, 96, 0), &args).unwrap();
    let thirds = (0..32).filter(|l| (32 + l) % 3 == 0).fold(0u32, |m, l| m | 1 << l);
    assert_eq!(read::<u32>(&device, ballot, 3), [u32::MAX, thirds, 0]);
    assert_eq!(read::<i32>(&device, any, 3), [1, 1, 0]);
    assert_eq!(read::<i32>(&device, all, 3), [1, 0, 0]);
}

#[test]
fn emu_atomics_across_blocks() {
    let device = EmuDevice::new();
    let n = 10_000u64;
    let (total, hits, largest) = (buffer(&device, &[0.0f32]), buffer(&device, &[0u32]), buffer(&device, &[i32::MIN]));
    let args = [KernelArg::new(&n), KernelArg::new(&total), KernelArg::new(&hits), KernelArg::new(&largest)];
    launch(&device, &kernel(&device, "count"), config(7, 96, 0), &args).unwrap();
    assert_eq!(read::<f32>(&device, total, 1), [10_000.0]);
    assert_eq!(read::<u32>(&device, hits, 1), [10_000]);
    assert_eq!(read::<i32>(&device, largest, 1), [9_999]);
}

#[test]
fn emu_return_before_syncthreads_is_an_error() {
    let device = EmuDevice::new();
    let early = kernel(&device, "early_return");
    let out = device.alloc(4 * 64).unwrap();
    let all = 64u32;
    launch(&device, &early, config(2, 64, 0), &[KernelArg::new(&out), KernelArg::new(&all)]).unwrap();
    let some = 40u32;
    let message = device_error(launch(&device, &early, config(2, 64, 0), &[KernelArg::new(&out), KernelArg::new(&some)]));
    assert!(message.contains("kernel `early_return`: __syncthreads reached by 40 of 64 threads of block (0,0,0)"), "{message}");
    assert!(message.contains("divergent barrier"), "{message}");
    // The failure is also the next synchronize's, once.
    assert_eq!(device_error(device.synchronize()), message);
    device.synchronize().unwrap();
}

#[test]
fn emu_full_mask_shuffle_in_partial_warp_is_an_error() {
    let device = EmuDevice::new();
    let shuffle = kernel(&device, "full_shuffle");
    let out = device.alloc(4 * 64).unwrap();
    launch(&device, &shuffle, config(1, 64, 0), &[KernelArg::new(&out)]).unwrap();
    let expected: Vec<f32> = (0..64).map(|i| if i % 32 == 31 { i } else { i + 1 } as f32).collect();
    assert_eq!(read::<f32>(&device, out, 64), expected);
    let message = device_error(launch(&device, &shuffle, config(1, 48, 0), &[KernelArg::new(&out)]));
    assert!(message.contains("kernel `full_shuffle`: __shfl_down_sync with mask 0xffffffff"), "{message}");
    assert!(message.contains("only 16 lanes"), "{message}");
}

#[test]
fn emu_trap_is_an_error() {
    let device = EmuDevice::new();
    let thread = 5u32;
    let message = device_error(launch(&device, &kernel(&device, "trap_at"), config(1, 32, 0), &[KernelArg::new(&thread)]));
    assert!(message.contains("kernel `trap_at`: __trap() at emu_test.cu:"), "{message}");
    assert!(message.contains("thread (5,0,0) of block (0,0,0)"), "{message}");
}

#[test]
fn emu_wrong_arguments_and_geometry_are_errors() {
    let device = EmuDevice::new();
    let axpy = kernel(&device, "axpy");
    let (a, p, n32, n64) = (1.0f32, device.alloc(4).unwrap(), 1u32, 1u64);
    let message = device_error(launch(&device, &axpy, config(1, 1, 0), &[KernelArg::new(&a), KernelArg::new(&p), KernelArg::new(&p)]));
    assert_eq!(message, "kernel `axpy` takes 4 arguments, 3 given");
    let args = [KernelArg::new(&a), KernelArg::new(&p), KernelArg::new(&p), KernelArg::new(&n32)];
    let message = device_error(launch(&device, &axpy, config(1, 1, 0), &args));
    assert_eq!(message, "kernel `axpy`: argument 3 (from 0) has 4 bytes, its parameter 8");
    let args = [KernelArg::new(&a), KernelArg::new(&p), KernelArg::new(&p), KernelArg::new(&n64)];
    for (bad, problem) in [
        (config(1, 2048, 0), "block dimensions"),
        (LaunchConfig { grid: [1, 1, 1], block: [32, 32, 2], shared_bytes: 0 }, "block dimensions"),
        (config(0, 32, 0), "grid dimensions"),
        (LaunchConfig { grid: [1, 65536, 1], block: [32, 1, 1], shared_bytes: 0 }, "grid dimensions"),
        (config(1, 32, 64 * 1024), "48 KiB"),
    ] {
        let message = device_error(launch(&device, &axpy, bad, &args));
        assert!(message.starts_with("kernel `axpy`: grid (") && message.contains(problem), "{message}");
    }
    launch(&device, &axpy, config(1, 1, 0), &args).unwrap();
}

#[test]
fn emu_fresh_allocation_is_nan() {
    let device = EmuDevice::new();
    let p = device.alloc(40).unwrap();
    assert_eq!(p % 256, 0);
    assert!(format!("{device:?}").contains("allocations: 1"));
    assert!(read::<u32>(&device, p, 10).iter().all(|&bits| bits == 0x7fff_ffff));
    assert!(device.alloc(0).is_err());
}

#[test]
fn emu_out_of_bounds_copies_are_errors() {
    let device = EmuDevice::new();
    let p = device.alloc(40).unwrap();
    let other = device.alloc(40).unwrap();
    let data = [0u8; 44];
    assert!(device_error(unsafe { device.upload(&data, p) }).contains("upload: 44 bytes at"));
    assert!(unsafe { device.upload(&data[..40], p + 4) }.is_err());
    assert!(unsafe { device.download(p + 40, &mut [0u8; 1]) }.is_err());
    unsafe { device.download(p + 36, &mut [0u8; 4]) }.unwrap();
    unsafe { device.free(p) };
    assert!(unsafe { device.upload(&data[..4], p) }.is_err());
    unsafe { device.upload(&data[..40], other) }.unwrap();
    unsafe { device.free(p) };
    assert!(device_error(device.synchronize()).contains("not a live allocation"));
}

/// `C = alpha · op(A) · op(B) + beta · C` element by element, with the emulator's order of
/// accumulation.
fn reference_gemm(call: &GemmCall, a: &[f32], b: &[f32], c: &mut [f32]) {
    for item in 0..call.batch {
        let (a, b) = (&a[item * call.strides[0]..], &b[item * call.strides[1]..]);
        let c = &mut c[item * call.strides[2]..];
        for j in 0..call.n {
            for i in 0..call.m {
                let mut acc = 0.0f32;
                for p in 0..call.k {
                    let aip = if call.transa == Op::N { a[i + p * call.lda] } else { a[p + i * call.lda] };
                    let bpj = if call.transb == Op::N { b[p + j * call.ldb] } else { b[j + p * call.ldb] };
                    acc += aip * bpj;
                }
                let c = &mut c[i + j * call.ldc];
                *c = if call.beta == 0.0 { call.alpha * acc } else { call.alpha * acc + call.beta * *c };
            }
        }
    }
}

fn gemm_call(transa: Op, transb: Op, (m, n, k): (usize, usize, usize), lds: [usize; 3], strides: [usize; 3], batch: usize) -> GemmCall {
    GemmCall {
        transa,
        transb,
        m,
        n,
        k,
        alpha: 1.5,
        a: 0,
        lda: lds[0],
        b: 0,
        ldb: lds[1],
        beta: 0.0,
        c: 0,
        ldc: lds[2],
        batch,
        strides,
        tf32: false,
    }
}

#[test]
fn emu_gemm_matches_reference() {
    let device = EmuDevice::new();
    let (m, n, k, batch) = (5, 4, 3, 3);
    for transa in [Op::N, Op::T] {
        for transb in [Op::N, Op::T] {
            let (rows_a, cols_a) = if transa == Op::N { (m, k) } else { (k, m) };
            let (rows_b, cols_b) = if transb == Op::N { (k, n) } else { (n, k) };
            let lds = [rows_a + 2, rows_b + 1, m + 3];
            let strides = [lds[0] * cols_a + 5, lds[1] * cols_b, lds[2] * n + 1];
            let (a, b) = (values(strides[0] * batch, 2), values(strides[1] * batch, 3));
            for beta in [0.0, 1.0] {
                let mut call = gemm_call(transa, transb, (m, n, k), lds, strides, batch);
                call.beta = beta;
                let c = values(strides[2] * batch, 4);
                (call.a, call.b) = (buffer(&device, &a), buffer(&device, &b));
                // With beta 0, C is NaN garbage that must not leak.
                call.c = if beta == 0.0 { device.alloc(4 * c.len()).unwrap() } else { buffer(&device, &c) };
                unsafe { device.gemm(&call) }.unwrap();
                let got: Vec<f32> = read(&device, call.c, c.len());
                let mut expected = if beta == 0.0 { vec![f32::from_bits(0x7fff_ffff); c.len()] } else { c };
                reference_gemm(&call, &a, &b, &mut expected);
                let same = got.iter().zip(&expected).all(|(g, e)| g.to_bits() == e.to_bits());
                assert!(same, "{transa:?} {transb:?} beta {beta}: {got:?} != {expected:?}");
                let written = (0..batch).flat_map(|item| (0..n).flat_map(move |j| (0..m).map(move |i| item * strides[2] + i + j * lds[2])));
                assert!(written.clone().all(|at| got[at].is_finite()));
                assert_eq!(written.count(), batch * m * n);
            }
        }
    }
}

#[test]
fn emu_gemm_edge_sizes() {
    let device = EmuDevice::new();
    let c = buffer(&device, &[1.0f32, 2.0, 3.0, 4.0]);
    let nan_a = device.alloc(64).unwrap();
    // k == 0: C = beta · C, A and B unread.
    let mut call = gemm_call(Op::N, Op::N, (2, 2, 0), [2, 1, 2], [0; 3], 1);
    (call.a, call.b, call.c, call.beta) = (nan_a, nan_a, c, 0.5);
    unsafe { device.gemm(&call) }.unwrap();
    assert_eq!(read::<f32>(&device, c, 4), [0.5, 1.0, 1.5, 2.0]);
    // ... and zeros with beta 0, even over NaN.
    let nan_c = device.alloc(16).unwrap();
    (call.c, call.beta) = (nan_c, 0.0);
    unsafe { device.gemm(&call) }.unwrap();
    assert_eq!(read::<f32>(&device, nan_c, 4), [0.0; 4]);
    // m == 0: nothing at all.
    let mut call = gemm_call(Op::N, Op::N, (0, 2, 2), [1, 2, 1], [0; 3], 1);
    (call.a, call.b, call.c) = (nan_a, nan_a, c);
    unsafe { device.gemm(&call) }.unwrap();
    assert_eq!(read::<f32>(&device, c, 4), [0.5, 1.0, 1.5, 2.0]);
}

#[test]
fn emu_gemm_invalid_arguments_are_errors() {
    let device = EmuDevice::new();
    let p = device.alloc(4 * 16).unwrap();
    let mut call = gemm_call(Op::N, Op::N, (4, 4, 4), [3, 4, 4], [0; 3], 1);
    (call.a, call.b, call.c) = (p, p, p);
    let message = device_error(unsafe { device.gemm(&call) });
    assert_eq!(message, "gemm: invalid argument (CUBLAS_STATUS_INVALID_VALUE): lda = 3 < max(1, 4)");
    call.lda = 4;
    call.batch = 0;
    assert!(device_error(unsafe { device.gemm(&call) }).contains("batch count 0"));
    call.batch = 2;
    call.strides = [0, 0, 16];
    assert!(device_error(unsafe { device.gemm(&call) }).contains("gemm: operand C: 128 bytes at"));
    call.batch = 1;
    unsafe { device.gemm(&call) }.unwrap();
    assert!(device.synchronize().is_err(), "the first failure is kept for synchronize");
}

#[test]
fn emu_gemm_tf32_rounds_inputs() {
    assert_eq!(gemm::round_tf32(1.0 + 2f32.powi(-12)), 1.0);
    assert_eq!(gemm::round_tf32(1.0 + 2f32.powi(-11)), 1.0, "a tie rounds to even");
    assert_eq!(gemm::round_tf32(1.0 + 3.0 * 2f32.powi(-11)), 1.0 + 2f32.powi(-9), "a tie rounds to even");
    assert_eq!(gemm::round_tf32(-(1.0 + 2f32.powi(-10) + 2f32.powi(-12))), -(1.0 + 2f32.powi(-10)));
    assert_eq!(gemm::round_tf32(f32::MAX), f32::INFINITY);
    assert!(gemm::round_tf32(f32::NAN).is_nan());

    let device = EmuDevice::new();
    let a = buffer(&device, &[1.0 + 2f32.powi(-12), 1.0 + 3.0 * 2f32.powi(-11)]);
    let b = buffer(&device, &[1.0f32, 1.0]);
    let c = device.alloc(4).unwrap();
    let mut call = gemm_call(Op::T, Op::N, (1, 1, 2), [2, 2, 1], [0; 3], 1);
    (call.a, call.b, call.c, call.alpha) = (a, b, c, 1.0);
    unsafe { device.gemm(&call) }.unwrap();
    assert_eq!(read::<f32>(&device, c, 1), [2.0 + 2f32.powi(-12) + 3.0 * 2f32.powi(-11)]);
    call.tf32 = true;
    unsafe { device.gemm(&call) }.unwrap();
    assert_eq!(read::<f32>(&device, c, 1), [2.0 + 2f32.powi(-9)]);
}

/// `reference_gemm` then cuBLASLt's epilogue: `bias[i]` added to row `i`, then `max(x, 0)` as
/// `fmaxf` (NaN becomes 0) for ReluBias.
fn reference_epilogue(call: &GemmCall, epilogue: Epilogue, bias: &[f32], a: &[f32], b: &[f32], c: &mut [f32]) {
    reference_gemm(call, a, b, c);
    if epilogue == Epilogue::None {
        return;
    }
    for j in 0..call.n {
        for i in 0..call.m {
            let v = c[i + j * call.ldc] + bias[i];
            c[i + j * call.ldc] = if epilogue == Epilogue::ReluBias { v.max(0.0) } else { v };
        }
    }
}

#[test]
fn emu_gemm_epilogue_matches_reference() {
    let device = EmuDevice::new();
    for (m, n, k) in [(7, 33, 5), (33, 7, 1), (1, 1, 1), (5, 2, 0)] {
        for transa in [Op::N, Op::T] {
            for transb in [Op::N, Op::T] {
                let (rows_a, cols_a) = if transa == Op::N { (m, k) } else { (k, m) };
                let (rows_b, cols_b) = if transb == Op::N { (k, n) } else { (n, k) };
                let lds = [rows_a + 1, rows_b.max(1), m + 2];
                let (a, b) = (values(lds[0] * cols_a.max(1), 5), values(lds[1] * cols_b.max(1), 6));
                // Values in [-1, 1), and a bias that pushes some sums below 0 and some above.
                let bias: Vec<f32> = values(m, 7).iter().map(|v| 2.0 * v).collect();
                for epilogue in [Epilogue::None, Epilogue::Bias, Epilogue::ReluBias] {
                    let what = format!("{m}x{n}x{k} {transa:?} {transb:?} {epilogue:?}");
                    let mut call = gemm_call(transa, transb, (m, n, k), lds, [0; 3], 1);
                    (call.a, call.b, call.c) = (buffer(&device, &a), buffer(&device, &b), device.alloc(4 * lds[2] * n).unwrap());
                    let pbias = buffer(&device, &bias);
                    assert!(unsafe { device.gemm_epilogue(&call, epilogue, pbias) }.unwrap(), "{what}: the emulator always fuses");
                    let got: Vec<f32> = read(&device, call.c, lds[2] * n);
                    let mut expected = vec![f32::from_bits(0x7fff_ffff); got.len()];
                    reference_epilogue(&call, epilogue, &bias, &a, &b, &mut expected);
                    let same = got.iter().zip(&expected).all(|(g, e)| g.to_bits() == e.to_bits());
                    assert!(same, "{what}: {got:?} != {expected:?}");
                    let written: Vec<f32> = (0..n).flat_map(|j| (0..m).map(move |i| i + j * lds[2])).map(|at| got[at]).collect();
                    assert!(written.iter().all(|v| v.is_finite()), "{what}: every element of C is written");
                    if epilogue == Epilogue::ReluBias {
                        assert!(written.iter().all(|&v| v >= 0.0), "{what}: {got:?}");
                        assert!(m * n < 100 || written.contains(&0.0), "{what}: some sums are negative");
                    }
                    for ptr in [call.a, call.b, call.c, pbias] {
                        unsafe { device.free(ptr) };
                    }
                }
            }
        }
    }
    device.synchronize().unwrap();
}

#[test]
fn emu_gemm_epilogue_nan() {
    // cuBLASLt's ReLU is taken to be `fmaxf`: a NaN becomes 0 (where Keras's relu keeps it,
    // which is why the backend does not use ReluBias); the bias alone keeps it.
    let device = EmuDevice::new();
    let (a, b, bias) = (buffer(&device, &[f32::NAN, 1.0]), buffer(&device, &[1.0f32]), buffer(&device, &[0.5f32, -2.0]));
    let mut call = gemm_call(Op::N, Op::N, (2, 1, 1), [2, 1, 2], [0; 3], 1);
    (call.a, call.b, call.c, call.alpha) = (a, b, device.alloc(8).unwrap(), 1.0);
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::Bias, bias) }.unwrap());
    let got: Vec<f32> = read(&device, call.c, 2);
    assert!(got[0].is_nan() && got[1] == -1.0, "{got:?}");
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::ReluBias, bias) }.unwrap());
    assert_eq!(read::<f32>(&device, call.c, 2), [0.0, 0.0]);
}

#[test]
fn emu_gemm_epilogue_invalid_arguments_are_errors() {
    let device = EmuDevice::new();
    let (p, bias) = (device.alloc(4 * 16).unwrap(), device.alloc(4 * 4).unwrap());
    let mut call = gemm_call(Op::N, Op::N, (4, 4, 4), [4, 4, 4], [0; 3], 1);
    (call.a, call.b, call.c) = (p, p, p);
    let error = |call: &GemmCall, epilogue, bias| device_error(unsafe { device.gemm_epilogue(call, epilogue, bias) }.map(drop));
    call.beta = 1.0;
    assert_eq!(
        error(&call, Epilogue::Bias, bias),
        "gemm: invalid argument (CUBLAS_STATUS_INVALID_VALUE): epilogue Bias with beta = 1 (only beta == 0 is supported)"
    );
    // Without an epilogue it is a plain product, beta and all.
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::None, 0) }.unwrap());
    call.beta = 0.0;
    call.batch = 2;
    assert!(error(&call, Epilogue::ReluBias, bias).contains("epilogue ReluBias with a batch of 2"));
    call.batch = 1;
    assert!(error(&call, Epilogue::Bias, 0).contains("epilogue Bias with a null bias pointer"));
    // The bias holds m floats: one short is out of bounds.
    assert!(error(&call, Epilogue::Bias, bias + 4).contains("gemm: the epilogue's bias: 16 bytes at"));
    // cuBLAS's own rules still hold.
    call.ldc = 3;
    assert_eq!(error(&call, Epilogue::Bias, bias), "gemm: invalid argument (CUBLAS_STATUS_INVALID_VALUE): ldc = 3 < max(1, 4)");
    call.ldc = 4;
    // A failure is kept for synchronize; a valid call still runs.
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::Bias, bias) }.unwrap());
    assert!(device.synchronize().is_err());
    device.synchronize().unwrap();

    // Recorded and replayed like a product; a failing one fails the capture.
    let (a, b, c, bias) = (buffer(&device, &[2.0f32]), buffer(&device, &[3.0f32]), device.alloc(4).unwrap(), buffer(&device, &[-7.0f32]));
    let mut call = gemm_call(Op::N, Op::N, (1, 1, 1), [1, 1, 1], [0; 3], 1);
    (call.a, call.b, call.c, call.alpha) = (a, b, c, 1.0);
    device.begin_capture().unwrap();
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::Bias, bias) }.unwrap());
    let graph = device.end_capture().unwrap();
    assert_eq!(graph.len(), 1);
    unsafe { device.replay(&graph) }.unwrap();
    assert_eq!(read::<f32>(&device, c, 1), [-1.0]);
    device.begin_capture().unwrap();
    assert!(unsafe { device.gemm_epilogue(&call, Epilogue::Bias, 0) }.is_err());
    assert!(device_error(device.end_capture().map(drop)).contains("null bias pointer"));
}

#[test]
fn emu_linear_uses_the_bias_epilogue() {
    use crate::backend::cuda::Cuda;
    use crate::backend::ops::{Activation, BiasAct, Gemm, Linear};
    use crate::backend::{DenseOps, Device};

    let dev = Cuda::emulated();
    for (rows, k, n) in [(7, 33, 5), (1, 1, 1), (33, 7, 10), (3, 0, 4)] {
        let (x, w) = (values(rows * k, 8), values(k * n, 9));
        let mut b = values(n, 10);
        b[0] = f32::NAN;
        let up = |data: &[f32]| {
            let mut buf = dev.alloc(data.len()).unwrap();
            dev.upload(data, Cuda::view_mut(&mut buf, 0..data.len())).unwrap();
            buf
        };
        let down = |buf: &crate::backend::cuda::CudaBuffer<EmuDevice>| {
            let mut out = vec![0.0; Cuda::len(buf)];
            dev.download(Cuda::view(buf, 0..out.len()), &mut out).unwrap();
            out
        };
        let (xb, wb, bb) = (up(&x), up(&w), up(&b));
        let (xv, wv, bv) = (Cuda::view(&xb, 0..x.len()), Cuda::view(&wb, 0..w.len()), Cuda::view(&bb, 0..n));
        // The usual path: the product, then the bias kernel.
        let mut want = dev.alloc(rows * n).unwrap();
        dev.gemm(&Gemm::nn(rows, n, k), xv, wv, Cuda::view_mut(&mut want, 0..rows * n));
        dev.bias_act(&BiasAct { rows, cols: n, act: Activation::Linear }, Cuda::view_mut(&mut want, 0..rows * n), Some(bv), None);
        // `linear` with a bias and no activation: one product with the epilogue (one piece of
        // work in a capture of the device), the same bits.
        let mut y = dev.alloc(rows * n).unwrap();
        dev.device().begin_capture().unwrap();
        let l = Linear { rows, k, n, act: Activation::Linear };
        dev.linear(&l, xv, wv, Some(bv), Cuda::view_mut(&mut y, 0..rows * n), None);
        let graph = dev.device().end_capture().unwrap();
        assert_eq!(graph.len(), 1, "{rows}x{k}x{n}: one fused product");
        unsafe { dev.device().replay(&graph) }.unwrap();
        let (got, want) = (down(&y), down(&want));
        let same = got.iter().zip(&want).all(|(g, e)| g.to_bits() == e.to_bits());
        assert!(same, "{rows}x{k}x{n}: {got:?} != {want:?}");
        assert!((0..rows).all(|r| got[r * n].is_nan()), "a NaN bias stays NaN");

        // With `pre` requested, and with relu (whose NaN cuBLASLt's epilogue would drop), the
        // usual path: a product and a kernel.
        let mut pre = dev.alloc(rows * n).unwrap();
        dev.device().begin_capture().unwrap();
        dev.linear(&l, xv, wv, Some(bv), Cuda::view_mut(&mut y, 0..rows * n), Some(Cuda::view_mut(&mut pre, 0..rows * n)));
        assert_eq!(dev.device().end_capture().unwrap().len(), 2);
        dev.device().begin_capture().unwrap();
        let relu = Linear { act: Activation::Relu, ..l };
        dev.linear(&relu, xv, wv, Some(bv), Cuda::view_mut(&mut y, 0..rows * n), None);
        let graph = dev.device().end_capture().unwrap();
        assert_eq!(graph.len(), 2);
        unsafe { dev.device().replay(&graph) }.unwrap();
        let got = down(&y);
        assert!((0..rows).all(|r| got[r * n].is_nan()), "relu keeps NaN: {got:?}");
        assert!(got.iter().all(|v| v.is_nan() || *v >= 0.0));
    }
    dev.sync().unwrap();
}

#[test]
fn emu_capture_and_replay() {
    let device = EmuDevice::new();
    let core = device.load(CORE.name, CORE.source, CORE.kernels).unwrap();
    let add = &core[CORE.kernels.iter().position(|k| *k == "add").unwrap()];
    let src = buffer(&device, &[1.0f32, 2.0, 3.0, 4.0, 5.0]);
    let dst = buffer(&device, &[0.0f32; 5]);
    let (a, b, c) = (buffer(&device, &[2.0f32]), buffer(&device, &[3.0f32]), buffer(&device, &[1.0f32]));
    device.begin_capture().unwrap();
    {
        // The graph keeps the arguments' values, not their addresses.
        let n = 5u64;
        unsafe { device.launch(add, LaunchConfig::linear(1, 32), &[KernelArg::new(&src), KernelArg::new(&dst), KernelArg::new(&n)]) }
            .unwrap();
    }
    let mut call = gemm_call(Op::N, Op::N, (1, 1, 1), [1, 1, 1], [0; 3], 1);
    (call.a, call.b, call.c, call.alpha, call.beta) = (a, b, c, 1.0, 1.0);
    unsafe { device.gemm(&call) }.unwrap();
    let graph = device.end_capture().unwrap();
    assert_eq!(graph.len(), 2);
    assert_eq!(read::<f32>(&device, dst, 5), [0.0; 5], "capturing runs nothing");
    for _ in 0..3 {
        // SAFETY: the buffers the graph touches are still allocated.
        unsafe { device.replay(&graph) }.unwrap();
    }
    device.synchronize().unwrap();
    assert_eq!(read::<f32>(&device, dst, 5), [3.0, 6.0, 9.0, 12.0, 15.0]);
    assert_eq!(read::<f32>(&device, c, 1), [19.0]);
}

#[test]
fn emu_capture_misuse_is_an_error() {
    let device = EmuDevice::new();
    let p = device.alloc(4).unwrap();
    assert!(device.end_capture().is_err());
    device.begin_capture().unwrap();
    assert!(device.begin_capture().is_err());
    assert!(unsafe { device.download(p, &mut [0u8; 4]) }.is_err());
    assert!(device_error(device.end_capture().map(drop)).contains("download while capturing"));

    // A launch that fails its checks fails the capture.
    let axpy = kernel(&device, "axpy");
    device.begin_capture().unwrap();
    assert!(launch(&device, &axpy, config(1, 1, 0), &[KernelArg::new(&p)]).is_err());
    assert!(device_error(device.end_capture().map(drop)).contains("takes 4 arguments"));
    device.begin_capture().unwrap();
    assert!(device.synchronize().is_err());
    assert!(device.end_capture().is_err());
}

#[test]
fn emu_runs_the_core_module() {
    let device = EmuDevice::new();
    let core = device.load(CORE.name, CORE.source, CORE.kernels).unwrap();
    let find = |name: &str| &core[CORE.kernels.iter().position(|k| *k == name).unwrap()];
    let dst = device.alloc(4 * 7).unwrap();
    let (n, value) = (7u64, 2.5f32);
    launch(&device, find("fill"), LaunchConfig::linear(2, 3), &[KernelArg::new(&dst), KernelArg::new(&n), KernelArg::new(&value)]).unwrap();
    assert_eq!(read::<f32>(&device, dst, 7), [2.5; 7]);

    // A row index past the data set's 4 rows gathers a row of NaN.
    let src = buffer(&device, &(0..12).map(|i| i as f32).collect::<Vec<_>>());
    let indices = buffer(&device, &[3u32, 1, 9, 2]);
    let (src_rows, row_len, first, rows, out) = (4u64, 3u64, 1u64, 2u64, device.alloc(4 * 6).unwrap());
    let args = [
        KernelArg::new(&src),
        KernelArg::new(&src_rows),
        KernelArg::new(&row_len),
        KernelArg::new(&indices),
        KernelArg::new(&first),
        KernelArg::new(&rows),
        KernelArg::new(&out),
    ];
    launch(&device, find("gather_rows"), LaunchConfig::linear(1, 4), &args).unwrap();
    let got: Vec<f32> = read(&device, out, 6);
    assert_eq!(got[..3], [3.0, 4.0, 5.0]);
    assert!(got[3..].iter().all(|v| v.is_nan()));
}

#[test]
fn emu_compile_errors_name_the_module() {
    let device = EmuDevice::new();
    let broken = r#"extern "C" __global__ void k(float* x) { x[0] = undefined_name; }"#;
    let message = device_error(device.load("broken", broken, &["k"]).map(drop));
    assert!(message.starts_with("kernel module `broken`: "), "{message}");
    assert!(message.contains("broken.cu:1:") && message.contains("undefined_name"), "{message}");
    assert!(device_error(device.load("broken", broken, &["not a name"]).map(drop)).contains("not a kernel name"));

    let missing = EmuDevice::build(Compiler::new("/nonexistent/c++"), false);
    let message = device_error(missing.load("core", CORE.source, CORE.kernels).map(drop));
    assert!(message.contains("cannot run the C++ compiler `/nonexistent/c++`"), "{message}");
    assert!(missing.name().contains("not found"));
}

#[test]
fn emu_launches_run_on_several_threads_at_once() {
    let device = EmuDevice::new();
    let block_sum = kernel(&device, "block_sum");
    let n = 5000u32;
    let x: Vec<f32> = (0..n).map(|i| (i % 5) as f32).collect();
    let px = buffer(&device, &x);
    std::thread::scope(|scope| {
        for threads in [32u32, 64, 160, 1024] {
            let (device, block_sum) = (&device, &block_sum);
            scope.spawn(move || {
                let out = device.alloc(4).unwrap();
                for _ in 0..5 {
                    launch(device, block_sum, config(1, threads, 0), &[KernelArg::new(&px), KernelArg::new(&n), KernelArg::new(&out)])
                        .unwrap();
                    assert_eq!(read::<f32>(device, out, 1), [10_000.0]);
                }
            });
        }
    });
}

#[test]
fn emu_row_softmax_512x1024() {
    let device = EmuDevice::new();
    let (rows, cols) = (512usize, 1024u32);
    let x = values(rows * cols as usize, 5);
    let (px, py) = (buffer(&device, &x), device.alloc(4 * x.len()).unwrap());
    let softmax = kernel(&device, "row_softmax");
    let start = Instant::now();
    launch(&device, &softmax, config(rows as u32, 256, 0), &[KernelArg::new(&px), KernelArg::new(&py), KernelArg::new(&cols)]).unwrap();
    eprintln!("row_softmax 512 x 1024, 256 threads per block: {:.3} s", start.elapsed().as_secs_f64());
    let y: Vec<f32> = read(&device, py, x.len());
    for (xr, yr) in x.chunks(cols as usize).zip(y.chunks(cols as usize)) {
        let max = xr.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = xr.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        for (&v, &got) in xr.iter().zip(yr) {
            let expected = (f64::from(v) - max).exp() / sum;
            assert!((f64::from(got) - expected).abs() <= 1e-5 * expected, "{got} vs {expected}");
        }
    }
}

/// Under AddressSanitizer a kernel's read one past the end of a buffer aborts the process with a
/// report that points into the kernel's source: `emu_asan_child` run in a child process with the
/// sanitizer's runtime preloaded.
#[test]
fn emu_address_sanitizer_finds_out_of_bounds_reads() {
    let found = Compiler::from_env().command().arg("-print-file-name=libasan.so").output().unwrap();
    let libasan = String::from_utf8(found.stdout).unwrap().trim().to_string();
    assert!(libasan.starts_with('/'), "the C++ compiler has no libasan.so: {libasan}");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "backend::cuda::emu::tests::emu_asan_child", "--ignored", "--nocapture"])
        .env("LD_PRELOAD", &libasan)
        .env("ASAN_OPTIONS", "detect_leaks=0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(!child.status.success(), "the out-of-bounds read went unnoticed: {stderr}");
    assert!(stderr.contains("AddressSanitizer: heap-buffer-overflow") && stderr.contains("READ of size 4"), "{stderr}");
    assert!(stderr.contains("emu_test.cu:"), "{stderr}");
}

#[test]
#[ignore = "run by emu_address_sanitizer_finds_out_of_bounds_reads, with the sanitizer preloaded"]
fn emu_asan_child() {
    let device = EmuDevice::with_address_sanitizer();
    // Fibers switching at barriers raise no false alarm.
    let (n, out) = (1000u32, device.alloc(8).unwrap());
    let x = buffer(&device, &(0..n).map(|i| (i % 7) as f32).collect::<Vec<_>>());
    launch(&device, &kernel(&device, "block_sum"), config(2, 96, 0), &[KernelArg::new(&x), KernelArg::new(&n), KernelArg::new(&out)])
        .unwrap();
    assert_eq!(read::<f32>(&device, out, 2).iter().sum::<f32>(), (0..n).map(|i| (i % 7) as f32).sum::<f32>());
    let (x, y) = (buffer(&device, &[1.0f32; 8]), buffer(&device, &[1.0f32; 9]));
    let (a, n) = (1.0f32, 9u64);
    let axpy = kernel(&device, "axpy");
    launch(&device, &axpy, config(1, 32, 0), &[KernelArg::new(&a), KernelArg::new(&x), KernelArg::new(&y), KernelArg::new(&n)]).unwrap();
}

/// Blocks run in a scrambled order, as a GPU promises no order: every block exactly once, and
/// not in index order (a kernel that needs its blocks in order would pass the emulator only to
/// fail on a GPU).
#[test]
fn emu_blocks_run_once_each_in_no_index_order() {
    let device = EmuDevice::new();
    let order_of = |grid: [u32; 3]| -> Vec<u32> {
        let count = (grid[0] * grid[1]) as usize;
        let counter = buffer(&device, &[0u32]);
        let order = buffer(&device, &vec![u32::MAX; count]);
        let config = LaunchConfig { grid, block: [32, 2, 1], shared_bytes: 0 };
        launch(&device, &kernel(&device, "block_order"), config, &[KernelArg::new(&counter), KernelArg::new(&order)]).unwrap();
        read::<u32>(&device, order, count)
    };
    for grid in [[1, 1, 1], [2, 1, 1], [3, 1, 1], [16, 1, 1], [7, 5, 1], [1000, 1, 1]] {
        let order = order_of(grid);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..order.len() as u32).collect::<Vec<_>>(), "grid {grid:?}: not each block once");
        if order.len() >= 3 {
            assert!(order.windows(2).any(|w| w[1] != w[0] + 1), "grid {grid:?}: blocks ran in index order: {order:?}");
        }
    }
}

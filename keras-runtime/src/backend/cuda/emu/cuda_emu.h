// cuda_emu.h: CUDA's built-ins for the CPU, for keras-rs's CUDA emulator (EmuDevice).
//
// A kernel module is compiled by the host C++ compiler as one translation unit: this header,
// the kernels' prelude, the module's source, then one `EMU_EXPORT(kernel)` launcher per kernel.
//
// Execution model. A launch runs on the OS thread that calls its launcher, one block at a time,
// the blocks in a scrambled order (see run_grid).
// Every CUDA thread of the block is a fiber that runs until it returns or waits at a
// barrier (`__syncthreads`, or a warp operation over a mask of lanes); the last thread to reach a
// barrier releases the others and goes on. A barrier that can never be released (part of a
// block returned before it, lanes of a mask exited or do not exist) is an error that names the
// kernel, not a hang. A thread that returns hands its stack to the next thread of the block, so
// a kernel without barriers runs a whole block on one stack. `__shared__` variables are
// `static thread_local`: shared by the fibers of one OS thread, and launches on other OS threads
// have their own.

#pragma once

// Fibers are entered with ucontext and switched with _setjmp/_longjmp, which (unlike swapcontext)
// make no system call; as QEMU's coroutines do, turn off glibc's check that a longjmp stays on
// its stack.
#undef _FORTIFY_SOURCE

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <cassert>
#include <cmath>
#include <mutex>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/asan_interface.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

// ---- Qualifiers and types ----

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x = 1, unsigned int y = 1, unsigned int z = 1) : x(x), y(y), z(z) {}
};
struct __align__(8) float2 { float x, y; };
struct __align__(16) float4 { float x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

static constexpr int warpSize = 32;

// What the Rust side passes to a launcher (`EmuConfig` in emu/module.rs).
struct EmuConfig {
    unsigned int grid[3], block[3], shared_bytes;
    int check_only;         // validate the arguments and the geometry, run nothing
    char* error;            // receives the first error, NUL-terminated
    size_t error_capacity;
};

namespace emu {

constexpr size_t kStackBytes = EMU_ASAN ? 512 * 1024 : 64 * 1024;
constexpr size_t kGuardBytes = 4096;
constexpr unsigned kMaxSharedBytes = 48 * 1024;  // what a launch gets without an opt-in

enum class State : unsigned char { Ready, Sync, Warp, Done };
enum class WarpOp : unsigned char { Sync, Shfl, Up, Down, Xor, Ballot, Any, All };
static const char* const kWarpOpNames[] = {"__syncwarp", "__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                           "__shfl_xor_sync", "__ballot_sync", "__any_sync", "__all_sync"};

// One CUDA thread.
struct Fiber {
    jmp_buf context;
    bool fresh;   // started but not yet entered
    void* stack;  // the stack it runs on: null before it starts and once it is done
    void* asan_fake_stack;
    State state;
    uint3 thread_idx;
    int sync_line;  // the line of the __syncthreads it waits at
    // The warp operation it waits at, and its result.
    WarpOp op;
    unsigned mask, arg;
    int width;
    unsigned long long value, result;
};

struct Block;

// What the built-in variables read. Every thread_local of a module is constant-initialised, so
// reading one costs no TLS guard.
struct Current {
    Fiber* fiber;
    Block* block;  // the launch's scheduler
    uint3 block_idx, block_dim, grid_dim;  // not dim3, whose constructor would need a guard
    void* dynamic_shared;
};
static thread_local Current cur;

// A launch's scheduler (of its current block) and a pool of fiber stacks. A launch takes one from
// a process-wide free list and gives it back, so an OS thread that exits leaves nothing behind.
struct Block {
    const char* kernel;
    char* error;
    size_t error_capacity;
    bool failed;
    void (*body)(void*);  // runs the kernel with the launch's arguments
    void* call;
    std::vector<Fiber> fibers;
    unsigned threads, started, live, at_sync;
    int sync_line;
    bool sync_mixed;  // threads wait at different __syncthreads
    Fiber* finished;  // a fiber whose stack the scheduler recycles
    jmp_buf scheduler;
    ucontext_t entry;  // enters a started fiber
    void* scheduler_fake_stack;
    const void* os_stack_bottom;
    size_t os_stack_size;
    std::vector<void*> stacks;
    std::vector<unsigned char> shared;
    Block* next_free;
};
static std::mutex free_blocks_mutex;
static Block* free_blocks;

// Records the first error of the launch.
__attribute__((format(printf, 1, 2))) static void report(const char* format, ...) {
    Block& block = *cur.block;
    if (block.failed) return;
    block.failed = true;
    va_list args;
    va_start(args, format);
    vsnprintf(block.error, block.error_capacity, format, args);
    va_end(args);
}

// Switches from the running fiber (`from`, or the scheduler when null) to `to` (the scheduler
// when null), telling AddressSanitizer about the stack switch.
static void switch_to(Fiber* from, Fiber* to) {
    Block& block = *cur.block;
    cur.fiber = to;
#if EMU_ASAN
    void** fake = from ? (from->state == State::Done ? nullptr : &from->asan_fake_stack) : &block.scheduler_fake_stack;
    __sanitizer_start_switch_fiber(fake, to ? to->stack : block.os_stack_bottom, to ? kStackBytes : block.os_stack_size);
#endif
    if (_setjmp(from ? from->context : block.scheduler) == 0) {
        if (to && to->fresh) {
            to->fresh = false;
            setcontext(&block.entry);
        }
        _longjmp(to ? to->context : block.scheduler, 1);
    }
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(from ? from->asan_fake_stack : block.scheduler_fake_stack, nullptr, nullptr);
#endif
}

// Stops the launch from inside a fiber: the scheduler never resumes it.
[[noreturn]] static void abort_fiber() {
    switch_to(cur.fiber, nullptr);
    __builtin_unreachable();
}

// A fiber's stack runs its thread, then (without a switch) the next thread not yet started, and
// so on: a kernel without barriers runs a whole block on one stack.
static void fiber_main() {
    Block& block = *cur.block;
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
    for (;;) {
        block.body(block.call);
        Fiber* self = cur.fiber;
        self->state = State::Done;
        --block.live;
        if (block.started == block.threads || block.failed) {
            block.finished = self;
            switch_to(self, nullptr);
        }
        Fiber* next = &block.fibers[block.started++];
        next->stack = self->stack;
        self->stack = nullptr;
        cur.fiber = next;
    }
}

static void* take_stack() {
    Block& block = *cur.block;
    if (!block.stacks.empty()) {
        void* s = block.stacks.back();
        block.stacks.pop_back();
        return s;
    }
    void* m = mmap(nullptr, kStackBytes + kGuardBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    mprotect(m, kGuardBytes, PROT_NONE);  // an overflow faults instead of corrupting a neighbour
    return (char*)m + kGuardBytes;
}

static void give_stack(Fiber* f) {
    Block& block = *cur.block;
#if EMU_ASAN
    __asan_unpoison_memory_region(f->stack, kStackBytes);  // an abandoned fiber leaves poisoned frames
#endif
    block.stacks.push_back(f->stack);
    f->stack = nullptr;
}

// Runs `to` (on a new stack if it has not started) from `from` until control comes back.
static void resume(Fiber* from, Fiber* to) {
    Block& block = *cur.block;
    if (to - block.fibers.data() == block.started) {  // threads start in order
        ++block.started;
        to->stack = take_stack();
        if (!to->stack) {
            report("kernel `%s`: out of memory for a fiber stack", block.kernel);
            if (from) abort_fiber();
            return;
        }
        getcontext(&block.entry);
        block.entry.uc_stack.ss_sp = to->stack;
        block.entry.uc_stack.ss_size = kStackBytes;
        block.entry.uc_link = nullptr;  // fiber_main never returns
        makecontext(&block.entry, fiber_main, 0);
        to->fresh = true;
    }
    switch_to(from, to);
}

// The running fiber waits (its state says where): hand the OS thread to the next ready fiber,
// or to the scheduler, until a barrier releases it.
static void wait() {
    Block& block = *cur.block;
    Fiber* self = cur.fiber;
    Fiber* end = block.fibers.data() + block.threads;
    for (Fiber* f = self + 1; f < end; ++f) {
        if (f->state == State::Ready) {
            resume(self, f);
            return;
        }
    }
    switch_to(self, nullptr);
}

static void describe_block(char* out, size_t n) {
    snprintf(out, n, "block (%u,%u,%u)", cur.block_idx.x, cur.block_idx.y, cur.block_idx.z);
}

// Explains why no fiber can run: a warp operation or a __syncthreads never complete.
static void diagnose() {
    Block& block = *cur.block;
    char where[64];
    describe_block(where, sizeof where);
    Fiber* fibers = block.fibers.data();
    for (unsigned i = 0; i < block.threads; ++i) {
        const Fiber& f = fibers[i];
        if (f.state != State::Warp) continue;
        const Fiber* warp = fibers + (i - i % 32);
        for (unsigned l = 0; l < 32; ++l) {
            if (!(f.mask >> l & 1)) continue;
            const Fiber& g = warp[l];
            const char* name = kWarpOpNames[(int)f.op];
            if (g.state == State::Done)
                return report("kernel `%s`: %s with mask 0x%08x in %s, warp %u: lane %u has returned (divergent warp)",
                              block.kernel, name, f.mask, where, i / 32, l);
            if (g.state == State::Sync)
                return report("kernel `%s`: %s with mask 0x%08x in %s, warp %u: lane %u waits at __syncthreads (line %d)",
                              block.kernel, name, f.mask, where, i / 32, l, g.sync_line);
            if (g.state == State::Warp && g.mask != f.mask)
                return report("kernel `%s`: %s with mask 0x%08x in %s, warp %u: lane %u waits at %s with mask 0x%08x",
                              block.kernel, name, f.mask, where, i / 32, l, kWarpOpNames[(int)g.op], g.mask);
        }
    }
    unsigned here = 0;
    for (unsigned i = 0; i < block.threads; ++i) here += fibers[i].state == State::Sync && fibers[i].sync_line == block.sync_line;
    report("kernel `%s`: __syncthreads reached by %u of %u threads of %s (divergent barrier: %u returned, %u wait at "
           "another __syncthreads)",
           block.kernel, here, block.threads, where, block.threads - block.live, block.at_sync - here);
}

// Runs the current block to its end or its first error.
static void run_block() {
    Block& block = *cur.block;
    const uint3 d = cur.block_dim;
    block.threads = d.x * d.y * d.z;
    block.fibers.resize(block.threads);
    for (unsigned i = 0; i < block.threads; ++i) {
        Fiber& f = block.fibers[i];
        f.stack = nullptr;
        f.state = State::Ready;
        f.thread_idx = {i % d.x, i / d.x % d.y, i / (d.x * d.y)};
    }
    block.started = 0;
    block.live = block.threads;
    block.at_sync = 0;
    block.sync_mixed = false;
    while (block.live > 0 && !block.failed) {
        bool ran = false;
        for (unsigned i = 0; i < block.threads && !block.failed; ++i) {
            if (block.fibers[i].state != State::Ready) continue;
            resume(nullptr, &block.fibers[i]);
            if (block.finished) give_stack(block.finished);
            block.finished = nullptr;
            ran = true;
        }
        if (!ran && !block.failed) diagnose();
    }
    for (Fiber& f : block.fibers)
        if (f.stack) give_stack(&f);
}

// __syncthreads: the last thread of the block to arrive releases the others.
__attribute__((noinline)) static void syncthreads(int line) {
    Block& block = *cur.block;
    Fiber* self = cur.fiber;
    if (block.at_sync == 0) block.sync_line = line;
    block.sync_mixed |= line != block.sync_line;
    self->sync_line = line;
    self->state = State::Sync;
    if (++block.at_sync == block.threads && !block.sync_mixed) {
        for (unsigned i = 0; i < block.threads; ++i) block.fibers[i].state = State::Ready;
        block.at_sync = 0;
        return;
    }
    wait();
}

// The results of a warp operation whose lanes (`mask`) have all arrived.
static void complete_warp_op(Fiber* warp, unsigned mask) {
    unsigned ballot = 0;
    for (unsigned l = 0; l < 32; ++l)
        if ((mask >> l & 1) && warp[l].value) ballot |= 1u << l;
    for (unsigned l = 0; l < 32; ++l) {
        if (!(mask >> l & 1)) continue;
        Fiber& f = warp[l];
        const unsigned w = (unsigned)f.width, first = l & ~(w - 1);
        unsigned src = l;  // a source outside the segment reads the lane's own value, as on a GPU
        switch (f.op) {
            case WarpOp::Shfl: src = first + (f.arg & (w - 1)); break;
            case WarpOp::Up: src = (l & (w - 1)) >= f.arg ? l - f.arg : l; break;
            case WarpOp::Down: src = (l & (w - 1)) + f.arg < w ? l + f.arg : l; break;
            case WarpOp::Xor: src = (l ^ f.arg) < first + w ? l ^ f.arg : l; break;
            default: break;
        }
        if (!(mask >> src & 1)) src = l;  // undefined in CUDA: a lane outside the mask
        f.result = f.op == WarpOp::Ballot ? ballot
                   : f.op == WarpOp::Any  ? ballot != 0
                   : f.op == WarpOp::All  ? ballot == mask
                                          : warp[src].value;
        f.state = State::Ready;
    }
}

// A warp operation over the lanes of `mask`: a warp barrier, then the result.
static unsigned long long warp_op(WarpOp op, unsigned mask, unsigned long long value, unsigned arg, int width) {
    Block& block = *cur.block;
    Fiber* self = cur.fiber;
    const unsigned index = (unsigned)(self - block.fibers.data()), lane = index % 32;
    Fiber* warp = self - lane;
    const unsigned lanes = block.threads - (index - lane) < 32 ? block.threads - (index - lane) : 32;
    const unsigned existing = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
    const char* name = kWarpOpNames[(int)op];
    const char* problem = nullptr;
    char detail[96];
    if (!(mask >> lane & 1)) {
        snprintf(detail, sizeof detail, "the calling lane %u is not in the mask", lane);
        problem = detail;
    } else if (mask & ~existing) {
        snprintf(detail, sizeof detail, "the warp has only %u lanes (the block has %u threads)", lanes, block.threads);
        problem = detail;
    } else if (width < 1 || width > 32 || (width & (width - 1))) {
        problem = "the width is not a power of 2 up to 32";
    }
    if (problem) {
        char where[64];
        describe_block(where, sizeof where);
        report("kernel `%s`: %s with mask 0x%08x, width %d in %s, warp %u: %s", block.kernel, name, mask, width, where,
               index / 32, problem);
        abort_fiber();
    }
    self->op = op;
    self->mask = mask;
    self->value = value;
    self->arg = arg;
    self->width = width;
    self->state = State::Warp;
    bool complete = true;
    for (unsigned l = 0; l < 32 && complete; ++l)
        if (mask >> l & 1) complete = warp[l].state == State::Warp && warp[l].mask == mask;
    if (complete)
        complete_warp_op(warp, mask);
    else
        wait();
    return self->result;
}

template <typename T>
static T shuffle(WarpOp op, unsigned mask, T var, unsigned arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffles move values of up to 8 bytes");
    unsigned long long bits = 0;
    memcpy(&bits, &var, sizeof(T));
    bits = warp_op(op, mask, bits, arg, width);
    memcpy(&var, &bits, sizeof(T));
    return var;
}

[[noreturn]] inline void fail_in_kernel(const char* what, const char* file, int line) {
    Block& block = *cur.block;
    char where[64];
    describe_block(where, sizeof where);
    const uint3 t = cur.fiber->thread_idx;
    report("kernel `%s`: %s at %s:%d in thread (%u,%u,%u) of %s", block.kernel, what, file, line, t.x, t.y, t.z, where);
    abort_fiber();
}

// Checks a launch's geometry as the driver does; false (and an error) when it is invalid.
static bool check_geometry(const char* kernel, const EmuConfig* c) {
    const unsigned* b = c->block;
    const unsigned* g = c->grid;
    const char* problem = nullptr;
    if (!b[0] || !b[1] || !b[2] || b[0] > 1024 || b[1] > 1024 || b[2] > 64 ||
        (unsigned long long)b[0] * b[1] * b[2] > 1024)
        problem = "block dimensions outside CUDA's limits (1..1024 threads, x, y <= 1024, z <= 64)";
    else if (!g[0] || !g[1] || !g[2] || g[0] > 0x7fffffffu || g[1] > 65535 || g[2] > 65535)
        problem = "grid dimensions outside CUDA's limits (x < 2^31, y, z < 65536, none 0)";
    else if (c->shared_bytes > kMaxSharedBytes)
        problem = "more than 48 KiB of dynamic shared memory";
    if (problem)
        snprintf(c->error, c->error_capacity, "kernel `%s`: grid (%u,%u,%u), block (%u,%u,%u), %u shared bytes: %s",
                 kernel, g[0], g[1], g[2], b[0], b[1], b[2], c->shared_bytes, problem);
    return !problem;
}

// A stride near 5n/8 that is coprime with n, so that i -> i * stride mod n permutes 0..n and
// scatters neighbouring blocks apart.
static unsigned long long coprime_stride(unsigned long long n) {
    if (n < 3) return 1;
    unsigned long long p = (n >> 1) + (n >> 3);
    if (p < 2) p = 2;
    for (;; ++p) {
        unsigned long long a = p, b = n;
        while (b) { unsigned long long t = a % b; a = b; b = t; }
        if (a == 1) return p;
    }
}

// Runs every block of a launch (see the order below); 0, or 1 with the error in the config's
// buffer.
static int run_grid(const char* kernel, const EmuConfig* c, void (*body)(void*), void* call) {
    {
        std::lock_guard<std::mutex> lock(free_blocks_mutex);
        cur.block = free_blocks;
        if (free_blocks) free_blocks = free_blocks->next_free;
    }
    if (!cur.block) cur.block = new Block();
    Block& block = *cur.block;
    block.kernel = kernel;
    block.error = c->error;
    block.error_capacity = c->error_capacity;
    block.failed = false;
    block.body = body;
    block.call = call;
    block.finished = nullptr;
#if EMU_ASAN
    pthread_attr_t attr;
    void* bottom = nullptr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &bottom, &block.os_stack_size);
    pthread_attr_destroy(&attr);
    block.os_stack_bottom = bottom;
#endif
    cur.grid_dim = {c->grid[0], c->grid[1], c->grid[2]};
    cur.block_dim = {c->block[0], c->block[1], c->block[2]};
    const size_t words = (c->shared_bytes + 15) / 16 * 4;
    block.shared.resize(words * 4 + 16);
    float* shared = (float*)(((uintptr_t)block.shared.data() + 15) & ~(uintptr_t)15);
    cur.dynamic_shared = shared;
    // A GPU runs blocks in no particular order: here they run in a scrambled one (block i of
    // the launch is i * stride mod count, a fixed permutation), so that a kernel whose blocks
    // depend on running in index order fails here too.
    const unsigned long long gx = c->grid[0], gy = c->grid[1], count = gx * gy * c->grid[2];
    const unsigned long long stride = coprime_stride(count);
    for (unsigned long long i = 0; i < count && !block.failed; ++i) {
        const unsigned long long b = (unsigned long long)((unsigned __int128)i * stride % count);
        cur.block_idx = {(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / (gx * gy))};
        const uint32_t nan = 0x7fffffff;  // uninitialised shared memory reads as NaN
        for (size_t w = 0; w < words; ++w) memcpy(shared + w, &nan, 4);
        run_block();
    }
    cur.fiber = nullptr;
    cur.block = nullptr;
    std::lock_guard<std::mutex> lock(free_blocks_mutex);
    block.next_free = free_blocks;
    free_blocks = &block;
    return block.failed ? 1 : 0;
}

template <typename... A>
struct Call {
    void (*kernel)(A...);
    std::tuple<A...> args;
};

template <typename... A>
static void invoke(void* call) {
    auto* c = static_cast<Call<A...>*>(call);
    std::apply(c->kernel, c->args);  // each CUDA thread gets its own copy of the arguments
}

template <typename... A, size_t... I>
static void unpack(std::tuple<A...>& t, void* const* args, std::index_sequence<I...>) {
    (memcpy(&std::get<I>(t), args[I], sizeof(A)), ...);
}

// The launcher behind every EMU_EXPORT: checks the arguments as cudarc passes them (one pointer
// to each value, and its size) against the kernel's parameters, then runs the grid.
template <typename... A>
int launch(const char* kernel, void (*k)(A...), void* const* args, int nargs, const size_t* sizes,
           const EmuConfig* c) noexcept {
    static_assert((std::is_trivially_copyable<A>::value && ...), "kernel parameters are plain data");
    constexpr size_t expected[] = {sizeof(A)..., 0};
    if (nargs != (int)sizeof...(A)) {
        snprintf(c->error, c->error_capacity, "kernel `%s` takes %d arguments, %d given", kernel, (int)sizeof...(A), nargs);
        return 1;
    }
    for (int i = 0; i < nargs; ++i)
        if (sizes[i] != expected[i]) {
            snprintf(c->error, c->error_capacity, "kernel `%s`: argument %d (from 0) has %zu bytes, its parameter %zu",
                     kernel, i, sizes[i], expected[i]);
            return 1;
        }
    if (!check_geometry(kernel, c)) return 1;
    if (c->check_only) return 0;
    try {
        Call<A...> call{k, {}};
        unpack(call.args, args, std::index_sequence_for<A...>{});
        return run_grid(kernel, c, &invoke<A...>, &call);
    } catch (...) {
        snprintf(c->error, c->error_capacity, "kernel `%s`: out of host memory", kernel);
        return 1;
    }
}

}  // namespace emu

#define EMU_EXPORT(name)                                                                                        \
    extern "C" __attribute__((visibility("default"))) int emu_launch_##name(                                   \
        void* const* args, int nargs, const size_t* sizes, const EmuConfig* config) {                          \
        return emu::launch(#name, name, args, nargs, sizes, config);                                            \
    }

// ---- Built-in variables ----

#define threadIdx (static_cast<const uint3&>(emu::cur.fiber->thread_idx))
#define blockIdx (static_cast<const uint3&>(emu::cur.block_idx))
#define blockDim (dim3(emu::cur.block_dim.x, emu::cur.block_dim.y, emu::cur.block_dim.z))
#define gridDim (dim3(emu::cur.grid_dim.x, emu::cur.grid_dim.y, emu::cur.grid_dim.z))

inline void* emu_dynamic_shared() { return emu::cur.dynamic_shared; }

// ---- Barriers and warp operations ----

#define __syncthreads() emu::syncthreads(__LINE__)
inline void __syncwarp(unsigned mask = 0xffffffffu) { emu::warp_op(emu::WarpOp::Sync, mask, 0, 0, 32); }
template <typename T> T __shfl_sync(unsigned mask, T var, int src, int width = 32) {
    return emu::shuffle(emu::WarpOp::Shfl, mask, var, (unsigned)src, width);
}
template <typename T> T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return emu::shuffle(emu::WarpOp::Up, mask, var, delta, width);
}
template <typename T> T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return emu::shuffle(emu::WarpOp::Down, mask, var, delta, width);
}
template <typename T> T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    return emu::shuffle(emu::WarpOp::Xor, mask, var, (unsigned)lane_mask, width);
}
// The 1-based position of the lowest set bit, 0 for none.
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __ballot_sync(unsigned mask, int p) { return (unsigned)emu::warp_op(emu::WarpOp::Ballot, mask, p != 0, 0, 32); }
inline int __any_sync(unsigned mask, int p) { return (int)emu::warp_op(emu::WarpOp::Any, mask, p != 0, 0, 32); }
inline int __all_sync(unsigned mask, int p) { return (int)emu::warp_op(emu::WarpOp::All, mask, p != 0, 0, 32); }
// The lanes of the caller's warp that have not returned.
inline unsigned __activemask() {
    const emu::Block& block = *emu::cur.block;
    const unsigned index = (unsigned)(emu::cur.fiber - block.fibers.data()), first = index - index % 32;
    unsigned mask = 0;
    for (unsigned l = 0; l < 32 && first + l < block.threads; ++l)
        if (block.fibers[first + l].state != emu::State::Done) mask |= 1u << l;
    return mask;
}
inline void __threadfence() {}
inline void __threadfence_block() {}
template <typename T> T __ldg(const T* p) { return *p; }

#define __trap() emu::fail_in_kernel("__trap()", __FILE__, __LINE__)
#undef assert
#define assert(e) ((e) ? (void)0 : emu::fail_in_kernel("assertion `" #e "` failed", __FILE__, __LINE__))

// ---- Atomics: a block runs on one OS thread and fibers switch only at barriers, so a plain
// read-modify-write is atomic. ----

#define EMU_ATOMIC(name, T, expr) \
    inline T name(T* p, T v) {    \
        T old = *p;               \
        *p = (expr);              \
        return old;               \
    }
#define EMU_ATOMIC_INT(name, expr)                     \
    EMU_ATOMIC(name, int, expr)                        \
    EMU_ATOMIC(name, unsigned int, expr)               \
    EMU_ATOMIC(name, unsigned long long, expr)
EMU_ATOMIC_INT(atomicAdd, old + v)
EMU_ATOMIC(atomicAdd, float, old + v)
EMU_ATOMIC(atomicAdd, double, old + v)
EMU_ATOMIC(atomicSub, int, old - v)
EMU_ATOMIC(atomicSub, unsigned int, old - v)
EMU_ATOMIC_INT(atomicExch, v)
EMU_ATOMIC(atomicExch, float, v)
EMU_ATOMIC_INT(atomicMax, old > v ? old : v)
EMU_ATOMIC(atomicMax, long long, old > v ? old : v)
EMU_ATOMIC_INT(atomicMin, old < v ? old : v)
EMU_ATOMIC(atomicMin, long long, old < v ? old : v)
EMU_ATOMIC_INT(atomicAnd, old & v)
EMU_ATOMIC_INT(atomicOr, old | v)
EMU_ATOMIC_INT(atomicXor, old ^ v)
#define EMU_ATOMIC_CAS(T)                      \
    inline T atomicCAS(T* p, T compare, T v) { \
        T old = *p;                            \
        if (old == compare) *p = v;            \
        return old;                            \
    }
EMU_ATOMIC_CAS(int)
EMU_ATOMIC_CAS(unsigned int)
EMU_ATOMIC_CAS(unsigned long long)

// ---- Device functions the host lacks ----

template <typename T, typename U> T emu_bit_cast(U u) {
    static_assert(sizeof(T) == sizeof(U), "same size");
    T t;
    memcpy(&t, &u, sizeof t);
    return t;
}
inline float __int_as_float(int i) { return emu_bit_cast<float>(i); }
inline float __uint_as_float(unsigned u) { return emu_bit_cast<float>(u); }
inline int __float_as_int(float f) { return emu_bit_cast<int>(f); }
inline unsigned __float_as_uint(float f) { return emu_bit_cast<unsigned>(f); }
inline double __longlong_as_double(long long i) { return emu_bit_cast<double>(i); }
inline long long __double_as_longlong(double d) { return emu_bit_cast<long long>(d); }
inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
inline int __float2int_rz(float x) { return (int)x; }
inline int __float2int_rd(float x) { return (int)floorf(x); }
inline int __float2int_ru(float x) { return (int)ceilf(x); }
inline unsigned __float2uint_rn(float x) { return (unsigned)nearbyintf(x); }
inline float __int2float_rn(int i) { return (float)i; }
inline float __uint2float_rn(unsigned u) { return (float)u; }

// Macros where glibc's <math.h> declares the name itself (as its internal `__expf`, ...).
#define rsqrtf(x) (1.0f / sqrtf(x))
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __log2f(x) log2f(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
#define __tanf(x) tanf(x)
#define __powf(x, y) powf(x, y)
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __fmaf_rn(float x, float y, float z) { return fmaf(x, y, z); }
inline float __saturatef(float x) { return x != x ? 0.0f : x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }

// CUDA's min and max over any two numbers (mixed integers convert as CUDA's overloads do;
// floats ignore a NaN like fminf and fmaxf).
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> min(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) return std::fmin((T)a, (T)b);
    else return (T)a < (T)b ? (T)a : (T)b;
}
template <typename A, typename B, typename = std::enable_if_t<std::is_arithmetic_v<A> && std::is_arithmetic_v<B>>>
inline std::common_type_t<A, B> max(A a, B b) {
    using T = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<T>) return std::fmax((T)a, (T)b);
    else return (T)a > (T)b ? (T)a : (T)b;
}

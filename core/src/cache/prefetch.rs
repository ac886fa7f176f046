//! Prefetch hints: telling the processor that a cache line is about to be read, without waiting
//! for it. A trace replay hints the table slots and entries of the requests a few ahead of the
//! one it serves (see `Cache::prefetch_slot`), and an eviction hints what the next one will
//! read, so that the memory arrives while the processor works. A hint never changes a result:
//! it is a no-op where the target has no prefetch instruction.

/// Starts loading the cache line holding `value` into every cache level.
#[inline(always)]
pub(crate) fn hint<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}

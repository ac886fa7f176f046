//! Prefetch hints: telling the processor that a cache line is about to be read, without waiting
//! for it. A trace replay hints the table slots and entries of the requests a few ahead of the
//! one it serves, so that their memory arrives while it works (see `Cache::prefetch_slot`). A
//! hint never changes a result: it is a no-op where the target has no prefetch instruction.

/// Starts loading the cache line holding `value` into every cache level.
#[inline(always)]
pub(crate) fn hint<T>(value: &T) {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse"))]
    safe_arch::prefetch_t0(value);
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse")))]
    let _ = value;
}

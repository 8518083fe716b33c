//! The live heap, counted: what a build with the `heap-count` feature
//! reports as `coliseum_heap_bytes`, to tell how much of the resident
//! memory is values still held and how much the allocator keeps beside
//! them. The parts' own gauges (read caches, DNA, hot state) are estimates
//! from lengths and capacities; this is all that Rust code allocates,
//! exactly (C libraries that call `malloc` themselves, SQLite and aws-lc,
//! go to the C library's allocator and are not counted).
//!
//! Every allocation and free updates two shared counters and asks the
//! allocator for the block's size, which costs throughput under load (the
//! counters' cache line moves between cores): a build for measuring
//! memory, never the one that ships.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;

/// Bytes the program asked for and has not freed.
static REQUESTED: AtomicI64 = AtomicI64::new(0);
/// The same allocations as the allocator sized them: the request rounded
/// up to its size class.
static IN_SIZE_CLASSES: AtomicI64 = AtomicI64::new(0);

/// mimalloc, counting what it hands out.
pub struct Counting;

#[allow(unsafe_code)]
impl Counting {
    /// The size of `block` in its size class.
    ///
    /// # Safety
    /// `block` is a live block mimalloc allocated.
    unsafe fn usable(block: *mut u8) -> i64 {
        // SAFETY: the caller's contract. A block is at most `isize::MAX`
        // bytes, so the cast keeps its size.
        unsafe { libmimalloc_sys::mi_usable_size(block.cast()) as i64 }
    }

    /// # Safety
    /// `block` is a live block mimalloc allocated for `layout_size` bytes.
    unsafe fn add(layout_size: usize, block: *mut u8) {
        REQUESTED.fetch_add(layout_size as i64, Relaxed);
        // SAFETY: the caller's contract.
        IN_SIZE_CLASSES.fetch_add(unsafe { Self::usable(block) }, Relaxed);
    }
}

// SAFETY: every method forwards to mimalloc's own with the same arguments
// and returns what it returned; the counting only reads the blocks' sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let block = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !block.is_null() {
            // SAFETY: mimalloc has just allocated it.
            unsafe { Self::add(layout.size(), block) };
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let block = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !block.is_null() {
            // SAFETY: mimalloc has just allocated it.
            unsafe { Self::add(layout.size(), block) };
        }
        block
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        REQUESTED.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: the caller's contract: a live block of this allocator's,
        // freed only below; then passed on.
        IN_SIZE_CLASSES.fetch_sub(unsafe { Self::usable(block) }, Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (this and the next): the caller's contract, a live block
        // of this allocator's, passed on; a block `realloc` returns is live.
        let before = unsafe { Self::usable(block) };
        let moved = unsafe { mimalloc::MiMalloc.realloc(block, layout, new_size) };
        if !moved.is_null() {
            REQUESTED.fetch_add(new_size as i64 - layout.size() as i64, Relaxed);
            // SAFETY: `realloc` has just returned it.
            IN_SIZE_CLASSES.fetch_add(unsafe { Self::usable(moved) } - before, Relaxed);
        }
        moved
    }
}

/// Sets `coliseum_heap_bytes` from the counters every second, on a thread
/// of its own, for as long as the process runs.
pub fn report_every_second() {
    std::thread::spawn(|| {
        loop {
            metrics::gauge!("coliseum_heap_bytes", "measure" => "requested").set(REQUESTED.load(Relaxed) as f64);
            metrics::gauge!("coliseum_heap_bytes", "measure" => "in_size_classes")
                .set(IN_SIZE_CLASSES.load(Relaxed) as f64);
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

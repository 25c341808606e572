//! PROTOTYPE, benchmarks only: linear memories pooled by the embedder, for the on-demand
//! allocator that a `StackPool` works with (`Config::with_host_memory`).
//!
//! wasmtime 48 gives `Config::with_host_stack` to the on-demand allocator only, so an engine
//! with a `StackPool` maps, protects and unmaps a 4 GiB reservation for every store's
//! memory, which the pooling allocator does not. This measures whether pooling the memories
//! the same way the stacks are pooled closes that gap: each returned memory keeps its
//! reservation, and is reset as the tuned pooling allocator resets its own: the first
//! [`KEEP_RESIDENT`] bytes by `memset` (they stay mapped), the rest by `madvise`.
//!
//! Not a finished design: one `madvise` per returned memory (the pooling allocator batches
//! them), no bound on the number of slots, no limiter, no shared memories.

use std::sync::{Arc, Mutex};

use wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Bytes reset with `memset` when a memory comes back: the page these guests touch.
pub const KEEP_RESIDENT: usize = 4 << 10;

/// A reservation: `len` bytes from `base`, of which `accessible` are read-write (the rest
/// is `PROT_NONE`, the guard region included).
struct Slot {
    base: usize,
    len: usize,
    accessible: usize,
}

/// The shared pool of [`Slot`]s; give it to `Config::with_host_memory`.
#[derive(Clone, Default)]
pub struct MemoryPool {
    idle: Arc<Mutex<Vec<Slot>>>,
}

fn page_align(bytes: usize) -> usize {
    bytes.next_multiple_of(4096)
}

impl MemoryPool {
    fn slot(&self, len: usize) -> Result<Slot, String> {
        let mut idle = self.idle.lock().unwrap();
        if let Some(i) = idle.iter().rposition(|slot| slot.len == len) {
            return Ok(idle.swap_remove(i));
        }
        drop(idle);
        // SAFETY: a fresh private anonymous reservation, at no fixed address; nothing else
        // refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!("mmap of {len} bytes failed"));
        }
        Ok(Slot {
            base: base as usize,
            len,
            accessible: 0,
        })
    }
}

/// Makes `slot`'s first `size` bytes read-write and the rest inaccessible, changing only the
/// pages in between.
fn set_accessible(slot: &mut Slot, size: usize) -> Result<(), String> {
    let size = page_align(size);
    let (start, end, prot) = match size.cmp(&slot.accessible) {
        std::cmp::Ordering::Equal => return Ok(()),
        std::cmp::Ordering::Greater => (slot.accessible, size, libc::PROT_READ | libc::PROT_WRITE),
        std::cmp::Ordering::Less => (size, slot.accessible, libc::PROT_NONE),
    };
    // SAFETY: `start..end` lies inside the slot's own reservation, which only this slot's
    // owner uses.
    let ret =
        unsafe { libc::mprotect((slot.base + start) as *mut libc::c_void, end - start, prot) };
    if ret != 0 {
        return Err("mprotect failed".to_string());
    }
    slot.accessible = size;
    Ok(())
}

// SAFETY: every memory handed out is a reservation of `reserved + guard` bytes owned by the
// returned `PooledMemory` until wasmtime drops it, zero-filled (fresh, or reset on return),
// with exactly its first `minimum` bytes (page-aligned) accessible and at least `guard`
// inaccessible bytes after the largest size it may grow to.
unsafe impl MemoryCreator for MemoryPool {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let reserved = reserved_size_in_bytes.ok_or("the prototype needs a reservation")?;
        if maximum.is_some_and(|max| max > reserved) || minimum > reserved {
            return Err("the memory does not fit its reservation".to_string());
        }
        let mut slot = self.slot(reserved + guard_size_in_bytes)?;
        set_accessible(&mut slot, minimum)?;
        Ok(Box::new(PooledMemory {
            slot: Some(slot),
            size: minimum,
            capacity: reserved,
            pool: self.clone(),
        }))
    }
}

struct PooledMemory {
    /// Always `Some` until `drop` takes it.
    slot: Option<Slot>,
    size: usize,
    capacity: usize,
    pool: MemoryPool,
}

impl PooledMemory {
    fn slot(&self) -> &Slot {
        self.slot.as_ref().unwrap()
    }
}

// SAFETY: see `MemoryCreator` above; growth stays inside the reservation and never moves
// the base.
unsafe impl LinearMemory for PooledMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime::bail!("memory cannot grow past its reservation");
        }
        set_accessible(self.slot.as_mut().unwrap(), new_size).map_err(wasmtime::Error::msg)?;
        self.size = new_size;
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.slot().base as *mut u8
    }
}

impl Drop for PooledMemory {
    fn drop(&mut self) {
        let slot = self.slot.take().unwrap();
        let keep = slot.accessible.min(KEEP_RESIDENT);
        // SAFETY: the guest is gone (wasmtime drops its memory with the instance); the
        // slot's first `accessible` bytes are writable and nothing else refers to them.
        unsafe {
            std::ptr::write_bytes(slot.base as *mut u8, 0, keep);
            if slot.accessible > keep {
                // On Linux, dropping private anonymous pages makes them read back as zero.
                let ret = libc::madvise(
                    (slot.base + keep) as *mut libc::c_void,
                    slot.accessible - keep,
                    libc::MADV_DONTNEED,
                );
                if ret != 0 {
                    // Not zeroed: unmap it rather than lend it again.
                    libc::munmap(slot.base as *mut libc::c_void, slot.len);
                    return;
                }
            }
        }
        self.pool.idle.lock().unwrap().push(slot);
    }
}

impl Drop for MemoryPool {
    fn drop(&mut self) {
        if Arc::strong_count(&self.idle) == 1 {
            for slot in self.idle.lock().unwrap().drain(..) {
                // SAFETY: an idle slot is owned by the pool alone.
                unsafe { libc::munmap(slot.base as *mut libc::c_void, slot.len) };
            }
        }
    }
}

//! Extism memory: the blocks a plugin allocates through the kernel, kept on the host.
//!
//! Addresses are what the plugin sees: `u64` handles, [`BASE`] and up, 0 being null. A
//! block's handle is the address of its first byte; loads and stores name any address
//! inside an allocated block. Everything else the plugin passes is refused with a
//! [`Violation`], never answered from outside a block.

use std::collections::{BTreeMap, BTreeSet};

use super::error::Violation;

/// The address of the first byte of Extism memory. Not 0 (null), and 8-aligned so that a
/// block's `u64`s are aligned for plugins that care (the kernel never does).
pub(crate) const BASE: u64 = 64;

/// A free block this much larger than a request is split, the rest staying free.
const SPLIT: u64 = 128;

/// Memory kept after a [`reset`](ExtismMemory::reset): a call's usual input and output.
const KEEP_AFTER_RESET: usize = 64 << 10;

/// What the host's bookkeeping of one block costs, charged against the bound with the
/// block's bytes: its entries in `blocks` and, while it is free, in `free` (67 and 85 bytes
/// a block, measured), so that a plugin allocating one-byte blocks cannot make the host
/// hold many times its memory bound in entries.
pub(crate) const BLOCK_COST: u64 = 96;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    /// Bytes the block spans.
    size: u64,
    /// Bytes in use, what `length` answers: the size asked of `alloc`.
    used: u64,
    active: bool,
}

/// One instance's Extism memory, with the kernel's input, output and error registers.
#[derive(Debug)]
pub(crate) struct ExtismMemory {
    /// The bytes at `BASE ..`, blocks back to back.
    bytes: Vec<u8>,
    /// Every block, active or free, by handle.
    blocks: BTreeMap<u64, Block>,
    /// Free blocks by (size, handle), for a best fit in O(log n).
    free: BTreeSet<(u64, u64)>,
    /// The most recent block a load or store found, `[start, end)` of its used bytes: a
    /// plugin copies a block 8 bytes at a time, so the next access is almost always here.
    last: (u64, u64),
    /// The most bytes `bytes` may hold.
    max_bytes: u64,
    input: (u64, u64),
    output: (u64, u64),
    error: u64,
}

impl ExtismMemory {
    /// Empty Extism memory that may grow to `max_bytes`.
    pub(crate) fn new(max_bytes: u64) -> ExtismMemory {
        ExtismMemory {
            bytes: Vec::new(),
            blocks: BTreeMap::new(),
            free: BTreeSet::new(),
            last: (0, 0),
            max_bytes,
            input: (0, 0),
            output: (0, 0),
            error: 0,
        }
    }

    /// Bytes in use, free blocks included: what `memory_bytes` answers.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// What the bound is charged with: the bytes, and [`BLOCK_COST`] for each block.
    pub(crate) fn charged(&self) -> u64 {
        self.len() + self.blocks.len() as u64 * BLOCK_COST
    }

    /// Changes the bound (the linear memory shares one budget with this).
    pub(crate) fn set_max_bytes(&mut self, max_bytes: u64) {
        self.max_bytes = max_bytes;
    }

    /// The current bound.
    #[cfg(test)]
    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Forgets every block and register: the kernel's `reset`, and what each call starts
    /// with. A large arena gives its memory back.
    pub(crate) fn reset(&mut self) {
        self.bytes.clear();
        if self.bytes.capacity() > KEEP_AFTER_RESET {
            self.bytes.shrink_to(KEEP_AFTER_RESET);
        }
        self.blocks.clear();
        self.free.clear();
        self.last = (0, 0);
        self.input = (0, 0);
        self.output = (0, 0);
        self.error = 0;
    }

    /// `alloc(n)`: a block of `n` bytes (0 for `n == 0`, as Extism answers).
    ///
    /// A freed block that fits is reused first; its bytes are whatever they were. It is
    /// split when the rest is large and the bound has room for one more block.
    pub(crate) fn alloc(&mut self, n: u64) -> Result<u64, AllocError> {
        if n == 0 {
            return Ok(0);
        }
        if let Some(&(size, start)) = self.free.range((n, 0)..).next() {
            self.free.remove(&(size, start));
            if size - n >= SPLIT && self.charged() + BLOCK_COST <= self.max_bytes {
                let rest = start + n;
                self.blocks.insert(
                    rest,
                    Block {
                        size: size - n,
                        used: 0,
                        active: false,
                    },
                );
                self.free.insert((size - n, rest));
                self.blocks.insert(
                    start,
                    Block {
                        size: n,
                        used: n,
                        active: true,
                    },
                );
            } else {
                self.blocks.insert(
                    start,
                    Block {
                        size,
                        used: n,
                        active: true,
                    },
                );
            }
            return Ok(start);
        }
        let len = self.len();
        // The new block's bookkeeping counts as in use.
        let in_use = self.charged() + BLOCK_COST;
        let refused = AllocError {
            requested: n,
            in_use,
            max: self.max_bytes,
        };
        if n > self.max_bytes.saturating_sub(in_use) {
            return Err(refused);
        }
        // Within the bound, the host may still be unable to get the memory: an error for
        // the call, where `resize` would abort the process.
        let Ok(n_usize) = usize::try_from(n) else {
            return Err(refused);
        };
        if self.bytes.try_reserve(n_usize).is_err() {
            return Err(refused);
        }
        let start = BASE + len;
        self.bytes.resize((len + n) as usize, 0);
        self.blocks.insert(
            start,
            Block {
                size: n,
                used: n,
                active: true,
            },
        );
        Ok(start)
    }

    /// A block of `data`'s bytes: what the host hands the plugin (input, config, vars,
    /// host function results). Empty data is the null handle, as Extism's host gives it.
    pub(crate) fn alloc_bytes(&mut self, data: &[u8]) -> Result<u64, AllocError> {
        let handle = self.alloc(data.len() as u64)?;
        if handle != 0 {
            let at = (handle - BASE) as usize;
            self.bytes[at..at + data.len()].copy_from_slice(data);
        }
        Ok(handle)
    }

    /// `free(handle)`. A handle that is not an active block is ignored, as Extism's
    /// kernel ignores it: PDKs free handles the host has already freed.
    pub(crate) fn free(&mut self, handle: u64) {
        let Some(block) = self.blocks.get_mut(&handle) else {
            return;
        };
        if !block.active {
            return;
        }
        block.active = false;
        block.used = 0;
        let size = block.size;
        if self.last.0 == handle {
            self.last = (0, 0);
        }
        if self.input.0 == handle {
            // As Extism's kernel does: the input is gone with its block.
            self.input.1 = 0;
        }
        if handle + size == BASE + self.len() {
            // The last block: give its bytes back, and those of the free blocks before it.
            self.blocks.remove(&handle);
            let mut end = handle;
            while let Some((&start, &b)) = self.blocks.last_key_value() {
                if b.active {
                    break;
                }
                self.blocks.remove(&start);
                self.free.remove(&(b.size, start));
                end = start;
            }
            self.bytes.truncate((end - BASE) as usize);
        } else {
            self.free.insert((size, handle));
        }
    }

    /// `length(handle)`: the bytes of an active block, 0 for anything else (Extism's
    /// answer, which PDKs test for).
    pub(crate) fn length(&self, handle: u64) -> u64 {
        match self.blocks.get(&handle) {
            Some(block) if block.active => block.used,
            _ => 0,
        }
    }

    /// The `[start, end)` of the active block holding `addr .. addr + len`.
    fn block_holding(&mut self, addr: u64, len: u64) -> Option<(u64, u64)> {
        let end = addr.checked_add(len)?;
        if addr >= self.last.0 && end <= self.last.1 {
            return Some(self.last);
        }
        let (&start, block) = self.blocks.range(..=addr).next_back()?;
        if !block.active || end > start + block.used {
            return None;
        }
        self.last = (start, start + block.used);
        Some(self.last)
    }

    /// The index in `bytes` of `len` bytes at `addr`, all inside one active block.
    fn index(&mut self, addr: u64, len: u64) -> Result<usize, Violation> {
        match self.block_holding(addr, len) {
            Some(_) => Ok((addr - BASE) as usize),
            None => Err(Violation::OutsideBlock { addr, len }),
        }
    }

    pub(crate) fn load_u8(&mut self, addr: u64) -> Result<u8, Violation> {
        let at = self.index(addr, 1)?;
        Ok(self.bytes[at])
    }

    pub(crate) fn load_u64(&mut self, addr: u64) -> Result<u64, Violation> {
        let at = self.index(addr, 8)?;
        Ok(self.u64_at(at))
    }

    /// The little-endian `u64` at index `at` of `bytes`, which a check has found in a block.
    fn u64_at(&self, at: usize) -> u64 {
        let mut word = [0; 8];
        word.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(word)
    }

    pub(crate) fn store_u8(&mut self, addr: u64, value: u8) -> Result<(), Violation> {
        let at = self.index(addr, 1)?;
        self.bytes[at] = value;
        Ok(())
    }

    pub(crate) fn store_u64(&mut self, addr: u64, value: u64) -> Result<(), Violation> {
        let at = self.index(addr, 8)?;
        self.bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        Ok(())
    }

    /// The bytes of the active block `handle`; the null handle is empty data.
    pub(crate) fn block(&self, handle: u64) -> Result<&[u8], Violation> {
        if handle == 0 {
            return Ok(&[]);
        }
        match self.blocks.get(&handle) {
            Some(block) if block.active => {
                let at = (handle - BASE) as usize;
                Ok(&self.bytes[at..at + block.used as usize])
            }
            _ => Err(Violation::NotABlock { handle }),
        }
    }

    /// `len` bytes at `addr`, inside one active block (or none at all).
    pub(crate) fn range(&mut self, addr: u64, len: u64) -> Result<&[u8], Violation> {
        if len == 0 {
            return Ok(&[]);
        }
        match self.block_holding(addr, len) {
            Some(_) => {
                let at = (addr - BASE) as usize;
                Ok(&self.bytes[at..at + len as usize])
            }
            None => Err(Violation::RangeNotInBlock { addr, len }),
        }
    }

    pub(crate) fn input_set(&mut self, addr: u64, len: u64) -> Result<(), Violation> {
        self.range(addr, len)?;
        self.input = (addr, len);
        Ok(())
    }

    pub(crate) fn input(&self) -> (u64, u64) {
        self.input
    }

    /// `input_load_*`: `len` bytes at `offset` into the input.
    fn input_index(&mut self, offset: u64, len: u64) -> Result<usize, Violation> {
        let (addr, input_len) = self.input;
        let in_input = offset.checked_add(len).is_some_and(|end| end <= input_len);
        if !in_input {
            return Err(Violation::OutsideInput {
                offset,
                len,
                input_len,
            });
        }
        // The input's block may have been freed and reused since `input_set`.
        self.index(addr + offset, len)
    }

    pub(crate) fn input_load_u8(&mut self, offset: u64) -> Result<u8, Violation> {
        let at = self.input_index(offset, 1)?;
        Ok(self.bytes[at])
    }

    pub(crate) fn input_load_u64(&mut self, offset: u64) -> Result<u64, Violation> {
        let at = self.input_index(offset, 8)?;
        Ok(self.u64_at(at))
    }

    /// `output_set(addr, len)`: the range must lie in one active block (or be empty).
    pub(crate) fn output_set(&mut self, addr: u64, len: u64) -> Result<(), Violation> {
        self.range(addr, len)?;
        self.output = if len == 0 { (0, 0) } else { (addr, len) };
        Ok(())
    }

    pub(crate) fn output(&self) -> (u64, u64) {
        self.output
    }

    /// `error_set(handle)`: 0 clears the error, anything else must be an active block.
    pub(crate) fn error_set(&mut self, handle: u64) -> Result<(), Violation> {
        self.block(handle)?;
        self.error = handle;
        Ok(())
    }

    pub(crate) fn error(&self) -> u64 {
        self.error
    }
}

/// Extism memory is full: `requested` more bytes would pass `max` (or, within it, the host
/// could not allocate them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AllocError {
    pub requested: u64,
    /// What the bound is charged with, the new block's [`BLOCK_COST`] included.
    pub in_use: u64,
    pub max: u64,
}

#[cfg(test)]
mod tests;

//! [`CallData`]: one host call's reads and write of guest data, sharing one lookup of the
//! guest's memory.

use wasmtime::{Caller, Extern, Memory};

use super::{DataError, DataErrorKind, FromGuest, GuestAbi, IntoGuest};

/// The data side of one host call: reads its data parameters and writes its data result,
/// looking the guest's memory export up once for all of them. From
/// [`GuestAbi::call_data`], whose example shows it in use.
///
/// One per call: it keeps the memory of the instance that made the call, and a `CallData`
/// kept for another call (of another instance in the same store, say) would use that
/// instance's memory. `write` consumes it.
#[derive(Debug)]
pub struct CallData {
    abi: GuestAbi,
    /// The guest's memory, once a read or the write has looked it up. A `Memory` stays
    /// valid when the memory grows: its data is fetched afresh at each use.
    memory: Option<Memory>,
}

impl CallData {
    pub(super) fn new(abi: GuestAbi) -> CallData {
        CallData { abi, memory: None }
    }

    /// As [`GuestAbi::read`].
    ///
    /// # Errors
    ///
    /// As [`GuestAbi::read`].
    ///
    /// # Example
    ///
    /// See [`GuestAbi::call_data`].
    pub fn read<T: FromGuest, D>(
        &mut self,
        caller: &mut Caller<'_, D>,
        param: &'static str,
        ptr: i32,
        len: i32,
    ) -> Result<T, DataError> {
        let function = self.abi.function();
        let fail = |kind| DataError::param(function, param, kind);
        let bytes = self
            .copy_from_guest(caller, ptr as u32, len as u32)
            .map_err(fail)?;
        T::from_guest(bytes).map_err(fail)
    }

    /// As [`GuestAbi::write`].
    ///
    /// # Errors
    ///
    /// As [`GuestAbi::write`].
    ///
    /// # Example
    ///
    /// See [`GuestAbi::call_data`].
    pub async fn write<T: IntoGuest, D: Send>(
        mut self,
        caller: &mut Caller<'_, D>,
        value: T,
    ) -> wasmtime::Result<i64> {
        let abi = self.abi;
        let fail = |kind| DataError::result(abi.function(), kind);
        let bytes = value.into_guest().map_err(fail)?;
        if bytes.is_empty() {
            return Ok(0);
        }
        let len = u32::try_from(bytes.len())
            .map_err(|_| fail(DataErrorKind::ResultTooLarge { len: bytes.len() }))?;
        let realloc = caller
            .get_export(abi.realloc())
            .and_then(Extern::into_func)
            .ok_or_else(|| {
                fail(DataErrorKind::MissingAllocator {
                    name: abi.realloc(),
                })
            })?;
        let realloc = realloc
            .typed::<(i32, i32, i32, i32), i32>(&*caller)
            .map_err(|_| {
                fail(DataErrorKind::AllocatorType {
                    name: abi.realloc(),
                    found: realloc.ty(&*caller).to_string(),
                })
            })?;
        let ptr = realloc
            .call_async(&mut *caller, (0, 0, 1, len as i32))
            .await
            .map_err(|err| {
                err.context(fail(DataErrorKind::AllocatorFailed {
                    name: abi.realloc(),
                }))
            })? as u32;
        if ptr == 0 {
            return Err(fail(DataErrorKind::OutOfGuestMemory { len }).into());
        }
        let memory = self.memory(caller).map_err(fail)?;
        // Measured after the allocator ran: it may have grown the memory.
        let size = memory.data_size(&*caller) as u64;
        let start = u64::from(ptr);
        if start + u64::from(len) > size {
            return Err(fail(DataErrorKind::AllocatorOutOfBounds {
                ptr,
                len,
                memory_size: size,
            })
            .into());
        }
        memory.data_mut(&mut *caller)[start as usize..][..bytes.len()].copy_from_slice(&bytes);
        Ok((u64::from(len) << 32 | start) as i64)
    }

    /// The guest's memory export, looked up on first use.
    fn memory<D>(&mut self, caller: &mut Caller<'_, D>) -> Result<Memory, DataErrorKind> {
        if let Some(memory) = self.memory {
            return Ok(memory);
        }
        let name = self.abi.memory();
        let memory = caller
            .get_export(name)
            .and_then(Extern::into_memory)
            .ok_or(DataErrorKind::MissingMemory { name })?;
        self.memory = Some(memory);
        Ok(memory)
    }

    fn copy_from_guest<D>(
        &mut self,
        caller: &mut Caller<'_, D>,
        ptr: u32,
        len: u32,
    ) -> Result<Vec<u8>, DataErrorKind> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let memory = self.memory(caller)?;
        let data = memory.data(&*caller);
        // In u64, so that `ptr + len` cannot wrap past 4 GiB.
        let (start, end) = (u64::from(ptr), u64::from(ptr) + u64::from(len));
        if end > data.len() as u64 {
            return Err(DataErrorKind::OutOfBounds {
                ptr,
                len,
                memory_size: data.len() as u64,
            });
        }
        Ok(data[start as usize..end as usize].to_vec())
    }
}

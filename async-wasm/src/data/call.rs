//! [`CallData`]: one host call's reads and write of guest data, sharing one lookup of the
//! guest's memory and one budget of bytes.

use wasmtime::{Caller, Extern, Memory, WasmBacktrace};

use super::{DataError, DataErrorKind, FromGuest, GuestAbi, GuestError, IntoGuest, limit, reentry};

/// The export a guest receives [`GuestError`]s through.
pub(super) const ERROR_RECEIVER: &str = "async_wasm_set_error";

/// The data side of one host call: reads its data parameters and writes its data result,
/// looking the guest's memory export up once for all of them, and holding the call to its
/// cap on bytes. From [`GuestAbi::call_data`], whose example shows it in use.
///
/// One per call: it keeps the memory of the instance that made the call and the bytes read
/// so far, and a `CallData` kept for another call (of another instance in the same store,
/// say) would use that instance's memory. `write` consumes it.
///
/// Make it in the host function's synchronous part (before its future), as the examples
/// do: there it finds the cap of the engine the function was defined on
/// ([`AsyncEngineBuilder::max_data_len`](crate::AsyncEngineBuilder::max_data_len)) without
/// a lookup.
#[derive(Debug)]
pub struct CallData {
    abi: GuestAbi,
    /// The guest's memory, once a read or the write has looked it up. A `Memory` stays
    /// valid when the memory grows: its data is fetched afresh at each use.
    memory: Option<Memory>,
    /// The cap, once known: the function's own, or its engine's.
    max_len: Option<u32>,
    /// The bytes of the data parameters read so far.
    read: u64,
}

impl CallData {
    pub(super) fn new(abi: GuestAbi) -> CallData {
        CallData {
            abi,
            memory: None,
            max_len: abi.max_len().or_else(limit::current),
            read: 0,
        }
    }

    /// The cap on the bytes this call reads, all parameters together, and on its result:
    /// the [`GuestAbi`]'s own, else its engine's, else [`GuestAbi::DEFAULT_MAX_LEN`].
    ///
    /// # Example
    ///
    /// See [`GuestAbi::with_max_len`].
    pub fn max_len<D>(&mut self, caller: &Caller<'_, D>) -> u32 {
        *self
            .max_len
            .get_or_insert_with(|| limit::engine_max_len(caller.engine()))
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
        let function = self.abi.function();
        let fail = |kind| DataError::result(function, kind);
        not_reentrant(caller).map_err(|kind| traced(caller, None, fail(kind)))?;
        let bytes = value
            .into_guest()
            .map_err(|kind| traced(caller, None, fail(kind)))?;
        let max_len = self.max_len(caller);
        if bytes.len() as u64 > u64::from(max_len) {
            let len = bytes.len() as u64;
            let too_large = fail(DataErrorKind::TooLarge { len, max_len });
            return Err(traced(caller, None, too_large));
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let ptr = self.place(caller, &bytes).await?;
        Ok(((bytes.len() as u64) << 32 | u64::from(ptr)) as i64)
    }

    /// Hands `error` to the guest as a value (see [`GuestError`]): its message placed with
    /// the guest's allocator (cut to the cap, at a character boundary), then the guest's
    /// `async_wasm_set_error(code, msg_ptr, msg_len)` called. The host function then
    /// returns its result type's zero value to the guest.
    ///
    /// # Errors
    ///
    /// A [`DataError`]:
    /// [`MissingErrorReceiver`](DataErrorKind::MissingErrorReceiver) (with `error` as its
    /// cause) when the guest does not export `async_wasm_set_error` with that type,
    /// [`ErrorReceiverFailed`](DataErrorKind::ErrorReceiverFailed) when it traps, and the
    /// errors of [`write`](CallData::write) for placing the message.
    ///
    /// # Example
    ///
    /// ```
    /// use async_wasm::data::{GuestAbi, GuestError};
    /// use async_wasm::prelude::*;
    /// use wasmtime::{Caller, Engine, Linker};
    ///
    /// const ABI: GuestAbi = GuestAbi::new("kv_get");
    ///
    /// let mut linker = Linker::<()>::new(&Engine::default());
    /// linker.func_wrap_async2("kv", "get", |mut caller: Caller<'_, ()>, ptr: i32, len: i32| {
    ///     let mut data = ABI.call_data();
    ///     let key = data.read::<String, _>(&mut caller, "key", ptr, len);
    ///     Box::new(async move {
    ///         let key = key?;
    ///         if key != "greeting" {
    ///             data.write_error(&mut caller, GuestError::new(404, "no such key")).await?;
    ///             return Ok(0); // the zero value: an empty result
    ///         }
    ///         data.write(&mut caller, "hello".to_string()).await
    ///     })
    /// })?;
    /// # wasmtime::Result::<()>::Ok(())
    /// ```
    pub async fn write_error<D: Send>(
        mut self,
        caller: &mut Caller<'_, D>,
        error: GuestError,
    ) -> wasmtime::Result<()> {
        let function = self.abi.function();
        let fail = |kind| DataError::result(function, kind);
        not_reentrant(caller).map_err(|kind| traced(caller, None, fail(kind)))?;
        let receiver = caller
            .get_export(ERROR_RECEIVER)
            .and_then(Extern::into_func)
            .and_then(|f| f.typed::<(i32, i32, i32), ()>(&*caller).ok());
        let Some(receiver) = receiver else {
            let missing = fail(DataErrorKind::MissingErrorReceiver {
                name: ERROR_RECEIVER,
            });
            return Err(traced(caller, Some(error.into()), missing));
        };
        let max_len = self.max_len(caller) as usize;
        let mut message = error.message();
        if message.len() > max_len {
            let mut end = max_len;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message = &message[..end];
        }
        let ptr = if message.is_empty() {
            0
        } else {
            self.place(caller, message.as_bytes()).await?
        };
        let _inside = reentry::Guard::enter(reentry::store_of(caller), ERROR_RECEIVER);
        receiver
            .call_async(
                &mut *caller,
                (error.code(), ptr as i32, message.len() as i32),
            )
            .await
            .map_err(|err| {
                if is_reentrant(&err) {
                    return err;
                }
                err.context(fail(DataErrorKind::ErrorReceiverFailed {
                    name: ERROR_RECEIVER,
                }))
            })
    }

    /// Allocates `bytes.len()` (non-zero, at most the cap) bytes with the guest's allocator
    /// and copies `bytes` there; returns the guest's pointer.
    async fn place<D: Send>(
        &mut self,
        caller: &mut Caller<'_, D>,
        bytes: &[u8],
    ) -> wasmtime::Result<u32> {
        let abi = self.abi;
        let fail = |kind| DataError::result(abi.function(), kind);
        // The cap is below 4 GiB.
        let len = bytes.len() as u32;
        let Some(realloc) = caller.get_export(abi.realloc()).and_then(Extern::into_func) else {
            let missing = fail(DataErrorKind::MissingAllocator {
                name: abi.realloc(),
            });
            return Err(traced(caller, None, missing));
        };
        let Ok(realloc) = realloc.typed::<(i32, i32, i32, i32), i32>(&*caller) else {
            // A 64-bit memory's allocator takes i64s: say which is wrong.
            let kind = match self.memory(caller) {
                Err(kind @ DataErrorKind::Memory64 { .. }) => kind,
                _ => DataErrorKind::AllocatorType {
                    name: abi.realloc(),
                    found: realloc.ty(&*caller).to_string(),
                },
            };
            return Err(traced(caller, None, fail(kind)));
        };
        let ptr = {
            // Held while the guest's allocator runs, and dropped with this future when the
            // call is cancelled there: a data host function called from inside fails.
            let _inside = reentry::Guard::enter(reentry::store_of(caller), abi.realloc());
            realloc
                .call_async(&mut *caller, (0, 0, 1, len as i32))
                .await
                .map_err(|err| {
                    if is_reentrant(&err) {
                        return err;
                    }
                    err.context(fail(DataErrorKind::AllocatorFailed {
                        name: abi.realloc(),
                    }))
                })? as u32
        };
        if ptr == 0 {
            let none = fail(DataErrorKind::OutOfGuestMemory { len });
            return Err(traced(caller, None, none));
        }
        let memory = self
            .memory(caller)
            .map_err(|kind| traced(caller, None, fail(kind)))?;
        // Measured after the allocator ran: it may have grown the memory.
        let size = memory.data_size(&*caller) as u64;
        let start = u64::from(ptr);
        if start + u64::from(len) > size {
            let outside = fail(DataErrorKind::AllocatorOutOfBounds {
                ptr,
                len,
                memory_size: size,
            });
            return Err(traced(caller, None, outside));
        }
        memory.data_mut(&mut *caller)[start as usize..][..bytes.len()].copy_from_slice(bytes);
        Ok(ptr)
    }

    /// The guest's memory export, looked up on first use.
    fn memory<D>(&mut self, caller: &mut Caller<'_, D>) -> Result<Memory, DataErrorKind> {
        if let Some(memory) = self.memory {
            return Ok(memory);
        }
        let name = self.abi.memory();
        let memory = match caller.get_export(name) {
            Some(Extern::Memory(memory)) => memory,
            Some(Extern::SharedMemory(_)) => return Err(DataErrorKind::SharedMemory { name }),
            _ => return Err(DataErrorKind::MissingMemory { name }),
        };
        if memory.ty(&*caller).is_64() {
            return Err(DataErrorKind::Memory64 { name });
        }
        self.memory = Some(memory);
        Ok(memory)
    }

    fn copy_from_guest<D>(
        &mut self,
        caller: &mut Caller<'_, D>,
        ptr: u32,
        len: u32,
    ) -> Result<Vec<u8>, DataErrorKind> {
        not_reentrant(caller)?;
        // A zero-length range's pointer is not looked at: C passes NULL, Rust a dangling
        // pointer, for an empty slice.
        if len == 0 {
            return Ok(Vec::new());
        }
        // Before anything is copied: the bytes of every parameter so far, this one's too.
        let read = self.read + u64::from(len);
        let max_len = self.max_len(caller);
        if read > u64::from(max_len) {
            return Err(DataErrorKind::TooLarge { len: read, max_len });
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
        self.read = read;
        Ok(data[start as usize..end as usize].to_vec())
    }
}

/// `error` as a call's error whose first line is ours: wasmtime adds the guest's backtrace
/// as the outermost context of a host function's error that has none, so that `{}` would
/// print only "error while executing at wasm backtrace"; with the backtrace under `error`
/// (and over `cause`), `{}` says what happened, `{:#}` and `{:?}` still show where.
pub(crate) fn traced<D>(
    caller: &Caller<'_, D>,
    cause: Option<wasmtime::Error>,
    error: DataError,
) -> wasmtime::Error {
    let trace = WasmBacktrace::capture(caller);
    match (cause, trace.frames().is_empty()) {
        (None, true) => error.into(),
        (None, false) => wasmtime::Error::new(FromTheGuest)
            .context(trace)
            .context(error),
        (Some(cause), true) => cause.context(error),
        (Some(cause), false) => cause.context(trace).context(error),
    }
}

/// What a data error without a cause of its own rests on, under the guest's backtrace (a
/// backtrace is a context, not an error).
#[derive(Debug)]
struct FromTheGuest;

impl core::fmt::Display for FromTheGuest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("in a call from the guest")
    }
}

impl std::error::Error for FromTheGuest {}

/// Whether the guest's export failed because it called a data host function: that error is
/// the one to report, as it is (under `AllocatorFailed` it could only be found by its text).
fn is_reentrant(err: &wasmtime::Error) -> bool {
    err.downcast_ref::<DataError>()
        .is_some_and(|data| matches!(data.kind(), DataErrorKind::Reentrant { .. }))
}

/// Fails when the caller's store is inside one of the guest's ABI exports, called by us.
fn not_reentrant<D>(caller: &Caller<'_, D>) -> Result<(), DataErrorKind> {
    match reentry::inside(reentry::store_of(caller)) {
        Some(inside) => Err(DataErrorKind::Reentrant { inside }),
        None => Ok(()),
    }
}

//! [`Json<T>`]: structured values across the data ABI, as JSON text (feature `json`).

use core::ops::{Deref, DerefMut};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DataErrorKind, FromGuest, IntoGuest};

/// A value that crosses the guest boundary as UTF-8 JSON text: as a parameter, the guest's
/// bytes deserialized into `T`; as a result, `T` serialized for the guest. Needs the `json`
/// feature (serde and serde_json).
///
/// # Example
///
/// ```
/// use async_wasm::data::Json;
/// use async_wasm::prelude::*;
/// use wasmtime::Caller;
///
/// #[derive(serde::Deserialize)]
/// struct Order { item: String, quantity: u32 }
///
/// #[derive(serde::Serialize)]
/// struct Quote { total_cents: u64 }
///
/// #[async_host]
/// async fn quote(_caller: Caller<'_, ()>, order: Json<Order>) -> wasmtime::Result<Json<Quote>> {
///     let price = if order.item == "tea" { 250 } else { 400 }; // a price service, say
///     Ok(Json(Quote { total_cents: price * u64::from(order.quantity) }))
/// }
/// # let mut linker = wasmtime::Linker::<()>::new(&wasmtime::Engine::default());
/// linker.func_wrap_host("shop", "quote", quote)?;
/// # wasmtime::Result::<()>::Ok(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The value.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(async_wasm::data::Json(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: DeserializeOwned> FromGuest for Json<T> {
    fn from_guest(bytes: Vec<u8>) -> Result<Self, DataErrorKind> {
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|err| DataErrorKind::Json {
                message: err.to_string(),
            })
    }
}

impl<T: Serialize> IntoGuest for Json<T> {
    fn into_guest(self) -> Result<Vec<u8>, DataErrorKind> {
        serde_json::to_vec(&self.0).map_err(|err| DataErrorKind::Json {
            message: err.to_string(),
        })
    }
}

//! How values travel as Extism plugins encode them: the call's input and output, and host
//! function parameters and results.

use std::borrow::Cow;

use super::error::DataProblem;
use crate::data::Json;

/// A value that can be handed to a plugin as bytes: a call's input, or a host function's
/// result. Encoded as Extism's PDKs decode them: text and bytes as they are, [`Json<T>`]
/// as JSON text, numbers as their little-endian bytes (the Rust PDK's `i64` is 8 bytes),
/// `bool` as one byte, `()` as nothing. Sealed.
///
/// # Example
///
/// ```
/// use async_wasm::extism::ToExtism;
///
/// fn input<I: ToExtism>(_: I) {}
/// input("text");
/// input(vec![1u8, 2, 3]);
/// input(&b"bytes"[..]);
/// input(42i64);
/// ```
pub trait ToExtism: sealed::Sealed {
    #[doc(hidden)]
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem>;

    /// Whether a host function returning this gives the plugin a handle (`()` gives none:
    /// the import has no result).
    #[doc(hidden)]
    const HAS_VALUE: bool = true;
}

/// A value that can be taken from a plugin's bytes: a call's output, or a host function's
/// parameter. Decoded as Extism's PDKs encode them (see [`ToExtism`]): a `String` must be
/// UTF-8, a [`Json<T>`] must be `T`'s JSON, a number must have exactly its size. Sealed.
///
/// # Example
///
/// ```
/// use async_wasm::extism::FromExtism;
///
/// fn output<O: FromExtism>() {}
/// output::<String>();
/// output::<Vec<u8>>();
/// output::<i64>();
/// ```
pub trait FromExtism: Sized + sealed::Sealed {
    #[doc(hidden)]
    fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem>;
}

impl<T: ToExtism + ?Sized> ToExtism for &T {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        (**self).to_extism()
    }
    const HAS_VALUE: bool = T::HAS_VALUE;
}

impl ToExtism for str {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }
}

impl ToExtism for String {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Borrowed(self.as_bytes()))
    }
}

impl ToExtism for [u8] {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Borrowed(self))
    }
}

impl ToExtism for Vec<u8> {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Borrowed(self))
    }
}

impl<T: serde::Serialize> ToExtism for Json<T> {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        serde_json::to_vec(&self.0)
            .map(Cow::Owned)
            .map_err(|err| DataProblem::Json {
                message: err.to_string(),
            })
    }
}

impl ToExtism for () {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Borrowed(&[]))
    }
    const HAS_VALUE: bool = false;
}

impl ToExtism for bool {
    fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
        Ok(Cow::Owned(vec![u8::from(*self)]))
    }
}

impl FromExtism for String {
    fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem> {
        String::from_utf8(bytes).map_err(|err| DataProblem::Utf8 {
            valid_up_to: err.utf8_error().valid_up_to(),
        })
    }
}

impl FromExtism for Vec<u8> {
    fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem> {
        Ok(bytes)
    }
}

impl<T: serde::de::DeserializeOwned> FromExtism for Json<T> {
    fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem> {
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|err| DataProblem::Json {
                message: err.to_string(),
            })
    }
}

impl FromExtism for () {
    fn from_extism(_: Vec<u8>) -> Result<Self, DataProblem> {
        Ok(())
    }
}

impl FromExtism for bool {
    fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem> {
        match bytes.first() {
            Some(byte) => Ok(*byte != 0),
            None => Err(DataProblem::Length {
                expected: 1,
                found: 0,
            }),
        }
    }
}

macro_rules! numbers {
    ($($ty:ty),*) => {$(
        impl ToExtism for $ty {
            fn to_extism(&self) -> Result<Cow<'_, [u8]>, DataProblem> {
                Ok(Cow::Owned(self.to_le_bytes().to_vec()))
            }
        }

        impl FromExtism for $ty {
            fn from_extism(bytes: Vec<u8>) -> Result<Self, DataProblem> {
                let found = bytes.len();
                <[u8; size_of::<$ty>()]>::try_from(bytes)
                    .map(<$ty>::from_le_bytes)
                    .map_err(|_| DataProblem::Length { expected: size_of::<$ty>(), found })
            }
        }

        impl sealed::Sealed for $ty {}
    )*};
}

numbers!(i64, u64, i32, u32, f64, f32);

mod sealed {
    pub trait Sealed {}

    impl<T: Sealed + ?Sized> Sealed for &T {}
    impl Sealed for str {}
    impl Sealed for String {}
    impl Sealed for [u8] {}
    impl Sealed for Vec<u8> {}
    impl<T> Sealed for crate::data::Json<T> {}
    impl Sealed for () {}
    impl Sealed for bool {}
}

use std::future::Future;
use std::pin::Pin;

struct MyFn;

impl async_wasm::IntoAsyncFunc<(), i32> for MyFn {
    fn into_func<T: Send + 'static>(
        self,
        _store: wasmtime::StoreContextMut<'_, T>,
    ) -> wasmtime::Func {
        unimplemented!()
    }
}

impl async_wasm::IntoHostFunc<(), ()> for MyFn {
    fn into_func(self, _store: wasmtime::StoreContextMut<'_, ()>) -> wasmtime::Func {
        unimplemented!()
    }

    fn define(
        self,
        _linker: &mut wasmtime::Linker<()>,
        _module: &str,
        _name: &str,
    ) -> wasmtime::Result<()> {
        unimplemented!()
    }
}

#[allow(dead_code)]
type Unused = Pin<Box<dyn Future<Output = ()>>>;

fn main() {}

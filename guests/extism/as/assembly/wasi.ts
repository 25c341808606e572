// The WASI build: every export of index.ts, plus output through WASI's stdout and stderr
// (`@assemblyscript/wasi-shim`).

export * from "./index";

import { Host } from "@extism/as-pdk";

export function wasi_print(): i32 {
  console.log("hello from wasi_print on stdout");
  console.error("hello from wasi_print on stderr");
  Host.output(Uint8Array.wrap(String.UTF8.encode("printed")));
  return 0;
}

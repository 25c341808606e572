// An Extism plugin written with Extism's AssemblyScript PDK (`@extism/as-pdk`), unmodified: the
// exports a host must serve to run real plugins, the same as the Rust PDK plugin's (see
// guests/extism/README.md). `wasi.ts` adds `wasi_print` for the WASI build.

import { Config, Host, LogLevel, Memory, Var } from "@extism/as-pdk";
import {
  alloc,
  error_set,
  http_request,
  length,
  load_u64,
  output_set,
  store_u64,
  var_set,
} from "@extism/as-pdk/lib/env";
import * as host from "./host";

/** Replaces AssemblyScript's `env.abort`, which an Extism host does not provide. */
function abort_plugin(
  message: string | null,
  fileName: string | null,
  line: u32,
  column: u32,
): void {
  const text = (message === null ? "abort" : message) + " at " +
    (fileName === null ? "?" : fileName) + ":" + line.toString() + ":" + column.toString();
  error_set(Memory.allocateString(text).offset);
  unreachable();
}

// `Host.outputString` (PDK 1.0.0) gives the output the string's length in UTF-16 units, not
// its UTF-8 length: every output goes through the UTF-8 bytes instead.
function outputText(text: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(text)));
}

function failWith(message: string, code: i32): i32 {
  error_set(Memory.allocateString(message).offset);
  return code;
}

function readBlock(handle: u64): string {
  return new Memory(handle, length(handle)).toString();
}

function jsonString(text: string): string {
  let out = '"';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

/** Where the value of `"key":` starts in a flat JSON object, or -1 (AssemblyScript has no JSON). */
function valueStart(json: string, key: string): i32 {
  let at = json.indexOf('"' + key + '"');
  if (at < 0) return -1;
  at = json.indexOf(":", at + key.length + 2);
  if (at < 0) return -1;
  at++;
  while (at < json.length && (json.charAt(at) == " " || json.charAt(at) == "\n")) at++;
  return at;
}

function stringField(json: string, key: string): string | null {
  let at = valueStart(json, key);
  if (at < 0 || json.charAt(at) != '"') return null;
  let out = "";
  for (at++; at < json.length; at++) {
    const c = json.charAt(at);
    if (c == '"') return out;
    if (c == "\\" && at + 1 < json.length) {
      at++;
      const e = json.charAt(at);
      if (e == "n") out += "\n";
      else if (e == "t") out += "\t";
      else if (e == "r") out += "\r";
      else if (e == "u" && at + 4 < json.length) {
        out += String.fromCharCode(<i32>I32.parseInt(json.substr(at + 1, 4), 16));
        at += 4;
      } else out += e;
    } else out += c;
  }
  return null;
}

function integerField(json: string, key: string): string | null {
  const start = valueStart(json, key);
  if (start < 0) return null;
  let end = start;
  if (end < json.length && json.charAt(end) == "-") end++;
  while (end < json.length && json.charCodeAt(end) >= 0x30 && json.charCodeAt(end) <= 0x39) end++;
  if (end == start || (end == start + 1 && json.charAt(start) == "-")) return null;
  return json.substring(start, end);
}

function textBlock(text: string): u64 {
  return Memory.allocateString(text).offset;
}

function numberBlock(value: i64): u64 {
  const block = alloc(8);
  store_u64(block, <u64>value);
  return block;
}

/** Reads a var holding a decimal number (as the Rust plugin stores it); 0 when unset. */
function counter(key: string): u64 {
  const text = Var.getString(key);
  return text === null ? 0 : U64.parseInt(text);
}

function setCounter(key: string, value: u64): void {
  Var.set(key, Uint8Array.wrap(String.UTF8.encode(value.toString())));
}

export function echo(): i32 {
  Host.output(Host.input());
  return 0;
}

export function count_vowels(): i32 {
  const input = Host.inputString();
  const configured = Config.get("vowels");
  const vowels = configured === null ? "aeiouAEIOU" : configured;
  let count: u64 = 0;
  for (let i = 0; i < input.length; i++) {
    if (vowels.includes(input.charAt(i))) count++;
  }
  const total = counter("total") + count;
  setCounter("total", total);
  outputText('{"count":' + count.toString() + ',"total":' + total.toString() +
    ',"vowels":' + jsonString(vowels) + "}");
  return 0;
}

export function greet(): i32 {
  const name = stringField(Host.inputString(), "name");
  if (name === null) return failWith('input is not {"name": "..."}', 1);
  outputText('{"greeting":' + jsonString("Hello, " + name + "!") + "}");
  return 0;
}

export function config(): i32 {
  const key = Host.inputString();
  const value = Config.get(key);
  if (value === null) return failWith("no config key " + jsonString(key), 1);
  outputText(value);
  return 0;
}

export function vars(): i32 {
  const n = counter("n") + 1;
  setCounter("n", n);
  outputText(n.toString());
  return 0;
}

export function log(): i32 {
  host.log_trace(Memory.allocateString("a trace line").offset);
  Host.log(LogLevel.Debug, "a debug line");
  Host.log(LogLevel.Info, "an info line");
  Host.log(LogLevel.Warn, "a warn line");
  Host.log(LogLevel.Error, "an error line");
  outputText("ok");
  return 0;
}

export function fail(): i32 {
  return failWith("failed on purpose", 3);
}

export function host_echo(): i32 {
  const reply = host.host_echo(textBlock(Host.inputString()));
  outputText(readBlock(reply));
  return 0;
}

export function lookup(): i32 {
  const query = '{"key":' + jsonString(Host.inputString()) + "}";
  const answer = readBlock(host.lookup(textBlock(query)));
  const value = stringField(answer, "value");
  if (value === null) return failWith("lookup's answer has no value: " + answer, 1);
  outputText(value);
  return 0;
}

export function kv(): i32 {
  const input = Host.inputString();
  const eq = input.indexOf("=");
  if (eq < 0) return failWith("input is not key=value", 1);
  const key = input.substring(0, eq);
  host.kv_set(textBlock(key), textBlock(input.substring(eq + 1)));
  outputText(readBlock(host.kv_get(textBlock(key))));
  return 0;
}

export function add(): i32 {
  const input = Host.inputString();
  const a = integerField(input, "a");
  const b = integerField(input, "b");
  if (a === null || b === null) return failWith('input is not {"a": n, "b": n}', 1);
  const sum = host.add(numberBlock(I64.parseInt(a)), numberBlock(I64.parseInt(b)));
  if (length(sum) != 8) return failWith("add's result is not 8 bytes", 1);
  outputText((<i64>load_u64(sum)).toString());
  return 0;
}

export function host_fail(): i32 {
  const reply = host.host_fail(textBlock(Host.inputString()));
  outputText(reply == 0 ? "err: null handle" : "ok: " + readBlock(reply));
  return 0;
}

// The PDK (1.0.0) has no HTTP API: the request goes through the kernel's `http_request`.
export function http_get(): i32 {
  const request = '{"url":' + jsonString(Host.inputString()) + ',"headers":{},"method":"GET"}';
  const body = http_request(textBlock(request), 0);
  const status = host.http_status_code();
  const text = body == 0 ? "" : readBlock(body);
  outputText('{"status":' + status.toString() + ',"body":' + jsonString(text) + "}");
  return 0;
}

export function no_output(): i32 {
  return 0;
}

// Hostile exports: raw kernel calls no PDK helper would make, for the host's bad-input tests.
// Each outputs what the kernel answered, if the host lets the call go on.

/** A handle never allocated, past any memory a plugin this small ever has. */
const BAD_HANDLE: u64 = 0x7fff0000;

export function alloc_huge(): i32 {
  const handle = alloc(<u64>1 << 63);
  outputText("alloc(2^63) = " + handle.toString());
  return 0;
}

export function load_bad(): i32 {
  const value = load_u64(BAD_HANDLE);
  outputText("load_u64(0x7fff0000) = " + value.toString());
  return 0;
}

export function output_bad(): i32 {
  const block = alloc(16);
  output_set(block + 8, 64);
  return 0;
}

export function var_huge(): i32 {
  const size: u64 = (1 << 20) + 1;
  const value = alloc(size);
  for (let at: u64 = 0; at + 8 <= size; at += 8) store_u64(value + at, 0x7878787878787878);
  store_u64(value + size - 8, 0x7878787878787878);
  var_set(textBlock("huge"), value);
  outputText("var set");
  return 0;
}

/**
 * Access to the spec test vectors in `spec-tests/vectors/` (see its INDEX.md for the source and
 * licence of each file). The vectors live in the repository, so a fresh clone tests on its own.
 */
import * as fs from "node:fs"
import * as path from "node:path"

export const VECTORS_DIR = path.resolve(import.meta.dirname, "../vectors")

/** Read a JSON vector file, e.g. `readJson("varint/unsigned-varint.json")`. */
export const readJson = <A = unknown>(relative: string): A =>
  JSON.parse(fs.readFileSync(path.join(VECTORS_DIR, relative), "utf8")) as A

/** Read a text vector file (CSV, markdown). */
export const readText = (relative: string): string => fs.readFileSync(path.join(VECTORS_DIR, relative), "utf8")

export const fromHex = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex, "hex"))
export const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex")

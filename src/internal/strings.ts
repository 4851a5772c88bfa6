/**
 * String storage helpers for long-lived strings and small byte strings (no
 * spec: a memory concern, issue 6 item 3).
 *
 * Strings built piece by piece (`s += c`, as multiformats' base-x encoders and
 * protobufjs's short-string UTF-8 reader do) are V8 "cons strings": ropes with
 * one 32-byte node per piece, so a 52-character peer id kept as a rope costs
 * about 1.6 KiB instead of 80 bytes. {@link flat} returns the same text as one
 * flat, internalized string (identical texts then share one copy, e.g. the
 * protocol ids every peer reports), at a cost of well under a microsecond.
 *
 * Small byte strings kept for a connection's lifetime (a multiaddr, a peer id's
 * multihash, a public key) are cheaper as "binary strings", one Latin-1
 * character per byte ({@link fromBytes}, {@link toBytes}): 16 bytes of header
 * plus the bytes, against about 240 for a small `Uint8Array` with its
 * `ArrayBuffer`. Such a string is an internal representation: callers get
 * fresh `Uint8Array`s back.
 *
 * @internal
 */

/** The same text as a flat, internalized string (a property key is always one). */
export const flat = (s: string): string => {
  if (s.length < 2) return s
  for (const key in { [s]: 0 }) return key
  return s
}

const CHUNK = 4096

/** The bytes as a binary string (one Latin-1 character per byte); see {@link fromBytes} for one to keep. */
export const binary = (bytes: Uint8Array): string => {
  if (bytes.length <= CHUNK) return String.fromCharCode(...bytes)
  let out = ""
  for (let i = 0; i < bytes.length; i += CHUNK) out += String.fromCharCode(...bytes.subarray(i, i + CHUNK))
  return out
}

/** The bytes as a flat, internalized binary string, to keep. */
export const fromBytes = (bytes: Uint8Array): string => flat(binary(bytes))

/** The bytes of a binary string, or of its characters `start` to `end` (a fresh array). */
export const toBytes = (b: string, start = 0, end = b.length): Uint8Array => {
  const out = new Uint8Array(end - start)
  for (let i = start; i < end; i++) out[i - start] = b.charCodeAt(i)
  return out
}

const LISTS_MAX = 256
const lists = new Map<string, ReadonlyArray<string>>()
const EMPTY: ReadonlyArray<string> = Object.freeze([])
const sameList = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean => {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * One shared frozen copy of a list of flat strings (e.g. the protocol list of a
 * peer: every peer of the same software reports the same list). At most
 * {@link LISTS_MAX} distinct lists are remembered; then the memory starts over.
 */
export const internList = (list: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (list.length === 0) return EMPTY
  const key = list.join("\n")
  const known = lists.get(key)
  if (known !== undefined && sameList(known, list)) return known
  if (lists.size >= LISTS_MAX) lists.clear()
  const copy = Object.freeze(list.map(flat))
  if (known === undefined) lists.set(key, copy)
  return copy
}

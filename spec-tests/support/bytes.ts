/**
 * Byte helpers shared by the tests: UTF-8 text, a deterministic pseudo-random
 * payload (xorshift32, so a failing case can be reproduced from its seed) and
 * byte equality.
 */
import { Bytes } from "effect"

export const KiB = 1024
export const MiB = 1024 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()
export const enc = (s: string): Uint8Array => encoder.encode(s)
export const dec = (b: Uint8Array): string => decoder.decode(b)

/** The xorshift32 generator behind `pattern` (a seed of 0 counts as 1). */
export const prng = (seed: number) => {
  let x = seed >>> 0 || 1
  return (): number => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return x >>> 0
  }
}

/** `n` pseudo-random bytes from `seed`. */
export const pattern = (n: number, seed: number): Uint8Array => {
  const next = prng(seed)
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = next() & 0xff
  return out
}

export const equalBytes: (a: Uint8Array, b: Uint8Array) => boolean = Bytes.Equivalence

/** Remove the first `n` bytes from a queue of chunks that holds at least `n`, and return them. */
export const takeBytes = (chunks: Array<Uint8Array>, n: number): Uint8Array => {
  const out = new Uint8Array(n)
  let at = 0
  while (at < n) {
    const c = chunks[0]!
    const k = Math.min(c.byteLength, n - at)
    out.set(c.subarray(0, k), at)
    at += k
    if (k === c.byteLength) chunks.shift()
    else chunks[0] = c.subarray(k)
  }
  return out
}

/**
 * Write batches for a shape given as chunk lengths, filled with a position-dependent
 * byte pattern so that any loss, duplication or reordering of the stream shows.
 */
export const fillBatches = (shape: ReadonlyArray<ReadonlyArray<number>>): Array<Array<Uint8Array>> => {
  let at = 0
  return shape.map((batch) =>
    batch.map((n) => {
      const chunk = new Uint8Array(n)
      for (let i = 0; i < n; i++) chunk[i] = ((at + i) * 31 + ((at + i) >>> 8)) & 0xff
      at += n
      return chunk
    })
  )
}

/**
 * Cutting a write's chunks into frame payloads without copying (no spec:
 * implementation support for the muxers' write paths, where one
 * application write becomes frames of at most `maxFrameSize`).
 *
 * @internal
 */
import type * as Duplex from "../../core/Duplex.ts"

/** Where a write is in its chunks: the next byte is `chunks[index][offset]`. */
export class Cursor {
  readonly chunks: Duplex.Chunks
  index = 0
  offset = 0

  constructor(chunks: Duplex.Chunks) {
    this.chunks = chunks
  }

  /**
   * Push the next `n` bytes onto `out` and move past them: whole chunks as
   * they are, parts as subarrays (never copied). There must be `n` bytes left.
   */
  take(n: number, out: Array<Uint8Array>): void {
    const chunks = this.chunks
    let index = this.index
    let offset = this.offset
    let left = n
    while (left > 0) {
      const c = chunks[index]!
      const avail = c.byteLength - offset
      if (avail <= left) {
        if (avail > 0) out.push(offset === 0 ? c : c.subarray(offset))
        left -= avail
        index++
        offset = 0
      } else {
        out.push(c.subarray(offset, offset + left))
        offset += left
        left = 0
      }
    }
    this.index = index
    this.offset = offset
  }
}

/**
 * The table of seen replay tags (LIP-99 §8.6.1 step 2), bounded and expiring:
 * a tag is kept for `ttl` after it was first seen (nim: 1 hour) and at most
 * `maxEntries` tags are kept; when full, the oldest tag goes first (its packet
 * could then be replayed once more, which is the price of bounded memory; the
 * `evicted` count says how often that happened). Time comes in as an argument
 * (the caller reads `Clock`), so the table is pure and property-testable.
 *
 * @internal
 */

export interface ReplayTable {
  /** Whether `tag` was seen within its ttl; records it when it was not. */
  readonly seen: (tag: Uint8Array, nowMillis: number) => boolean
  readonly size: () => number
  readonly evicted: () => number
}

export const make = (options: { readonly maxEntries: number; readonly ttlMillis: number }): ReplayTable => {
  // Insertion order is expiry order (one ttl for all), so the oldest entries are at the front.
  const tags = new Map<string, number>()
  let evicted = 0
  const expire = (now: number) => {
    for (const [key, expiresAt] of tags) {
      if (expiresAt > now) break
      tags.delete(key)
    }
  }
  return {
    seen: (tag, now) => {
      expire(now)
      const key = Buffer.from(tag.buffer, tag.byteOffset, tag.byteLength).toString("base64")
      if (tags.has(key)) return true
      while (tags.size >= Math.max(1, options.maxEntries)) {
        const oldest = tags.keys().next()
        if (oldest.done === true) break
        tags.delete(oldest.value)
        evicted++
      }
      tags.set(key, now + options.ttlMillis)
      return false
    },
    size: () => tags.size,
    evicted: () => evicted
  }
}

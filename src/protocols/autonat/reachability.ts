/**
 * Per-address reachability from AutoNAT results (pure): the last `window`
 * results of an address, one per server (a server's newer result replaces
 * its older one); the address is `public` when successes outnumber failures
 * by `minConfidence`, `private` when failures outnumber successes by it, else
 * `unknown` (autonat-v2.md §Implementation Suggestions: "reachable if more
 * than 3 servers report a successful dial"; go-libp2p's addrs reachability
 * tracker keeps a window of recent dials and a confidence of 3 the same way).
 *
 * @internal
 */
import type { Reachability } from "../../host/AddressManager.ts"

export interface AddrVerdict {
  readonly reachability: Reachability
  readonly successes: number
  readonly failures: number
  /** Clock time (ms) of the latest result. */
  readonly checkedAt: number
}

interface Entry {
  /** server → success; insertion order is recency (oldest first). */
  readonly results: Map<string, boolean>
  checkedAt: number
}

export class Tracker {
  readonly entries = new Map<string, Entry>()
  readonly window: number
  readonly minConfidence: number
  readonly maxAddrs: number
  constructor(window: number, minConfidence: number, maxAddrs: number) {
    this.window = window
    this.minConfidence = minConfidence
    this.maxAddrs = maxAddrs
  }

  record(addr: string, server: string, success: boolean, now: number): void {
    let e = this.entries.get(addr)
    if (e === undefined) {
      if (this.entries.size >= this.maxAddrs) {
        // the address checked longest ago makes room
        let oldest: string | undefined
        let at = Infinity
        for (const [k, v] of this.entries) {
          if (v.checkedAt < at) {
            at = v.checkedAt
            oldest = k
          }
        }
        if (oldest !== undefined) this.entries.delete(oldest)
      }
      e = { results: new Map(), checkedAt: now }
      this.entries.set(addr, e)
    }
    e.results.delete(server)
    e.results.set(server, success)
    while (e.results.size > this.window) {
      const first = e.results.keys().next()
      if (first.done === true) break
      e.results.delete(first.value)
    }
    e.checkedAt = now
  }

  /** Drop what we know of addresses not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const k of Array.from(this.entries.keys())) if (!keep.has(k)) this.entries.delete(k)
  }

  servers(addr: string): ReadonlySet<string> {
    return new Set(this.entries.get(addr)?.results.keys() ?? [])
  }

  verdict(addr: string): AddrVerdict {
    const e = this.entries.get(addr)
    if (e === undefined) return { reachability: "unknown", successes: 0, failures: 0, checkedAt: 0 }
    let successes = 0
    let failures = 0
    for (const ok of e.results.values()) {
      if (ok) successes++
      else failures++
    }
    const reachability: Reachability = successes - failures >= this.minConfidence
      ? "public"
      : failures - successes >= this.minConfidence
      ? "private"
      : "unknown"
    return { reachability, successes, failures, checkedAt: e.checkedAt }
  }
}

/** The node's reachability from its addresses': public if any is; private if every checked one is; else unknown. */
export const overall = (verdicts: ReadonlyArray<Reachability>): Reachability =>
  verdicts.includes("public")
    ? "public"
    : verdicts.length > 0 && verdicts.every((v) => v === "private")
    ? "private"
    : "unknown"

/**
 * Helpers for tests of a Transport (src/transport/Transport.ts) over real or
 * in-memory connections: an echo handler, exact reads, polling for a state
 * that settles asynchronously, and the machine's IPv6 loopback. Used by the
 * compliance suite (spec-tests/transport/compliance.ts) and the per-transport
 * tests.
 */
import { Effect, Result } from "effect"
import * as Os from "node:os"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import type * as Transport from "../../src/transport/Transport.ts"

/** A peer id for addresses that carry a `/p2p` suffix. */
export const PEER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

/** The TCP port of an IP address. */
export const portOf = (addr: Multiaddr.Multiaddr): number => {
  const na = Multiaddr.toNodeAddress(addr)
  if (Result.isFailure(na)) throw new Error(`not a tcp address: ${addr.toString()}`)
  return na.success.port
}

/** Echo every batch back, then half-close when the remote does. */
export const echo = (conn: Transport.RawConnection): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const chunks = yield* conn.duplex.read
      if (Duplex.isEOF(chunks)) break
      yield* conn.duplex.write(chunks)
    }
    yield* conn.duplex.closeWrite
  }).pipe(Effect.ignore)

/** Read exactly `n` bytes (fails if EOF comes first). */
export const readExactly = (d: Duplex.Duplex, n: number): Effect.Effect<Uint8Array, Duplex.DuplexError | string> =>
  Effect.gen(function*() {
    const got: Array<Uint8Array> = []
    let have = 0
    while (have < n) {
      const chunks = yield* d.read
      if (Duplex.isEOF(chunks)) return yield* Effect.fail(`EOF after ${have} of ${n} bytes`)
      for (const c of chunks) {
        got.push(c)
        have += c.byteLength
      }
    }
    return Duplex.concat(got)
  })

/** Poll `check` every 10 ms for up to 5 s; the last value either way. */
export const eventually = <A>(probe: Effect.Effect<A>, check: (a: A) => boolean): Effect.Effect<A> =>
  Effect.gen(function*() {
    let a = yield* probe
    for (let i = 0; i < 500 && !check(a); i++) {
      yield* Effect.sleep("10 millis")
      a = yield* probe
    }
    return a
  })

/** True when this machine has the IPv6 loopback address `::1`. */
export const hasIpv6Loopback = Object.values(Os.networkInterfaces()).some((infos) =>
  (infos ?? []).some((i) => i.family === "IPv6" && i.address === "::1")
)

/** Active Node handles of one kind (`TCPSocketWrap`, `PipeWrap` …): a leak check for sockets. */
export const activeHandles = (kind: string) => (): number =>
  process.getActiveResourcesInfo().filter((r) => r === kind).length

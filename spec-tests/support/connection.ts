/**
 * Test doubles for the connection-management tests: a Connection that is only
 * bookkeeping (no socket, no muxer), so the Dialer and the ConnectionManager
 * can be driven under TestClock without any transport.
 */
import { Clock, Deferred, Effect } from "effect"
import type * as Connection from "../../src/connection/Connection.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { ma } from "./multiaddr.ts"

export interface FakePeer {
  readonly peerId: PeerId.PeerId
  readonly publicKey: Keys.PublicKey
}

export const fakePeer: Effect.Effect<FakePeer> = Effect.map(Effect.orDie(Keys.generate("Ed25519")), (key) => ({
  peerId: PeerId.fromPrivateKey(key),
  publicKey: key.publicKey
}))

export interface FakeConnection extends Connection.Connection {
  /** Pretend the connection carries `n` streams. */
  readonly setStreams: (n: number) => void
}

let next = 0

/** A Connection to `peer` opened now (Clock time). `close` resolves `closed` at once. */
export const fakeConnection = (
  peer: FakePeer,
  options: { readonly direction?: Connection.Direction; readonly remoteAddr?: Multiaddr.Multiaddr } = {}
): Effect.Effect<FakeConnection> =>
  Effect.gen(function*() {
    const openedAt = yield* Clock.currentTimeMillis
    const closed = yield* Deferred.make<void>()
    let closing = false
    let streams = 0
    const close = Effect.suspend(() => {
      closing = true
      return Deferred.succeed(closed, undefined)
    })
    return {
      id: `fake${++next}`,
      remotePeer: peer.peerId,
      remotePublicKey: peer.publicKey,
      remoteAddr: options.remoteAddr ?? ma("/memory/1"),
      localAddr: ma("/memory/2"),
      direction: options.direction ?? "inbound",
      security: "/noise",
      muxer: "/yamux/1.0.0",
      openedAt,
      newStream: () => Effect.die("fake connection: no streams"),
      streamCount: () => streams,
      streams: () => [],
      bytes: () => undefined,
      close: Effect.asVoid(close),
      closed: Deferred.await(closed),
      isClosed: () => closing,
      setStreams: (n) => void (streams = n)
    }
  })

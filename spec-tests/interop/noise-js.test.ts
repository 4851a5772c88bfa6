/**
 * Interop: our Noise (src/security/Noise.ts) against js-libp2p's
 * `@chainsafe/libp2p-noise` 17, in process. Specs: noise-libp2p
 * (libp2p/specs noise/README.md) §Handshake Pattern, §The libp2p Handshake
 * Payload, §Noise Extensions, §Wire Format; inlined-muxer-negotiation
 * §Multiplexer Negotiation over Noise.
 *
 * The js side gets a js-libp2p `Stream` (an `AbstractStream` subclass defined
 * here) whose bytes travel over one end of our `Duplex.pair()`; our side uses
 * the other end directly. After the handshake, js's secured `MessageStream`
 * and our secured Duplex exchange data both ways.
 *
 * js-libp2p deviation found (asserted below, so a fix upstream shows up here):
 * when js is the INITIATOR it picks the first muxer of the RESPONDER's list that
 * it supports (it runs the same selection over the remote list on both sides),
 * whereas the spec says the result is the first item of the initiator's list
 * that both support. With different preference orders the two ends then
 * disagree. As responder js follows the spec.
 * ECDSA identities are not exercised: js-libp2p's ECDSA keys do not interoperate
 * (see spec-tests/core/KeysInterop.test.ts).
 */
import { noise } from "@chainsafe/libp2p-noise"
import { describe, expect, it } from "@effect/vitest"
import { generateKeyPair } from "@libp2p/crypto/keys"
import type { PrivateKey as JsPrivateKey, SecuredConnection, Upgrader } from "@libp2p/interface"
import { defaultLogger } from "@libp2p/logger"
import { peerIdFromPrivateKey, peerIdFromString } from "@libp2p/peer-id"
import { Effect } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Noise from "../../src/security/Noise.ts"
import { DuplexStream } from "../support/jsStream.ts"
import { ok } from "../support/result.ts"

/** js-libp2p's Noise with the given muxers registered in a stub upgrader. */
const jsNoise = (privateKey: JsPrivateKey, muxers: ReadonlyArray<string>) =>
  noise()({
    peerId: peerIdFromPrivateKey(privateKey),
    privateKey,
    logger: defaultLogger(),
    upgrader: { getStreamMuxers: () => new Map(muxers.map((m) => [m, { protocol: m }])) } as unknown as Upgrader
  })

/** Collect what a js secured connection receives. */
const collect = (conn: SecuredConnection["connection"]) => {
  const got: Array<Uint8Array> = []
  conn.addEventListener("message", (evt) => {
    const d = evt.data
    got.push(d instanceof Uint8Array ? d.slice() : d.subarray().slice())
  })
  return {
    bytes: () => Duplex.concat(got),
    waitFor: (n: number) =>
      Effect.promise(async () => {
        for (let i = 0; i < 2000 && Duplex.concat(got).byteLength < n; i++) await new Promise((r) => setImmediate(r))
        return Duplex.concat(got)
      })
  }
}

const readBytes = (d: Duplex.Duplex, n: number) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let got = 0
    while (got < n) {
      const batch = yield* d.read
      if (batch.length === 0) break
      for (const c of batch) {
        parts.push(c)
        got += c.byteLength
      }
    }
    return Duplex.concat(parts)
  })

type JsKeyType = "Ed25519" | "secp256k1" | "RSA"
const keyTypes: ReadonlyArray<readonly [JsKeyType, Keys.KeyType]> = [
  ["Ed25519", "Ed25519"],
  ["secp256k1", "Secp256k1"],
  ["RSA", "RSA"]
]

const payload = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)

describe("noise-libp2p interop with @chainsafe/libp2p-noise (in process)", () => {
  for (const [jsType, ourType] of keyTypes) {
    it.live(
      `§Handshake Pattern: we initiate, js responds (${jsType} identities both sides); data flows both ways`,
      () =>
        Effect.gen(function*() {
          const jsKey = yield* Effect.promise(() => generateKeyPair(jsType))
          const ourKey = yield* Keys.generate(ourType)
          const jsPeer = ok(PeerId.fromString(peerIdFromPrivateKey(jsKey).toString()))
          const [a, b] = yield* Duplex.pair()
          const jsSide = jsNoise(jsKey, ["/yamux/1.0.0"]).secureInbound(
            new DuplexStream(b, "inbound")
          )
          const ours = yield* Noise.make()
          const conn = yield* ours.secureOutbound(a, { localKey: ourKey, remotePeer: jsPeer, muxers: ["/yamux/1.0.0"] })
          const js = yield* Effect.promise(() => jsSide)
          expect(PeerId.equals(conn.remotePeer, jsPeer)).toBe(true)
          expect(js.remotePeer.toString()).toBe(PeerId.fromPrivateKey(ourKey).toString())
          // §Noise Extensions: both offered /yamux/1.0.0
          expect(conn.muxer).toBe("/yamux/1.0.0")
          expect((js.streamMuxer as unknown as { protocol: string } | undefined)?.protocol).toBe("/yamux/1.0.0")
          // data: ours → js (a small batch and one spanning several Noise messages)
          const received = collect(js.connection)
          const big = payload(200_000, 7)
          yield* conn.duplex.write([new TextEncoder().encode("hello js"), big])
          const got = yield* received.waitFor(8 + big.byteLength)
          expect(new TextDecoder().decode(got.subarray(0, 8))).toBe("hello js")
          expect(Buffer.from(got.subarray(8)).equals(Buffer.from(big))).toBe(true)
          // js → ours
          const back = payload(150_000, 3)
          js.connection.send(new TextEncoder().encode("hello effect"))
          js.connection.send(back)
          const mine = yield* readBytes(conn.duplex, 12 + back.byteLength)
          expect(new TextDecoder().decode(mine.subarray(0, 12))).toBe("hello effect")
          expect(Buffer.from(mine.subarray(12)).equals(Buffer.from(back))).toBe(true)
        }),
      60_000
    )

    it.live(
      `§Handshake Pattern: js initiates, we respond (${jsType} identities both sides); data flows both ways`,
      () =>
        Effect.gen(function*() {
          const jsKey = yield* Effect.promise(() => generateKeyPair(jsType))
          const ourKey = yield* Keys.generate(ourType)
          const [a, b] = yield* Duplex.pair()
          const jsSide = jsNoise(jsKey, ["/yamux/1.0.0"]).secureOutbound(
            new DuplexStream(a, "outbound"),
            {
              remotePeer: peerIdFromString(PeerId.fromPrivateKey(ourKey).toString())
            }
          )
          const ours = yield* Noise.make()
          const conn = yield* ours.secureInbound(b, { localKey: ourKey, muxers: ["/yamux/1.0.0"] })
          const js = yield* Effect.promise(() => jsSide)
          expect(conn.remotePeer.toString()).toBe(peerIdFromPrivateKey(jsKey).toString())
          expect(js.remotePeer.toString()).toBe(PeerId.fromPrivateKey(ourKey).toString())
          expect(conn.muxer).toBe("/yamux/1.0.0")
          expect((js.streamMuxer as unknown as { protocol: string } | undefined)?.protocol).toBe("/yamux/1.0.0")
          const received = collect(js.connection)
          const big = payload(70_000, 1)
          yield* conn.duplex.write([big])
          expect(Buffer.from(yield* received.waitFor(big.byteLength)).equals(Buffer.from(big))).toBe(true)
          js.connection.send(payload(65_519, 2))
          js.connection.send(payload(1, 9))
          const mine = yield* readBytes(conn.duplex, 65_520)
          expect(Buffer.from(mine).equals(Buffer.from(Duplex.concat([payload(65_519, 2), payload(1, 9)])))).toBe(true)
        }),
      60_000
    )
  }

  it.live("§SecureOutbound: js refuses us when it expected another peer; we refuse js when we expected another (PeerIdMismatch) [noise:xx:1]", () =>
    Effect.gen(function*() {
      const jsKey = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const otherJs = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const ourKey = yield* Keys.generate("Ed25519")
      const [a, b] = yield* Duplex.pair()
      const jsSide = jsNoise(jsKey, []).secureInbound(new DuplexStream(b, "inbound")).then(
        () => "ok",
        () => "failed"
      )
      const ours = yield* Noise.make()
      const expected = ok(PeerId.fromString(peerIdFromPrivateKey(otherJs).toString()))
      const e = yield* Effect.flip(ours.secureOutbound(a, { localKey: ourKey, remotePeer: expected }))
      expect(e.reason).toBe("PeerIdMismatch")
      expect(yield* Effect.promise(() => jsSide)).toBe("failed")
    }))

  it.live("inlined-muxer-negotiation §Noise: we initiate preferring yamux, js responds preferring mplex → both use yamux", () =>
    Effect.gen(function*() {
      const jsKey = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const [a, b] = yield* Duplex.pair()
      const jsSide = jsNoise(jsKey, ["/mplex/6.7.0", "/yamux/1.0.0"]).secureInbound(
        new DuplexStream(b, "inbound")
      )
      const ours = yield* Noise.make()
      const conn = yield* ours.secureOutbound(a, {
        localKey: yield* Keys.generate("Ed25519"),
        muxers: ["/yamux/1.0.0", "/mplex/6.7.0"]
      })
      const js = yield* Effect.promise(() => jsSide)
      expect(conn.muxer).toBe("/yamux/1.0.0")
      expect((js.streamMuxer as unknown as { protocol: string } | undefined)?.protocol).toBe("/yamux/1.0.0")
      expect(conn.remoteExtensions?.stream_muxers).toEqual(["/mplex/6.7.0", "/yamux/1.0.0"])
    }))

  it.live("inlined-muxer-negotiation §Noise: js initiates preferring yamux, we respond preferring mplex → we pick yamux (spec); js picks mplex (deviation)", () =>
    Effect.gen(function*() {
      const jsKey = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const [a, b] = yield* Duplex.pair()
      const jsSide = jsNoise(jsKey, ["/yamux/1.0.0", "/mplex/6.7.0"]).secureOutbound(
        new DuplexStream(a, "outbound")
      )
      const ours = yield* Noise.make()
      const conn = yield* ours.secureInbound(b, {
        localKey: yield* Keys.generate("Ed25519"),
        muxers: ["/mplex/6.7.0", "/yamux/1.0.0"]
      })
      const js = yield* Effect.promise(() => jsSide)
      expect(conn.remoteExtensions?.stream_muxers).toEqual(["/yamux/1.0.0", "/mplex/6.7.0"])
      expect(conn.muxer).toBe("/yamux/1.0.0")
      // js-libp2p deviation: it ranks by the responder's list when it initiates
      expect((js.streamMuxer as unknown as { protocol: string } | undefined)?.protocol).toBe("/mplex/6.7.0")
    }))

  it.live("inlined-muxer-negotiation §Noise: no common muxer → both sides fail the handshake [inlined-muxer:multiplexer-negotiation-over-noise:2]", () =>
    Effect.gen(function*() {
      const jsKey = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const [a, b] = yield* Duplex.pair()
      const jsSide = jsNoise(jsKey, ["/mplex/6.7.0"]).secureInbound(
        new DuplexStream(b, "inbound")
      ).then(
        () => "ok",
        (e: Error) => e.name
      )
      const ours = yield* Noise.make()
      const e = yield* Effect.flip(ours.secureOutbound(a, {
        localKey: yield* Keys.generate("Ed25519"),
        muxers: ["/yamux/1.0.0"]
      }))
      expect(e.reason).toBe("NoCommonMuxer")
      expect(yield* Effect.promise(() => jsSide)).not.toBe("ok")
    }))

  it.live("without muxer lists there is no early muxer on either side", () =>
    Effect.gen(function*() {
      const jsKey = yield* Effect.promise(() => generateKeyPair("Ed25519"))
      const [a, b] = yield* Duplex.pair()
      const jsSide = jsNoise(jsKey, []).secureOutbound(new DuplexStream(a, "outbound"))
      const ours = yield* Noise.make()
      const conn = yield* ours.secureInbound(b, { localKey: yield* Keys.generate("Ed25519") })
      const js = yield* Effect.promise(() => jsSide)
      expect(conn.muxer).toBeUndefined()
      expect(js.streamMuxer).toBeUndefined()
    }))
})

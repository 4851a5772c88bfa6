/**
 * Interop: our multistream-select (src/multistream/Multistream.ts) against js-libp2p's own
 * implementation, `@libp2p/multistream-select` (the version libp2p 3 depends on), run
 * in-process as a library. Spec: multiformats/multistream-select README §Protocol,
 * §Listing, §Implementation Recommendations; libp2p/specs connections/README.md
 * §Protocol Negotiation.
 *
 * The js side gets a js-libp2p `Stream` (an `AbstractStream` subclass defined here) whose
 * bytes travel over one end of our `Duplex.pair()`; every batch each side writes is
 * recorded, so the packets js sends are checked too.
 */
import { describe, expect, it } from "@effect/vitest"
import { handle as jsHandle, select as jsSelect } from "@libp2p/multistream-select"
import { Effect, Exit, Fiber, Result } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import { DuplexStream } from "../support/jsStream.ts"
import { toHex } from "../support/vectors.ts"

/** A Duplex that records every write batch (concatenated). */
const recording = (d: Duplex.Duplex) => {
  const writes: Array<Uint8Array> = []
  const duplex: Duplex.Duplex = {
    ...d,
    write: (chunks) => Effect.andThen(Effect.sync(() => writes.push(Duplex.concat(chunks).slice())), d.write(chunks))
  }
  return { duplex, writes }
}

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const frame = (s: string) => Result.getOrThrow(Multistream.encodeMessage(s))
const concatAll = (...xs: Array<Uint8Array>) => Duplex.concat(xs)

/** The messages of one packet of plain frames. */
const messagesOf = (packet: Uint8Array): Array<string> => {
  const out: Array<string> = []
  let at = 0
  while (at < packet.length) {
    const { bytes, value } = Result.getOrThrow(Varint.decode(packet, at))
    out.push(text(packet.subarray(at + bytes, at + bytes + value)).slice(0, -1))
    at += bytes + value
  }
  return out
}

/** Read exactly n bytes from a js stream (after negotiation). */
const jsRead = (stream: DuplexStream, n: number) =>
  Effect.promise(async () => {
    const got: Array<number> = []
    for await (const buf of stream) {
      for (const c of buf instanceof Uint8Array ? [buf] : [...buf]) got.push(...c)
      if (got.length >= n) break
    }
    return Uint8Array.from(got)
  })

/** Read exactly n bytes from one of our Duplexes. */
const ourRead = (d: Duplex.Duplex, n: number) =>
  Effect.gen(function*() {
    const got: Array<number> = []
    while (got.length < n) {
      const batch = yield* d.read
      if (batch.length === 0) break
      for (const c of batch) got.push(...c)
    }
    return Uint8Array.from(got)
  })

const jsTry = <A>(f: () => Promise<A>) => Effect.exit(Effect.tryPromise({ try: f, catch: (e) => e as Error }))

describe("interop with js-libp2p @libp2p/multistream-select", () => {
  it.live("README §Protocol: our select (initiator) vs js handle (responder): na, then echo, then application bytes both ways", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ours = recording(a)
      const theirs = recording(b)
      const js = new DuplexStream(theirs.duplex, "inbound")
      const jsSide = yield* Effect.forkChild(jsTry(() => jsHandle(js, ["/yamux/1.0.0", "/mplex/6.7.0"])))
      const n = yield* Multistream.select(ours.duplex, ["/quic-muxer/1", "/mplex/6.7.0"])
      expect(n.protocol).toBe("/mplex/6.7.0")
      const jsExit = yield* Fiber.join(jsSide)
      expect(Exit.isSuccess(jsExit) && jsExit.value).toBe("/mplex/6.7.0")
      // our packets: header‖first proposal, then the second proposal
      expect(ours.writes.map(messagesOf)).toEqual([[Multistream.PROTOCOL, "/quic-muxer/1"], ["/mplex/6.7.0"]])
      // js's answers, in order (js sends its header in its own packet, after reading ours)
      expect(theirs.writes.flatMap(messagesOf)).toEqual([Multistream.PROTOCOL, "na", "/mplex/6.7.0"])
      // application bytes
      yield* n.duplex.write([utf8("ping-from-effect")])
      expect(text(yield* jsRead(js, 16))).toBe("ping-from-effect")
      js.send(utf8("pong-from-js"))
      expect(text(yield* ourRead(n.duplex, 12))).toBe("pong-from-js")
    }))

  it.live("README §Implementation Recommendations: js select (initiator) vs our handle; js pipelines header and first proposal, we answer header‖na in one packet [multistream:implementation-recommendations:2]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ours = recording(a)
      const theirs = recording(b)
      const js = new DuplexStream(theirs.duplex, "outbound")
      const jsSide = yield* Effect.forkChild(jsTry(() => jsSelect(js, ["/tls/1.0.0", "/noise"])))
      const n = yield* Multistream.handle(ours.duplex, ["/noise"])
      expect(n.protocol).toBe("/noise")
      const jsExit = yield* Fiber.join(jsSide)
      expect(Exit.isSuccess(jsExit) && jsExit.value).toBe("/noise")
      expect(toHex(theirs.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, frame("/tls/1.0.0"))))
      expect(theirs.writes.map(messagesOf)).toEqual([[Multistream.PROTOCOL, "/tls/1.0.0"], ["/noise"]])
      expect(toHex(ours.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, Multistream.NA_FRAME)))
      expect(ours.writes.map(messagesOf)).toEqual([[Multistream.PROTOCOL, "na"], ["/noise"]])
      js.send(utf8("noise-msg-1"))
      expect(text(yield* ourRead(n.duplex, 11))).toBe("noise-msg-1")
      yield* n.duplex.write([utf8("noise-msg-2")])
      expect(text(yield* jsRead(js, 11))).toBe("noise-msg-2")
    }))

  it.live("§Protocol: js select with nothing we support fails UnsupportedProtocolError; we see the stream end", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = new DuplexStream(b, "outbound")
      const ourSide = yield* Effect.forkChild(Effect.exit(Multistream.handle(a, ["/x/1"])))
      const jsExit = yield* jsTry(() => jsSelect(js, ["/y/1", "/z/1"]))
      expect(Exit.isFailure(jsExit) && String(jsExit.cause)).toContain("UnsupportedProtocol")
      yield* Effect.promise(() => js.close())
      const ours = yield* Fiber.join(ourSide)
      const e = Exit.isFailure(ours) ? ours.cause.reasons.find((r) => r._tag === "Fail") : undefined
      expect(e?._tag === "Fail" && (e.error as Multistream.MultistreamError).reason).toBe("UnexpectedEOF")
    }))

  it.live("§Protocol: our select with nothing js supports fails UnsupportedProtocol listing our proposals", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = new DuplexStream(b, "inbound")
      const jsSide = yield* Effect.forkChild(jsTry(() => jsHandle(js, ["/x/1"])))
      const exit = yield* Effect.exit(Multistream.select(a, ["/y/1", "/z/1"]))
      const e = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      expect(e?._tag === "Fail" && (e.error as Multistream.MultistreamError).reason).toBe("UnsupportedProtocol")
      expect(e?._tag === "Fail" && (e.error as Multistream.MultistreamError).protocols).toEqual(["/y/1", "/z/1"])
      yield* a.closeWrite
      const jsExit = yield* Fiber.join(jsSide)
      expect(Exit.isFailure(jsExit)).toBe(true)
    }))

  it.live("lazy select vs js handle: header, proposal and data in one packet; js accepts and gets the data, we get its answer", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ours = recording(a)
      const js = new DuplexStream(b, "inbound")
      const lazy = Multistream.lazySelect(ours.duplex, "/ipfs/ping/1.0.0")
      const ping = Uint8Array.from({ length: 32 }, (_, i) => i)
      yield* lazy.write([ping])
      expect(ours.writes.length).toBe(1)
      expect(toHex(ours.writes[0]!)).toBe(
        toHex(concatAll(Multistream.HEADER_FRAME, frame("/ipfs/ping/1.0.0"), ping))
      )
      const jsExit = yield* jsTry(() => jsHandle(js, ["/ipfs/ping/1.0.0"]))
      expect(Exit.isSuccess(jsExit) && jsExit.value).toBe("/ipfs/ping/1.0.0")
      const got = yield* jsRead(js, 32)
      expect(Array.from(got)).toEqual(Array.from(ping))
      js.send(got)
      const back: Array<number> = []
      while (back.length < 32) for (const c of yield* lazy.read) back.push(...c)
      expect(back).toEqual(Array.from(ping))
    }))

  it.live("lazy select refused by js handle: our first read fails UnsupportedProtocol", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = new DuplexStream(b, "inbound")
      const jsSide = yield* Effect.forkChild(jsTry(() => jsHandle(js, ["/other/1.0.0"])))
      const lazy = Multistream.lazySelect(a, "/ipfs/ping/1.0.0")
      const exit = yield* Effect.exit(lazy.read)
      const e = Exit.isFailure(exit) ? exit.cause.reasons.find((r) => r._tag === "Fail") : undefined
      expect(e?._tag === "Fail" && (e.error as Multistream.MultistreamError).reason).toBe("UnsupportedProtocol")
      yield* lazy.reset
      expect(Exit.isFailure(yield* Fiber.join(jsSide))).toBe(true)
    }))

  it.live("README §Listing: our ls against js handle reads js's list (outer frame, embedded messages, final newline)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const theirs = recording(b)
      const js = new DuplexStream(theirs.duplex, "inbound")
      const offered = ["/ipfs/kad/1.0.0", "/ipfs/bitswap/1.2.0", "/ipfs/id/1.0.0"]
      const jsSide = yield* Effect.forkChild(jsTry(() => jsHandle(js, offered)))
      const { protocols, duplex } = yield* Multistream.list(a)
      expect(protocols).toEqual(offered)
      // js's ls answer is byte-for-byte what encodeList produces
      const all = Duplex.concat(theirs.writes)
      expect(toHex(all)).toBe(
        toHex(concatAll(Multistream.HEADER_FRAME, Result.getOrThrow(Multistream.encodeList(offered))))
      )
      const n = yield* Multistream.select(duplex, ["/ipfs/id/1.0.0"], { headerExchanged: true })
      expect(n.protocol).toBe("/ipfs/id/1.0.0")
      const jsExit = yield* Fiber.join(jsSide)
      expect(Exit.isSuccess(jsExit) && jsExit.value).toBe("/ipfs/id/1.0.0")
    }))

  it.live("js select against our handle with a match function and a 1023-byte protocol id (the largest both accept)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const js = new DuplexStream(b, "outbound")
      const long = "/" + "p".repeat(1022)
      const jsSide = yield* Effect.forkChild(jsTry(() => jsSelect(js, [long])))
      const n = yield* Multistream.handle(a, (p) => p.startsWith("/ppp"))
      expect(n.protocol).toBe(long)
      const jsExit = yield* Fiber.join(jsSide)
      expect(Exit.isSuccess(jsExit) && jsExit.value).toBe(long)
    }))
})

/**
 * multistream-select 1.0 against the spec texts and their wire examples
 * (spec-tests/vectors/libp2p-specs/multistream-select.json): multiformats/multistream-select
 * README §Protocol, §Listing, §Implementation Recommendations, §ls example in detail, and
 * libp2p/specs connections/README.md §Protocol Negotiation / §multistream-select and
 * conn-upgrade.plantuml. Both sides run over `Duplex.pair()`; every write is recorded so
 * the exact bytes and the packet boundaries ("in the same packet") are checked.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Reader from "../../src/core/Reader.ts"
import * as Varint from "../../src/core/Varint.ts"
import * as Multistream from "../../src/multistream/Multistream.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

type Step = readonly [string, string]
interface Transcript {
  readonly name: string
  readonly steps?: ReadonlyArray<Step>
  readonly initiator_packet?: string
  readonly responder_packet?: string
}
interface Vectors {
  readonly protocol_id: string
  readonly encoded_examples: ReadonlyArray<{ readonly message: string; readonly hex: string }>
  readonly derived_encodings: ReadonlyArray<{ readonly message: string; readonly hex: string }>
  readonly transcripts: ReadonlyArray<Transcript>
  readonly rules: ReadonlyArray<string>
}
const vectors = readJson<Vectors>("libp2p-specs/multistream-select.json")
const transcript = (name: string): Transcript => {
  const t = vectors.transcripts.find((x) => x.name === name)
  if (t === undefined) throw new Error(`no transcript ${name}`)
  return t
}

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

/** A Duplex that records every write batch (concatenated) in order. */
const recording = (d: Duplex.Duplex) => {
  const writes: Array<Uint8Array> = []
  const duplex: Duplex.Duplex = {
    ...d,
    write: (chunks) => Effect.andThen(Effect.sync(() => writes.push(Duplex.concat(chunks).slice())), d.write(chunks))
  }
  return { duplex, writes }
}

/** Split one packet into its multistream messages (plain frames, no ls nesting). */
const messagesOf = (packet: Uint8Array): Array<string> => {
  const out: Array<string> = []
  let at = 0
  while (at < packet.length) {
    const { bytes, value } = Result.getOrThrow(Varint.decode(packet, at))
    out.push(text(packet.subarray(at + bytes, at + bytes + value)))
    at += bytes + value
  }
  return out
}
/** "a\nb\n" (the README's unframed packet notation) → ["a\n", "b\n"]. */
const lines = (packet: string): Array<string> => packet.split(/(?<=\n)/)

const frame = (s: string) => Result.getOrThrow(Multistream.encodeMessage(s))
const concatAll = (...xs: Array<Uint8Array>) => Duplex.concat(xs)

/** Write raw bytes as the remote, then half-close (bounded input: nothing can hang). */
const remoteSends = (d: Duplex.Duplex, bytes: Uint8Array) => Effect.andThen(d.write([bytes]), d.closeWrite)

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const e = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (e === undefined || e._tag !== "Fail") throw new Error(`expected a typed failure, got ${String(exit.cause)}`)
  return e.error
}

const readUntilEOF = (d: Duplex.Duplex) => Effect.map(Duplex.readAll(d, 1 << 20), text)

describe("multistream-select §Protocol: message encoding (vectors)", () => {
  for (const v of vectors.encoded_examples) {
    it(`connections spec §multistream-select / README §Protocol: "${v.message}" is ${v.hex}`, () => {
      expect(toHex(frame(v.message))).toBe(v.hex)
      expect(Result.getOrThrow(Multistream.decodeMessage(fromHex(v.hex).subarray(1)))).toBe(v.message)
    })
  }
  it("README §Protocol: na and ls frames are the constants we send", () => {
    const hex = Object.fromEntries(vectors.encoded_examples.map((v) => [v.message, v.hex]))
    expect(toHex(Multistream.NA_FRAME)).toBe(hex["na"])
    expect(toHex(Multistream.LS_FRAME)).toBe(hex["ls"])
    expect(Multistream.PROTOCOL).toBe(vectors.protocol_id)
  })
  for (const v of vectors.derived_encodings) {
    it(`Note 1 & 2 (length prefix counts the newline): "${v.message}" frames as ${v.hex}`, () => {
      expect(toHex(frame(v.message))).toBe(v.hex)
      const bytes = fromHex(v.hex)
      const { bytes: n } = Result.getOrThrow(Varint.decode(bytes))
      expect(Result.getOrThrow(Multistream.decodeMessage(bytes.subarray(n)))).toBe(v.message)
    })
  }
  it("header frame is the derived encoding of /multistream/1.0.0", () => {
    const h = vectors.derived_encodings.find((v) => v.message === vectors.protocol_id)!
    expect(toHex(Multistream.HEADER_FRAME)).toBe(h.hex)
  })
  it("§Protocol Note 2: a message body without the trailing newline is rejected", () => {
    const r = Multistream.decodeMessage(utf8("na"))
    expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidMessage")
    const empty = Multistream.decodeMessage(new Uint8Array(0))
    expect(Result.isFailure(empty) && empty.failure.reason).toBe("InvalidMessage")
  })
  it("connections spec §multistream-select: messages are UTF-8 (invalid UTF-8 is rejected, non-ASCII ids round-trip)", () => {
    const bad = Multistream.decodeMessage(Uint8Array.of(0xff, 0xfe, 0x0a))
    expect(Result.isFailure(bad) && bad.failure.reason).toBe("InvalidMessage")
    const id = "/протокол/1.0.0"
    const f = frame(id)
    expect(f[0]).toBe(utf8(id).length + 1)
    expect(Result.getOrThrow(Multistream.decodeMessage(f.subarray(1)))).toBe(id)
  })
  it("size limit (go-multistream / js-libp2p: 1024 bytes with the newline): 1023-byte id ok, 1024-byte id refused", () => {
    expect(Result.isSuccess(Multistream.validateProtocolId("/" + "a".repeat(1022)))).toBe(true)
    const r = Multistream.validateProtocolId("/" + "a".repeat(1023))
    expect(Result.isFailure(r) && r.failure.reason).toBe("InvalidProtocolId")
    const m = Multistream.encodeMessage("a".repeat(1024))
    expect(Result.isFailure(m) && m.failure.reason).toBe("MessageTooLarge")
  })
})

describe("multistream-select README §ls example in detail: ls answer framing", () => {
  const ls = transcript("ls")
  const listed = lines(ls.responder_packet ?? ls.steps![1]![1]).slice(1).map((l) => l.slice(0, -1))

  it("the answer is one frame: embedded messages then a final \\n, the outer length counting all of it", () => {
    const encoded = Result.getOrThrow(Multistream.encodeList(listed))
    const body = concatAll(...listed.map(frame), Uint8Array.of(0x0a))
    expect(toHex(encoded)).toBe(toHex(concatAll(Varint.encode(body.length), body)))
    // "unless there are 0 protocols the response will end with \n\n"
    expect(Array.from(encoded.subarray(-2))).toEqual([0x0a, 0x0a])
    const { bytes } = Result.getOrThrow(Varint.decode(encoded))
    expect(Result.getOrThrow(Multistream.decodeList(encoded.subarray(bytes)))).toEqual(listed)
  })
  it("an empty list is the single byte \\n in one frame (01 0a)", () => {
    expect(toHex(Result.getOrThrow(Multistream.encodeList([])))).toBe("010a")
    expect(Result.getOrThrow(Multistream.decodeList(Uint8Array.of(0x0a)))).toEqual([])
  })
  it("malformed answers fail typed (missing final newline, entry past the end, entry without newline)", () => {
    const good = Result.getOrThrow(Multistream.encodeList(["/a"])).subarray(1)
    for (const bad of [good.subarray(0, -1), Uint8Array.of(0x09, 0x2f, 0x0a), Uint8Array.of(0x02, 0x2f, 0x61, 0x0a)]) {
      const r = Multistream.decodeList(bad)
      expect(Result.isFailure(r) && r.failure._tag).toBe("MultistreamError")
    }
  })
})

describe("multistream-select negotiation transcripts (vectors)", () => {
  it.effect("connections spec §Upgrading Connections (conn-upgrade.plantuml): TLS refused, Noise accepted, then mplex over the secured channel", () =>
    Effect.gen(function*() {
      const t = transcript("connection upgrade (TLS rejected, Noise accepted, then mplex)")
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const [sec, secL] = yield* Effect.all([
        Multistream.select(ini.duplex, ["/tls/1.0.0", "/noise"]),
        Multistream.handle(res.duplex, ["/noise"])
      ], { concurrency: 2 })
      expect(sec.protocol).toBe("/noise")
      expect(secL.protocol).toBe("/noise")
      // "<Noise handshake>": the selected protocol's bytes flow both ways
      yield* sec.duplex.write([utf8("noise-e")])
      yield* secL.duplex.write([utf8("noise-e,ee")])
      const rl = Reader.make(secL.duplex)
      const rd = Reader.make(sec.duplex)
      expect(text(yield* rl.readExactly(7))).toBe("noise-e")
      expect(text(yield* rd.readExactly(10))).toBe("noise-e,ee")
      // multiplexer negotiation over the (here: same, unencrypted) channel
      const [mux, muxL] = yield* Effect.all([
        Multistream.select(Duplex.prepend(sec.duplex, rd.rest()), ["/mplex/1.0.0"]),
        Multistream.handle(Duplex.prepend(secL.duplex, rl.rest()), ["/mplex/1.0.0"])
      ], { concurrency: 2 })
      expect([mux.protocol, muxL.protocol]).toEqual(["/mplex/1.0.0", "/mplex/1.0.0"])

      const said = (role: string) => t.steps!.filter(([r, m]) => r === role && !m.startsWith("<")).map(([, m]) => m)
      const wrote = (writes: Array<Uint8Array>) =>
        writes.filter((w) => !text(w).startsWith("noise-")).flatMap(messagesOf).map((m) => m.slice(0, -1))
      // the ordered messages of each role, with the header once per negotiation
      expect(wrote(ini.writes)).toEqual([...said("initiator").slice(0, 3), "/multistream/1.0.0", "/mplex/1.0.0"])
      expect(wrote(res.writes)).toEqual([...said("responder").slice(0, 3), "/multistream/1.0.0", "/mplex/1.0.0"])
      // exact bytes: initiator's first packet is header ‖ /tls/1.0.0, responder's is header ‖ na
      expect(toHex(ini.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, frame("/tls/1.0.0"))))
      expect(toHex(res.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, fromHex("036e610a"))))
      expect(toHex(ini.writes[1]!)).toBe("072f6e6f6973650a")
      expect(toHex(res.writes[1]!)).toBe("072f6e6f6973650a")
    }))

  it.effect("README §Protocol: protocol not available, then select and protocol traffic [multistream:protocol:1] [multistream:listing:3]", () =>
    Effect.gen(function*() {
      const t = transcript("protocol not available then select")
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const wanted = t.steps!.filter(([r, m]) => r === "initiator" && m.startsWith("/") && m !== "/multistream/1.0.0")
        .map(([, m]) => m)
      const supported = t.steps!.filter(([r, m]) =>
        r === "responder" && m.startsWith("/") && m !== "/multistream/1.0.0"
      )
        .map(([, m]) => m)
      const [d, l] = yield* Effect.all([
        Multistream.select(ini.duplex, wanted),
        Multistream.handle(res.duplex, supported)
      ], { concurrency: 2 })
      expect(d.protocol).toBe("/ipfs/kad/1.0.0")
      expect(l.protocol).toBe("/ipfs/kad/1.0.0")
      yield* d.duplex.write([utf8("<kad-dht-traffic>")])
      yield* d.duplex.closeWrite
      const got = yield* readUntilEOF(l.duplex)
      yield* l.duplex.write([utf8(got)])
      yield* l.duplex.closeWrite
      expect(yield* readUntilEOF(d.duplex)).toBe("<kad-dht-traffic>")

      const initiatorMsgs = t.steps!.filter(([r, m]) => r === "initiator" && !m.startsWith("<")).map(([, m]) => m)
      const responderMsgs = t.steps!.filter(([r, m]) => r === "responder" && !m.startsWith("<")).map(([, m]) => m)
      expect(ini.writes.slice(0, 2).flatMap(messagesOf)).toEqual(initiatorMsgs.map((m) => m + "\n"))
      expect(res.writes.slice(0, 2).flatMap(messagesOf)).toEqual(responderMsgs.map((m) => m + "\n"))
    }))

  it.effect("README §Implementation Recommendations (pipelined success): each side sends header and first message in ONE packet [multistream:implementation-recommendations:1] [multistream:implementation-recommendations:2]", () =>
    Effect.gen(function*() {
      const t = transcript("pipelined success")
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const proto = lines(t.initiator_packet!)[1]!.slice(0, -1)
      const [d, l] = yield* Effect.all([
        Multistream.select(ini.duplex, [proto]),
        Multistream.handle(res.duplex, [proto])
      ], { concurrency: 2 })
      expect([d.protocol, l.protocol]).toEqual([proto, proto])
      expect(ini.writes.length).toBe(1)
      expect(res.writes.length).toBe(1)
      expect(messagesOf(ini.writes[0]!)).toEqual(lines(t.initiator_packet!))
      expect(messagesOf(res.writes[0]!)).toEqual(lines(t.responder_packet!))
      expect(toHex(ini.writes[0]!)).toBe(
        toHex(concatAll(...lines(t.initiator_packet!).map((m) => frame(m.slice(0, -1)))))
      )
      expect(toHex(res.writes[0]!)).toBe(
        toHex(concatAll(...lines(t.responder_packet!).map((m) => frame(m.slice(0, -1)))))
      )
    }))

  it.effect("README §Implementation Recommendations (pipelined with fallback): packets are exactly header‖kad/1.0.0, header‖na, kad/0.2.3, kad/0.2.3", () =>
    Effect.gen(function*() {
      const t = transcript("pipelined with fallback")
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const [d, l] = yield* Effect.all([
        Multistream.select(ini.duplex, ["/ipfs/kad/1.0.0", "/ipfs/kad/0.2.3"]),
        Multistream.handle(res.duplex, ["/ipfs/kad/0.2.3"])
      ], { concurrency: 2 })
      expect([d.protocol, l.protocol]).toEqual(["/ipfs/kad/0.2.3", "/ipfs/kad/0.2.3"])
      const packets = (role: string) => t.steps!.filter(([r]) => r === role).map(([, p]) => p)
      expect(ini.writes.map(messagesOf)).toEqual(packets("initiator").map(lines))
      expect(res.writes.map(messagesOf)).toEqual(packets("responder").map(lines))
    }))

  it.effect("README §Listing + §Implementation Recommendations (Listing): ls in the header's packet, the list in the header's packet [multistream:listing:1] [multistream:implementation-recommendations:3] [multistream:implementation-recommendations:4]", () =>
    Effect.gen(function*() {
      const t = transcript("ls")
      const [reqPacket, resPacket] = [t.steps![0]![1], t.steps![1]![1]]
      const offered = lines(resPacket).slice(1).map((l) => l.slice(0, -1))
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const responder = yield* Effect.forkChild(Multistream.handle(res.duplex, offered))
      const { protocols, duplex } = yield* Multistream.list(ini.duplex)
      expect(protocols).toEqual(offered)
      // one packet each way so far
      expect(ini.writes.length).toBe(1)
      expect(messagesOf(ini.writes[0]!)).toEqual(lines(reqPacket))
      expect(toHex(ini.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, fromHex("036c730a"))))
      expect(res.writes.length).toBe(1)
      const expected = concatAll(Multistream.HEADER_FRAME, Result.getOrThrow(Multistream.encodeList(offered)))
      expect(toHex(res.writes[0]!)).toBe(toHex(expected))
      // the README's flattened view: header line, then one line per protocol
      const [header, outer] = [messagesOf(res.writes[0]!)[0]!, res.writes[0]!.subarray(Multistream.HEADER_FRAME.length)]
      const { bytes } = Result.getOrThrow(Varint.decode(outer))
      const flattened = [header, ...messagesOf(outer.subarray(bytes, -1))]
      expect(flattened).toEqual(lines(resPacket))
      // then select on the same channel (README: "send selection, upgrade connection")
      const chosen = yield* Multistream.select(duplex, [offered[0]!], { headerExchanged: true })
      expect(chosen.protocol).toBe(offered[0])
      expect((yield* Fiber.join(responder)).protocol).toBe(offered[0])
      expect(messagesOf(ini.writes[1]!)).toEqual([offered[0] + "\n"])
    }))

  it.effect("simopen.md (deprecated, not implemented): /libp2p/simultaneous-connect is refused with na like any unknown protocol", () =>
    Effect.gen(function*() {
      const t = transcript("simultaneous open (deprecated extension)")
      const id = t.steps![0]![1]
      const [a, b] = yield* Duplex.pair()
      const res = recording(b)
      yield* Effect.forkChild(Effect.exit(Multistream.handle(res.duplex, ["/noise"])))
      const exit = yield* Effect.exit(Multistream.select(a, [id]))
      const e = failure(exit)
      expect(e._tag === "MultistreamError" && e.reason).toBe("UnsupportedProtocol")
      expect(e._tag === "MultistreamError" && e.protocols).toEqual([id])
      expect(toHex(res.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, Multistream.NA_FRAME)))
    }))

  it.effect("connections spec §Protocol Negotiation rules: responder echoes to accept, na to refuse; header first [multistream:protocol:1]", () =>
    Effect.gen(function*() {
      expect(vectors.rules.length).toBe(3)
      // "anything other than the multistream id as first message => abort" (both roles)
      const [a, b] = yield* Duplex.pair()
      yield* remoteSends(a, concatAll(frame("/noise"), frame("/multistream/1.0.0")))
      const e1 = failure(yield* Effect.exit(Multistream.handle(b, ["/noise"])))
      expect(e1._tag === "MultistreamError" && e1.reason).toBe("InvalidHeader")
      const [c, d] = yield* Duplex.pair()
      yield* remoteSends(d, concatAll(frame("/multistream/2.0.0"), frame("/noise")))
      const e2 = failure(yield* Effect.exit(Multistream.select(c, ["/noise"])))
      expect(e2._tag === "MultistreamError" && e2.reason).toBe("InvalidHeader")
      // "both sides may send /multistream/1.0.0 immediately": a responder that sends its header first is fine
      const [e, f] = yield* Duplex.pair()
      yield* f.write([Multistream.HEADER_FRAME])
      const dialer = yield* Effect.forkChild(Multistream.select(e, ["/noise"]))
      const r = Reader.make(f)
      expect(yield* Multistream.readMessage(r)).toBe("/multistream/1.0.0")
      expect(yield* Multistream.readMessage(r)).toBe("/noise")
      yield* f.write([frame("/noise"), utf8("app")])
      const got = yield* Fiber.join(dialer)
      expect(got.protocol).toBe("/noise")
      expect(text(Duplex.concat(yield* got.duplex.read))).toBe("app")
    }))
})

describe("multistream-select: select / handle behaviour", () => {
  it.effect("§Protocol: all proposals refused → UnsupportedProtocol with the list; the responder then sees EOF", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const responder = yield* Effect.forkChild(Effect.exit(Multistream.handle(b, ["/c"])))
      const e = failure(yield* Effect.exit(Multistream.select(a, ["/a", "/b"])))
      expect(e._tag === "MultistreamError" && e.reason).toBe("UnsupportedProtocol")
      expect(e._tag === "MultistreamError" && e.protocols).toEqual(["/a", "/b"])
      yield* a.closeWrite
      const le = failure(yield* Fiber.join(responder))
      expect(le._tag === "MultistreamError" && le.reason).toBe("UnexpectedEOF")
    }))

  it.effect("§Protocol Negotiation: the responder answering a protocol we did not propose → UnexpectedResponse", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* remoteSends(b, concatAll(Multistream.HEADER_FRAME, frame("/yamux/1.0.0")))
      const e = failure(yield* Effect.exit(Multistream.select(a, ["/mplex/6.7.0"])))
      expect(e._tag === "MultistreamError" && e.reason).toBe("UnexpectedResponse")
    }))

  it.effect("§Opening New Streams: a match function selects protocols; bytes sent with the proposal reach the handler", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      // the initiator pipelines application data right behind its proposal
      yield* a.write([Multistream.HEADER_FRAME, frame("/ipfs/ping/9.9.9"), utf8("hello")])
      const l = yield* Multistream.handle(b, (p) => p.startsWith("/ipfs/ping/"))
      expect(l.protocol).toBe("/ipfs/ping/9.9.9")
      expect(text(Duplex.concat(yield* l.duplex.read))).toBe("hello")
      const r = Reader.make(a)
      expect(yield* Multistream.readMessage(r)).toBe(Multistream.PROTOCOL)
      expect(yield* Multistream.readMessage(r)).toBe("/ipfs/ping/9.9.9")
    }))

  it.effect("§Listing is OPTIONAL: a responder with listing disabled answers ls with na, which list() reads as empty [multistream:listing:2] [multistream:listing:3]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const res = recording(b)
      const responder = yield* Effect.forkChild(Multistream.handle(res.duplex, ["/x"], { listing: false }))
      const { duplex, protocols } = yield* Multistream.list(a)
      expect(protocols).toEqual([])
      expect(toHex(res.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, Multistream.NA_FRAME)))
      yield* Multistream.select(duplex, ["/x"], { headerExchanged: true })
      expect((yield* Fiber.join(responder)).protocol).toBe("/x")
    }))

  it.effect("ls on a predicate handler lists the `listing` option", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* Effect.forkChild(Effect.exit(Multistream.handle(b, () => false, { listing: ["/p/1", "/p/2"] })))
      expect((yield* Multistream.list(a)).protocols).toEqual(["/p/1", "/p/2"])
    }))

  it.effect("a responder that did not get the proposal with the header answers the header at once (no deadlock with a waiting initiator)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const res = recording(b)
      const responder = yield* Effect.forkChild(Multistream.handle(res.duplex, ["/x"]))
      yield* a.write([Multistream.HEADER_FRAME])
      const r = Reader.make(a)
      expect(yield* Multistream.readMessage(r)).toBe(Multistream.PROTOCOL)
      yield* a.write([frame("/x")])
      expect(yield* Multistream.readMessage(r)).toBe("/x")
      expect((yield* Fiber.join(responder)).protocol).toBe("/x")
      expect(res.writes.map(toHex)).toEqual([toHex(Multistream.HEADER_FRAME), toHex(frame("/x"))])
    }))

  it.effect("local protocol ids are validated before anything is sent", () =>
    Effect.gen(function*() {
      const [a] = yield* Duplex.pair()
      for (const bad of [[], [""], ["na"], ["ls"], ["/a\nb"], ["/" + "x".repeat(1023)]]) {
        const e = failure(yield* Effect.exit(Multistream.select(a, bad)))
        expect(e._tag === "MultistreamError" && e.reason).toBe("InvalidProtocolId")
      }
    }))

  it.effect("Timeout: a silent responder fails the negotiation after the timeout (virtual time)", () =>
    Effect.gen(function*() {
      const [a] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(Effect.exit(Multistream.select(a, ["/x"], { timeout: "10 seconds" })))
      yield* TestClock.adjust("9 seconds")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("2 seconds")
      const e = failure(yield* Fiber.join(fiber))
      expect(e._tag === "MultistreamError" && e.reason).toBe("Timeout")
      const [, d] = yield* Duplex.pair()
      const h = yield* Effect.forkChild(Effect.exit(Multistream.handle(d, ["/x"], { timeout: 1000 })))
      yield* TestClock.adjust("1 second")
      const he = failure(yield* Fiber.join(h))
      expect(he._tag === "MultistreamError" && he.reason).toBe("Timeout")
    }))

  it.effect("a reset stream passes the DuplexError through", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(Effect.exit(Multistream.select(a, ["/x"])))
      yield* Effect.yieldNow
      yield* b.reset
      const e = failure(yield* Fiber.join(fiber))
      expect(e._tag === "DuplexError" && e.reason).toBe("Reset")
    }))
})

describe("multistream-select: malformed input fails typed, never hangs", () => {
  const header = Multistream.HEADER_FRAME
  const cases: ReadonlyArray<readonly [string, Uint8Array, ReadonlyArray<Multistream.MultistreamErrorReason>]> = [
    ["empty stream (EOF before the header)", new Uint8Array(0), ["UnexpectedEOF"]],
    ["header without its newline", concatAll(Uint8Array.of(18), utf8("/multistream/1.0.0")), ["InvalidMessage"]],
    ["a wrong header", frame("/multistream/2.0.0"), ["InvalidHeader"]],
    ["EOF inside the header", header.subarray(0, 7), ["UnexpectedEOF"]],
    ["EOF inside a length prefix", Uint8Array.of(0x80), ["UnexpectedEOF"]],
    ["valid header then EOF", header, ["UnexpectedEOF"]],
    ["valid header then garbage without newline", concatAll(header, Uint8Array.of(5), utf8("hello")), [
      "InvalidMessage"
    ]],
    ["valid header then an over-long varint", concatAll(header, new Uint8Array(10).fill(0xff)), ["InvalidMessage"]],
    ["valid header then a non-minimal varint", concatAll(header, Uint8Array.of(0x83, 0x00, 0x6e, 0x61, 0x0a)), [
      "InvalidMessage"
    ]],
    ["valid header then an over-long message (1025 bytes, body never sent)", concatAll(header, Varint.encode(1025)), [
      "MessageTooLarge"
    ]],
    ["an over-long first message (2^31, body never sent)", Varint.encode(2 ** 31), ["MessageTooLarge"]],
    ["valid header then a message cut short by EOF", concatAll(header, Uint8Array.of(20), utf8("/abc")), [
      "UnexpectedEOF"
    ]],
    ["valid header then invalid UTF-8", concatAll(header, Uint8Array.of(3, 0xc3, 0x28, 0x0a)), ["InvalidMessage"]],
    ["a zero-length message", Uint8Array.of(0), ["InvalidMessage"]]
  ]
  for (const [name, bytes, reasons] of cases) {
    it.effect(`responder: ${name}`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* Duplex.pair()
        yield* remoteSends(a, bytes)
        const e = failure(yield* Effect.exit(Multistream.handle(b, ["/x"])))
        expect(e._tag === "MultistreamError" && reasons.includes(e.reason)).toBe(true)
      }))
    it.effect(`initiator: ${name}`, () =>
      Effect.gen(function*() {
        const [a, b] = yield* Duplex.pair()
        yield* remoteSends(b, bytes)
        const e = failure(yield* Effect.exit(Multistream.select(a, ["/x"])))
        expect(e._tag === "MultistreamError" && reasons.includes(e.reason)).toBe(true)
      }))
  }

  it.effect("random bytes (fixed seeds, bounded): every run ends in a typed failure on both roles", () =>
    Effect.gen(function*() {
      let seed = 0x1234567
      const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16
      for (let i = 0; i < 200; i++) {
        const bytes = Uint8Array.from({ length: next() % 64 }, () => next() & 0xff)
        for (const role of ["handle", "select"] as const) {
          const [a, b] = yield* Duplex.pair()
          yield* remoteSends(a, bytes)
          const exit = yield* Effect.exit(
            role === "handle" ? Multistream.handle(b, ["/x"]) : Multistream.select(b, ["/x"])
          )
          const e = failure(exit)
          expect(e._tag).toBe("MultistreamError")
        }
      }
    }))

  it.effect("an ls answer above the list limit fails MessageTooLarge", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* remoteSends(b, concatAll(header, Varint.encode(100)))
      const e = failure(yield* Effect.exit(Multistream.list(a, { maxListLength: 99 })))
      expect(e._tag === "MultistreamError" && e.reason).toBe("MessageTooLarge")
    }))
})

describe("multistream-select: lazy (optimistic) select", () => {
  it.effect("README §Implementation Recommendations: header, proposal and the first data go out in ONE write; the answer is read on first read [multistream:implementation-recommendations:1]", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const ini = recording(a)
      const res = recording(b)
      const lazy = Multistream.lazySelect(ini.duplex, "/ipfs/ping/1.0.0")
      expect(ini.writes.length).toBe(0)
      const ping = new Uint8Array(32).fill(7)
      yield* lazy.write([ping])
      expect(ini.writes.length).toBe(1)
      expect(toHex(ini.writes[0]!)).toBe(
        toHex(concatAll(Multistream.HEADER_FRAME, fromHex("112f697066732f70696e672f312e302e300a"), ping))
      )
      const l = yield* Multistream.handle(res.duplex, ["/ipfs/ping/1.0.0"])
      const got = yield* Reader.make(l.duplex).readExactly(32)
      yield* l.duplex.write([got])
      const back: Array<number> = []
      while (back.length < 32) for (const c of yield* lazy.read) back.push(...c)
      expect(back).toEqual(Array.from(ping))
      expect(res.writes.length).toBe(2)
      expect(toHex(res.writes[0]!)).toBe(toHex(concatAll(Multistream.HEADER_FRAME, frame("/ipfs/ping/1.0.0"))))
    }))

  it.effect("refused (na): the first read fails with UnsupportedProtocol, and so do later writes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const lazy = Multistream.lazySelect(a, "/nope/1.0.0")
      yield* lazy.write([utf8("data")])
      yield* Effect.forkChild(Effect.exit(Multistream.handle(b, ["/yes/1.0.0"])))
      const e = failure(yield* Effect.exit(lazy.read))
      expect(e._tag === "MultistreamError" && e.reason).toBe("UnsupportedProtocol")
      expect(e._tag === "MultistreamError" && e.protocols).toEqual(["/nope/1.0.0"])
      const w = failure(yield* Effect.exit(lazy.write([utf8("more")])))
      expect(w._tag === "MultistreamError" && w.reason).toBe("UnsupportedProtocol")
    }))

  it.effect("toDuplex: a refusal surfaces as DuplexError Io naming the multistream reason; accepted streams pass bytes through", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const d = Multistream.toDuplex(Multistream.lazySelect(a, "/nope/1.0.0"))
      yield* Effect.forkChild(Effect.exit(Multistream.handle(b, ["/yes/1.0.0"])))
      const e = failure(yield* Effect.exit(d.read))
      expect(e.reason).toBe("Io")
      expect(e.message).toMatch(/^multistream-select UnsupportedProtocol:/)
      const [c, f] = yield* Duplex.pair()
      const ok = Multistream.toDuplex(Multistream.lazySelect(c, "/yes/1.0.0"))
      yield* ok.write([utf8("abc")])
      yield* ok.closeWrite
      const l = yield* Multistream.handle(f, ["/yes/1.0.0"])
      expect(yield* readUntilEOF(l.duplex)).toBe("abc")
      yield* l.duplex.write([utf8("xyz")])
      yield* l.duplex.closeWrite
      expect(yield* readUntilEOF(ok)).toBe("xyz")
    }))

  it.effect("concurrent writes never overtake the header and proposal (a transport that writes chunk by chunk)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      // a write that is not atomic: one chunk at a time, yielding in between (as a socket may)
      const chunkwise: Duplex.Duplex = {
        ...a,
        write: (chunks) =>
          Effect.forEach(chunks, (c) => Effect.andThen(Effect.yieldNow, a.write([c])), { discard: true })
      }
      const lazy = Multistream.lazySelect(chunkwise, "/x")
      const first = yield* Effect.forkChild(lazy.write([utf8("1"), utf8("2"), utf8("3")]))
      const second = yield* Effect.forkChild(lazy.write([utf8("4")]))
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      yield* lazy.closeWrite
      const l = yield* Multistream.handle(b, ["/x"])
      expect((yield* readUntilEOF(l.duplex)).split("").sort().join("")).toBe("1234")
    }))

  it.effect("read before any write sends the proposal (else a read-first protocol would deadlock)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const lazy = Multistream.lazySelect(a, "/x")
      const reader = yield* Effect.forkChild(lazy.read)
      const l = yield* Multistream.handle(b, ["/x"])
      yield* l.duplex.write([utf8("hi")])
      expect(text(Duplex.concat(yield* Fiber.join(reader)))).toBe("hi")
      yield* lazy.write([utf8("back")])
      yield* lazy.closeWrite
      expect(yield* readUntilEOF(l.duplex)).toBe("back")
    }))

  it.effect("closeWrite without writes still sends the proposal, so the responder negotiates then sees EOF", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const lazy = Multistream.lazySelect(a, "/x")
      yield* lazy.closeWrite
      const l = yield* Multistream.handle(b, ["/x"])
      expect(l.protocol).toBe("/x")
      expect(Duplex.isEOF(yield* l.duplex.read)).toBe(true)
      yield* lazy.negotiated
    }))

  it.effect("a wrong header or an unexpected echo fails the first read typed; the timeout bounds it", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      yield* remoteSends(b, concatAll(frame("/multistream/2.0.0")))
      const e1 = failure(yield* Effect.exit(Multistream.lazySelect(a, "/x").read))
      expect(e1._tag === "MultistreamError" && e1.reason).toBe("InvalidHeader")
      const [c, d] = yield* Duplex.pair()
      yield* remoteSends(d, concatAll(Multistream.HEADER_FRAME, frame("/y")))
      const e2 = failure(yield* Effect.exit(Multistream.lazySelect(c, "/x").read))
      expect(e2._tag === "MultistreamError" && e2.reason).toBe("UnexpectedResponse")
      const [f] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(Effect.exit(Multistream.lazySelect(f, "/x", { timeout: "5 seconds" }).read))
      yield* TestClock.adjust("5 seconds")
      const e3 = failure(yield* Fiber.join(fiber))
      expect(e3._tag === "MultistreamError" && e3.reason).toBe("Timeout")
      const e4 = failure(yield* Effect.exit(Multistream.lazySelect(f, "ls").write([utf8("x")])))
      expect(e4._tag === "MultistreamError" && e4.reason).toBe("InvalidProtocolId")
    }))
})

describe("multistream-select: the responder bounds the proposals it answers", () => {
  it.effect("more than maxProposals unknown proposals fail TooManyProposals (the spec sets no bound; an attacker could keep us answering na)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Duplex.pair()
      const proposals = Array.from({ length: 40 }, (_, i) => frame(`/unknown/${i}`))
      yield* a.write([Multistream.HEADER_FRAME, ...proposals])
      const e = failure(yield* Effect.exit(Multistream.handle(b, ["/x"], { maxProposals: 8 })))
      expect(e._tag === "MultistreamError" && e.reason).toBe("TooManyProposals")
      // the default bound lets an honest dialer try every protocol it has (well below the default)
      const [c, d] = yield* Duplex.pair()
      const fiber = yield* Effect.forkChild(Multistream.handle(d, ["/x"]))
      const dialer = yield* Multistream.select(c, [...Array.from({ length: 10 }, (_, i) => `/unknown/${i}`), "/x"])
      expect(dialer.protocol).toBe("/x")
      expect((yield* Fiber.join(fiber)).protocol).toBe("/x")
      // and the default bound holds
      const [f, g] = yield* Duplex.pair()
      yield* f.write([
        Multistream.HEADER_FRAME,
        ...Array.from({ length: Multistream.DEFAULT_MAX_PROPOSALS + 1 }, (_, i) => frame(`/u/${i}`))
      ])
      const e2 = failure(yield* Effect.exit(Multistream.handle(g, ["/x"])))
      expect(e2._tag === "MultistreamError" && e2.reason).toBe("TooManyProposals")
    }))
})

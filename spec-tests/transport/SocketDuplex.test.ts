/**
 * The socket duplex (src/transport/SocketDuplex.ts) read by polling
 * (Duplex.Pollable, docs/ARCHITECTURE.md §3.2) and its close notice, over a
 * real loopback TCP connection.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Duplex from "../../src/core/Duplex.ts"
import { socketPair } from "../support/muxer.ts"

const text = (r: Duplex.Chunks | Duplex.DuplexError | undefined) =>
  Array.isArray(r) ? new TextDecoder().decode(Duplex.concat(r)) : r

/** Wait for the duplex's notice (once). */
const readable = (d: Duplex.Pollable) => Effect.callback<void>((resume) => d.onReadable(() => resume(Effect.void)))

/** Poll `d` (waiting for its notice between polls) until `n` characters of text arrived. */
const pollText = (d: Duplex.Pollable, n: number) =>
  Effect.gen(function*() {
    let got = ""
    while (got.length < n) {
      const r = d.pollRead()
      if (r === undefined) yield* readable(d)
      else got += text(r)
    }
    return got
  })

/** Every chunk `d` reads until EOF, as read. */
const readToEof = (d: Duplex.Duplex) =>
  Effect.gen(function*() {
    const got: Array<Uint8Array> = []
    while (true) {
      const chunks = yield* d.read
      if (chunks.length === 0) return got
      got.push(...chunks)
    }
  })

describe("SocketDuplex read by polling (Duplex.Pollable)", () => {
  it.effect("pollRead: undefined while nothing arrived; the notice comes with the bytes, which pollRead then takes whole; EOF is [] (TCP FIN)", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      const pb = Duplex.pollable(b)!
      expect(pb).toBeDefined()
      expect(pb.pollRead()).toBeUndefined()
      yield* a.write([new TextEncoder().encode("hello")])
      yield* readable(pb)
      expect(yield* pollText(pb, 5)).toBe("hello")
      yield* a.closeWrite
      let end = pb.pollRead()
      while (end === undefined) {
        yield* readable(pb)
        end = pb.pollRead()
      }
      expect(end).toEqual([])
    }).pipe(Effect.scoped))

  it.effect("a reset from the remote: the notice comes and pollRead gives the Reset failure; a cancelled notice is not called", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      const pb = Duplex.pollable(b)!
      let cancelled = 0
      pb.onReadable(() => cancelled++)
      pb.onReadable(undefined)
      yield* a.reset
      let r = pb.pollRead()
      while (r === undefined) {
        yield* readable(pb)
        r = pb.pollRead()
      }
      expect(r).toBeInstanceOf(Duplex.DuplexError)
      expect((r as Duplex.DuplexError).reason).toBe("Reset")
      expect(cancelled).toBe(0)
    }).pipe(Effect.scoped))

  it.effect("once('close'): called once, after the duplex saw the close (its writes fail by then); two listeners both run", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      const sb = b as unknown as { once: (e: "close", l: () => void) => void }
      const seen: Array<string> = []
      yield* Effect.callback<void>((resume) => {
        sb.once("close", () => seen.push("first"))
        sb.once("close", () => {
          seen.push("second")
          resume(Effect.void)
        })
        Effect.runFork(Effect.andThen(a.reset, b.reset))
      })
      expect(seen).toEqual(["first", "second"])
      const failed = yield* Effect.flip(b.write([new Uint8Array(1)]))
      expect(failed).toBeInstanceOf(Duplex.DuplexError)
    }).pipe(Effect.scoped))

  it.effect("tryWrite (Duplex.SyncWritable): writes at once and gives true; false, writing nothing, while Node's buffer is over its mark (a peer not reading); the failure after a reset", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      const wa = Duplex.syncWritable(a)!
      expect(wa).toBeDefined()
      expect(wa.tryWrite([new TextEncoder().encode("now")])).toBe(true)
      expect(yield* pollText(Duplex.pollable(b)!, 3)).toBe("now")
      // b stops reading: fill the kernel's buffers and Node's until tryWrite refuses
      const chunk = new Uint8Array(256 * 1024)
      let refused = false
      for (let i = 0; i < 4096 && !refused; i++) {
        const r = wa.tryWrite([chunk])
        expect(r === true || r === false).toBe(true)
        refused = r === false
      }
      expect(refused).toBe(true)
      expect(wa.tryWrite([])).toBe(false)
      yield* a.reset
      expect(wa.tryWrite([chunk])).toBeInstanceOf(Duplex.DuplexError)
    }).pipe(Effect.scoped))

  it.effect("Duplex.OwnedReads: every chunk read is the whole of its own ArrayBuffer, so its reader may release it", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      expect(Duplex.ownsReads(b)).toBe(true)
      const sent = Uint8Array.from({ length: 200_000 }, (_, i) => i & 0xff)
      yield* a.write([sent])
      yield* a.closeWrite
      const got = yield* readToEof(b)
      expect(Duplex.concat(got)).toEqual(sent)
      for (const c of got) expect([c.byteOffset, c.byteLength]).toEqual([0, c.buffer.byteLength])
    }).pipe(Effect.scoped))

  it.effect("a batch handed over (write and tryWrite with handOver) is released once Node has written it, and arrives intact; a batch not handed over is left alone", () =>
    Effect.gen(function*() {
      const [a, b] = yield* socketPair()
      const pattern = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff)
      const given = [pattern(40_000, 1), pattern(50_000, 2)]
      const kept = [pattern(30_000, 3)]
      const tried = [pattern(20_000, 4)]
      const expected = Duplex.concat([...given, ...kept, ...tried])
      yield* a.write(given, true)
      yield* a.write(kept)
      expect(Duplex.syncWritable(a)!.tryWrite(tried, true)).toBe(true)
      yield* a.closeWrite
      const got = yield* readToEof(b)
      expect(Duplex.concat(got)).toEqual(expected)
      // by EOF every write has completed (in order, before the FIN) and Node has run its callback
      expect([...given, ...tried].map((c) => c.byteLength)).toEqual([0, 0, 0])
      expect(kept[0]!.byteLength).toBe(30_000)
    }).pipe(Effect.scoped))
})

/**
 * Freeing consumed reads end to end (ARCHITECTURE §3.1, `Duplex.OwnedReads` and
 * `Duplex.release`): a stream over Noise + Yamux declares its reads owned (each
 * payload that is a whole decrypted record is the reader's alone), the Reader
 * frees the chunks it copied whole and `perf` the chunks it counted, and the
 * bytes still arrive intact: megabytes read back in pieces that span chunks
 * and records, hashed on both sides.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Duplex from "../../src/core/Duplex.ts"
import * as Reader from "../../src/core/Reader.ts"
import * as Memory from "../../src/transport/Memory.ts"
import { memoryNode, tcpNode, type TestNode } from "../support/node.ts"

const PROTOCOL = "/test/sha256-both-ways/1.0.0"
/** Read sizes, cycled: below, at and above a Noise record (65,535) and a Yamux frame. */
const PIECES = [1, 7, 65_519, 65_536, 65_537, 3, 300_000, 12_345, 131_072]
const TOTAL = 6 * 1024 * 1024 + 17

const sha256 = (chunks: ReadonlyArray<Uint8Array>) => {
  const h = Crypto.createHash("sha256")
  for (const c of chunks) h.update(c)
  return h.digest("hex")
}

/**
 * Read exactly `total` bytes in pieces of PIECES' sizes (each a view or a copy, as the
 * Reader decides), keeping every piece until the end as a decoder keeps what it decoded:
 * a chunk freed while a view of it is kept would hash differently.
 */
const readInPieces = (reader: Reader.Reader, total: number) =>
  Effect.gen(function*() {
    const pieces: Array<Uint8Array> = []
    let left = total
    for (let i = 0; left > 0; i++) {
      const n = Math.min(PIECES[i % PIECES.length]!, left)
      pieces.push(yield* reader.readExactly(n))
      left -= n
    }
    return sha256(pieces)
  })

/** Write `data` in batches of uneven slices (views into one buffer: the writer's, never released). */
const writeUneven = (stream: Duplex.Duplex, data: Uint8Array) =>
  Effect.gen(function*() {
    let at = 0
    for (let i = 0; at < data.byteLength; i++) {
      const n = Math.min(PIECES[(i + 4) % PIECES.length]! * 3, data.byteLength - at)
      yield* stream.write([data.subarray(at, at + n)])
      at += n
    }
  })

/**
 * `a` sends TOTAL random bytes; `b` reads them in pieces, answers with their hash,
 * then sends TOTAL random bytes of its own, which `a` reads in pieces and hashes.
 */
const bothWays = (a: TestNode, b: TestNode) =>
  Effect.gen(function*() {
    const up = Crypto.randomBytes(TOTAL)
    const down = Crypto.randomBytes(TOTAL)
    let serverOwns: boolean | undefined
    yield* b.registrar.handle(PROTOCOL, (stream) =>
      Effect.gen(function*() {
        serverOwns = Duplex.ownsReads(stream)
        const reader = Reader.make(stream)
        const got = yield* readInPieces(reader, TOTAL)
        yield* stream.write([Buffer.from(got, "hex")])
        yield* writeUneven(stream, down)
        yield* stream.closeWrite
      }).pipe(Effect.orDie))
    const stream = yield* a.host.newStream(b.addr, [PROTOCOL])
    yield* writeUneven(stream, up)
    const reader = Reader.make(stream)
    const answer = Buffer.from(yield* reader.readExactly(32)).toString("hex")
    const downHash = yield* readInPieces(reader, TOTAL)
    return {
      answer,
      downHash,
      upHash: sha256([up]),
      expectedDown: sha256([down]),
      clientOwns: Duplex.ownsReads(stream),
      serverOwns
    }
  })

/** {@link bothWays}, with both streams owning their reads and both hashes matching. */
const bothWaysIntact = (a: TestNode, b: TestNode) =>
  Effect.map(bothWays(a, b), (r) => {
    expect([r.clientOwns, r.serverOwns]).toEqual([true, true])
    expect(r.answer).toBe(r.upHash)
    expect(r.downHash).toBe(r.expectedDown)
  })

describe("owned reads freed once consumed, end to end", () => {
  it.live(
    "connections §3.1: over TCP + Noise + Yamux both ends' streams own their reads, and 6 MiB each way read back in pieces that span chunks and records hash the same as what was sent",
    () =>
      Effect.gen(function*() {
        const [a, b] = yield* Effect.all([tcpNode(), tcpNode()])
        yield* bothWaysIntact(a, b)
        // perf discards what it counted, freeing it: the counts stay exact
        const p = yield* a.perf.perf(b.addr, { uploadBytes: TOTAL, downloadBytes: TOTAL })
        expect([p.uploadBytes, p.downloadBytes]).toEqual([TOTAL, TOTAL])
      }),
    60_000
  )

  it.live(
    "connections §3.1: over the memory transport (Noise's plaintexts are owned whatever carries them) the same holds",
    () =>
      Effect.gen(function*() {
        const [a, b] = yield* Effect.all([memoryNode(), memoryNode()])
        yield* bothWaysIntact(a, b)
      }).pipe(Effect.provide(Memory.layerNetwork)),
    60_000
  )
})

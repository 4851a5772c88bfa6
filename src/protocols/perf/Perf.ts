/**
 * Perf, `/perf/1.0.0`, per the libp2p perf spec
 * (https://github.com/libp2p/specs/blob/master/perf/perf.md, §Protocol):
 *
 * - Client: open a stream, write the number of bytes it wants back as one
 *   big-endian u64, write its upload (any amount, zero included), close its
 *   write side, then read until EOF; it should get exactly the number it asked for.
 * - Server: read the u64, read (and discard) until EOF, then — never while
 *   still reading (the spec's MUST NOT run concurrently) — send that many
 *   bytes and close.
 *
 * Any u64 is a valid request (the spec's timer variant asks for 2^64 - 1 and
 * closes the stream when its time is up): the server never allocates the
 * download, it writes one preallocated buffer in batches until the count is
 * reached or the stream is reset. Bad requests (a stream that ends inside the
 * 8-byte header) fail the handler with a typed `PerfError`, which the
 * Upgrader logs before resetting the stream.
 *
 * Throughput matters here (this is the benchmark workload): payload bytes are
 * written as batches of `CHUNK_SIZE` views of one zero-filled buffer (one
 * effect per batch, no per-chunk work) and counted on reads without copying.
 * Times are measured with Effect's `Clock`.
 *
 * §Security Considerations says perf SHOULD NOT be enabled by default; the
 * node presets (layers/Node.ts) serve it anyway because the command-line
 * program's contract (docs/ARCHITECTURE.md §7) wants every node to answer it.
 *
 * @since 0.1.0
 */
import { Clock, Context, Duration, Effect, Layer, Schema } from "effect"
import type * as Connection from "../../connection/Connection.ts"
import { Registrar } from "../../connection/Registrar.ts"
import * as Duplex from "../../core/Duplex.ts"
import * as Reader from "../../core/Reader.ts"
import { type DialError, type DialTarget, Host } from "../../host/Host.ts"

export const PROTOCOL = "/perf/1.0.0"

/** Size of one payload chunk written (a view of one shared zero buffer). */
export const CHUNK_SIZE = 64 * 1024
/** Chunks per write batch (one `write` call, one effect). */
export const CHUNKS_PER_BATCH = 16
/** Bytes per write batch. */
export const BATCH_SIZE = CHUNK_SIZE * CHUNKS_PER_BATCH

/** The largest request the u64 header can carry (2^64 - 1). */
export const MAX_U64 = 0xffff_ffff_ffff_ffffn

/**
 * - `InvalidSize`: a client-side size that is not a non-negative safe integer.
 * - `ShortHeader`: the stream ended before the 8-byte size (server side).
 * - `ShortDownload` / `LongDownload`: the server sent fewer / more bytes than asked for.
 * - `Timeout`: the client's deadline passed.
 * - `Stream`: the stream failed (reset, closed, I/O).
 */
export const PerfErrorReason = Schema.Literals([
  "InvalidSize",
  "ShortHeader",
  "ShortDownload",
  "LongDownload",
  "Timeout",
  "Stream"
])
export type PerfErrorReason = typeof PerfErrorReason.Type

export class PerfError extends Schema.TaggedError<PerfError>()("PerfError", {
  reason: PerfErrorReason,
  message: Schema.String
}) {}

export interface PerfOptions {
  /** Bytes to send (after the 8-byte header). A non-negative safe integer. */
  readonly uploadBytes: number
  /** Bytes to ask the server for. A non-negative safe integer. */
  readonly downloadBytes: number
  /** Deadline for the whole exchange (stream open to EOF); none by default. */
  readonly timeout?: Duration.Input
}

export interface PerfResult {
  /** Payload bytes uploaded (the 8-byte header not counted). */
  readonly uploadBytes: number
  /** Bytes received, exactly what was asked for. */
  readonly downloadBytes: number
  /** Stream open to the server's EOF (the spec's measurement), in seconds. */
  readonly seconds: number
  /** Stream open to our write side closed (the upload handed to the muxer), in seconds. */
  readonly uploadSeconds: number
  /** Write side closed to the server's EOF (the server's answer), in seconds. */
  readonly downloadSeconds: number
}

export class Perf extends Context.Service<Perf, {
  /**
   * Run one perf exchange with `target` (dialing it first if needed; the dial
   * is not part of the measured time).
   */
  readonly perf: (
    target: DialTarget,
    options: PerfOptions
  ) => Effect.Effect<PerfResult, PerfError | DialError | Connection.ConnectionError>
  /** What this node's perf server did so far. */
  readonly stats: () => PerfStats
}>()("effect-libp2p/Perf") {}

export interface PerfStats {
  /** Inbound perf streams being served right now. */
  readonly active: number
  /** Inbound perf streams served to the end. */
  readonly completed: number
  /** Inbound perf streams that failed (bad request, reset, closed connection). */
  readonly failed: number
  /** Upload bytes received on completed streams. */
  readonly uploadBytes: number
  /** Bytes sent back on completed streams. */
  readonly downloadBytes: number
}

/** What one served stream carried. */
export interface Served {
  /** Upload bytes received (after the header). */
  readonly uploadBytes: number
  /** Bytes sent back, as the client asked. */
  readonly downloadBytes: bigint
}

// ---------------------------------------------------------------------------
// wire pieces

const ZEROS = new Uint8Array(CHUNK_SIZE)
/** A full batch: the same chunk view repeated (its bytes never change, so sharing is safe). */
const FULL_BATCH: Duplex.Chunks = Array.from({ length: CHUNKS_PER_BATCH }, () => ZEROS)

/** A batch of exactly `n` payload bytes (n ≤ BATCH_SIZE), made of views of the shared chunk. */
const batchOf = (n: number): Duplex.Chunks => {
  if (n === BATCH_SIZE) return FULL_BATCH
  const out: Array<Uint8Array> = []
  while (n >= CHUNK_SIZE) {
    out.push(ZEROS)
    n -= CHUNK_SIZE
  }
  if (n > 0) out.push(ZEROS.subarray(0, n))
  return out
}

/** The request header: the download size as a big-endian u64. */
export const encodeHeader = (downloadBytes: bigint): Uint8Array => {
  const out = new Uint8Array(8)
  new DataView(out.buffer).setBigUint64(0, downloadBytes, false)
  return out
}

const decodeHeader = (bytes: Uint8Array): bigint =>
  new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, false)

const streamError = (e: { readonly message: string }) => new PerfError({ reason: "Stream", message: e.message })

/**
 * Write `count` payload bytes in batches, `first` (if any) in front of the first
 * batch so that it travels in the same write.
 */
const writePayload = (
  duplex: Duplex.Duplex,
  count: bigint,
  first?: Uint8Array
): Effect.Effect<void, Duplex.DuplexError> => {
  const big = BigInt(BATCH_SIZE)
  let left = count
  const loop: Effect.Effect<void, Duplex.DuplexError> = Effect.suspend(() => {
    if (left <= 0n) return Effect.void
    const n = left >= big ? BATCH_SIZE : Number(left)
    left -= BigInt(n)
    return Effect.flatMap(duplex.write(batchOf(n)), () => loop)
  })
  if (first === undefined) return loop
  if (count <= 0n) return duplex.write([first])
  const n = count >= big ? BATCH_SIZE : Number(count)
  left -= BigInt(n)
  return Effect.flatMap(duplex.write([first, ...batchOf(n)]), () => loop)
}

/**
 * Read until EOF, counting bytes (nothing copied); fails once more than `limit` arrived.
 * The bytes are discarded: when `read` gives a Duplex.OwnedReads duplex's chunks (a
 * Reader's `readSome` gives them too, or tails of them that `release` leaves alone), each
 * chunk is freed once counted (Duplex.release).
 */
const drain = (
  read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError>,
  limit: number,
  releases: boolean
): Effect.Effect<number, Duplex.DuplexError | PerfError> => {
  let total = 0
  const loop: Effect.Effect<number, Duplex.DuplexError | PerfError> = Effect.flatMap(read, (chunks) => {
    if (chunks.length === 0) return Effect.succeed(total)
    total += Duplex.byteLength(chunks)
    if (releases) Duplex.releaseAll(chunks)
    if (total > limit) {
      return Effect.fail(
        new PerfError({ reason: "LongDownload", message: `perf: more than the ${limit} bytes asked for arrived` })
      )
    }
    return loop
  })
  return loop
}

// ---------------------------------------------------------------------------
// server

/**
 * Serve one perf stream (spec §Protocol, server side): the u64, the upload
 * until EOF, then the download, then close our side.
 */
export const serve = (stream: Duplex.Duplex): Effect.Effect<Served, PerfError> =>
  Effect.gen(function*() {
    const reader = Reader.make(stream)
    const header = yield* reader.readExactly(8).pipe(
      Effect.mapError((e) =>
        e._tag === "ReaderError"
          ? new PerfError({ reason: "ShortHeader", message: "perf: the stream ended inside the 8-byte size" })
          : streamError(e)
      )
    )
    const size = decodeHeader(header)
    // step 2: read until EOF; step 3 only after it (never concurrently)
    const uploadBytes = yield* Effect.mapError(
      drain(reader.readSome, Number.POSITIVE_INFINITY, Duplex.ownsReads(stream)),
      (e) => e._tag === "PerfError" ? e : streamError(e)
    )
    yield* Effect.mapError(writePayload(stream, size), streamError)
    yield* stream.closeWrite
    return { uploadBytes, downloadBytes: size }
  })

// ---------------------------------------------------------------------------
// client

const checkSize = (name: string, n: number): Effect.Effect<void, PerfError> =>
  Number.isSafeInteger(n) && n >= 0
    ? Effect.void
    : Effect.fail(
      new PerfError({ reason: "InvalidSize", message: `perf: ${name} must be a non-negative safe integer, got ${n}` })
    )

/**
 * Run the client side (spec §Protocol, client side) on an open perf stream:
 * the u64 together with the first upload batch, the rest of the upload,
 * close our side, then read exactly `downloadBytes` until EOF. `startNanos`
 * is when the stream was opened.
 */
export const exchange = (
  stream: Duplex.Duplex,
  options: Pick<PerfOptions, "uploadBytes" | "downloadBytes">,
  startNanos: bigint
): Effect.Effect<PerfResult, PerfError> =>
  Effect.gen(function*() {
    yield* checkSize("uploadBytes", options.uploadBytes)
    yield* checkSize("downloadBytes", options.downloadBytes)
    const header = encodeHeader(BigInt(options.downloadBytes))
    yield* Effect.mapError(writePayload(stream, BigInt(options.uploadBytes), header), streamError)
    yield* stream.closeWrite
    const uploaded = yield* Clock.currentTimeNanos
    const got = yield* Effect.mapError(
      drain(stream.read, options.downloadBytes, Duplex.ownsReads(stream)),
      (e) => e._tag === "PerfError" ? e : streamError(e)
    )
    const end = yield* Clock.currentTimeNanos
    if (got !== options.downloadBytes) {
      return yield* new PerfError({
        reason: "ShortDownload",
        message: `perf: asked for ${options.downloadBytes} bytes, the stream ended after ${got}`
      })
    }
    return {
      uploadBytes: options.uploadBytes,
      downloadBytes: got,
      seconds: Number(end - startNanos) / 1e9,
      uploadSeconds: Number(uploaded - startNanos) / 1e9,
      downloadSeconds: Number(end - uploaded) / 1e9
    }
  })

/**
 * Run one perf exchange on `conn` itself (not on whichever connection to the
 * peer the Host would pick): e.g. on the direct connection a hole punch made,
 * while a relayed one to the same peer is still open.
 */
export const perfOn = (
  conn: Connection.Connection,
  options: PerfOptions
): Effect.Effect<PerfResult, PerfError | Connection.ConnectionError> =>
  Effect.gen(function*() {
    yield* checkSize("uploadBytes", options.uploadBytes)
    yield* checkSize("downloadBytes", options.downloadBytes)
    const run = Effect.scoped(Effect.gen(function*() {
      const start = yield* Clock.currentTimeNanos
      // Full multistream-select (wait for the answer before the first byte): with the
      // optimistic form, a short request's data and FIN can arrive together with the
      // proposal, and js-libp2p 3.x then marks the stream ended (`readableEnded`,
      // 'end') before multistream-select hands the bytes it read past the proposal
      // back to the stream, so a js handler that trusts that flag sees EOF with no
      // data (our js harness did until it learnt to wait a microtask). One round
      // trip is noise next to the transfer.
      const stream = yield* conn.newStream([PROTOCOL], { lazy: false })
      return yield* exchange(stream, options, start).pipe(Effect.tapError(() => stream.reset))
    }))
    if (options.timeout === undefined) return yield* run
    return yield* run.pipe(
      Effect.timeoutOrElse({
        duration: options.timeout,
        orElse: () =>
          Effect.fail(new PerfError({ reason: "Timeout", message: "perf: the exchange ran past its deadline" }))
      })
    )
  })

/** Every node serves perf: register the handler for the layer's lifetime and offer the client. */
export const layer = Layer.effect(
  Perf,
  Effect.gen(function*() {
    const registrar = yield* Registrar
    const host = yield* Host
    const stats = { active: 0, completed: 0, failed: 0, uploadBytes: 0, downloadBytes: 0 }
    yield* registrar.handle(PROTOCOL, (stream) =>
      Effect.suspend(() => {
        stats.active++
        return serve(stream).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              stats.active--
              if (exit._tag === "Success") {
                stats.completed++
                stats.uploadBytes += exit.value.uploadBytes
                stats.downloadBytes += Number(exit.value.downloadBytes)
              } else {
                stats.failed++
              }
            })
          ),
          Effect.asVoid
        )
      }))
    return Perf.of({
      perf: (target, options) =>
        Effect.gen(function*() {
          yield* checkSize("uploadBytes", options.uploadBytes)
          yield* checkSize("downloadBytes", options.downloadBytes)
          // `Host.newStream` would take the peer's first connection (a direct one before relayed ones)
          return yield* perfOn(yield* host.dial(target), options)
        }),
      stats: () => ({ ...stats })
    })
  })
)

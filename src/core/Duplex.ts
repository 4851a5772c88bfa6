/**
 * Duplex: the one byte-stream shape every layer of the stack speaks
 * (docs/ARCHITECTURE.md §3): a raw transport connection, a secured channel, and a
 * muxed stream are all a `Duplex`.
 *
 * - `read` pulls the next batch of chunks; an **empty batch means EOF** (the
 *   remote half-closed its write side). A batch is never empty otherwise.
 * - `write` writes a batch of chunks in one call (batches are the unit on the
 *   hot path: one socket write, one encryption pass, one muxer frame header
 *   for many chunks).
 * - `closeWrite` half-closes (the remote reads EOF); idempotent.
 * - `reset` aborts both directions at once; idempotent. Pending and later
 *   reads and writes fail with `DuplexError { reason: "Reset" }`.
 *
 * A Duplex is owned by the Scope it was made in: closing that scope releases
 * it (for sockets: closes them), also on interruption.
 *
 * Adapters: {@link toStream} / {@link fromStream} bridge to effect's `Stream`,
 * {@link prepend} hands bytes already read (e.g. by multistream-select) on to
 * the next layer, and {@link pair} is an in-memory connected pair for tests and
 * the memory transport.
 *
 * @since 0.1.0
 */
import { Cause, Effect, Queue, Schema, Scope, Stream } from "effect"

export const DuplexErrorReason = Schema.Literals(["Reset", "Closed", "Io", "Timeout"])
export type DuplexErrorReason = typeof DuplexErrorReason.Type

/**
 * Why a read or a write failed.
 * - `Reset`: the duplex (or its remote) was reset.
 * - `Closed`: a write after `closeWrite`, or after the owning scope closed.
 * - `Io`: the underlying transport failed (socket error).
 * - `Timeout`: an operation ran past its deadline.
 */
export class DuplexError extends Schema.TaggedError<DuplexError>()("DuplexError", {
  reason: DuplexErrorReason,
  message: Schema.String,
  /** The lower failure (the socket's system error, a negotiation's `MultistreamError`), if any. */
  cause: Schema.optional(Schema.Defect())
}) {}

/** A batch of chunks. Empty only as the EOF signal of {@link Duplex.read}. */
export type Chunks = ReadonlyArray<Uint8Array>

export interface Duplex {
  /** The next batch of bytes; `[]` (empty) when the remote has closed its write side. */
  readonly read: Effect.Effect<Chunks, DuplexError>
  /**
   * Write a batch in one call. Resolves once the batch is accepted (backpressure suspends).
   * `handOver`: the caller gives the chunks up (it made them and keeps no view of
   * them), so the duplex may {@link release} each once it has sent it; a duplex may
   * ignore it.
   */
  readonly write: (chunks: Chunks, handOver?: boolean) => Effect.Effect<void, DuplexError>
  /** Half-close: no more writes, the remote reads EOF. Idempotent. */
  readonly closeWrite: Effect.Effect<void>
  /** Abort both directions now. Idempotent. */
  readonly reset: Effect.Effect<void>
}

/**
 * An optional capability of a Duplex: reading without a fiber parked on
 * `read` (docs/ARCHITECTURE.md §3.2). A reader that holds a connection for
 * its whole life (a muxer session) polls, and when nothing is there asks to
 * be told, so that an idle connection keeps no suspended fiber. A duplex is
 * read one way or the other, never both at once.
 */
export interface Pollable {
  /**
   * What `read` would give now without waiting: a batch (`[]` at EOF), the
   * failure `read` would fail with, or `undefined` when `read` would wait.
   */
  readonly pollRead: () => Chunks | DuplexError | undefined
  /**
   * Call `notify` once, when `pollRead` may give something (bytes, EOF, a
   * failure). Replaces an earlier notice; `undefined` cancels it.
   */
  readonly onReadable: (notify: (() => void) | undefined) => void
}

/**
 * An optional capability of a Duplex: writing a batch without an Effect when
 * the duplex can take it now (a muxer's writer then needs no fiber for it).
 * `tryWrite` writes the whole batch and gives `true`; or writes nothing and
 * gives `false` while the duplex applies backpressure (use `write`, which
 * waits); or gives the failure `write` would fail with. An empty batch
 * writes nothing and tells which of the three a batch would get.
 */
export interface SyncWritable {
  /** `handOver` as for {@link Duplex.write}. */
  readonly tryWrite: (chunks: Chunks, handOver?: boolean) => boolean | DuplexError
}

/**
 * An optional capability of a Duplex: a chunk its reads give that is the whole
 * of its ArrayBuffer is referred to by nothing else (a socket's reads are such
 * chunks; Noise's plaintexts and a Yamux stream's payloads are such chunks or
 * views into a shared buffer, which {@link release} leaves alone), so a reader
 * that has consumed a chunk and keeps no view of it may free it at once with
 * {@link release}.
 */
export interface OwnedReads {
  readonly ownedReads: true
}

/** Whether `self`'s reads may be released by their reader ({@link OwnedReads}). */
export const ownsReads = (self: Duplex): boolean => (self as Partial<OwnedReads>).ownedReads === true

/** Chunks below this size are left to the garbage collector (see {@link release}). */
export const RELEASE_MIN = 8192

/**
 * Free the memory of a chunk nothing refers to any more, now, instead of at the
 * next full garbage collection: V8 frees an ArrayBuffer's memory when it is
 * detached (`transfer(0)`), and every view of it reads as empty after. Only a
 * chunk that is the whole of its ArrayBuffer, of at least {@link RELEASE_MIN}
 * bytes, is released; others (a slice of Node's Buffer pool, a view into
 * another buffer, a small one) are left as they are.
 *
 * Why: V8 collects ArrayBuffers in a minor collection only when the young
 * generation fills, and the transport path allocates little on the JS heap,
 * so the 64 KiB buffers of each socket read, each decryption and each
 * encryption pile up until the external-memory limit starts a full
 * mark-compact of the whole heap, one per ~64 MiB of them (README,
 * Performance). Whoever frees a chunk must own it: its own output, or a read
 * of an {@link OwnedReads} duplex that it has consumed.
 */
export const release = (chunk: Uint8Array): void => {
  const buffer = chunk.buffer
  if (
    chunk.byteLength >= RELEASE_MIN && chunk.byteOffset === 0 && buffer instanceof ArrayBuffer &&
    chunk.byteLength === buffer.byteLength
  ) buffer.transfer(0)
}

/** {@link release} every chunk of a batch. */
export const releaseAll = (chunks: Chunks): void => {
  for (let i = 0; i < chunks.length; i++) release(chunks[i]!)
}

/** `self` when it can be written synchronously, else `undefined`. */
export const syncWritable = (self: Duplex): (Duplex & SyncWritable) | undefined =>
  "tryWrite" in self ? self as Duplex & SyncWritable : undefined

/** `self` when it can be polled, else `undefined`. */
export const pollable = (self: Duplex): (Duplex & Pollable) | undefined =>
  "pollRead" in self && "onReadable" in self ? self as Duplex & Pollable : undefined

/** The EOF batch. */
export const EOF: Chunks = []

/** True when a batch returned by `read` is the EOF signal. */
export const isEOF = (chunks: Chunks): boolean => chunks.length === 0

/** Total byte length of a batch. */
export const byteLength = (chunks: Chunks): number => {
  let n = 0
  for (let i = 0; i < chunks.length; i++) n += chunks[i]!.byteLength
  return n
}

/** Concatenate a batch into one buffer (copies unless the batch has one chunk). */
export const concat = (chunks: Chunks): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(byteLength(chunks))
  let at = 0
  for (let i = 0; i < chunks.length; i++) {
    out.set(chunks[i]!, at)
    at += chunks[i]!.byteLength
  }
  return out
}

/**
 * Resets and closes are routine (every stream and connection ends with one,
 * mostly unobserved), and capturing a JS stack through the Effect runtime's
 * deep call stacks is most of an error's cost (measured: 9.5 µs with a stack,
 * 1.5 µs without). Their stack would only show the runtime's frames, so these
 * two are built without one.
 */
const withoutStack = (reason: "Reset" | "Closed", message: string): DuplexError => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  const error = new DuplexError({ reason, message })
  Error.stackTraceLimit = limit
  return error
}

export const resetError = (message = "duplex reset") => withoutStack("Reset", message)
export const closedError = (message = "duplex closed for writing") => withoutStack("Closed", message)

/**
 * A Duplex whose first reads return `leftover` (bytes a previous layer read
 * past its own message), then continue with `self`.
 */
export const prepend = (self: Duplex, leftover: Chunks): Duplex => {
  if (leftover.length === 0) return self
  let pending: Chunks | undefined = leftover
  const wrapped: Duplex = {
    read: Effect.suspend(() => {
      if (pending !== undefined) {
        const out = pending
        pending = undefined
        return Effect.succeed(out)
      }
      return self.read
    }),
    write: self.write,
    closeWrite: self.closeWrite,
    reset: self.reset
  }
  // the leftover is what a Reader of `self` left (`Reader.rest`): untouched chunks of
  // `self`'s reads, and the tail of a consumed one as a view that `release` leaves alone
  return ownsReads(self) ? withOwnedReads(wrapped) : wrapped
}

/** `self` (a new wrapper whose reads are an {@link OwnedReads} duplex's) declaring {@link OwnedReads} too. */
export const withOwnedReads = <D extends object>(self: D): D & OwnedReads =>
  Object.assign(self, { ownedReads: true as const })

/** The bytes a Duplex reads, as a Stream (ends at EOF, fails with the read error). */
export const toStream = (self: Duplex): Stream.Stream<Uint8Array, DuplexError> =>
  Stream.fromPull(Effect.succeed(
    Effect.flatMap(self.read, (chunks) =>
      chunks.length === 0
        ? Cause.done()
        : Effect.succeed(chunks as readonly [Uint8Array, ...Array<Uint8Array>]))
  ))

/**
 * Write every batch of a Stream to the Duplex, then half-close it.
 */
export const fromStream = <E, R>(
  self: Duplex,
  stream: Stream.Stream<Uint8Array, E, R>
): Effect.Effect<void, E | DuplexError, R> =>
  Stream.runForEachArray(stream, (chunks) => self.write(chunks)).pipe(
    Effect.andThen(self.closeWrite)
  )

/** Read until EOF, collecting every chunk (bounded by `maxBytes`, beyond which it fails with `Io`). */
export const readAll = (self: Duplex, maxBytes: number): Effect.Effect<Uint8Array, DuplexError> =>
  Effect.gen(function*() {
    const all: Array<Uint8Array> = []
    let total = 0
    while (true) {
      const chunks = yield* self.read
      if (chunks.length === 0) return concat(all)
      for (const c of chunks) {
        total += c.byteLength
        if (total > maxBytes) {
          return yield* new DuplexError({ reason: "Io", message: `readAll: more than ${maxBytes} bytes` })
        }
        all.push(c)
      }
    }
  })

interface Pipe {
  readonly queue: Queue.Queue<Uint8Array, DuplexError | Cause.Done>
}

const makePipe = (capacity: number): Effect.Effect<Pipe> =>
  Effect.map(Queue.bounded<Uint8Array, DuplexError | Cause.Done>(capacity), (queue) => ({ queue }))

const pipeRead = (pipe: Pipe): Effect.Effect<Chunks, DuplexError> =>
  Queue.takeAll(pipe.queue).pipe(
    Effect.catchIf(Cause.isDone, () => Effect.succeed(EOF)),
    Effect.catch((e) => Effect.fail(e as DuplexError))
  )

/**
 * An in-memory connected pair: what `a` writes, `b` reads, and back.
 * Each direction holds at most `capacity` chunks before writes suspend.
 * Closing the scope resets both ends.
 */
export const pair = (options?: { readonly capacity?: number }): Effect.Effect<
  readonly [Duplex, Duplex],
  never,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const capacity = options?.capacity ?? 64
    const ab = yield* makePipe(capacity)
    const ba = yield* makePipe(capacity)
    const end = (incoming: Pipe, outgoing: Pipe): Duplex => {
      let writeClosed = false
      const reset = Effect.suspend(() => {
        writeClosed = true
        const err = resetError()
        return Effect.all([Queue.fail(outgoing.queue, err), Queue.fail(incoming.queue, err)], { discard: true })
      })
      return {
        read: pipeRead(incoming),
        write: (chunks) =>
          Effect.suspend(() => {
            if (writeClosed) return Effect.fail(closedError())
            return Queue.offerAll(outgoing.queue, chunks).pipe(
              Effect.flatMap((rest) => rest.length > 0 ? Effect.fail(resetError("remote reset")) : Effect.void)
            )
          }),
        closeWrite: Effect.suspend(() => {
          if (writeClosed) return Effect.void
          writeClosed = true
          return Effect.asVoid(Queue.end(outgoing.queue))
        }),
        reset
      }
    }
    const a = end(ba, ab)
    const b = end(ab, ba)
    yield* Effect.addFinalizer(() => Effect.andThen(a.reset, b.reset))
    return [a, b] as const
  })

/**
 * The mplex session machinery (libp2p mplex spec,
 * https://github.com/libp2p/specs/blob/master/mplex/README.md): stream
 * state, the reader and writer fibers, and the limits mplex itself lacks.
 *
 * Design (the same shape as the yamux session)
 * - One **reader fiber** pulls batches from the Duplex and runs a synchronous
 *   frame parser over them (§Message format). Message data is handed to the
 *   streams as subarrays of the received chunks (never copied); only a header
 *   split across two chunks is copied (at most 18 bytes). Wake-ups of waiting
 *   fibers are collected while a batch is parsed and fired once it is done.
 * - One **writer fiber** owns the Duplex's write side. Streams and the reader
 *   push encoded frames (a header chunk cut from a shared slab, then the data
 *   chunks as they are, split with `subarray` at frame boundaries) into one
 *   outbox; each writer iteration takes everything queued and writes it as
 *   one batch. Stream writes wait while more than `writeHighWater` bytes are
 *   queued (mplex has no flow control: this is the only backpressure, and it
 *   comes from the Duplex).
 * - Stream ids (§Opening a new stream): the session initiator (outbound)
 *   allocates odd ids, the receiver even ids (0, 2, …). Ids are scoped by
 *   initiator: a frame's flag says whether its sender is the stream's
 *   initiator or receiver, so the same number can name one stream we opened
 *   and one the peer opened (js-libp2p and go-mplex both count from 0).
 * - §Closing a stream: Close* half-closes; reads return the data sent
 *   before it, then EOF. §Resetting a stream: Reset* fails current and later
 *   reads and writes with `DuplexError { reason: "Reset" }` and drops
 *   queued data.
 * - §Implementation notes (no back pressure): when a message would take a
 *   stream's unread data past `maxStreamBuffer`, the reader stops parsing
 *   (option 1 of the spec: the connection blocks, and the Duplex pushes back
 *   on the sender) until that stream is read or reset, for at most
 *   `slowReaderTimeout`; then the stream is RESET (option 2) and the message
 *   dropped. go-mplex does the same (5 s); js-libp2p resets at once (4 MB).
 * - Inbound streams beyond `maxInboundStreams` are refused with Reset.
 *   Frames for unknown streams are ignored (frames for streams closed
 *   recently silently, others counted: more than `maxUnknownFramesPerSecond`
 *   in one second is a protocol error). Control frames queued in answer to
 *   the peer (refusals, resets) beyond 1024 while the writer is busy end the
 *   session.
 * - Session end: mplex has no GoAway; closing (or the remote's EOF, or a
 *   protocol error) resets every open stream — a Reset frame each — then
 *   half-closes the Duplex.
 *
 * Everything mutable lives in this closure and is touched only from fibers of
 * one JS thread; no locks are needed.
 *
 * @internal
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Result, Scope } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import * as Chunks from "../internal/chunks.ts"
import * as Wakeups from "../internal/wakeups.ts"
import { type Direction, type MuxedSession, type MuxedStream, MuxerError } from "../StreamMuxer.ts"
import * as Frame from "./frame.ts"

export interface Config {
  /** Largest message we accept; larger is a protocol error. */
  readonly maxMessageSize: number
  /** Largest data frame we send. */
  readonly maxFrameSize: number
  /** Unread bytes one stream may hold; a message beyond waits for the reader, then resets the stream. */
  readonly maxStreamBuffer: number
  /** How long reading the connection may wait for a full stream to be read before resetting it. */
  readonly slowReaderTimeout: Duration.Duration
  readonly maxInboundStreams: number
  readonly maxOutboundStreams: number
  /** Frames for never-seen streams tolerated per second. */
  readonly maxUnknownFramesPerSecond: number
  readonly closeTimeout: Duration.Duration
  readonly writeHighWater: number
}

export type MplexSession = MuxedSession

type Resume = Wakeups.Resume

/** Control frames queued in answer to the peer beyond this many (while the writer is busy) end the session. */
const MAX_PENDING_CONTROL = 1024
/** Closed stream ids remembered (both initiators together) so that late frames for them are ignored without counting. */
const RECENTLY_CLOSED = 2048
/** Headers are cut from slabs of this size (never reused once handed to the writer). */
const SLAB_SIZE = 4096

const protocolError = (message: string) => new MuxerError({ reason: "ProtocolError", message })
const textEncoder = new TextEncoder()

interface Stream {
  readonly id: number
  /** We opened it (we are the stream initiator). */
  readonly ours: boolean
  readonly handle: MuxedStream
  // send side
  writeClosed: boolean
  writeErr: Duplex.DuplexError | undefined
  writeWaiter: Resume | undefined
  // receive side
  buffer: Array<Uint8Array>
  buffered: number
  remoteFin: boolean
  readErr: Duplex.DuplexError | undefined
  readWaiter: Resume | undefined
  // bookkeeping
  registered: boolean
  queued: boolean
  /** data bytes received and sent (for the per-protocol byte metrics) */
  bytesRead: number
  bytesWritten: number
}

/** Flags we send on a stream: the initiator's or the receiver's variant. */
const messageFlag = (s: Stream) => s.ours ? Frame.MESSAGE_INITIATOR : Frame.MESSAGE_RECEIVER
const closeFlag = (s: Stream) => s.ours ? Frame.CLOSE_INITIATOR : Frame.CLOSE_RECEIVER
const resetFlag = (s: Stream) => s.ours ? Frame.RESET_INITIATOR : Frame.RESET_RECEIVER

export const make = (
  duplex: Duplex.Duplex,
  direction: Direction,
  config: Config
): Effect.Effect<MplexSession, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sessionScope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const closedDeferred = yield* Deferred.make<void, MuxerError>()
    const wakeups = new Wakeups.Wakeups()

    // ---- session state -------------------------------------------------
    /** Streams we opened, and streams the peer opened, by id. */
    const local = new Map<number, Stream>()
    const remote = new Map<number, Stream>()
    let nextId = direction === "outbound" ? 1 : 0
    const recentlyClosed = new Set<number>()
    const recentlyClosedOrder: Array<number> = []
    const closedKey = (id: number, ours: boolean): number => id * 2 + (ours ? 0 : 1)
    let unknownWindowStart = 0
    let unknownCount = 0
    const acceptQueue: Array<Stream> = []
    const acceptWaiters: Array<Resume> = []

    let open = true
    let endError: MuxerError | undefined
    let finishing = false

    let outbox: Array<Uint8Array> = []
    let outboxBytes = 0
    let pendingControl = 0
    let writerWaiter: Resume | undefined
    const drainWaiters: Array<Resume> = []

    // reader state (frame handling below)
    const headerBuf = new Uint8Array(Frame.MAX_HEADER_LENGTH)
    let headerFill = 0
    let payloadRemaining = 0
    let payloadTarget: Stream | undefined
    /** A message header whose data would overflow this stream's buffer: reading waits for it. */
    let stallStream: Stream | undefined
    let stallWaiter: Resume | undefined
    let resumeIndex = 0
    let resumeAt = 0
    const wakeStall = (s: Stream | undefined): void => {
      if (stallStream === undefined || (s !== undefined && stallStream !== s)) return
      const w = stallWaiter
      stallWaiter = undefined
      wakeups.wake(w)
    }

    // ---- outbox --------------------------------------------------------
    let slab = new Uint8Array(SLAB_SIZE)
    let slabAt = 0
    const header = (id: number, flag: number, length: number): Uint8Array => {
      if (SLAB_SIZE - slabAt < Frame.MAX_HEADER_LENGTH) {
        slab = new Uint8Array(SLAB_SIZE)
        slabAt = 0
      }
      const n = Frame.encodeHeaderInto(slab, slabAt, id, flag, length)
      const out = slab.subarray(slabAt, slabAt + n)
      slabAt += n
      return out
    }
    const wakeWriter = (): void => {
      const w = writerWaiter
      writerWaiter = undefined
      wakeups.wake(w)
    }
    const pushControl = (id: number, flag: number): void => {
      outbox.push(header(id, flag, 0))
      wakeWriter()
    }
    /** A control frame the peer made us send: bounded while the writer is busy. */
    const pushAnswer = (id: number, flag: number): MuxerError | undefined => {
      pushControl(id, flag)
      if (++pendingControl > MAX_PENDING_CONTROL) {
        return new MuxerError({
          reason: "TooManyStreams",
          message: "mplex: the peer keeps provoking resets faster than they can be sent"
        })
      }
      return undefined
    }

    // ---- termination ---------------------------------------------------
    const sessionClosedError = () => Duplex.resetError("mplex session closed")
    const terminate = (error: MuxerError | undefined, sendResets: boolean): void =>
      wakeups.atomically(() => {
        if (!open) return
        open = false
        endError = error
        for (const map of [local, remote]) {
          for (const s of map.values()) {
            s.registered = false
            if (sendResets) outbox.push(header(s.id, resetFlag(s), 0))
            const err = sessionClosedError()
            if (s.writeErr === undefined && !s.writeClosed) s.writeErr = err
            // a stream whose remote side finished keeps its unread data readable
            if (!s.remoteFin && s.readErr === undefined) s.readErr = err
            wakeStream(s)
          }
          map.clear()
        }
        acceptQueue.length = 0
        wakeStall(undefined)
        wakeups.wakeAll(acceptWaiters)
        wakeups.wakeAll(drainWaiters)
        finishing = true
        wakeWriter()
        Deferred.doneUnsafe(closedDeferred, error === undefined ? Exit.void : Exit.fail(error))
      })
    const endedError = (): MuxerError =>
      endError ?? new MuxerError({ reason: "Closed", message: "mplex session closed" })

    // ---- streams -------------------------------------------------------
    const wakeStream = (s: Stream): void => {
      const r = s.readWaiter
      s.readWaiter = undefined
      wakeups.wake(r)
      const w = s.writeWaiter
      s.writeWaiter = undefined
      wakeups.wake(w)
    }

    const remember = (key: number): void => {
      if (recentlyClosed.has(key)) return
      recentlyClosed.add(key)
      recentlyClosedOrder.push(key)
      if (recentlyClosedOrder.length > RECENTLY_CLOSED) recentlyClosed.delete(recentlyClosedOrder.shift()!)
    }

    const unregister = (s: Stream): void => {
      if (!s.registered) return
      s.registered = false
      ;(s.ours ? local : remote).delete(s.id)
      remember(closedKey(s.id, s.ours))
      if (s.queued) {
        // reset before anyone accepted it: nobody will
        s.queued = false
        const i = acceptQueue.indexOf(s)
        if (i >= 0) acceptQueue.splice(i, 1)
      }
    }

    const maybeFinished = (s: Stream): void => {
      if (s.remoteFin && s.writeClosed) unregister(s)
    }

    const resetStream = (s: Stream, err: Duplex.DuplexError, sendReset: boolean): void => {
      if (s.readErr === undefined) s.readErr = err
      if (s.writeErr === undefined) s.writeErr = err
      s.buffer = []
      s.buffered = 0
      if (sendReset && s.registered && open) pushControl(s.id, resetFlag(s))
      unregister(s)
      wakeStream(s)
      wakeStall(s)
    }

    const makeStream = (id: number, ours: boolean): Stream => {
      const s: Stream = {
        id,
        ours,
        handle: undefined as unknown as MuxedStream,
        writeClosed: false,
        writeErr: undefined,
        writeWaiter: undefined,
        buffer: [],
        buffered: 0,
        remoteFin: false,
        readErr: undefined,
        readWaiter: undefined,
        registered: true,
        queued: false,
        bytesRead: 0,
        bytesWritten: 0
      }

      const waitRead = Wakeups.waitOn((r) => {
        s.readWaiter = r
      }, () => {
        s.readWaiter = undefined
      })
      // waiting for the session outbox to drain; a reset of the stream wakes it too
      const waitDrain = Wakeups.waitOn((r) => {
        drainWaiters.push(r)
        s.writeWaiter = r
      }, (r) => {
        Wakeups.removeFrom(drainWaiters, r)
        if (s.writeWaiter === r) s.writeWaiter = undefined
      })

      const read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError> = Effect.suspend(() => {
        if (s.readErr !== undefined) return Effect.fail(s.readErr)
        if (s.buffered > 0) {
          const out = s.buffer
          s.buffer = []
          s.buffered = 0
          wakeups.atomically(() => wakeStall(s))
          return Effect.succeed(out)
        }
        if (s.remoteFin) return Effect.succeed(Duplex.EOF)
        return Effect.flatMap(waitRead, () => read)
      })

      const write = (chunks: Duplex.Chunks): Effect.Effect<void, Duplex.DuplexError> => {
        const cursor = new Chunks.Cursor(chunks)
        let remaining = Duplex.byteLength(chunks)
        const loop: Effect.Effect<void, Duplex.DuplexError> = Effect.suspend(() => {
          if (s.writeErr !== undefined) return Effect.fail(s.writeErr)
          if (s.writeClosed) return Effect.fail(Duplex.closedError("mplex stream closed for writing"))
          if (remaining === 0) return Effect.void
          if (outboxBytes >= config.writeHighWater) return Effect.flatMap(waitDrain, () => loop)
          wakeups.atomically(emit)
          return loop
        })
        // emit frames of at most maxFrameSize until the outbox is full or all is queued
        const emit = (): void => {
          const flag = messageFlag(s)
          while (remaining > 0 && outboxBytes < config.writeHighWater) {
            const n = Math.min(remaining, config.maxFrameSize)
            outbox.push(header(s.id, flag, n))
            cursor.take(n, outbox)
            remaining -= n
            s.bytesWritten += n
            outboxBytes += n
          }
          wakeWriter()
        }
        return loop
      }

      const closeWrite: Effect.Effect<void> = Effect.sync(() =>
        wakeups.atomically(() => {
          if (s.writeClosed || s.writeErr !== undefined) return
          s.writeClosed = true
          const w = s.writeWaiter
          s.writeWaiter = undefined
          if (s.registered && open) {
            pushControl(s.id, closeFlag(s))
            maybeFinished(s)
          }
          wakeups.wake(w)
        })
      )

      const reset: Effect.Effect<void> = Effect.sync(() => {
        if (s.readErr !== undefined && s.writeErr !== undefined) return
        wakeups.atomically(() => resetStream(s, Duplex.resetError("mplex stream reset"), true))
      })

      ;(s as { handle: MuxedStream }).handle = {
        id: String(id),
        direction: ours ? "outbound" : "inbound",
        read,
        write,
        closeWrite,
        reset,
        bytes: () => ({ read: s.bytesRead, written: s.bytesWritten })
      }
      ;(ours ? local : remote).set(id, s)
      return s
    }

    /** The stream's owning scope closed: reset it unless it finished both ways. */
    const releaseStream = (s: Stream): Effect.Effect<void> =>
      Effect.sync(() =>
        wakeups.atomically(() => {
          const writeDone = s.writeClosed || s.writeErr !== undefined
          const readDone = s.remoteFin || s.readErr !== undefined
          if (writeDone && readDone) {
            unregister(s)
            return
          }
          resetStream(s, Duplex.resetError("mplex stream released by its scope"), true)
        })
      )

    const remoteFinished = (s: Stream): void => {
      if (s.remoteFin) return
      s.remoteFin = true
      const r = s.readWaiter
      s.readWaiter = undefined
      wakeups.wake(r)
      maybeFinished(s)
    }

    /** The peer broke one stream's rules: reset that stream, the session carries on. */
    const resetByUs = (s: Stream, message: string): MuxerError | undefined => {
      const err = Duplex.resetError(message)
      if (s.readErr === undefined) s.readErr = err
      if (s.writeErr === undefined) s.writeErr = err
      s.buffer = []
      s.buffered = 0
      unregister(s)
      wakeStream(s)
      return pushAnswer(s.id, resetFlag(s))
    }

    const handleNewStream = (h: Frame.DecodedHeader): MuxerError | undefined => {
      // the stream name is for interfaces only (§Opening a new stream): skipped
      payloadRemaining = h.length
      payloadTarget = undefined
      if (remote.has(h.id)) return protocolError(`mplex: NewStream reuses the open stream id ${h.id}`)
      const key = closedKey(h.id, false)
      if (recentlyClosed.has(key)) {
        // reuse after close is "undefined behaviour" in the spec; we take it as a new stream
        recentlyClosed.delete(key)
        const i = recentlyClosedOrder.indexOf(key)
        if (i >= 0) recentlyClosedOrder.splice(i, 1)
      }
      if (remote.size >= config.maxInboundStreams) {
        remember(key)
        return pushAnswer(h.id, Frame.RESET_RECEIVER)
      }
      const s = makeStream(h.id, false)
      s.queued = true
      acceptQueue.push(s)
      wakeups.wake(acceptWaiters.shift())
      return undefined
    }

    const unknownStream = (h: Frame.DecodedHeader, ours: boolean): MuxerError | undefined => {
      if (recentlyClosed.has(closedKey(h.id, ours))) return undefined
      const now = clock.currentTimeMillisUnsafe()
      if (now - unknownWindowStart >= 1000) {
        unknownWindowStart = now
        unknownCount = 0
      }
      if (++unknownCount > config.maxUnknownFramesPerSecond) {
        return protocolError(
          `mplex: more than ${config.maxUnknownFramesPerSecond} frames per second for streams that do not exist`
        )
      }
      return undefined
    }

    const handleHeader = (h: Frame.DecodedHeader): MuxerError | undefined => {
      if (h.flag === Frame.NEW_STREAM) return handleNewStream(h)
      payloadRemaining = h.length
      payloadTarget = undefined
      // odd flags come from the stream's receiver: a stream we opened
      const ours = (h.flag & 1) === 1
      const s = (ours ? local : remote).get(h.id)
      if (s === undefined) return unknownStream(h, ours)
      switch (h.flag) {
        case Frame.MESSAGE_RECEIVER:
        case Frame.MESSAGE_INITIATOR: {
          if (h.length === 0) return undefined
          if (s.remoteFin) return resetByUs(s, `mplex: stream ${s.id} reset: the remote sent data after closing it`)
          if (s.buffered + h.length > config.maxStreamBuffer) {
            // §Implementation notes: block the connection until the stream is read (bounded), then reset
            stallStream = s
            return undefined
          }
          payloadTarget = s
          return undefined
        }
        case Frame.CLOSE_RECEIVER:
        case Frame.CLOSE_INITIATOR:
          remoteFinished(s)
          return undefined
        default:
          resetStream(s, Duplex.resetError("mplex stream reset by the remote"), false)
          return undefined
      }
    }

    const deliver = (s: Stream, bytes: Uint8Array): void => {
      s.bytesRead += bytes.byteLength
      if (s.readErr !== undefined) return
      s.buffer.push(bytes)
      s.buffered += bytes.byteLength
      const r = s.readWaiter
      s.readWaiter = undefined
      wakeups.wake(r)
    }

    /**
     * Parse `chunk` from `start`; returns an error that ends the session. When
     * a message header stalls on a full stream, stops with `resumeAt` set to
     * the offset after that header.
     */
    const processChunk = (chunk: Uint8Array, start: number): MuxerError | undefined => {
      let off = start
      const len = chunk.byteLength
      while (off < len && open) {
        if (payloadRemaining > 0) {
          const n = Math.min(payloadRemaining, len - off)
          if (payloadTarget !== undefined) {
            deliver(payloadTarget, off === 0 && n === len ? chunk : chunk.subarray(off, off + n))
          }
          off += n
          payloadRemaining -= n
          if (payloadRemaining === 0) payloadTarget = undefined
          continue
        }
        let h: Frame.DecodedHeader
        if (headerFill === 0) {
          const r = Frame.decodeHeader(chunk, off, config.maxMessageSize)
          if (Result.isFailure(r)) return protocolError(r.failure.message)
          if (r.success === undefined) {
            // a header split across chunks (fewer than 18 bytes are left)
            headerBuf.set(chunk.subarray(off), 0)
            headerFill = len - off
            return undefined
          }
          h = r.success
          off += h.bytes
        } else {
          const n = Math.min(Frame.MAX_HEADER_LENGTH - headerFill, len - off)
          headerBuf.set(chunk.subarray(off, off + n), headerFill)
          const r = Frame.decodeHeader(headerBuf, 0, config.maxMessageSize, headerFill + n)
          if (Result.isFailure(r)) return protocolError(r.failure.message)
          if (r.success === undefined) {
            headerFill += n
            return undefined
          }
          h = r.success
          off += h.bytes - headerFill
          headerFill = 0
        }
        const err = handleHeader(h)
        if (err !== undefined) return err
        if (stallStream !== undefined) {
          resumeAt = off
          return undefined
        }
      }
      return undefined
    }

    /** Parse `batch` from chunk `index`, offset `offset`; on a stall, `resumeIndex`/`resumeAt` say where to go on. */
    const processBatch = (batch: Duplex.Chunks, index: number, offset: number): MuxerError | undefined => {
      for (let i = index; i < batch.length; i++) {
        const err = processChunk(batch[i]!, i === index ? offset : 0)
        if (err !== undefined) return err
        if (!open) return undefined
        if (stallStream !== undefined) {
          resumeIndex = i
          return undefined
        }
      }
      return undefined
    }

    /** The stall is over: deliver the message if it fits now, else reset the stream (it stayed full). */
    const settleStall = (): MuxerError | undefined => {
      const s = stallStream!
      stallStream = undefined
      if (!s.registered || s.readErr !== undefined) return undefined // gone meanwhile: skip the message
      if (s.buffered + payloadRemaining <= config.maxStreamBuffer) {
        if (payloadRemaining > 0) payloadTarget = s
        return undefined
      }
      return resetByUs(
        s,
        `mplex: stream ${s.id} reset: more than ${config.maxStreamBuffer} unread bytes for ${
          Duration.format(config.slowReaderTimeout)
        } (no flow control in mplex)`
      )
    }

    const waitStall = Wakeups.waitOn((r) => {
      stallWaiter = r
    }, () => {
      stallWaiter = undefined
    })

    const readerLoop: Effect.Effect<void> = Effect.gen(function*() {
      let batch: Duplex.Chunks | undefined
      let index = 0
      let offset = 0
      while (open) {
        if (batch === undefined) {
          const result = yield* Effect.result(duplex.read)
          if (!open) return
          if (Result.isFailure(result)) {
            terminate(
              new MuxerError({
                reason: "Io",
                message: `mplex: read failed: ${result.failure.message}`,
                cause: result.failure
              }),
              true
            )
            return
          }
          if (result.success.length === 0) {
            terminate(
              headerFill > 0 || payloadRemaining > 0
                ? protocolError("mplex: connection ended inside a frame")
                : undefined,
              true
            )
            return
          }
          batch = result.success
          index = 0
          offset = 0
        }
        const current = batch
        const err = wakeups.atomically(() => {
          const e = processBatch(current, index, offset)
          if (e !== undefined) terminate(e, true)
          return e
        })
        if (err !== undefined || !open) return
        if (stallStream === undefined) {
          batch = undefined
          continue
        }
        // stalled on a full stream: read nothing more until it is read, reset, or the timeout passes
        index = resumeIndex
        offset = resumeAt
        if (Duration.isPositive(config.slowReaderTimeout)) {
          yield* Effect.timeoutOption(waitStall, config.slowReaderTimeout)
        }
        if (!open) return
        const settled = wakeups.atomically(() => {
          const e = settleStall()
          if (e !== undefined) terminate(e, true)
          return e
        })
        if (settled !== undefined) return
      }
    })

    // ---- writer fiber ----------------------------------------------------
    const waitWriter = Wakeups.waitOn((r) => {
      writerWaiter = r
    }, () => {
      writerWaiter = undefined
    })

    const writerLoop: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        if (outbox.length === 0) {
          if (finishing) break
          yield* waitWriter
          continue
        }
        const batch = outbox
        outbox = []
        outboxBytes = 0
        pendingControl = 0
        wakeups.wakeAll(drainWaiters)
        const result = yield* Effect.result(duplex.write(batch))
        if (Result.isFailure(result)) {
          outbox = []
          terminate(
            new MuxerError({
              reason: "Io",
              message: `mplex: write failed: ${result.failure.message}`,
              cause: result.failure
            }),
            false
          )
          return
        }
      }
      yield* duplex.closeWrite
    })

    // ---- public API --------------------------------------------------------
    const acquire = (s: Stream, scope: Scope.Scope): Effect.Effect<MuxedStream> =>
      Effect.as(Scope.addFinalizer(scope, releaseStream(s)), s.handle)

    const openStream: Effect.Effect<MuxedStream, MuxerError, Scope.Scope> = Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.uninterruptible(Effect.suspend(() => {
          if (!open) return Effect.fail(endedError())
          if (local.size >= config.maxOutboundStreams) {
            return Effect.fail(
              new MuxerError({
                reason: "TooManyStreams",
                message: `mplex: ${local.size} outbound streams open (limit ${config.maxOutboundStreams})`
              })
            )
          }
          if (nextId > Frame.MAX_STREAM_ID) {
            return Effect.fail(new MuxerError({ reason: "TooManyStreams", message: "mplex: stream ids exhausted" }))
          }
          const id = nextId
          nextId += 2
          const s = makeStream(id, true)
          // §Opening a new stream: NewStream with the stream's name (its id in decimal, as go-mplex does)
          const name = textEncoder.encode(String(id))
          wakeups.atomically(() => {
            outbox.push(header(id, Frame.NEW_STREAM, name.byteLength), name)
            wakeWriter()
          })
          return acquire(s, scope)
        }))
    )

    const accept: Effect.Effect<MuxedStream, MuxerError, Scope.Scope> = Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.uninterruptibleMask((restore) => {
          const loop: Effect.Effect<MuxedStream, MuxerError> = Effect.suspend(() => {
            const s = acceptQueue.shift()
            if (s !== undefined) {
              s.queued = false
              return acquire(s, scope)
            }
            if (!open) return Effect.fail(endedError())
            return Effect.flatMap(restore(Wakeups.waitIn(acceptWaiters)), () => loop)
          })
          return loop
        })
    )

    let writerFiber: Fiber.Fiber<void> | undefined
    const shutdown: Effect.Effect<void> = Effect.suspend(() => {
      terminate(undefined, true)
      const w = writerFiber
      if (w === undefined) return Effect.void
      return Fiber.await(w).pipe(
        Effect.timeoutOption(config.closeTimeout),
        Effect.flatMap((r) => r._tag === "None" ? Effect.andThen(Fiber.interrupt(w), duplex.reset) : Effect.void)
      )
    })

    // fibers live in the session's scope; the finalizer added after them runs first
    yield* Effect.forkIn(readerLoop, sessionScope)
    writerFiber = yield* Effect.forkIn(writerLoop, sessionScope)
    yield* Scope.addFinalizer(sessionScope, shutdown)

    return {
      open: openStream,
      accept,
      whenAcceptable: (notify) => {
        if (!open || acceptQueue.length > 0) return notify()
        acceptWaiters.push(notify)
      },
      close: shutdown,
      closed: Deferred.await(closedDeferred),
      streamCount: () => local.size + remote.size
    }
  })

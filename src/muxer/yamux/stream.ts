/**
 * A yamux stream (libp2p yamux spec §Opening / §Closing a stream, §Flow
 * Control): its state record and the `MuxedStream` handle the application
 * uses. The handle's `read` takes everything buffered (zero-copy subarrays of
 * the received chunks) and credits the receive window; `write` cuts the data
 * into frames of at most `maxFrameSize` within the peer's window, queues them
 * on the session's outbox and waits while the window is exhausted or the
 * outbox is above `writeHighWater`; `closeWrite` sends FIN, `reset` RST.
 *
 * Everything else — the frames the reader hands to a stream, window credit,
 * ACK bookkeeping, unregistering — is the session's (`./session.ts`), which
 * this module sees only through {@link Session}, so the two do not import each
 * other at run time.
 *
 * @internal
 */
import { Effect } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import * as Chunks from "../internal/chunks.ts"
import * as Wakeups from "../internal/wakeups.ts"
import type { MuxedStream } from "../StreamMuxer.ts"
import * as Frame from "./frame.ts"

/** One stream's state; the session owns it (in its stream map while `registered`). */
export interface Stream {
  readonly id: number
  readonly inbound: boolean
  readonly handle: MuxedStream
  // send side
  sendWindow: number
  writeClosed: boolean
  writeErr: Duplex.DuplexError | undefined
  writeWaiter: Wakeups.Resume | undefined
  // receive side
  recvWindow: number
  /** Bytes of `recvWindow` beyond the initial window, reserved with the session's memory budget. */
  grown: number
  recvRemaining: number
  inFlight: number
  epochStart: number
  buffer: Array<Uint8Array>
  buffered: number
  remoteFin: boolean
  readErr: Duplex.DuplexError | undefined
  readWaiter: Wakeups.Resume | undefined
  // bookkeeping
  needAck: boolean
  ackedByPeer: boolean
  registered: boolean
  /** data bytes received and sent (for the per-protocol byte metrics) */
  bytesRead: number
  bytesWritten: number
}

/** What a stream's handle uses of its session (implemented by the session object). */
export interface Session {
  /** the session's configuration (`./session.ts` `Config`), the parts a stream reads */
  readonly config: {
    readonly initialWindow: number
    readonly maxFrameSize: number
    readonly writeHighWater: number
  }
  readonly isOpen: boolean
  /**
   * the session's duplex owns its reads (Duplex.OwnedReads): a payload that is a whole
   * received chunk is then the stream reader's alone, and the handles say so
   */
  readonly ownsReads: boolean
  /** encoded frames waiting for the writer */
  readonly outbox: Array<Uint8Array>
  /** data bytes in the outbox */
  outboxBytes: number
  /** writers waiting for the outbox to drain below `writeHighWater` (allocated on first use) */
  drainWaiters: Array<Wakeups.Resume> | undefined
  nowNanos(): number
  wake(resume: Wakeups.Resume | undefined): void
  atomically<A>(f: () => A): A
  wakeWriter(): void
  pushControl(type: number, flags: number, streamId: number, length: number): void
  /** flags for the next frame sent on `s` (ACK on the first one of an inbound stream) */
  takeFlags(s: Stream): number
  /** credit the receive window after the application read */
  afterConsume(s: Stream): void
  /** unregister `s` once both directions are finished */
  maybeFinished(s: Stream): void
  resetStream(s: Stream, err: Duplex.DuplexError, sendRst: boolean): void
}

/** A new stream of `session` with its handle (the session registers it). */
export const make = (session: Session, id: number, inbound: boolean): Stream => {
  const config = session.config
  const s: Stream = {
    id,
    inbound,
    handle: undefined as unknown as MuxedStream,
    sendWindow: Frame.INITIAL_WINDOW,
    writeClosed: false,
    writeErr: undefined,
    writeWaiter: undefined,
    recvWindow: config.initialWindow,
    grown: 0,
    // the peer assumes 256 KiB until our first window update (§Flow Control)
    recvRemaining: Frame.INITIAL_WINDOW,
    inFlight: 0,
    epochStart: session.nowNanos(),
    buffer: [],
    buffered: 0,
    remoteFin: false,
    readErr: undefined,
    readWaiter: undefined,
    needAck: inbound,
    ackedByPeer: inbound,
    registered: true,
    bytesRead: 0,
    bytesWritten: 0
  }

  const waitRead = Effect.callback<void>((r) => {
    s.readWaiter = r
    return Effect.sync(() => {
      s.readWaiter = undefined
    })
  })
  const waitWrite = Effect.callback<void>((r) => {
    s.writeWaiter = r
    return Effect.sync(() => {
      s.writeWaiter = undefined
    })
  })

  // waiting for the session outbox to drain; a reset of the stream wakes it too
  const waitDrain = Effect.callback<void>((r) => {
    ;(session.drainWaiters ??= []).push(r)
    s.writeWaiter = r
    return Effect.sync(() => {
      Wakeups.removeFrom(session.drainWaiters, r)
      if (s.writeWaiter === r) s.writeWaiter = undefined
    })
  })

  const read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError> = Effect.suspend(() => {
    if (s.readErr !== undefined) return Effect.fail(s.readErr)
    if (s.buffered > 0) {
      const out = s.buffer
      s.buffer = []
      s.buffered = 0
      session.atomically(() => session.afterConsume(s))
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
      if (s.writeClosed) return Effect.fail(Duplex.closedError("yamux stream closed for writing"))
      if (remaining === 0) return Effect.void
      if (s.sendWindow === 0) return Effect.flatMap(waitWrite, () => loop)
      if (session.outboxBytes >= config.writeHighWater) return Effect.flatMap(waitDrain, () => loop)
      session.atomically(emit)
      return loop
    })
    // emit as many frames as the window allows, each at most maxFrameSize
    const emit = (): void => {
      const outbox = session.outbox
      while (remaining > 0 && s.sendWindow > 0) {
        const n = Math.min(remaining, s.sendWindow, config.maxFrameSize)
        outbox.push(Frame.encode(Frame.TYPE_DATA, session.takeFlags(s), s.id, n))
        cursor.take(n, outbox)
        s.sendWindow -= n
        s.bytesWritten += n
        remaining -= n
        session.outboxBytes += n
      }
      session.wakeWriter()
    }
    return loop
  }

  const closeWrite: Effect.Effect<void> = Effect.sync(() =>
    session.atomically(() => {
      if (s.writeClosed || s.writeErr !== undefined) return
      s.writeClosed = true
      const w = s.writeWaiter
      s.writeWaiter = undefined
      if (s.registered && session.isOpen) {
        session.pushControl(Frame.TYPE_WINDOW_UPDATE, session.takeFlags(s) | Frame.FLAG_FIN, s.id, 0)
        session.maybeFinished(s)
      }
      session.wake(w)
    })
  )

  const reset: Effect.Effect<void> = Effect.sync(() => {
    if (s.readErr !== undefined && s.writeErr !== undefined) return
    session.atomically(() => session.resetStream(s, Duplex.resetError("yamux stream reset"), true))
  })

  const handle: MuxedStream = {
    id: String(id),
    direction: inbound ? "inbound" : "outbound",
    read,
    write,
    closeWrite,
    reset,
    bytes: () => ({ read: s.bytesRead, written: s.bytesWritten })
  }
  ;(s as { handle: MuxedStream }).handle = session.ownsReads ? Duplex.withOwnedReads(handle) : handle
  return s
}

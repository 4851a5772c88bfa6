/**
 * The yamux session machinery (libp2p yamux spec, = hashicorp/yamux spec.md):
 * stream state, flow control, the reader and writer fibers and keep-alive.
 *
 * Design
 * - One **reader fiber** pulls batches from the Duplex and runs a synchronous
 *   frame parser over them (§Framing). Data payloads are handed to the
 *   streams as subarrays of the received chunks (never copied); only a header
 *   split across two chunks is copied (12 bytes). Wake-ups of waiting fibers
 *   are collected while a batch is parsed and fired once it is done.
 * - One **writer fiber** owns the Duplex's write side. Streams and the reader
 *   push encoded frames (a 12-byte header chunk, then the payload chunks as
 *   they are, split with `subarray` at frame boundaries) into one outbox; each
 *   writer iteration takes everything queued and writes it as one batch.
 * - Per-stream flow control (§Flow Control): a writer may send at most the
 *   peer's window; it suspends until a WindowUpdate arrives. Our receive
 *   window is credited when the application reads (unread bytes keep
 *   occupying it), and grows (doubling, up to the maximum) when a window's
 *   worth of data was consumed within 4 RTTs, as go-yamux and
 *   js-libp2p-yamux do. RTT is measured with the session's ping on `Clock`.
 * - Keep-alive: a fiber pings on a `Schedule`; a ping not answered within the
 *   timeout, with no other frame received meanwhile, ends the session with
 *   `MuxerError { reason: "Timeout" }` (frames still arriving mean the pong is
 *   only queued behind data, so the deadline restarts).
 * - §ACK backlog: inbound streams are acknowledged with the first frame we
 *   send on them; at most `maxUnackedInbound` unacknowledged inbound streams
 *   are kept (more are refused with RST); `open` waits while `maxAckBacklog`
 *   of our streams are unacknowledged by the peer.
 *
 * Everything mutable lives in this closure and is touched only from fibers of
 * one JS thread; no locks are needed.
 *
 * @internal
 */
import { Clock, Deferred, Duration, Effect, Exit, Fiber, Result, Scope } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import { type Direction, type MuxedSession, type MuxedStream, MuxerError } from "../StreamMuxer.ts"
import * as Frame from "./frame.ts"

export interface Config {
  readonly initialWindow: number
  readonly maxWindow: number
  readonly maxInboundStreams: number
  readonly maxOutboundStreams: number
  readonly maxUnackedInbound: number
  readonly maxAckBacklog: number
  readonly enableKeepAlive: boolean
  readonly keepAliveInterval: Duration.Duration
  readonly pingTimeout: Duration.Duration
  readonly maxFrameSize: number
  readonly closeTimeout: Duration.Duration
  readonly writeHighWater: number
}

/** A yamux session: the StreamMuxer contract plus ping / RTT. */
export interface YamuxSession extends MuxedSession {
  /** Send a ping and wait for its answer; the round-trip time in milliseconds. */
  readonly ping: Effect.Effect<number, MuxerError>
  /** The last measured round-trip time in milliseconds, if any. */
  readonly rtt: () => number | undefined
}

type Resume = (effect: Effect.Effect<void>) => void

/** Pongs queued beyond this many (while the writer is busy) are dropped (go-yamux: ping backlog 32). */
const MAX_PENDING_PONGS = 32
/** Refusals (RST) queued beyond this many while the writer is busy end the session. */
const MAX_PENDING_REFUSALS = 1024
/** Closed remote stream ids remembered to detect a SYN that reuses one. */
const RECENTLY_CLOSED = 1024

const protocolError = (message: string) => new MuxerError({ reason: "ProtocolError", message })

interface Stream {
  readonly id: number
  readonly inbound: boolean
  readonly handle: MuxedStream
  // send side
  sendWindow: number
  writeClosed: boolean
  writeErr: Duplex.DuplexError | undefined
  writeWaiter: Resume | undefined
  // receive side
  recvWindow: number
  recvRemaining: number
  inFlight: number
  epochStart: number
  buffer: Array<Uint8Array>
  buffered: number
  remoteFin: boolean
  readErr: Duplex.DuplexError | undefined
  readWaiter: Resume | undefined
  // bookkeeping
  needAck: boolean
  ackedByPeer: boolean
  registered: boolean
}

export const make = (
  duplex: Duplex.Duplex,
  direction: Direction,
  config: Config
): Effect.Effect<YamuxSession, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sessionScope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const nowNanos = (): number => Number(clock.monotonicTimeNanosUnsafe())
    const client = direction === "outbound"
    const closedDeferred = yield* Deferred.make<void, MuxerError>()

    // ---- session state -------------------------------------------------
    const streams = new Map<number, Stream>()
    let nextId = client ? 1 : 2
    let highestRemoteId = 0
    const recentlyClosed = new Set<number>()
    const recentlyClosedOrder: Array<number> = []
    let inboundCount = 0
    let outboundCount = 0
    let unackedInbound = 0
    let ackBacklog = 0
    const acceptQueue: Array<Stream> = []
    const acceptWaiters: Array<Resume> = []
    const openWaiters: Array<Resume> = []

    let open = true
    let endError: MuxerError | undefined
    let remoteGoAway = false
    let finishing = false

    let outbox: Array<Uint8Array> = []
    let outboxBytes = 0
    let pendingPongs = 0
    let pendingRefusals = 0
    let writerWaiter: Resume | undefined
    const drainWaiters: Array<Resume> = []

    let rttNanos: number | undefined
    let framesReceived = 0
    let nextPingId = 0
    interface Ping {
      readonly id: number
      readonly start: number
      readonly waiters: Array<Resume>
      rtt: number | undefined
    }
    let activePing: Ping | undefined

    // ---- wake-ups ------------------------------------------------------
    // While the reader parses a batch, wake-ups are deferred so that woken
    // fibers (which Effect resumes synchronously) see a consistent state.
    let deferring = false
    const deferred: Array<Resume> = []
    const wake = (resume: Resume | undefined): void => {
      if (resume === undefined) return
      if (deferring) deferred.push(resume)
      else resume(Effect.void)
    }
    const wakeAll = (waiters: Array<Resume>): void => {
      if (waiters.length === 0) return
      const all = waiters.splice(0, waiters.length)
      for (const w of all) wake(w)
    }
    const flushWakes = (): void => {
      deferring = false
      while (deferred.length > 0) {
        const all = deferred.splice(0, deferred.length)
        for (const w of all) w(Effect.void)
      }
    }
    /** Run a synchronous state change with wake-ups deferred to its end. */
    const atomically = <A>(f: () => A): A => {
      if (deferring) return f()
      deferring = true
      try {
        return f()
      } finally {
        flushWakes()
      }
    }
    const waitOn = (register: (resume: Resume) => void, unregister: (resume: Resume) => void): Effect.Effect<void> =>
      Effect.callback<void>((resume) => {
        register(resume)
        return Effect.sync(() => unregister(resume))
      })
    const waitIn = (list: Array<Resume>): Effect.Effect<void> =>
      waitOn((r) => list.push(r), (r) => {
        const i = list.indexOf(r)
        if (i >= 0) list.splice(i, 1)
      })

    // ---- outbox --------------------------------------------------------
    // The writer is woken on a microtask rather than at once: frames queued by
    // everything that runs before it (a burst of stream writes, a whole read
    // batch's window updates) go out in one Duplex write.
    let writerScheduled = false
    const runWriter = (): void => {
      writerScheduled = false
      const w = writerWaiter
      writerWaiter = undefined
      if (w !== undefined) w(Effect.void)
    }
    const wakeWriter = (): void => {
      if (writerWaiter === undefined || writerScheduled) return
      writerScheduled = true
      queueMicrotask(runWriter)
    }
    const pushControl = (type: number, flags: number, streamId: number, length: number): void => {
      outbox.push(Frame.encode(type, flags, streamId, length))
      wakeWriter()
    }

    // ---- termination ---------------------------------------------------
    const sessionClosedError = () => Duplex.resetError("yamux session closed")
    const terminate = (error: MuxerError | undefined, goAway: number | undefined): void =>
      atomically(() => terminateNow(error, goAway))
    const terminateNow = (error: MuxerError | undefined, goAway: number | undefined): void => {
      if (!open) return
      open = false
      endError = error
      for (const s of streams.values()) {
        s.registered = false
        const err = sessionClosedError()
        if (s.writeErr === undefined && !s.writeClosed) s.writeErr = err
        // a stream whose remote side finished keeps its unread data readable
        if (!s.remoteFin && s.readErr === undefined) s.readErr = err
        wakeStream(s)
      }
      streams.clear()
      acceptQueue.length = 0
      wakeAll(acceptWaiters)
      wakeAll(openWaiters)
      wakeAll(drainWaiters)
      if (activePing !== undefined) {
        const ping = activePing
        activePing = undefined
        wakeAll(ping.waiters)
      }
      if (goAway !== undefined) outbox.push(Frame.encode(Frame.TYPE_GO_AWAY, 0, 0, goAway))
      finishing = true
      wakeWriter()
      Deferred.doneUnsafe(closedDeferred, error === undefined ? Exit.void : Exit.fail(error))
    }
    const endedError = (): MuxerError =>
      endError ?? new MuxerError({ reason: "Closed", message: "yamux session closed" })

    // ---- streams -------------------------------------------------------
    const wakeStream = (s: Stream): void => {
      const r = s.readWaiter
      s.readWaiter = undefined
      wake(r)
      const w = s.writeWaiter
      s.writeWaiter = undefined
      wake(w)
    }

    const unregister = (s: Stream): void => {
      if (!s.registered) return
      s.registered = false
      streams.delete(s.id)
      if (s.inbound) {
        inboundCount--
        if (s.needAck) {
          s.needAck = false
          unackedInbound--
        }
        recentlyClosed.add(s.id)
        recentlyClosedOrder.push(s.id)
        if (recentlyClosedOrder.length > RECENTLY_CLOSED) recentlyClosed.delete(recentlyClosedOrder.shift()!)
      } else {
        outboundCount--
        if (!s.ackedByPeer) {
          s.ackedByPeer = true
          ackBacklog--
          wakeAll(openWaiters)
        }
      }
      if (remoteGoAway && streams.size === 0) terminate(undefined, Frame.GO_AWAY_NORMAL)
    }

    const maybeFinished = (s: Stream): void => {
      if (s.remoteFin && s.writeClosed) unregister(s)
    }

    /** Flags the next frame we send on `s` carries: ACK on the first frame of an inbound stream. */
    const takeFlags = (s: Stream): number => {
      if (!s.needAck) return 0
      s.needAck = false
      unackedInbound--
      return Frame.FLAG_ACK
    }

    /** After the application consumed data: credit the window (auto-tuned), go-yamux style. */
    const afterConsume = (s: Stream): void => {
      if (!s.registered || s.remoteFin || !open) return
      const outstanding = s.recvRemaining + s.buffered + s.inFlight
      let delta = s.recvWindow - outstanding
      if (delta < s.recvWindow / 2) return
      const now = nowNanos()
      if (rttNanos !== undefined && s.recvWindow < config.maxWindow && now - s.epochStart <= 4 * rttNanos) {
        s.recvWindow = Math.min(s.recvWindow * 2, config.maxWindow)
        delta = s.recvWindow - outstanding
      }
      s.epochStart = now
      s.recvRemaining += delta
      pushControl(Frame.TYPE_WINDOW_UPDATE, takeFlags(s), s.id, delta)
    }

    const resetStream = (s: Stream, err: Duplex.DuplexError, sendRst: boolean): void => {
      if (s.readErr === undefined) s.readErr = err
      if (s.writeErr === undefined) s.writeErr = err
      s.buffer = []
      s.buffered = 0
      if (sendRst && s.registered && open) pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, s.id, 0)
      unregister(s)
      wakeStream(s)
    }

    const makeStream = (id: number, inbound: boolean): Stream => {
      const s: Stream = {
        id,
        inbound,
        handle: undefined as unknown as MuxedStream,
        sendWindow: Frame.INITIAL_WINDOW,
        writeClosed: false,
        writeErr: undefined,
        writeWaiter: undefined,
        recvWindow: config.initialWindow,
        // the peer assumes 256 KiB until our first window update (§Flow Control)
        recvRemaining: Frame.INITIAL_WINDOW,
        inFlight: 0,
        epochStart: nowNanos(),
        buffer: [],
        buffered: 0,
        remoteFin: false,
        readErr: undefined,
        readWaiter: undefined,
        needAck: inbound,
        ackedByPeer: inbound,
        registered: true
      }

      const waitRead = waitOn((r) => {
        s.readWaiter = r
      }, () => {
        s.readWaiter = undefined
      })
      const waitWrite = waitOn((r) => {
        s.writeWaiter = r
      }, () => {
        s.writeWaiter = undefined
      })

      // waiting for the session outbox to drain; a reset of the stream wakes it too
      const waitDrain = waitOn((r) => {
        drainWaiters.push(r)
        s.writeWaiter = r
      }, (r) => {
        const i = drainWaiters.indexOf(r)
        if (i >= 0) drainWaiters.splice(i, 1)
        if (s.writeWaiter === r) s.writeWaiter = undefined
      })

      const read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError> = Effect.suspend(() => {
        if (s.readErr !== undefined) return Effect.fail(s.readErr)
        if (s.buffered > 0) {
          const out = s.buffer
          s.buffer = []
          s.buffered = 0
          atomically(() => afterConsume(s))
          return Effect.succeed(out)
        }
        if (s.remoteFin) return Effect.succeed(Duplex.EOF)
        return Effect.flatMap(waitRead, () => read)
      })

      const write = (chunks: Duplex.Chunks): Effect.Effect<void, Duplex.DuplexError> => {
        let index = 0
        let offset = 0
        let remaining = Duplex.byteLength(chunks)
        const loop: Effect.Effect<void, Duplex.DuplexError> = Effect.suspend(() => {
          if (s.writeErr !== undefined) return Effect.fail(s.writeErr)
          if (s.writeClosed) return Effect.fail(Duplex.closedError("yamux stream closed for writing"))
          if (remaining === 0) return Effect.void
          if (s.sendWindow === 0) return Effect.flatMap(waitWrite, () => loop)
          if (outboxBytes >= config.writeHighWater) return Effect.flatMap(waitDrain, () => loop)
          atomically(emit)
          return loop
        })
        // emit as many frames as the window allows, each at most maxFrameSize
        const emit = (): void => {
          while (remaining > 0 && s.sendWindow > 0) {
            const n = Math.min(remaining, s.sendWindow, config.maxFrameSize)
            outbox.push(Frame.encode(Frame.TYPE_DATA, takeFlags(s), s.id, n))
            let left = n
            while (left > 0) {
              const c = chunks[index]!
              const avail = c.byteLength - offset
              if (avail <= left) {
                if (avail > 0) outbox.push(offset === 0 ? c : c.subarray(offset))
                left -= avail
                index++
                offset = 0
              } else {
                outbox.push(c.subarray(offset, offset + left))
                offset += left
                left = 0
              }
            }
            s.sendWindow -= n
            remaining -= n
            outboxBytes += n
          }
          wakeWriter()
        }
        return loop
      }

      const closeWrite: Effect.Effect<void> = Effect.sync(() => atomically(() => {
        if (s.writeClosed || s.writeErr !== undefined) return
        s.writeClosed = true
        const w = s.writeWaiter
        s.writeWaiter = undefined
        if (s.registered && open) {
          pushControl(Frame.TYPE_WINDOW_UPDATE, takeFlags(s) | Frame.FLAG_FIN, s.id, 0)
          maybeFinished(s)
        }
        wake(w)
      }))

      const reset: Effect.Effect<void> = Effect.sync(() => {
        if (s.readErr !== undefined && s.writeErr !== undefined) return
        atomically(() => resetStream(s, Duplex.resetError("yamux stream reset"), true))
      })

      ;(s as { handle: MuxedStream }).handle = {
        id: String(id),
        direction: inbound ? "inbound" : "outbound",
        read,
        write,
        closeWrite,
        reset
      }
      streams.set(id, s)
      return s
    }

    /** The stream's owning scope closed: reset it unless it finished both ways. */
    const releaseStream = (s: Stream): Effect.Effect<void> =>
      Effect.sync(() => atomically(() => {
        const writeDone = s.writeClosed || s.writeErr !== undefined
        const readDone = s.remoteFin || s.readErr !== undefined
        if (writeDone && readDone) {
          unregister(s)
          return
        }
        resetStream(s, Duplex.resetError("yamux stream released by its scope"), true)
      }))

    // ---- frame handling (reader fiber) -----------------------------------
    const headerBuf = new Uint8Array(Frame.HEADER_LENGTH)
    let headerFill = 0
    let payloadRemaining = 0
    let payloadTarget: Stream | undefined
    let payloadFin = false

    const isOurs = (id: number): boolean => (id % 2 === 1) === client
    const neverOpened = (id: number): boolean => isOurs(id) ? id >= nextId : id > highestRemoteId

    const remoteFinished = (s: Stream): void => {
      if (s.remoteFin) return
      s.remoteFin = true
      const r = s.readWaiter
      s.readWaiter = undefined
      wake(r)
      maybeFinished(s)
    }

    const refuse = (id: number): MuxerError | undefined => {
      pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, id, 0)
      if (++pendingRefusals > MAX_PENDING_REFUSALS) {
        return new MuxerError({ reason: "TooManyStreams", message: "yamux: peer keeps opening refused streams" })
      }
      return undefined
    }

    const handleStreamFrame = (h: Frame.Header): MuxerError | undefined => {
      const id = h.streamId
      const isData = h.type === Frame.TYPE_DATA
      if (id === 0) return protocolError(`yamux: ${Frame.TYPE_NAMES[h.type]} frame on stream 0`)
      if (isData && h.length > config.maxWindow) {
        return protocolError(`yamux: data frame of ${h.length} bytes exceeds any window we grant`)
      }
      let s = streams.get(id)
      if ((h.flags & Frame.FLAG_SYN) !== 0) {
        if (s !== undefined) return protocolError(`yamux: SYN reuses open stream id ${id}`)
        if (isOurs(id)) return protocolError(`yamux: SYN with stream id ${id} of our parity`)
        if (recentlyClosed.has(id)) return protocolError(`yamux: SYN reuses closed stream id ${id}`)
        if (id > highestRemoteId) highestRemoteId = id
        if (
          remoteGoAway || inboundCount >= config.maxInboundStreams || unackedInbound >= config.maxUnackedInbound
        ) {
          const err = refuse(id)
          if (err !== undefined) return err
          if (isData) payloadRemaining = h.length
          payloadTarget = undefined
          return undefined
        }
        s = makeStream(id, true)
        inboundCount++
        unackedInbound++
        acceptQueue.push(s)
        const w = acceptWaiters.shift()
        wake(w)
      } else if (s === undefined) {
        if (neverOpened(id)) {
          return protocolError(`yamux: ${Frame.TYPE_NAMES[h.type]} frame for stream ${id} that was never opened`)
        }
        // a stream closed recently (e.g. we reset it): ignore, skipping its payload
        if (isData) payloadRemaining = h.length
        payloadTarget = undefined
        return undefined
      }
      if ((h.flags & Frame.FLAG_ACK) !== 0 && !s.ackedByPeer) {
        s.ackedByPeer = true
        ackBacklog--
        wakeAll(openWaiters)
      }
      if ((h.flags & Frame.FLAG_RST) !== 0) {
        resetStream(s, Duplex.resetError("yamux stream reset by the remote"), false)
        if (isData) payloadRemaining = h.length
        payloadTarget = undefined
        return undefined
      }
      if (isData) {
        if (h.length > 0) {
          if (s.remoteFin) return protocolError(`yamux: data on stream ${id} after FIN`)
          if (h.length > s.recvRemaining) {
            return protocolError(
              `yamux: stream ${id} received ${h.length} bytes with a window of ${s.recvRemaining} (window overflow)`
            )
          }
          s.recvRemaining -= h.length
          s.inFlight = h.length
          payloadRemaining = h.length
          payloadTarget = s
          payloadFin = (h.flags & Frame.FLAG_FIN) !== 0
          return undefined
        }
      } else if (h.length > 0) {
        s.sendWindow = Math.min(s.sendWindow + h.length, Frame.MAX_UINT32)
        const w = s.writeWaiter
        s.writeWaiter = undefined
        wake(w)
      }
      if ((h.flags & Frame.FLAG_FIN) !== 0) remoteFinished(s)
      return undefined
    }

    const handlePing = (h: Frame.Header): MuxerError | undefined => {
      if (h.streamId !== 0) return protocolError(`yamux: ping on stream ${h.streamId}`)
      if ((h.flags & Frame.FLAG_SYN) !== 0) {
        if (pendingPongs < MAX_PENDING_PONGS) {
          pendingPongs++
          pushControl(Frame.TYPE_PING, Frame.FLAG_ACK, 0, h.length)
        }
        return undefined
      }
      if ((h.flags & Frame.FLAG_ACK) !== 0) {
        const ping = activePing
        if (ping !== undefined && ping.id === h.length) {
          activePing = undefined
          rttNanos = Math.max(0, nowNanos() - ping.start)
          ping.rtt = rttNanos
          wakeAll(ping.waiters)
        }
        return undefined
      }
      return protocolError("yamux: ping without SYN or ACK")
    }

    const handleGoAway = (h: Frame.Header): MuxerError | undefined => {
      if (h.streamId !== 0) return protocolError(`yamux: GoAway on stream ${h.streamId}`)
      if (h.length === Frame.GO_AWAY_NORMAL) {
        // no new streams either way; the session ends once the last stream has
        remoteGoAway = true
        wakeAll(openWaiters)
        if (streams.size === 0) terminate(undefined, Frame.GO_AWAY_NORMAL)
        return undefined
      }
      const what = h.length === Frame.GO_AWAY_PROTOCOL_ERROR
        ? "protocol error"
        : h.length === Frame.GO_AWAY_INTERNAL_ERROR
        ? "internal error"
        : `unknown code ${h.length}`
      terminate(new MuxerError({ reason: "GoAway", message: `yamux: remote sent GoAway (${what})` }), undefined)
      return undefined
    }

    const handleHeader = (h: Frame.Header): MuxerError | undefined => {
      framesReceived++
      switch (h.type) {
        case Frame.TYPE_DATA:
        case Frame.TYPE_WINDOW_UPDATE:
          return handleStreamFrame(h)
        case Frame.TYPE_PING:
          return handlePing(h)
        default:
          return handleGoAway(h)
      }
    }

    const deliver = (s: Stream, bytes: Uint8Array): void => {
      s.inFlight -= bytes.byteLength
      if (s.readErr !== undefined) return
      s.buffer.push(bytes)
      s.buffered += bytes.byteLength
      const r = s.readWaiter
      s.readWaiter = undefined
      wake(r)
    }

    /** Parse one received chunk; returns an error that ends the session. */
    const processChunk = (chunk: Uint8Array): MuxerError | undefined => {
      let off = 0
      const len = chunk.byteLength
      while (off < len && open) {
        if (payloadRemaining > 0) {
          const n = Math.min(payloadRemaining, len - off)
          if (payloadTarget !== undefined) {
            deliver(payloadTarget, off === 0 && n === len ? chunk : chunk.subarray(off, off + n))
          }
          off += n
          payloadRemaining -= n
          if (payloadRemaining === 0 && payloadTarget !== undefined) {
            const s = payloadTarget
            payloadTarget = undefined
            if (payloadFin) remoteFinished(s)
          }
          continue
        }
        let decoded: Result.Result<Frame.Header, Frame.FrameError>
        if (headerFill === 0 && len - off >= Frame.HEADER_LENGTH) {
          decoded = Frame.decode(chunk, off)
          off += Frame.HEADER_LENGTH
        } else {
          const n = Math.min(Frame.HEADER_LENGTH - headerFill, len - off)
          headerBuf.set(chunk.subarray(off, off + n), headerFill)
          headerFill += n
          off += n
          if (headerFill < Frame.HEADER_LENGTH) break
          headerFill = 0
          decoded = Frame.decode(headerBuf, 0)
        }
        if (Result.isFailure(decoded)) return protocolError(decoded.failure.message)
        const err = handleHeader(decoded.success)
        if (err !== undefined) return err
      }
      return undefined
    }

    const processBatch = (batch: Duplex.Chunks): MuxerError | undefined => {
      deferring = true
      try {
        for (let i = 0; i < batch.length; i++) {
          const err = processChunk(batch[i]!)
          if (err !== undefined) return err
          if (!open) return undefined
        }
        return undefined
      } finally {
        flushWakes()
      }
    }

    const readerLoop: Effect.Effect<void> = Effect.gen(function*() {
      while (open) {
        const result = yield* Effect.result(duplex.read)
        if (!open) return
        if (Result.isFailure(result)) {
          terminate(
            new MuxerError({ reason: "Io", message: `yamux: read failed: ${result.failure.message}` }),
            Frame.GO_AWAY_INTERNAL_ERROR
          )
          return
        }
        const batch = result.success
        if (batch.length === 0) {
          if (headerFill > 0 || payloadRemaining > 0) {
            terminate(protocolError("yamux: connection ended inside a frame"), Frame.GO_AWAY_PROTOCOL_ERROR)
          } else {
            terminate(undefined, Frame.GO_AWAY_NORMAL)
          }
          return
        }
        const err = processBatch(batch)
        if (err !== undefined) {
          deferring = true
          terminate(err, err.reason === "ProtocolError" ? Frame.GO_AWAY_PROTOCOL_ERROR : Frame.GO_AWAY_INTERNAL_ERROR)
          flushWakes()
          return
        }
      }
    })

    // ---- writer fiber ----------------------------------------------------
    const waitWriter = waitOn((r) => {
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
        pendingPongs = 0
        pendingRefusals = 0
        wakeAll(drainWaiters)
        const result = yield* Effect.result(duplex.write(batch))
        if (Result.isFailure(result)) {
          outbox = []
          terminate(new MuxerError({ reason: "Io", message: `yamux: write failed: ${result.failure.message}` }), undefined)
          return
        }
      }
      yield* duplex.closeWrite
    })

    // ---- ping / keep-alive -------------------------------------------------
    /** The ping in flight, or a new one sent now. */
    const startPing = (): Ping => {
      if (activePing !== undefined) return activePing
      const started: Ping = { id: nextPingId, start: nowNanos(), waiters: [], rtt: undefined }
      nextPingId = (nextPingId + 1) % (Frame.MAX_UINT32 + 1)
      activePing = started
      atomically(() => pushControl(Frame.TYPE_PING, Frame.FLAG_SYN, 0, started.id))
      return started
    }

    const ping: Effect.Effect<number, MuxerError> = Effect.suspend(() => {
      if (!open) return Effect.fail(endedError())
      const current = startPing()
      return Effect.flatMap(waitIn(current.waiters), () => {
        if (current.rtt === undefined) return Effect.fail(endedError())
        return Effect.succeed(current.rtt / 1e6)
      })
    })

    // A keep-alive ping must be answered within the timeout; but while other
    // frames keep arriving the peer is alive (its pong may be queued behind
    // data on a busy link), so the deadline restarts instead. No fiber is
    // forked per ping: the keep-alive fiber itself waits for the pong (an idle
    // session holds just that fiber, asleep).
    const keepAliveOnce: Effect.Effect<void> = Effect.suspend(() => {
      if (!open) return Effect.void
      const current = startPing()
      const awaitPong: Effect.Effect<void> = Effect.suspend(() => {
        if (current.rtt !== undefined || !open) return Effect.void
        const since = framesReceived
        return Effect.flatMap(Effect.timeoutOption(waitIn(current.waiters), config.pingTimeout), (r) => {
          if (r._tag === "Some" || !open) return Effect.void
          if (framesReceived !== since) return awaitPong
          terminate(
            new MuxerError({
              reason: "Timeout",
              message: `yamux: keep-alive ping unanswered, and nothing received, for ${
                Duration.format(config.pingTimeout)
              }`
            }),
            Frame.GO_AWAY_INTERNAL_ERROR
          )
          return Effect.void
        })
      })
      return awaitPong
    })

    /** Ping, wait for the pong, sleep the interval; until the session ends. */
    const keepAliveLoop: Effect.Effect<void> = Effect.suspend(() =>
      open
        ? Effect.flatMap(
          keepAliveOnce,
          () => open ? Effect.andThen(Effect.sleep(config.keepAliveInterval), keepAliveLoop) : Effect.void
        )
        : Effect.void
    )

    // ---- public API --------------------------------------------------------
    const acquire = (s: Stream, scope: Scope.Scope): Effect.Effect<MuxedStream> =>
      Effect.as(Scope.addFinalizer(scope, releaseStream(s)), s.handle)

    const openStream: Effect.Effect<MuxedStream, MuxerError, Scope.Scope> = Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.uninterruptibleMask((restore) => {
        const loop: Effect.Effect<MuxedStream, MuxerError> = Effect.suspend(() => {
          if (!open) return Effect.fail(endedError())
          if (remoteGoAway) {
            return Effect.fail(new MuxerError({ reason: "GoAway", message: "yamux: the remote sent GoAway" }))
          }
          if (outboundCount >= config.maxOutboundStreams) {
            return Effect.fail(
              new MuxerError({
                reason: "TooManyStreams",
                message: `yamux: ${outboundCount} outbound streams open (limit ${config.maxOutboundStreams})`
              })
            )
          }
          if (ackBacklog >= config.maxAckBacklog) return Effect.flatMap(restore(waitIn(openWaiters)), () => loop)
          if (nextId > Frame.MAX_UINT32) {
            return Effect.fail(new MuxerError({ reason: "TooManyStreams", message: "yamux: stream ids exhausted" }))
          }
          const id = nextId
          nextId += 2
          const s = makeStream(id, false)
          s.recvRemaining = config.initialWindow
          outboundCount++
          ackBacklog++
          atomically(() =>
            pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, id, config.initialWindow - Frame.INITIAL_WINDOW)
          )
          return acquire(s, scope)
        })
        return loop
      })
    )

    const accept: Effect.Effect<MuxedStream, MuxerError, Scope.Scope> = Effect.flatMap(
      Effect.scope,
      (scope) =>
        Effect.uninterruptibleMask((restore) => {
          const loop: Effect.Effect<MuxedStream, MuxerError> = Effect.suspend(() => {
            const s = acceptQueue.shift()
            if (s !== undefined) return acquire(s, scope)
            if (!open) return Effect.fail(endedError())
            return Effect.flatMap(restore(waitIn(acceptWaiters)), () => loop)
          })
          return loop
        })
    )

    let writerFiber: Fiber.Fiber<void> | undefined
    const shutdown: Effect.Effect<void> = Effect.suspend(() => {
      terminate(undefined, Frame.GO_AWAY_NORMAL)
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
    const keepAlive = config.enableKeepAlive
      ? keepAliveLoop
      : Effect.ignore(ping) // one ping to measure the RTT (window auto-tuning)
    yield* Effect.forkIn(keepAlive, sessionScope)
    yield* Scope.addFinalizer(sessionScope, shutdown)

    return {
      open: openStream,
      accept,
      close: shutdown,
      closed: Deferred.await(closedDeferred),
      streamCount: () => streams.size,
      ping,
      rtt: () => rttNanos === undefined ? undefined : rttNanos / 1e6
    }
  })

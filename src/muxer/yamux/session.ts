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
 * - A **writer fiber** owns the Duplex's write side while there is something
 *   to write: streams and the reader push encoded frames (a 12-byte header
 *   chunk, then the payload chunks as they are, split with `subarray` at frame
 *   boundaries) into one outbox; when it goes from empty to non-empty a writer
 *   is started on a microtask (frames queued in the same tick go out in one
 *   Duplex write). It takes everything queued, writes it as one batch, again
 *   while more was queued meanwhile, and ends when the outbox is empty (an idle
 *   session has no writer fiber). One write is in flight at a time.
 * - Per-stream flow control (§Flow Control): a writer may send at most the
 *   peer's window; it suspends until a WindowUpdate arrives. Our receive
 *   window is credited when the application reads (unread bytes keep
 *   occupying it), and grows (doubling, up to the maximum) when a window's
 *   worth of data was consumed within 4 RTTs, as go-yamux and
 *   js-libp2p-yamux do. RTT is measured with the session's ping on `Clock`.
 * - Keep-alive: one fiber per Clock for all sessions (each with its own
 *   deadline) pings a session one interval after its last pong; a ping not answered within the
 *   timeout, with no other frame received meanwhile, ends the session with
 *   `MuxerError { reason: "Timeout" }` (frames still arriving mean the pong is
 *   only queued behind data, so the deadline restarts).
 * - §ACK backlog: inbound streams are acknowledged with the first frame we
 *   send on them; at most `maxUnackedInbound` unacknowledged inbound streams
 *   are kept (more are refused with RST); `open` waits while `maxAckBacklog`
 *   of our streams are unacknowledged by the peer.
 *
 * The session is one object (a class: state in fields, behaviour in prototype
 * methods, waiter lists allocated on first use), so an idle session costs
 * little heap. Its state is touched only from fibers of one JS thread; no
 * locks are needed.
 *
 * Around it: a stream's state and its `MuxedStream` handle are in
 * `./stream.ts`; the keep-alive fiber shared by all sessions of a Clock is
 * `../internal/keepAlive.ts`; the deferred wake-ups are
 * `../internal/wakeups.ts`, whose `Wakeups` class the session extends (its two
 * fields live in the session object, no extra object per session).
 *
 * @internal
 */
import { Clock, Context, Duration, Effect, Fiber, Result, Scope, Tracer } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import * as Release from "../../internal/release.ts"
import * as KeepAlive from "../internal/keepAlive.ts"
import * as Wakeups from "../internal/wakeups.ts"
import { type Direction, type MemoryBudget, type MuxedSession, type MuxedStream, MuxerError } from "../StreamMuxer.ts"
import * as Frame from "./frame.ts"
import * as YamuxStream from "./stream.ts"

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

type Resume = Wakeups.Resume
type Stream = YamuxStream.Stream

/** Pongs queued beyond this many (while the writer is busy) are dropped (go-yamux: ping backlog 32). */
const MAX_PENDING_PONGS = 32
/** Refusals (RST) queued beyond this many while the writer is busy end the session. */
const MAX_PENDING_REFUSALS = 1024
/** Closed remote stream ids remembered to detect a SYN that reuses one. */
const RECENTLY_CLOSED = 1024
/** closed ids kept in a plain array before a Set is worth it */
const FEW_CLOSED = 8

const protocolError = (message: string) => new MuxerError({ reason: "ProtocolError", message })

interface Ping {
  readonly id: number
  readonly start: number
  readonly waiters: Array<Resume>
  rtt: number | undefined
}

const sessionClosedError = () => Duplex.resetError("yamux session closed")

// ---- writer scheduling ---------------------------------------------------
// A session has no writer fiber while its outbox is empty. When frames are
// queued, the session is put on this list and a writer is started on a
// microtask: frames queued by everything that runs before it (a burst of
// stream writes, a whole read batch's window updates) go out in one Duplex
// write. The writer keeps writing while there is more, then ends.
let writersDue: Array<SessionImpl> = []
const startDueWriters = (): void => {
  const due = writersDue
  writersDue = []
  for (let i = 0; i < due.length; i++) due[i]!.startWriter()
}

/**
 * The session: all its state in fields, its behaviour in prototype methods
 * (an idle session is one object, not a closure context per function). The
 * MuxedSession members are getters building their Effect on use.
 */
class SessionImpl extends Wakeups.Wakeups implements YamuxSession, YamuxStream.Session, KeepAlive.Member {
  readonly duplex: Duplex.Duplex
  readonly ownsReads: boolean
  readonly config: Config
  readonly client: boolean
  readonly clock: Clock.Clock
  /** the creating fiber's services, for the writer fibers started from a microtask */
  readonly services: Context.Context<never>

  // ---- session state -------------------------------------------------
  readonly streams = new Map<number, Stream>()
  nextId: number
  highestRemoteId = 0
  /** the recently closed inbound ids, oldest first; a Set of them too once there are more than a few */
  recentlyClosed: Set<number> | undefined = undefined
  recentlyClosedOrder: Array<number> | undefined = undefined
  inboundCount = 0
  outboundCount = 0
  unackedInbound = 0
  ackBacklog = 0
  acceptQueue: Array<Stream> | undefined = undefined
  acceptWaiters: Array<Resume> | undefined = undefined
  /** whenAcceptable's notice (a field, not a waiter list: an idle connection holds one) */
  acceptNotice: (() => void) | undefined = undefined
  openWaiters: Array<Resume> | undefined = undefined
  closedWaiters: Array<Resume> | undefined = undefined

  isOpen = true
  endError: MuxerError | undefined = undefined
  remoteGoAway = false
  finishing = false

  // ---- outbox / writer -------------------------------------------------
  outbox: Array<Uint8Array> = []
  outboxBytes = 0
  pendingPongs = 0
  pendingRefusals = 0
  drainWaiters: Array<Resume> | undefined = undefined
  writerDue = false
  writerRunning = false
  writerFiber: Fiber.Fiber<void> | undefined = undefined
  /** the writer has closed the Duplex's write side (or failed): nothing more is written */
  writeDone = false
  flushWaiters: Array<Resume> | undefined = undefined

  // ---- ping ------------------------------------------------------------
  rttNanos: number | undefined = undefined
  framesReceived = 0
  nextPingId = 0
  activePing: Ping | undefined = undefined

  // ---- keep-alive (served by the Clock's KeepAlive) ----------------------
  keeper: KeepAlive.KeepAlive | undefined = undefined
  /** monotonic nanos: when to ping next, or (awaiting a pong) when its timeout ends */
  kaDeadline = 0
  /** the keep-alive ping awaiting its pong */
  kaPing: Ping | undefined = undefined
  /** frames received when the current pong timeout started */
  kaSince = 0

  // ---- fibers ----------------------------------------------------------
  /** reads a duplex that cannot be polled (over a pollable one, `pump` reads, on its notice) */
  readerFiber: Fiber.Fiber<void> | undefined = undefined
  /** the duplex, when it can be polled (Duplex.Pollable): no reader fiber then */
  pollSource: (Duplex.Duplex & Duplex.Pollable) | undefined = undefined
  /** `pump`, as the duplex's readable notice */
  pumpNotice: (() => void) | undefined = undefined
  /** the duplex, when it can be written synchronously (Duplex.SyncWritable): no writer fiber then, mostly */
  syncSink: (Duplex.Duplex & Duplex.SyncWritable) | undefined = undefined
  /** with keep-alive disabled: the one ping that measures the RTT */
  keepAliveFiber: Fiber.Fiber<void> | undefined = undefined

  // ---- frame parsing (reader fiber) ------------------------------------
  /** Where receive-window growth is reserved (the connection's resource scope); none: unaccounted. */
  memory: MemoryBudget | undefined = undefined
  headerBuf: Uint8Array | undefined = undefined
  headerFill = 0
  payloadRemaining = 0
  payloadTarget: Stream | undefined = undefined
  payloadFin = false

  constructor(
    duplex: Duplex.Duplex,
    direction: Direction,
    config: Config,
    clock: Clock.Clock,
    services: Context.Context<never>
  ) {
    super()
    this.duplex = duplex
    this.ownsReads = Duplex.ownsReads(duplex)
    this.config = config
    this.client = direction === "outbound"
    this.clock = clock
    this.services = services
    this.nextId = this.client ? 1 : 2
  }

  nowNanos(): number {
    return Number(this.clock.monotonicTimeNanosUnsafe())
  }

  /** Wait in the waiter list `key` of this session (allocated on first use). */
  waitIn(
    key: "acceptWaiters" | "openWaiters" | "drainWaiters" | "flushWaiters" | "closedWaiters"
  ): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      ;(this[key] ??= []).push(resume)
      return Effect.sync(() => Wakeups.removeFrom(this[key], resume))
    })
  }

  // ---- outbox --------------------------------------------------------
  wakeWriter(): void {
    if (this.writerRunning || this.writerDue || this.writeDone) return
    this.writerDue = true
    if (writersDue.push(this) === 1) queueMicrotask(startDueWriters)
  }

  pushControl(type: number, flags: number, streamId: number, length: number): void {
    this.outbox.push(Frame.encode(type, flags, streamId, length))
    this.wakeWriter()
  }

  /**
   * Write the outbox (called on a microtask): at once when the duplex takes it
   * synchronously (Duplex.SyncWritable), else, or when it applies
   * backpressure, or to close the write side, in a writer fiber.
   */
  startWriter(): void {
    this.writerDue = false
    if (this.writerRunning || this.writeDone) return
    const sink = this.syncSink
    if (sink !== undefined && this.outbox.length > 0) {
      const r = sink.tryWrite(this.outbox)
      if (r instanceof Duplex.DuplexError) return this.writeFailed(r)
      if (r) this.tookOutbox()
    }
    if (this.outbox.length === 0 && !this.finishing) return
    this.writerRunning = true
    const fiber = Effect.runForkWith(this.services)(Effect.suspend(() => this.writeStep()))
    if (this.writerRunning) this.writerFiber = fiber
  }

  /** One writer step: write everything queued, then the next step; end when the outbox is empty. */
  writeStep(): Effect.Effect<void> {
    if (this.outbox.length === 0) {
      if (this.finishing) return Effect.ensuring(this.duplex.closeWrite, Effect.sync(() => this.writerEnded(true)))
      this.writerEnded(false)
      return Effect.void
    }
    const batch = this.tookOutbox()
    return Effect.flatMap(Effect.result(this.duplex.write(batch)), (result) => {
      if (Result.isFailure(result)) {
        this.writeFailed(result.failure)
        return Effect.void
      }
      return this.writeStep()
    })
  }

  /** The outbox is being written: empty it (its batch returned) and wake the writers waiting for room. */
  tookOutbox(): Array<Uint8Array> {
    const batch = this.outbox
    this.outbox = []
    this.outboxBytes = 0
    this.pendingPongs = 0
    this.pendingRefusals = 0
    this.wakeAll(this.drainWaiters)
    return batch
  }

  writeFailed(failure: Duplex.DuplexError): void {
    this.outbox = []
    this.terminate(
      new MuxerError({ reason: "Io", message: `yamux: write failed: ${failure.message}`, cause: failure }),
      undefined
    )
    this.writerEnded(true)
  }

  writerEnded(done: boolean): void {
    this.writerRunning = false
    this.writerFiber = undefined
    if (done) {
      this.writeDone = true
      this.wakeAll(this.flushWaiters)
    }
  }

  // ---- termination ---------------------------------------------------
  terminate(error: MuxerError | undefined, goAway: number | undefined): void {
    if (this.deferring) return this.terminateNow(error, goAway)
    this.deferring = true
    try {
      this.terminateNow(error, goAway)
    } finally {
      this.flushWakes()
    }
  }

  terminateNow(error: MuxerError | undefined, goAway: number | undefined): void {
    if (!this.isOpen) return
    this.isOpen = false
    this.endError = error
    for (const s of this.streams.values()) {
      s.registered = false
      const err = sessionClosedError()
      if (s.writeErr === undefined && !s.writeClosed) s.writeErr = err
      // a stream whose remote side finished keeps its unread data readable
      if (!s.remoteFin && s.readErr === undefined) s.readErr = err
      this.wakeStream(s)
    }
    this.streams.clear()
    this.acceptQueue = undefined
    this.wakeAll(this.acceptWaiters)
    this.fireAcceptNotice()
    this.wakeAll(this.openWaiters)
    this.wakeAll(this.drainWaiters)
    this.wakeAll(this.closedWaiters)
    if (this.activePing !== undefined) {
      const ping = this.activePing
      this.activePing = undefined
      this.wakeAll(ping.waiters)
    }
    this.kaPing = undefined
    this.keeper?.remove(this)
    if (goAway !== undefined) this.outbox.push(Frame.encode(Frame.TYPE_GO_AWAY, 0, 0, goAway))
    this.finishing = true
    this.wakeWriter()
  }

  endedError(): MuxerError {
    return this.endError ?? new MuxerError({ reason: "Closed", message: "yamux session closed" })
  }

  // ---- streams -------------------------------------------------------
  wakeStream(s: Stream): void {
    const r = s.readWaiter
    s.readWaiter = undefined
    this.wake(r)
    const w = s.writeWaiter
    s.writeWaiter = undefined
    this.wake(w)
  }

  /**
   * Remember a closed inbound stream id (the last RECENTLY_CLOSED). The first
   * few live in an exact-size array searched linearly, so that an idle
   * connection whose identify stream closed holds no Set and no push-grown
   * array (room for 17).
   */
  rememberClosed(id: number): void {
    const order = this.recentlyClosedOrder
    if (order === undefined) {
      this.recentlyClosedOrder = [id]
      return
    }
    if (this.recentlyClosed === undefined && order.length < FEW_CLOSED) {
      this.recentlyClosedOrder = Release.append(order, id)
      return
    }
    const recent = this.recentlyClosed ??= new Set(order)
    recent.add(id)
    order.push(id)
    if (order.length > RECENTLY_CLOSED) recent.delete(order.shift()!)
  }

  wasClosed(id: number): boolean {
    if (this.recentlyClosed !== undefined) return this.recentlyClosed.has(id)
    return this.recentlyClosedOrder !== undefined && this.recentlyClosedOrder.includes(id)
  }

  unregister(s: Stream): void {
    if (!s.registered) return
    s.registered = false
    this.streams.delete(s.id)
    if (s.grown > 0) {
      this.memory?.release(s.grown)
      s.grown = 0
    }
    if (s.inbound) {
      this.inboundCount--
      if (s.needAck) {
        s.needAck = false
        this.unackedInbound--
      }
      this.rememberClosed(s.id)
    } else {
      this.outboundCount--
      if (!s.ackedByPeer) {
        s.ackedByPeer = true
        this.ackBacklog--
        this.wakeAll(this.openWaiters)
      }
    }
    if (this.remoteGoAway && this.streams.size === 0) this.terminate(undefined, Frame.GO_AWAY_NORMAL)
  }

  maybeFinished(s: Stream): void {
    if (s.remoteFin && s.writeClosed) this.unregister(s)
  }

  /** Flags the next frame we send on `s` carries: ACK on the first frame of an inbound stream. */
  takeFlags(s: Stream): number {
    if (!s.needAck) return 0
    s.needAck = false
    this.unackedInbound--
    return Frame.FLAG_ACK
  }

  /** After the application consumed data: credit the window (auto-tuned), go-yamux style. */
  afterConsume(s: Stream): void {
    if (!s.registered || s.remoteFin || !this.isOpen) return
    const outstanding = s.recvRemaining + s.buffered + s.inFlight
    let delta = s.recvWindow - outstanding
    if (delta < s.recvWindow / 2) return
    const now = this.nowNanos()
    const rtt = this.rttNanos
    if (rtt !== undefined && s.recvWindow < this.config.maxWindow && now - s.epochStart <= 4 * rtt) {
      // grow only as far as the connection's and peer's memory limits allow
      const grown = Math.min(s.recvWindow * 2, this.config.maxWindow)
      const extra = grown - s.recvWindow
      if (this.memory === undefined || this.memory.reserve(extra)) {
        s.recvWindow = grown
        s.grown += extra
        delta = s.recvWindow - outstanding
      }
    }
    s.epochStart = now
    s.recvRemaining += delta
    this.pushControl(Frame.TYPE_WINDOW_UPDATE, this.takeFlags(s), s.id, delta)
  }

  resetStream(s: Stream, err: Duplex.DuplexError, sendRst: boolean): void {
    if (s.readErr === undefined) s.readErr = err
    if (s.writeErr === undefined) s.writeErr = err
    s.buffer = []
    s.buffered = 0
    if (sendRst && s.registered && this.isOpen) this.pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, s.id, 0)
    this.unregister(s)
    this.wakeStream(s)
  }

  /** A new stream, registered. */
  newStream(id: number, inbound: boolean): Stream {
    const s = YamuxStream.make(this, id, inbound)
    this.streams.set(id, s)
    return s
  }

  /** The stream's owning scope closed: reset it unless it finished both ways. */
  releaseStream(s: Stream): Effect.Effect<void> {
    return Effect.sync(() =>
      this.atomically(() => {
        const writeDone = s.writeClosed || s.writeErr !== undefined
        const readDone = s.remoteFin || s.readErr !== undefined
        if (writeDone && readDone) {
          this.unregister(s)
          return
        }
        this.resetStream(s, Duplex.resetError("yamux stream released by its scope"), true)
      })
    )
  }

  // ---- frame handling (reader fiber) -----------------------------------
  isOurs(id: number): boolean {
    return (id % 2 === 1) === this.client
  }
  neverOpened(id: number): boolean {
    return this.isOurs(id) ? id >= this.nextId : id > this.highestRemoteId
  }

  remoteFinished(s: Stream): void {
    if (s.remoteFin) return
    s.remoteFin = true
    const r = s.readWaiter
    s.readWaiter = undefined
    this.wake(r)
    this.maybeFinished(s)
  }

  refuse(id: number): MuxerError | undefined {
    this.pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_RST, id, 0)
    if (++this.pendingRefusals > MAX_PENDING_REFUSALS) {
      return new MuxerError({ reason: "TooManyStreams", message: "yamux: peer keeps opening refused streams" })
    }
    return undefined
  }

  handleStreamFrame(h: Frame.Header): MuxerError | undefined {
    const config = this.config
    const id = h.streamId
    const isData = h.type === Frame.TYPE_DATA
    if (id === 0) return protocolError(`yamux: ${Frame.TYPE_NAMES[h.type]} frame on stream 0`)
    if (isData && h.length > config.maxWindow) {
      return protocolError(`yamux: data frame of ${h.length} bytes exceeds any window we grant`)
    }
    let s = this.streams.get(id)
    if ((h.flags & Frame.FLAG_SYN) !== 0) {
      if (s !== undefined) return protocolError(`yamux: SYN reuses open stream id ${id}`)
      if (this.isOurs(id)) return protocolError(`yamux: SYN with stream id ${id} of our parity`)
      if (this.wasClosed(id)) return protocolError(`yamux: SYN reuses closed stream id ${id}`)
      if (id > this.highestRemoteId) this.highestRemoteId = id
      if (
        this.remoteGoAway || this.inboundCount >= config.maxInboundStreams ||
        this.unackedInbound >= config.maxUnackedInbound
      ) {
        const err = this.refuse(id)
        if (err !== undefined) return err
        if (isData) this.payloadRemaining = h.length
        this.payloadTarget = undefined
        return undefined
      }
      s = this.newStream(id, true)
      this.inboundCount++
      this.unackedInbound++
      ;(this.acceptQueue ??= []).push(s)
      const w = this.acceptWaiters?.shift()
      if (w === undefined) this.fireAcceptNotice()
      else this.wake(w)
    } else if (s === undefined) {
      if (this.neverOpened(id)) {
        return protocolError(`yamux: ${Frame.TYPE_NAMES[h.type]} frame for stream ${id} that was never opened`)
      }
      // a stream closed recently (e.g. we reset it): ignore, skipping its payload
      if (isData) this.payloadRemaining = h.length
      this.payloadTarget = undefined
      return undefined
    }
    if ((h.flags & Frame.FLAG_ACK) !== 0 && !s.ackedByPeer) {
      s.ackedByPeer = true
      this.ackBacklog--
      this.wakeAll(this.openWaiters)
    }
    if ((h.flags & Frame.FLAG_RST) !== 0) {
      this.resetStream(s, Duplex.resetError("yamux stream reset by the remote"), false)
      if (isData) this.payloadRemaining = h.length
      this.payloadTarget = undefined
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
        this.payloadRemaining = h.length
        this.payloadTarget = s
        this.payloadFin = (h.flags & Frame.FLAG_FIN) !== 0
        return undefined
      }
    } else if (h.length > 0) {
      s.sendWindow = Math.min(s.sendWindow + h.length, Frame.MAX_UINT32)
      const w = s.writeWaiter
      s.writeWaiter = undefined
      this.wake(w)
    }
    if ((h.flags & Frame.FLAG_FIN) !== 0) this.remoteFinished(s)
    return undefined
  }

  handlePing(h: Frame.Header): MuxerError | undefined {
    if (h.streamId !== 0) return protocolError(`yamux: ping on stream ${h.streamId}`)
    if ((h.flags & Frame.FLAG_SYN) !== 0) {
      if (this.pendingPongs < MAX_PENDING_PONGS) {
        this.pendingPongs++
        this.pushControl(Frame.TYPE_PING, Frame.FLAG_ACK, 0, h.length)
      }
      return undefined
    }
    if ((h.flags & Frame.FLAG_ACK) !== 0) {
      const ping = this.activePing
      if (ping !== undefined && ping.id === h.length) {
        this.activePing = undefined
        const now = this.nowNanos()
        const rtt = Math.max(0, now - ping.start)
        this.rttNanos = rtt
        ping.rtt = rtt
        this.wakeAll(ping.waiters)
        if (this.kaPing === ping) {
          // answered: the next keep-alive ping one interval from now
          this.kaPing = undefined
          this.kaDeadline = now + Number(Duration.toNanosUnsafe(this.config.keepAliveInterval))
          this.keeper?.poke(this, this.kaDeadline)
        }
      }
      return undefined
    }
    return protocolError("yamux: ping without SYN or ACK")
  }

  handleGoAway(h: Frame.Header): MuxerError | undefined {
    if (h.streamId !== 0) return protocolError(`yamux: GoAway on stream ${h.streamId}`)
    if (h.length === Frame.GO_AWAY_NORMAL) {
      // no new streams either way; the session ends once the last stream has
      this.remoteGoAway = true
      this.wakeAll(this.openWaiters)
      if (this.streams.size === 0) this.terminate(undefined, Frame.GO_AWAY_NORMAL)
      return undefined
    }
    const what = h.length === Frame.GO_AWAY_PROTOCOL_ERROR
      ? "protocol error"
      : h.length === Frame.GO_AWAY_INTERNAL_ERROR
      ? "internal error"
      : `unknown code ${h.length}`
    this.terminate(new MuxerError({ reason: "GoAway", message: `yamux: remote sent GoAway (${what})` }), undefined)
    return undefined
  }

  handleHeader(h: Frame.Header): MuxerError | undefined {
    this.framesReceived++
    switch (h.type) {
      case Frame.TYPE_DATA:
      case Frame.TYPE_WINDOW_UPDATE:
        return this.handleStreamFrame(h)
      case Frame.TYPE_PING:
        return this.handlePing(h)
      default:
        return this.handleGoAway(h)
    }
  }

  deliver(s: Stream, bytes: Uint8Array): void {
    s.inFlight -= bytes.byteLength
    s.bytesRead += bytes.byteLength
    if (s.readErr !== undefined) return
    s.buffer.push(bytes)
    s.buffered += bytes.byteLength
    const r = s.readWaiter
    s.readWaiter = undefined
    this.wake(r)
  }

  /** Parse one received chunk; returns an error that ends the session. */
  processChunk(chunk: Uint8Array): MuxerError | undefined {
    let off = 0
    const len = chunk.byteLength
    while (off < len && this.isOpen) {
      if (this.payloadRemaining > 0) {
        const n = Math.min(this.payloadRemaining, len - off)
        const target = this.payloadTarget
        if (target !== undefined) {
          this.deliver(target, off === 0 && n === len ? chunk : chunk.subarray(off, off + n))
        }
        off += n
        this.payloadRemaining -= n
        if (this.payloadRemaining === 0 && target !== undefined) {
          this.payloadTarget = undefined
          if (this.payloadFin) this.remoteFinished(target)
        }
        continue
      }
      let decoded: Result.Result<Frame.Header, Frame.YamuxFrameError>
      if (this.headerFill === 0 && len - off >= Frame.HEADER_LENGTH) {
        decoded = Frame.decode(chunk, off)
        off += Frame.HEADER_LENGTH
      } else {
        // a header split across chunks: gathered in a 12-byte buffer (allocated on first need)
        const buf = this.headerBuf ??= new Uint8Array(Frame.HEADER_LENGTH)
        const n = Math.min(Frame.HEADER_LENGTH - this.headerFill, len - off)
        buf.set(chunk.subarray(off, off + n), this.headerFill)
        this.headerFill += n
        off += n
        if (this.headerFill < Frame.HEADER_LENGTH) break
        this.headerFill = 0
        decoded = Frame.decode(buf, 0)
      }
      if (Result.isFailure(decoded)) return protocolError(decoded.failure.message)
      const err = this.handleHeader(decoded.success)
      if (err !== undefined) return err
    }
    return undefined
  }

  processBatch(batch: Duplex.Chunks): MuxerError | undefined {
    this.deferring = true
    try {
      for (let i = 0; i < batch.length; i++) {
        const err = this.processChunk(batch[i]!)
        if (err !== undefined) return err
        if (!this.isOpen) return undefined
      }
      return undefined
    } finally {
      this.flushWakes()
    }
  }

  /** The reader: read a batch, parse it, again; a flatMap loop (no generator held while blocked). */
  readLoop(): Effect.Effect<void> {
    if (!this.isOpen) return Effect.void
    return Effect.flatMap(Effect.result(this.duplex.read), (result) => this.onRead(result))
  }

  onRead(result: Result.Result<Duplex.Chunks, Duplex.DuplexError>): Effect.Effect<void> {
    return this.handleRead(Result.isFailure(result) ? result.failure : result.success) ? this.readLoop() : Effect.void
  }

  /**
   * The poll reader (over a Duplex.Pollable): parse everything readable now,
   * then leave a notice to be called again. Runs from the socket's events,
   * on no fiber: an idle session waits without one.
   */
  pump(): void {
    const source = this.pollSource!
    try {
      while (this.isOpen) {
        const r = source.pollRead()
        if (r === undefined) {
          source.onReadable(this.pumpNotice)
          return
        }
        if (!this.handleRead(r)) return
      }
    } catch (defect) {
      // a bug in the parser: the session ends with it (not the socket's event loop)
      this.terminate(
        new MuxerError({ reason: "Io", message: "yamux: the reader failed", cause: defect }),
        Frame.GO_AWAY_INTERNAL_ERROR
      )
    }
  }

  /** One read's result (a batch, EOF or the failure): whether to read on. */
  handleRead(result: Duplex.Chunks | Duplex.DuplexError): boolean {
    if (!this.isOpen) return false
    if (result instanceof Duplex.DuplexError) {
      this.terminate(
        new MuxerError({
          reason: "Io",
          message: `yamux: read failed: ${result.message}`,
          cause: result
        }),
        Frame.GO_AWAY_INTERNAL_ERROR
      )
      return false
    }
    if (result.length === 0) {
      if (this.headerFill > 0 || this.payloadRemaining > 0) {
        this.terminate(protocolError("yamux: connection ended inside a frame"), Frame.GO_AWAY_PROTOCOL_ERROR)
      } else {
        this.terminate(undefined, Frame.GO_AWAY_NORMAL)
      }
      return false
    }
    const err = this.processBatch(result)
    if (err !== undefined) {
      this.deferring = true
      this.terminate(
        err,
        err.reason === "ProtocolError" ? Frame.GO_AWAY_PROTOCOL_ERROR : Frame.GO_AWAY_INTERNAL_ERROR
      )
      this.flushWakes()
      return false
    }
    return this.isOpen
  }

  // ---- ping / keep-alive -------------------------------------------------
  /** The ping in flight, or a new one sent now. */
  startPing(): Ping {
    if (this.activePing !== undefined) return this.activePing
    const started: Ping = { id: this.nextPingId, start: this.nowNanos(), waiters: [], rtt: undefined }
    this.nextPingId = (this.nextPingId + 1) % (Frame.MAX_UINT32 + 1)
    this.activePing = started
    this.atomically(() => this.pushControl(Frame.TYPE_PING, Frame.FLAG_SYN, 0, started.id))
    return started
  }

  get ping(): Effect.Effect<number, MuxerError> {
    return Effect.suspend(() => {
      if (!this.isOpen) return Effect.fail(this.endedError())
      const current = this.startPing()
      return Effect.flatMap(Wakeups.waitIn(current.waiters), () => {
        if (current.rtt === undefined) return Effect.fail(this.endedError())
        return Effect.succeed(current.rtt / 1e6)
      })
    })
  }

  rtt(): number | undefined {
    return this.rttNanos === undefined ? undefined : this.rttNanos / 1e6
  }

  // A keep-alive ping must be answered within the timeout; but while other
  // frames keep arriving the peer is alive (its pong may be queued behind
  // data on a busy link), so the deadline restarts instead.
  /** The keep-alive deadline has come (called by the KeepAlive fiber): ping, or check the pong. */
  keepAliveTick(now: number): void {
    if (!this.isOpen) return
    const timeout = this.config.pingTimeout
    if (this.kaPing === undefined) {
      this.kaPing = this.startPing()
    } else if (this.framesReceived === this.kaSince) {
      this.terminate(
        new MuxerError({
          reason: "Timeout",
          message: `yamux: keep-alive ping unanswered, and nothing received, for ${Duration.format(timeout)}`
        }),
        Frame.GO_AWAY_INTERNAL_ERROR
      )
      return
    }
    this.kaSince = this.framesReceived
    this.kaDeadline = now + Number(Duration.toNanosUnsafe(timeout))
  }

  // ---- public API --------------------------------------------------------
  acquire(s: Stream, scope: Scope.Scope): Effect.Effect<MuxedStream> {
    return Effect.as(Scope.addFinalizer(scope, this.releaseStream(s)), s.handle)
  }

  get open(): Effect.Effect<MuxedStream, MuxerError, Scope.Scope> {
    return Effect.flatMap(Effect.scope, (scope) => Effect.uninterruptibleMask((restore) => this.openIn(scope, restore)))
  }

  openIn(scope: Scope.Scope, restore: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>) {
    const config = this.config
    const loop: Effect.Effect<MuxedStream, MuxerError> = Effect.suspend(() => {
      if (!this.isOpen) return Effect.fail(this.endedError())
      if (this.remoteGoAway) {
        return Effect.fail(new MuxerError({ reason: "GoAway", message: "yamux: the remote sent GoAway" }))
      }
      if (this.outboundCount >= config.maxOutboundStreams) {
        return Effect.fail(
          new MuxerError({
            reason: "TooManyStreams",
            message: `yamux: ${this.outboundCount} outbound streams open (limit ${config.maxOutboundStreams})`
          })
        )
      }
      if (this.ackBacklog >= config.maxAckBacklog) {
        return Effect.flatMap(restore(this.waitIn("openWaiters")), () => loop)
      }
      if (this.nextId > Frame.MAX_UINT32) {
        return Effect.fail(new MuxerError({ reason: "TooManyStreams", message: "yamux: stream ids exhausted" }))
      }
      const id = this.nextId
      this.nextId += 2
      const s = this.newStream(id, false)
      s.recvRemaining = config.initialWindow
      this.outboundCount++
      this.ackBacklog++
      this.atomically(() =>
        this.pushControl(Frame.TYPE_WINDOW_UPDATE, Frame.FLAG_SYN, id, config.initialWindow - Frame.INITIAL_WINDOW)
      )
      return this.acquire(s, scope)
    })
    return loop
  }

  get accept(): Effect.Effect<MuxedStream, MuxerError, Scope.Scope> {
    return Effect.flatMap(
      Effect.scope,
      (scope) => Effect.uninterruptibleMask((restore) => this.acceptIn(scope, restore))
    )
  }

  whenAcceptable(notify: () => void): void {
    if (!this.isOpen || (this.acceptQueue !== undefined && this.acceptQueue.length > 0)) return notify()
    this.acceptNotice = notify
  }

  /** The accept notice (whenAcceptable), woken once: on an inbound stream, or the session's end. */
  fireAcceptNotice(): void {
    const n = this.acceptNotice
    if (n === undefined) return
    this.acceptNotice = undefined
    this.wake(n)
  }

  acceptIn(
    scope: Scope.Scope,
    restore: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<MuxedStream, MuxerError> {
    const s = this.acceptQueue?.shift()
    if (s !== undefined) return this.acquire(s, scope)
    if (!this.isOpen) return Effect.fail(this.endedError())
    return Effect.flatMap(restore(this.waitIn("acceptWaiters")), () => this.acceptIn(scope, restore))
  }

  /** Graceful close: GoAway, then wait (bounded by closeTimeout) for the writer to flush and close the write side. */
  get close(): Effect.Effect<void> {
    return Effect.suspend(() => this.shutdown())
  }

  shutdown(): Effect.Effect<void> {
    this.terminate(undefined, Frame.GO_AWAY_NORMAL)
    if (this.writeDone) return Effect.void
    return Effect.flatMap(Effect.timeoutOption(this.waitFlushed(), this.config.closeTimeout), (r) => {
      if (r._tag === "Some") return Effect.void
      this.writeDone = true
      const w = this.writerFiber
      return w === undefined ? this.duplex.reset : Effect.andThen(Fiber.interrupt(w), this.duplex.reset)
    })
  }

  waitFlushed(): Effect.Effect<void> {
    return Effect.suspend(() => this.writeDone ? Effect.void : this.waitIn("flushWaiters"))
  }

  /** The session's scope closed: shut down, then stop the reader and keep-alive fibers. */
  finalize(): Effect.Effect<void> {
    return Effect.andThen(
      this.shutdown(),
      Effect.suspend(() => {
        this.pollSource?.onReadable(undefined)
        const k = this.keepAliveFiber
        const r = this.readerFiber
        this.keepAliveFiber = undefined
        this.readerFiber = undefined
        if (k === undefined) return r === undefined ? Effect.void : Fiber.interrupt(r)
        return r === undefined ? Fiber.interrupt(k) : Effect.andThen(Fiber.interrupt(k), Fiber.interrupt(r))
      })
    )
  }

  get closed(): Effect.Effect<void, MuxerError> {
    return Effect.suspend(() => {
      // oxlint-disable-next-line unicorn/no-accessor-recursion -- re-read after a wake-up, lazily
      if (this.isOpen) return Effect.andThen(this.waitIn("closedWaiters"), this.closed)
      return this.endError === undefined ? Effect.void : Effect.fail(this.endError)
    })
  }

  streamCount(): number {
    return this.streams.size
  }
}

export const make = (
  duplex: Duplex.Duplex,
  direction: Direction,
  config: Config,
  memory?: MemoryBudget,
  services?: Context.Context<never>
): Effect.Effect<YamuxSession, never, Scope.Scope> =>
  Effect.gen(function*() {
    const sessionScope = yield* Effect.scope
    const clock = yield* Clock.Clock
    // the session outlives the span it is made in (the connection's upgrade): its fibers,
    // and the services its writers run with, do not keep that ended span and its result
    const own = services ?? Context.omit(Tracer.ParentSpan)(yield* Effect.context<never>())
    const session = new SessionImpl(duplex, direction, config, clock, own)
    session.memory = memory
    // the fibers are detached (no parent, no scope entry each) and run on the session's
    // services: the one finalizer shuts the session down, then interrupts them (a
    // function of the exit, not an Effect made now: the scope holds one closure for it)
    yield* Scope.addFinalizerExit(sessionScope, () => session.finalize())
    session.syncSink = Duplex.syncWritable(duplex)
    const pollable = Duplex.pollable(duplex)
    if (pollable === undefined) {
      session.readerFiber = yield* Effect.provideContext(
        Effect.forkDetach(Effect.suspend(() => session.readLoop())),
        own
      )
    } else {
      session.pollSource = pollable
      session.pumpNotice = () => session.pump()
      session.pump()
    }
    if (config.enableKeepAlive) {
      // the first ping at once, then one interval after each pong
      const keeper = KeepAlive.forClock(clock)
      session.keeper = keeper
      session.kaDeadline = session.nowNanos()
      yield* keeper.join(session)
    } else {
      session.keepAliveFiber = yield* Effect.provideContext(
        Effect.forkDetach(Effect.ensuring(
          Effect.ignore(session.ping), // one ping to measure the RTT (window auto-tuning)
          Effect.sync(() => {
            session.keepAliveFiber = undefined
          })
        )),
        own
      )
    }
    return session
  })

/**
 * A connected `node:net` socket as a {@link Duplex.Duplex} (docs/ARCHITECTURE.md §3),
 * the socket duplex behind the TCP and Unix transports (and the TLS channel, which wraps their sockets).
 *
 * The socket runs in flowing mode: every `data` chunk Node hands over is kept
 * as is (no copy) in an unread list, and `read` takes the whole list as one
 * batch. When the unread bytes reach `maxBufferedBytes` the socket is paused,
 * so the kernel's receive window closes and the remote is throttled; the next
 * `read` resumes it. `write` corks the socket around a batch, so Node hands
 * the whole batch to the kernel in one `writev`, and suspends until `drain`
 * when Node's write buffer is over its high-water mark.
 *
 * Half-close is TCP's: the socket is made with `allowHalfOpen`, `closeWrite`
 * is `socket.end()` (FIN), and a FIN from the remote is read as EOF while our
 * write side stays open. `reset` is `socket.resetAndDestroy()` (RST); an RST
 * from the remote (ECONNRESET / EPIPE) fails reads and writes with `Reset`.
 *
 * Everything here is synchronous state driven by socket events; the only
 * Effects are `read`/`write` (which suspend through `Effect.callback`) and
 * `close`, the scope finalizer.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type * as Net from "node:net"
import * as Duplex from "../core/Duplex.ts"
import { errorCode, errorMessage } from "../internal/errors.ts"

export interface Options {
  /** Unread bytes above which the socket is paused (read backpressure). */
  readonly maxBufferedBytes: number
  /** How long `close` waits for buffered writes to flush before destroying the socket. */
  readonly closeTimeout: Duration.Input
}

export interface SocketDuplex {
  readonly duplex: Duplex.Duplex
  /** The socket it wraps. */
  readonly socket: Net.Socket
  /** Scope finalizer: flush what was written (bounded by `closeTimeout`), then destroy. Idempotent. */
  readonly close: Effect.Effect<void>
  /** Unread bytes currently held (for tests and metrics). */
  readonly bufferedBytes: () => number
  /**
   * `listener` is called once when the socket closes, after the duplex saw it
   * (as `socket.once("close")`, through the duplex's own listener: a second
   * listener on the socket would cost an idle connection a listener array and
   * a wrapper).
   */
  readonly once: (event: "close", listener: () => void) => void
}

type Resume<A> = (effect: Effect.Effect<A, Duplex.DuplexError>) => void

/** Map a socket error event to a DuplexError (RST from the remote is `Reset`). */
export const mapSocketError = (err: unknown): Duplex.DuplexError => {
  const code = errorCode(err)
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    return new Duplex.DuplexError({ reason: "Reset", message: `connection reset by peer (${code})`, cause: err })
  }
  if (code === "ETIMEDOUT") {
    return new Duplex.DuplexError({ reason: "Timeout", message: `socket timed out: ${errorMessage(err)}`, cause: err })
  }
  return new Duplex.DuplexError({ reason: "Io", message: `socket error: ${errorMessage(err)}`, cause: err })
}

/**
 * Wrap a connected socket. Attaches its listeners synchronously, so call it in
 * the same tick as the `connect` (or `connection`) event: an `error` event
 * with no listener would otherwise crash the process.
 */
export const make = (socket: Net.Socket, options: Options): SocketDuplex => new SocketDuplexImpl(socket, options)

/** The socket's own byte counters (Node keeps them anyway). */
export const bytesOf = (socket: Net.Socket) => (): { readonly read: number; readonly written: number } => ({
  read: socket.bytesRead,
  written: socket.bytesWritten
})

/** The duplex of each socket, for the socket event listeners (shared functions, not closures per socket). */
const bySocket = new WeakMap<Net.Socket, SocketDuplexImpl>()

function onData(this: Net.Socket, chunk: Uint8Array): void {
  bySocket.get(this)?.onData(chunk)
}
function onEnd(this: Net.Socket): void {
  bySocket.get(this)?.onEnd()
}
function onError(this: Net.Socket, err: Error): void {
  bySocket.get(this)?.fail(mapSocketError(err), false)
}
function onDrain(this: Net.Socket): void {
  bySocket.get(this)?.wakeWriters(Effect.void)
}
function onClose(this: Net.Socket): void {
  bySocket.get(this)?.onClose()
}

/**
 * The socket's state in fields, its behaviour on the prototype: an idle
 * connection holds this object and no closures of its own.
 */
class SocketDuplexImpl implements SocketDuplex, Duplex.Duplex, Duplex.Pollable, Duplex.SyncWritable, Duplex.OwnedReads {
  readonly socket: Net.Socket
  /** Node makes an ArrayBuffer for each read of a socket, of the bytes read (Duplex.OwnedReads). */
  get ownedReads(): true {
    return true
  }
  readonly maxBuffered: number
  readonly closeTimeout: Duration.Input
  unread: Array<Uint8Array> = []
  unreadBytes = 0
  paused = false
  eof = false
  /** Our own reset or close: reads and writes fail with it at once, unread bytes are dropped. */
  localFailure: Duplex.DuplexError | undefined = undefined
  /** A socket error (RST from the remote, I/O error): reads fail with it once unread bytes are taken. */
  remoteFailure: Duplex.DuplexError | undefined = undefined
  writeClosed = false
  closed = false
  /** The waiting reader (one reader at a time; a second one waits in `moreReaders`). */
  readWaiter: Resume<Duplex.Chunks> | undefined = undefined
  moreReaders: Array<Resume<Duplex.Chunks>> | undefined = undefined
  drainWaiters: Array<Resume<void>> | undefined = undefined
  /** A poll reader's notice (Duplex.Pollable): called once on the next data, EOF or failure. */
  readNotify: (() => void) | undefined = undefined
  /** `once("close")` listeners: one normally */
  closeListener: (() => void) | undefined = undefined

  constructor(socket: Net.Socket, options: Options) {
    this.socket = socket
    this.maxBuffered = Math.max(1, options.maxBufferedBytes)
    this.closeTimeout = options.closeTimeout
    bySocket.set(socket, this)
    socket.on("data", onData)
    socket.on("end", onEnd)
    socket.on("error", onError)
    socket.on("drain", onDrain)
    socket.on("close", onClose)
  }

  get duplex(): Duplex.Duplex {
    return this
  }

  readonly bufferedBytes = (): number => this.unreadBytes

  failure(): Duplex.DuplexError | undefined {
    return this.localFailure ?? this.remoteFailure
  }

  /** Every waiting reader polls again (normally there is one; extra ones find nothing and wait again). */
  wakeReader(): void {
    const notify = this.readNotify
    if (notify !== undefined) {
      this.readNotify = undefined
      notify()
    }
    const w = this.readWaiter
    if (w === undefined) return
    this.readWaiter = undefined
    const more = this.moreReaders
    this.moreReaders = undefined
    w(this.read)
    if (more !== undefined) { for (const m of more) m(this.read) }
  }

  wakeWriters(result: Effect.Effect<void, Duplex.DuplexError>): void {
    const waiters = this.drainWaiters
    if (waiters === undefined) return
    this.drainWaiters = undefined
    for (const w of waiters) w(result)
  }

  fail(err: Duplex.DuplexError, local: boolean): void {
    if (local) {
      this.localFailure ??= err
      this.unread = []
      this.unreadBytes = 0
    } else {
      this.remoteFailure ??= err
    }
    this.writeClosed = true
    this.wakeReader()
    this.wakeWriters(Effect.fail(this.failure()!))
  }

  onData(chunk: Uint8Array): void {
    if (this.localFailure !== undefined) return
    this.unread.push(chunk)
    this.unreadBytes += chunk.byteLength
    if (!this.paused && this.unreadBytes >= this.maxBuffered) {
      this.paused = true
      this.socket.pause()
    }
    this.wakeReader()
  }

  onEnd(): void {
    this.eof = true
    this.wakeReader()
  }

  onClose(): void {
    // A close with neither an error nor our own reset/close: both sides ended
    // cleanly (FIN both ways). Reads keep returning EOF; writes fail Closed.
    this.writeClosed = true
    if (!this.eof && this.failure() === undefined) {
      this.fail(new Duplex.DuplexError({ reason: "Io", message: "socket closed before EOF" }), false)
    }
    this.wakeReader()
    this.wakeWriters(Effect.fail(this.failure() ?? Duplex.closedError("socket closed")))
    const listener = this.closeListener
    this.closeListener = undefined
    listener?.()
  }

  once(_event: "close", listener: () => void): void {
    const earlier = this.closeListener
    this.closeListener = earlier === undefined ? listener : () => {
      earlier()
      listener()
    }
  }

  /** A read result available now, or undefined when the reader has to wait. */
  pollRead(): Duplex.Chunks | Duplex.DuplexError | undefined {
    if (this.localFailure !== undefined) return this.localFailure
    if (this.unread.length > 0) {
      const batch = this.unread
      this.unread = []
      this.unreadBytes = 0
      if (this.paused) {
        this.paused = false
        if (!this.socket.destroyed) this.socket.resume()
      }
      return batch
    }
    if (this.remoteFailure !== undefined) return this.remoteFailure
    if (this.eof) return Duplex.EOF
    return undefined
  }

  onReadable(notify: (() => void) | undefined): void {
    this.readNotify = notify
  }

  poll(): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> | undefined {
    const r = this.pollRead()
    return r === undefined ? undefined : r instanceof Duplex.DuplexError ? Effect.fail(r) : Effect.succeed(r)
  }

  waitRead(resume: Resume<Duplex.Chunks>): Effect.Effect<void> {
    if (this.readWaiter === undefined) this.readWaiter = resume
    else (this.moreReaders ??= []).push(resume)
    return Effect.sync(() => this.unwaitRead(resume))
  }

  unwaitRead(resume: Resume<Duplex.Chunks>): void {
    if (this.readWaiter === resume) {
      const more = this.moreReaders
      this.readWaiter = more?.shift()
      if (more !== undefined && more.length === 0) this.moreReaders = undefined
    } else if (this.moreReaders !== undefined) {
      this.moreReaders = this.moreReaders.filter((w) => w !== resume)
    }
  }

  get read(): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> {
    return Effect.suspend(() =>
      this.poll() ?? Effect.callback<Duplex.Chunks, Duplex.DuplexError>((resume) => this.waitRead(resume))
    )
  }

  awaitDrain(resume: Resume<void>): Effect.Effect<void> | undefined {
    const failed = this.failure()
    if (failed !== undefined) {
      resume(Effect.fail(failed))
      return undefined
    }
    if (!this.socket.writableNeedDrain) {
      resume(Effect.void)
      return undefined
    }
    ;(this.drainWaiters ??= []).push(resume)
    return Effect.sync(() => {
      if (this.drainWaiters !== undefined) this.drainWaiters = this.drainWaiters.filter((w) => w !== resume)
    })
  }

  /**
   * Hand the batch to the socket (corked: one `writev`). A handed-over batch
   * is released once Node reports its last chunk written (the kernel has the
   * bytes; writes complete in order), or dropped.
   */
  writeNow(chunks: Duplex.Chunks, handOver: boolean): boolean {
    const socket = this.socket
    let ok = true
    const last = chunks.length - 1
    if (last > 0) socket.cork()
    for (let i = 0; i <= last; i++) {
      const c = chunks[i]!
      if (c.byteLength === 0) continue
      ok = i === last && handOver ? socket.write(c, () => Duplex.releaseAll(chunks)) : socket.write(c)
    }
    if (last > 0) socket.uncork()
    return ok
  }

  /** An own property (callers may take it off the object, e.g. `Duplex.prepend`). */
  readonly write = (chunks: Duplex.Chunks, handOver?: boolean): Effect.Effect<void, Duplex.DuplexError> =>
    this.writeBatch(chunks, handOver === true)

  tryWrite(chunks: Duplex.Chunks, handOver?: boolean): boolean | Duplex.DuplexError {
    const blocked = this.writeRefusal()
    if (blocked !== undefined) return blocked
    if (this.socket.writableNeedDrain) return false
    if (chunks.length === 0) return true
    const ok = this.writeCaught(chunks, handOver === true)
    return ok instanceof Duplex.DuplexError ? ok : true
  }

  writeBatch(chunks: Duplex.Chunks, handOver: boolean): Effect.Effect<void, Duplex.DuplexError> {
    return Effect.suspend(() => {
      const blocked = this.writeRefusal()
      if (blocked !== undefined) return Effect.fail(blocked)
      if (chunks.length === 0) return Effect.void
      const ok = this.writeCaught(chunks, handOver)
      if (ok instanceof Duplex.DuplexError) return Effect.fail(ok)
      return ok ? Effect.void : Effect.callback<void, Duplex.DuplexError>((resume) => this.awaitDrain(resume))
    })
  }

  /** Why no write can go now (the duplex failed or its write side closed), if so. */
  writeRefusal(): Duplex.DuplexError | undefined {
    const failed = this.failure()
    if (failed !== undefined) return failed
    const socket = this.socket
    if (this.writeClosed || socket.destroyed || socket.writableEnded) return Duplex.closedError()
    return undefined
  }

  /** `writeNow`, with a throw reported as an Io failure (only a non-buffer chunk makes `write()` throw). */
  writeCaught(chunks: Duplex.Chunks, handOver: boolean): boolean | Duplex.DuplexError {
    try {
      return this.writeNow(chunks, handOver)
    } catch (err) {
      return new Duplex.DuplexError({ reason: "Io", message: `write failed: ${errorMessage(err)}`, cause: err })
    }
  }

  get closeWrite(): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.writeClosed) return
      this.writeClosed = true
      const socket = this.socket
      if (!socket.destroyed && !socket.writableEnded) socket.end()
      // Buffered writes are flushed before the FIN; Node emits no `drain` once ending.
      this.wakeWriters(Effect.void)
    })
  }

  get reset(): Effect.Effect<void> {
    return Effect.sync(() => {
      const socket = this.socket
      const alive = !socket.destroyed
      this.fail(Duplex.resetError(), true)
      if (!alive) return
      try {
        socket.resetAndDestroy()
      } catch {
        // Not a TCP handle (e.g. a Unix socket): a plain destroy is the closest.
        socket.destroy()
      }
    })
  }

  get close(): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.closed) return Effect.void
      this.closed = true
      const socket = this.socket
      const flush = !socket.destroyed && this.failure() === undefined && socket.writableLength > 0
      this.fail(Duplex.closedError("connection closed"), true)
      if (!flush) {
        socket.destroy()
        return Effect.void
      }
      if (!socket.writableEnded) socket.end()
      return awaitFlushed(socket).pipe(
        Effect.timeoutOption(this.closeTimeout),
        Effect.ensuring(Effect.sync(() => socket.destroy()))
      )
    })
  }
}

const awaitFlushed = (socket: Net.Socket) =>
  Effect.callback<void>((resume) => {
    if (socket.destroyed || socket.writableFinished) return resume(Effect.void)
    const done = () => {
      socket.off("finish", done)
      socket.off("close", done)
      resume(Effect.void)
    }
    socket.on("finish", done)
    socket.on("close", done)
    return Effect.sync(() => {
      socket.off("finish", done)
      socket.off("close", done)
    })
  })

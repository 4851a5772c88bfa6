/**
 * A connected `node:net` socket as a {@link Duplex.Duplex} (ARCHITECTURE.md §3),
 * the private machinery behind the TCP transport (and later the Unix one).
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
import * as Duplex from "../../core/Duplex.ts"

export interface Options {
  /** Unread bytes above which the socket is paused (read backpressure). */
  readonly maxBufferedBytes: number
  /** How long `close` waits for buffered writes to flush before destroying the socket. */
  readonly closeTimeout: Duration.Input
}

export interface SocketDuplex {
  readonly duplex: Duplex.Duplex
  /** Scope finalizer: flush what was written (bounded by `closeTimeout`), then destroy. Idempotent. */
  readonly close: Effect.Effect<void>
  /** Unread bytes currently held (for tests and metrics). */
  readonly bufferedBytes: () => number
}

type Resume<A> = (effect: Effect.Effect<A, Duplex.DuplexError>) => void

const errorCode = (err: unknown): string | undefined => {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { readonly code: unknown }).code
    return typeof code === "string" ? code : undefined
  }
  return undefined
}

const errorMessage = (err: unknown): string =>
  typeof err === "object" && err !== null && "message" in err && typeof err.message === "string"
    ? err.message
    : String(err)

/** Map a socket error event to a DuplexError (RST from the remote is `Reset`). */
export const mapSocketError = (err: unknown): Duplex.DuplexError => {
  const code = errorCode(err)
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    return new Duplex.DuplexError({ reason: "Reset", message: `connection reset by peer (${code})` })
  }
  if (code === "ETIMEDOUT") {
    return new Duplex.DuplexError({ reason: "Timeout", message: `socket timed out: ${errorMessage(err)}` })
  }
  return new Duplex.DuplexError({ reason: "Io", message: `socket error: ${errorMessage(err)}` })
}

/**
 * Wrap a connected socket. Attaches its listeners synchronously, so call it in
 * the same tick as the `connect` (or `connection`) event: an `error` event
 * with no listener would otherwise crash the process.
 */
export const make = (socket: Net.Socket, options: Options): SocketDuplex => {
  const maxBuffered = Math.max(1, options.maxBufferedBytes)
  let unread: Array<Uint8Array> = []
  let unreadBytes = 0
  let paused = false
  let eof = false
  /** Our own reset or close: reads and writes fail with it at once, unread bytes are dropped. */
  let localFailure: Duplex.DuplexError | undefined
  /** A socket error (RST from the remote, I/O error): reads fail with it once unread bytes are taken. */
  let remoteFailure: Duplex.DuplexError | undefined
  let writeClosed = false
  let readWaiters: Array<Resume<Duplex.Chunks>> = []
  let drainWaiters: Array<Resume<void>> = []

  const failure = (): Duplex.DuplexError | undefined => localFailure ?? remoteFailure

  /** Every waiting reader polls again (normally there is one; extra ones find nothing and wait again). */
  const wakeReader = () => {
    if (readWaiters.length === 0) return
    const waiters = readWaiters
    readWaiters = []
    for (const w of waiters) w(read)
  }

  const wakeWriters = (result: Effect.Effect<void, Duplex.DuplexError>) => {
    if (drainWaiters.length === 0) return
    const waiters = drainWaiters
    drainWaiters = []
    for (const w of waiters) w(result)
  }

  const fail = (err: Duplex.DuplexError, local: boolean) => {
    if (local) {
      localFailure ??= err
      unread = []
      unreadBytes = 0
    } else {
      remoteFailure ??= err
    }
    writeClosed = true
    wakeReader()
    wakeWriters(Effect.fail(failure()!))
  }

  const onData = (chunk: Uint8Array) => {
    if (localFailure !== undefined) return
    unread.push(chunk)
    unreadBytes += chunk.byteLength
    if (!paused && unreadBytes >= maxBuffered) {
      paused = true
      socket.pause()
    }
    wakeReader()
  }
  const onEnd = () => {
    eof = true
    wakeReader()
  }
  const onError = (err: Error) => fail(mapSocketError(err), false)
  const onDrain = () => wakeWriters(Effect.void)
  const onClose = () => {
    // A close with neither an error nor our own reset/close: both sides ended
    // cleanly (FIN both ways). Reads keep returning EOF; writes fail Closed.
    writeClosed = true
    if (!eof && failure() === undefined) {
      fail(new Duplex.DuplexError({ reason: "Io", message: "socket closed before EOF" }), false)
    }
    wakeReader()
    wakeWriters(Effect.fail(failure() ?? Duplex.closedError("socket closed")))
  }

  socket.on("data", onData)
  socket.on("end", onEnd)
  socket.on("error", onError)
  socket.on("drain", onDrain)
  socket.on("close", onClose)

  /** A read result available now, or undefined when the reader has to wait. */
  const poll = (): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> | undefined => {
    if (localFailure !== undefined) return Effect.fail(localFailure)
    if (unread.length > 0) {
      const batch = unread
      unread = []
      unreadBytes = 0
      if (paused) {
        paused = false
        if (!socket.destroyed) socket.resume()
      }
      return Effect.succeed(batch)
    }
    if (remoteFailure !== undefined) return Effect.fail(remoteFailure)
    if (eof) return Effect.succeed(Duplex.EOF)
    return undefined
  }

  const wait = Effect.callback<Duplex.Chunks, Duplex.DuplexError>((resume) => {
    readWaiters.push(resume)
    return Effect.sync(() => {
      readWaiters = readWaiters.filter((w) => w !== resume)
    })
  })

  const read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError> = Effect.suspend(() => poll() ?? wait)

  const awaitDrain = Effect.callback<void, Duplex.DuplexError>((resume) => {
    const failed = failure()
    if (failed !== undefined) return resume(Effect.fail(failed))
    if (!socket.writableNeedDrain) return resume(Effect.void)
    drainWaiters.push(resume)
    return Effect.sync(() => {
      drainWaiters = drainWaiters.filter((w) => w !== resume)
    })
  })

  const writeNow = (chunks: Duplex.Chunks): boolean => {
    let ok = true
    if (chunks.length === 1) {
      const c = chunks[0]!
      if (c.byteLength > 0) ok = socket.write(c)
    } else {
      socket.cork()
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i]!
        if (c.byteLength > 0) ok = socket.write(c)
      }
      socket.uncork()
    }
    return ok
  }

  const write = (chunks: Duplex.Chunks): Effect.Effect<void, Duplex.DuplexError> =>
    Effect.suspend(() => {
      const failed = failure()
      if (failed !== undefined) return Effect.fail(failed)
      if (writeClosed || socket.destroyed || socket.writableEnded) return Effect.fail(Duplex.closedError())
      if (chunks.length === 0) return Effect.void
      let ok: boolean
      try {
        ok = writeNow(chunks)
      } catch (err) {
        // Only a non-buffer chunk can make write() throw; report it as Io.
        return Effect.fail(new Duplex.DuplexError({ reason: "Io", message: `write failed: ${errorMessage(err)}` }))
      }
      return ok ? Effect.void : awaitDrain
    })

  const closeWrite: Effect.Effect<void> = Effect.sync(() => {
    if (writeClosed) return
    writeClosed = true
    if (!socket.destroyed && !socket.writableEnded) socket.end()
    // Buffered writes are flushed before the FIN; Node emits no `drain` once ending.
    wakeWriters(Effect.void)
  })

  const reset: Effect.Effect<void> = Effect.sync(() => {
    const alive = !socket.destroyed
    fail(Duplex.resetError(), true)
    if (!alive) return
    try {
      socket.resetAndDestroy()
    } catch {
      // Not a TCP handle (e.g. a Unix socket): a plain destroy is the closest.
      socket.destroy()
    }
  })

  const awaitFlushed = Effect.callback<void>((resume) => {
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

  let closed = false
  const close: Effect.Effect<void> = Effect.suspend(() => {
    if (closed) return Effect.void
    closed = true
    const flush = !socket.destroyed && failure() === undefined && socket.writableLength > 0
    fail(Duplex.closedError("connection closed"), true)
    if (!flush) {
      socket.destroy()
      return Effect.void
    }
    if (!socket.writableEnded) socket.end()
    return awaitFlushed.pipe(
      Effect.timeoutOption(options.closeTimeout),
      Effect.ensuring(Effect.sync(() => socket.destroy()))
    )
  })

  return {
    duplex: { read, write, closeWrite, reset },
    close,
    bufferedBytes: () => unreadBytes
  }
}

/**
 * An open `ws` WebSocket as a {@link Duplex.Duplex} (docs/ARCHITECTURE.md §3): the
 * private byte path of the WebSocket transport (libp2p websockets spec: the
 * raw libp2p byte stream carried in binary messages, RFC 6455 §5.6).
 *
 * - Read: every binary message is one chunk, kept as the Buffer `ws` hands
 *   over (no copy). `read` takes all unread chunks as one batch. When the
 *   unread bytes reach `maxBufferedBytes` the WebSocket is paused (its socket
 *   stops reading, so TCP throttles the remote); the next `read` resumes it.
 *   A text message is a protocol violation (libp2p sends binary only): reads
 *   fail with `Io` and the connection is closed with 1003 (RFC 6455 §7.4.1,
 *   "unsupported data").
 * - Write: a batch goes out as binary messages, small chunks joined into
 *   messages of about 64 KiB, chunks of 64 KiB or more as they are (cut at
 *   1 MiB); the socket is corked around the batch so the frames leave in one
 *   `writev`. A write suspends
 *   until `drain` while the socket's write buffer is over its high-water mark.
 * - Half-close: WebSocket has none. After a Close frame an endpoint sends no
 *   more data, and the remote answers a Close frame with its own at once
 *   (RFC 6455 §5.5.1, §7.1.2), so `closeWrite` starts the closing handshake
 *   (Close 1000, queued after the data written before it) — as js-libp2p
 *   does when it closes a connection. The remote reads EOF; our read side
 *   keeps delivering what the remote sent before its Close, then reads EOF
 *   too; later writes on either side fail with `Closed`.
 * - A Close frame from the remote with 1000 (normal), 1001 (going away) or
 *   no status (1005) is EOF. The connection ending without a Close frame
 *   (1006: TCP closed or reset, or `terminate()` on the other side) is
 *   `Reset`, as js-libp2p reads it (`wasClean === false` → remote reset).
 *   Any other status (1002 protocol error, 1009 too big, …) fails reads
 *   with `Io`.
 * - `reset` drops the connection without a Close frame (`terminate`), which
 *   the remote reads as a reset.
 * - `close`, the scope finalizer, sends Close 1000 if nothing did yet and
 *   waits (bounded by `closeTimeout`) for the closing handshake, then drops
 *   whatever is left.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect } from "effect"
import type * as Stream from "node:stream"
import type { RawData, WebSocket } from "ws"
import * as Duplex from "../../core/Duplex.ts"

export interface Options {
  /** Unread bytes above which the WebSocket is paused (read backpressure). */
  readonly maxBufferedBytes: number
  /** How long `close` waits for the closing handshake before dropping the connection. */
  readonly closeTimeout: Duration.Input
}

export interface WsDuplex {
  readonly duplex: Duplex.Duplex
  /** Scope finalizer: Close 1000 (unless done), wait for the handshake (bounded), then drop. Idempotent. */
  readonly close: Effect.Effect<void>
  /** Unread bytes currently held (for tests and metrics). */
  readonly bufferedBytes: () => number
}

type Resume<A> = (effect: Effect.Effect<A, Duplex.DuplexError>) => void

/** RFC 6455 §7.4.1 status codes used here. */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  unsupportedData: 1003,
  noStatus: 1005,
  abnormal: 1006
} as const

const OPEN = 1

const SEND_OPTIONS = { binary: true, compress: false, fin: true } as const

/** A write joins small chunks into messages of at least this many bytes (or the rest of the batch). */
export const MESSAGE_TARGET = 64 * 1024

/** A chunk larger than this is sent as several messages of at most this many bytes. */
export const MAX_MESSAGE = 1024 * 1024

const errorCode = (err: unknown): string | undefined =>
  typeof err === "object" && err !== null && "code" in err && typeof err.code === "string" ? err.code : undefined

const errorMessage = (err: unknown): string =>
  typeof err === "object" && err !== null && "message" in err && typeof err.message === "string"
    ? err.message
    : String(err)

/** Map a WebSocket `error` event (socket error, or a frame `ws` refused) to a DuplexError. */
export const mapError = (err: unknown): Duplex.DuplexError => {
  const code = errorCode(err)
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ECONNABORTED") {
    return new Duplex.DuplexError({ reason: "Reset", message: `websocket: connection reset by peer (${code})` })
  }
  if (code === "ETIMEDOUT") {
    return new Duplex.DuplexError({ reason: "Timeout", message: `websocket: socket timed out: ${errorMessage(err)}` })
  }
  if (code !== undefined && code.startsWith("WS_ERR_")) {
    return new Duplex.DuplexError({
      reason: "Io",
      message: `websocket: protocol error (${code}): ${errorMessage(err)}`
    })
  }
  return new Duplex.DuplexError({ reason: "Io", message: `websocket: ${errorMessage(err)}` })
}

/** One binary message as one chunk (with binaryType "nodebuffer", `ws` gives a Buffer). */
const toChunk = (data: RawData): Uint8Array => {
  if (data instanceof Uint8Array) return data
  if (data instanceof ArrayBuffer) return new Uint8Array(data)
  return Duplex.concat(data)
}

/**
 * Wrap an open WebSocket and the socket it runs on (the `net.Socket` or
 * `tls.TLSSocket` its `upgrade` gave). Attaches its listeners synchronously:
 * call it in the same tick as the `open` event (client) or the
 * `handleUpgrade` callback (server).
 */
export const make = (ws: WebSocket, socket: Stream.Duplex, options: Options): WsDuplex => {
  const maxBuffered = Math.max(1, options.maxBufferedBytes)
  let unread: Array<Uint8Array> = []
  let unreadBytes = 0
  let paused = false
  let eof = false
  /** Our own reset or close: reads and writes fail with it at once, unread bytes are dropped. */
  let localFailure: Duplex.DuplexError | undefined
  /** From the remote (bad frame, abnormal closure): reads fail with it once unread bytes are taken. */
  let remoteFailure: Duplex.DuplexError | undefined
  let writeClosed = false
  let closedEvent = false
  let readWaiters: Array<Resume<Duplex.Chunks>> = []
  let drainWaiters: Array<Resume<void>> = []
  let closeWaiters: Array<() => void> = []

  const failure = (): Duplex.DuplexError | undefined => localFailure ?? remoteFailure

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

  const onMessage = (data: RawData, isBinary: boolean) => {
    if (localFailure !== undefined || remoteFailure !== undefined) return
    if (!isBinary) {
      // Close first: waking the reader may run its fiber (and the scope's close) right away.
      ws.close(CloseCode.unsupportedData, "binary messages only")
      fail(
        new Duplex.DuplexError({
          reason: "Io",
          message: "websocket: text message received (libp2p carries its byte stream in binary messages only)"
        }),
        false
      )
      return
    }
    const chunk = toChunk(data)
    if (chunk.byteLength === 0) return
    unread.push(chunk)
    unreadBytes += chunk.byteLength
    if (!paused && unreadBytes >= maxBuffered) {
      paused = true
      ws.pause()
    }
    wakeReader()
  }

  const onError = (err: Error) => fail(mapError(err), false)

  const onClose = (code: number, reason: Buffer) => {
    closedEvent = true
    writeClosed = true
    if (failure() === undefined && !eof) {
      if (code === CloseCode.normal || code === CloseCode.goingAway || code === CloseCode.noStatus) {
        eof = true
      } else if (code === CloseCode.abnormal) {
        fail(Duplex.resetError("websocket: connection ended without a Close frame (reset)"), false)
      } else {
        const text = reason.byteLength > 0 ? `: ${reason.toString("utf8")}` : ""
        fail(
          new Duplex.DuplexError({ reason: "Io", message: `websocket: closed by the remote with ${code}${text}` }),
          false
        )
      }
    }
    wakeReader()
    wakeWriters(Effect.fail(failure() ?? Duplex.closedError("websocket closed")))
    const waiters = closeWaiters
    closeWaiters = []
    for (const w of waiters) w()
  }

  const onDrain = () => wakeWriters(Effect.void)

  ws.on("message", onMessage)
  ws.on("error", onError)
  ws.on("close", onClose)
  socket.on("drain", onDrain)

  /** A read result available now, or undefined when the reader has to wait. */
  const poll = (): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> | undefined => {
    if (localFailure !== undefined) return Effect.fail(localFailure)
    if (unread.length > 0) {
      const batch = unread
      unread = []
      unreadBytes = 0
      if (paused) {
        paused = false
        ws.resume()
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
    if (!socket.writableNeedDrain || closedEvent) return resume(Effect.void)
    drainWaiters.push(resume)
    return Effect.sync(() => {
      drainWaiters = drainWaiters.filter((w) => w !== resume)
    })
  })

  /**
   * A batch as binary messages: consecutive chunks are joined (one copy) until
   * a message holds {@link MESSAGE_TARGET} bytes, so a chunk that size or larger
   * goes out as it is, and a chunk over {@link MAX_MESSAGE} is cut into views
   * of at most that (every message stays far below any receiver's limit).
   * Message boundaries mean nothing to libp2p, and upper layers hand over
   * small pieces (a large Noise frame is length ‖ ciphertext ‖ tag): a message
   * each would cost a frame header, a mask pass and a receive event per
   * 2-byte piece.
   */
  const sendBatch = (chunks: Duplex.Chunks) => {
    let pending: Array<Uint8Array> = []
    let bytes = 0
    const flush = () => {
      if (bytes > 0) ws.send(pending.length === 1 ? pending[0]! : Buffer.concat(pending, bytes), SEND_OPTIONS)
      pending = []
      bytes = 0
    }
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!
      if (c.byteLength > MAX_MESSAGE) {
        flush()
        for (let at = 0; at < c.byteLength; at += MAX_MESSAGE) {
          ws.send(c.subarray(at, Math.min(c.byteLength, at + MAX_MESSAGE)), SEND_OPTIONS)
        }
        continue
      }
      if (c.byteLength === 0) continue
      pending.push(c)
      bytes += c.byteLength
      if (bytes >= MESSAGE_TARGET) flush()
    }
    flush()
  }

  const write = (chunks: Duplex.Chunks): Effect.Effect<void, Duplex.DuplexError> =>
    Effect.suspend(() => {
      const failed = failure()
      if (failed !== undefined) return Effect.fail(failed)
      if (writeClosed || ws.readyState !== OPEN) return Effect.fail(Duplex.closedError())
      if (chunks.length === 0) return Effect.void
      try {
        if (chunks.length === 1 && chunks[0]!.byteLength <= MAX_MESSAGE) {
          const c = chunks[0]!
          if (c.byteLength > 0) ws.send(c, SEND_OPTIONS)
        } else {
          socket.cork()
          try {
            sendBatch(chunks)
          } finally {
            socket.uncork()
          }
        }
      } catch (err) {
        return Effect.fail(
          new Duplex.DuplexError({ reason: "Io", message: `websocket: send failed: ${errorMessage(err)}` })
        )
      }
      return socket.writableNeedDrain ? awaitDrain : Effect.void
    })

  const closeWrite: Effect.Effect<void> = Effect.sync(() => {
    if (writeClosed) return
    writeClosed = true
    if (ws.readyState === OPEN) ws.close(CloseCode.normal)
    // The Close frame goes out after what is buffered; the writes before it were accepted.
    wakeWriters(Effect.void)
  })

  const reset: Effect.Effect<void> = Effect.sync(() => {
    fail(Duplex.resetError(), true)
    ws.terminate()
  })

  const awaitClosed = Effect.callback<void>((resume) => {
    if (closedEvent) return resume(Effect.void)
    const done = () => resume(Effect.void)
    closeWaiters.push(done)
    return Effect.sync(() => {
      closeWaiters = closeWaiters.filter((w) => w !== done)
    })
  })

  let closed = false
  const close: Effect.Effect<void> = Effect.suspend(() => {
    if (closed) return Effect.void
    closed = true
    // After a remote failure the Close `ws` (or we) sent with its status still deserves delivery.
    const graceful = !closedEvent && localFailure === undefined
    fail(Duplex.closedError("connection closed"), true)
    if (!graceful) {
      ws.terminate()
      return Effect.void
    }
    // Close 1000 unless a Close went out already (closeWrite, a protocol error).
    if (ws.readyState === OPEN) ws.close(CloseCode.normal)
    return awaitClosed.pipe(
      Effect.timeoutOption(options.closeTimeout),
      Effect.ensuring(Effect.sync(() => ws.terminate()))
    )
  })

  return {
    duplex: { read, write, closeWrite, reset },
    close,
    bufferedBytes: () => unreadBytes
  }
}

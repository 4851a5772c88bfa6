/**
 * Our {@link Duplex.Duplex} as a Node `stream.Duplex`, so that `node:tls`
 * (`tls.connect({ socket })`, `new tls.TLSSocket(stream)`) can run the TLS 1.3
 * record layer over any of our byte streams (libp2p TLS spec §Handshake
 * Protocol runs TLS over the raw connection after multistream-select).
 *
 * - Reading: Node's `_read` starts one `raw.read` at a time; each chunk of the
 *   batch is `push`ed as is (no copy). While `push` accepts more (the
 *   readable buffer is under its high-water mark) the next read starts at
 *   once; when it refuses, reading stops until Node calls `_read` again — the
 *   backpressure reaches the raw Duplex, and through it the remote. EOF (an
 *   empty batch) is `push(null)`.
 * - Writing: `_writev` hands Node's whole corked batch to one `raw.write`
 *   (TLS records batched as one write) and calls back when it is accepted, so
 *   Node's writable buffer and `drain` carry the raw Duplex's backpressure.
 *   `_final` (the TLS layer ending its write side after `close_notify`) is
 *   `raw.closeWrite`.
 * - Errors: a failed read or write destroys the Node stream with the
 *   `DuplexError`; destroying the Node stream with an error resets the raw
 *   Duplex.
 *
 * The Effects run as fibers of `runFork` (a `FiberSet` runtime of the
 * connection's scope), so closing that scope interrupts whatever is pending.
 *
 * @since 0.1.0
 */
import type { Effect, Fiber } from "effect"
import { Cause, Exit } from "effect"
import * as Stream from "node:stream"
import type * as Duplex from "../../core/Duplex.ts"

/** Runs an Effect as a fiber of the owning scope (e.g. from `FiberSet.makeRuntime`). */
export type RunFork = <A, E>(effect: Effect.Effect<A, E>) => Fiber.Fiber<A, E>

export interface Options {
  /** Sees every chunk read from the raw Duplex before Node does (e.g. to keep a handshake transcript). */
  readonly onRead?: (chunk: Uint8Array) => void
  /** Readable high-water mark in bytes (default Node's 64 KiB for byte streams). */
  readonly highWaterMark?: number
}

const asError = (cause: Cause.Cause<unknown>): Error => {
  const e = Cause.squash(cause)
  return e instanceof Error ? e : new Error(String(e))
}

/** A Node Duplex over `raw`. */
export const make = (raw: Duplex.Duplex, runFork: RunFork, options?: Options): Stream.Duplex => {
  const onRead = options?.onRead
  let reading = false
  let ended = false

  const pull = () => {
    if (reading || ended || node.destroyed) return
    reading = true
    runFork(raw.read).addObserver((exit) => {
      reading = false
      if (node.destroyed) return
      if (Exit.isFailure(exit)) {
        node.destroy(asError(exit.cause))
        return
      }
      const chunks = exit.value
      if (chunks.length === 0) {
        ended = true
        node.push(null)
        return
      }
      let more = true
      for (let i = 0; i < chunks.length; i++) {
        const c = chunks[i]!
        if (c.byteLength === 0) continue
        onRead?.(c)
        more = node.push(c)
      }
      if (more) pull()
    })
  }

  const write = (batch: Duplex.Chunks, callback: (error?: Error | null) => void) => {
    runFork(raw.write(batch)).addObserver((exit) => {
      if (Exit.isSuccess(exit)) callback()
      else callback(asError(exit.cause))
    })
  }

  const node: Stream.Duplex = new Stream.Duplex({
    allowHalfOpen: true,
    ...(options?.highWaterMark !== undefined ? { readableHighWaterMark: options.highWaterMark } : {}),
    read() {
      pull()
    },
    write(chunk: Uint8Array, _encoding, callback) {
      write([chunk], callback)
    },
    writev(chunks, callback) {
      write(chunks.map((c) => c.chunk as Uint8Array), callback)
    },
    final(callback) {
      runFork(raw.closeWrite).addObserver(() => callback())
    },
    destroy(error, callback) {
      if (error !== null) runFork(raw.reset)
      callback(error)
    }
  })
  return node
}

/**
 * The transport phase of noise-libp2p (noise-libp2p spec §Wire Format and
 * §Encryption and I/O): every message on the wire is `noise_message_len`
 * (2 bytes, big-endian) ‖ `noise_message`, at most 65535 bytes, and after the
 * handshake each `noise_message` is one ChaCha20-Poly1305 transport message
 * (ciphertext ‖ 16-byte tag), so at most 65519 plaintext bytes per message.
 *
 * This module turns the raw Duplex plus the two transport CipherStates into the
 * plaintext Duplex:
 *
 * - `write(batch)` coalesces the chunks of the batch into as few transport
 *   messages as possible (65519 plaintext bytes each; large chunks are split,
 *   small ones share a message) and hands all frames to ONE `write` of the raw
 *   Duplex. A small message is encrypted straight into one framed buffer; a
 *   large one (≥ 4 KiB) goes out as its length, the cipher's output buffers and
 *   the tag, as separate chunks, so the ciphertext is never copied.
 * - `read` decrypts every whole frame the raw Duplex has delivered and returns
 *   their plaintexts as one batch. Ciphertext that lies inside one received
 *   chunk is fed to the cipher as a view (no copy); a frame spread over chunks
 *   is fed piece by piece (still no copy), only its 2-byte length or tag may be
 *   gathered.
 *
 * Failures (a tag that does not verify, a message shorter than its tag, a
 * stream that ends inside a frame, a spent nonce) reset the raw Duplex and fail
 * the operation with `DuplexError { reason: "Io" }` whose message starts with
 * `noise <SecurityError reason>:` (the Duplex contract allows only
 * `DuplexError` on `read`/`write`). The failure is sticky: later reads and
 * writes fail with the same error. Plaintext of the authentic messages that
 * arrived before a bad one is still delivered first; nothing of the bad
 * message or after it ever is.
 *
 * One reader and one writer at a time (as with every Duplex).
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Duplex from "../../core/Duplex.ts"
import { SecurityError, type SecurityErrorReason } from "../SecureChannel.ts"
import * as CipherState from "./CipherState.ts"
import type * as HandshakeState from "./HandshakeState.ts"

/** The most bytes of a Noise message (spec §Wire Format). */
export const MAX_MESSAGE_LEN = 65535
/** The most plaintext bytes of a transport message. */
export const MAX_PLAINTEXT_LEN = MAX_MESSAGE_LEN - CipherState.TAG_LEN

/**
 * Messages with at least this many plaintext bytes are written as separate
 * chunks (length, ciphertext, tag) instead of being copied into one frame
 * buffer; smaller ones are one buffer each (fewer chunks for the socket).
 */
const LARGE_MESSAGE = 4096

/**
 * A message whose pieces average below this many bytes is gathered into one
 * buffer before encryption (node:crypto's per-call cost dominates small updates).
 */
const SMALL_PIECE = 2048

/**
 * Gathers small chunks before encryption. The cipher consumes it synchronously
 * (nothing else runs between the copy and the encryption), so one buffer,
 * allocated on first use, serves every duplex of the process: an idle
 * connection holds none.
 */
let scratchBuffer: Buffer | undefined
const scratch = (): Buffer => scratchBuffer ??= Buffer.allocUnsafeSlow(MAX_PLAINTEXT_LEN)

const transportError = (reason: SecurityErrorReason, message: string) =>
  new Duplex.DuplexError({ reason: "Io", message: `noise ${reason}: ${message}` })

/**
 * The plaintext Duplex over `raw`. `leftover`: bytes the handshake read past
 * its last message (the first transport frames, when the remote pipelined them).
 */
export const make = (
  raw: Duplex.Duplex,
  ciphers: HandshakeState.TransportCiphers,
  leftover: Duplex.Chunks
): Duplex.Duplex => {
  const pollable = Duplex.pollable(raw)
  const writable = Duplex.syncWritable(raw)
  return pollable === undefined || writable === undefined
    ? new SecureDuplex(raw, ciphers, leftover)
    : new PollableSecureDuplex(raw as Duplex.Duplex & Duplex.Pollable & Duplex.SyncWritable, ciphers, leftover)
}

/**
 * Ciphertext pieces of one frame spread over several received chunks. The
 * decryption consumes them synchronously, so one array serves every duplex.
 */
const body: Array<Uint8Array> = []

/** Encrypt a batch of `total` bytes into frames, or the error. */
const encryptBatch = (
  send: CipherState.CipherState,
  chunks: Duplex.Chunks,
  total: number
): Array<Uint8Array> | SecurityError => {
  const frames: Array<Uint8Array> = []
  if (total === 0) return frames
  let ci = 0 // current chunk
  let off = 0 // offset in it
  let remaining = total
  const pieces: Array<Uint8Array> = []
  while (remaining > 0) {
    const len = remaining < MAX_PLAINTEXT_LEN ? remaining : MAX_PLAINTEXT_LEN
    const frameLen = len + CipherState.TAG_LEN
    pieces.length = 0
    let need = len
    while (need > 0) {
      const c = chunks[ci]!
      const avail = c.byteLength - off
      if (avail === 0) {
        ci++
        off = 0
        continue
      }
      if (avail <= need) {
        pieces.push(off === 0 ? c : c.subarray(off))
        need -= avail
        ci++
        off = 0
      } else {
        pieces.push(c.subarray(off, off + need))
        off += need
        need = 0
      }
    }
    if (pieces.length > 1 && len < pieces.length * SMALL_PIECE) {
      // Many small pieces: one copy into the scratch buffer beats one cipher call per piece.
      const buf = scratch()
      let at = 0
      for (let i = 0; i < pieces.length; i++) {
        buf.set(pieces[i]!, at)
        at += pieces[i]!.byteLength
      }
      pieces.length = 1
      pieces[0] = buf.subarray(0, len)
    }
    if (len >= LARGE_MESSAGE) {
      // length ‖ ciphertext pieces ‖ tag as separate chunks: no copy of the ciphertext
      const header = Buffer.allocUnsafe(2)
      header[0] = frameLen >>> 8
      header[1] = frameLen & 0xff
      frames.push(header)
      const err = send.encryptToChunks(pieces, frames)
      if (err !== undefined) return err
    } else {
      const frame = Buffer.allocUnsafe(2 + frameLen)
      frame[0] = frameLen >>> 8
      frame[1] = frameLen & 0xff
      const written = send.encryptInto(pieces, frame, 2)
      if (typeof written !== "number") return written
      frames.push(frame)
    }
    remaining -= len
  }
  return frames
}

/**
 * The transport-phase duplex: its state in fields, its behaviour on the
 * prototype (an idle connection holds this object, not a closure context).
 */
class SecureDuplex implements Duplex.Duplex, Duplex.OwnedReads {
  /**
   * Each plaintext is a new buffer of the cipher's (node:crypto's output, or the
   * WebAssembly cipher's for small messages) that this duplex hands out once and
   * keeps no reference to (Duplex.OwnedReads), whatever the raw duplex is.
   */
  get ownedReads(): true {
    return true
  }
  readonly raw: Duplex.Duplex
  readonly send: CipherState.CipherState
  readonly receive: CipherState.CipherState
  failure: Duplex.DuplexError | undefined = undefined
  // Received, not yet decrypted bytes: `buf[0]` from offset `head`.
  buf: Array<Uint8Array> = []
  head = 0
  buffered = 0
  ended = false
  /**
   * The raw duplex's reads are ours to free once decrypted (Duplex.OwnedReads):
   * the chunks consumed by a pass of `decryptAvailable` are released at its
   * end, except the first `keep` chunks (the handshake's leftover, which may
   * be views of its own buffers).
   */
  readonly releases: boolean
  keep: number
  /** Chunks consumed while decrypting the current message, released after it. */
  spent: Array<Uint8Array> | undefined = undefined

  constructor(raw: Duplex.Duplex, ciphers: HandshakeState.TransportCiphers, leftover: Duplex.Chunks) {
    this.raw = raw
    this.send = ciphers.send
    this.receive = ciphers.receive
    this.push(leftover)
    this.releases = Duplex.ownsReads(raw)
    this.keep = this.buf.length
  }

  /** The raw duplex ended with part of a frame buffered. */
  endedInsideFrame(): Duplex.DuplexError {
    return transportError("Closed", `the stream ended inside a frame (${this.buffered} bytes buffered)`)
  }

  fail(error: Duplex.DuplexError): Effect.Effect<never, Duplex.DuplexError> {
    if (this.failure === undefined) this.failure = error
    return Effect.andThen(this.raw.reset, Effect.fail(this.failure))
  }

  // ---------------------------------------------------------------- write

  /** An own property (callers may take it off the object, e.g. `Duplex.prepend`). */
  readonly write = (chunks: Duplex.Chunks): Effect.Effect<void, Duplex.DuplexError> =>
    Effect.suspend(() => {
      if (this.failure !== undefined) return Effect.fail(this.failure)
      const total = Duplex.byteLength(chunks)
      const frames = encryptBatch(this.send, chunks, total)
      if (!Array.isArray(frames)) return this.fail(transportError(frames.reason, frames.message))
      if (frames.length === 0) return Effect.void
      // the frames are ours (the cipher's output): handed over when some may be worth releasing
      return this.raw.write(frames, total >= Duplex.RELEASE_MIN)
    })

  get closeWrite(): Effect.Effect<void> {
    return this.raw.closeWrite
  }

  get reset(): Effect.Effect<void> {
    return this.raw.reset
  }

  // ---------------------------------------------------------------- read

  push(chunks: Duplex.Chunks): void {
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!
      if (c.byteLength > 0) {
        this.buf.push(c)
        this.buffered += c.byteLength
      }
    }
  }

  /** Next byte without consuming (caller checked `buffered > at`). */
  peekByte(at: number): number {
    const buf = this.buf
    let i = 0
    let pos = this.head + at
    while (pos >= buf[i]!.byteLength) {
      pos -= buf[i]!.byteLength
      i++
    }
    return buf[i]![pos]!
  }

  /** A chunk taken off `buf`: to release once the message it was part of is decrypted. */
  consumed(chunk: Uint8Array): void {
    if (!this.releases) return
    if (this.keep > 0) this.keep--
    else if (chunk.byteLength >= Duplex.RELEASE_MIN) (this.spent ??= []).push(chunk)
  }

  /** Release the chunks consumed so far (the cipher has read them; no view of them is kept). */
  releaseSpent(): void {
    const spent = this.spent
    if (spent === undefined) return
    this.spent = undefined
    Duplex.releaseAll(spent)
  }

  /** Consume `n` bytes as views into the buffered chunks (no copy). */
  takePieces(n: number, into: Array<Uint8Array>): void {
    const buf = this.buf
    this.buffered -= n
    while (n > 0) {
      const c = buf[0]!
      const avail = c.byteLength - this.head
      if (avail <= n) {
        into.push(this.head === 0 ? c : c.subarray(this.head))
        n -= avail
        this.consumed(buf.shift()!)
        this.head = 0
      } else {
        into.push(c.subarray(this.head, this.head + n))
        this.head += n
        n = 0
      }
    }
  }

  /** Consume `n` bytes as one buffer (a view when they lie in one chunk). */
  take(n: number): Uint8Array {
    const c = this.buf[0]!
    const head = this.head
    if (c.byteLength - head >= n) {
      const out = c.subarray(head, head + n)
      this.head = head + n
      this.buffered -= n
      if (this.head === c.byteLength) {
        this.consumed(this.buf.shift()!)
        this.head = 0
      }
      return out
    }
    const parts: Array<Uint8Array> = []
    this.takePieces(n, parts)
    return Duplex.concat(parts)
  }

  skip(n: number): void {
    const buf = this.buf
    this.buffered -= n
    while (n > 0) {
      const c = buf[0]!
      const avail = c.byteLength - this.head
      if (avail <= n) {
        n -= avail
        this.consumed(buf.shift()!)
        this.head = 0
      } else {
        this.head += n
        n = 0
      }
    }
  }

  /** Decrypt every whole buffered frame, appending plaintexts to `out`. */
  decryptAvailable(out: Array<Uint8Array>): SecurityError | undefined {
    const err = this.decryptFrames(out)
    this.releaseSpent()
    return err
  }

  decryptFrames(out: Array<Uint8Array>): SecurityError | undefined {
    while (this.buffered >= 2) {
      const len = (this.peekByte(0) << 8) | this.peekByte(1)
      if (this.buffered < 2 + len) return undefined
      if (len < CipherState.TAG_LEN) {
        return new SecurityError({
          reason: "Decrypt",
          message: `a ${len}-byte transport message is shorter than its ${CipherState.TAG_LEN}-byte tag`
        })
      }
      this.skip(2)
      const first = this.buf[0]!
      if (first.byteLength - this.head >= len) {
        // The whole message lies in one chunk: decrypt a view of it.
        const r = this.receive.decrypt(this.take(len))
        if (r instanceof SecurityError) return r
        if (r.byteLength > 0) out.push(r)
      } else {
        body.length = 0
        this.takePieces(len - CipherState.TAG_LEN, body)
        const tag = this.take(CipherState.TAG_LEN)
        const r = this.receive.decryptPieces(body, tag, out)
        body.length = 0
        if (r !== undefined) return r
      }
    }
    return undefined
  }

  /**
   * The plaintexts decrypted before a failure are still delivered (they were
   * authentic); the failure is then reported by the next read. The raw
   * Duplex is reset at once either way.
   */
  deliver(
    out: Array<Uint8Array>,
    err: SecurityError | undefined
  ): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> | undefined {
    if (err !== undefined) {
      const e = transportError(err.reason, err.message)
      if (out.length === 0) return this.fail(e)
      this.failure = e
      return Effect.as(this.raw.reset, out)
    }
    return out.length > 0 ? Effect.succeed(out) : undefined
  }

  get read(): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> {
    return Effect.suspend(() => {
      if (this.failure !== undefined) return Effect.fail(this.failure)
      if (this.ended) return Effect.succeed(Duplex.EOF)
      if (this.buffered >= 2) {
        const out: Array<Uint8Array> = []
        const done = this.deliver(out, this.decryptAvailable(out))
        if (done !== undefined) return done
      }
      return this.pull()
    })
  }

  /** Read from the raw Duplex until at least one whole frame is decrypted (or EOF, or a failure). */
  pull(): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> {
    return Effect.flatMap(this.raw.read, (chunks): Effect.Effect<Duplex.Chunks, Duplex.DuplexError> => {
      if (chunks.length === 0) {
        if (this.buffered > 0) {
          return this.fail(
            this.endedInsideFrame()
          )
        }
        this.ended = true
        return Effect.succeed(Duplex.EOF)
      }
      this.push(chunks)
      const out: Array<Uint8Array> = []
      return this.deliver(out, this.decryptAvailable(out)) ?? this.pull()
    })
  }
}

/**
 * Over a raw Duplex that can be polled and written synchronously (a socket's)
 * the secure one can be too (Duplex.Pollable, Duplex.SyncWritable):
 * `pollRead` decrypts what `read` would, synchronously, and the notice is the
 * raw duplex's; `tryWrite` encrypts only once the raw duplex can take the
 * frames (a nonce used is a frame sent).
 */
class PollableSecureDuplex extends SecureDuplex implements Duplex.Pollable, Duplex.SyncWritable {
  readonly source: Duplex.Duplex & Duplex.Pollable & Duplex.SyncWritable

  constructor(
    raw: Duplex.Duplex & Duplex.Pollable & Duplex.SyncWritable,
    ciphers: HandshakeState.TransportCiphers,
    leftover: Duplex.Chunks
  ) {
    super(raw, ciphers, leftover)
    this.source = raw
  }

  /** Fail for good, and reset the raw duplex (as `fail` does for `read`). */
  failNow(error: Duplex.DuplexError): Duplex.DuplexError {
    if (this.failure === undefined) this.failure = error
    Effect.runFork(this.raw.reset)
    return this.failure
  }

  pollRead(): Duplex.Chunks | Duplex.DuplexError | undefined {
    while (true) {
      if (this.failure !== undefined) return this.failure
      if (this.ended) return Duplex.EOF
      if (this.buffered >= 2) {
        const out: Array<Uint8Array> = []
        const err = this.decryptAvailable(out)
        if (err !== undefined) {
          // the plaintexts before the failure were authentic: delivered, the failure next
          const e = this.failNow(transportError(err.reason, err.message))
          return out.length > 0 ? out : e
        }
        if (out.length > 0) return out
      }
      const chunks = this.source.pollRead()
      if (chunks === undefined || chunks instanceof Duplex.DuplexError) return chunks
      if (chunks.length === 0) {
        if (this.buffered > 0) {
          return this.failNow(
            this.endedInsideFrame()
          )
        }
        this.ended = true
        return Duplex.EOF
      }
      this.push(chunks)
    }
  }

  onReadable(notify: (() => void) | undefined): void {
    this.source.onReadable(notify)
  }

  tryWrite(chunks: Duplex.Chunks): boolean | Duplex.DuplexError {
    if (this.failure !== undefined) return this.failure
    const ready = this.source.tryWrite(Duplex.EOF)
    if (ready !== true || chunks.length === 0) return ready
    const total = Duplex.byteLength(chunks)
    const frames = encryptBatch(this.send, chunks, total)
    if (!Array.isArray(frames)) return this.failNow(transportError(frames.reason, frames.message))
    return frames.length === 0 ? true : this.source.tryWrite(frames, total >= Duplex.RELEASE_MIN)
  }
}

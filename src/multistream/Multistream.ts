/**
 * multistream-select 1.0: protocol negotiation on a byte stream, per the
 * multistream-select spec (https://github.com/multiformats/multistream-select,
 * README §Protocol, §Listing, §Implementation Recommendations) and the libp2p
 * connections spec (libp2p/specs connections/README.md §Protocol Negotiation,
 * §multistream-select).
 *
 * Wire format (connections spec §multistream-select): every message is UTF-8
 * text followed by `\n`, prefixed by its length (newline included) as an
 * unsigned varint. `na` is `03 6e 61 0a`. The first message in each direction is
 * the header {@link PROTOCOL}; anything else aborts the negotiation.
 *
 * - {@link select} (initiator): sends the header and its first proposal in one
 *   write (README §Implementation Recommendations), then tries each protocol in
 *   order until the responder echoes one.
 * - {@link lazySelect} (initiator, one protocol, "optimistic"): sends the header
 *   and the proposal together with the first application write and checks the
 *   answer on the first read, saving a round trip.
 * - {@link handle} (responder): answers each proposal with an echo (accept) or
 *   `na`, answers `ls` with its list, and sends its own header in the same write
 *   as its first answer when the proposal arrived with the initiator's header.
 * - {@link list} (initiator): the optional `ls` query (README §Listing).
 *
 * Limits: a message may be at most {@link MAX_MESSAGE_LENGTH} = 1024 bytes,
 * newline included, which is what go-multistream and js-libp2p enforce (the spec
 * text sets no number; docs/ARCHITECTURE.md §3 "multistream line ≤ 1 KiB"). The `ls`
 * answer wraps many messages in one frame and has its own, larger limit.
 *
 * `ls` framing as implemented (js-libp2p's handler; go-multistream before it
 * removed `ls` in 2021): one outer frame whose body is the protocols, each an
 * embedded multistream message (`uvarint(len) ‖ id ‖ \n`), followed by one
 * final `\n` that the outer length counts. The older README text describing a
 * protocol-count varint was never implemented. go-multistream today answers
 * `ls` with `na`, so initiators must not rely on it (README: `ls` is OPTIONAL).
 *
 * Errors: negotiation failures are a {@link MultistreamError}; failures of the
 * underlying byte stream pass through unchanged as `DuplexError` (the transport
 * failed, not the negotiation). The buffered reader's `ReaderError` is mapped
 * (`UnexpectedEOF` → `UnexpectedEOF`, `TooLarge` → `MessageTooLarge`,
 * `InvalidVarint` → `InvalidMessage`). On failure the duplex is left as it is:
 * its owner (the scope that made it) closes or resets it.
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Effect, Result, Schema, Semaphore } from "effect"
import { isUtf8 } from "node:buffer"
import * as Duplex from "../core/Duplex.ts"
import * as Reader from "../core/Reader.ts"
import * as Varint from "../core/Varint.ts"

/** The protocol id of multistream-select 1.0, sent first by both sides. */
export const PROTOCOL = "/multistream/1.0.0"

/** The answer to a proposal the responder does not support ("not available"). */
export const NA = "na"

/** The listing request (README §Listing). */
export const LS = "ls"

/** Largest message, in bytes, counting the trailing newline (go-multistream, js-libp2p). */
export const MAX_MESSAGE_LENGTH = 1024

/** Default limit on the body of an `ls` answer (it holds many messages in one frame). */
export const DEFAULT_MAX_LIST_LENGTH = 64 * 1024

/**
 * Why a negotiation failed.
 * - `UnsupportedProtocol`: the responder refused every proposal (`protocols` lists them).
 * - `InvalidHeader`: the first message was not {@link PROTOCOL}.
 * - `InvalidMessage`: bad framing: no trailing newline, bad length prefix, not UTF-8, bad `ls` answer.
 * - `MessageTooLarge`: a length prefix above the limit.
 * - `UnexpectedEOF`: the stream ended during the negotiation.
 * - `UnexpectedResponse`: the responder answered something other than our proposal or `na`.
 * - `InvalidProtocolId`: a local protocol id cannot be sent (empty, too long, contains `\n`, or reserved).
 * - `Timeout`: the negotiation ran past the `timeout` option.
 */
export const MultistreamErrorReason = Schema.Literals([
  "UnsupportedProtocol",
  "InvalidHeader",
  "InvalidMessage",
  "MessageTooLarge",
  "UnexpectedEOF",
  "UnexpectedResponse",
  "InvalidProtocolId",
  "Timeout",
  "TooManyProposals"
])
export type MultistreamErrorReason = typeof MultistreamErrorReason.Type

export class MultistreamError extends Schema.TaggedError<MultistreamError>()("MultistreamError", {
  reason: MultistreamErrorReason,
  message: Schema.String,
  /** For `UnsupportedProtocol`: the protocols that were proposed and refused. */
  protocols: Schema.optionalKey(Schema.Array(Schema.String))
}) {}

const error = (reason: MultistreamErrorReason, message: string) => new MultistreamError({ reason, message })

/** The result of a negotiation: the agreed protocol and the stream to speak it on. */
export interface Negotiated {
  readonly protocol: string
  /** The same byte stream; its first reads return bytes that arrived with the negotiation. */
  readonly duplex: Duplex.Duplex
}

export interface Options {
  /** Fail with `Timeout` when the negotiation takes longer (measured with Effect's Clock). */
  readonly timeout?: Duration.Input
}

export interface SelectOptions extends Options {
  /**
   * The headers were already exchanged on this stream (e.g. by {@link list}):
   * send only proposals and expect no header.
   */
  readonly headerExchanged?: boolean
}

export interface HandleOptions extends Options {
  /**
   * What to answer to `ls`: the list to send, or `false` to answer `na` (as
   * go-multistream does). Default: the protocol list given to `handle`, or an
   * empty list when `handle` was given a predicate.
   */
  readonly listing?: ReadonlyArray<string> | false
  /**
   * Most proposals (and `ls` requests) answered before giving up with
   * `TooManyProposals` (default {@link DEFAULT_MAX_PROPOSALS}). The spec sets
   * no bound; without one a peer can keep a responder answering `na` until
   * the negotiation deadline.
   */
  readonly maxProposals?: number
}

/** Default bound on proposals a responder answers (real dialers propose a handful). */
export const DEFAULT_MAX_PROPOSALS = 32

export interface ListOptions extends Options {
  /** Limit on the body of the `ls` answer. Default {@link DEFAULT_MAX_LIST_LENGTH}. */
  readonly maxListLength?: number
}

// ---------------------------------------------------------------------------
// Codec (pure)
// ---------------------------------------------------------------------------

const encoder = new TextEncoder()
const decoder = new TextDecoder("utf-8")
const NEWLINE = 0x0a

const frameBytes = (body: Uint8Array): Uint8Array => {
  const out = new Uint8Array(Varint.encodingLength(body.byteLength) + body.byteLength)
  const n = Varint.encodeInto(body.byteLength, out, 0)
  out.set(body, n)
  return out
}

const frameText = (text: string): Uint8Array => frameBytes(encoder.encode(`${text}\n`))

/** The frame of the header, `13 2f6d756c…302e300a`. */
export const HEADER_FRAME: Uint8Array = frameText(PROTOCOL)
/** The frame of `na`, `03 6e610a`. */
export const NA_FRAME: Uint8Array = frameText(NA)
/** The frame of `ls`, `03 6c730a`. */
export const LS_FRAME: Uint8Array = frameText(LS)

/**
 * Check that a protocol id can be proposed or listed: non-empty, no newline,
 * at most {@link MAX_MESSAGE_LENGTH} bytes with its newline, and not one of
 * the protocol's own words (`na`, `ls`, the header).
 */
export const validateProtocolId = (id: string): Result.Result<string, MultistreamError> => {
  if (id.length === 0) return Result.fail(error("InvalidProtocolId", "empty protocol id"))
  if (id.includes("\n")) return Result.fail(error("InvalidProtocolId", "protocol id contains a newline"))
  if (id === NA || id === LS || id === PROTOCOL) {
    return Result.fail(error("InvalidProtocolId", `"${id}" is reserved by multistream-select`))
  }
  const size = encoder.encode(id).byteLength + 1
  if (size > MAX_MESSAGE_LENGTH) {
    return Result.fail(
      error("InvalidProtocolId", `protocol id takes ${size} bytes with its newline, above ${MAX_MESSAGE_LENGTH}`)
    )
  }
  return Result.succeed(id)
}

/**
 * Encode one message: `uvarint(len(text) + 1) ‖ text ‖ \n`, at most
 * {@link MAX_MESSAGE_LENGTH} bytes after the prefix.
 */
export const encodeMessage = (text: string): Result.Result<Uint8Array, MultistreamError> => {
  const body = encoder.encode(`${text}\n`)
  if (body.byteLength > MAX_MESSAGE_LENGTH) {
    return Result.fail(error("MessageTooLarge", `message of ${body.byteLength} bytes above ${MAX_MESSAGE_LENGTH}`))
  }
  return Result.succeed(frameBytes(body))
}

/**
 * Decode the body of one message (the bytes after the length prefix): it must
 * end with `\n` and be valid UTF-8. Returns the text without the newline.
 */
export const decodeMessage = (body: Uint8Array): Result.Result<string, MultistreamError> => {
  if (body.byteLength === 0 || body[body.byteLength - 1] !== NEWLINE) {
    return Result.fail(error("InvalidMessage", "message does not end with a newline"))
  }
  const text = body.subarray(0, body.byteLength - 1)
  if (!isUtf8(text)) return Result.fail(error("InvalidMessage", "message is not valid UTF-8"))
  return Result.succeed(decoder.decode(text))
}

const validateAll = (protocols: ReadonlyArray<string>): Result.Result<ReadonlyArray<string>, MultistreamError> => {
  for (const p of protocols) {
    const r = validateProtocolId(p)
    if (Result.isFailure(r)) return Result.fail(r.failure)
  }
  return Result.succeed(protocols)
}

/**
 * Encode an `ls` answer: one frame whose body is each protocol as an embedded
 * message followed by a final `\n` (README §ls example in detail).
 */
export const encodeList = (protocols: ReadonlyArray<string>): Result.Result<Uint8Array, MultistreamError> => {
  const valid = validateAll(protocols)
  if (Result.isFailure(valid)) return Result.fail(valid.failure)
  const parts = protocols.map(frameText)
  let size = 1
  for (const p of parts) size += p.byteLength
  const body = new Uint8Array(size)
  let at = 0
  for (const p of parts) {
    body.set(p, at)
    at += p.byteLength
  }
  body[at] = NEWLINE
  return Result.succeed(frameBytes(body))
}

/**
 * Decode the body of an `ls` answer (after the outer length prefix): embedded
 * messages, then the final `\n`.
 */
export const decodeList = (body: Uint8Array): Result.Result<ReadonlyArray<string>, MultistreamError> => {
  if (body.byteLength === 0 || body[body.byteLength - 1] !== NEWLINE) {
    return Result.fail(error("InvalidMessage", "ls answer does not end with a newline"))
  }
  const end = body.byteLength - 1
  const out: Array<string> = []
  let at = 0
  while (at < end) {
    const len = Varint.decode(body.subarray(0, end), at)
    if (Result.isFailure(len)) {
      return Result.fail(error("InvalidMessage", `ls answer: bad length prefix (${len.failure.message})`))
    }
    const { bytes, value } = len.success
    if (value > MAX_MESSAGE_LENGTH) {
      return Result.fail(error("MessageTooLarge", `ls answer: entry of ${value} bytes above ${MAX_MESSAGE_LENGTH}`))
    }
    const start = at + bytes
    if (start + value > end) return Result.fail(error("InvalidMessage", "ls answer: entry runs past the answer"))
    const msg = decodeMessage(body.subarray(start, start + value))
    if (Result.isFailure(msg)) return Result.fail(msg.failure)
    out.push(msg.success)
    at = start + value
  }
  return Result.succeed(out)
}

// ---------------------------------------------------------------------------
// Reading messages from a stream
// ---------------------------------------------------------------------------

const mapReaderError = (e: Reader.ReaderError): MultistreamError => {
  switch (e.reason) {
    case "UnexpectedEOF":
      return error("UnexpectedEOF", e.message)
    case "TooLarge":
      return error("MessageTooLarge", e.message)
    case "InvalidVarint":
      return error("InvalidMessage", `bad length prefix: ${e.message}`)
  }
}

const readFrame = (
  reader: Reader.Reader,
  maxLength: number,
  what: string
): Effect.Effect<Uint8Array, MultistreamError | Duplex.DuplexError> =>
  reader.readLengthPrefixed(maxLength).pipe(
    Effect.catchTag("ReaderError", (e) => Effect.fail(mapReaderError(e))),
    Effect.flatMap((body) =>
      body === undefined
        ? Effect.fail(error("UnexpectedEOF", `stream ended before ${what}`))
        : Effect.succeed(body)
    )
  )

/** Read one message (at most {@link MAX_MESSAGE_LENGTH} bytes); EOF is `UnexpectedEOF`. */
export const readMessage = (
  reader: Reader.Reader,
  what = "a multistream-select message"
): Effect.Effect<string, MultistreamError | Duplex.DuplexError> =>
  Effect.flatMap(readFrame(reader, MAX_MESSAGE_LENGTH, what), (body) => Effect.fromResult(decodeMessage(body)))

const readHeader = (reader: Reader.Reader): Effect.Effect<void, MultistreamError | Duplex.DuplexError> =>
  Effect.flatMap(readMessage(reader, "the multistream header"), (msg) =>
    msg === PROTOCOL
      ? Effect.void
      : Effect.fail(error("InvalidHeader", `expected "${PROTOCOL}" first, got "${truncate(msg)}"`)))

const truncate = (s: string): string => (s.length > 64 ? `${s.slice(0, 64)}…` : s)

const withTimeout = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  options: Options | undefined,
  what: string
): Effect.Effect<A, E | MultistreamError, R> => {
  const duration = options?.timeout
  if (duration === undefined) return self
  return Effect.timeoutOrElse(self, {
    duration,
    orElse: () => Effect.fail(error("Timeout", `${what} timed out`))
  })
}

const unsupported = (protocols: ReadonlyArray<string>) =>
  new MultistreamError({
    reason: "UnsupportedProtocol",
    message: `the remote supports none of ${protocols.join(", ")}`,
    protocols
  })

// ---------------------------------------------------------------------------
// Initiator
// ---------------------------------------------------------------------------

/**
 * Negotiate as the initiator (dialer): propose each protocol in order until the
 * responder echoes one. The header and the first proposal go out in one write
 * (README §Implementation Recommendations); later proposals go out one by one
 * after each `na`. Fails with `UnsupportedProtocol` (listing `protocols`) when
 * every proposal is refused, and with `UnexpectedResponse` when the responder
 * answers anything other than the proposal or `na`.
 */
export const select = (
  duplex: Duplex.Duplex,
  protocols: ReadonlyArray<string>,
  options?: SelectOptions
): Effect.Effect<Negotiated, MultistreamError | Duplex.DuplexError> =>
  withTimeout(
    Effect.gen(function*() {
      if (protocols.length === 0) return yield* error("InvalidProtocolId", "select needs at least one protocol")
      yield* Effect.fromResult(validateAll(protocols))
      const frames = protocols.map(frameText)
      const reader = Reader.make(duplex)
      const headerExchanged = options?.headerExchanged === true
      yield* duplex.write(headerExchanged ? [frames[0]!] : [HEADER_FRAME, frames[0]!])
      if (!headerExchanged) yield* readHeader(reader)
      for (let i = 0; i < protocols.length; i++) {
        const protocol = protocols[i]!
        if (i > 0) yield* duplex.write([frames[i]!])
        const answer = yield* readMessage(reader, `the answer to ${protocol}`)
        if (answer === protocol) return { protocol, duplex: Duplex.prepend(duplex, reader.rest()) }
        if (answer !== NA) {
          return yield* error(
            "UnexpectedResponse",
            `proposed "${protocol}", the remote answered "${truncate(answer)}"`
          )
        }
      }
      return yield* unsupported(protocols)
    }),
    options,
    "multistream-select (initiator)"
  )

/**
 * Ask the responder for its protocols with `ls` (README §Listing), sending the
 * header and `ls` in one write. Returns the list and the stream, on which the
 * headers are now exchanged: continue with
 * `select(duplex, protocols, { headerExchanged: true })`.
 * A responder that does not support `ls` answers `na`; that is an empty list.
 */
export const list = (
  duplex: Duplex.Duplex,
  options?: ListOptions & { readonly headerExchanged?: boolean }
): Effect.Effect<
  { readonly protocols: ReadonlyArray<string>; readonly duplex: Duplex.Duplex },
  MultistreamError | Duplex.DuplexError
> =>
  withTimeout(
    Effect.gen(function*() {
      const reader = Reader.make(duplex)
      const headerExchanged = options?.headerExchanged === true
      yield* duplex.write(headerExchanged ? [LS_FRAME] : [HEADER_FRAME, LS_FRAME])
      if (!headerExchanged) yield* readHeader(reader)
      const body = yield* readFrame(reader, options?.maxListLength ?? DEFAULT_MAX_LIST_LENGTH, "the ls answer")
      // A responder without `ls` (go-multistream since 2021) answers `na`.
      const na = body.byteLength === 3 && body[0] === 0x6e && body[1] === 0x61 && body[2] === NEWLINE
      const protocols = na ? [] : yield* Effect.fromResult(decodeList(body))
      return { protocols, duplex: Duplex.prepend(duplex, reader.rest()) }
    }),
    options,
    "multistream-select ls"
  )

// ---------------------------------------------------------------------------
// Responder
// ---------------------------------------------------------------------------

/**
 * Negotiate as the responder (listener): read the initiator's header, then
 * answer each proposal with an echo (accept, and return) or `na`, and `ls`
 * with our list. Our header goes out in the same write as our first answer
 * when the initiator sent its first message together with its header;
 * otherwise it goes out at once (waiting could deadlock an initiator that
 * waits for our header before proposing).
 *
 * `protocols` is either the supported ids (matched exactly) or a predicate.
 * An initiator that ends the stream without agreeing fails the negotiation
 * with `UnexpectedEOF`.
 */
export const handle = (
  duplex: Duplex.Duplex,
  protocols: ReadonlyArray<string> | ((protocol: string) => boolean),
  options?: HandleOptions
): Effect.Effect<Negotiated, MultistreamError | Duplex.DuplexError> =>
  withTimeout(
    Effect.gen(function*() {
      const supports = typeof protocols === "function"
        ? protocols
        : (p: string) => protocols.includes(p)
      const listing = options?.listing ??
        (typeof protocols === "function" ? [] : yield* Effect.fromResult(validateAll(protocols)))
      const lsFrame = listing === false ? NA_FRAME : yield* Effect.fromResult(encodeList(listing))
      const reader = Reader.make(duplex)
      yield* readHeader(reader)
      let out: Array<Uint8Array> = [HEADER_FRAME]
      if (reader.buffered() === 0) {
        yield* duplex.write(out)
        out = []
      }
      const maxProposals = options?.maxProposals ?? DEFAULT_MAX_PROPOSALS
      for (let answered = 0;; answered++) {
        if (answered >= maxProposals) {
          return yield* error("TooManyProposals", `more than ${maxProposals} proposals without agreement`)
        }
        const proposal = yield* readMessage(reader, "a proposal")
        if (proposal === LS) {
          out.push(lsFrame)
        } else if (proposal !== NA && proposal !== PROTOCOL && supports(proposal)) {
          out.push(frameText(proposal))
          yield* duplex.write(out)
          return { protocol: proposal, duplex: Duplex.prepend(duplex, reader.rest()) }
        } else {
          out.push(NA_FRAME)
        }
        yield* duplex.write(out)
        out = []
      }
    }),
    options,
    "multistream-select (responder)"
  )

// ---------------------------------------------------------------------------
// Lazy (optimistic) select
// ---------------------------------------------------------------------------

/**
 * A byte stream whose protocol is still being confirmed: like
 * `Duplex.Duplex`, but reads and writes can also fail with the negotiation's
 * {@link MultistreamError}.
 */
export interface LazyDuplex {
  /** The protocol proposed (and assumed) on this stream. */
  readonly protocol: string
  /** First call: sends the proposal if no write has, then checks the answer; then the stream's bytes. */
  readonly read: Effect.Effect<Duplex.Chunks, Duplex.DuplexError | MultistreamError>
  /** First call: header, proposal and `chunks` in one write. Fails once a read has seen the proposal refused. */
  readonly write: (chunks: Duplex.Chunks) => Effect.Effect<void, Duplex.DuplexError | MultistreamError>
  /** Sends the proposal if nothing was written yet, then half-closes. */
  readonly closeWrite: Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  /** Send the proposal if not yet sent and wait for the answer, without reading application bytes. */
  readonly negotiated: Effect.Effect<void, Duplex.DuplexError | MultistreamError>
  /**
   * The underlying duplex owns its reads (Duplex.OwnedReads), and so do these: they are its
   * reads, after what the answer's reader left (`Reader.rest`, see `Duplex.prepend`).
   */
  readonly ownedReads?: true
}

/**
 * Optimistic select of a single protocol (js-libp2p's `lazySelect`,
 * go-multistream's `NewMSSelect`): returns at once; the header and the proposal
 * go out with the first write (or on the first read or `closeWrite` when
 * nothing was written), and the responder's header and answer are read on the
 * first read. If the responder answers `na`, that read fails with
 * `UnsupportedProtocol`, and so do all later reads and writes. Writes made
 * before the answer was read are sent optimistically (that is the point); the
 * responder will have taken them for further proposals, so the caller should
 * reset the stream on failure. The `timeout` option bounds the reading of the
 * answer.
 */
export const lazySelect = (duplex: Duplex.Duplex, protocol: string, options?: Options): LazyDuplex => {
  const writeLock = Semaphore.makeUnsafe(1)
  const readLock = Semaphore.makeUnsafe(1)
  let written = false
  let confirmed = false
  let failure: MultistreamError | Duplex.DuplexError | undefined
  let leftover: Duplex.Chunks = Duplex.EOF
  const valid = validateProtocolId(protocol)
  const proposal = Result.isSuccess(valid) ? frameText(protocol) : undefined

  const failed = <A>(): Effect.Effect<A, MultistreamError | Duplex.DuplexError> | undefined => {
    if (failure !== undefined) return Effect.fail(failure)
    if (Result.isFailure(valid)) return Effect.fail(valid.failure)
    return undefined
  }

  // Send header + proposal (+ data) once. Returns true when `chunks` went with it.
  const sendProposal = (chunks: Duplex.Chunks): Effect.Effect<boolean, Duplex.DuplexError> =>
    writeLock.withPermit(Effect.suspend(() => {
      if (written) return Effect.succeed(false)
      // `written` turns true only once this write is over (or failed): until then other
      // writers queue on the lock, so nothing overtakes the header.
      return Effect.as(duplex.write([HEADER_FRAME, proposal!, ...chunks]), true).pipe(
        Effect.ensuring(Effect.sync(() => {
          written = true
        }))
      )
    }))

  const confirm: Effect.Effect<void, MultistreamError | Duplex.DuplexError> = readLock.withPermit(
    Effect.suspend(() => {
      const early = failed<void>()
      if (early !== undefined) return early
      if (confirmed) return Effect.void
      const reader = Reader.make(duplex)
      return Effect.gen(function*() {
        yield* sendProposal(Duplex.EOF)
        yield* readHeader(reader)
        const answer = yield* readMessage(reader, `the answer to ${protocol}`)
        if (answer === NA) return yield* unsupported([protocol])
        if (answer !== protocol) {
          return yield* error("UnexpectedResponse", `proposed "${protocol}", the remote answered "${truncate(answer)}"`)
        }
        leftover = reader.rest()
        confirmed = true
      }).pipe(
        (eff) => withTimeout(eff, options, "multistream-select (lazy)"),
        Effect.tapError((e) =>
          Effect.sync(() => {
            failure = e
          })
        )
      )
    })
  )

  const read: Effect.Effect<Duplex.Chunks, MultistreamError | Duplex.DuplexError> = Effect.suspend(() => {
    if (!confirmed) return Effect.andThen(confirm, read)
    if (leftover.length > 0) {
      const out = leftover
      leftover = Duplex.EOF
      return Effect.succeed(out)
    }
    return duplex.read
  })

  const write = (chunks: Duplex.Chunks): Effect.Effect<void, MultistreamError | Duplex.DuplexError> =>
    Effect.suspend(() => {
      const early = failed<void>()
      if (early !== undefined) return early
      if (written) return duplex.write(chunks)
      return Effect.flatMap(sendProposal(chunks), (sent) => (sent ? Effect.void : duplex.write(chunks)))
    })

  const closeWrite: Effect.Effect<void> = Effect.suspend(() => {
    if (written || proposal === undefined) return duplex.closeWrite
    return Effect.andThen(Effect.ignore(sendProposal(Duplex.EOF)), duplex.closeWrite)
  })

  const lazy: LazyDuplex = { protocol, read, write, closeWrite, reset: duplex.reset, negotiated: confirm }
  return Duplex.ownsReads(duplex) ? Duplex.withOwnedReads(lazy) : lazy
}

/**
 * View a {@link LazyDuplex} as a plain `Duplex.Duplex` for layers that take one
 * (the `Duplex` contract fails only with `DuplexError`): a negotiation failure
 * becomes `DuplexError { reason: "Timeout" }` for `Timeout` and
 * `DuplexError { reason: "Io" }` otherwise, its message starting with
 * `multistream-select <reason>:`. Use `lazy.negotiated` or the `LazyDuplex`
 * itself where the typed `MultistreamError` matters.
 */
export const toDuplex = (lazy: LazyDuplex): Duplex.Duplex => {
  const toDuplexError = (e: MultistreamError | Duplex.DuplexError): Duplex.DuplexError =>
    e._tag === "DuplexError"
      ? e
      : new Duplex.DuplexError({
        reason: e.reason === "Timeout" ? "Timeout" : "Io",
        message: `multistream-select ${e.reason}: ${e.message}`,
        cause: e
      })
  const duplex: Duplex.Duplex = {
    read: Effect.mapError(lazy.read, toDuplexError),
    write: (chunks) => Effect.mapError(lazy.write(chunks), toDuplexError),
    closeWrite: lazy.closeWrite,
    reset: lazy.reset
  }
  return lazy.ownedReads === true ? Duplex.withOwnedReads(duplex) : duplex
}

/**
 * libp2p TLS, the `/tls/1.0.0` secure channel
 * (https://github.com/libp2p/specs/blob/master/tls/tls.md), implementing the
 * {@link SecureChannel.SecureChannel} contract with node:tls running over our
 * raw Duplex (through {@link NodeStream}):
 *
 * - §Handshake Protocol: TLS 1.3 only (`minVersion`/`maxVersion` TLSv1.3);
 *   the server requires a client certificate (`requestCert`) and aborts when
 *   none comes.
 * - §Peer Authentication: our certificate is {@link Certificate.generate}'s
 *   (a fresh ECDSA P-256 key per `Tls` instance and identity key, the libp2p
 *   extension signed by the identity key). node:tls is told to accept any
 *   certificate (`rejectUnauthorized: false`; a self-signed one never chains
 *   to a CA) and, once the handshake is done (`secureConnect` for the client,
 *   `secure` for the server), we verify the peer's with
 *   {@link Certificate.verify} at `Clock` time, against `remotePeer` when
 *   given (`PeerIdMismatch`), and count the certificates the peer sent with
 *   {@link Transcript} (more than one: refused).
 * - §ALPN and inlined-muxer-negotiation spec §Multiplexer Negotiation over
 *   TLS: the client offers `[...muxers, "libp2p"]`; the server picks the first
 *   of the client's protocols it supports (its muxers, or "libp2p"), and
 *   aborts the handshake when there is none (`NoCommonMuxer`). A muxer id as
 *   the result becomes `SecuredConnection.muxer`; "libp2p" (or no ALPN at
 *   all) leaves the muxer to multistream-select.
 * - No session resumption: a resumed TLS 1.3 session carries no certificate,
 *   so there would be nothing to authenticate. Our client never offers a
 *   session; our server issues no stateless tickets (`SSL_OP_NO_TICKET`; the
 *   stateful ones node:tls then sends cannot be resumed, as node:tls keeps no
 *   server session cache here) and refuses any resumed session.
 * - §Future Extensibility: the client sends no Server Name Indication (we
 *   never set `servername`), and the server ignores one.
 *
 * The secured Duplex reads and writes the TLSSocket (batches corked into one
 * write; reads pause the socket above 4 MiB unread); `closeWrite` sends
 * `close_notify` (TLS 1.3 half-close: the remote reads EOF and may keep
 * writing); `reset` destroys the socket and resets the raw Duplex. The raw
 * stream ending without `close_notify` also reads as EOF (node:tls reports it
 * so; as with Noise, the muxer above notices a cut session).
 *
 * Any handshake failure, timeout (`SecureOptions.timeout`) or interruption
 * destroys the TLSSocket and resets the raw Duplex. Failures are
 * `SecurityError`s: `PeerIdMismatch`; `InvalidSignature` (the identity
 * signature, or the certificate's self-signature); `InvalidPayload` (any other
 * certificate problem — the message starts with `tls certificate <reason>:` —,
 * or a TLS protocol error such as garbage instead of a ClientHello);
 * `NoCommonMuxer`; `Closed` (the stream ended or failed during the
 * handshake); `Timeout`.
 *
 * Note (§Peer Authentication, "Note for clients"): the TLS 1.3 client finishes
 * its handshake before the server has seen its certificate; if the server then
 * refuses it, the client learns so from its first reads failing.
 *
 * ```ts
 * const tls = yield* Tls.make()
 * const conn = yield* tls.secureOutbound(raw, { localKey, remotePeer, muxers: ["/yamux/1.0.0"], timeout: "10 seconds" })
 * conn.duplex // plaintext Duplex; conn.remotePeer; conn.muxer
 * ```
 *
 * @since 0.1.0
 */
import type { Scope } from "effect"
import { Clock, Duration, Effect, FiberSet, Result } from "effect"
import * as crypto from "node:crypto"
import * as NodeTls from "node:tls"
import type * as Duplex from "../core/Duplex.ts"
import type * as Keys from "../core/Keys.ts"
import { errorCode, errorMessage } from "../internal/errors.ts"
import * as SocketDuplex from "../transport/SocketDuplex.ts"
import * as SecureChannel from "./SecureChannel.ts"
import { SecurityError } from "./SecureChannel.ts"
import * as Certificate from "./tls/Certificate.ts"
import * as NodeStream from "./tls/NodeStream.ts"
import * as Transcript from "./tls/Transcript.ts"

/** The multistream-select protocol id (§Handshake Protocol). */
export const PROTOCOL = "/tls/1.0.0"

/** The ALPN protocol of libp2p TLS (§ALPN); always last in the client's list. */
export const ALPN = "libp2p"

export interface TlsOptions {
  /** Unread plaintext above which the socket stops reading (default 4 MiB). */
  readonly maxBufferedBytes?: number
  /** How long closing the connection waits for buffered writes to flush (default 2 s). */
  readonly closeTimeout?: Duration.Input
}

/** A secured connection with the TLS specifics. */
export interface TlsConnection extends SecureChannel.SecuredConnection {
  /** The peer's certificate (DER). */
  readonly remoteCertificate: Uint8Array
  /** The ALPN result: a muxer id, "libp2p", or undefined when the server did not answer ALPN. */
  readonly alpnProtocol: string | undefined
}

export interface Tls extends SecureChannel.SecureChannel {
  readonly secureOutbound: (
    raw: Duplex.Duplex,
    options: SecureChannel.SecureOptions
  ) => Effect.Effect<TlsConnection, SecurityError, Scope.Scope>
  readonly secureInbound: (
    raw: Duplex.Duplex,
    options: SecureChannel.SecureOptions
  ) => Effect.Effect<TlsConnection, SecurityError, Scope.Scope>
}

/**
 * The server's ALPN choice (inlined-muxer-negotiation spec §Multiplexer
 * Negotiation over TLS): the first of the client's protocols that is one of
 * our muxers or "libp2p"; undefined when there is none (abort the handshake).
 */
export const selectProtocol = (
  offered: ReadonlyArray<string>,
  muxers: ReadonlyArray<string>
): string | undefined => {
  for (const p of offered) if (p === ALPN || muxers.includes(p)) return p
  return undefined
}

/** The client's ALPN offer: our muxers in preference order, then "libp2p". */
export const alpnOffer = (muxers: ReadonlyArray<string>): Array<string> => [...muxers.filter((m) => m !== ALPN), ALPN]

const securityError = (reason: SecureChannel.SecurityErrorReason, message: string, cause?: unknown) =>
  new SecurityError({ reason, message: `tls: ${message}`, cause })

/** A socket error during the handshake as a SecurityError. */
const handshakeError = (err: unknown, alpnRefused: boolean): SecurityError => {
  const code = errorCode(err)
  if (typeof err === "object" && err !== null && "_tag" in err && err._tag === "DuplexError") {
    return securityError("Closed", `the stream failed during the handshake: ${errorMessage(err)}`, err)
  }
  if (alpnRefused || code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL") {
    return securityError("NoCommonMuxer", `no common ALPN protocol (${code ?? errorMessage(err)})`, err)
  }
  if (code === "ECONNRESET" || code === "EPIPE") {
    return securityError("Closed", `the stream ended during the handshake: ${errorMessage(err)}`, err)
  }
  return securityError("InvalidPayload", `handshake failed: ${code ?? ""} ${errorMessage(err).trim()}`, err)
}

const certificateError = (e: Certificate.CertificateError): SecurityError =>
  securityError(
    e.reason === "PeerIdMismatch"
      ? "PeerIdMismatch"
      : e.reason === "InvalidSignature" || e.reason === "BadSelfSignature"
      ? "InvalidSignature"
      : "InvalidPayload",
    `certificate ${e.reason}: ${e.message}`,
    e
  )

interface Local {
  readonly certificate: Certificate.LocalCertificate
  readonly context: NodeTls.SecureContext
}

/** Build a `/tls/1.0.0` secure channel. */
export const make = (options?: TlsOptions): Effect.Effect<Tls> =>
  Effect.sync(() => {
    const socketOptions: SocketDuplex.Options = {
      maxBufferedBytes: options?.maxBufferedBytes ?? 4 * 1024 * 1024,
      closeTimeout: options?.closeTimeout ?? Duration.seconds(2)
    }

    // One certificate key and context per identity key (the spec allows reusing them).
    const locals = new WeakMap<Keys.PrivateKey, Local>()
    const localFor = (key: Keys.PrivateKey): Effect.Effect<Local, SecurityError> =>
      Effect.suspend(() => {
        const cached = locals.get(key)
        if (cached !== undefined) return Effect.succeed(cached)
        return Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const generated = Certificate.generate(key, now)
          if (Result.isFailure(generated)) {
            return Effect.fail(securityError("InvalidPayload", `our certificate: ${generated.failure.message}`))
          }
          const certificate = generated.success
          return Effect.try({
            try: () => {
              const context = NodeTls.createSecureContext({
                cert: certificate.pem,
                key: certificate.keyPem,
                minVersion: "TLSv1.3",
                maxVersion: "TLSv1.3",
                ciphers: Transcript.CIPHER_SUITES,
                secureOptions: crypto.constants.SSL_OP_NO_TICKET
              })
              const local: Local = { certificate, context }
              locals.set(key, local)
              return local
            },
            catch: (e) => securityError("InvalidPayload", `our TLS context: ${errorMessage(e)}`, e)
          })
        })
      })

    const handshake = (
      raw: Duplex.Duplex,
      opts: SecureChannel.SecureOptions,
      isServer: boolean
    ): Effect.Effect<TlsConnection, SecurityError, Scope.Scope> => {
      let socket: NodeTls.TLSSocket | undefined
      const run = Effect.gen(function*() {
        const local = yield* localFor(opts.localKey)
        const runFork = yield* FiberSet.makeRuntime<never>()
        const transcript = Transcript.make(isServer)
        const transport = NodeStream.make(raw, runFork, { onRead: transcript.push })
        const muxers = opts.muxers ?? []
        let alpnRefused = false
        const s = yield* Effect.try({
          try: () =>
            isServer
              ? new NodeTls.TLSSocket(transport, {
                isServer: true,
                secureContext: local.context,
                requestCert: true,
                rejectUnauthorized: false,
                ALPNCallback: ({ protocols }) => {
                  const chosen = selectProtocol(protocols, muxers)
                  if (chosen === undefined) alpnRefused = true
                  return chosen
                }
              })
              : NodeTls.connect({
                socket: transport,
                secureContext: local.context,
                rejectUnauthorized: false,
                ALPNProtocols: alpnOffer(muxers)
              }),
          catch: (e) => securityError("InvalidPayload", `starting the TLS handshake: ${errorMessage(e)}`, e)
        })
        socket = s
        s.on("keylog", transcript.keylog)
        // The plaintext side: listeners (error included) attached before any byte flows.
        const plain = SocketDuplex.make(s, socketOptions)
        yield* Effect.addFinalizer(() => plain.close)

        yield* Effect.callback<void, SecurityError>((resume) => {
          const done = isServer ? "secure" : "secureConnect"
          const cleanup = () => {
            s.off(done, onDone)
            s.off("error", onError)
            s.off("end", onEnd)
            s.off("close", onEnd)
          }
          const onDone = () => {
            cleanup()
            resume(Effect.void)
          }
          const onError = (err: unknown) => {
            cleanup()
            resume(Effect.fail(handshakeError(err, alpnRefused)))
          }
          const onEnd = () => {
            cleanup()
            resume(Effect.fail(securityError("Closed", "the stream ended during the handshake")))
          }
          s.on(done, onDone)
          s.on("error", onError)
          s.on("end", onEnd)
          s.on("close", onEnd)
          return Effect.sync(cleanup)
        })

        if (s.isSessionReused()) {
          return yield* securityError("InvalidPayload", "a resumed session (we never offer or accept resumption)")
        }
        const x509 = s.getPeerX509Certificate()
        if (x509 === undefined) return yield* securityError("InvalidPayload", "the peer sent no certificate")
        const count = transcript.peerCertificateCount(s.getCipher().standardName)
        if (Result.isFailure(count)) {
          return yield* securityError("InvalidPayload", `reading the peer's certificates: ${count.failure.message}`)
        }
        if (count.success !== 1) {
          return yield* securityError("InvalidPayload", `the peer sent ${count.success} certificates, not exactly one`)
        }
        const remoteCertificate = Uint8Array.from(x509.raw)
        const now = yield* Clock.currentTimeMillis
        const verified = Certificate.verify(remoteCertificate, { now, remotePeer: opts.remotePeer })
        if (Result.isFailure(verified)) return yield* certificateError(verified.failure)

        const alpn = typeof s.alpnProtocol === "string" ? s.alpnProtocol : undefined
        const muxer = alpn !== undefined && alpn !== ALPN && muxers.includes(alpn) ? alpn : undefined
        const duplex: Duplex.Duplex = {
          read: plain.duplex.read,
          write: plain.duplex.write,
          closeWrite: plain.duplex.closeWrite,
          reset: Effect.andThen(plain.duplex.reset, raw.reset)
        }
        const connection: TlsConnection = {
          duplex,
          remotePeer: verified.success.peerId,
          remotePublicKey: verified.success.publicKey,
          remoteCertificate,
          alpnProtocol: alpn,
          ...(muxer !== undefined ? { muxer } : {})
        }
        return connection
      })
      const timed = opts.timeout === undefined ? run : Effect.timeoutOrElse(run, {
        duration: opts.timeout,
        orElse: () => Effect.fail(securityError("Timeout", "the handshake ran past its deadline"))
      })
      return Effect.onError(
        timed,
        () =>
          Effect.andThen(
            Effect.sync(() => socket?.destroy()),
            raw.reset
          )
      )
    }

    const tls: Tls = {
      protocol: PROTOCOL,
      secureOutbound: (raw, opts) => handshake(raw, opts, false),
      secureInbound: (raw, opts) => handshake(raw, opts, true)
    }
    return tls
  })

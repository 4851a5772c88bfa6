/**
 * Noise `HandshakeState` (Noise Protocol Framework rev 34 §5.3) for the one
 * pattern libp2p uses, XX (§7.5), as `Noise_XX_25519_ChaChaPoly_SHA256`:
 *
 * ```
 * XX:
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * ```
 *
 * The message patterns are data (token lists) processed by `WriteMessage` /
 * `ReadMessage` exactly as §5.3 describes. Messages are at most 65535 bytes
 * (§3); a longer one fails with `MessageTooLarge`. After the third message
 * `split()` returns the transport CipherStates, already assigned to
 * directions for the caller's role (initiator sends with the first).
 *
 * Ephemeral key pairs can be injected (test vectors); otherwise they are
 * generated on first use.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import { SecurityError } from "../SecureChannel.ts"
import type * as CipherState from "./CipherState.ts"
import * as SymmetricState from "./SymmetricState.ts"
import * as X25519 from "./X25519.ts"

export const PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_SHA256"

/** The most bytes a Noise message may have (§3). */
export const MAX_MESSAGE_LEN = 65535

type Token = "e" | "s" | "ee" | "es" | "se" | "ss"

/** XX message patterns (§7.5); index i is written by the initiator when i is even. */
const XX: ReadonlyArray<ReadonlyArray<Token>> = [["e"], ["e", "ee", "s", "es"], ["s", "se"]]

export interface Options {
  readonly initiator: boolean
  /** The local static key pair `s`. */
  readonly staticKeyPair: X25519.KeyPair
  /** The prologue (libp2p: empty). */
  readonly prologue?: Uint8Array
  /** A fixed ephemeral key pair `e` (tests); generated when absent. */
  readonly ephemeralKeyPair?: X25519.KeyPair
}

export interface TransportCiphers {
  /** Encrypts what we send. */
  readonly send: CipherState.CipherState
  /** Decrypts what we receive. */
  readonly receive: CipherState.CipherState
  /** The final handshake hash (channel binding). */
  readonly handshakeHash: Uint8Array
}

export interface HandshakeState {
  /** `WriteMessage(payload)`: the next message, which must be ours to write. */
  readonly writeMessage: (payload: Uint8Array) => Result.Result<Uint8Array, SecurityError>
  /** `ReadMessage(message)`: the payload of the next message, which must be the remote's. */
  readonly readMessage: (message: Uint8Array) => Result.Result<Uint8Array, SecurityError>
  /** True once all three messages have been processed. */
  readonly isComplete: () => boolean
  /** The remote static public key `rs` (after it was received). */
  readonly remoteStatic: () => Uint8Array | undefined
  /** The handshake hash `h` so far. */
  readonly handshakeHash: () => Uint8Array
  /** The transport CipherStates (`Split()`); only once complete. */
  readonly split: () => Result.Result<TransportCiphers, SecurityError>
}

const EMPTY = new Uint8Array(0)

const invalid = (message: string) => new SecurityError({ reason: "InvalidPayload", message })
const tooLarge = (n: number) =>
  new SecurityError({
    reason: "MessageTooLarge",
    message: `noise: a ${n}-byte message exceeds ${MAX_MESSAGE_LEN} bytes`
  })

/** `Initialize(handshake_pattern = XX, initiator, prologue, s, e, rs = empty, re = empty)`. */
export const make = (options: Options): HandshakeState => {
  const initiator = options.initiator
  const ss = SymmetricState.make(PROTOCOL_NAME)
  ss.mixHash(options.prologue ?? EMPTY) // XX has no pre-messages
  const s = options.staticKeyPair
  let e: X25519.KeyPair | undefined = options.ephemeralKeyPair
  let rs: X25519.PublicKey | undefined
  let re: X25519.PublicKey | undefined
  let index = 0

  // Plain early returns rather than Result.gen: this runs three times per handshake on each side.
  const mixDh = (priv: X25519.KeyPair | undefined, pub: X25519.PublicKey | undefined): SecurityError | undefined => {
    if (priv === undefined || pub === undefined) return invalid("noise: a DH token before its keys")
    const out = X25519.dh(priv.privateKey, pub)
    if (Result.isFailure(out)) return out.failure
    ss.mixKey(out.success)
    return undefined
  }

  const dhToken = (token: "ee" | "es" | "se" | "ss"): SecurityError | undefined => {
    switch (token) {
      case "ee":
        return mixDh(e, re)
      case "es":
        return initiator ? mixDh(e, rs) : mixDh(s, re)
      case "se":
        return initiator ? mixDh(s, re) : mixDh(e, rs)
      case "ss":
        return mixDh(s, rs)
    }
  }

  const isOurs = () => (index % 2 === 0) === initiator

  const writeMessage = (payload: Uint8Array): Result.Result<Uint8Array, SecurityError> => {
    const pattern = XX[index]
    if (pattern === undefined || !isOurs()) return Result.fail(invalid("noise: not our turn to write"))
    const parts: Array<Uint8Array> = []
    for (const token of pattern) {
      if (token === "e") {
        if (e === undefined) e = X25519.generate()
        parts.push(e.publicRaw)
        ss.mixHash(e.publicRaw)
      } else if (token === "s") {
        const c = ss.encryptAndHash(s.publicRaw)
        if (Result.isFailure(c)) return c
        parts.push(c.success)
      } else {
        const err = dhToken(token)
        if (err !== undefined) return Result.fail(err)
      }
    }
    const c = ss.encryptAndHash(payload)
    if (Result.isFailure(c)) return c
    parts.push(c.success)
    let len = 0
    for (const p of parts) len += p.byteLength
    if (len > MAX_MESSAGE_LEN) return Result.fail(tooLarge(len))
    const out = new Uint8Array(len)
    let at = 0
    for (const p of parts) {
      out.set(p, at)
      at += p.byteLength
    }
    index++
    return Result.succeed(out)
  }

  const readMessage = (message: Uint8Array): Result.Result<Uint8Array, SecurityError> => {
    const pattern = XX[index]
    if (pattern === undefined || isOurs()) return Result.fail(invalid("noise: not our turn to read"))
    if (message.byteLength > MAX_MESSAGE_LEN) return Result.fail(tooLarge(message.byteLength))
    let at = 0
    for (const token of pattern) {
      if (token === "e") {
        if (message.byteLength - at < X25519.DH_LEN) {
          return Result.fail(invalid("noise: message too short for an ephemeral key"))
        }
        const k = X25519.publicFromRaw(message.subarray(at, at + X25519.DH_LEN))
        if (Result.isFailure(k)) return Result.fail(k.failure)
        re = k.success
        at += X25519.DH_LEN
        ss.mixHash(re.raw)
      } else if (token === "s") {
        const n = ss.cipherState.hasKey() ? X25519.DH_LEN + 16 : X25519.DH_LEN
        if (message.byteLength - at < n) {
          return Result.fail(invalid("noise: message too short for a static key"))
        }
        const raw = ss.decryptAndHash(message.subarray(at, at + n))
        if (Result.isFailure(raw)) return raw
        at += n
        const k = X25519.publicFromRaw(raw.success)
        if (Result.isFailure(k)) return Result.fail(k.failure)
        rs = k.success
      } else {
        const err = dhToken(token)
        if (err !== undefined) return Result.fail(err)
      }
    }
    const payload = ss.decryptAndHash(message.subarray(at))
    if (Result.isFailure(payload)) return payload
    index++
    return payload
  }

  return {
    writeMessage,
    readMessage,
    isComplete: () => index >= XX.length,
    remoteStatic: () => rs?.raw,
    handshakeHash: ss.handshakeHash,
    split: () => {
      if (index < XX.length) return Result.fail(invalid("noise: split before the handshake completed"))
      const [c1, c2] = ss.split()
      return Result.succeed(
        initiator
          ? { send: c1, receive: c2, handshakeHash: ss.handshakeHash() }
          : { send: c2, receive: c1, handshakeHash: ss.handshakeHash() }
      )
    }
  }
}

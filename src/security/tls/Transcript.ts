/**
 * How many certificates the peer sent: the libp2p TLS spec §Peer
 * Authentication says "Endpoints MUST abort the connection attempt if more
 * than one certificate is received", but node:tls only exposes the peer's
 * leaf certificate (and an issuer chain it rebuilds itself), never the list
 * the peer actually sent. In TLS 1.3 that list travels encrypted, in the
 * peer's `Certificate` message (RFC 8446 §4.4.2).
 *
 * So we keep the bytes the peer sends during the handshake and, once node:tls
 * reports the handshake done, decrypt the peer's handshake flight ourselves
 * with the peer's handshake traffic secret, which node:tls hands out through
 * its `keylog` event (NSS key log format: `CLIENT_HANDSHAKE_TRAFFIC_SECRET` /
 * `SERVER_HANDSHAKE_TRAFFIC_SECRET <client_random> <secret>`):
 *
 * - RFC 8446 §7.3: `key = HKDF-Expand-Label(secret, "key", "", key_length)`,
 *   `iv = HKDF-Expand-Label(secret, "iv", "", 12)` (§7.1 `HkdfLabel`);
 * - §5.2/§5.3: each `application_data` record (type 23) is AEAD-sealed with
 *   the nonce `iv XOR seq` and the record header as additional data; the
 *   plaintext is `content ‖ type ‖ zeros`;
 * - §4: handshake messages (`type(1) ‖ length(3) ‖ body`) may span records;
 *   we read up to the peer's `Finished` and count the `CertificateEntry`s of
 *   its `Certificate` message (`certificate_request_context<0..255>`,
 *   `certificate_list<0..2^24-1>` of `cert_data<1..2^24-1>`, `extensions<0..2^16-1>`).
 *
 * Plaintext records before the first encrypted one (ClientHello/ServerHello,
 * a HelloRetryRequest round, `change_cipher_spec`) are skipped. The cipher
 * suites are the three node:tls enables for TLS 1.3 (the Tls module pins
 * them): TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384,
 * TLS_CHACHA20_POLY1305_SHA256.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as crypto from "node:crypto"

/**
 * Why the peer's flight could not be read.
 * - `NoSecret`: node:tls reported no handshake traffic secret for the peer.
 * - `UnknownCipher`: a cipher suite other than the three above.
 * - `Undecryptable`: a record failed authentication.
 * - `Malformed`: a record or handshake message is cut or inconsistent.
 * - `Incomplete`: the bytes end before the peer's `Finished`.
 * - `TooLarge`: the peer's flight is over the transcript limit.
 */
export const TranscriptErrorReason = Schema.Literals([
  "NoSecret",
  "UnknownCipher",
  "Undecryptable",
  "Malformed",
  "Incomplete",
  "TooLarge"
])
export type TranscriptErrorReason = typeof TranscriptErrorReason.Type

export class TranscriptError extends Schema.TaggedError<TranscriptError>()("TranscriptError", {
  reason: TranscriptErrorReason,
  message: Schema.String
}) {}

const fail = (reason: TranscriptErrorReason, message: string): Result.Result<never, TranscriptError> =>
  Result.fail(new TranscriptError({ reason, message }))

/** The most handshake bytes kept from the peer (OpenSSL's default certificate list limit is 100 KiB). */
export const MAX_TRANSCRIPT_BYTES = 256 * 1024

const RECORD_HANDSHAKE = 22
const RECORD_ALERT = 21
const RECORD_APPLICATION_DATA = 23
const HANDSHAKE_CERTIFICATE = 11
const HANDSHAKE_FINISHED = 20
const TAG_LEN = 16

interface Suite {
  readonly cipher: crypto.CipherGCMTypes | crypto.CipherChaCha20Poly1305Types
  readonly keyLength: number
  readonly hash: "sha256" | "sha384"
}

const SUITES: Readonly<Record<string, Suite>> = {
  TLS_AES_128_GCM_SHA256: { cipher: "aes-128-gcm", keyLength: 16, hash: "sha256" },
  TLS_AES_256_GCM_SHA384: { cipher: "aes-256-gcm", keyLength: 32, hash: "sha384" },
  TLS_CHACHA20_POLY1305_SHA256: { cipher: "chacha20-poly1305", keyLength: 32, hash: "sha256" }
}

/** The TLS 1.3 cipher suites we can read (and so the only ones we negotiate), in node:tls's default order. */
export const CIPHER_SUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

/** RFC 8446 §7.1 HKDF-Expand-Label with an empty context, for lengths up to one hash block. */
export const expandLabel = (hash: string, secret: Uint8Array, label: string, length: number): Uint8Array => {
  const full = new TextEncoder().encode("tls13 " + label)
  const info = new Uint8Array(2 + 1 + full.byteLength + 1 + 1)
  info[0] = length >>> 8
  info[1] = length & 0xff
  info[2] = full.byteLength
  info.set(full, 3)
  info[3 + full.byteLength] = 0 // empty context
  info[4 + full.byteLength] = 1 // HKDF-Expand's block counter T(1)
  return Uint8Array.from(crypto.createHmac(hash, secret).update(info).digest().subarray(0, length))
}

export interface Transcript {
  /** Bytes received from the peer, in order. */
  readonly push: (chunk: Uint8Array) => void
  /** A node:tls `keylog` line. */
  readonly keylog: (line: Uint8Array) => void
  /**
   * The number of certificates in the peer's `Certificate` message (0 when
   * it sent none before its `Finished`). Releases the kept bytes.
   */
  readonly peerCertificateCount: (cipherSuite: string) => Result.Result<number, TranscriptError>
}

/**
 * A transcript of what the peer sends. `isServer`: we are the TLS server, so
 * the peer's flight is protected with the client handshake traffic secret.
 */
export const make = (isServer: boolean): Transcript => {
  const label = isServer ? "CLIENT_HANDSHAKE_TRAFFIC_SECRET" : "SERVER_HANDSHAKE_TRAFFIC_SECRET"
  let chunks: Array<Uint8Array> = []
  let size = 0
  let active = true
  let overflow = false
  let secret: Uint8Array | undefined

  const push = (chunk: Uint8Array) => {
    if (!active) return
    if (size + chunk.byteLength > MAX_TRANSCRIPT_BYTES) {
      overflow = true
      active = false
      chunks = []
      return
    }
    chunks.push(chunk)
    size += chunk.byteLength
  }

  const keylog = (line: Uint8Array) => {
    const text = Buffer.from(line.buffer, line.byteOffset, line.byteLength).toString("latin1").trim()
    const [name, , hex] = text.split(" ")
    if (name === label && hex !== undefined && /^[0-9a-f]+$/i.test(hex)) {
      secret = Uint8Array.from(Buffer.from(hex, "hex"))
    }
  }

  const count = (cipherSuite: string): Result.Result<number, TranscriptError> => {
    if (overflow) return fail("TooLarge", `the peer's handshake flight is over ${MAX_TRANSCRIPT_BYTES} bytes`)
    if (secret === undefined) return fail("NoSecret", `no ${label} from node:tls`)
    const suite = SUITES[cipherSuite]
    if (suite === undefined) return fail("UnknownCipher", `cipher suite ${cipherSuite}`)
    const key = expandLabel(suite.hash, secret, "key", suite.keyLength)
    const iv = expandLabel(suite.hash, secret, "iv", 12)
    const bytes = Buffer.concat(chunks)
    let seq = 0n
    let at = 0
    let messages = Buffer.alloc(0)
    let certificates = 0
    while (true) {
      if (at + 5 > bytes.byteLength) return fail("Incomplete", "the bytes end before the peer's Finished")
      const type = bytes[at]!
      const length = bytes.readUInt16BE(at + 3)
      if (at + 5 + length > bytes.byteLength) return fail("Incomplete", "the bytes end inside a record")
      const header = bytes.subarray(at, at + 5)
      const body = bytes.subarray(at + 5, at + 5 + length)
      at += 5 + length
      if (type !== RECORD_APPLICATION_DATA) continue // plaintext hellos, change_cipher_spec
      if (length < TAG_LEN + 1) return fail("Malformed", `a ${length}-byte protected record`)
      const nonce = Buffer.from(iv)
      for (let i = 0; i < 8; i++) nonce[11 - i]! ^= Number((seq >> BigInt(8 * i)) & 0xffn)
      seq++
      let plain: Buffer
      try {
        const decipher: crypto.DecipherGCM | crypto.DecipherChaCha20Poly1305 = suite.cipher === "chacha20-poly1305"
          ? crypto.createDecipheriv(suite.cipher, key, nonce, { authTagLength: TAG_LEN })
          : crypto.createDecipheriv(suite.cipher, key, nonce, { authTagLength: TAG_LEN })
        decipher.setAAD(header, { plaintextLength: length - TAG_LEN })
        decipher.setAuthTag(body.subarray(length - TAG_LEN))
        plain = Buffer.concat([decipher.update(body.subarray(0, length - TAG_LEN)), decipher.final()])
      } catch {
        return fail("Undecryptable", "a protected handshake record did not authenticate")
      }
      let end = plain.byteLength
      while (end > 0 && plain[end - 1] === 0) end--
      if (end === 0) return fail("Malformed", "a protected record without a content type")
      const inner = plain[end - 1]!
      if (inner === RECORD_ALERT) return fail("Malformed", "the peer sent an alert in its handshake flight")
      if (inner !== RECORD_HANDSHAKE) return fail("Malformed", `content type ${inner} before the peer's Finished`)
      messages = Buffer.concat([messages, plain.subarray(0, end - 1)])
      while (messages.byteLength >= 4) {
        const msgType = messages[0]!
        const msgLength = messages.readUIntBE(1, 3)
        if (messages.byteLength < 4 + msgLength) break
        const msg = messages.subarray(4, 4 + msgLength)
        messages = messages.subarray(4 + msgLength)
        if (msgType === HANDSHAKE_FINISHED) return Result.succeed(certificates)
        if (msgType === HANDSHAKE_CERTIFICATE) {
          const n = countEntries(msg)
          if (n === undefined) return fail("Malformed", "a Certificate message that does not parse")
          certificates = n
        }
      }
    }
  }

  const peerCertificateCount = (cipherSuite: string) => {
    const r = count(cipherSuite)
    active = false
    chunks = []
    return r
  }

  return { push, keylog, peerCertificateCount }
}

/** The number of `CertificateEntry`s of a TLS 1.3 Certificate message body, or undefined when it does not parse. */
export const countEntries = (msg: Uint8Array): number | undefined => {
  const b = Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength)
  if (b.byteLength < 1) return undefined
  let at = 1 + b[0]! // certificate_request_context
  if (at + 3 > b.byteLength) return undefined
  const listEnd = at + 3 + b.readUIntBE(at, 3)
  at += 3
  if (listEnd !== b.byteLength) return undefined
  let n = 0
  while (at < listEnd) {
    if (at + 3 > listEnd) return undefined
    const certLength = b.readUIntBE(at, 3)
    if (certLength === 0) return undefined
    at += 3 + certLength
    if (at + 2 > listEnd) return undefined
    at += 2 + b.readUInt16BE(at)
    if (at > listEnd) return undefined
    n++
  }
  return n
}

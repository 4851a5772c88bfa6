/**
 * Noise `CipherState` (Noise Protocol Framework rev 34 §5.1) with the
 * ChaChaPoly cipher functions (§12.3): ChaCha20-Poly1305 (RFC 8439) from
 * node:crypto, a 96-bit nonce made of 32 zero bits followed by the 64-bit
 * counter `n` in little-endian, and a 16-byte tag.
 *
 * The key is kept as bytes; node:crypto gets it as a secret `KeyObject`:
 * with raw key bytes every cipher costs 10-15 µs more (node 24, 300 B to
 * 64 KiB), while making a KeyObject costs ~1 µs. The KeyObject is held through
 * a `WeakRef`: a busy connection keeps reusing it between collections, an idle
 * one does not keep its two KeyObjects (~0.35 KiB each, native handle
 * included) alive; after a collection the next message makes a new one.
 *
 * Transport messages under `SMALL_MESSAGE` bytes of plaintext (a Yamux header
 * with a few bytes of data, a window update, a ping, a multistream line, a
 * control RPC) are sealed and opened by `@chainsafe/as-chacha20poly1305`, the
 * WebAssembly ChaCha20-Poly1305 that js-libp2p's Noise uses below 1,200 bytes:
 * node:crypto creates a cipher object for every message, which costs 5–9 µs
 * whatever the size, against 1.3–2 µs for a 13-byte message in WebAssembly
 * (`npm run bench -- --only=crypto` prints both; they meet near 384 bytes). Both
 * implement RFC 8439, so the wire is the same. That library compares tags
 * with an early exit; a tag mismatch here resets the connection, whose keys
 * are never used again, so the timing reveals nothing a second guess could use.
 *
 * The counter is kept as two 32-bit halves so that the full 64-bit nonce space
 * of the spec is honoured exactly: §5.1 reserves `n = 2^64 - 1`, so once the
 * counter reaches it every encryption or decryption fails with
 * `SecurityError { reason: "NonceExhausted" }` (never a reused nonce).
 * On an authentication failure `n` is not incremented (§5.1 DecryptWithAd).
 *
 * Everything here is synchronous and returns `Result`: the transport hot path
 * pays no Effect overhead per message.
 *
 * @since 0.1.0
 */
import { ChaCha20Poly1305, newInstance } from "@chainsafe/as-chacha20poly1305"
import { Result } from "effect"
import * as crypto from "node:crypto"
import { SecurityError } from "../SecureChannel.ts"

/** Cipher key length (§12.3: 32 bytes). */
export const KEY_LEN = 32
/** AEAD tag length. */
export const TAG_LEN = 16

const ALGORITHM = "chacha20-poly1305"

/**
 * Plaintexts shorter than this go through the WebAssembly cipher (see the
 * module comment; measured crossover ~384 bytes, kept below it for opening,
 * which crosses earlier).
 */
export const SMALL_MESSAGE = 256

let wasm: ChaCha20Poly1305 | undefined
/** One WebAssembly instance for the process, made on first use (everything here is synchronous). */
const small = (): ChaCha20Poly1305 => wasm ??= new ChaCha20Poly1305(newInstance())

/** Where several small pieces are joined before the WebAssembly cipher copies them in. */
const smallScratch = new Uint8Array(SMALL_MESSAGE)
const MAX_HALF = 0xffffffff

export interface CipherState {
  /** `HasKey()` (§5.1). */
  readonly hasKey: () => boolean
  /** `InitializeKey(key)`: sets k (32 bytes) and n = 0. */
  readonly initializeKey: (key: Uint8Array) => void
  /** `SetNonce(nonce)` (§5.1), for tests and for the nonce-exhaustion rule. */
  readonly setNonce: (nonce: bigint) => void
  /** The current nonce `n`. */
  readonly nonce: () => bigint
  /** `EncryptWithAd(ad, plaintext)`: plaintext unchanged when there is no key. */
  readonly encryptWithAd: (ad: Uint8Array, plaintext: Uint8Array) => Result.Result<Uint8Array, SecurityError>
  /** `DecryptWithAd(ad, ciphertext)`: ciphertext unchanged when there is no key. */
  readonly decryptWithAd: (ad: Uint8Array, ciphertext: Uint8Array) => Result.Result<Uint8Array, SecurityError>
  /**
   * Transport hot path: encrypt the concatenation of `pieces` (empty associated
   * data) and write `ciphertext ‖ tag` into `out` at `offset`. Requires a key.
   * Returns the number of bytes written, or the error.
   */
  readonly encryptInto: (
    pieces: ReadonlyArray<Uint8Array>,
    out: Uint8Array,
    offset: number
  ) => SecurityError | number
  /**
   * Transport hot path for large messages: encrypt the concatenation of
   * `pieces` (empty associated data) and append the ciphertext pieces, then
   * the tag, to `out` as separate chunks (no copy into a frame buffer).
   * Requires a key.
   */
  readonly encryptToChunks: (pieces: ReadonlyArray<Uint8Array>, out: Array<Uint8Array>) => SecurityError | undefined
  /**
   * Transport hot path: decrypt `ciphertext ‖ tag` with empty associated data.
   * Requires a key.
   */
  readonly decrypt: (message: Uint8Array) => SecurityError | Uint8Array
  /**
   * Transport hot path: decrypt a message given as ciphertext `pieces` (in
   * order, no copy needed) and its `tag`, with empty associated data. Requires
   * a key. Appends the plaintext pieces to `out` only once the tag verified.
   */
  readonly decryptPieces: (
    pieces: ReadonlyArray<Uint8Array>,
    tag: Uint8Array,
    out: Array<Uint8Array>
  ) => SecurityError | undefined
}

const exhausted = () =>
  new SecurityError({ reason: "NonceExhausted", message: "noise: the nonce space of this cipher state is spent" })

const decryptError = (message: string) => new SecurityError({ reason: "Decrypt", message })

/**
 * A plain `Uint8Array` view of a node `Buffer` (no copy): plaintext leaves this
 * module as `Uint8Array`, whose `slice` copies (a Buffer's `slice` does not).
 */
const plain = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)

/**
 * The 12-byte nonce: 4 zero bytes ‖ n little-endian. node:crypto copies the iv
 * when a cipher is created, and nothing runs between writing it and that call,
 * so one buffer serves every CipherState of the process.
 */
const iv = Buffer.alloc(12)

const EMPTY = new Uint8Array(0)

/**
 * Keys are views into shared 4 KiB slabs: a key of its own would be a
 * Uint8Array and an ArrayBuffer (and a native allocation) per cipher, two per
 * connection (~0.2 KiB of heap each connection). A slab lives while any of
 * its 128 keys does.
 */
const KEY_SLAB = 4096
let keySlab = new Uint8Array(0)
let keySlabAt = 0
const keyCopy = (key: Uint8Array): Uint8Array => {
  if (keySlabAt + key.byteLength > keySlab.byteLength) {
    keySlab = new Uint8Array(Math.max(KEY_SLAB, key.byteLength))
    keySlabAt = 0
  }
  const out = keySlab.subarray(keySlabAt, keySlabAt + key.byteLength)
  out.set(key)
  keySlabAt += key.byteLength
  return out
}

/**
 * The state is a class instance (methods on the prototype, so a connection's
 * two CipherStates are a few fields each, not a dozen closures).
 */
class CipherStateImpl implements CipherState {
  // The key; node:crypto's KeyObject of it, made when needed, weakly held.
  private kb: Uint8Array | undefined = undefined
  private k: WeakRef<crypto.KeyObject> | undefined = undefined

  private keyObject(): crypto.KeyObject {
    let key = this.k?.deref()
    if (key === undefined) {
      key = crypto.createSecretKey(this.kb!)
      this.k = new WeakRef(key)
    }
    return key
  }
  // n = hi * 2^32 + lo
  private lo = 0
  private hi = 0

  private writeNonce(): void {
    iv.writeUInt32LE(this.lo, 4)
    iv.writeUInt32LE(this.hi, 8)
  }

  private increment(): void {
    if (this.lo === MAX_HALF) {
      this.lo = 0
      this.hi++
    } else {
      this.lo++
    }
  }

  // n = 2^64 - 1 is reserved (§5.1): no message may use it.
  private isExhausted(): boolean {
    return this.lo === MAX_HALF && this.hi === MAX_HALF
  }

  hasKey(): boolean {
    return this.kb !== undefined
  }

  initializeKey(key: Uint8Array): void {
    this.kb = keyCopy(key)
    this.k = undefined
    this.lo = 0
    this.hi = 0
  }

  setNonce(nonce: bigint): void {
    this.lo = Number(nonce & 0xffffffffn)
    this.hi = Number((nonce >> 32n) & 0xffffffffn)
  }

  nonce(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo)
  }

  private cipher(): crypto.CipherChaCha20Poly1305 {
    this.writeNonce()
    return crypto.createCipheriv(ALGORITHM, this.keyObject(), iv, { authTagLength: TAG_LEN })
  }

  private decipher(): crypto.DecipherChaCha20Poly1305 {
    this.writeNonce()
    return crypto.createDecipheriv(ALGORITHM, this.keyObject(), iv, {
      authTagLength: TAG_LEN
    })
  }

  encryptInto(pieces: ReadonlyArray<Uint8Array>, out: Uint8Array, offset: number): SecurityError | number {
    if (this.isExhausted()) return exhausted()
    let total = 0
    for (let i = 0; i < pieces.length; i++) total += pieces[i]!.byteLength
    if (total < SMALL_MESSAGE) return this.sealSmall(pieces, total, out, offset)
    const cipher = this.cipher()
    let at = offset
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!
      if (piece.byteLength === 0) continue
      const ct = cipher.update(piece)
      out.set(ct, at)
      at += ct.byteLength
    }
    const rest = cipher.final()
    if (rest.byteLength > 0) {
      out.set(rest, at)
      at += rest.byteLength
    }
    out.set(cipher.getAuthTag(), at)
    at += TAG_LEN
    this.increment()
    return at - offset
  }

  private sealSmall(pieces: ReadonlyArray<Uint8Array>, total: number, out: Uint8Array, offset: number): number {
    let plaintext: Uint8Array
    if (pieces.length === 1) {
      plaintext = pieces[0]!
    } else {
      let at = 0
      for (let i = 0; i < pieces.length; i++) {
        smallScratch.set(pieces[i]!, at)
        at += pieces[i]!.byteLength
      }
      plaintext = smallScratch.subarray(0, total)
    }
    this.writeNonce()
    small().seal(this.kb!, iv, plaintext, EMPTY, out.subarray(offset, offset + total + TAG_LEN))
    this.increment()
    return total + TAG_LEN
  }

  encryptToChunks(pieces: ReadonlyArray<Uint8Array>, out: Array<Uint8Array>): SecurityError | undefined {
    if (this.isExhausted()) return exhausted()
    const cipher = this.cipher()
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!
      if (piece.byteLength === 0) continue
      const ct = cipher.update(piece)
      if (ct.byteLength > 0) out.push(ct)
    }
    const rest = cipher.final()
    if (rest.byteLength > 0) out.push(rest)
    out.push(cipher.getAuthTag())
    this.increment()
    return undefined
  }

  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Result.Result<Uint8Array, SecurityError> {
    if (this.kb === undefined) return Result.succeed(plaintext)
    if (this.isExhausted()) return Result.fail(exhausted())
    const cipher = this.cipher()
    if (ad.byteLength > 0) cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    const out = new Uint8Array(plaintext.byteLength + TAG_LEN)
    const ct = cipher.update(plaintext)
    out.set(ct, 0)
    const rest = cipher.final()
    out.set(rest, ct.byteLength)
    out.set(cipher.getAuthTag(), plaintext.byteLength)
    this.increment()
    return Result.succeed(out)
  }

  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Result.Result<Uint8Array, SecurityError> {
    if (this.kb === undefined) return Result.succeed(ciphertext)
    const r = this.decryptAd(ad, ciphertext)
    return r instanceof SecurityError ? Result.fail(r) : Result.succeed(r)
  }

  decrypt(message: Uint8Array): SecurityError | Uint8Array {
    return this.decryptAd(EMPTY, message)
  }

  private decryptAd(ad: Uint8Array, message: Uint8Array): SecurityError | Uint8Array {
    if (this.isExhausted()) return exhausted()
    if (message.byteLength < TAG_LEN) {
      return decryptError(`noise: a ${message.byteLength}-byte ciphertext is shorter than its ${TAG_LEN}-byte tag`)
    }
    const ctLen = message.byteLength - TAG_LEN
    if (ctLen < SMALL_MESSAGE && ad.byteLength === 0) {
      this.writeNonce()
      const pt = small().open(this.kb!, iv, message, EMPTY)
      if (pt === null) {
        return decryptError("noise: authentication tag mismatch (the message was altered or the keys differ)")
      }
      this.increment()
      return pt
    }
    // node:crypto signals AEAD failures (and only those, given valid sizes) by throwing from final().
    try {
      const decipher = this.decipher()
      decipher.setAuthTag(message.subarray(ctLen))
      if (ad.byteLength > 0) decipher.setAAD(ad, { plaintextLength: ctLen })
      const pt = decipher.update(message.subarray(0, ctLen))
      const rest = decipher.final()
      this.increment()
      return plain(rest.byteLength === 0 ? pt : Buffer.concat([pt, rest]))
    } catch {
      return decryptError("noise: authentication tag mismatch (the message was altered or the keys differ)")
    }
  }

  decryptPieces(
    pieces: ReadonlyArray<Uint8Array>,
    tag: Uint8Array,
    out: Array<Uint8Array>
  ): SecurityError | undefined {
    if (this.isExhausted()) return exhausted()
    if (tag.byteLength !== TAG_LEN) return decryptError(`noise: a tag has ${TAG_LEN} bytes, not ${tag.byteLength}`)
    const plaintext: Array<Uint8Array> = []
    try {
      const decipher = this.decipher()
      decipher.setAuthTag(tag)
      for (let i = 0; i < pieces.length; i++) {
        const pt = decipher.update(pieces[i]!)
        if (pt.byteLength > 0) plaintext.push(plain(pt))
      }
      const rest = decipher.final()
      if (rest.byteLength > 0) plaintext.push(plain(rest))
    } catch {
      return decryptError("noise: authentication tag mismatch (the message was altered or the keys differ)")
    }
    this.increment()
    for (let i = 0; i < plaintext.length; i++) out.push(plaintext[i]!)
    return undefined
  }
}

/** A CipherState with no key (`InitializeKey(empty)`), or with `key`. */
export const make = (key?: Uint8Array): CipherState => {
  const cs = new CipherStateImpl()
  if (key !== undefined) cs.initializeKey(key)
  return cs
}

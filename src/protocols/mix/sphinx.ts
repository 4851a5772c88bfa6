/**
 * Sphinx packets of LIBP2P-MIX (LIP-99, vacp2p/rfc-index `docs/ift-ts/raw/mix.md`
 * §8): construction (§8.5), per-hop processing (§8.6) and single-use reply
 * blocks. Pure code: no I/O, no clock; randomness comes in as arguments so the
 * test vectors (`spec-tests/vectors/mix/`) pin every byte.
 *
 * Parameters (§8.2, §8.3): κ = 16, r = 5, t = 6, α 32 B, β ((t+1)r+1)κ = 576 B,
 * γ 16 B, header 624 B, packet 4608 B, payload δ 3984 B, message m 3968 B.
 * Primitives: X25519 (node:crypto), H = SHA-256, KDF(label | s) = SHA-256
 * truncated to 16 bytes, AES-128-CTR, HMAC-SHA-256 truncated to 16 bytes.
 *
 * Where the spec and nim-libp2p-mix 0.1.0 (`sphinx.nim`, `serialization.nim`,
 * `crypto.nim`), the only other implementation, disagree:
 * - §8.5.2 3.d / §8.6.1 step 5 write the payload labels as "δ_aes_key" and "δ_iv";
 *   nim uses the ASCII "delta_aes_key" and "delta_iv". We use nim's labels: the
 *   spec's own §8.2 says the labels MUST be agreed, and UTF-8 "δ" would make
 *   every packet undecryptable by nim.
 * - §8.6.1 step 2: the replay tag is H(s); nim stores H(α | s). The tag never
 *   leaves the node, so we follow the spec.
 * - §8.6.2: the exit test needs L, which a hop cannot know. nim fixes L = 3
 *   and checks ((t+1)(r-3)+1)κ zero bytes after the first (t+1)κ; we accept any
 *   L in [3, r] and check the zero delay and the κ bytes that every L leaves
 *   zero right after the (t+1)κ routing block (2^-128 false-positive chance).
 *   Packets we build with L = 3 are exits for nim too; nim cannot exit L = 4, 5.
 * - The SURB identifier (nim): the exit block of a SURB carries a κ-byte id at
 *   offset tκ and an all-zero address (the reply returns to its creator, the
 *   last hop). The spec leaves SURBs to a "Section X.X" that does not exist yet;
 *   we follow nim's layout.
 * - AES-CTR at an offset (the filler, §8.5.2 3.b): nim adds the block count to
 *   the low 64 bits of the IV without carry; node:crypto's CTR carries over
 *   all 128 bits. They differ only when the low half overflows (p ≈ 2^-55).
 * - α with its top bit set is refused (`BadPoint`): X25519 would ignore the bit,
 *   making a flipped header bit invisible to the MAC. The spec is silent.
 *
 * @internal
 */
import { Result } from "effect"
import * as crypto from "node:crypto"
import * as X25519 from "../../security/noise/X25519.ts"
import { type MixError, mixError } from "./errors.ts"

/** κ, the security parameter in bytes (§8.2). */
export const K = 16
/** r, the maximum path length (§8.3.1). */
export const R = 5
/** t: the address + delay block is tκ bytes (§8.3.1). */
export const T = 6
export const ALPHA_SIZE = 32
export const BETA_SIZE = ((T + 1) * R + 1) * K
export const GAMMA_SIZE = K
export const HEADER_SIZE = ALPHA_SIZE + BETA_SIZE + GAMMA_SIZE
export const PACKET_SIZE = 4608
export const PAYLOAD_SIZE = PACKET_SIZE - HEADER_SIZE
/** |m|: the padded application message (§8.5.2 step 1). */
export const MESSAGE_SIZE = PAYLOAD_SIZE - K
export const DELAY_SIZE = 2
/** tκ - 2 (§8.4). */
export const ADDRESS_SIZE = T * K - DELAY_SIZE
/** One routing block: address, delay, γ (§8.6.3 step 1). */
export const BLOCK_SIZE = (T + 1) * K
export const MIN_PATH = 3
export const SURB_ID_SIZE = K
/** A SURB inside a message (nim): first hop address, header, payload key. */
export const SURB_SIZE = ADDRESS_SIZE + HEADER_SIZE + K

const LABEL = {
  aesKey: Buffer.from("aes_key"),
  macKey: Buffer.from("mac_key"),
  iv: Buffer.from("iv"),
  deltaAesKey: Buffer.from("delta_aes_key"),
  deltaIv: Buffer.from("delta_iv")
}

const sha256 = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const h = crypto.createHash("sha256")
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

/** KDF(label | s): SHA-256 truncated to 128 bits (§8.2). */
export const kdf = (label: Uint8Array, s: Uint8Array): Uint8Array => sha256(label, s).subarray(0, K)

/** HMAC-SHA-256 truncated to 128 bits (§8.2). */
export const mac = (key: Uint8Array, data: Uint8Array): Uint8Array =>
  new Uint8Array(crypto.createHmac("sha256", key).update(data).digest().subarray(0, K))

/** AES-128-CTR of `data` with the keystream starting at byte `offset` (a multiple of 16). */
export const aesCtr = (key: Uint8Array, iv: Uint8Array, data: Uint8Array, offset = 0): Uint8Array => {
  let counter = iv
  if (offset > 0) {
    const c = new Uint8Array(iv)
    let carry = offset / 16
    for (let i = 15; i >= 0 && carry > 0; i--) {
      const v = c[i]! + (carry % 256)
      c[i] = v & 0xff
      carry = Math.floor(carry / 256) + (v > 0xff ? 1 : 0)
    }
    counter = c
  }
  const cipher = crypto.createCipheriv("aes-128-ctr", key, counter)
  return new Uint8Array(Buffer.concat([cipher.update(data), cipher.final()]))
}

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => new Uint8Array(Buffer.concat(parts))

const isZero = (b: Uint8Array, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false
  return true
}

const BASE_POINT = (() => {
  const b = new Uint8Array(32)
  b[0] = 9
  return b
})()

// PKCS#8 wrapping of a raw X25519 scalar (RFC 8410), imported as a PEM string: node:crypto probes
// non-string key arguments expensively (see security/noise/X25519.ts), and PEM skips the public-key
// derivation `X25519.fromPrivate` does.
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex")
const importPrivate = (scalar: Uint8Array): crypto.KeyObject =>
  crypto.createPrivateKey(
    `-----BEGIN PRIVATE KEY-----\n${
      Buffer.concat([PKCS8_PREFIX, scalar]).toString("base64")
    }\n-----END PRIVATE KEY-----\n`
  )
/** A node's own key is imported once per Uint8Array instance it is given as. */
const privateKeys = new WeakMap<Uint8Array, crypto.KeyObject>()

const badPoint = (cause: unknown) => mixError("BadPoint", "mix: X25519 failed (a point of small order?)", cause)

const dh = (
  scalar: Uint8Array,
  point: X25519.PublicKey,
  cache: boolean
): Result.Result<Uint8Array, MixError> =>
  Result.try({
    try: () => {
      if (scalar.byteLength !== 32) throw new Error("mix: an X25519 scalar has 32 bytes")
      let key = cache ? privateKeys.get(scalar) : undefined
      if (key === undefined) {
        key = importPrivate(scalar)
        if (cache) privateKeys.set(scalar, key)
      }
      return new Uint8Array(crypto.diffieHellman({ privateKey: key, publicKey: point.key }))
    },
    catch: badPoint
  })

const importPoint = (point: Uint8Array): Result.Result<X25519.PublicKey, MixError> => {
  const pub = X25519.publicFromRaw(point)
  return Result.isFailure(pub) ? Result.fail(badPoint(pub.failure)) : Result.succeed(pub.success)
}

/**
 * X25519(scalar, point) (RFC 7748 §5, the scalar clamped). The Sphinx blinding
 * α_i = α_{i-1}^{b_{i-1}} is this function with b as the scalar, as in nim
 * (bearssl's c25519 `mul`, which clamps every multiplier).
 */
export const x25519 = (scalar: Uint8Array, point: Uint8Array): Result.Result<Uint8Array, MixError> => {
  const pub = importPoint(point)
  return Result.isFailure(pub) ? Result.fail(pub.failure) : dh(scalar, pub.success, false)
}

/** The X25519 public key of a 32-byte private key: g^x. */
export const publicKeyOf = (privateKey: Uint8Array): Result.Result<Uint8Array, MixError> =>
  x25519(privateKey, BASE_POINT)

/** One hop of a path: its X25519 public key y_i and its encoded address addr_i (§8.4). */
export interface Hop {
  readonly publicKey: Uint8Array
  readonly address: Uint8Array
}

/** §8.5.2 3.a: α_0 and the shared secrets s_0 … s_{L-1}. */
export const sharedSecrets = (
  ephemeral: Uint8Array,
  publicKeys: ReadonlyArray<Uint8Array>
): Result.Result<{ readonly alpha0: Uint8Array; readonly secrets: ReadonlyArray<Uint8Array> }, MixError> => {
  const alpha0 = publicKeyOf(ephemeral)
  if (Result.isFailure(alpha0)) return Result.fail(alpha0.failure)
  const scalars: Array<Uint8Array> = [ephemeral]
  const secrets: Array<Uint8Array> = []
  let alpha = alpha0.success
  for (let i = 0; i < publicKeys.length; i++) {
    if (i > 0) {
      const next = x25519(scalars[i]!, alpha)
      if (Result.isFailure(next)) return Result.fail(next.failure)
      alpha = next.success
    }
    let s = publicKeys[i]!
    for (const scalar of scalars) {
      const next = x25519(scalar, s)
      if (Result.isFailure(next)) return Result.fail(next.failure)
      s = next.success
    }
    secrets.push(s)
    scalars.push(sha256(alpha, s))
  }
  return Result.succeed({ alpha0: alpha0.success, secrets })
}

/** §8.5.2 3.b: the filler Φ_{L-1}, (t+1)(L-1)κ bytes. */
const filler = (secrets: ReadonlyArray<Uint8Array>): Uint8Array => {
  let phi: Uint8Array = new Uint8Array(0)
  for (let i = 1; i < secrets.length; i++) {
    const s = secrets[i - 1]!
    phi = aesCtr(
      kdf(LABEL.aesKey, s),
      kdf(LABEL.iv, s),
      concat(phi, new Uint8Array(BLOCK_SIZE)),
      ((T + 1) * (R - i) + T + 2) * K
    )
  }
  return phi
}

/** Big-endian u16 delay in milliseconds (§8.4). */
export const encodeDelay = (ms: number): Uint8Array => {
  const b = new Uint8Array(DELAY_SIZE)
  const v = Math.max(0, Math.min(0xffff, Math.round(ms)))
  b[0] = v >> 8
  b[1] = v & 0xff
  return b
}

export interface HeaderInput {
  /** The path, first hop first; 3 ≤ L ≤ r. */
  readonly path: ReadonlyArray<Hop>
  /** Mean delay (ms) encoded for hops 0 … L-2 (§8.5.2 3.c); the exit's is 0. */
  readonly delays: ReadonlyArray<number>
  /** Δ, ADDRESS_SIZE bytes; all zero for a SURB (the reply comes back to its creator). */
  readonly destination: Uint8Array
  /** The secret exponent x (§8.5.2 3.a), 32 bytes. */
  readonly ephemeral: Uint8Array
  /** A SURB's identifier (nim), κ bytes at offset tκ of the exit block; zero otherwise. */
  readonly surbId?: Uint8Array | undefined
}

export interface Header {
  readonly alpha: Uint8Array
  readonly beta: Uint8Array
  readonly gamma: Uint8Array
  /** s_0 … s_{L-1}: the sender keeps them to read a reply. */
  readonly secrets: ReadonlyArray<Uint8Array>
}

const checkPath = (input: HeaderInput): MixError | undefined => {
  const L = input.path.length
  if (L < MIN_PATH || L > R) return mixError("PathLength", `mix: a path has 3 to ${R} hops, not ${L}`)
  if (input.delays.length !== L) return mixError("PathLength", `mix: ${L} hops need ${L} delays`)
  for (const hop of input.path) {
    if (hop.address.byteLength !== ADDRESS_SIZE || hop.publicKey.byteLength !== 32) {
      return mixError("BadAddress", "mix: a hop needs a 94-byte address and a 32-byte X25519 key")
    }
  }
  if (input.destination.byteLength !== ADDRESS_SIZE) {
    return mixError("BadAddress", `mix: the destination block has ${ADDRESS_SIZE} bytes`)
  }
  return undefined
}

/** §8.5.2 3.a–3.c: α_0, β_0, γ_0 and the shared secrets. */
export const createHeader = (input: HeaderInput): Result.Result<Header, MixError> => {
  const bad = checkPath(input)
  if (bad !== undefined) return Result.fail(bad)
  const L = input.path.length
  const ss = sharedSecrets(input.ephemeral, input.path.map((h) => h.publicKey))
  if (Result.isFailure(ss)) return Result.fail(ss.failure)
  const { alpha0, secrets } = ss.success
  const phi = filler(secrets)
  let beta: Uint8Array = new Uint8Array(0)
  let gamma: Uint8Array = new Uint8Array(0)
  for (let i = L - 1; i >= 0; i--) {
    const s = secrets[i]!
    const key = kdf(LABEL.aesKey, s)
    const iv = kdf(LABEL.iv, s)
    if (i === L - 1) {
      const plain = new Uint8Array(BETA_SIZE - phi.byteLength)
      plain.set(input.destination, 0)
      // delay_{L-1} is two zero bytes; the SURB id (nim) follows at tκ.
      if (input.surbId !== undefined) plain.set(input.surbId.subarray(0, SURB_ID_SIZE), T * K)
      beta = concat(aesCtr(key, iv, plain), phi)
    } else {
      const plain = concat(
        input.path[i + 1]!.address,
        encodeDelay(input.delays[i]!),
        gamma,
        beta.subarray(0, BETA_SIZE - BLOCK_SIZE)
      )
      beta = aesCtr(key, iv, plain)
    }
    gamma = mac(kdf(LABEL.macKey, s), beta)
  }
  return Result.succeed({ alpha: alpha0, beta, gamma, secrets })
}

/** δ one layer: AES-CTR with KDF("delta_aes_key" | s), KDF("delta_iv" | s) (§8.5.2 3.d, nim labels). */
export const payloadLayer = (s: Uint8Array, delta: Uint8Array): Uint8Array =>
  aesCtr(kdf(LABEL.deltaAesKey, s), kdf(LABEL.deltaIv, s), delta)

const serialize = (alpha: Uint8Array, beta: Uint8Array, gamma: Uint8Array, delta: Uint8Array): Uint8Array =>
  concat(alpha, beta, gamma, delta)

export interface PacketInput extends HeaderInput {
  /** m, exactly MESSAGE_SIZE bytes (already padded, §8.5.2 step 1). */
  readonly message: Uint8Array
}

/** §8.5.2: the whole packet α | β | γ | δ (§8.5.2 3.e), and the secrets. */
export const createPacket = (
  input: PacketInput
): Result.Result<{ readonly packet: Uint8Array; readonly secrets: ReadonlyArray<Uint8Array> }, MixError> => {
  if (input.message.byteLength !== MESSAGE_SIZE) {
    return Result.fail(
      mixError("MessageTooLarge", `mix: m must be ${MESSAGE_SIZE} bytes, not ${input.message.byteLength}`)
    )
  }
  const header = createHeader(input)
  if (Result.isFailure(header)) return Result.fail(header.failure)
  const { alpha, beta, gamma, secrets } = header.success
  let delta = concat(new Uint8Array(K), input.message)
  for (let i = secrets.length - 1; i >= 0; i--) delta = payloadLayer(secrets[i]!, delta)
  return Result.succeed({ packet: serialize(alpha, beta, gamma, delta), secrets })
}

/** The outcome of one hop's processing (§8.6.2). */
export type Processed =
  | {
    readonly _tag: "Forward"
    /** The next hop's address block (§8.6.3 step 1). */
    readonly next: Uint8Array
    /** The mean delay in ms the sender chose for this hop. */
    readonly delay: number
    /** The outgoing packet α' | β' | γ' | δ' (§8.6.3 step 4). */
    readonly packet: Uint8Array
  }
  | {
    readonly _tag: "Exit"
    /** Δ (§8.6.4 step 1). */
    readonly destination: Uint8Array
    /** m, the padded application message (§8.6.4 step 2). */
    readonly message: Uint8Array
  }
  | {
    readonly _tag: "Reply"
    /** The SURB identifier (nim): this node made the SURB and is its last hop. */
    readonly surbId: Uint8Array
    /** δ', still under the SURB key and the path's layers. */
    readonly delta: Uint8Array
  }

export interface ProcessOptions {
  /**
   * §8.6.1 step 2: called with H(s) after the shared secret is known; answers
   * whether the tag was seen before (and records it when it was not).
   */
  readonly seen?: ((tag: Uint8Array) => boolean) | undefined
}

/** The shared secret s = α^x and the replay tag H(s) (§8.6.1 steps 1–2). */
export const sessionOf = (
  packet: Uint8Array,
  privateKey: Uint8Array
): Result.Result<
  { readonly s: Uint8Array; readonly tag: Uint8Array; readonly alpha: X25519.PublicKey },
  MixError
> => {
  if (packet.byteLength !== PACKET_SIZE) {
    return Result.fail(mixError("WrongSize", `mix: a Sphinx packet has ${PACKET_SIZE} bytes, not ${packet.byteLength}`))
  }
  // X25519 ignores the top bit of a u-coordinate (RFC 7748 §5), so α with it set would be a second
  // encoding of the same point: a header bit flip that the MAC cannot see. No honest α has it set.
  if ((packet[ALPHA_SIZE - 1]! & 0x80) !== 0) return Result.fail(mixError("BadPoint", "mix: a non-canonical α"))
  const alpha = importPoint(packet.subarray(0, ALPHA_SIZE))
  if (Result.isFailure(alpha)) return Result.fail(alpha.failure)
  const s = dh(privateKey, alpha.success, true)
  if (Result.isFailure(s)) return Result.fail(s.failure)
  return Result.succeed({ s: s.success, tag: sha256(s.success), alpha: alpha.success })
}

/** §8.6: process one packet with this node's X25519 private key. */
export const processPacket = (
  packet: Uint8Array,
  privateKey: Uint8Array,
  options: ProcessOptions = {}
): Result.Result<Processed, MixError> => {
  const session = sessionOf(packet, privateKey)
  if (Result.isFailure(session)) return Result.fail(session.failure)
  const { s, tag } = session.success
  const alpha = packet.subarray(0, ALPHA_SIZE)
  const beta = packet.subarray(ALPHA_SIZE, ALPHA_SIZE + BETA_SIZE)
  const gamma = packet.subarray(ALPHA_SIZE + BETA_SIZE, HEADER_SIZE)
  const delta = packet.subarray(HEADER_SIZE)
  // §8.6.1 puts the replay check (step 2) before the MAC (step 3). We check the MAC first so that a
  // tampered copy of a packet cannot record its tag and get the genuine packet dropped as a replay;
  // nim's `processSphinxPacket` also records the tag only after the MAC verified.
  if (!crypto.timingSafeEqual(mac(kdf(LABEL.macKey, s), beta), gamma)) {
    return Result.fail(mixError("BadMac", "mix: γ does not authenticate β"))
  }
  if (options.seen?.(tag) === true) return Result.fail(mixError("Replay", "mix: this packet was seen before"))
  const B = aesCtr(kdf(LABEL.aesKey, s), kdf(LABEL.iv, s), concat(beta, new Uint8Array(BLOCK_SIZE)))
  const deltaPrime = payloadLayer(s, delta)
  const exitLike = isZero(B, ADDRESS_SIZE, T * K) && isZero(B, BLOCK_SIZE, BLOCK_SIZE + K)
  if (exitLike) {
    // nim: a zero address with a SURB id is a reply to us; a zero address without one is an exit with no
    // destination (nim's loop cover packets), which the Mix layer accepts only for the cover codec.
    if (isZero(B, 0, ADDRESS_SIZE) && !isZero(B, T * K, BLOCK_SIZE)) {
      return Result.succeed({ _tag: "Reply", surbId: B.slice(T * K, T * K + SURB_ID_SIZE), delta: deltaPrime })
    }
    if (!isZero(deltaPrime, 0, K)) return Result.fail(mixError("BadPayload", "mix: δ' does not start with 0_κ"))
    return Result.succeed({ _tag: "Exit", destination: B.slice(0, ADDRESS_SIZE), message: deltaPrime.slice(K) })
  }
  const next = B.slice(0, ADDRESS_SIZE)
  if (isZero(next, 0, ADDRESS_SIZE)) {
    return Result.fail(mixError("BadAddress", "mix: an intermediary block without address"))
  }
  const delay = (B[ADDRESS_SIZE]! << 8) | B[ADDRESS_SIZE + 1]!
  const gammaPrime = B.subarray(T * K, BLOCK_SIZE)
  const betaPrime = B.subarray(BLOCK_SIZE, BLOCK_SIZE + BETA_SIZE)
  const alphaPrime = dh(sha256(alpha, s), session.success.alpha, false)
  if (Result.isFailure(alphaPrime)) return Result.fail(alphaPrime.failure)
  return Result.succeed({
    _tag: "Forward",
    next,
    delay,
    packet: serialize(alphaPrime.success, betaPrime, gammaPrime, deltaPrime)
  })
}

/** A single-use reply block (nim `SURB`): the first hop, the header, the payload key. */
export interface Surb {
  readonly firstHop: Uint8Array
  readonly header: Uint8Array
  readonly key: Uint8Array
}

/** What the SURB's creator keeps to read the reply. */
export interface SurbSecrets {
  readonly key: Uint8Array
  readonly secrets: ReadonlyArray<Uint8Array>
}

/**
 * A SURB whose path ends at its creator (nim `createSURB`): `path`'s last hop
 * is the creator itself, the exit block's address is zero and carries `id`.
 */
export const createSurb = (input: {
  readonly path: ReadonlyArray<Hop>
  readonly delays: ReadonlyArray<number>
  readonly ephemeral: Uint8Array
  readonly id: Uint8Array
  readonly key: Uint8Array
}): Result.Result<{ readonly surb: Surb; readonly secrets: SurbSecrets }, MixError> => {
  const header = createHeader({
    path: input.path,
    delays: input.delays,
    destination: new Uint8Array(ADDRESS_SIZE),
    ephemeral: input.ephemeral,
    surbId: input.id
  })
  if (Result.isFailure(header)) return Result.fail(header.failure)
  const { alpha, beta, gamma, secrets } = header.success
  return Result.succeed({
    surb: { firstHop: input.path[0]!.address, header: concat(alpha, beta, gamma), key: input.key },
    secrets: { key: input.key, secrets }
  })
}

/** nim `useSURB`: the replier's packet, δ = AES-CTR under the SURB key of 0_κ | m. */
export const useSurb = (surb: Surb, message: Uint8Array): Result.Result<Uint8Array, MixError> => {
  if (message.byteLength !== MESSAGE_SIZE) {
    return Result.fail(mixError("MessageTooLarge", `mix: m must be ${MESSAGE_SIZE} bytes`))
  }
  return Result.succeed(concat(surb.header, payloadLayer(surb.key, concat(new Uint8Array(K), message))))
}

/** nim `processReply`: peel the SURB key and every hop's layer off δ', check 0_κ, return m. */
export const openReply = (secrets: SurbSecrets, delta: Uint8Array): Result.Result<Uint8Array, MixError> => {
  let d = payloadLayer(secrets.key, delta)
  for (const s of secrets.secrets) d = payloadLayer(s, d)
  return isZero(d, 0, K)
    ? Result.succeed(d.slice(K))
    : Result.fail(mixError("BadPayload", "mix: the reply does not start with 0_κ"))
}

/** A SURB as it travels inside a message (nim `serializeMessageWithSURBs`). */
export const encodeSurb = (surb: Surb): Uint8Array => concat(surb.firstHop, surb.header, surb.key)

export const decodeSurb = (bytes: Uint8Array): Surb => ({
  firstHop: bytes.slice(0, ADDRESS_SIZE),
  header: bytes.slice(ADDRESS_SIZE, ADDRESS_SIZE + HEADER_SIZE),
  key: bytes.slice(ADDRESS_SIZE + HEADER_SIZE, SURB_SIZE)
})

/**
 * The libp2p TLS certificate (https://github.com/libp2p/specs/blob/master/tls/tls.md
 * §Peer Authentication, §libp2p Public Key Extension): a self-signed X.509 v3
 * certificate (RFC 5280 §4.1) for a key of its own, carrying the host's
 * identity key in the extension `1.3.6.1.4.1.53594.1.1`:
 *
 * ```asn1
 * SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }
 * ```
 *
 * with `publicKey` the peer-ids spec's `PublicKey` protobuf and `signature`
 * the identity key's signature over `"libp2p-tls-handshake:" ‖` the DER
 * `SubjectPublicKeyInfo` of the certificate key.
 *
 * {@link generate} makes ours: a fresh ECDSA P-256 key (what go-libp2p and
 * js-libp2p use), signed with ecdsa-with-SHA256, a random positive 127-bit
 * serial, the subject/issuer `serialNumber=<random>` (as go-libp2p), valid from
 * one hour before `now` for 100 years (go-libp2p's and js-libp2p's window), and
 * the libp2p extension as its only extension, marked critical (as go-libp2p and
 * js-libp2p do; js-libp2p only looks at the first extension).
 *
 * {@link verify} checks a received certificate as the spec requires, in this order:
 * 1. strict DER, X.509 v3, no `issuerUniqueID`/`subjectUniqueID` (§Peer
 *    Authentication: "Endpoints MAY abort … if either is present": we do), the
 *    inner and outer signature algorithms equal (RFC 5280 §4.1.1.2);
 * 2. the signature algorithm with the certificate key is a TLS 1.3
 *    `SignatureScheme` (RFC 8446 §4.2.3) — ECDSA P-256/SHA-256, P-384/SHA-384,
 *    P-521/SHA-512, Ed25519, Ed448, RSA PKCS#1 v1.5 and RSA-PSS with SHA-256/384/512
 *    (PSS: MGF1 with the same hash, salt = digest length) — as go-libp2p and
 *    rust-libp2p require ("choose a signature algorithm that the peer
 *    supports"); anything else (e.g. P-384 with SHA-256) is `UnsupportedSignatureScheme`;
 * 3. the self-signature verifies with the certificate's own key (`BadSelfSignature`);
 * 4. `notBefore ≤ now ≤ notAfter` (`NotYetValid`, `Expired`); `now` is a
 *    parameter, so callers take it from Effect's `Clock`;
 * 5. no critical extension other than the libp2p one (`UnknownCriticalExtension`;
 *    unknown non-critical ones are ignored), no extension twice, the libp2p
 *    extension present (`MissingExtension`; critical or not, the spec says it
 *    "MAY be marked critical") and decodable (`BadExtension`);
 * 6. the identity key's signature verifies (`InvalidSignature`);
 * 7. the peer id derived from the identity key is the expected one, when one is
 *    expected (`PeerIdMismatch`).
 *
 * Parsing is our own (module {@link Der}), because the checks above need the
 * algorithm identifiers, the extension list with critical flags and the exact
 * TBS bytes, which `crypto.X509Certificate` does not expose; signatures are
 * verified with node:crypto.
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"
import * as crypto from "node:crypto"
import * as Keys from "../../core/Keys.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Der from "./Der.ts"

/** The libp2p Public Key Extension's OID (§libp2p Public Key Extension). */
export const EXTENSION_OID = "1.3.6.1.4.1.53594.1.1"

/** The prefix of the data the identity key signs. */
export const SIGNATURE_PREFIX = "libp2p-tls-handshake:"

/** Our certificates are valid from this long before their creation (go-libp2p: one hour)… */
export const BACKDATE_MS = 60 * 60 * 1000
/** …for this long (go-libp2p, js-libp2p: 100 years). */
export const LIFETIME_MS = 100 * 365 * 24 * 60 * 60 * 1000

const PREFIX_BYTES = new TextEncoder().encode(SIGNATURE_PREFIX)

/**
 * Why a certificate was refused (see the module comment for the order of checks).
 */
export const CertificateErrorReason = Schema.Literals([
  "Malformed",
  "UniqueIdentifier",
  "UnsupportedSignatureScheme",
  "BadSelfSignature",
  "NotYetValid",
  "Expired",
  "UnknownCriticalExtension",
  "MissingExtension",
  "BadExtension",
  "InvalidSignature",
  "PeerIdMismatch",
  "GenerateFailed"
])
export type CertificateErrorReason = typeof CertificateErrorReason.Type

export class CertificateError extends Schema.TaggedError<CertificateError>()("CertificateError", {
  reason: CertificateErrorReason,
  message: Schema.String
}) {}

const fail = (reason: CertificateErrorReason, message: string): Result.Result<never, CertificateError> =>
  Result.fail(new CertificateError({ reason, message }))

const malformed = <A>(r: Result.Result<A, Der.DerError>): Result.Result<A, CertificateError> =>
  Result.mapError(r, (e) => new CertificateError({ reason: "Malformed", message: `${e.reason}: ${e.message}` }))

// ---------------------------------------------------------------------------
// OIDs

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  secp384r1: "1.3.132.0.34",
  secp521r1: "1.3.132.0.35",
  ecdsaSha256: "1.2.840.10045.4.3.2",
  ecdsaSha384: "1.2.840.10045.4.3.3",
  ecdsaSha512: "1.2.840.10045.4.3.4",
  ed25519: "1.3.101.112",
  ed448: "1.3.101.113",
  rsaEncryption: "1.2.840.113549.1.1.1",
  rsaPss: "1.2.840.113549.1.1.10",
  mgf1: "1.2.840.113549.1.1.8",
  sha256WithRsa: "1.2.840.113549.1.1.11",
  sha384WithRsa: "1.2.840.113549.1.1.12",
  sha512WithRsa: "1.2.840.113549.1.1.13",
  sha256: "2.16.840.1.101.3.4.2.1",
  sha384: "2.16.840.1.101.3.4.2.2",
  sha512: "2.16.840.1.101.3.4.2.3",
  serialNumber: "2.5.4.5"
} as const

type Hash = "sha256" | "sha384" | "sha512"
const HASH_LEN: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 }
const hashOfOid = (oid: string): Hash | undefined =>
  oid === OID.sha256 ? "sha256" : oid === OID.sha384 ? "sha384" : oid === OID.sha512 ? "sha512" : undefined

// ---------------------------------------------------------------------------
// parsing

export interface Extension {
  readonly oid: string
  readonly critical: boolean
  /** The `extnValue` OCTET STRING's contents. */
  readonly value: Uint8Array
}

/** An AlgorithmIdentifier: its OID and its parameters' element (absent when omitted). */
export interface AlgorithmIdentifier {
  readonly oid: string
  readonly parameters: Der.Element | undefined
  readonly raw: Uint8Array
}

export interface Certificate {
  /** The whole DER certificate. */
  readonly raw: Uint8Array
  /** The DER `TBSCertificate` (what the self-signature covers). */
  readonly tbs: Uint8Array
  readonly serialNumber: bigint
  readonly signatureAlgorithm: AlgorithmIdentifier
  readonly signature: Uint8Array
  /** Milliseconds since the epoch. */
  readonly notBefore: number
  readonly notAfter: number
  /** The DER `SubjectPublicKeyInfo` of the certificate key, exactly as in the certificate. */
  readonly subjectPublicKeyInfo: Uint8Array
  readonly publicKeyAlgorithm: AlgorithmIdentifier
  readonly hasUniqueIdentifiers: boolean
  readonly extensions: ReadonlyArray<Extension>
}

const algorithmIdentifier = (
  el: Der.Element | undefined,
  what: string
): Result.Result<AlgorithmIdentifier, Der.DerError> =>
  Result.flatMap(Der.sequenceOf(el, what), (items) => {
    if (items.length < 1 || items.length > 2) {
      return Result.fail(new Der.DerError({ reason: "Unexpected", message: `${what}: ${items.length} fields` }))
    }
    return Result.map(Der.oid(items[0], `${what}.algorithm`), (oid) => ({ oid, parameters: items[1], raw: el!.raw }))
  })

const parseExtensions = (el: Der.Element): Result.Result<Array<Extension>, Der.DerError> =>
  Result.gen(function*() {
    const [list] = yield* Der.children(el) // [3] EXPLICIT Extensions
    const items = yield* Der.sequenceOf(list, "extensions")
    const out: Array<Extension> = []
    for (const item of items) {
      const fields = yield* Der.sequenceOf(item, "extension")
      const oid = yield* Der.oid(fields[0], "extension.extnID")
      let i = 1
      let critical = false
      if (fields[i]?.tag === Der.Tag.BOOLEAN) critical = yield* Der.boolean(fields[i++], "extension.critical")
      const value = yield* Der.octetString(fields[i++], "extension.extnValue")
      if (i !== fields.length) {
        return yield* Result.fail(new Der.DerError({ reason: "Unexpected", message: "extension: extra fields" }))
      }
      out.push({ oid, critical, value })
    }
    if (out.length === 0) {
      return yield* Result.fail(new Der.DerError({ reason: "Unexpected", message: "extensions: an empty list" }))
    }
    return out
  })

/** Parse a DER X.509 certificate (structure only; nothing is verified). */
export const parse = (der: Uint8Array): Result.Result<Certificate, CertificateError> =>
  malformed(Result.gen(function*() {
    const cert = yield* Der.decode(der)
    const [tbsEl, sigAlgEl, sigEl, ...extra] = yield* Der.sequenceOf(cert, "Certificate")
    if (extra.length > 0) {
      return yield* Result.fail(new Der.DerError({ reason: "Unexpected", message: "Certificate: extra fields" }))
    }
    const signatureAlgorithm = yield* algorithmIdentifier(sigAlgEl, "signatureAlgorithm")
    const signature = yield* Der.bitStringBytes(sigEl, "signatureValue")
    const tbs = yield* Der.sequenceOf(tbsEl, "TBSCertificate")
    let i = 0
    // version [0] EXPLICIT: must be v3 (2), which extensions need
    if (tbs[i]?.tag !== Der.contextTag(0)) {
      return yield* Result.fail(
        new Der.DerError({ reason: "Unexpected", message: "a v1 certificate (no version field)" })
      )
    }
    const [versionEl] = yield* Der.children(tbs[i++]!)
    const version = yield* Der.integer(versionEl, "version")
    if (version !== 2n) {
      return yield* Result.fail(new Der.DerError({ reason: "Unexpected", message: `version ${version + 1n}, not v3` }))
    }
    const serialNumber = yield* Der.integer(tbs[i++], "serialNumber")
    const innerAlg = yield* algorithmIdentifier(tbs[i++], "signature")
    if (Buffer.compare(innerAlg.raw, signatureAlgorithm.raw) !== 0) {
      return yield* Result.fail(
        new Der.DerError({ reason: "Unexpected", message: "the TBS signature algorithm differs from the outer one" })
      )
    }
    yield* Der.sequenceOf(tbs[i++], "issuer")
    const validity = yield* Der.sequenceOf(tbs[i++], "validity")
    if (validity.length !== 2) {
      return yield* Result.fail(new Der.DerError({ reason: "Unexpected", message: "validity: not two times" }))
    }
    const notBefore = yield* Der.time(validity[0], "notBefore")
    const notAfter = yield* Der.time(validity[1], "notAfter")
    yield* Der.sequenceOf(tbs[i++], "subject")
    const spkiEl = tbs[i++]
    const spki = yield* Der.sequenceOf(spkiEl, "subjectPublicKeyInfo")
    if (spki.length !== 2) {
      return yield* Result.fail(
        new Der.DerError({ reason: "Unexpected", message: "subjectPublicKeyInfo: not two fields" })
      )
    }
    const publicKeyAlgorithm = yield* algorithmIdentifier(spki[0], "subjectPublicKeyInfo.algorithm")
    yield* Der.bitStringBytes(spki[1], "subjectPublicKey")
    let hasUniqueIdentifiers = false
    if (tbs[i]?.tag === Der.contextTag(1, false) || tbs[i]?.tag === Der.contextTag(1)) {
      hasUniqueIdentifiers = true
      i++
    }
    if (tbs[i]?.tag === Der.contextTag(2, false) || tbs[i]?.tag === Der.contextTag(2)) {
      hasUniqueIdentifiers = true
      i++
    }
    let extensions: Array<Extension> = []
    if (tbs[i]?.tag === Der.contextTag(3)) extensions = yield* parseExtensions(tbs[i++]!)
    if (i !== tbs.length) {
      return yield* Result.fail(
        new Der.DerError({ reason: "Unexpected", message: "TBSCertificate: unexpected fields" })
      )
    }
    return {
      raw: der,
      tbs: tbsEl!.raw,
      serialNumber,
      signatureAlgorithm,
      signature,
      notBefore,
      notAfter,
      subjectPublicKeyInfo: spkiEl!.raw,
      publicKeyAlgorithm,
      hasUniqueIdentifiers,
      extensions
    } satisfies Certificate
  }))

// ---------------------------------------------------------------------------
// signature schemes (RFC 8446 §4.2.3)

export type SignatureScheme =
  | "ecdsa_secp256r1_sha256"
  | "ecdsa_secp384r1_sha384"
  | "ecdsa_secp521r1_sha512"
  | "ed25519"
  | "ed448"
  | "rsa_pkcs1_sha256"
  | "rsa_pkcs1_sha384"
  | "rsa_pkcs1_sha512"
  | "rsa_pss_rsae_sha256"
  | "rsa_pss_rsae_sha384"
  | "rsa_pss_rsae_sha512"
  | "rsa_pss_pss_sha256"
  | "rsa_pss_pss_sha384"
  | "rsa_pss_pss_sha512"

const unsupported = (message: string) => fail("UnsupportedSignatureScheme", message)

const noParameters = (alg: AlgorithmIdentifier) => alg.parameters === undefined

/** Absent or NULL parameters (RFC 4055 §5 says NULL for the PKCS#1 ones; both occur). */
const nullOrNoParameters = (alg: AlgorithmIdentifier) =>
  alg.parameters === undefined || Result.isSuccess(Der.nullValue(alg.parameters, "parameters"))

/** A hash AlgorithmIdentifier (parameters absent or NULL). */
const hashAlgorithm = (el: Der.Element | undefined): Hash | undefined => {
  const alg = algorithmIdentifier(el, "hash")
  if (Result.isFailure(alg) || !nullOrNoParameters(alg.success)) return undefined
  return hashOfOid(alg.success.oid)
}

/**
 * RSASSA-PSS-params (RFC 4055 §3.1) as TLS 1.3 allows them: the hash
 * SHA-256/384/512, MGF1 with the same hash, the salt as long as the digest,
 * trailer field 1. Fields at their defaults (SHA-1) never qualify.
 */
const pssHash = (params: Der.Element | undefined): Hash | undefined => {
  const r = Result.gen(function*() {
    const fields = yield* Der.sequenceOf(params, "RSASSA-PSS-params")
    let hash: Hash | undefined
    let mgfHash: Hash | undefined
    let salt: bigint | undefined
    let trailer = 1n
    let last = -1
    for (const f of fields) {
      const n = f.tag ^ Der.contextTag(0)
      if (n < 0 || n > 3 || n <= last) return undefined
      last = n
      const [inner, ...extra] = yield* Der.children(f)
      if (extra.length > 0) return undefined
      if (n === 0) hash = hashAlgorithm(inner)
      if (n === 1) {
        const mgf = yield* algorithmIdentifier(inner, "maskGenAlgorithm")
        if (mgf.oid !== OID.mgf1) return undefined
        mgfHash = hashAlgorithm(mgf.parameters)
      }
      if (n === 2) salt = yield* Der.integer(inner, "saltLength")
      if (n === 3) trailer = yield* Der.integer(inner, "trailerField")
    }
    if (hash === undefined || mgfHash !== hash || trailer !== 1n || salt !== BigInt(HASH_LEN[hash])) return undefined
    return hash
  })
  return Result.isSuccess(r) ? r.success : undefined
}

/**
 * The TLS 1.3 signature scheme of the certificate's self-signature, from its
 * signature algorithm and its key's algorithm; `UnsupportedSignatureScheme`
 * for any combination TLS 1.3 does not define.
 */
export const signatureScheme = (cert: Certificate): Result.Result<SignatureScheme, CertificateError> => {
  const sig = cert.signatureAlgorithm
  const key = cert.publicKeyAlgorithm
  switch (sig.oid) {
    case OID.ecdsaSha256:
    case OID.ecdsaSha384:
    case OID.ecdsaSha512: {
      if (!noParameters(sig)) return unsupported("ECDSA signature algorithm with parameters")
      if (key.oid !== OID.ecPublicKey) return unsupported(`an ECDSA signature by a ${key.oid} key`)
      const curve = key.parameters === undefined ? undefined : Der.oid(key.parameters, "namedCurve")
      const named = curve !== undefined && Result.isSuccess(curve) ? curve.success : "?"
      const scheme: SignatureScheme | undefined = sig.oid === OID.ecdsaSha256 && named === OID.prime256v1
        ? "ecdsa_secp256r1_sha256"
        : sig.oid === OID.ecdsaSha384 && named === OID.secp384r1
        ? "ecdsa_secp384r1_sha384"
        : sig.oid === OID.ecdsaSha512 && named === OID.secp521r1
        ? "ecdsa_secp521r1_sha512"
        : undefined
      return scheme !== undefined
        ? Result.succeed(scheme)
        : unsupported(`ECDSA ${sig.oid} with curve ${named} is not a TLS 1.3 signature scheme`)
    }
    case OID.ed25519:
    case OID.ed448: {
      if (!noParameters(sig) || key.oid !== sig.oid || !noParameters(key)) {
        return unsupported(`EdDSA signature ${sig.oid} by a ${key.oid} key`)
      }
      return Result.succeed(sig.oid === OID.ed25519 ? "ed25519" : "ed448")
    }
    case OID.sha256WithRsa:
    case OID.sha384WithRsa:
    case OID.sha512WithRsa: {
      if (!nullOrNoParameters(sig) || key.oid !== OID.rsaEncryption) {
        return unsupported(`RSA PKCS#1 signature by a ${key.oid} key`)
      }
      return Result.succeed(
        sig.oid === OID.sha256WithRsa
          ? "rsa_pkcs1_sha256"
          : sig.oid === OID.sha384WithRsa
          ? "rsa_pkcs1_sha384"
          : "rsa_pkcs1_sha512"
      )
    }
    case OID.rsaPss: {
      const hash = pssHash(sig.parameters)
      if (hash === undefined) return unsupported("RSASSA-PSS parameters outside TLS 1.3's rsa_pss_* schemes")
      if (key.oid === OID.rsaEncryption) return Result.succeed(`rsa_pss_rsae_${hash}` as const)
      if (key.oid === OID.rsaPss) return Result.succeed(`rsa_pss_pss_${hash}` as const)
      return unsupported(`RSASSA-PSS signature by a ${key.oid} key`)
    }
    default:
      return unsupported(`signature algorithm ${sig.oid}`)
  }
}

const hashOfScheme = (scheme: SignatureScheme): Hash | null =>
  scheme === "ed25519" || scheme === "ed448" ? null : (scheme.slice(-6) as Hash)

/** Whether `signature` is the certificate key's signature over `data` under `scheme`. */
const verifyWithKey = (
  spki: Uint8Array,
  scheme: SignatureScheme,
  data: Uint8Array,
  signature: Uint8Array
): boolean => {
  try {
    const key = crypto.createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" })
    const hash = hashOfScheme(scheme)
    if (scheme.startsWith("rsa_pss")) {
      return crypto.verify(hash, data, {
        key,
        padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
        saltLength: HASH_LEN[hash!]
      }, signature)
    }
    if (scheme.startsWith("rsa_pkcs1")) {
      return crypto.verify(hash, data, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, signature)
    }
    if (scheme.startsWith("ecdsa")) return crypto.verify(hash, data, { key, dsaEncoding: "der" }, signature)
    return crypto.verify(null, data, key, signature)
  } catch {
    return false
  }
}

// ---------------------------------------------------------------------------
// the libp2p extension

export interface SignedKey {
  /** The `PublicKey` protobuf bytes. */
  readonly publicKey: Uint8Array
  readonly signature: Uint8Array
}

/** Decode the extension value `SignedKey` (strict DER, nothing after it). */
export const decodeSignedKey = (value: Uint8Array): Result.Result<SignedKey, Der.DerError> =>
  Result.gen(function*() {
    const fields = yield* Der.sequenceOf(yield* Der.decode(value), "SignedKey")
    if (fields.length !== 2) {
      return yield* Result.fail(
        new Der.DerError({ reason: "Unexpected", message: `SignedKey: ${fields.length} fields` })
      )
    }
    return {
      publicKey: yield* Der.octetString(fields[0], "SignedKey.publicKey"),
      signature: yield* Der.octetString(fields[1], "SignedKey.signature")
    }
  })

export const encodeSignedKey = (key: SignedKey): Uint8Array =>
  Der.encodeSequence([Der.encodeOctetString(key.publicKey), Der.encodeOctetString(key.signature)])

/** The bytes the identity key signs: `"libp2p-tls-handshake:" ‖ spki`. */
export const signedData = (subjectPublicKeyInfo: Uint8Array): Uint8Array => {
  const out = new Uint8Array(PREFIX_BYTES.byteLength + subjectPublicKeyInfo.byteLength)
  out.set(PREFIX_BYTES, 0)
  out.set(subjectPublicKeyInfo, PREFIX_BYTES.byteLength)
  return out
}

/** The libp2p extension for a certificate key, signed by `identityKey`. */
export const libp2pExtension = (
  identityKey: Keys.PrivateKey,
  subjectPublicKeyInfo: Uint8Array,
  critical = true
): Result.Result<Extension, CertificateError> =>
  Result.mapBoth(identityKey.sign(signedData(subjectPublicKeyInfo)), {
    onFailure: (e) =>
      new CertificateError({ reason: "GenerateFailed", message: `signing the certificate key: ${e.message}` }),
    onSuccess: (signature) => ({
      oid: EXTENSION_OID,
      critical,
      value: encodeSignedKey({ publicKey: Keys.publicKeyToProtobuf(identityKey.publicKey), signature })
    })
  })

// ---------------------------------------------------------------------------
// verification

export interface VerifyOptions {
  /** The time to check the validity period against (ms since the epoch; take it from `Clock`). */
  readonly now: number
  /** The peer the certificate must authenticate, when known. */
  readonly remotePeer?: PeerId.PeerId | undefined
}

export interface Verified {
  readonly certificate: Certificate
  readonly scheme: SignatureScheme
  readonly publicKey: Keys.PublicKey
  readonly peerId: PeerId.PeerId
}

/** Verify a received certificate (see the module comment). */
export const verify = (der: Uint8Array, options: VerifyOptions): Result.Result<Verified, CertificateError> =>
  Result.gen(function*() {
    const cert = yield* parse(der)
    if (cert.hasUniqueIdentifiers) {
      return yield* fail("UniqueIdentifier", "the certificate carries issuerUniqueID/subjectUniqueID")
    }
    const scheme = yield* signatureScheme(cert)
    if (!verifyWithKey(cert.subjectPublicKeyInfo, scheme, cert.tbs, cert.signature)) {
      return yield* fail("BadSelfSignature", `the ${scheme} self-signature does not verify`)
    }
    if (options.now < cert.notBefore) {
      return yield* fail("NotYetValid", `the certificate is valid from ${new Date(cert.notBefore).toISOString()}`)
    }
    if (options.now > cert.notAfter) {
      return yield* fail("Expired", `the certificate expired at ${new Date(cert.notAfter).toISOString()}`)
    }
    const seen = new Set<string>()
    let libp2p: Extension | undefined
    for (const ext of cert.extensions) {
      if (seen.has(ext.oid)) return yield* fail("Malformed", `extension ${ext.oid} appears twice`)
      seen.add(ext.oid)
      if (ext.oid === EXTENSION_OID) libp2p = ext
      else if (ext.critical) return yield* fail("UnknownCriticalExtension", `critical extension ${ext.oid}`)
    }
    if (libp2p === undefined) {
      return yield* fail("MissingExtension", `no libp2p public key extension (${EXTENSION_OID})`)
    }
    const signed = decodeSignedKey(libp2p.value)
    if (Result.isFailure(signed)) return yield* fail("BadExtension", `SignedKey: ${signed.failure.message}`)
    const publicKey = Keys.publicKeyFromProtobuf(signed.success.publicKey)
    if (Result.isFailure(publicKey)) {
      return yield* fail("BadExtension", `SignedKey.publicKey: ${publicKey.failure.message}`)
    }
    if (!publicKey.success.verify(signedData(cert.subjectPublicKeyInfo), signed.success.signature)) {
      return yield* fail("InvalidSignature", "the identity key's signature over the certificate key does not verify")
    }
    const peerId = PeerId.fromPublicKey(publicKey.success)
    if (options.remotePeer !== undefined && !PeerId.equals(peerId, options.remotePeer)) {
      return yield* fail(
        "PeerIdMismatch",
        `the certificate authenticates ${peerId.toString()}, not ${options.remotePeer.toString()}`
      )
    }
    return { certificate: cert, scheme, publicKey: publicKey.success, peerId }
  })

// ---------------------------------------------------------------------------
// generation

export interface BuildOptions {
  /** The certificate key pair (EC P-256/384/521, Ed25519, Ed448 or RSA). */
  readonly privateKey: crypto.KeyObject
  readonly publicKey: crypto.KeyObject
  readonly notBefore: number
  readonly notAfter: number
  readonly extensions: ReadonlyArray<Extension>
  /** The signature hash (default: the curve's for EC, SHA-256 for RSA; ignored for EdDSA). */
  readonly hash?: Hash
  /** The serial number's magnitude (default 16 random bytes, made positive). */
  readonly serial?: Uint8Array
  /** Extra `TBSCertificate` fields to append after the subject key (tests: unique identifiers). */
  readonly tbsExtra?: ReadonlyArray<Uint8Array>
}

const algorithm = (oid: string, params?: Uint8Array) =>
  Der.encodeSequence(params === undefined ? [Der.encodeOid(oid)] : [Der.encodeOid(oid), params])

/** The DER SubjectPublicKeyInfo of a node:crypto public key. */
export const spkiOf = (publicKey: crypto.KeyObject): Uint8Array =>
  Uint8Array.from(publicKey.export({ type: "spki", format: "der" }))

const randomSerial = (): Uint8Array => {
  const s = Uint8Array.from(crypto.randomBytes(16))
  s[0] = (s[0]! & 0x7f) | 0x01
  return s
}

/**
 * Build and sign a self-signed certificate for `privateKey` (low level: arbitrary
 * extensions and validity, for {@link generate} and for tests).
 */
export const build = (options: BuildOptions): Result.Result<Uint8Array, CertificateError> => {
  try {
    const keyType = options.privateKey.asymmetricKeyType
    let sigAlg: Uint8Array
    let hash: Hash | null
    let signOptions: crypto.SignKeyObjectInput = { key: options.privateKey }
    if (keyType === "ec") {
      const curve = options.privateKey.asymmetricKeyDetails?.namedCurve
      hash = options.hash ?? (curve === "secp384r1" ? "sha384" : curve === "secp521r1" ? "sha512" : "sha256")
      sigAlg = algorithm(hash === "sha256" ? OID.ecdsaSha256 : hash === "sha384" ? OID.ecdsaSha384 : OID.ecdsaSha512)
      signOptions = { key: options.privateKey, dsaEncoding: "der" }
    } else if (keyType === "ed25519" || keyType === "ed448") {
      hash = null
      sigAlg = algorithm(keyType === "ed25519" ? OID.ed25519 : OID.ed448)
    } else if (keyType === "rsa") {
      hash = options.hash ?? "sha256"
      sigAlg = algorithm(
        hash === "sha256" ? OID.sha256WithRsa : hash === "sha384" ? OID.sha384WithRsa : OID.sha512WithRsa,
        Der.encodeNull()
      )
      signOptions = { key: options.privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }
    } else {
      return fail("GenerateFailed", `unsupported certificate key type ${keyType}`)
    }
    const name = Der.encodeSequence([
      Der.encodeSet([Der.encodeSequence([
        Der.encodeOid(OID.serialNumber),
        Der.encodePrintableString(BigInt("0x" + Buffer.from(crypto.randomBytes(8)).toString("hex")).toString())
      ])])
    ])
    const extensions = options.extensions.map((e) =>
      Der.encodeSequence([
        Der.encodeOid(e.oid),
        ...(e.critical ? [Der.encodeBoolean(true)] : []),
        Der.encodeOctetString(e.value)
      ])
    )
    const tbs = Der.encodeSequence([
      Der.encodeExplicit(0, Der.encodeInteger(2)),
      Der.encodeUnsigned(options.serial ?? randomSerial()),
      sigAlg,
      name,
      Der.encodeSequence([Der.encodeTime(options.notBefore), Der.encodeTime(options.notAfter)]),
      name,
      spkiOf(options.publicKey),
      ...(options.tbsExtra ?? []),
      ...(extensions.length > 0 ? [Der.encodeExplicit(3, Der.encodeSequence(extensions))] : [])
    ])
    const signature = crypto.sign(hash, tbs, signOptions)
    return Result.succeed(Der.encodeSequence([tbs, sigAlg, Der.encodeBitString(signature)]))
  } catch (e) {
    return fail("GenerateFailed", e instanceof Error ? e.message : String(e))
  }
}

/** Our certificate with its key, in the forms node:tls takes. */
export interface LocalCertificate {
  readonly der: Uint8Array
  /** The certificate in PEM. */
  readonly pem: string
  /** The certificate key (PKCS#8 PEM). */
  readonly keyPem: string
}

/** PEM armour for DER bytes. */
export const toPem = (der: Uint8Array, label = "CERTIFICATE"): string => {
  const b64 = Buffer.from(der).toString("base64")
  const lines: Array<string> = []
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64))
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

/**
 * Our certificate for `identityKey`: a fresh ECDSA P-256 key, valid from
 * `now - 1 h` for 100 years, with the critical libp2p extension.
 */
export const generate = (
  identityKey: Keys.PrivateKey,
  now: number
): Result.Result<LocalCertificate, CertificateError> =>
  Result.gen(function*() {
    const pair = yield* Result.try({
      try: () => crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" }),
      catch: (e) => new CertificateError({ reason: "GenerateFailed", message: `P-256 key: ${String(e)}` })
    })
    const extension = yield* libp2pExtension(identityKey, spkiOf(pair.publicKey))
    const der = yield* build({
      privateKey: pair.privateKey,
      publicKey: pair.publicKey,
      notBefore: now - BACKDATE_MS,
      notAfter: now + LIFETIME_MS,
      extensions: [extension]
    })
    return {
      der,
      pem: toPem(der),
      keyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString()
    }
  })

/**
 * The mDNS messages of libp2p peer discovery (specs `discovery/mdns.md`
 * §Peer Discovery), built and read with `dns-packet` (RFC 1035 wire format).
 * Pure code: no sockets, no Effects; every input is bounded.
 *
 * - §Request: a query with the question `<service-name> PTR`.
 * - §Response: a response (QR = 1) whose answer is
 *   `<service-name> PTR <peer-name>.<service-name>` and whose additional
 *   records are `<peer-name>.<service-name> TXT "dnsaddr=<multiaddr>/p2p/<id>"`.
 *   Reading, TXT records are taken from both the answers (js-libp2p puts them
 *   there) and the additional records.
 *
 * Bad input: a packet that does not decode is a `Malformed` result, never a
 * throw; at most {@link MAX_TXT_STRINGS} TXT strings are read per packet and
 * at most {@link MAX_ADDRS} addresses kept; a string longer than 255 bytes,
 * one that is not `dnsaddr=…`, one whose multiaddr does not parse or has no
 * `/p2p/<id>` is skipped. The peer is the one named by the first valid
 * `dnsaddr`; addresses naming another peer id (a spoofed or mixed-up record)
 * are dropped, as js-libp2p does.
 *
 * @internal
 */
import * as DnsPacket from "dns-packet"
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"

export const SERVICE_NAME = "_p2p._udp.local"
/** A TXT character-string is at most 255 bytes (RFC 1035 §3.3.14, RFC 6763 §6.1). */
export const MAX_TXT_STRING = 255
/** TXT strings read per packet. */
export const MAX_TXT_STRINGS = 128
/** Addresses kept per discovered peer. */
export const MAX_ADDRS = 32
/** Records (answers + additionals) looked at per packet. */
export const MAX_RECORDS = 256
/** The TTL of our records, in seconds (js-libp2p and go-libp2p use 120). */
export const RECORD_TTL = 120

const PREFIX = "dnsaddr="

/** A random peer name (§Definitions: lower-case alphanumeric, at least 32 characters, under 64). */
export const randomPeerName = (random: (n: number) => number, length = 32): string => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
  let s = ""
  for (let i = 0; i < Math.min(Math.max(length, 32), 63); i++) s += alphabet[random(alphabet.length)]
  return s
}

/** §Request: `<service> PTR`. */
export const query = (service = SERVICE_NAME): Uint8Array =>
  DnsPacket.encode({ type: "query", id: 0, flags: 0, questions: [{ type: "PTR", name: service, class: "IN" }] })

/**
 * §Response: the PTR answer and one TXT additional record per address
 * (`dnsaddr=<addr>`, each `addr` ending in `/p2p/<id>`); an address whose
 * string would exceed 255 bytes is left out.
 */
export const response = (peerName: string, addrs: ReadonlyArray<string>, service = SERVICE_NAME): Uint8Array => {
  const instance = `${peerName}.${service}`
  const txt = addrs.map((a) => PREFIX + a).filter((s) => Buffer.byteLength(s) <= MAX_TXT_STRING)
  return DnsPacket.encode({
    type: "response",
    id: 0,
    flags: DnsPacket.AUTHORITATIVE_ANSWER,
    answers: [{ type: "PTR", name: service, class: "IN", ttl: RECORD_TTL, data: instance }],
    additionals: txt.map((data) => ({ type: "TXT", name: instance, class: "IN", ttl: RECORD_TTL, data: [data] }))
  })
}

export interface FoundPeer {
  /** The `<peer-name>.<service>` the PTR answer points to. */
  readonly instance: string
  readonly peerId: PeerId.PeerId
  /** The addresses without `/p2p/<id>`. */
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

export type Message =
  /** A query that asks for `service` PTR (or not: `asksForPeers` false). */
  | { readonly _tag: "Query"; readonly asksForPeers: boolean }
  /** A response; `peer` when it announces a libp2p peer. */
  | { readonly _tag: "Response"; readonly peer: FoundPeer | undefined }

export type ParseError = { readonly _tag: "Malformed"; readonly message: string }

const strings = (data: unknown): ReadonlyArray<Uint8Array> =>
  Array.isArray(data)
    ? data.filter((d): d is Uint8Array => d instanceof Uint8Array)
    : data instanceof Uint8Array
    ? [data]
    : []

const lower = (s: string) => s.toLowerCase()

/** Read one received datagram (see the module doc for the bounds). */
export const parse = (bytes: Uint8Array, service = SERVICE_NAME): Result.Result<Message, ParseError> => {
  let packet: DnsPacket.DecodedPacket
  try {
    packet = DnsPacket.decode(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (e) {
    return Result.fail({ _tag: "Malformed", message: e instanceof Error ? e.message : String(e) })
  }
  if (packet.type === "query") {
    const asks = (packet.questions ?? []).slice(0, MAX_RECORDS).some((q) =>
      lower(q.name) === service && (q.type === "PTR" || (q.type as string) === "ANY")
    )
    return Result.succeed({ _tag: "Query", asksForPeers: asks })
  }
  const answers = (packet.answers ?? []).slice(0, MAX_RECORDS)
  const ptr = answers.find((a) => a.type === "PTR" && lower(a.name) === service)
  const ptrData = ptr !== undefined && "data" in ptr ? ptr.data : undefined
  if (typeof ptrData !== "string") return Result.succeed({ _tag: "Response", peer: undefined })
  const instance = lower(ptrData)
  const records = [...answers, ...(packet.additionals ?? []).slice(0, MAX_RECORDS)]
  let read = 0
  let peer: PeerId.PeerId | undefined
  let peerText: string | undefined
  const addrs: Array<Multiaddr.Multiaddr> = []
  for (const r of records) {
    if (r.type !== "TXT" || lower(r.name) !== instance) continue
    for (const s of strings("data" in r ? r.data : undefined)) {
      if (++read > MAX_TXT_STRINGS || addrs.length >= MAX_ADDRS) break
      if (s.byteLength > MAX_TXT_STRING) continue
      const text = Buffer.from(s.buffer, s.byteOffset, s.byteLength).toString("utf8")
      if (!text.startsWith(PREFIX)) continue
      const ma = Multiaddr.fromString(text.slice(PREFIX.length))
      if (ma._tag === "Failure") continue
      const id = Multiaddr.getPeerId(ma.success)
      if (id === undefined) continue
      if (peerText === undefined) {
        const parsed = PeerId.fromString(id)
        if (parsed._tag === "Failure") continue
        peer = parsed.success
        peerText = id
      } else if (id !== peerText) continue
      const bare = Multiaddr.decapsulateCode(ma.success, Multiaddr.codes.p2p)
      if (!Multiaddr.isEmpty(bare) && !addrs.some((a) => Multiaddr.equals(a, bare))) addrs.push(bare)
    }
  }
  return Result.succeed({
    _tag: "Response",
    peer: peer === undefined || addrs.length === 0 ? undefined : { instance, peerId: peer, addrs }
  })
}

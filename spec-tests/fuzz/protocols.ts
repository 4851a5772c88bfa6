/**
 * Fuzz targets of the protocol rooms (issue 23 item 4): circuit relay v2 (hop
 * and stop messages, reservation vouchers), AutoNAT v2 and v1, DCUtR, the
 * daemon's control requests, mDNS datagrams, rendezvous, and the Sphinx
 * packet a Mix node processes. Each `run` calls the decoder our code runs on
 * bytes from the network and then the pure interpretation that follows it
 * (addresses parsed, peer ids checked, records opened), so a throw anywhere
 * on that path is a crash. Where the handling lives in a service, the target
 * runs the pure functions the service calls (see each target's comment).
 *
 * Keys are fixed (seeded), so the seed corpus written from `seeds` stays
 * valid for the keys `run` uses: a registration signed by the peer the
 * rendezvous point hears from, Sphinx packets for the Mix node's key.
 */
import * as DnsPacket from "dns-packet"
import { Effect, Result, Scope } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as PeerRecord from "../../src/core/PeerRecord.ts"
import * as Daemon from "../../src/daemon/Daemon.ts"
import * as DaemonMessages from "../../src/daemon/messages.ts"
import type * as Datastore from "../../src/datastore/Datastore.ts"
import * as MemoryDatastore from "../../src/datastore/Memory.ts"
import * as MdnsPacket from "../../src/discovery/mdns/packet.ts"
import * as AutoNatMessages from "../../src/protocols/autonat/messages.ts"
import * as Dcutr from "../../src/protocols/dcutr/Dcutr.ts"
import * as DcutrMessages from "../../src/protocols/dcutr/messages.ts"
import * as MixAddress from "../../src/protocols/mix/address.ts"
import * as MixMessage from "../../src/protocols/mix/message.ts"
import * as Sphinx from "../../src/protocols/mix/sphinx.ts"
import * as Circuit from "../../src/protocols/relay/circuit.ts"
import * as RelayMessages from "../../src/protocols/relay/messages.ts"
import * as Voucher from "../../src/protocols/relay/Voucher.ts"
import * as RdvMessages from "../../src/protocols/rendezvous/messages.ts"
import * as RdvRecords from "../../src/protocols/rendezvous/records.ts"
import * as Rendezvous from "../../src/protocols/rendezvous/Rendezvous.ts"
import * as RdvServer from "../../src/protocols/rendezvous/server.ts"
import * as RdvStore from "../../src/protocols/rendezvous/store.ts"
import { bytesOf, fixedEd25519, label, ok, someAddrs, type Target } from "./support.ts"

/** The relay, the reserving peer and the rendezvous registrant: fixed identities. */
const relayKey = fixedEd25519(11)
const relayId = PeerId.fromPrivateKey(relayKey)
const selfId = PeerId.fromPrivateKey(fixedEd25519(12))
const selfP2p = Circuit.p2p(selfId)
const registrantKey = fixedEd25519(13)
const registrantId = PeerId.fromPrivateKey(registrantKey)

const publicAddrs = ["/ip4/8.8.8.8/tcp/4001", "/ip6/2001:db8::1/tcp/4001/p2p/" + relayId.toString()].map((a) =>
  ok(Multiaddr.fromString(a))
)

/** Which of a few known values `v` is (the label stays small: unknown numbers share one). */
const known = (v: number | undefined, names: Record<string, number>): string =>
  v === undefined ? "none" : Object.entries(names).find(([, n]) => n === v)?.[0] ?? "other"

/**
 * What `RelayClient` does with a RESERVE answer after decoding it: the
 * status, the voucher opened, the addresses parsed and turned into circuit
 * addresses (relayed ones and those naming another peer dropped), the limit.
 */
const reservation = (hop: RelayMessages.HopMessage): string => {
  const r = hop.reservation
  if (r === undefined) return "no-reservation"
  const voucher = r.voucher !== undefined && r.voucher.length > 0 ? label(Voucher.open(r.voucher)) : "no-voucher"
  const relayText = PeerId.toString(relayId)
  const named = RelayMessages.addrsOf(r.addrs).filter((a) => {
    const id = Multiaddr.getPeerId(a)
    return !Circuit.isRelayed(a) && (id === undefined || id === relayText)
  })
  for (const a of named) Multiaddr.encapsulate(Circuit.circuitAddr(a, relayId), selfP2p)
  return `${voucher}|addrs ${named.length > 0}`
}

const voucherSeed = (expiration: bigint) => ok(Voucher.seal(relayKey, { relay: relayId, peer: selfId, expiration }))

// ---------------------------------------------------------------------------
// Mix: a node with a fixed X25519 key, the packets it may receive

const mixKey = (n: number) => new Uint8Array(32).fill(n)
const NODE = mixKey(7)
const OTHERS = [mixKey(8), mixKey(9)] as const
const hopOf = (priv: Uint8Array, n: number): Sphinx.Hop => {
  const peer = PeerId.fromPrivateKey(fixedEd25519(20 + n))
  return {
    publicKey: ok(Sphinx.publicKeyOf(priv)),
    address: ok(MixAddress.encode(peer, ok(Multiaddr.fromString(`/ip4/10.0.0.${n}/tcp/${4000 + n}`))))
  }
}
const nodeHop = hopOf(NODE, 1)
const otherHops = OTHERS.map((k, i) => hopOf(k, i + 2))
/** A SURB that comes back to this node (its last hop), made with fixed secrets so the target can open replies. */
const surb = ok(Sphinx.createSurb({
  path: [otherHops[0]!, otherHops[1]!, nodeHop],
  delays: [1, 1, 0],
  ephemeral: mixKey(30),
  id: new Uint8Array(Sphinx.SURB_ID_SIZE).fill(31),
  key: new Uint8Array(Sphinx.K).fill(32)
}))

/** `packet` after the hops of `keys` processed it (what reaches the next one). */
const forwardedBy = (packet: Uint8Array, keys: ReadonlyArray<Uint8Array>): Uint8Array =>
  keys.reduce((p, k) => {
    const r = ok(Sphinx.processPacket(p, k))
    if (r._tag !== "Forward") throw new Error(`seed: expected Forward, got ${r._tag}`)
    return r.packet
  }, packet)

/** What `Mix.handlePacket` does with a packet after its size and spam checks (no replay table: every run is fresh). */
const mixProcess = (packet: Uint8Array): string => {
  const processed = Sphinx.processPacket(packet, NODE)
  if (Result.isFailure(processed)) return label(processed)
  const p = processed.success
  switch (p._tag) {
    case "Forward":
      return `Forward|${label(MixAddress.decode(p.next))}`
    case "Exit": {
      const forward = MixMessage.decodeForward(p.message)
      if (Result.isFailure(forward)) return `Exit|${label(forward)}`
      const firstHops = forward.success.surbs.map((s) => label(MixAddress.decode(s.firstHop)))
      const local = p.destination.every((b) => b === 0)
      return `Exit|ok|${local ? "local" : label(MixAddress.decode(p.destination))}|surbs ${[...new Set(firstHops)]}`
    }
    case "Reply": {
      const m = Sphinx.openReply(surb.secrets, p.delta)
      return `Reply|${Result.isFailure(m) ? label(m) : label(MixMessage.decodeReply(m.success))}`
    }
  }
}

// ---------------------------------------------------------------------------
// mDNS: responses shaped as other implementations send them

const instance = `${"b".repeat(32)}.${MdnsPacket.SERVICE_NAME}`
const mdnsPacket = (answers: Array<DnsPacket.Answer>, additionals: Array<DnsPacket.Answer>): Uint8Array =>
  DnsPacket.encode({
    type: "response",
    id: 0,
    flags: DnsPacket.AUTHORITATIVE_ANSWER,
    answers: answers.map((a) => ({ ...a, class: "IN", ttl: 120 }) as DnsPacket.Answer),
    additionals: additionals.map((a) => ({ ...a, class: "IN", ttl: 120 }) as DnsPacket.Answer)
  })

// ---------------------------------------------------------------------------
// Rendezvous: a point on an in-memory store, requests from a fixed registrant

const rdvLimits: RdvServer.ServerLimits = {
  defaultTtl: 7200,
  minTtl: 7200,
  maxTtl: 72 * 3600,
  maxNamespaceLength: 255,
  maxDiscoverLimit: 1000
}
const rdvStore = Effect.runSync(Effect.gen(function*() {
  const ds = yield* Scope.provide(MemoryDatastore.make, yield* Scope.make())
  // a fixed cookie secret (the store's key, `store.ts` SECRET_KEY): the seeds' cookies verify in every run
  yield* ds.put("/rendezvous/secret" as Datastore.Key, new Uint8Array(32).fill(14))
  // small bounds: the store is shared by every run of the target
  return yield* RdvStore.make(ds, { maxPerPeer: 16, maxPerNamespace: 16, maxTotal: 64 })
}))
const rdvHandlers: RdvServer.Handlers = { store: rdvStore, limits: rdvLimits, now: Effect.succeed(1_800_000_000_000) }

const registration = (format: RdvRecords.RecordFormat): RdvMessages.Register => ({
  ns: "fuzz",
  signedPeerRecord: ok(
    RdvRecords.seal(registrantKey, PeerRecord.make(registrantId, 1n, someAddrs.slice(0, 2)), format)
  ),
  ttl: 7200n
})

export const protocolTargets: ReadonlyArray<Target> = [
  {
    name: "relay-hop",
    run: (b) => {
      const m = RelayMessages.HopMessage.decode(b)
      if (Result.isFailure(m)) return label(m)
      const hop = m.success
      RelayMessages.peerIdOf(hop.peer)
      Circuit.fromWire(hop.limit)
      const status = RelayMessages.statusName(hop.status)
      return `ok|${known(hop.type, RelayMessages.HopType)}|${status === "UNKNOWN" ? status : "known"}|${
        reservation(hop)
      }`
    },
    seeds: Effect.sync(() => [
      RelayMessages.HopMessage.encode({ type: RelayMessages.HopType.RESERVE }),
      RelayMessages.HopMessage.encode({ type: RelayMessages.HopType.CONNECT, peer: RelayMessages.peerOf(selfId) }),
      RelayMessages.HopMessage.encode({
        type: RelayMessages.HopType.STATUS,
        status: RelayMessages.Status.OK,
        reservation: {
          expire: 1_800_000_000n,
          addrs: publicAddrs.map(Multiaddr.toBytes),
          voucher: voucherSeed(1_800_000_000n)
        },
        limit: { duration: 120, data: 131072n }
      }),
      RelayMessages.HopMessage.encode({
        type: RelayMessages.HopType.STATUS,
        status: RelayMessages.Status.RESERVATION_REFUSED
      })
    ])
  },
  {
    name: "relay-stop",
    run: (b) => {
      const m = RelayMessages.StopMessage.decode(b)
      if (Result.isFailure(m)) return label(m)
      const stop = m.success
      const initiator = RelayMessages.peerIdOf(stop.peer)
      Circuit.fromWire(stop.limit)
      const status = RelayMessages.statusName(stop.status)
      return `ok|${known(stop.type, RelayMessages.StopType)}|${status === "UNKNOWN" ? status : "known"}|peer ${
        initiator !== undefined
      }`
    },
    seeds: Effect.sync(() => [
      RelayMessages.StopMessage.encode({
        type: RelayMessages.StopType.CONNECT,
        peer: { id: PeerId.toBytes(relayId), addrs: publicAddrs.map(Multiaddr.toBytes) },
        limit: { duration: 120, data: 131072n }
      }),
      RelayMessages.StopMessage.encode({ type: RelayMessages.StopType.STATUS, status: RelayMessages.Status.OK })
    ])
  },
  {
    name: "relay-voucher",
    run: (b) => `${label(Voucher.open(b))}|${label(Voucher.decodePayload(b))}`,
    seeds: Effect.sync(() => [
      voucherSeed(1_800_000_000n),
      Voucher.encodePayload({ relay: relayId, peer: selfId, expiration: 1n }),
      // signed by another key than the relay it names; an envelope of another domain and payload type
      ok(Voucher.seal(fixedEd25519(12), { relay: relayId, peer: selfId, expiration: 1n })),
      ok(PeerRecord.seal(relayKey, PeerRecord.make(relayId, 1n, publicAddrs)))
    ])
  },
  {
    // the server reads a Message (a DialRequest, then DialDataResponses); the client reads Messages and a
    // DialBack; the dial back's answer is a DialBackResponse: every decoder of the room on the same bytes
    name: "autonat-v2",
    run: (b) => {
      const m = AutoNatMessages.Message.decode(b)
      let kind = ""
      if (Result.isSuccess(m)) {
        kind = AutoNatMessages.kindOf(m.success)
        const addrs = AutoNatMessages.parseAddrs(m.success.dialRequest?.addrs ?? [])
        for (const a of addrs) if (a !== undefined) Multiaddr.ipBytes(a)
      }
      return `${label(m)}:${kind}|${label(AutoNatMessages.DialBack.decode(b))}|${
        label(AutoNatMessages.DialBackResponse.decode(b))
      }`
    },
    seeds: Effect.sync(() => [
      AutoNatMessages.Message.encode({
        dialRequest: { addrs: [...publicAddrs, ...someAddrs].map(Multiaddr.toBytes), nonce: 0x0123456789abcdefn }
      }),
      AutoNatMessages.Message.encode({ dialDataRequest: { addrIdx: 1, numBytes: 30_000n } }),
      AutoNatMessages.Message.encode({ dialDataResponse: { data: new Uint8Array(64).fill(7) } }),
      AutoNatMessages.Message.encode({
        dialResponse: {
          status: AutoNatMessages.ResponseStatus.OK,
          addrIdx: 0,
          dialStatus: AutoNatMessages.DialStatus.OK
        }
      }),
      AutoNatMessages.DialBack.encode({ nonce: 42n }),
      AutoNatMessages.DialBackResponse.encode({ status: 0 })
    ])
  },
  {
    // what `serveV1` does with a DIAL before dialing: the peer id checked, the addresses parsed, their IPs
    name: "autonat-v1",
    run: (b) => {
      const m = AutoNatMessages.V1Message.decode(b)
      if (Result.isFailure(m)) return label(m)
      const peer = m.success.dial?.peer
      const id = peer?.id === undefined ? "no-id" : label(PeerId.fromBytes(peer.id))
      for (const a of AutoNatMessages.parseAddrs(peer?.addrs ?? [])) if (a !== undefined) Multiaddr.ipBytes(a)
      const addr = m.success.dialResponse?.addr
      return `ok|${known(m.success.type, AutoNatMessages.V1Type)}|${id}|${
        addr === undefined ? "no-addr" : label(Multiaddr.fromBytes(addr))
      }`
    },
    seeds: Effect.sync(() => [
      AutoNatMessages.V1Message.encode({
        type: AutoNatMessages.V1Type.DIAL,
        dial: { peer: { id: PeerId.toBytes(selfId), addrs: publicAddrs.map(Multiaddr.toBytes) } }
      }),
      AutoNatMessages.V1Message.encode({
        type: AutoNatMessages.V1Type.DIAL_RESPONSE,
        dialResponse: {
          status: AutoNatMessages.V1Status.OK,
          statusText: "OK",
          addr: Multiaddr.toBytes(publicAddrs[0]!)
        }
      })
    ])
  },
  {
    // the decode, then `usableAddrs` (what both sides dial: public /ip4|ip6/…/tcp, not relayed)
    name: "dcutr",
    run: (b) => {
      const m = DcutrMessages.decode(b)
      if (Result.isFailure(m)) return label(m)
      const usable = Dcutr.usableAddrs(m.success.addrs, { max: Dcutr.MAX_DIALS })
      return `ok|${m.success.type}|usable ${usable.length > 0}`
    },
    seeds: Effect.sync(() => [
      DcutrMessages.encode({ type: DcutrMessages.CONNECT, addrs: [...publicAddrs, ...someAddrs] }),
      DcutrMessages.encode({ type: DcutrMessages.SYNC, addrs: [] })
    ])
  },
  {
    // a control request as `Daemon.serve` reads it, and the parameters each request type parses before it
    // reaches a service (peer ids, addresses with the circuit's target, CIDs); the services are not run.
    // The daemon decodes no Response, StreamInfo or PSMessage (it writes them; clients read them).
    name: "daemon-request",
    run: (b) => {
      const m = DaemonMessages.RequestCodec.decode(b)
      if (Result.isFailure(m)) return label(m)
      const req = m.success
      const peer = (bytes: Uint8Array | undefined) => PeerId.fromBytes(bytes ?? new Uint8Array(0))
      const parsed: Array<string> = []
      if (req.connect !== undefined) {
        const p = peer(req.connect.peer)
        parsed.push(label(p))
        if (Result.isSuccess(p)) {
          for (const a of req.connect.addrs) {
            parsed.push(label(Result.flatMap(Multiaddr.fromBytes(a), (ma) => Daemon.circuitTo(ma, p.success))))
          }
        }
      }
      if (req.streamOpen !== undefined) parsed.push(label(peer(req.streamOpen.peer)))
      for (const h of [req.streamHandler, req.removeStreamHandler]) {
        if (h !== undefined) parsed.push(label(Multiaddr.fromBytes(h.addr)))
      }
      if (req.dht !== undefined) {
        if (req.dht.peer !== undefined) parsed.push(label(peer(req.dht.peer)))
        if (req.dht.cid !== undefined) parsed.push(Result.isSuccess(Daemon.checkCid(req.dht.cid)) ? "cid" : "bad-cid")
      }
      if (req.connManager !== undefined) {
        parsed.push(label(peer(req.connManager.peer)))
        Number(req.connManager.weight ?? 0n)
      }
      if (req.disconnect !== undefined) parsed.push(label(peer(req.disconnect.peer)))
      if (req.peerStore?.id !== undefined) parsed.push(label(peer(req.peerStore.id)))
      return `ok|${known(req.type, DaemonMessages.RequestType)}|${[...new Set(parsed)].sort()}`
    },
    seeds: Effect.sync(() => {
      const id = PeerId.toBytes(selfId)
      const circuit = ok(Multiaddr.fromString(`/ip4/8.8.8.8/tcp/4001/p2p/${relayId.toString()}/p2p-circuit`))
      const cid = new Uint8Array([0x01, 0x55, 0x12, 0x20, ...new Uint8Array(32).fill(9)])
      const T = DaemonMessages.RequestType
      return [
        { type: T.IDENTIFY },
        {
          type: T.CONNECT,
          connect: { peer: id, addrs: [...publicAddrs, circuit].map(Multiaddr.toBytes), timeout: 10n }
        },
        { type: T.STREAM_OPEN, streamOpen: { peer: id, proto: ["/echo/1.0.0"], timeout: 10n } },
        { type: T.STREAM_HANDLER, streamHandler: { addr: Multiaddr.toBytes(someAddrs[5]!), proto: ["/echo/1.0.0"] } },
        { type: T.DHT, dht: { type: DaemonMessages.DhtType.FIND_PROVIDERS, cid, count: 5 } },
        { type: T.DHT, dht: { type: DaemonMessages.DhtType.FIND_PEER, peer: id, timeout: 3n } },
        {
          type: T.CONNMANAGER,
          connManager: { type: DaemonMessages.ConnManagerType.TAG_PEER, peer: id, tag: "t", weight: 5n }
        },
        { type: T.DISCONNECT, disconnect: { peer: id } },
        { type: T.PUBSUB, pubsub: { type: DaemonMessages.PubsubType.PUBLISH, topic: "t", data: bytesOf("d") } },
        { type: T.PEERSTORE, peerStore: { type: DaemonMessages.PeerstoreType.GET_PEER_INFO, id, protos: [] } },
        {
          type: T.REMOVE_STREAM_HANDLER,
          removeStreamHandler: { addr: Multiaddr.toBytes(someAddrs[5]!), proto: ["/a"] }
        }
      ].map((r) => DaemonMessages.RequestCodec.encode(r as DaemonMessages.Request))
    })
  },
  {
    // `Packet.parse`: what the mDNS discovery does with every datagram it receives (dns-packet's decode
    // inside, then the PTR answer, the TXT records, the dnsaddr multiaddrs and the peer id they name),
    // then the loopback filter `Mdns.ts` applies before announcing
    name: "mdns",
    run: (b) => {
      const m = MdnsPacket.parse(b)
      if (Result.isFailure(m)) return label(m)
      const msg = m.success
      if (msg._tag === "Query") return `Query|${msg.asksForPeers}`
      // `Mdns.handle` drops another host's loopback addresses before announcing the peer
      const addrs = msg.peer?.addrs.filter((a) => !Multiaddr.isLoopback(a)) ?? []
      return `Response|${msg.peer !== undefined}|${addrs.length > 0}`
    },
    seeds: Effect.sync(() => {
      const p2p = `/p2p/${selfId.toString()}`
      return [
        MdnsPacket.query(),
        MdnsPacket.response(
          "a".repeat(32),
          [...publicAddrs.slice(0, 1), ...someAddrs.slice(0, 2)].map((a) => `${a}${p2p}`)
        ),
        // js-libp2p's shape (TXT among the answers) and go-libp2p's (zeroconf: SRV, TXT, A and AAAA additionals)
        mdnsPacket(
          [
            { type: "PTR", name: MdnsPacket.SERVICE_NAME, data: instance },
            { type: "TXT", name: instance, data: [`dnsaddr=/ip4/10.0.0.1/tcp/4001${p2p}`, "other=x"] }
          ],
          []
        ),
        mdnsPacket(
          [{ type: "PTR", name: MdnsPacket.SERVICE_NAME, data: instance }],
          [
            { type: "SRV", name: instance, data: { port: 4001, target: "host.local" } },
            { type: "TXT", name: instance, data: `dnsaddr=/ip6/::1/udp/4001/quic-v1${p2p}` },
            { type: "A", name: "host.local", data: "10.0.0.1" },
            { type: "AAAA", name: "host.local", data: "fe80::1" }
          ]
        )
      ]
    })
  },
  {
    // the point's handling of a request from the registrant (`server.ts` `handle` on an in-memory store:
    // the namespace, the signed peer record opened in either format, the TTL, the cookie) and the client's
    // reading of a DISCOVER_RESPONSE (`registrationsOf`: each record opened)
    name: "rendezvous",
    maxLength: RdvMessages.MAX_REQUEST_SIZE,
    run: (b) => {
      const m = RdvMessages.RendezvousMessage.decode(b)
      if (Result.isFailure(m)) return label(m)
      const msg = m.success
      if (msg.type === RdvMessages.MessageType.DISCOVER_RESPONSE) {
        return `client|${Rendezvous.registrationsOf(msg).length > 0}`
      }
      if (msg.type === RdvMessages.MessageType.REGISTER_RESPONSE) return "client|register-response"
      const answer = Effect.runSync(Effect.result(RdvServer.handle(rdvHandlers, msg, registrantId)))
      if (Result.isFailure(answer)) return `server|${label(answer)}`
      const res = answer.success
      const status = res?.registerResponse?.status ?? res?.discoverResponse?.status
      return `server|ok|${status === undefined ? "none" : RdvMessages.statusName(status)}`
    },
    seeds: Effect.sync(() => {
      const T = RdvMessages.MessageType
      const encode = RdvMessages.RendezvousMessage.encode
      return [
        encode({ type: T.REGISTER, register: registration("peer-record") }),
        encode({ type: T.REGISTER, register: registration("routing-state") }),
        encode({ type: T.DISCOVER, discover: { ns: "fuzz", limit: 10n, cookie: rdvStore.cookie("fuzz", 0) } }),
        encode({ type: T.UNREGISTER, unregister: { ns: "fuzz" } }),
        encode({
          type: T.DISCOVER_RESPONSE,
          discoverResponse: {
            registrations: [registration("peer-record"), registration("routing-state")],
            cookie: rdvStore.cookie("fuzz", 2),
            status: RdvMessages.ResponseStatus.OK
          }
        }),
        encode({ type: T.REGISTER_RESPONSE, registerResponse: { status: 0, statusText: "OK", ttl: 7200n } })
      ]
    })
  },
  {
    // `Sphinx.processPacket` with the node's key, then what `Mix.handlePacket` decodes from the outcome: the
    // next hop's address (Forward), the message and its SURBs' first hops (Exit), the reply opened with the
    // SURB's secrets (Reply). The input is the packet without spam proof; the replay table is left out.
    // An input of another size is refused as it is (WrongSize) and then processed cut or zero-padded to a
    // packet's size: the engine's insertions and deletions then shift the unauthenticated δ, whose layers
    // still peel, so the exit's message decoder sees far more shapes than bit flips alone would give it.
    name: "mix-sphinx",
    maxLength: Sphinx.PACKET_SIZE + 64,
    run: (b) => {
      if (b.byteLength === Sphinx.PACKET_SIZE) return mixProcess(b)
      const fitted = new Uint8Array(Sphinx.PACKET_SIZE)
      fitted.set(b.subarray(0, Sphinx.PACKET_SIZE))
      return `${label(Sphinx.processPacket(b, NODE))}|fitted ${mixProcess(fitted)}`
    },
    seeds: Effect.sync(() => {
      const destination = ok(MixAddress.encode(PeerId.fromPrivateKey(fixedEd25519(40))))
      const message = ok(MixMessage.encodeForward("/fuzz/1.0.0", [surb.surb], bytesOf("hello mix")))
      const packet = (path: ReadonlyArray<Sphinx.Hop>, dest: Uint8Array, ephemeral: number) =>
        ok(
          Sphinx.createPacket({
            path,
            delays: path.map(() => 5),
            destination: dest,
            ephemeral: mixKey(ephemeral),
            message
          })
        )
          .packet
      return [
        // this node first: a Forward
        packet([nodeHop, ...otherHops], destination, 33),
        // this node last: an Exit to a destination, and one delivered here (zero destination)
        forwardedBy(packet([...otherHops, nodeHop], destination, 34), OTHERS),
        forwardedBy(packet([...otherHops, nodeHop], new Uint8Array(Sphinx.ADDRESS_SIZE), 35), OTHERS),
        // a reply through the SURB this node made: a Reply
        forwardedBy(ok(Sphinx.useSurb(surb.surb, ok(MixMessage.encodeReply(bytesOf("a reply"))))), OTHERS)
      ]
    })
  }
]

/**
 * A raw mDNS peer for the LAN tests (run inside a network namespace): the
 * attacks the issue lists, sent to 224.0.0.251:5353 from a plain dgram socket —
 * random garbage, truncated packets, an oversized response (> 9,000 bytes, for
 * a peer `oversized`), a response with hundreds of TXT records (peer `many`), a
 * response whose TXT records name two peers (`spoofFirst` then `spoofOther`) —
 * and a `_p2p._udp.local PTR` query every 100 ms; every response naming a
 * peer is printed as {"event":"answer","peerId","addrs","afterAttacks","at":<ms>,"family":"IPv4"|"IPv6"};
 * the same query goes to [ff02::fb]:5353 on eth0 every second (answers there: family IPv6). The attacks start
 * at the first answer (so the node under test is known to be listening).
 *
 * argv[2]: JSON { truncated, oversized, many, spoofFirst, spoofOther } (peer id strings).
 * Prints {"event":"sent"} after the attacks. Runs until killed.
 */
import * as DnsPacket from "dns-packet"
import * as Dgram from "node:dgram"

const ids = JSON.parse(process.argv[2] ?? "{}")
const GROUP = "224.0.0.251"
const PORT = 5353
const SERVICE = "_p2p._udp.local"
const print = (o) => process.stdout.write(JSON.stringify(o) + "\n")

const response = (instance, strings) =>
  DnsPacket.encode({
    type: "response",
    answers: [{ type: "PTR", name: SERVICE, ttl: 120, data: `${instance}.${SERVICE}` }],
    additionals: Array.from({ length: Math.ceil(strings.length / 4) }, (_, i) => ({
      type: "TXT",
      name: `${instance}.${SERVICE}`,
      ttl: 120,
      data: strings.slice(i * 4, i * 4 + 4)
    }))
  })

const socket = Dgram.createSocket({ type: "udp4", reuseAddr: true })
const socket6 = Dgram.createSocket({ type: "udp6", reuseAddr: true, ipv6Only: true })
const onMessage = (family) => (msg) => {
  let packet
  try {
    packet = DnsPacket.decode(msg)
  } catch {
    return
  }
  if (packet.type !== "response") return
  const strings = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
    .filter((r) => r.type === "TXT")
    .flatMap((r) => r.data.map(String))
    .filter((s) => s.startsWith("dnsaddr="))
    .map((s) => s.slice("dnsaddr=".length))
  if (strings.length === 0) return
  const peerId = strings[0].split("/p2p/").at(-1)
  print({ event: "answer", peerId, addrs: strings, afterAttacks: attacked, at: Date.now(), family })
  if (family === "IPv6") return
  if (!attacking) {
    attacking = true
    attacks().then(() => {
      attacked = true
      print({ event: "sent" })
    }, (e) => {
      print({ event: "error", error: String(e) })
      process.exit(1)
    })
  }
}
socket.on("message", onMessage("IPv4"))
socket6.on("message", onMessage("IPv6"))
let attacking = false
let attacked = false
const send = (bytes) => new Promise((resolve) => socket.send(bytes, PORT, GROUP, () => resolve()))
const pause = () => new Promise((resolve) => setTimeout(resolve, 200))
/** The floods first, then a pause before each crafted packet: a receiver's bounded buffer may drop a burst. */
const attacks = async () => {
  for (let i = 0; i < 200; i++) {
    await send(Buffer.from(Array.from({ length: 1 + ((i * 37) % 1400) }, () => Math.floor(Math.random() * 256))))
  }
  const valid = response("truncated0123456789012345678901234", [`dnsaddr=/ip4/10.77.0.99/tcp/1/p2p/${ids.truncated}`])
  for (let cut = 1; cut < valid.length; cut += 3) await send(valid.subarray(0, cut))
  await pause()
  const big = Array.from(
    { length: 400 },
    (_, i) => `dnsaddr=/ip4/10.77.${i >> 8}.${i & 255}/tcp/4001/p2p/${ids.oversized}`
  )
  const oversized = response("oversized01234567890123456789012345", big)
  if (oversized.length <= 9000) throw new Error(`oversized packet is only ${oversized.length} bytes`)
  await send(oversized)
  await pause()
  const many = Array.from({ length: 80 }, (_, i) => `dnsaddr=/ip4/10.78.0.${i}/tcp/1/p2p/${ids.many}`)
  const manyPacket = response("many0123456789012345678901234567890", many)
  if (manyPacket.length > 9000) throw new Error(`many-TXT packet is ${manyPacket.length} bytes`)
  await send(manyPacket)
  await pause()
  await send(response("spoof0123456789012345678901234567890", [
    `dnsaddr=/ip4/10.79.0.1/tcp/1/p2p/${ids.spoofFirst}`,
    `dnsaddr=/ip4/10.79.0.2/tcp/1/p2p/${ids.spoofOther}`
  ]))
}
socket.bind(PORT, () => {
  socket.addMembership(GROUP)
  socket.setMulticastTTL(255)
  const query = DnsPacket.encode({ type: "query", questions: [{ type: "PTR", name: SERVICE }] })
  const tick = () => send(query)
  tick()
  setInterval(tick, 100)
})
// IPv6: a query on [ff02::fb]:5353 every second (eth0; a failure here only means no IPv6 answers)
socket6.bind(PORT, "::", () => {
  try {
    socket6.addMembership("ff02::fb", "::%eth0")
  } catch (e) {
    print({ event: "ipv6", error: String(e) })
    return
  }
  const query = DnsPacket.encode({ type: "query", questions: [{ type: "PTR", name: SERVICE }] })
  const tick = () => socket6.send(query, PORT, "ff02::fb%eth0", () => {})
  tick()
  setInterval(tick, 1000)
})

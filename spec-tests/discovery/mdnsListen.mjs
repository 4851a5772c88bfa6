/**
 * A passive mDNS listener for the LAN tests (run inside a network namespace):
 * joins 224.0.0.251:5353 and never sends. Prints {"event":"listening"} once
 * bound, then {"event":"query","from"} for each `_p2p._udp.local PTR` query and
 * {"event":"answer","peerId","from"} for each response naming a peer. Runs until killed.
 */
import * as DnsPacket from "dns-packet"
import * as Dgram from "node:dgram"

const SERVICE = "_p2p._udp.local"
const print = (o) => process.stdout.write(JSON.stringify(o) + "\n")
const socket = Dgram.createSocket({ type: "udp4", reuseAddr: true })
socket.on("message", (msg, rinfo) => {
  let packet
  try {
    packet = DnsPacket.decode(msg)
  } catch {
    return
  }
  if (packet.type === "query") {
    if ((packet.questions ?? []).some((q) => q.name === SERVICE)) print({ event: "query", from: rinfo.address })
    return
  }
  const txt = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
    .filter((r) => r.type === "TXT")
    .flatMap((r) => r.data.map(String))
    .find((s) => s.startsWith("dnsaddr="))
  if (txt !== undefined) print({ event: "answer", peerId: txt.split("/p2p/").at(-1), from: rinfo.address })
})
socket.bind(5353, () => {
  socket.addMembership("224.0.0.251")
  print({ event: "listening" })
})

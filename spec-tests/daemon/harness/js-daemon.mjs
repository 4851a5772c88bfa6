/**
 * A js-libp2p node served by `@libp2p/daemon-server` (the js libp2p daemon), for the daemon
 * interop tests: the same `@libp2p/daemon-client` code drives it and our daemon.
 *
 * Usage: node js-daemon.mjs '<json config>'
 *   control: string            control multiaddr (js form, e.g. /ip4/127.0.0.1/tcp/0)
 *   privateKey?: string        hex of the protobuf PrivateKey
 *   security?: ("noise"|"tls"|"plaintext")[]   default ["noise"]
 *   muxers?: ("yamux"|"mplex")[]               default ["yamux"]
 *   dht?: "server"|"client"    @libp2p/kad-dht (passthrough mapper: loopback addresses kept)
 *   pubsub?: "gossipsub"|"floodsub"
 *   relayListen?: string[]     with @libp2p/circuit-relay-v2's transport, listen on these
 *                              `<relay addr>/p2p/<relay>/p2p-circuit` addresses (reserve there);
 *                              the daemon line is printed once the reservations are made;
 *                              [] adds the transport only (dial circuit addresses)
 * Prints one line {"event":"daemon","controlAddr","peerId","addrs"} then runs until stdin closes.
 */
import { noise } from "@chainsafe/libp2p-noise"
import { yamux } from "@chainsafe/libp2p-yamux"
import { circuitRelayTransport } from "@libp2p/circuit-relay-v2"
import { privateKeyFromProtobuf } from "@libp2p/crypto/keys"
import { createServer } from "@libp2p/daemon-server"
import { floodsub } from "@libp2p/floodsub"
import { gossipsub } from "@libp2p/gossipsub"
import { identify } from "@libp2p/identify"
import { kadDHT, passthroughMapper } from "@libp2p/kad-dht"
import { mplex } from "@libp2p/mplex"
import { ping } from "@libp2p/ping"
import { plaintext } from "@libp2p/plaintext"
import { tcp } from "@libp2p/tcp"
import { tls } from "@libp2p/tls"
import { multiaddr } from "@multiformats/multiaddr"
import { createLibp2p } from "libp2p"

const config = JSON.parse(process.argv[2] ?? "{}")
const SECURITY = { noise: () => noise(), tls: () => tls(), plaintext: () => plaintext() }
const MUXERS = { yamux: () => yamux(), mplex: () => mplex() }

const services = { identify: identify(), ping: ping() }
if (config.dht) {
  services.dht = kadDHT({
    clientMode: config.dht === "client",
    protocol: "/ipfs/kad/1.0.0",
    peerInfoMapper: passthroughMapper,
    allowQueryWithZeroPeers: true
  })
}
if (config.pubsub === "gossipsub") services.pubsub = gossipsub({ allowPublishToZeroTopicPeers: true })
if (config.pubsub === "floodsub") services.pubsub = floodsub()

const node = await createLibp2p({
  ...(config.privateKey ? { privateKey: privateKeyFromProtobuf(Buffer.from(config.privateKey, "hex")) } : {}),
  addresses: { listen: ["/ip4/127.0.0.1/tcp/0", ...(config.relayListen ?? [])] },
  transports: [tcp(), ...(config.relayListen ? [circuitRelayTransport()] : [])],
  connectionEncrypters: (config.security ?? ["noise"]).map((n) => SECURITY[n]()),
  streamMuxers: (config.muxers ?? ["yamux"]).map((n) => MUXERS[n]()),
  services
})
const server = createServer(multiaddr(config.control), node)
await server.start()
process.stdout.write(
  JSON.stringify({
    event: "daemon",
    controlAddr: server.getMultiaddr().toString(),
    peerId: node.peerId.toString(),
    addrs: node.getMultiaddrs().map(String)
  }) + "\n"
)
process.stdin.resume()
process.stdin.on("end", async () => {
  await server.stop()
  process.exit(0)
})

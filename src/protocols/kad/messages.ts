/**
 * Kad-DHT's wire message (libp2p specs kad-dht/README.md §RPC messages): the
 * `.proto` text verbatim from the spec (as proto3, which it is: the spec's
 * block has no `syntax` line; go-libp2p-kad-dht and js-libp2p compile it as
 * proto3), the TypeScript shapes, a codec, and the size limit. Pure code, no
 * Effects; other folders import `Kad.ts`.
 *
 * The legacy `Record` fields 3 (author) and 4 (signature) that go still sends
 * in old messages are unknown fields to this schema and are skipped on decode
 * (the go vectors in `spec-tests/vectors/interop/kad-dht-go-messages.json`).
 *
 * @since 0.2.0
 */
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"

/**
 * Largest message accepted on a stream (go-libp2p-kad-dht's `network.MessageSizeMax`,
 * 4 MiB; js-libp2p uses the same bound).
 */
export const MAX_MESSAGE_SIZE = 4 * 1024 * 1024

const proto = Protobuf.define(`
syntax = "proto3";
// Record represents a dht record that contains a value
// for a key value pair
message Record {
	// The key that references this record
	bytes key = 1;

	// The actual value this record is storing
	bytes value = 2;

	// Note: These fields were removed from the Record message
	// hash of the authors public key
	//optional string author = 3;
	// A PKI signature for the key+value+author
	//optional bytes signature = 4;

	// Time the record was received, set by receiver
	string timeReceived = 5;
};

message Message {
	enum MessageType {
		PUT_VALUE = 0;
		GET_VALUE = 1;
		ADD_PROVIDER = 2;
		GET_PROVIDERS = 3;
		FIND_NODE = 4;
		PING = 5;
	}

	enum ConnectionType {
		// sender does not have a connection to peer, and no extra information (default)
		NOT_CONNECTED = 0;

		// sender has a live connection to peer
		CONNECTED = 1;

		// sender recently connected to peer
		CAN_CONNECT = 2;

		// sender recently tried to connect to peer repeatedly but failed to connect
		// ("try" here is loose, but this should signal "made strong effort, failed")
		CANNOT_CONNECT = 3;
	}

	message Peer {
		// ID of a given peer.
		bytes id = 1;

		// multiaddrs for a given peer
		repeated bytes addrs = 2;

		// used to signal the sender's connection capabilities to the peer
		ConnectionType connection = 3;
	}

	// defines what type of message it is.
	MessageType type = 1;

	// defines what coral cluster level this query/response belongs to.
	// in case we want to implement coral's cluster rings in the future.
	int32 clusterLevelRaw = 10; // NOT USED

	// Used to specify the key associated with this message.
	// PUT_VALUE, GET_VALUE, ADD_PROVIDER, GET_PROVIDERS
	bytes key = 2;

	// Used to return a value
	// PUT_VALUE, GET_VALUE
	Record record = 3;

	// Used to return peers closer to a key in a query
	// GET_VALUE, GET_PROVIDERS, FIND_NODE
	repeated Peer closerPeers = 8;

	// Used to return Providers
	// GET_VALUE, ADD_PROVIDER, GET_PROVIDERS
	repeated Peer providerPeers = 9;
}
`)

/** `Message.MessageType`. */
export const MessageType = {
  PUT_VALUE: 0,
  GET_VALUE: 1,
  ADD_PROVIDER: 2,
  GET_PROVIDERS: 3,
  FIND_NODE: 4,
  PING: 5
} as const
export type MessageType = typeof MessageType[keyof typeof MessageType]

/** `Message.ConnectionType`. */
export const ConnectionType = {
  NOT_CONNECTED: 0,
  CONNECTED: 1,
  CAN_CONNECT: 2,
  CANNOT_CONNECT: 3
} as const
export type ConnectionType = typeof ConnectionType[keyof typeof ConnectionType]

export interface KadRecord {
  readonly key: Uint8Array
  readonly value: Uint8Array
  /** RFC 3339 time the record was received, set by the receiver ("" when absent). */
  readonly timeReceived: string
}

export interface KadPeer {
  /** The peer id's bytes (a multihash). */
  readonly id: Uint8Array
  /** Binary multiaddrs. */
  readonly addrs: ReadonlyArray<Uint8Array>
  readonly connection: number
}

export interface KadMessage {
  /** A {@link MessageType} (an unknown number from a newer peer decodes as that number). */
  readonly type: number
  readonly clusterLevelRaw: number
  readonly key: Uint8Array
  readonly record?: KadRecord
  readonly closerPeers: ReadonlyArray<KadPeer>
  readonly providerPeers: ReadonlyArray<KadPeer>
}

export const KadMessage = proto.codec<KadMessage>("Message")
export const KadRecord = proto.codec<KadRecord>("Record")

const EMPTY = new Uint8Array(0)

/** A message with the defaults of every field but those given. */
export const message = (type: MessageType, fields: Partial<Omit<KadMessage, "type">> = {}): KadMessage => ({
  type,
  clusterLevelRaw: 0,
  key: EMPTY,
  closerPeers: [],
  providerPeers: [],
  ...fields
})

/** Addresses kept per peer of a received message (the rest are dropped). */
export const MAX_ADDRS_PER_PEER = 32

/** A peer and its addresses, as the messages carry them. */
export interface PeerInfo {
  readonly peerId: PeerId.PeerId
  readonly addrs: ReadonlyArray<Multiaddr.Multiaddr>
}

export const toKadPeer = (info: PeerInfo, connection: ConnectionType = ConnectionType.NOT_CONNECTED): KadPeer => ({
  id: PeerId.toBytes(info.peerId),
  addrs: info.addrs.map(Multiaddr.toBytes),
  connection
})

/** A received peer: undefined when its id is not a peer id; addresses that do not parse are dropped. */
export const fromKadPeer = (peer: KadPeer): PeerInfo | undefined => {
  const id = PeerId.fromBytes(peer.id)
  if (Result.isFailure(id)) return undefined
  const addrs: Array<Multiaddr.Multiaddr> = []
  for (const a of peer.addrs) {
    if (addrs.length >= MAX_ADDRS_PER_PEER) break
    const m = Multiaddr.fromBytes(a)
    if (Result.isSuccess(m)) addrs.push(Multiaddr.decapsulateCode(m.success, Multiaddr.codes.p2p))
  }
  return { peerId: id.success, addrs }
}

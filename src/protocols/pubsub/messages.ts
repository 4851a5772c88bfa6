/**
 * The pubsub RPC (libp2p specs `pubsub/README.md` §The RPC, §The Message, and
 * the control messages of `pubsub/gossipsub/gossipsub-v1.0.md` §Protobuf,
 * `-v1.1.md` §Protobuf (PRUNE peer exchange and backoff), `-v1.2.md` §Protobuf
 * (IDONTWANT)): the `.proto` text, its TypeScript shape, codecs and size limits.
 * Pure code, no Effects.
 *
 * One `.proto` assembled from the spec documents, field numbers and wire types
 * exactly as written there. Where the documents disagree with what every
 * implementation sends (go-libp2p-pubsub `pb/rpc.proto`, js `@libp2p/gossipsub`
 * `message/rpc.proto`, rust `gossipsub/src/generated/rpc.proto`), we follow the
 * implementations, on the same wire:
 * - `Message.from` is `bytes` (the README's draft text says `string`; it carries
 *   the author's peer id bytes) and `Message.topic` is one `optional string topic = 4`
 *   (the README's older `repeated string topicIDs = 4`; a message with several
 *   topics decodes to its last one, as go does). Field 4 is required by the
 *   README: a message without it is rejected by the core, not by the codec.
 * - message ids are `bytes` (`gossipsub-v1.0.md` writes `string`; same wire type,
 *   and an id is arbitrary bytes, e.g. `from ++ seqno`).
 * - `ControlIDontWant.messageIDs` is `repeated` (`gossipsub-v1.2.md` writes
 *   `required bytes messageID = 1`; the v1.4 consolidated protobuf and all
 *   implementations use the repeated field, same field number and wire type).
 *
 * @since 0.2.0
 */
import * as Protobuf from "../../core/Protobuf.ts"
import * as Varint from "../../core/Varint.ts"

/**
 * Largest RPC accepted on a stream (the length prefix), 1 MiB as the README
 * suggests for a message ("should be limited, say to 1 MiB") and as go and js
 * default (`DefaultMaxMessageSize`, `maxInboundDataLength`).
 */
export const MAX_RPC_SIZE = 1024 * 1024

/** Length of `seqno` our signed messages carry and StrictSign requires (README §The Message: a 64-bit big-endian uint). */
export const SEQNO_LENGTH = 8

/** The prefix of the signed bytes (README §Message Signing). */
export const SIGNING_PREFIX = new TextEncoder().encode("libp2p-pubsub:")

const proto = Protobuf.define(`
syntax = "proto2";

message RPC {
  repeated SubOpts subscriptions = 1;
  repeated Message publish = 2;

  message SubOpts {
    optional bool subscribe = 1; // subscribe or unsubscribe
    optional string topicid = 2;
  }

  optional ControlMessage control = 3;
}

message Message {
  optional bytes from = 1;
  optional bytes data = 2;
  optional bytes seqno = 3;
  optional string topic = 4;
  optional bytes signature = 5;
  optional bytes key = 6;
}

message ControlMessage {
  repeated ControlIHave ihave = 1;
  repeated ControlIWant iwant = 2;
  repeated ControlGraft graft = 3;
  repeated ControlPrune prune = 4;
  repeated ControlIDontWant idontwant = 5; // v1.2
}

message ControlIHave {
  optional string topicID = 1;
  repeated bytes messageIDs = 2;
}

message ControlIWant {
  repeated bytes messageIDs = 1;
}

message ControlGraft {
  optional string topicID = 1;
}

message ControlPrune {
  optional string topicID = 1;
  repeated PeerInfo peers = 2; // gossipsub v1.1 PX
  optional uint64 backoff = 3; // gossipsub v1.1 backoff time (in seconds)
}

message PeerInfo {
  optional bytes peerID = 1;
  optional bytes signedPeerRecord = 2;
}

message ControlIDontWant {
  repeated bytes messageIDs = 1;
}
`)

export interface SubOpts {
  readonly subscribe?: boolean
  readonly topicid?: string
}

/** A pubsub message as on the wire (README §The Message). */
export interface Message {
  readonly from?: Uint8Array
  readonly data?: Uint8Array
  readonly seqno?: Uint8Array
  readonly topic?: string
  readonly signature?: Uint8Array
  readonly key?: Uint8Array
}

export interface ControlIHave {
  readonly topicID?: string
  readonly messageIDs: ReadonlyArray<Uint8Array>
}

export interface ControlIWant {
  readonly messageIDs: ReadonlyArray<Uint8Array>
}

export interface ControlGraft {
  readonly topicID?: string
}

export interface PeerInfo {
  readonly peerID?: Uint8Array
  readonly signedPeerRecord?: Uint8Array
}

export interface ControlPrune {
  readonly topicID?: string
  readonly peers: ReadonlyArray<PeerInfo>
  readonly backoff?: bigint
}

export interface ControlIDontWant {
  readonly messageIDs: ReadonlyArray<Uint8Array>
}

export interface ControlMessage {
  readonly ihave: ReadonlyArray<ControlIHave>
  readonly iwant: ReadonlyArray<ControlIWant>
  readonly graft: ReadonlyArray<ControlGraft>
  readonly prune: ReadonlyArray<ControlPrune>
  readonly idontwant: ReadonlyArray<ControlIDontWant>
}

export interface RPC {
  readonly subscriptions: ReadonlyArray<SubOpts>
  readonly publish: ReadonlyArray<Message>
  readonly control?: ControlMessage
}

export const RPC = proto.codec<RPC>("RPC")
export const Message = proto.codec<Message>("Message")
export const ControlMessage = proto.codec<ControlMessage>("ControlMessage")

/** An empty control message, to fill in. */
export const emptyControl = (): {
  ihave: Array<ControlIHave>
  iwant: Array<ControlIWant>
  graft: Array<ControlGraft>
  prune: Array<ControlPrune>
  idontwant: Array<ControlIDontWant>
} => ({ ihave: [], iwant: [], graft: [], prune: [], idontwant: [] })

/** Whether a control message carries nothing. */
export const isEmptyControl = (c: ControlMessage): boolean =>
  c.ihave.length === 0 && c.iwant.length === 0 && c.graft.length === 0 && c.prune.length === 0 &&
  c.idontwant.length === 0

/** One present `bytes` or `string` field of `Message` (numbers 1–6: a one-byte key), `n` bytes long. */
const fieldLength = (n: number): number => 1 + Varint.encodingLength(n) + n

/**
 * The length of `Message.encode(msg)`, without encoding it: the size the core checks
 * against its limit and routers compare with the IDONTWANT threshold, for every copy
 * received, duplicates included (encoding a 64 KiB message to learn its size was an
 * allocation and a copy of the whole message).
 */
export const encodedLength = (msg: Message): number =>
  (msg.from === undefined ? 0 : fieldLength(msg.from.byteLength)) +
  (msg.data === undefined ? 0 : fieldLength(msg.data.byteLength)) +
  (msg.seqno === undefined ? 0 : fieldLength(msg.seqno.byteLength)) +
  (msg.topic === undefined ? 0 : fieldLength(Buffer.byteLength(msg.topic, "utf8"))) +
  (msg.signature === undefined ? 0 : fieldLength(msg.signature.byteLength)) +
  (msg.key === undefined ? 0 : fieldLength(msg.key.byteLength))

/**
 * The bytes a signature covers (README §Message Signing): `libp2p-pubsub:` followed by
 * the message protobuf without `signature` and `key`.
 */
export const signedBytes = (msg: Message): Uint8Array => {
  const { key: _key, signature: _signature, ...rest } = msg
  const body = Message.encode(rest)
  const out = new Uint8Array(SIGNING_PREFIX.byteLength + body.byteLength)
  out.set(SIGNING_PREFIX, 0)
  out.set(body, SIGNING_PREFIX.byteLength)
  return out
}

/**
 * Circuit relay v2's wire messages (libp2p specs relay/circuit-v2.md
 * §Protobuf): the `.proto` text verbatim from the spec, the TypeScript
 * shapes, a codec per message, the size limit and the status codes. Pure
 * code, no Effects; other folders import `RelayServer.ts` / `RelayClient.ts`.
 *
 * Every message travels length-prefixed (uvarint) on the hop and stop
 * streams. The spec sets no size; go-libp2p's relay reads with a 4 KiB
 * bound (`circuitv2/relay` `maxMessageSize`), and so do we (js-libp2p's
 * `pbStream` allows more; its messages are far smaller).
 *
 * @since 0.3.0
 */
import { Result } from "effect"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Protobuf from "../../core/Protobuf.ts"

/** Largest hop or stop message accepted (go-libp2p: 4096). */
export const MAX_MESSAGE_SIZE = 4096

/** The hop protocol (§Hop Protocol). */
export const HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop"
/** The stop protocol (§Stop Protocol). */
export const STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop"

const proto = Protobuf.define(`
syntax = "proto3";
message HopMessage {
  enum Type {
    RESERVE = 0;
    CONNECT = 1;
    STATUS = 2;
  }

  // This field is marked optional for backwards compatibility with proto2.
  // Users should make sure to always set this.
  optional Type type = 1;

  optional Peer peer = 2;
  optional Reservation reservation = 3;
  optional Limit limit = 4;

  optional Status status = 5;
}

message StopMessage {
  enum Type {
    CONNECT = 0;
    STATUS = 1;
  }

  // This field is marked optional for backwards compatibility with proto2.
  // Users should make sure to always set this.
  optional Type type = 1;

  optional Peer peer = 2;
  optional Limit limit = 3;

  optional Status status = 4;
}

message Peer {
  // This field is marked optional for backwards compatibility with proto2.
  // Users should make sure to always set this.
  optional bytes id = 1;
  repeated bytes addrs = 2;
}

message Reservation {
  // This field is marked optional for backwards compatibility with proto2.
  // Users should make sure to always set this.
  optional uint64 expire = 1; // Unix expiration time (UTC)
  repeated bytes addrs = 2;   // relay addrs for reserving peer
  optional bytes voucher = 3; // reservation voucher
}

message Limit {
  optional uint32 duration = 1; // seconds
  optional uint64 data = 2;     // bytes
}

enum Status {
  // zero value field required for proto3 compatibility
  UNUSED                  = 0;
  OK                      = 100;
  RESERVATION_REFUSED     = 200;
  RESOURCE_LIMIT_EXCEEDED = 201;
  PERMISSION_DENIED       = 202;
  CONNECTION_FAILED       = 203;
  NO_RESERVATION          = 204;
  MALFORMED_MESSAGE       = 400;
  UNEXPECTED_MESSAGE      = 401;
}
`)

/** `HopMessage.Type`. */
export const HopType = { RESERVE: 0, CONNECT: 1, STATUS: 2 } as const
/** `StopMessage.Type`. */
export const StopType = { CONNECT: 0, STATUS: 1 } as const

/** `Status` (§Protobuf). */
export const Status = {
  UNUSED: 0,
  OK: 100,
  RESERVATION_REFUSED: 200,
  RESOURCE_LIMIT_EXCEEDED: 201,
  PERMISSION_DENIED: 202,
  CONNECTION_FAILED: 203,
  NO_RESERVATION: 204,
  MALFORMED_MESSAGE: 400,
  UNEXPECTED_MESSAGE: 401
} as const
export type StatusName = keyof typeof Status

const statusNames = new Map<number, StatusName>(
  Object.entries(Status).map(([name, code]) => [code, name as StatusName])
)

/** A status code's name, `"UNKNOWN"` for a code the spec does not list. */
export const statusName = (code: number | undefined): StatusName | "UNKNOWN" =>
  code === undefined ? "UNKNOWN" : statusNames.get(code) ?? "UNKNOWN"

export interface Peer {
  readonly id?: Uint8Array
  readonly addrs: ReadonlyArray<Uint8Array>
}

export interface Reservation {
  readonly expire?: bigint
  readonly addrs: ReadonlyArray<Uint8Array>
  readonly voucher?: Uint8Array
}

export interface Limit {
  /** Seconds; 0 or absent: no limit. */
  readonly duration?: number
  /** Bytes in each direction; 0 or absent: no limit. */
  readonly data?: bigint
}

export interface HopMessage {
  readonly type?: number
  readonly peer?: Peer
  readonly reservation?: Reservation
  readonly limit?: Limit
  readonly status?: number
}

export interface StopMessage {
  readonly type?: number
  readonly peer?: Peer
  readonly limit?: Limit
  readonly status?: number
}

export const HopMessage = proto.codec<HopMessage>("HopMessage")
export const StopMessage = proto.codec<StopMessage>("StopMessage")

/** A `Peer` for `id` (no addresses: active relay is deprecated, §Connection Initiation). */
export const peerOf = (id: PeerId.PeerId): Peer => ({ id: PeerId.toBytes(id), addrs: [] })

/** The peer id a `Peer` names, when it names a valid one. */
export const peerIdOf = (peer: Peer | undefined): PeerId.PeerId | undefined => {
  if (peer?.id === undefined) return undefined
  const parsed = PeerId.fromBytes(peer.id)
  return Result.isSuccess(parsed) ? parsed.success : undefined
}

/** The addresses that parse; the others are skipped. */
export const addrsOf = (addrs: ReadonlyArray<Uint8Array>): Array<Multiaddr.Multiaddr> => {
  const out: Array<Multiaddr.Multiaddr> = []
  for (const bytes of addrs) {
    const parsed = Multiaddr.fromBytes(bytes)
    if (Result.isSuccess(parsed)) out.push(parsed.success)
  }
  return out
}

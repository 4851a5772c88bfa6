/**
 * Identify's wire message (identify spec §The Identify Message): the `.proto`
 * text, its TypeScript shape and codec, and the size limit. Pure code, no
 * Effects; other folders import `Identify.ts`, which re-exports what they need.
 *
 * @since 0.1.0
 */
import * as Protobuf from "../../core/Protobuf.ts"

/** Largest identify message accepted (js-libp2p's default). */
export const MAX_MESSAGE_SIZE = 8192

const proto = Protobuf.define(`
syntax = "proto2";
message Identify {
  optional string protocolVersion = 5;
  optional string agentVersion = 6;
  optional bytes publicKey = 1;
  repeated bytes listenAddrs = 2;
  optional bytes observedAddr = 4;
  repeated string protocols = 3;
  optional bytes signedPeerRecord = 8;
}`)

export interface IdentifyMessage {
  readonly protocolVersion?: string
  readonly agentVersion?: string
  readonly publicKey?: Uint8Array
  readonly listenAddrs: ReadonlyArray<Uint8Array>
  readonly observedAddr?: Uint8Array
  readonly protocols: ReadonlyArray<string>
  readonly signedPeerRecord?: Uint8Array
}

export const IdentifyMessage = proto.codec<IdentifyMessage>("Identify")

/**
 * The stack presets users import.
 *
 * @since 0.1.0
 */
export { MemoryNetwork } from "../src/transport/Memory.ts"
export { Default, layer, Memory, type NodeOptions, type PresetOptions } from "./Node.ts"

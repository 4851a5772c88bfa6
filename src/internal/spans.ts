/**
 * The library's spans, made without a captured stack trace.
 *
 * `Effect.withSpan` captures a stack trace (an `Error` with its call sites) for
 * every span unless `captureStackTrace: false` is given, and in Effect 4.0's
 * data-last form (`effect.pipe(Effect.withSpan(name, options))`) that option is
 * not read: the trace is captured whatever it says (the options are only read
 * for the stack in the data-first form). Our spans have fixed names that say
 * where they come from, so the trace adds nothing; and a connection's long-lived
 * fibers (the muxer's reader) are forked inside its upgrade spans and keep their
 * stack frames, and so the captured traces, for the connection's life: 1.27 KiB
 * of heap per idle connection (`bench/heap-per-conn.ts 300 --owners
 * --drill=object:Object`), besides an `Error` made per span.
 *
 * @since 0.1.0
 */
import type { Tracer } from "effect"
import { Effect } from "effect"

/**
 * `Effect.withSpan(name, options)` for a pipe, with no captured stack trace
 * (data-first underneath, where `captureStackTrace` is honoured).
 */
export const withSpan =
  (name: string, options?: Tracer.SpanOptionsNoTrace) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withSpan(self, name, { ...options, captureStackTrace: false })

import type { FastifyBaseLogger } from 'fastify'

// What the conformance suites (index.ts, stateless.ts, revocation.ts) share.

// Every method, child() included, is this one function.
const quiet = (): FastifyBaseLogger => silentLog
export const silentLog = {
  level: 'silent',
  fatal: quiet,
  error: quiet,
  warn: quiet,
  info: quiet,
  debug: quiet,
  trace: quiet,
  silent: quiet,
  child: quiet
} as unknown as FastifyBaseLogger

export const MINUTE = 60_000
export const HOUR = 60 * MINUTE

/** A clock for one case: real time plus however far the case moved it, so it only moves forward. */
export function caseClock (): { now: () => number, tick: (ms: number) => void } {
  let offset = 0
  return { now: () => Date.now() + offset, tick: (ms) => { offset += ms } }
}

export function nullProto (values: Record<string, unknown> = {}): Record<string, unknown> {
  return Object.assign(Object.create(null) as Record<string, unknown>, values)
}

export interface ConformanceCase {
  /** Unique, short, usable in a key prefix. */
  name: string
  /** What the case proves. */
  title: string
  run: () => Promise<void>
}

export type TestFunction = (title: string, fn: () => Promise<void>) => unknown

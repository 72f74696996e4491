import pino from 'pino'
import type { FastifyBaseLogger } from 'fastify'
import type { BusSubscriber, Revocation } from '../../lib/bus/bus.js'
import { newSessionId } from '../../lib/crypto/ids.js'
import { testTag } from './ids.js'

// What the bus tests share: a real pino logger whose lines are kept, and a subscriber that
// records what it hears and lets a test wait for the next message or resync.

export interface Log {
  logger: FastifyBaseLogger
  lines: Array<{ level: number, msg: string, [key: string]: unknown }>
  /** The lines at `level` (pino's numbers: 30 info, 40 warn, 50 error). */
  at: (level: number) => string[]
}

export function bufferLog (): Log {
  const lines: Log['lines'] = []
  const logger = pino({ level: 'debug' }, { write (chunk: string) { lines.push(JSON.parse(chunk)) } })
  return { logger, lines, at: (level) => lines.filter((line) => line.level === level).map((line) => line.msg) }
}

export interface Recorder extends BusSubscriber {
  heard: Revocation[]
  resyncs: number
  /** The routing keys of each resync, in order (undefined: everything). */
  resyncKeys: Array<readonly string[] | undefined>
  /** Resolves with the next revocation heard (or one heard already and not yet taken). */
  next: (ms?: number) => Promise<Revocation>
  /** Resolves once `resync` has been called `n` times in all. */
  resynced: (n: number, ms?: number) => Promise<void>
}

export function recorder (): Recorder {
  const heard: Revocation[] = []
  let taken = 0
  const waiters: Array<() => void> = []
  const wake = (): void => { for (const waiter of waiters.splice(0)) waiter() }
  const wait = async (ready: () => boolean, what: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms
    while (!ready()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }
  const r: Recorder = {
    heard,
    resyncs: 0,
    resyncKeys: [],
    revoked (revocation) {
      heard.push(revocation)
      wake()
    },
    resync (keys) {
      r.resyncs++
      r.resyncKeys.push(keys)
      wake()
    },
    next: async (ms = 5000) => {
      await wait(() => heard.length > taken, 'a revocation', ms)
      return heard[taken++] as Revocation
    },
    resynced: (n, ms = 20_000) => wait(() => r.resyncs >= n, `resync #${n}`, ms)
  }
  return r
}

/** A revocation of `count` sessions of `userId` (or of one anonymous session). */
export function revocationOf (userId: string | undefined, count = 1): Revocation {
  const tag = userId === undefined ? undefined : testTag(userId)
  return { ids: Array.from({ length: count }, () => newSessionId(tag)), reason: 'delete', at: Date.now() }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

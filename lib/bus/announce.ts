import type { FastifyBaseLogger } from 'fastify'
import type { Revocation, RevocationBus } from './bus.js'

/**
 * Publishes a revocation that already happened, without waiting: the revocation stands
 * whether or not the message goes out (pub/sub is at most once; a subscriber that missed it
 * finds the session gone at its next check). A failure is one warning, never a rejection.
 */
export function announce (bus: RevocationBus, log: FastifyBaseLogger, revocation: Revocation): void {
  bus.publish(revocation).catch((err: Error & { code?: string }) => {
    log.warn({ err: { message: err.message, code: err.code }, reason: revocation.reason },
      'revocation not announced to the other instances; their live connections end at their next check')
  })
}

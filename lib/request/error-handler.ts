import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FST_SESSION_OPTION_INVALID } from '../errors.js'

// During a store outage every request that touches its session fails with the same typed
// 503, and Fastify's default error handler logs each 5xx at error level: one identical line
// per request, which buries everything else an operator reads first. This handler answers
// those 503s itself (the same JSON body and status Fastify would send) and logs them as one
// warning per interval, with the count since the last one; any other error goes on to the
// app's handler, or to Fastify's default one, as before.

/** The plugin's errors that mean "the store cannot answer now", all 503. */
const STORE_ERRORS = new Set(['FST_SESSION_STORE_UNAVAILABLE', 'FST_SESSION_STORE_NOT_REPLICATED'])

export type SessionErrorHandler = (this: FastifyInstance, error: FastifyError, request: FastifyRequest, reply: FastifyReply) => unknown

export interface SessionErrorHandlerOptions {
  /** Milliseconds between two warnings about store 503s; those between are logged at debug. @default 10000 */
  interval?: number
}

/** True for the plugin's typed "store cannot answer now" errors (503). */
export function isStoreUnavailable (error: unknown): boolean {
  return STORE_ERRORS.has((error as { code?: unknown } | null)?.code as string)
}

/**
 * An error handler for `app.setErrorHandler()`: the plugin's store 503s are answered with
 * one warning per `interval` instead of one error line per request; other errors go to
 * `next`, or to Fastify's default handler when there is none.
 */
export function sessionErrorHandler (next?: SessionErrorHandler, options: SessionErrorHandlerOptions = {}): SessionErrorHandler {
  if (next !== undefined && typeof next !== 'function') throw new FST_SESSION_OPTION_INVALID('sessionErrorHandler(next)', 'must be a function')
  const interval = options.interval ?? 10_000
  if (!Number.isFinite(interval) || interval < 0) throw new FST_SESSION_OPTION_INVALID('sessionErrorHandler.interval', 'must be a non-negative number')
  let last = -Infinity
  let since = 0
  return function handleSessionErrors (this: FastifyInstance, error, request, reply) {
    if (!isStoreUnavailable(error)) return next === undefined ? reply.send(error) : next.call(this, error, request, reply)
    since++
    const details = { err: { message: error.message, code: error.code } }
    const now = Date.now()
    if (now - last >= interval) {
      request.log.warn({ ...details, since }, 'session store unavailable: answering 503 (count since the last such line)')
      last = now
      since = 0
    } else {
      request.log.debug(details, 'session store unavailable: answering 503')
    }
    return reply.code(503).send({ statusCode: 503, code: error.code, error: 'Service Unavailable', message: error.message })
  }
}

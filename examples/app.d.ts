import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { FastifyUserSessionsOptions } from 'fastify-user-sessions'

export interface BuildAppOptions extends Partial<Omit<FastifyUserSessionsOptions, 'secret'>> {
  /** The session secret; a random one, with a warning, when absent. */
  secret?: FastifyUserSessionsOptions['secret']
  /** Fastify's logger option. @default false */
  logger?: FastifyServerOptions['logger']
}

export function buildApp (options?: BuildAppOptions): Promise<FastifyInstance>

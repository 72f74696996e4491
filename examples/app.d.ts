import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { FastifyUserSessionsOptions } from 'fastify-user-sessions'

export interface BuildAppOptions extends Partial<Omit<FastifyUserSessionsOptions, 'secret'>> {
  /** The session secret, passed on when given; the example's memory store needs none. */
  secret?: FastifyUserSessionsOptions['secret']
  /** Fastify's logger option. @default false */
  logger?: FastifyServerOptions['logger']
  /** Milliseconds between the heartbeat comments of the devices page's event stream. @default 15000 */
  liveHeartbeat?: number
  /** Serve HTTPS with this key and certificate (PEM), and turn device-bound sessions on. @default undefined (HTTP) */
  https?: { key: string | Buffer, cert: string | Buffer }
}

export function buildApp (options?: BuildAppOptions): Promise<FastifyInstance>

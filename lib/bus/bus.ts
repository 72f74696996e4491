// The revocation bus: how every app instance that shares a store hears that sessions ended,
// so that live connections (WebSocket, SSE) authenticated by them close (issue 14). One
// implementation per kind of store: in-process for 'memory' (every plugin instance sharing
// the table), Redis pub/sub (sharded on a Cluster, so that a message stays on its user's
// shard), PostgreSQL LISTEN / NOTIFY. Delivery is at most once; after a lost subscription
// comes back, subscribers are told to check what they follow (`resync`).

/** Why sessions ended. */
export type RevocationReason = 'delete' | 'deleteAll' | 'destroy' | 'replaced' | 'evicted' | 'expired'

/**
 * One revocation as it travels between instances: small, never a secret, a token or data.
 * It concerns the sessions of one user, or one anonymous session (the routing unit of a
 * sharded bus).
 */
export interface Revocation {
  /** The sessions that ended, when known (all of one user, or one anonymous id). */
  readonly ids: readonly string[]
  /**
   * Set for a revocation of every session of a user but `except` whose ids are not listed
   * (a stateless store's "log out everywhere", or more ids than a message carries): a
   * subscriber checks the sessions of that user it follows against the store.
   */
  readonly userId?: string | undefined
  readonly except?: readonly string[] | undefined
  readonly reason: RevocationReason
  /** Milliseconds since the epoch, on the publisher's clock. */
  readonly at: number
}

export interface BusSubscriber {
  /** A revocation published by any instance, this one included. Must not throw (the bus guards it anyway). */
  revoked: (revocation: Revocation) => void
  /**
   * Messages are heard from now on, and what was published before may have been missed: the
   * subscription was made or came back after a loss (`keys` undefined: everything), or, on a
   * sharded bus, the channels of these routing keys (`sessionKey`) were just subscribed.
   */
  resync: (keys?: readonly string[]) => void
}

export type Unsubscribe = () => void

export interface RevocationBus {
  /**
   * Sends `revocation` to every subscriber of every instance sharing the store. Rejects when
   * it could not be sent (the store is down); the caller logs it, the revocation itself stands.
   */
  publish: (revocation: Revocation) => Promise<void>
  /**
   * Starts receiving. No connection is opened and nothing is subscribed before the first
   * subscriber; the last one to leave closes the subscription.
   */
  subscribe: (subscriber: BusSubscriber) => Unsubscribe
  /**
   * A sharded bus (Redis Cluster) delivers only what is published on the channels it follows:
   * follow the session `id` (its user's channel, or the anonymous id's) while it is watched.
   * Counted: the channel is left when the last follower of it unfollows. Other buses deliver
   * everything and ignore it.
   */
  follow: (id: string) => Unsubscribe
  /** Closes the subscriber connection, if any; idempotent. */
  close: () => Promise<void>
}

import { FST_SESSION_STORE_UNAVAILABLE } from '../errors.js'

/** Wraps what a store threw as a typed 503, keeping typed errors (an unsupported operation, say) as they are. */
export function storeError (err: unknown): Error {
  if (err instanceof Error && typeof (err as { statusCode?: unknown }).statusCode === 'number' &&
    typeof (err as { code?: unknown }).code === 'string') {
    return err
  }
  const wrapped = new FST_SESSION_STORE_UNAVAILABLE(err instanceof Error ? err.message : String(err))
  wrapped.cause = err
  return wrapped
}

/** Awaits a store call, turning what it rejects with into the typed error `storeError` makes. */
export async function withStoreErrors<T> (promise: Promise<T>): Promise<T> {
  try {
    return await promise
  } catch (err) {
    throw storeError(err)
  }
}

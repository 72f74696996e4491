/** Milliseconds before reconnection attempt `attempt` (from 0) of a subscriber: 100 ms doubling, at most 5 s. */
export function retryDelay (attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt, 6), 5000)
}

import type { SessionRecord } from 'fastify-user-sessions'

export const STYLE_HASH: string

export function loginPage (options: {
  name?: string
  remember?: boolean
  error?: string
  message?: string
  /** The lifetimes of a sign-in without "Remember me", in seconds. */
  unremembered: { ttl: number, absoluteTtl: number }
}): string

export function devicesPage (options: { user: string, sessions: SessionRecord[], currentId: string, message?: string }): string

export function errorPage (statusCode: number, message: string): string

/** Seconds in the largest unit that counts them exactly: 1800 → "30 minutes", 90000 → "25 hours". */
export function duration (seconds: number): string

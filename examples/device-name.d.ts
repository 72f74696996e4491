import type { SessionTransport } from 'fastify-user-sessions'

/** A session's device as people name it: "Chrome on Windows", "Safari on iPhone", "curl · API token". */
export function deviceName (userAgent: string | undefined, transport: SessionTransport | undefined): string

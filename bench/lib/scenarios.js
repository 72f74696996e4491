// The scenarios of the main table, the peer each of ours is compared with, and the targets.

export const SCENARIOS = [
  { name: 'bare', label: 'bare Fastify (no session)', sessions: false },
  { name: 'bare-busy10', label: 'bare Fastify + 10 µs busy loop', sessions: false },
  { name: 'ours-memory', label: "ours, 'memory'", store: 'memory', peer: 'fastify-session' },
  { name: 'ours-redis', label: "ours, 'redis'", store: 'redis', redis: true, peer: 'fastify-session-redis' },
  { name: 'ours-cookie', label: "ours, 'cookie' (sodium-native)", store: 'cookie', peer: 'secure-session' },
  { name: 'ours-cookie-node', label: "ours, 'cookie' (node:crypto)", store: 'cookie', peer: 'secure-session' },
  { name: 'fastify-session', label: '@fastify/session, MemoryStore' },
  { name: 'fastify-session-redis', label: '@fastify/session + connect-redis', redis: true },
  { name: 'secure-session', label: '@fastify/secure-session' }
]

export const ROUTES = [
  { name: 'write', method: 'POST' },
  { name: 'read', method: 'GET' }
]

/** 'hot': every connection on one session; 'spread': the sessions spread over the connections. */
export const MODES = ['hot', 'spread']

export const byName = Object.fromEntries(SCENARIOS.map((s) => [s.name, s]))

/** The cells of the main table, in the order they run within a round (A B C ... A B C ...). */
export function cells () {
  const list = []
  for (const mode of MODES) {
    for (const route of ROUTES) {
      for (const s of SCENARIOS) {
        list.push({ scenario: s.name, route: route.name, method: route.method, mode })
      }
    }
  }
  return list
}

export const key = (scenario, route, mode) => `${scenario}|${route}|${mode}`

/**
 * The cell of the server without sessions that a cell is compared with: same route, and the
 * same number of distinct cookies sent, so that the load generator does the same work.
 */
export const bareKey = (route, mode) => key('bare', route, mode)

export const TARGETS = {
  memoryCpuShare: 1 / 3, // ours 'memory' adds at most 1/3 of the CPU @fastify/session adds
  cookieCpuShare: 1 / 2, // ours 'cookie' adds at most 1/2 of what @fastify/secure-session adds
  memoryReadVsBare: 0.85,
  memoryWriteVsBare: 0.75,
  redisVsPeer: 1.5,
  redisReadRoundTrips: 1,
  redisWriteRoundTrips: 2,
  memoryBytesPerSession: 400,
  getAllFlatness: 2, // 1M vs 10k
  getAllVsScan: 100
}

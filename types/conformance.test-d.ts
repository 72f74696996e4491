// Type tests of the stateless and revocation conformance suites, checked by `npm run test:types`.
import { CookieStore, MemoryRevocation, type RevocationStore, type StatelessStore } from 'fastify-user-sessions'
import {
  revocationConformanceCases, runRevocationConformance, runStatelessConformance, statelessConformanceCases,
  type ConformanceCase, type RevocationConformanceOptions, type StatelessConformanceOptions
} from 'fastify-user-sessions/conformance'

const stateless: StatelessConformanceOptions = {
  createStore: (context, name) => {
    const secrets: ReadonlyArray<string | Buffer> = context.secrets
    const cookieName: string = context.cookieName
    console.log(secrets, cookieName, name)
    return new CookieStore({ crypto: 'node:crypto' }, context)
  }
}
const cases: ConformanceCase[] = statelessConformanceCases(stateless)
runStatelessConformance((title: string, fn: () => Promise<void>) => { console.log(title, fn) }, stateless)
runStatelessConformance(() => {}, { createStore: async (context): Promise<StatelessStore> => new CookieStore({}, context) })
// @ts-expect-error a server store is not a stateless one
runStatelessConformance(() => {}, { createStore: () => ({ get: async () => undefined }) })

const revocation: RevocationConformanceOptions = { createRevocation: (context) => new MemoryRevocation({ type: 'memory' }, context) }
cases.push(...revocationConformanceCases(revocation))
runRevocationConformance(() => {}, { createRevocation: async (): Promise<RevocationStore> => new MemoryRevocation({ type: 'memory' }, {} as never) })
// @ts-expect-error createRevocation is required
runRevocationConformance(() => {}, {})

import t from 'tap'
import { MemoryBus } from '../../lib/bus/memory.js'
import { MemoryStore } from '../../lib/stores/memory.js'
import { MemoryRevocation } from '../../lib/stores/revocation/memory.js'
import { bufferLog, recorder, revocationOf } from '../helpers/bus.js'
import { testContext } from '../helpers/postgres.js'

// The in-process bus: asynchronous, guarded delivery; one bus per named memory table, so that
// every plugin instance of the process sharing the table hears the others.

t.test('delivers after the publisher returns, to every subscriber, until it unsubscribes', async (t) => {
  const bus = new MemoryBus(bufferLog().logger)
  const a = recorder()
  const b = recorder()
  const offA = bus.subscribe(a)
  bus.subscribe(b)
  const revocation = revocationOf('alice', 2)
  const sent = bus.publish(revocation)
  t.equal(a.heard.length, 0, 'not inside the publisher\'s stack')
  await sent
  t.same(await a.next(), revocation)
  t.same(await b.next(), revocation)
  t.not(a.heard[0], revocation, 'a copy, not the publisher\'s object')
  offA()
  offA()
  await bus.publish(revocationOf('bob'))
  await b.next()
  t.equal(a.heard.length, 1, 'an unsubscribed one hears no more')
  t.equal(bus.follow('x')(), undefined, 'follow is a no-op')
  await bus.close()
  await bus.close()
  await bus.publish(revocationOf('carol'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(b.heard.length, 2, 'nothing after close')
})

t.test('a throwing subscriber is logged and the others still hear', async (t) => {
  const log = bufferLog()
  const bus = new MemoryBus(log.logger)
  const late = recorder()
  let unsubscribeLate = (): void => {}
  bus.subscribe({ revoked () { unsubscribeLate(); throw new Error('boom') }, resync () {} })
  const good = recorder()
  bus.subscribe(good)
  unsubscribeLate = bus.subscribe(late)
  await bus.publish(revocationOf('alice'))
  await good.next()
  t.same(log.at(50), ['memory revocation bus: a subscriber threw'])
  t.equal((log.lines[0]?.err as { message: string }).message, 'boom')
  t.equal(late.heard.length, 0, 'one that left during the delivery does not hear it')
})

t.test('a malformed revocation is dropped as it would be from the wire', async (t) => {
  const log = bufferLog()
  const bus = new MemoryBus(log.logger)
  const r = recorder()
  bus.subscribe(r)
  await bus.publish({ ids: ['nope'], reason: 'delete', at: 0 })
  await bus.publish(revocationOf('alice'))
  await r.next()
  t.equal(r.heard.length, 1)
  t.same(log.at(20), ['memory revocation bus: dropped a malformed message'])
})

t.test('memory stores sharing a table share one bus; a private table has its own', async (t) => {
  const context = testContext(Date.now)
  const one = new MemoryStore({ table: 'bus-shared' }, context)
  const two = new MemoryStore({ table: 'bus-shared' }, context)
  const other = new MemoryStore({}, context)
  t.equal(one.bus, two.bus)
  t.not(one.bus, other.bus)
  const heard = recorder()
  const alone = recorder()
  two.bus.subscribe(heard)
  other.bus.subscribe(alone)
  const revocation = revocationOf('alice')
  await one.bus.publish(revocation)
  t.same(await heard.next(), revocation)
  t.equal(alone.heard.length, 0)
  await one.close()
  await one.bus.publish(revocationOf('bob'))
  await heard.next()
  await two.close()
  await other.close()
  await two.bus.publish(revocationOf('carol'))
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(heard.heard.length, 2, 'the last store to close closes the table\'s bus')
  const revocations = new MemoryRevocation({ type: 'memory' }, context)
  t.equal(revocations.bus, revocations.bus, 'the memory revocation store has one bus')
  const r = recorder()
  revocations.bus.subscribe(r)
  await revocations.bus.publish(revocation)
  t.same(await r.next(), revocation)
  await revocations.close()
  await new MemoryRevocation({ type: 'memory' }, context).close()
})

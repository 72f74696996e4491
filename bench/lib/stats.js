// Medians, ranges and the number formats of the report.

export function median (values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

export function range (values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x))
  if (v.length === 0) return null
  return { min: Math.min(...v), max: Math.max(...v), median: median(v) }
}

/** (max - min) / median: how far apart the rounds of one cell were. */
export function spread (values) {
  const r = range(values)
  return r === null || r.median === 0 ? null : (r.max - r.min) / r.median
}

export function fmtInt (x) {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US')
}

export function fmtNum (x, digits = 1) {
  return x === null || x === undefined ? '–' : x.toFixed(digits)
}

export function fmtRatio (x) {
  return x === null || x === undefined ? '–' : x.toFixed(2) + '×'
}

/** "median (min–max)", or the median alone with one round. */
export function fmtRange (values, f = fmtInt) {
  const r = range(values)
  if (r === null) return '–'
  return values.length === 1 ? f(r.median) : `${f(r.median)} (${f(r.min)}–${f(r.max)})`
}

export function fmtBytes (x) {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US') + ' B'
}

export function fmtMicros (us) {
  if (us === null || us === undefined) return '–'
  if (us >= 10_000) return (us / 1000).toFixed(0) + ' ms'
  if (us >= 1000) return (us / 1000).toFixed(1) + ' ms'
  return us.toFixed(us >= 100 ? 0 : 1) + ' µs'
}

export function pct (x) {
  return x === null || x === undefined ? '–' : Math.round(x * 100) + ' %'
}

// The main table as a bar chart: hand-written SVG, no library, no network.
import { byName, cells as cellList, key, ROUTES } from './scenarios.js'
import { fmtInt, median, range } from './stats.js'

const WIDTH = 960
const LABEL_W = 290
const BAR_W = 440
const BAR_H = 16
const GAP = 6
const COLORS = { bare: '#8c8c8c', ours: '#1f6fd1', peer: '#e07b24' }

function esc (text) {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function colorOf (name) {
  if (name === 'bare') return COLORS.bare
  return name.startsWith('ours-') ? COLORS.ours : COLORS.peer
}

export function chart (run) {
  const groups = []
  for (const mode of ['hot', 'spread']) {
    for (const route of ROUTES) {
      const rows = cellList().filter((c) => c.route === route.name && c.mode === mode)
      groups.push({ title: `${route.name} route, ${mode === 'hot' ? 'one hot session' : '1,000 sessions'}`, rows: rows.map((c) => ({ ...c, k: key(c.scenario, c.route, c.mode) })) })
    }
  }
  let max = 0
  for (const cell of Object.values(run.cells)) {
    if (cell.status === 'ok') max = Math.max(max, ...cell.samples.map((s) => s.rps))
  }
  max = max > 0 ? max * 1.05 : 1
  const out = []
  let y = 56
  for (const g of groups) {
    out.push(`<text x="10" y="${y + 12}" class="group">${esc(g.title)}</text>`)
    y += 22
    for (const c of g.rows) {
      const cell = run.cells[c.k]
      out.push(`<text x="${LABEL_W - 8}" y="${y + 12}" class="label" text-anchor="end">${esc(byName[c.scenario].label)}</text>`)
      if (cell?.status !== 'ok') {
        out.push(`<text x="${LABEL_W + 4}" y="${y + 12}" class="na">${esc(cell?.note ?? 'n/a')}</text>`)
      } else {
        const r = range(cell.samples.map((s) => s.rps))
        const w = Math.max(1, (r.median / max) * BAR_W)
        const cpu = median(cell.samples.map((s) => s.cpuUsPerReq))
        out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${colorOf(c.scenario)}"/>`)
        if (r.max > r.min) {
          const x1 = LABEL_W + (r.min / max) * BAR_W
          const x2 = LABEL_W + (r.max / max) * BAR_W
          out.push(`<line x1="${x1.toFixed(1)}" x2="${x2.toFixed(1)}" y1="${y + BAR_H / 2}" y2="${y + BAR_H / 2}" class="whisker"/>`)
        }
        const text = `${fmtInt(r.median)} req/s · ${cpu === null ? '–' : cpu.toFixed(0)} µs CPU/req`
        out.push(`<text x="${LABEL_W + BAR_W + 10}" y="${y + 12}" class="value">${esc(text)}</text>`)
      }
      y += BAR_H + GAP
    }
    y += 10
  }
  const height = y + 30
  const m = run.meta
  const subtitle = `${m.cpu}, ${m.cores} cores; Node.js ${m.node}; ${m.connections} connections; median of ${m.rounds} round(s) of ${m.duration} s, min–max as a line${m.quick ? '; QUICK SMOKE RUN' : ''}`
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    '<style>.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#555}.group{font-size:13px;font-weight:bold}' +
      '.label,.value{font-size:12px}.na{font-size:12px;fill:#999;font-style:italic}.whisker{stroke:#000;stroke-width:1.5}</style>',
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    '<text x="10" y="22" class="title">fastify-user-sessions vs peers: requests per second (higher is better)</text>',
    `<text x="10" y="40" class="sub">${esc(subtitle)}</text>`,
    ...out,
    `<rect x="10" y="${height - 22}" width="12" height="12" fill="${COLORS.ours}"/><text x="28" y="${height - 12}" class="label">ours</text>`,
    `<rect x="80" y="${height - 22}" width="12" height="12" fill="${COLORS.peer}"/><text x="98" y="${height - 12}" class="label">peers</text>`,
    `<rect x="150" y="${height - 22}" width="12" height="12" fill="${COLORS.bare}"/><text x="168" y="${height - 12}" class="label">bare Fastify</text>`,
    '</svg>',
    ''
  ].join('\n')
}

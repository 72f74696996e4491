// Where Redis Cluster puts a key.

/** CRC16/XMODEM, as Redis Cluster hashes keys to its 16384 slots. */
const CRC_TABLE = new Uint16Array(256)
for (let i = 0; i < 256; i++) {
  let crc = i << 8
  for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1
  CRC_TABLE[i] = crc & 0xffff
}

/** The slot of `key`: of its hash tag, the part within its first non-empty `{…}`, when it has one. */
export function keySlot (key: string): number {
  const open = key.indexOf('{')
  const close = open === -1 ? -1 : key.indexOf('}', open + 1)
  const hashed = close > open + 1 ? key.slice(open + 1, close) : key
  let crc = 0
  for (const byte of Buffer.from(hashed, 'utf8')) crc = ((crc << 8) ^ (CRC_TABLE[((crc >> 8) ^ byte) & 0xff] as number)) & 0xffff
  return crc & 16383
}

// A small PNG decoder (node's zlib, no dependency) for checking screenshots: what Chromium
// writes, 8-bit grey, grey+alpha, RGB or RGBA, not interlaced. Anything else is refused with a
// clear error rather than misread.

import zlib from 'node:zlib';

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Bytes per pixel of each PNG colour type at 8 bits per sample. */
const CHANNELS = { 0: 1, 2: 3, 4: 2, 6: 4 };

/**
 * Decodes a PNG file's bytes into `{width, height, channels, data}`: `data` holds the rows top
 * to bottom, `channels` bytes per pixel, filters undone. Throws on anything it cannot read.
 */
export function decodePng(bytes) {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG (bad signature)');
  let header = null;
  const idat = [];
  let off = 8;
  while (off + 8 <= bytes.length) {
    const len = bytes.readUInt32BE(off);
    const type = bytes.toString('latin1', off + 4, off + 8);
    const body = bytes.subarray(off + 8, off + 8 + len);
    if (body.length !== len) throw new Error(`PNG chunk ${type} is cut short`);
    if (type === 'IHDR') {
      header = {
        width: body.readUInt32BE(0),
        height: body.readUInt32BE(4),
        depth: body[8],
        colourType: body[9],
        interlace: body[12],
      };
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      break;
    }
    off += 12 + len;
  }
  if (!header) throw new Error('PNG without a header (IHDR)');
  const { width, height, depth, colourType, interlace } = header;
  const channels = CHANNELS[colourType];
  if (depth !== 8 || !channels || interlace !== 0) {
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, not ${height} rows of ${stride}`);
  const data = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) unfilterRow(raw, data, y, stride, channels);
  return { width, height, channels, data };
}

/** Undoes row `y`'s filter (None, Sub, Up, Average, Paeth) from `raw` into `out`. */
function unfilterRow(raw, out, y, stride, bpp) {
  const filter = raw[y * (stride + 1)];
  const src = y * (stride + 1) + 1;
  const dst = y * stride;
  const up = dst - stride;
  for (let x = 0; x < stride; x++) {
    const a = x >= bpp ? out[dst + x - bpp] : 0;
    const b = y > 0 ? out[up + x] : 0;
    const c = x >= bpp && y > 0 ? out[up + x - bpp] : 0;
    let predictor;
    switch (filter) {
      case 0:
        predictor = 0;
        break;
      case 1:
        predictor = a;
        break;
      case 2:
        predictor = b;
        break;
      case 3:
        predictor = (a + b) >> 1;
        break;
      case 4:
        predictor = paeth(a, b, c);
        break;
      default:
        throw new Error(`bad PNG filter ${filter} on row ${y}`);
    }
    out[dst + x] = (raw[src + x] + predictor) & 0xff;
  }
}

function paeth(a, b, c) {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * How many distinct colours (alpha ignored) the image has inside `rect` ({x, y, width, height}
 * in pixels, clipped to the image; the whole image by default).
 */
export function distinctColours(img, rect = { x: 0, y: 0, width: img.width, height: img.height }) {
  const x0 = Math.max(0, Math.floor(rect.x));
  const y0 = Math.max(0, Math.floor(rect.y));
  const x1 = Math.min(img.width, Math.ceil(rect.x + rect.width));
  const y1 = Math.min(img.height, Math.ceil(rect.y + rect.height));
  const colour = img.channels >= 3 ? (i) => (img.data[i] << 16) | (img.data[i + 1] << 8) | img.data[i + 2] : (i) => img.data[i];
  const seen = new Set();
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) seen.add(colour((y * img.width + x) * img.channels));
  }
  return seen.size;
}

// Drawing results: the mask blended over the image, the legend with pixel shares, score bars.

import { palette, pixelShares } from './labels.js';

/** Draw `bitmap` on `canvas` at its own size, then blend class colours over non-background pixels. */
export function drawOverlay(canvas, bitmap, result, id2label, alpha) {
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  if (result?.kind !== 'segmentation' || result.width !== bitmap.width || result.height !== bitmap.height) return;
  const colours = palette(Object.keys(id2label).length);
  const background = new Set(Object.entries(id2label).filter(([, n]) => n.toLowerCase() === 'background').map(([i]) => Number(i)));
  const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const data = pixels.data;
  const { labelMap } = result;
  for (let i = 0; i < labelMap.length; i++) {
    const id = labelMap[i];
    if (background.has(id)) continue;
    const [r, g, b] = colours[id];
    const o = i * 4;
    data[o] = data[o] * (1 - alpha) + r * alpha;
    data[o + 1] = data[o + 1] * (1 - alpha) + g * alpha;
    data[o + 2] = data[o + 2] * (1 - alpha) + b * alpha;
  }
  ctx.putImageData(pixels, 0, 0);
}

/** Legend rows for a segmentation: colour, label, share of the image's pixels; largest first. */
export function renderLegend(list, result, id2label) {
  const colours = palette(Object.keys(id2label).length);
  list.replaceChildren(...pixelShares(result.labelMap, id2label).map(({ id, label, share }) => {
    const item = document.createElement('li');
    item.dataset.classId = String(id);
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = `rgb(${colours[id].join(',')})`;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label;
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(share * 100).toFixed(1)} %`;
    item.append(swatch, name, value);
    return item;
  }));
}

/** One bar per class score, highest first; the top class is marked. */
export function renderScores(list, result) {
  const sorted = [...result.scores].sort((a, b) => b.score - a.score);
  list.replaceChildren(...sorted.map(({ label, score }, rank) => {
    const item = document.createElement('li');
    item.className = rank === 0 ? 'bar top' : 'bar';
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = label;
    const track = document.createElement('span');
    track.className = 'track';
    const fill = document.createElement('span');
    fill.className = 'fill';
    fill.style.width = `${(score * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement('span');
    value.className = 'value';
    value.textContent = `${(score * 100).toFixed(1)} %`;
    item.append(name, track, value);
    return item;
  }));
}

/** The timing panel: a list of [term, value] pairs. */
export function renderTiming(list, rows) {
  list.replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    return [dt, dd];
  }));
}

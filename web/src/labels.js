// Shared by the page and the Node script: transformers.js results -> edgeforge-comparable results.

/** edgeforge variant name (manifest.json) -> transformers.js `dtype` that loads the same file. */
export const DTYPE_OF_VARIANT = Object.freeze({
  fp32: 'fp32',
  fp16: 'fp16',
  quantized: 'q8', // transformers.js calls model_quantized.onnx "q8"
  q8: 'q8',
  int8: 'int8',
  uint8: 'uint8',
  q4: 'q4',
});

/** config.json's id2label inverted: label name -> class id. */
export function label2id(config) {
  return Object.fromEntries(Object.entries(config.id2label).map(([id, name]) => [name, Number(id)]));
}

/**
 * The image-segmentation pipeline returns one binary mask per label present (already at the image's
 * size); a pixel belongs to exactly one mask, so the label map is rebuilt by writing each mask's id.
 * Returns {labelMap: Uint8Array (row-major, height*width), width, height}.
 */
export function labelMapFromSegments(segments, ids) {
  if (segments.length === 0) throw new Error('the segmentation pipeline returned no masks');
  const { width, height } = segments[0].mask;
  const labelMap = new Uint8Array(width * height);
  const covered = new Uint8Array(width * height);
  for (const { label, mask } of segments) {
    const id = ids[label];
    if (id === undefined) throw new Error(`the pipeline returned label ${JSON.stringify(label)}, not in config.json`);
    if (id > 255) throw new Error(`class id ${id} does not fit the 8-bit label map`);
    if (mask.channels !== 1) throw new Error(`expected single-channel masks, got ${mask.channels} channels`);
    const data = mask.data;
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== 0) {
        labelMap[i] = id;
        covered[i] += 1;
      }
    }
  }
  const uncovered = covered.reduce((n, c) => n + (c !== 1 ? 1 : 0), 0);
  if (uncovered) throw new Error(`${uncovered} pixels are in no mask or in several: not a semantic segmentation`);
  return { labelMap, width, height };
}

/** Fraction of pixels per class id present, largest first: [{id, label, share}]. */
export function pixelShares(labelMap, id2label) {
  const counts = new Map();
  for (const id of labelMap) counts.set(id, (counts.get(id) ?? 0) + 1);
  return [...counts.entries()]
    .map(([id, count]) => ({ id, label: id2label[id], share: count / labelMap.length }))
    .sort((a, b) => b.share - a.share);
}

/** Distinct, stable colours per class id: the PASCAL VOC scheme, as edgeforge.runtime.postprocess.palette. */
export function palette(numClasses) {
  const colours = [];
  for (let classId = 0; classId < numClasses; classId++) {
    let value = classId, r = 0, g = 0, b = 0;
    for (let bit = 0; bit < 8; bit++) {
      r |= ((value >> 0) & 1) << (7 - bit);
      g |= ((value >> 1) & 1) << (7 - bit);
      b |= ((value >> 2) & 1) << (7 - bit);
      value >>= 3;
    }
    colours.push([r, g, b]);
  }
  return colours;
}

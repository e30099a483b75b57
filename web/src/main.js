// The demo page: choose a model and precision, pick or drop an image, see the result and its timing.
// `document.body.dataset.state` (starting / ready / running / done / error) and `window.edgeforge`
// let an automated browser follow the page the way a person reads the status line.

import { backendDescription, configureLocalOnly, LoadedModel, MODELS_PATH } from './inference.js';
import { drawOverlay, renderLegend, renderScores, renderTiming } from './render.js';

const ui = Object.fromEntries(
  ['model', 'dtype', 'file', 'drop', 'alpha', 'rerun', 'status', 'view', 'caption', 'legend', 'legend-title', 'timing']
    .map((id) => [id, document.getElementById(id)]),
);

const page = {
  models: [], // from /models/index.json
  loaded: null, // LoadedModel
  image: null, // {blob, bitmap, name}
  result: null,
  inferTimes: [], // this model + precision + image: whole pipeline calls
  sessionTimes: [], // the same runs: the ONNX Runtime session alone
};

function medianOf(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function setState(state, message) {
  document.body.dataset.state = state;
  ui.status.textContent = message;
  ui.status.className = state;
}

function setBusy(busy) {
  for (const control of [ui.model, ui.dtype, ui.file, ui.rerun]) control.disabled = busy;
  ui.rerun.disabled = busy || !page.image;
}

function currentModel() {
  return page.models.find((m) => m.name === ui.model.value);
}

function fillDtypes(preferred) {
  const info = currentModel();
  ui.dtype.replaceChildren(...info.variants.map((v) => {
    const option = new Option(`${v.variant} (${(v.bytes / 1e6).toFixed(1)} MB)`, v.dtype);
    option.dataset.variant = v.variant;
    return option;
  }));
  if (preferred && info.variants.some((v) => v.dtype === preferred)) ui.dtype.value = preferred;
}

async function loadModelList() {
  const response = await fetch(`${MODELS_PATH}index.json`, { cache: 'no-store' });
  if (!response.ok) {
    throw new Error(`cannot read ${MODELS_PATH}index.json (HTTP ${response.status}): serve this page with edgeforge serve-web`);
  }
  const { models } = await response.json();
  if (!models.length) throw new Error('the server lists no model with a variant transformers.js can load');
  return models;
}

async function ensureLoaded(info, dtype) {
  if (page.loaded && page.loaded.info.name === info.name && page.loaded.dtype === dtype) return page.loaded;
  if (page.loaded) await page.loaded.dispose();
  page.loaded = null;
  setState('running', `Loading ${info.name} (${dtype})…`);
  page.loaded = await LoadedModel.load(info, dtype);
  return page.loaded;
}

async function run() {
  if (!page.image) return;
  const info = currentModel();
  const dtype = ui.dtype.value;
  setBusy(true);
  setState('running', `Working on ${page.image.name}…`);
  try {
    const model = await ensureLoaded(info, dtype);
    setState('running', `Running ${info.name} (${dtype}) on ${page.image.name}…`);
    const result = await model.predict(page.image.blob);
    page.result = { ...result, model: info.name, dtype, variant: ui.dtype.selectedOptions[0].dataset.variant };
    page.inferTimes.push(result.inferMs);
    page.sessionTimes.push(result.sessionMs);
    show();
    setState('done', `${info.name} (${dtype}): ${result.inferMs.toFixed(0)} ms`);
  } catch (error) {
    console.error(error);
    setState('error', `Error: ${error.message ?? error}`);
  } finally {
    setBusy(false);
    document.body.dataset.runs = String(Number(document.body.dataset.runs ?? 0) + 1);
  }
}

function show() {
  const info = currentModel();
  const { result, image, loaded } = page;
  drawOverlay(ui.view, image.bitmap, result, info.id2label, Number(ui.alpha.value));
  ui.caption.textContent = `${image.name}, ${image.bitmap.width}×${image.bitmap.height}`;
  if (!result) return;
  ui.alpha.closest('label').hidden = result.kind !== 'segmentation';
  if (result.kind === 'segmentation') {
    ui['legend-title'].textContent = 'Classes (share of pixels)';
    ui.legend.className = 'legend';
    renderLegend(ui.legend, result, info.id2label);
  } else {
    ui['legend-title'].textContent = 'Scores';
    ui.legend.className = 'legend bars';
    renderScores(ui.legend, result);
  }
  const runs = page.inferTimes.length;
  renderTiming(ui.timing, [
    ['inference', `${result.inferMs.toFixed(0)} ms (model ${result.sessionMs.toFixed(0)} ms + pre/post-processing)`],
    [`median of ${runs} run${runs === 1 ? '' : 's'}`,
      `${medianOf(page.inferTimes).toFixed(0)} ms (model ${medianOf(page.sessionTimes).toFixed(0)} ms)`],
    ['model load', `${loaded.loadMs.toFixed(0)} ms`],
    ['runtime', backendDescription()],
  ]);
}

async function useImage(file) {
  if (!file) return;
  if (!file.type.startsWith('image/')) {
    setState('error', `Error: ${file.name} is not an image`);
    return;
  }
  try {
    page.image = { blob: file, bitmap: await createImageBitmap(file), name: file.name };
  } catch {
    setState('error', `Error: ${file.name} cannot be decoded as an image`);
    return;
  }
  page.result = null;
  page.inferTimes = [];
  page.sessionTimes = [];
  await run();
}

function onSelectionChanged() {
  page.inferTimes = [];
  page.sessionTimes = [];
  if (page.image) run();
}

function wireControls() {
  ui.model.addEventListener('change', () => {
    fillDtypes(ui.dtype.value);
    onSelectionChanged();
  });
  ui.dtype.addEventListener('change', onSelectionChanged);
  ui.file.addEventListener('change', () => useImage(ui.file.files[0]));
  ui.rerun.addEventListener('click', run);
  ui.alpha.addEventListener('input', () => page.image && show());
  for (const event of ['dragenter', 'dragover']) {
    ui.drop.addEventListener(event, (e) => {
      e.preventDefault();
      ui.drop.classList.add('over');
    });
  }
  ui.drop.addEventListener('dragleave', () => ui.drop.classList.remove('over'));
  ui.drop.addEventListener('drop', (e) => {
    e.preventDefault();
    ui.drop.classList.remove('over');
    useImage(e.dataTransfer.files[0]);
  });
}

function base64Of(bytes) {
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

// For automated browsers: the last result in JSON-friendly form.
window.edgeforge = {
  last: () => page.result && {
    model: page.result.model,
    dtype: page.result.dtype,
    variant: page.result.variant,
    kind: page.result.kind,
    width: page.result.width,
    height: page.result.height,
    scores: page.result.scores,
    inferMs: page.result.inferMs,
    inferTimes: [...page.inferTimes],
    sessionTimes: [...page.sessionTimes],
    loadMs: page.loaded?.loadMs,
    runtime: backendDescription(),
  },
  labelMapBase64: () => (page.result?.labelMap ? base64Of(page.result.labelMap) : null),
  /** The picture shown (image + overlay), RGBA row-major at the image's size. */
  canvasBase64: () => {
    const { width, height } = ui.view;
    return base64Of(new Uint8Array(ui.view.getContext('2d').getImageData(0, 0, width, height).data.buffer));
  },
};

async function start() {
  configureLocalOnly();
  page.models = await loadModelList();
  const params = new URLSearchParams(location.search);
  ui.model.replaceChildren(...page.models.map((m) => new Option(`${m.name} (${m.task})`, m.name)));
  if (page.models.some((m) => m.name === params.get('model'))) ui.model.value = params.get('model');
  fillDtypes(params.get('dtype') ?? 'fp32');
  wireControls();
  setBusy(false);
  setState('ready', 'Pick or drop an image.');
}

start().catch((error) => {
  console.error(error);
  setState('error', `Error: ${error.message ?? error}`);
});

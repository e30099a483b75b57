// transformers.js set up to run only local files: the artifacts under /models/ and the ONNX Runtime
// WebAssembly build bundled with this page. Nothing is fetched from a CDN or the Hugging Face hub.

import { env, pipeline, RawImage } from '@huggingface/transformers';
// Emitted by Vite into dist/assets/: served by `edgeforge serve-web` with the page.
import ortWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import ortFactoryUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url';

import { label2id, labelMapFromSegments } from './labels.js';
import { timeSessionRuns } from './timing.js';

export const MODELS_PATH = '/models/';

/** Point transformers.js at the local artifacts and the local ONNX Runtime files (call once, first). */
export function configureLocalOnly(modelsPath = MODELS_PATH) {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = modelsPath;
  env.useBrowserCache = false; // a rebuilt artifact must be fetched again, not served from Cache Storage
  env.backends.onnx.wasm.wasmPaths = { wasm: new URL(ortWasmUrl, location.href).href, mjs: new URL(ortFactoryUrl, location.href).href };
}

export function backendDescription() {
  const wasm = env.backends.onnx.wasm;
  const threads = wasm.numThreads || (crossOriginIsolated ? Math.min(4, Math.ceil((navigator.hardwareConcurrency || 1) / 2)) : 1);
  return `transformers.js ${env.version}, onnxruntime-web ${env.backends.onnx.versions?.web ?? '?'} (WebAssembly, ${threads} thread${threads === 1 ? '' : 's'})`;
}

/** One loaded (model, dtype) pipeline with the model's labels. */
export class LoadedModel {
  constructor(info, dtype, classifier, loadMs) {
    Object.assign(this, { info, dtype, classifier, loadMs });
    this.ids = label2id({ id2label: info.id2label });
    this.lastSessionMs = timeSessionRuns(classifier);
  }

  static async load(info, dtype) {
    const started = performance.now();
    const classifier = await pipeline(info.pipeline, info.name, { dtype, device: 'wasm' });
    return new LoadedModel(info, dtype, classifier, performance.now() - started);
  }

  /** Predict one image (a Blob); returns {kind, inferMs (whole pipeline call), sessionMs (the ONNX Runtime
   * session alone), ...} with a label map or class scores. */
  async predict(blob) {
    const image = await RawImage.read(blob);
    const started = performance.now();
    const output = this.info.pipeline === 'image-segmentation'
      ? await this.classifier(image) // SegformerImageProcessor resolves to the 'semantic' subtask
      : await this.classifier(image, { top_k: null });
    const inferMs = performance.now() - started;
    const sessionMs = this.lastSessionMs();
    if (this.info.pipeline === 'image-segmentation') {
      return { kind: 'segmentation', inferMs, sessionMs, ...labelMapFromSegments(output, this.ids) };
    }
    return { kind: 'classification', inferMs, sessionMs, scores: output.map(({ label, score }) => ({ label, score })) };
  }

  async dispose() {
    await this.classifier.dispose();
  }
}

#!/usr/bin/env node
// Run an edgeforge artifact directory with transformers.js in Node (onnxruntime-node), unchanged.
//
//   node web/node/predict.mjs ARTIFACT_DIR --dtype fp32,q8 --out results.json [--target-size WxH] IMAGE [IMAGE ...]
//
// --target-size asks the segmentation pipeline for label maps of that size instead of the image's
// (its `target_sizes` option): it isolates the logits upsampling from the image resizing.
// Writes one JSON record per (dtype, image): the label map (base64 of a uint8 row-major array) for
// segmentation, every class score for classification, and load / inference times. The Python tests
// compare these records with edgeforge's own runtime on the same files.

import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { env, pipeline } from '@huggingface/transformers';

import { label2id, labelMapFromSegments } from '../src/labels.js';
import { timeSessionRuns } from '../src/timing.js';

const PIPELINE_OF_ARCHITECTURE = [
  [/ForSemanticSegmentation$/, 'image-segmentation'],
  [/ForImageClassification$/, 'image-classification'],
];

function usage(message) {
  console.error(`predict.mjs: error: ${message}`);
  console.error('usage: node predict.mjs ARTIFACT_DIR --dtype fp32[,fp16,q8,...] --out FILE.json IMAGE [IMAGE ...]');
  process.exit(2);
}

function taskOf(config) {
  for (const architecture of config.architectures ?? []) {
    for (const [pattern, task] of PIPELINE_OF_ARCHITECTURE) if (pattern.test(architecture)) return task;
  }
  throw new Error(`no transformers.js pipeline for architectures ${JSON.stringify(config.architectures)}`);
}

async function runDtype(task, modelDir, dtype, images, ids, targetSize) {
  const started = performance.now();
  const classifier = await pipeline(task, modelDir, { dtype, device: 'cpu' });
  const loadMs = performance.now() - started;
  const lastSessionMs = timeSessionRuns(classifier);
  const records = [];
  for (const image of images) {
    const begin = performance.now();
    const output = task === 'image-segmentation'
      ? await classifier(image, targetSize ? { target_sizes: [targetSize] } : {}) // resolves to 'semantic'
      : await classifier(image, { top_k: null });
    const inferMs = performance.now() - begin;
    const record = { dtype, image, load_ms: loadMs, infer_ms: inferMs, session_ms: lastSessionMs() };
    if (task === 'image-segmentation') {
      const { labelMap, width, height } = labelMapFromSegments(output, ids);
      Object.assign(record, { width, height, label_map: Buffer.from(labelMap).toString('base64') });
    } else {
      record.scores = Object.fromEntries(output.map(({ label, score }) => [label, score]));
    }
    records.push(record);
  }
  await classifier.dispose();
  return records;
}

async function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dtype: { type: 'string', default: 'fp32' },
      out: { type: 'string' },
      'target-size': { type: 'string' },
    },
  });
  if (positionals.length < 2) usage('need an artifact directory and at least one image');
  if (!values.out) usage('--out is required');
  const [artifact, ...images] = positionals.map((p) => path.resolve(p));
  let targetSize = null; // [height, width], the pipeline's order
  if (values['target-size']) {
    const match = /^(\d+)x(\d+)$/.exec(values['target-size']);
    if (!match) usage(`--target-size must be WIDTHxHEIGHT, got ${values['target-size']}`);
    targetSize = [Number(match[2]), Number(match[1])];
  }

  // Local files only: the artifact directory is the model; nothing is fetched or cached elsewhere.
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;

  const config = JSON.parse(await readFile(path.join(artifact, 'config.json'), 'utf8'));
  const task = taskOf(config);
  const ids = label2id(config);
  const records = [];
  for (const dtype of values.dtype.split(',').filter(Boolean)) {
    records.push(...(await runDtype(task, artifact, dtype, images, ids, targetSize)));
  }
  await writeFile(values.out, JSON.stringify({ library: env.version, task, records }));
}

main().catch((error) => {
  console.error(`predict.mjs: error: ${error?.stack ?? error}`);
  process.exit(1);
});

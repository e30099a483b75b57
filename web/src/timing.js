// How long the ONNX Runtime session itself takes inside a transformers.js pipeline call, apart from the
// pipeline's pre- and post-processing (which for small models can cost more than the model).

/**
 * Wrap the pipeline's InferenceSession `run` (an instance method of onnxruntime's public API) to record
 * its duration; the pipeline's behaviour is unchanged. Returns a function giving the last duration in ms.
 */
export function timeSessionRuns(classifier) {
  const session = classifier.model.sessions.model;
  const run = session.run.bind(session);
  let lastMs = null;
  session.run = async (...args) => {
    const started = performance.now();
    try {
      return await run(...args);
    } finally {
      lastMs = performance.now() - started;
    }
  };
  return () => lastMs;
}

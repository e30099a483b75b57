"""How precisions are made: recipes (``recipes``), the ONNX quantizers and their dispatch (``registry``),
the accuracy-budget search (``budget``), drift (``drift``), calibration images (``calibration``) and Core ML
weight compression (``coreml``). The stage that runs them over an artifact is ``edgeforge.stages.quantize``;
which target offers which precision is in ``edgeforge.targets``.

Importing this package stays light (no onnx, onnxruntime.quantization or coremltools).
"""

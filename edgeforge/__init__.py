"""edgeforge: Hugging Face vision checkpoints -> measured edge/mobile artifacts.

Data flows one way: checkpoint (``zoo``) -> ``export`` -> ``quantize`` -> ``benchmarks``.
``edgeforge.runtime`` is the embeddable side: numpy + onnxruntime + Pillow only.
"""

__version__ = "0.1.0"

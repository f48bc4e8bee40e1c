"""mcu_effnet.models: float and Brevitas quant EfficientNets built from one ``ArchSpec``.

``build_float(spec)``, ``fold_batchnorm(model)`` and ``build_quant(spec)``; the quant model
has the folded float model's module names so its weights load with ``strict=False``.
"""

from mcu_effnet.models.float_model import build_float, fold_batchnorm
from mcu_effnet.models.quant_model import build_quant

__all__ = ["build_float", "build_quant", "fold_batchnorm"]

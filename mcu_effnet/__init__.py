"""mcu-effnet: tiny compound-scaled EfficientNets, QAT to int8 TFLite, bit-exact C for Cortex-M."""

__version__ = "0.1.0"

"""mcu_effnet.sim: numpy int8 kernels bit-exact with TFLite Micro, and ``run(graph, x)`` (see docs/ARCHITECTURE.md)."""

from mcu_effnet.sim.graph_runner import run

__all__ = ["run"]

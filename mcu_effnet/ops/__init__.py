"""mcu_effnet.ops: one module per op family, each holding what TFLite Micro's Prepare does for it.

For every op kind a family module gives its structural checks (run by the loader), a
``prepare(graph, op)`` returning a frozen ``...Params`` dataclass — the op's quantized
arithmetic parameters as the C kernel's struct takes them (multipliers, shifts, offsets,
folded bias, activation clamp, padding) — and its MAC count. Tensor shapes are not repeated
in a Params: the simulator and the engine read them from the tensors. The simulator's numpy
kernels (``mcu_effnet.sim.kernels``) evaluate a Params; the engine (``mcu_effnet.codegen.engine``)
writes one into C. ``registry`` dispatches by op kind; ``common`` holds the shared Prepare
arithmetic and ``checks`` the shared checks. Nothing here imports the simulator or codegen.
"""

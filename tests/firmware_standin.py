"""A stand-in model for platform tests: a tiny deterministic int8 function in C and numpy.

It lets the firmware platform (startup, semihosting, counters, harness, Makefile, runner) be
tested on its own, without the generated engine. It is never shipped in a project.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcu_effnet.graph.ir import Graph, Tensor

INPUT_SHAPE = (1, 4, 4, 2)
OUTPUT_SHAPE = (1, 8)

MODEL_H = """#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef int8_t model_input_t;
typedef int8_t model_output_t;
#define MODEL_INPUT_SIZE 32u
#define MODEL_OUTPUT_SIZE 8u
#define MODEL_ARENA_SIZE 64u
int model_invoke(const model_input_t *input, model_output_t *output);
#ifdef __cplusplus
}
#endif
#endif
"""

# out[j] = clamp((sum_i in[4j+i] * (j+1) + 2) >> 2), computed in an arena placed in ".arena".
MODEL_C = """#include "model.h"

static int32_t arena[MODEL_ARENA_SIZE / 4u] __attribute__((section(".arena"), aligned(16)));

int model_invoke(const int8_t *input, int8_t *output)
{
    for (uint32_t j = 0; j < MODEL_OUTPUT_SIZE; ++j) {
        int32_t acc = 0;
        for (uint32_t i = 0; i < 4u; ++i) {
            acc += (int32_t)input[4u * j + i] * (int32_t)(j + 1u);
        }
        arena[j] = (acc + 2) >> 2;
    }
    for (uint32_t j = 0; j < MODEL_OUTPUT_SIZE; ++j) {
        int32_t v = arena[j];
        output[j] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
    return 0;
}
"""


def simulate(graph: Graph, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.int32).reshape(x.shape[0], 8, 4)
    acc = x.sum(axis=2) * np.arange(1, 9, dtype=np.int32)
    return np.clip((acc + 2) >> 2, -128, 127).astype(np.int8)


def graph() -> Graph:
    tensors = [
        Tensor(0, "input", INPUT_SHAPE, "int8", np.array([0.1], np.float32), np.array([0])),
        Tensor(1, "output", OUTPUT_SHAPE, "int8", np.array([0.1], np.float32), np.array([0])),
    ]
    return Graph(tensors=tensors, ops=[], inputs=[0], outputs=[1], name="standin")


@dataclass
class StandinEngine:
    files: dict[str, str] = field(default_factory=lambda: {"model.h": MODEL_H, "model.c": MODEL_C})
    arena_bytes: int = 64
    weights_bytes: int = 0
    layers: list = field(
        default_factory=lambda: [{"op": "STANDIN", "output_shape": [1, 8], "macs": 32, "live_bytes": 64}]
    )
    plan: object = None

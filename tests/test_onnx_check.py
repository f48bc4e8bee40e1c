"""The QCDQ ONNX export's acceptance rule (``onnx_export.export_agrees``): rounding flips pass,
a wrong export does not."""

from __future__ import annotations

import numpy as np
import pytest

from mcu_effnet.quant.onnx_export import MAX_LSB, export_agrees

# Measured on the demo's model (full phi -1, 128 px, 64 validation images): 40 exact, the others
# 1-4 LSB but for two images that compounded to 10 and 11; same top-1 on all 64.
DEMO_128PX = [0.0] * 40 + [1.0] * 6 + [2.0] * 10 + [3.0] * 3 + [4.0, 4.0, 6.0, 10.0, 11.0]


def _agrees(lsb: list[float]) -> bool:
    values = np.asarray(lsb)
    return export_agrees(values, values == 0.0)


def test_rounding_flips_of_a_deep_network_pass():
    assert len(DEMO_128PX) == 64 and max(DEMO_128PX) > MAX_LSB  # the case the old max rule refused
    assert _agrees(DEMO_128PX)
    assert _agrees([0.0] * 64)
    # a default digits run (phi -4, 32 px, seed 1, 30 float epochs): one image compounded to 10 LSB
    assert _agrees([0.0] * 63 + [10.0])


@pytest.mark.parametrize(
    "lsb",
    [
        [0.0] * 20 + [3.0] * 44,  # most images off: a wrong scale or padding
        [0.0] * 32 + [40.0] * 32,  # half exact, the others far off: a wrong branch or layout
        [0.0] * 31 + [1.0] * 33,  # fewer than half exact
        [0.0] * 59 + [40.0] * 5,  # more than one image in 16 far off: not rare flips
    ],
)
def test_a_wrong_export_is_refused(lsb):
    assert not _agrees(lsb)

"""``python -m mcu_effnet.cli`` (what ``torchrun -m mcu_effnet.cli qat ...`` starts)."""

from mcu_effnet.cli import run

run()

#!/usr/bin/env bash
# The main job end to end on the built-in data: scale -> qat (+ int8 .tflite) -> codegen -> run in QEMU.
# A short training run (a few minutes on 2 CPU cores); real runs take --data and more epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
MCU=.venv/bin/mcu-effnet
PY=.venv/bin/python
export PYTHONWARNINGS=ignore  # Brevitas/torch deprecation chatter; errors still show

echo "== 1/4 compound scaling, phi -1, fitted to the default board (stm32 = stm32f746g-disco) =="
$MCU scale --phi -1 --classes 10   # the built-in set has 10 classes
echo

echo "== 2/4 quantization-aware training on the built-in synthetic set (short demo schedule) =="
$MCU qat --phi -1 --epochs 3 --qat-epochs 1 --max-train-images 2000 --max-val-images 300 \
    --batch-size 32 --lr 5e-3 --no-progress
echo

echo "== 3/4 firmware for stm32 from the newest run (runs/latest/model.tflite) =="
$MCU codegen --board stm32
echo

echo "== 4/4 build, run in QEMU, compare with the host simulator =="
$MCU run firmware/stm32
echo

$PY - <<'EOF'
import json
from pathlib import Path

metrics = json.loads((Path("runs/latest") / "metrics.json").read_text())
report = json.loads(Path("firmware/stm32/report.json").read_text())
kib = lambda n: f"{n / 1024:,.1f} KiB"
recipe = metrics.get("recipe", {})
exported = metrics.get("exported", {})
rows = [
    ("recipe", f"hflip {recipe.get('hflip')}, crop scale {recipe.get('crop_scale')}, augment "
               f"{recipe.get('augment')}, EMA {recipe.get('ema')}"),
    *((f"exported {phase} weights", f"{e['weights']} of epoch {e['epoch']}") for phase, e in exported.items()),
    ("float top-1 (PyTorch)", f"{metrics['float_top1']:.2f}%"),
    ("QAT top-1 (Brevitas fake-quant)", f"{metrics['qat_top1']:.2f}%"),
    ("int8 top-1 (.tflite in TFLite Micro)", f"{metrics['int8_top1']:.2f}%"),
    ("flash (ELF text+data) / board", f"{kib(report['flash_bytes'])} / {kib(report['board_flash_bytes'])}"),
    ("RAM (ELF data+bss) / board", f"{kib(report['ram_bytes'])} / {kib(report['board_ram_bytes'])}"),
    ("  of which model arena", kib(report["model_ram_bytes"])),
    ("instructions per inference (QEMU)", f"{report['instructions_per_inference']:,}"),
    ("bit-exact with the host simulator", "yes" if report.get("bit_exact") else "NO"),
]
width = max(len(k) for k, _ in rows)
print(f"== demo summary: {report['model']} on {report['board']} (built-in synthetic data) ==")
for key, value in rows:
    print(f"{key:<{width}}  {value}")
EOF

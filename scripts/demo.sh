#!/usr/bin/env bash
# The main job end to end on the built-in data, as far as the pipeline goes.
set -euo pipefail
cd "$(dirname "$0")/.."
MCU=.venv/bin/mcu-effnet

echo "== compound scaling, fitted to the default board (stm32f746g-disco) =="
$MCU scale --phi -1
echo
echo "== the board catalog =="
$MCU boards

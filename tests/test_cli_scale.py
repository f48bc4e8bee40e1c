"""``mcu-effnet scale`` and ``mcu-effnet boards`` through the installed command."""

from __future__ import annotations

import json

import pytest

from mcu_effnet.arch import make_spec
from mcu_effnet.boards import board_names

TOP_KEYS = {
    "phi",
    "alpha",
    "beta",
    "gamma",
    "depth_mult",
    "width_mult",
    "resolution_mult",
    "resolution",
    "params",
    "macs",
    "stages",
}
STAGE_KEYS = {
    "stage",
    "operator",
    "kernel",
    "stride",
    "resolution",
    "channels",
    "layers",
    "scaled_resolution",
    "scaled_channels",
    "scaled_layers",
}
FIT_KEYS = {
    "resolution",
    "width_mult",
    "peak_activation_bytes",
    "weight_bytes",
    "sram_bytes",
    "flash_bytes",
} | {
    "arena_bytes",
    "ram_bytes",
    "code_bytes",
    "flash_needed_bytes",
    "firmware_flash_bytes",
    "reserve_ram_bytes",
    "reserve_flash_bytes",
    "instructions",
    "latency_ms",
    "max_ms",
}


def test_scale_json_worked_example(cli):
    result = cli("scale", "--phi", "7", "--gamma", "1.1", "--board", "none", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == TOP_KEYS
    assert [s["stage"] for s in doc["stages"]] == list(range(1, 10))
    assert all(set(s) == STAGE_KEYS for s in doc["stages"])
    s4 = doc["stages"][3]
    assert (round(s4["scaled_resolution"]), round(s4["scaled_channels"]), round(s4["scaled_layers"])) == (
        109,
        78,
        7,
    )
    # built: 437 px input, SAME strides 437 -> 219 -> 219 -> 110; 77.9 -> 80 channels; ceil(7.17) = 8
    assert doc["resolution"] == 437
    assert (s4["resolution"], s4["channels"], s4["layers"]) == (110, 80, 8)
    assert doc["resolution_mult"] == pytest.approx(1.1**7) and doc["depth_mult"] == pytest.approx(1.2**7)


def test_scale_json_with_board(cli):
    result = cli("scale", "--phi", "-1", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == TOP_KEYS | {"board", "fit"}
    assert doc["board"] == "stm32f746g-disco" and set(doc["fit"]) == FIT_KEYS
    fit = doc["fit"]
    assert fit["ram_bytes"] <= fit["sram_bytes"] and fit["firmware_flash_bytes"] <= fit["flash_bytes"]
    assert fit["arena_bytes"] < fit["peak_activation_bytes"]  # planned below the analytic estimate
    spec = make_spec(-1)
    assert doc["resolution"] == fit["resolution"] == spec.resolution < round(224 / 1.15)
    assert (doc["params"], doc["macs"]) == (spec.params, spec.macs)
    assert doc["width_mult"] == pytest.approx(1 / 1.1) and fit["width_mult"] < doc["width_mult"]
    assert doc["stages"][0]["resolution"] == fit["resolution"]


def test_scale_table(cli):
    result = cli("scale", "--phi", "-1", "--classes", "10")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "fitted to stm32f746g-disco" in out and "MBConv6" in out and "Conv1x1 & Pooling & FC" in out
    spec = make_spec(-1, classes=10)
    assert f"{spec.params:,}" in out and f"{spec.peak_activation_bytes:,} B" in out
    assert "195x195" in out  # the compound-scaled (unfitted) input beside the fitted one
    # estimated vs planned RAM, the firmware's flash and the latency at the board's clock
    fit = spec.fit
    assert (
        f"planned RAM        {fit.ram_bytes:,} B" in out
        and f"estimated {spec.peak_activation_bytes:,} B" in out
    )
    assert f"firmware flash     {fit.firmware_flash_bytes:,} B" in out and "instructions, not cycles" in out


def test_scale_reserves_and_latency_budget(cli):
    result = cli(
        "scale", "--phi", "-1", "--classes", "10", "--reserve-ram", "64K", "--reserve-flash", "128K", "--json"
    )
    assert result.returncode == 0, result.stderr
    fit = json.loads(result.stdout)["fit"]
    assert (fit["reserve_ram_bytes"], fit["reserve_flash_bytes"]) == (64 * 1024, 128 * 1024)
    assert fit["sram_bytes"] == 256 * 1024 and fit["flash_bytes"] == 896 * 1024
    result = cli("scale", "--phi", "-1", "--classes", "10", "--max-ms", "0.01")
    assert result.returncode == 2 and result.stdout == ""
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("mcu-effnet: error: --max-ms 0.01: no spec meets it")
    assert "the fastest, 16 px" in err and " ms" in err


@pytest.mark.parametrize(
    "args,names",
    [
        (["--phi", "-1", "--alpha", "1"], "--alpha"),
        (["--phi", "-1", "--gamma", "0.9"], "--gamma"),
        (["--phi", "-1", "--classes", "2.5"], "--classes"),
        (["--phi", "-1", "--classes", "ten"], "--classes"),
        (["--phi", "-1", "--classes", "1"], "--classes"),
        (["--phi", "-20", "--board", "none"], "--phi"),
        (["--phi", "-16", "--board", "none"], "--phi"),
        (["--phi", "-1", "--resolution", "12"], "--resolution"),
        (["--phi", "-1", "--board", "esp32"], "--board"),
        (["--phi", "-1", "--reserve-ram", "1M"], "--reserve-ram"),
        (["--phi", "-1", "--reserve-flash", "1M"], "--reserve-flash"),
        (["--phi", "-1", "--reserve-flash", "lots"], "--reserve-flash"),
        (["--phi", "-1", "--max-ms", "0"], "--max-ms"),
        (["--phi", "x"], "--phi"),
        ([], "--phi"),
    ],
)
def test_bad_input_one_line_exit_2(cli, args, names):
    result = cli("scale", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mcu-effnet: error: ")
    assert names in lines[0]
    assert result.stdout == ""


def test_boards_verb(cli):
    result = cli("boards")
    assert result.returncode == 0, result.stderr
    for name in board_names():
        assert name in result.stdout
    assert "mps2-an505" in result.stdout and "netduinoplus2" in result.stdout
    doc = json.loads(cli("boards", "--json").stdout)
    assert [b["name"] for b in doc] == board_names()
    stm32 = doc[0]
    assert stm32["aliases"] == ["stm32"] and stm32["largest_sram_region"]["size"] == 320 * 1024
    assert stm32["emulator"]["machine"] == "mps2-an500"


def test_spec_from_args_classes_from_data():
    import argparse

    from mcu_effnet.cli.spec_options import add_spec_options, spec_from_args
    from mcu_effnet.errors import UserError

    parser = argparse.ArgumentParser()
    add_spec_options(parser)
    assert spec_from_args(parser.parse_args(["--phi", "-4"])).classes == 1000
    assert spec_from_args(parser.parse_args(["--phi", "-4"]), classes=10).classes == 10
    assert spec_from_args(parser.parse_args(["--phi", "-4", "--classes", "10"]), classes=10).classes == 10
    with pytest.raises(UserError, match="--classes 5"):
        spec_from_args(parser.parse_args(["--phi", "-4", "--classes", "5"]), classes=10)
    spec = spec_from_args(
        parser.parse_args(["--phi", "-4", "--board", "none", "--width", "0.5", "--depth", "1"])
    )
    assert (spec.fit, spec.width_mult, spec.depth_mult) == (None, 0.5, 1.0)


def test_library_errors_speak_of_values_the_cli_of_flags(cli):
    from mcu_effnet.errors import UserError

    with pytest.raises(UserError) as info:
        make_spec(-1, resolution=12, board=None)
    assert str(info.value) == "resolution 12 is below the minimum of 16 px"
    result = cli("scale", "--phi", "-1", "--resolution", "12", "--board", "none")
    assert result.stderr.strip() == "mcu-effnet: error: --resolution 12 is below the minimum of 16 px"


def test_flag_message_leaves_paths_and_quoted_values_alone():
    from mcu_effnet.cli import flag_message
    from mcu_effnet.errors import UserError

    exc = UserError("runs/board: board 'board' is unknown; known boards: stm32", options=("board",))
    assert flag_message(exc) == "runs/board: --board 'board' is unknown; known boards: stm32"
    exc = UserError("epochs and qat_epochs are both 0", options=("epochs", "qat_epochs"))
    assert flag_message(exc) == "--epochs and --qat-epochs are both 0"

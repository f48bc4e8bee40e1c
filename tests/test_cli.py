"""The command line itself: help, version, unknown verbs."""


def test_help_lists_verbs(cli):
    result = cli("--help")
    assert result.returncode == 0
    assert "scale" in result.stdout


def test_version(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("mcu-effnet ")


def test_no_verb_exits_2(cli):
    assert cli().returncode == 2


def test_unknown_verb_exits_2(cli):
    result = cli("frobnicate")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`mcu-effnet boards | head -1`: no BrokenPipeError traceback on stderr."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "mcu_effnet.cli", "scale", "--phi", "-1", "--board", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away before the table is written out
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipe" not in err

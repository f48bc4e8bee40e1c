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

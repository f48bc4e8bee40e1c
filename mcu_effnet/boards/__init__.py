"""The board catalog (adding a board: docs/ARCHITECTURE.md): ``get_board(name)``, ``BOARDS``, ``board_names()``.

Pure data; never imports torch.
"""

from __future__ import annotations

from mcu_effnet.boards.catalog import BOARDS, Board, Emulator, MemoryRegion
from mcu_effnet.errors import UserError

__all__ = ["BOARDS", "Board", "Emulator", "MemoryRegion", "board_names", "get_board", "resolve_name"]

_BY_NAME: dict[str, Board] = {}
for _b in BOARDS:
    for _n in (_b.name, *_b.aliases):
        _BY_NAME[_n] = _b


def board_names(with_aliases: bool = False) -> list[str]:
    names = [b.name for b in BOARDS]
    return names + [a for b in BOARDS for a in b.aliases] if with_aliases else names


def get_board(name: str) -> Board:
    """The board called ``name`` (or one of its aliases, e.g. ``stm32``), case-insensitive."""
    board = _BY_NAME.get(str(name).strip().lower())
    if board is None:
        known = ", ".join(board_names(with_aliases=True))
        raise UserError(f"board {name!r} is unknown; known boards: {known}, none", options=("board",))
    return board


def resolve_name(name: str) -> str:
    """The canonical name of a board or alias."""
    return get_board(name).name

"""Small, checked helpers that turn Python values into C99 tokens for the templates.

Templates own the structure of the generated C; these helpers only format values:
integer literals, array bodies, and identifiers made safe for C.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

# C99 keywords (6.4.1) plus the names our generated files already use.
C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if
    inline int long register restrict return short signed sizeof static struct switch typedef union
    unsigned void volatile while _Bool _Complex _Imaginary""".split()
)
RESERVED = C_KEYWORDS | {"input", "output", "arena", "main", "model_invoke", "NULL"}

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1


def c_identifier(name: str, prefix: str = "") -> str:
    """A valid, unreserved C identifier derived from ``name`` (with ``prefix`` in front).

    >>> c_identifier("conv2d/weights:0")
    'conv2d_weights_0'
    >>> c_identifier("1x1", prefix="t_")
    't_1x1'
    >>> c_identifier("int")
    'int_'
    >>> c_identifier("__secret")
    'x__secret'
    >>> c_identifier("")
    'x'
    """
    text = re.sub(r"[^0-9A-Za-z_]", "_", prefix + name)
    if not text or text[0].isdigit():
        text = "x" + text
    if text.startswith("__") or (text[0] == "_" and len(text) > 1 and text[1].isupper()):
        text = "x" + text  # reserved for the implementation (C99 7.1.3)
    if text in RESERVED:
        text += "_"
    return text


def c_int(value: int) -> str:
    """An int32 literal; INT32_MIN is spelt as an expression (its digits alone overflow int).

    >>> c_int(-5), c_int(2147483647), c_int(-2147483648)
    ('-5', '2147483647', '(-2147483647 - 1)')
    >>> c_int(2**31)
    Traceback (most recent call last):
        ...
    ValueError: 2147483648 does not fit int32_t
    """
    value = int(value)
    if not INT32_MIN <= value <= INT32_MAX:
        raise ValueError(f"{value} does not fit int32_t")
    return "(-2147483647 - 1)" if value == INT32_MIN else str(value)


def c_array_body(values: Iterable[int] | np.ndarray, per_line: int = 16, indent: str = "    ") -> str:
    """The inside of a C array initializer: integers, ``per_line`` to a line, each line indented.

    >>> print(c_array_body([1, -2, 3], per_line=2))
        1, -2,
        3
    >>> c_array_body([])
    '    0'
    """
    flat = [
        c_int(v)
        for v in np.asarray(list(values) if not isinstance(values, np.ndarray) else values).reshape(-1)
    ]
    if not flat:
        return indent + "0"  # C forbids empty initializers; callers size such arrays 1
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join(indent + line for line in lines)


def c_float_array_body(values: np.ndarray, per_line: int = 8, indent: str = "    ") -> str:
    """A float32 array initializer in C99 hexadecimal literals (exact, whatever the compiler).

    >>> print(c_float_array_body(np.array([0.5, -0.1], np.float32)))
        0x1.0000000000000p-1f, -0x1.99999a0000000p-4f
    """
    flat = [f"{float(v).hex()}f" for v in np.asarray(values, dtype=np.float32).reshape(-1)]
    if not flat:
        return indent + "0"
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join(indent + line for line in lines)


def c_int64_array_body(values: np.ndarray, per_line: int = 8, indent: str = "    ") -> str:
    """``c_array_body`` for an ``int64_t`` array: every value as ``INT64_C(v)`` (stdint.h), the
    minimum as an expression.

    >>> print(c_int64_array_body(np.array([5, -(2**40)])))
        INT64_C(5), INT64_C(-1099511627776)
    """
    flat = [
        "(-INT64_C(9223372036854775807) - 1)" if int(v) == -(2**63) else f"INT64_C({int(v)})"
        for v in np.asarray(values).reshape(-1)
    ]
    if not flat:
        return indent + "0"
    lines = [", ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return ",\n".join(indent + line for line in lines)


def c_int_list(values: Iterable[int]) -> str:
    """A brace-enclosed initializer on one line.

    >>> c_int_list([1, 1, 8, 16])
    '{1, 1, 8, 16}'
    """
    return "{" + ", ".join(c_int(v) for v in values) + "}"


def c_comment(text: str) -> str:
    """Text safe inside a ``/* */`` comment (no comment terminators, one line).

    >>> c_comment("a */ b\\nc")
    'a * / b c'
    """
    return " ".join(str(text).replace("*/", "* /").split())


def c_comment_lines(text: str, prefix: str = " * ") -> str:
    """Multi-line text for the inside of a ``/* */`` block, each line prefixed, layout kept.

    >>> print(c_comment_lines("a  b\\nc */ d"))
     * a  b
     * c * / d
    """
    return "\n".join((prefix + line.replace("*/", "* /")).rstrip() for line in str(text).splitlines())

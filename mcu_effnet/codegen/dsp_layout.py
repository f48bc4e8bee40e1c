"""Weight layouts for the DSP-extension kernels (``ek_conv_dsp.h``): depthwise and k x k conv.

The DSP kernels multiply signed halfwords (SMLABB / SMLATT / SMLAD). The depthwise weights stay
int8, regrouped so that a tap of four channels is one aligned word (SXTB16 widens them at run
time: widening here would double their flash, which tips large models off 1 MB parts); the
k x k convolution's are widened here, once, and packed two to a word in the order its inner
loop consumes them (twice the flash of int8 weights: 1x1 convolutions and fully connected
layers take that kernel only up to ``WIDE_1X1_MAX_WEIGHTS``, see ``widen_1x1``).

The kernels add the input offset to each input value while widening it (SXTAB16) and skip
taps in the padding, so they take the op's own bias rather than the folded one the plain
kernels use (``engine._folded_bias``): the accumulator is TFLite Micro's reference sum. The
k x k weights and bias are doubled (2w still fits a halfword): that kernel then accumulates
2 * acc, the very operand the requantization's SMMULR needs (exact while |acc| < 2^30,
``requant_ok``); the depthwise kernel doubles its accumulators itself. The first-layer kernel
(1 to 3 input channels, ``takes_first_kernel``) is the exception: it widens raw bytes, so its
doubled bias has the input offset folded in, and its window is one run padded once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONV_KERNEL = "ek_conv2d_dsp"
NARROW_1X1_KERNEL = "ek_conv2d_1x1_narrow_dsp"  # 1x1 over a shallow input (ek_conv_narrow_dsp.c)
NARROW_MAX_DEPTH = 12  # EK_CONV_NARROW_MAX_DEPTH (deeper inputs amortize the k x k gather)
FIRST_KERNEL = "ek_conv2d_first_dsp"  # k x k over 1 to 3 input channels (ek_conv_first_dsp.c)
FIRST_MAX_DEPTH = 3
FIRST_MAX_WINDOW = 256  # EK_CONV_FIRST_MAX_WINDOW (ek_conv_first_dsp.h): window values, bytes on its stack
CONV_MAX_WINDOW = 1152  # EK_CONV_DSP_MAX_WINDOW (ek_conv_dsp.h): halfwords on the kernel's stack
CONV_STEP = 4  # window values per step of the k x k kernel's inner loop
CONV_STRUCT = "ek_conv_dsp_params"  # the kernels' parameter structs (ek_conv_dsp.h)
DEPTHWISE_STRUCT = "ek_depthwise_dsp_params"
DEPTHWISE_KERNEL = "ek_depthwise_conv2d_dsp"
DEPTHWISE_IN_PLACE_KERNEL = "ek_depthwise_conv2d_in_place_dsp"
CHANNEL_GROUP = 4  # channels per inner-loop step of the depthwise kernel


# The DSP kernels' requantization (ek_requant_dsp.h) takes SMMULR of 2 * acc, which must fit int32.
ACC_LIMIT = 2**30


@dataclass(frozen=True)
class DspConvLayout:
    """What the engine swaps in for one CONV_2D / DEPTHWISE_CONV_2D on a DSP core."""

    kernel: str
    struct: str  # its parameters' C type
    in_place_kernel: str | None  # depthwise over its dying input (the planner's scratch ring)
    weights: np.ndarray  # int32 words, the C array behind `weights`
    bias: np.ndarray  # int32: the op's own bias (input offset NOT folded in), doubled for k x k
    shift: np.ndarray  # int32: -shift - 1 per channel (the kernels' rounding, see requant_ok)
    note: str  # for the C comment
    records: np.ndarray | None = None  # k x k: bias, multiplier, shift together (group_records)


def requant_ok(shift: np.ndarray, acc_bound: np.ndarray) -> bool:
    """Whether the DSP kernels' requantization is exact for this op.

    It needs every TFLite shift <= -1 (a real multiplier below 0.5, the usual case for
    convolutions) and every accumulator below 2^30 in magnitude (SMMULR on 2 * acc); otherwise
    the engine keeps the plain kernel.
    """
    shift = np.asarray(shift, np.int64)
    return bool(shift.size and shift.max() <= -1 and np.asarray(acc_bound).max(initial=0) < ACC_LIMIT)


def accumulator_bound(weights_per_channel: np.ndarray, bias: np.ndarray, in_offset: int) -> np.ndarray:
    """max |bias + sum((x + in_offset) * w)| per channel over int8 inputs x (rows: channels)."""
    x_max = max(abs(-128 + in_offset), abs(127 + in_offset))
    w = np.abs(np.asarray(weights_per_channel, np.int64)).sum(axis=1)
    return np.abs(np.asarray(bias, np.int64)) + w * x_max


def pack_halfwords(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """int32 words holding ``low`` in bits 0-15 and ``high`` in bits 16-31 (both int16 values).

    >>> [hex(v) for v in pack_halfwords(np.array([1, -1]), np.array([-2, 3])).view(np.uint32)]
    ['0xfffe0001', '0x3ffff']
    """
    lo = np.asarray(low, np.int64) & 0xFFFF
    hi = np.asarray(high, np.int64) & 0xFFFF
    return (lo | (hi << 16)).astype(np.uint32).view(np.int32)


def depthwise_weights(weights: np.ndarray) -> np.ndarray:
    """DEPTHWISE_CONV_2D weights (1, kh, kw, C) -> words [group of 4 channels][tap].

    A tap's word holds the group's four int8 weights, channel c0 in the low byte: SXTB16 gives
    (c0, c2) and SXTB16 of its rotation by 8 bits (c1, c3), the lanes of an input word. The
    weights stay 8-bit (the same flash as the plain kernel's, plus the last group's padding
    channels, which are zero).
    """
    w = np.asarray(weights, np.int64)
    _, kh, kw, channels = w.shape
    taps = kh * kw
    groups = -(-channels // CHANNEL_GROUP)
    padded = np.zeros((taps, groups * CHANNEL_GROUP), np.int64)
    padded[:, :channels] = w.reshape(taps, channels)
    per_group = padded.reshape(taps, groups, CHANNEL_GROUP).transpose(1, 0, 2) & 0xFF  # group, tap, 4
    words = per_group[..., 0] | per_group[..., 1] << 8 | per_group[..., 2] << 16 | per_group[..., 3] << 24
    return words.astype(np.uint32).view(np.int32).reshape(-1)


def depthwise_layout(
    weights: np.ndarray, bias: np.ndarray, depth_multiplier: int, shift: np.ndarray, in_offset: int
) -> DspConvLayout | None:
    """The DSP depthwise, or None to keep the plain kernel (multiplier > 1, see requant_ok).

    ``weights`` (1, kh, kw, C), ``bias`` the op's own (zeros without one), ``shift`` TFLite's
    per-channel shifts, ``in_offset`` minus the input zero point.
    """
    w = np.asarray(weights, np.int64)
    channels = w.shape[-1]
    per_channel = w.reshape(-1, channels).T
    if depth_multiplier != 1 or not requant_ok(shift, accumulator_bound(per_channel, bias, in_offset)):
        return None
    return DspConvLayout(
        kernel=DEPTHWISE_KERNEL,
        struct=DEPTHWISE_STRUCT,
        in_place_kernel=DEPTHWISE_IN_PLACE_KERNEL,
        weights=depthwise_weights(w),
        bias=np.asarray(bias, np.int64).astype(np.int32),
        shift=(-np.asarray(shift, np.int64) - 1).astype(np.int32),
        note="int8 weights, a word per group of 4 channels and tap",
    )


def conv_weights(weights: np.ndarray, group: int = CHANNEL_GROUP) -> np.ndarray:
    """CONV_2D weights (O, kh, kw, I) -> words [group of 4 output channels][step][8].

    The window holds kh rows of kw * I values (OHWI order), each row padded with zeros to a
    multiple of 4 (a first layer's rows are then read a word at a time). A step covers window
    values k..k+3: the kernel reads them as the words (x[k], x[k+2]) and (x[k+1], x[k+3]), so
    the step's eight words are output channels 0..3 of the group as (2 w[k], 2 w[k+2]), then as
    (2 w[k+1], 2 w[k+3]) (low, high halfwords). Output channels past O are zero. ``group``:
    channels a group (the FULLY_CONNECTED kernel's pairs take 2).
    """
    w = np.asarray(weights, np.int64)
    out_c, kh, kw, in_c = w.shape
    groups = -(-out_c // group)
    run = kw * in_c
    run4 = -(-run // CONV_STEP) * CONV_STEP
    padded = np.zeros((groups * group, kh, run4), np.int64)
    padded[:out_c, :, :run] = 2 * w.reshape(out_c, kh, run)
    steps = kh * run4 // CONV_STEP
    # value k = 4 * step + 2 * hi + word: (group, channel, step, hi, word) -> (group, step, word, channel, hi)
    grid = padded.reshape(groups, group, steps, 2, 2).transpose(0, 2, 4, 1, 3)
    return pack_halfwords(grid[..., 0], grid[..., 1]).reshape(-1)


def takes_first_kernel(kh: int, kw: int, in_c: int, dil_w: int = 1) -> bool:
    """Whether a k x k CONV_2D takes the first-layer kernel: 1 to 3 input channels (rows too short
    to pad each to 4 without waste), a window that fits its buffers and no horizontal dilation
    (it widens each window row as one run of input bytes)."""
    return kh * kw > 1 and in_c <= FIRST_MAX_DEPTH and kh * kw * in_c <= FIRST_MAX_WINDOW and dil_w == 1


def conv_window(kh: int, kw: int, in_c: int) -> int:
    """Halfwords of the k x k kernel's window buffer: kh rows of kw * in_c, each padded to 4."""
    return kh * -(-(kw * in_c) // CONV_STEP) * CONV_STEP


# A 1x1 CONV_2D (and a FULLY_CONNECTED, a 1x1 conv over its rows) takes widened weights when its
# depth fills whole steps of four and its weights are small enough that doubling them keeps the
# flash of models with wide layers (MobileNets' 256 x 256) below TFLite Micro + CMSIS-NN's: up to
# a depth of 12 the narrow kernel (ek_conv_narrow_dsp.c, the input in registers), deeper the
# k x k kernel (about 0.8 instead of 1.2 instructions per MAC); the others keep the int8
# pointwise kernel (ek_pointwise_dsp.c), whose per-pixel work is re-done per channel pair.
# One or two output channels of a 1x1 CONV_2D keep int8 weights too: the k x k kernel would pad
# them to a group of four and run twice the multiply-accumulates.
# A FULLY_CONNECTED whose depth is a multiple of 16 takes its own kernels instead (``fc_kernel``,
# ``takes_fc_kernel``, ``fc_layout``): units in quads, then pairs, none padded to four, or two
# units widening the input as they read it.
WIDE_1X1_MIN_DEPTH = 4
WIDE_1X1_MIN_CHANNELS = 3
WIDE_1X1_MAX_WEIGHTS = 16384  # int8 weights (bytes) of one layer


def widen_1x1(in_c: int, out_c: int) -> bool:
    """Whether a 1x1 CONV_2D or FULLY_CONNECTED with this depth and output channels takes the
    k x k kernel."""
    return (
        in_c % CONV_STEP == 0
        and in_c >= WIDE_1X1_MIN_DEPTH
        and out_c >= WIDE_1X1_MIN_CHANNELS
        and in_c * out_c <= WIDE_1X1_MAX_WEIGHTS
    )


FC_KERNEL = "ek_fully_connected_wide_dsp"  # ek_conv_dsp.c
FC_STRUCT = "ek_fc_wide_dsp_params"  # ek_conv_dsp.h
FC_MAX_DEPTH = 1152  # EK_FC_WIDE_MAX_DEPTH: the widened row's halfwords on the kernel's stack
FC_DEPTH_STEP = 16  # depth values a widening block and a pass of its four steps (no computed entry)
FC_PAIR = 2  # the units of its last groups


def takes_fc_kernel(depth: int, units: int) -> bool:
    """Whether a FULLY_CONNECTED takes ``FC_KERNEL`` (when its widened weights fit the budget,
    ``engine._widen_within``): a depth in whole blocks of 16 within its stack buffer, and int8
    weights within ``WIDE_1X1_MAX_WEIGHTS``, any number of units."""
    return (
        depth % FC_DEPTH_STEP == 0
        and FC_DEPTH_STEP <= depth <= FC_MAX_DEPTH
        and units >= 1
        and depth * units <= WIDE_1X1_MAX_WEIGHTS
    )


FC_PAIR_KERNEL = "ek_fully_connected_pair_dsp"  # two units: the input widened as read (ek_conv_dsp.c)
FC_PAIR_DEPTH_STEP = 64  # EK_FC_PAIR_DEPTH_STEP: depth values a pass of its loop


def fc_kernel(depth: int, units: int) -> str:
    """Which of the two FULLY_CONNECTED kernels (``takes_fc_kernel``): two units over a depth in
    blocks of 64 widen the input as they read it (``FC_PAIR_KERNEL``: VWW's 256 -> 2), the others
    widen each row once for all their groups (``FC_KERNEL``). The same struct and weights."""
    return FC_PAIR_KERNEL if units == FC_PAIR and depth % FC_PAIR_DEPTH_STEP == 0 else FC_KERNEL


def fc_groups(units: int) -> list[int]:
    """The units of each of ``FC_KERNEL``'s groups: quads, then pairs for the last 1 to 3 (the
    last pair half used when the units are odd).

    >>> fc_groups(10), fc_groups(7), fc_groups(1)
    ([4, 4, 2], [4, 2, 1], [1])
    """
    quads, rest = divmod(units, CHANNEL_GROUP)
    return [CHANNEL_GROUP] * quads + [FC_PAIR] * (rest // FC_PAIR) + [1] * (rest % FC_PAIR)


def fc_layout_bytes(depth: int, units: int) -> int:
    """Flash of ``fc_layout``'s weights and records: per group of n units (a single unit takes a
    pair's room) n * depth halfwords and 4 * n words."""
    room = sum(CHANNEL_GROUP if n == CHANNEL_GROUP else FC_PAIR for n in fc_groups(units))
    return room * depth * 2 + room * 4 * 4


def widening_extra_bytes(depth: int, units: int, fc: bool = False) -> int:
    """Flash a widened 1x1 CONV_2D / FULLY_CONNECTED (``widen_1x1``, or ``takes_fc_kernel`` with
    ``fc``) adds over its int8 form, an upper bound: int16 weights in groups of four units with
    16-word records (``conv_layout``), or ``FC_KERNEL``'s (``fc_layout_bytes``), against the
    pointwise kernel's int8 weights in unit pairs with six words a pair
    (``dsp_pointwise.pointwise_layout``). A depth up to NARROW_MAX_DEPTH takes 12-word records,
    16 bytes less a group. Counting only the doubled weights left the records out: 4 bytes a unit,
    which on the fitted phi -1 models overran the flash reserve by a kilobyte."""
    groups, pairs, blocks = -(-units // CHANNEL_GROUP), -(-units // 2), -(-depth // 4)
    wide = groups * CHANNEL_GROUP * depth * 2 + groups * 16 * 4 if widen_1x1(depth, units) or not fc else 0
    if fc and takes_fc_kernel(depth, units):  # or the k x k kernel, where its input is no arena buffer
        wide = max(wide, fc_layout_bytes(depth, units))
    narrow = pairs * 2 * blocks * 4 + pairs * 6 * 4
    return max(0, wide - narrow)


@dataclass(frozen=True)
class DspFcLayout:
    """``FC_KERNEL``'s weights and clamp constants for one FULLY_CONNECTED."""

    weights: np.ndarray  # int32 words: each group's run (fc_layout)
    sat4: int  # the clamp's bytes as int32 bit patterns (ek_fc_wide_dsp_params)
    shift4: int
    note: str  # for the C comment


def _int32_bits(value: int) -> int:
    return int(np.array([value & 0xFFFFFFFF], np.uint32).view(np.int32)[0])


def fc_layout(
    weights: np.ndarray,
    bias: np.ndarray,
    multiplier: np.ndarray,
    shift: np.ndarray,
    in_offset: int,
    out_offset: int,
    act_min: int,
    act_max: int,
) -> DspFcLayout | None:
    """``FC_KERNEL``'s layout, or None where its requantization would not be exact (``requant_ok``
    and ``constants_fit``, as ``conv_layout``). ``weights`` (units, depth), ``bias``
    the op's own, ``multiplier`` and ``shift`` per unit (TFLite's shifts). Per group (``fc_groups``,
    a single unit in a pair's room) one run: its biases, its steps' weight words (``conv_weights``
    of the group) and per unit multiplier, rounding constant and shift (``group_records_k``'s).
    The kernel widens raw input bytes, so the input offset goes into the (doubled) bias: the same
    accumulator, and |folded bias| stays within the accumulator's bound, below 2^30."""
    w = np.asarray(weights, np.int64)
    units, _ = w.shape
    bound = accumulator_bound(w, bias, in_offset)
    if not requant_ok(shift, bound):
        return None
    right_shift = -np.asarray(shift, np.int64) - 1
    constant = rounding_constants(right_shift, out_offset, act_min)
    if not constants_fit(constant, bound):
        return None
    bias2 = 2 * (np.asarray(bias, np.int64) + in_offset * w.sum(axis=1))
    runs, first = [], 0
    for n in fc_groups(units):
        room = CHANNEL_GROUP if n == CHANNEL_GROUP else FC_PAIR
        part = slice(first, first + n)
        records = group_records_k(bias2[part], multiplier[part], constant[part], right_shift[part], room)
        runs += [records[:room], conv_weights(w[part].reshape(n, 1, 1, -1), room), records[room:]]
        first += n
    sat = 255 - (act_max - act_min)
    return DspFcLayout(
        weights=np.concatenate(runs).astype(np.int32),
        sat4=_int32_bits(sat * 0x01010101),
        shift4=_int32_bits(((act_min - sat) & 0xFF) * 0x01010101),
        note="per quad, then pair, of units: biases, per step of 4 depth values (2w[k], 2w[k+2]), "
        "(2w[k+1], 2w[k+3]), then multiplier, constant, shift per unit",
    )


def group_records(bias: np.ndarray, multiplier: np.ndarray, right_shift: np.ndarray) -> np.ndarray:
    """int32 records of the k x k kernel, one per group of 4 output channels: the group's four
    biases, four multipliers, four shifts (channels past the last are zero). One pointer walks
    them, so the kernel's channel loop keeps its registers for the multiply-accumulates.

    >>> group_records(np.array([1, 2]), np.array([10, 20]), np.array([3, 4])).tolist()
    [1, 2, 0, 0, 10, 20, 0, 0, 3, 4, 0, 0]
    """
    channels = len(bias)
    groups = -(-channels // CHANNEL_GROUP)
    table = np.zeros((3, groups * CHANNEL_GROUP), np.int64)
    for row, values in enumerate((bias, multiplier, right_shift)):
        table[row, :channels] = values
    return table.reshape(3, groups, CHANNEL_GROUP).transpose(1, 0, 2).reshape(-1).astype(np.int32)


def rounding_constants(right_shift: np.ndarray, out_offset: int, act_min: int) -> np.ndarray:
    """int64 per channel: the k x k kernel's requantization constant (1 + 2 * (out_offset -
    act_min)) << s, s = -shift - 1: the rounding and the output offset (less act_min, the USAT's
    zero) shifted to where they join the accumulator (ek_conv_dsp.c requantize_k).

    >>> rounding_constants(np.array([0, 3]), out_offset=-5, act_min=-128).tolist()
    [247, 1976]
    """
    return (1 + 2 * (int(out_offset) - int(act_min))) << np.asarray(right_shift, np.int64)


def constants_fit(constant: np.ndarray, bound: np.ndarray) -> bool:
    """Whether requantize_k is exact with these ``rounding_constants``: the kernels add the
    constant to SMMULR's v (|v| <= |acc| <= ``bound``) less the sign correction, and the sum must
    fit int32 (a tiny multiplier, s above about 20, would not)."""
    return bool(np.max(np.abs(constant) + bound + 1, initial=0) < 2**31)


def group_records_k(
    bias: np.ndarray,
    multiplier: np.ndarray,
    constant: np.ndarray,
    right_shift: np.ndarray,
    group: int = CHANNEL_GROUP,
) -> np.ndarray:
    """int32 records of ``ek_conv2d_dsp``, 16 per group of 4 output channels: the four biases, then
    per channel its multiplier, rounding constant and shift (the order of its LDMs; channels past
    the last are zero). ``group``: channels a group (the FULLY_CONNECTED kernel's pairs take 2).

    >>> group_records_k(np.array([1, 2]), np.array([10, 20]), np.array([5, 6]), np.array([3, 4])).tolist()
    [1, 2, 0, 0, 10, 5, 3, 20, 6, 4, 0, 0, 0, 0, 0, 0]
    """
    channels = len(bias)
    groups = -(-channels // group)
    table = np.zeros((4, groups * group), np.int64)
    for row, values in enumerate((bias, multiplier, constant, right_shift)):
        table[row, :channels] = values
    t = table.reshape(4, groups, group)
    per_channel = t[1:].transpose(1, 2, 0).reshape(groups, 3 * group)  # m, k, s per channel
    return np.concatenate([t[0], per_channel], axis=1).reshape(-1).astype(np.int32)


def conv_layout(
    weights: np.ndarray,
    bias: np.ndarray,
    shift: np.ndarray,
    in_offset: int,
    multiplier: np.ndarray | None = None,
    chunked: bool = False,
    out_offset: int = 0,
    act_min: int = -128,
    dil_w: int = 1,
) -> DspConvLayout | None:
    """The DSP k x k CONV_2D, or None to keep the plain kernel (window too large for the
    kernel's stack buffer, see requant_ok). ``weights`` (O, kh, kw, I); ``bias`` the op's own;
    ``multiplier`` the per-channel multipliers (for the records; zeros when not given).
    ``chunked``: the layer runs a chunked mode (a view at a time, ``ek_chunks_dsp.h``), which
    the k x k kernel has and the narrow 1x1 and first-layer kernels do not; ``dil_w`` the
    horizontal dilation, which the first-layer kernel does not take."""
    w = np.asarray(weights, np.int64)
    per_channel = w.reshape(w.shape[0], -1)
    bound = accumulator_bound(per_channel, bias, in_offset)
    if conv_window(*w.shape[1:]) > CONV_MAX_WINDOW or not requant_ok(shift, bound):
        return None
    out_c, kh, kw, in_c = w.shape
    narrow = kh == kw == 1 and in_c % CONV_STEP == 0 and in_c <= NARROW_MAX_DEPTH and not chunked
    first = takes_first_kernel(kh, kw, in_c, dil_w) and not chunked
    right_shift = (-np.asarray(shift, np.int64) - 1).astype(np.int32)
    constant = rounding_constants(right_shift, out_offset, act_min)
    if not narrow and not constants_fit(constant, bound):
        return None
    # The first-layer kernel reads the window as one run of kh * kw * in_c values, padded once,
    # and widens raw input bytes: the input offset goes into its bias (padding taps hold the
    # input zero point there, which the folded offset cancels). |2 * folded| < 2^31 follows
    # from requant_ok's bound on the accumulator, which it starts.
    acc0 = np.asarray(bias, np.int64) + (in_offset * per_channel.sum(axis=1) if first else 0)
    bias2 = (2 * acc0).astype(np.int32)
    m = np.zeros(len(bias2), np.int64) if multiplier is None else np.asarray(multiplier, np.int64)
    if first:
        return DspConvLayout(
            kernel=FIRST_KERNEL,
            struct=CONV_STRUCT,
            in_place_kernel=None,
            weights=first_runs(w, bias2, m, constant, right_shift),
            bias=bias2,
            shift=right_shift,
            records=None,
            note="per group of 4 output channels: 4 biases, per step of 4 window values (2w[k], 2w[k+2]), "
            "(2w[k+1], 2w[k+3]), then multiplier, constant, shift per channel",
        )
    records = (
        group_records(bias2, m, right_shift) if narrow else group_records_k(bias2, m, constant, right_shift)
    )
    return DspConvLayout(
        kernel=NARROW_1X1_KERNEL if narrow else CONV_KERNEL,
        struct=CONV_STRUCT,
        in_place_kernel=None,
        weights=conv_weights(w),
        bias=bias2,
        shift=right_shift,
        records=records,
        note="per group of 4 output channels and step of 4 window values: (2w[k], 2w[k+2]), (2w[k+1], 2w[k+3])",
    )


def first_order(kh: int, kw: int, in_c: int) -> np.ndarray:
    """The first-layer kernel's window order, as indices into the OHWI window (kh rows of
    run = kw * in_c values): each row's values in whole words first (the kernel widens them
    from its band of input rows, one LDR a word), then every row's last run % 4 values back to
    back (staged as bytes, then widened). A 3x3 window over RGB (rows of 9) takes its rows' last
    values two rows at once (``widen_3x9``): rows 0 and 1 in the low and high halfwords of the
    last step's first word (slots 24 and 26), row 2 in the high one of its second (slot 27;
    slot 25, -1, a padding slot with a zero weight). The window, padded to a multiple of 4, is
    as long as the natural order's.

    >>> first_order(2, 3, 2).tolist()  # rows of 6: 4 from each row, then 2 from each
    [0, 1, 2, 3, 6, 7, 8, 9, 4, 5, 10, 11]
    >>> first_order(3, 3, 3)[24:].tolist()  # rows of 9: their last values 8, 17, 26
    [8, -1, 17, 26]
    """
    run = kw * in_c
    whole = run // CONV_STEP * CONV_STEP
    rows = np.arange(kh * run).reshape(kh, run)
    last = rows[:, whole:].reshape(-1)
    if (kh, run) == (3, 9):
        last = np.array([last[0], -1, last[1], last[2]])
    return np.concatenate([rows[:, :whole].reshape(-1), last])


def first_runs(
    weights: np.ndarray,
    bias2: np.ndarray,
    multiplier: np.ndarray,
    constant: np.ndarray,
    right_shift: np.ndarray,
) -> np.ndarray:
    """``FIRST_KERNEL``'s weights: one run per group of 4 output channels (the last padded with
    zeros), which one pointer of its assembly walks: the group's four (folded, doubled) biases,
    its weight words over the window as one run of kh * kw * in_c values padded once to a multiple
    of 4 (``conv_weights`` of a 1 x 1 x K window), then per channel the multiplier, the rounding
    constant and the shift (``group_records_k``'s). The window's values go in ``first_order``."""
    w = np.asarray(weights, np.int64)
    out_c = w.shape[0]
    groups = -(-out_c // CHANNEL_GROUP)
    order = first_order(*w.shape[1:])
    window = np.where(order >= 0, w.reshape(out_c, -1)[:, np.maximum(order, 0)], 0)
    steps = conv_weights(window.reshape(out_c, 1, 1, -1)).reshape(groups, -1)
    records = group_records_k(bias2, multiplier, constant, right_shift).reshape(groups, 16)
    return np.concatenate([records[:, :CHANNEL_GROUP], steps, records[:, CHANNEL_GROUP:]], axis=1).reshape(-1)

"""The engine's choice of a tiled segment (``mcu_effnet.graph.tiling``): which first layers run
band by band, in how many bands, bounded by the MACs they compute again.

Every prefix of every chain from the model input and every number of bands (up to
``MAX_TILES``) whose recomputation stays within ``max_recompute`` % of the model's MACs is
weighed by the bytes live while it runs. The lightest is fused and planned as the engine plans
any graph (order search, chunked modes); the rest of the model may hold the arena above it, so
the segment recomputing least among those that stay under that arena is planned too and taken
when its arena is no larger. Tiling is kept only when the arena drops by at least ``MIN_GAIN``.
"""

from __future__ import annotations

from collections.abc import Callable

from mcu_effnet.errors import UserError
from mcu_effnet.graph import tiling
from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.planner import ArenaPlan
from mcu_effnet.graph.tiling import Segment

MAX_TILES = 16
# Tiling costs instructions (the recomputed MACs, a kernel call per layer and band): it is kept
# only when it takes at least this share off the arena.
MIN_GAIN = 0.02


def check_max_recompute(max_recompute: float) -> None:
    if not 0 <= max_recompute <= 100:  # NaN too
        raise UserError(
            f"max_recompute {max_recompute:g} % is outside 0-100 % (the MACs tiling may compute again)",
            options=("max_recompute",),
        )


def candidates(graph: Graph, max_recompute: float) -> list[tuple[int, Segment]]:
    """(bytes live while it runs, segment) of every segment and band count within the budget."""
    budget = max_recompute / 100.0 * tiling.model_macs(graph)
    found = []
    for chain in tiling.chains(graph):
        for n in range(2, len(chain) + 1):
            if not tiling.closed(graph, chain[:n]):
                continue
            height = int(graph.tensors[chain[n - 1].outputs[0]].shape[1])
            feasible = False
            for tiles in range(2, min(height, MAX_TILES) + 1):
                seg = tiling.segment(graph, chain[:n], tiles)
                if seg.recomputed_macs <= budget:
                    feasible = True
                    found.append((_live_while_tiled(graph, seg), seg))
            if not feasible:
                break  # a longer chain has wider halos: it recomputes more
    return found


def _live_while_tiled(graph: Graph, seg: Segment) -> int:
    """Bytes live while the segment runs: its source, its output (over the source when it may be),
    the band buffers."""
    src, out = graph.tensors[seg.source].nbytes, graph.tensors[seg.output].nbytes
    return (max(src, out) if seg.overwrites_source else src + out) + seg.scratch_bytes


def choose(
    graph: Graph,
    untiled: tuple[Graph, list, ArenaPlan],
    plan_fused: Callable[[Graph], tuple[Graph, list, ArenaPlan]],
    max_recompute: float | None,
) -> tuple[Graph, list, ArenaPlan, Segment | None]:
    """``untiled``: (graph, fusions, plan) as the engine plans ``graph`` without tiling;
    ``plan_fused(g)`` plans a graph the same way. Returns the better of the two, and the segment
    when tiled; the plan's ``tiling`` records the segment and the arena and peak it lowered.
    ``max_recompute`` None: no tiling at all (0 still tiles where bands share no rows)."""
    base_graph, base_fusions, base = untiled
    if max_recompute is None:
        return base_graph, base_fusions, base, None
    check_max_recompute(max_recompute)
    found = candidates(graph, max_recompute)
    goal = base.arena_bytes * (1 - MIN_GAIN)
    if not found or min(live for live, _ in found) > goal:  # those bytes are live at once: no gain
        return base_graph, base_fusions, base, None
    # the fewest bytes while tiled; then, as the rest of the model bounds the arena too, the
    # fewest MACs recomputed among the segments under the arena that gives
    seg = min(found, key=lambda c: (c[0], c[1].recomputed_macs))[1]
    tiled_graph, fusions, plan = plan_fused(tiling.fuse(graph, seg))
    cheaper = min((c for c in found if c[0] <= plan.arena_bytes), key=lambda c: c[1].recomputed_macs)[1]
    if cheaper != seg:
        trial = plan_fused(tiling.fuse(graph, cheaper))
        if trial[2].arena_bytes <= plan.arena_bytes:
            seg, (tiled_graph, fusions, plan) = cheaper, trial
    if plan.arena_bytes > goal:
        return base_graph, base_fusions, base, None
    total = tiling.model_macs(graph)
    plan.tiling = {
        **seg.to_dict(),
        "model_macs": total,
        "recomputed_percent": 100.0 * seg.recomputed_macs / max(total, 1),
        "max_recompute": max_recompute,
        "peak_before": base.peak_bytes,
        "arena_before": base.arena_bytes,
    }
    return tiled_graph, fusions, plan, seg

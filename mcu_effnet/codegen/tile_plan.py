"""The engine's choice of a tiled segment (``mcu_effnet.graph.tiling``): which first layers run
band by band, in how many bands, bounded by the MACs they compute again.

Every prefix of every chain from the model input and every number of bands (up to
``MAX_TILES``) whose recomputation stays within ``max_recompute`` % of the model's MACs is
planned in the stored order; the one with the smallest arena (then the fewest MACs recomputed)
is fused and planned as the engine plans any graph (order search, chunked modes). It is kept
only when that arena is smaller than the one without tiling.
"""

from __future__ import annotations

from collections.abc import Callable

from mcu_effnet.errors import UserError
from mcu_effnet.graph import tiling
from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.planner import ArenaPlan, plan_arena
from mcu_effnet.graph.tiling import Segment

MAX_TILES = 16


def check_max_recompute(max_recompute: float) -> None:
    if not 0 <= max_recompute <= 100:
        raise UserError(
            f"max_recompute {max_recompute:g} % is outside 0-100 % (the MACs tiling may compute again)",
            options=("max_recompute",),
        )


def best_segment(graph: Graph, max_recompute: float) -> Segment | None:
    """The segment and band count with the smallest stored-order arena within the budget."""
    budget = max_recompute / 100.0 * tiling.model_macs(graph)
    best: tuple[tuple[int, int], Segment] | None = None
    for chain in tiling.chains(graph):
        for n in range(2, len(chain) + 1):
            if not tiling.closed(graph, chain[:n]):
                continue
            height = int(graph.tensors[chain[n - 1].outputs[0]].shape[1])
            feasible = False
            for tiles in range(2, min(height, MAX_TILES) + 1):
                seg = tiling.segment(graph, chain[:n], tiles)
                if seg.recomputed_macs > budget:
                    continue
                feasible = True
                plan = plan_arena(tiling.fuse(graph, seg))
                key = (plan.arena_bytes, seg.recomputed_macs)
                if best is None or key < best[0]:
                    best = (key, seg)
            if not feasible:
                break  # a longer chain has wider halos: it recomputes more
    return None if best is None else best[1]


def choose(
    graph: Graph,
    untiled: tuple[Graph, list, ArenaPlan],
    plan_fused: Callable[[Graph], tuple[Graph, list, ArenaPlan]],
    max_recompute: float,
) -> tuple[Graph, list, ArenaPlan, Segment | None]:
    """``untiled``: (graph, fusions, plan) as the engine plans ``graph`` without tiling;
    ``plan_fused(g)`` plans a graph the same way. Returns the better of the two, and the segment
    when tiled; the plan's ``tiling`` records the segment and the arena and peak it lowered."""
    check_max_recompute(max_recompute)
    base_graph, base_fusions, base = untiled
    seg = best_segment(graph, max_recompute)
    if seg is None:
        return base_graph, base_fusions, base, None
    tiled_graph, fusions, plan = plan_fused(tiling.fuse(graph, seg))
    if (plan.arena_bytes, plan.peak_bytes) >= (base.arena_bytes, base.peak_bytes):
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

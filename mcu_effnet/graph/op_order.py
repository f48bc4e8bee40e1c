"""The execution order: among the graph's topological orders, one that lowers the arena.

A ``.tflite`` stores its ops in one topological order. Any other topological order computes
the same values (each op still reads finished inputs), but keeps other tensors alive at once:
with two parallel branches, finishing one branch before starting the other frees its
intermediates early. ``plan_memory`` picks the order and plans the arena for it.

The cost of an order is the planner's peak of live bytes (``ArenaPlan.peak_bytes``): at each
step, the bytes of every arena buffer written before or at that step and read at or after it,
with the planner's own rules (reshape aliases share bytes; an op runs in place over an input
that dies there, which depends on the order; in-place depthwise adds its row scratch). That
cost depends only on which ops ran before, so:

- **exact search**: dynamic programming over the executed sets (down-sets of the DAG) level by
  level, each set keeping the lowest peak reaching it. Chains with residual and SE branches
  (EfficientNets) have about one set per level; graphs with parallel branches have more. When
  a level holds more than ``max_states`` sets the best ones (lowest peak, then fewest live
  bytes) are kept: a beam search, no longer exact (``Schedule.exact`` says which). A budget of
  steps evaluated (``BUDGET``) shrinks the sets kept on very wide graphs, so the search takes
  about a second at most;
- **greedy**: at each step the ready op that leaves the fewest live bytes (frees the most),
  ties to the lower peak at that step, then to the stored order.

The arena itself comes from first-fit placement, which the peak only bounds from below, so
``plan_memory`` plans the stored, the searched and the greedy order and keeps the smallest
arena among those whose peak is no higher than the stored order's (ties: the stored order).
"""

from __future__ import annotations

from dataclasses import dataclass

from mcu_effnet.graph.ir import Graph
from mcu_effnet.graph.planner import (
    ALIGNMENT,
    CONV_ADD,
    ArenaPlan,
    alias_roots,
    fixed_scratch_bytes,
    in_place_inputs,
    in_place_scratch_bytes,
    optional_in_place,
    plan_arena,
)

MAX_STATES = 2000  # executed sets kept per level of the search (beyond: beam search)
BUDGET = 400_000  # steps evaluated by one search, at most about (a few seconds)
MIN_STATES = 8  # sets kept per level however large the graph


@dataclass
class Schedule:
    order: list[int]  # op indices in execution order
    peak_bytes: int  # the planner's peak of live bytes for this order
    exact: bool  # the search kept every executed set (the peak is the lowest of any order)
    states: int  # executed sets visited


@dataclass
class _Group:
    """A block of bytes shared by aliased tensors, as the planner sees it before in-place merging."""

    size: int
    producer: int  # op position writing it first (-1: the model's input)
    users: int  # bitmask of the op positions reading or writing it after the producer
    output: bool  # a model output: live to the end
    arena: bool  # counted in the arena (not the caller's input or output buffer)


class _Costs:
    """The planner's liveness rules, as functions of the set of executed ops (a bitmask of
    positions in ``graph.ops``)."""

    def __init__(self, graph: Graph, in_place: bool, io_in_arena: bool):
        ops = graph.ops
        self.n = len(ops)
        roots, _ = alias_roots(graph, io_in_arena)
        pos_of = {op.index: pos for pos, op in enumerate(ops)}
        ins, outs = set(graph.inputs), set(graph.outputs)
        members: dict[int, list[int]] = {}
        for t, r in roots.items():
            members.setdefault(r, []).append(t)
        writers: dict[int, list[int]] = {r: [] for r in members}
        readers: dict[int, list[int]] = {r: [] for r in members}
        for pos, op in enumerate(ops):
            for t in op.outputs:
                if t in roots:
                    writers[roots[t]].append(pos)
            for t in op.inputs:
                if t in roots:
                    readers[roots[t]].append(pos)
        self.groups: dict[int, _Group] = {}
        for r, ts in members.items():
            is_input = any(t in ins for t in ts)
            is_output = any(t in outs for t in ts)
            arena = io_in_arena or not (is_input or is_output)
            # the first writer in any order: the root's producer (the others are aliasing RESHAPEs)
            producer = -1 if is_input else (min(writers[r], default=-1))
            users = 0
            for p in (*writers[r], *readers[r]):
                if p != producer:
                    users |= 1 << p
            size = max(graph.tensors[t].nbytes for t in ts)
            self.groups[r] = _Group(size, producer, users, is_output, arena)
        self.roots = roots
        # per op: groups it writes first (new bytes), groups it touches (may die at it)
        self.new: list[list[int]] = [[] for _ in ops]
        self.touched: list[set[int]] = [set() for _ in ops]
        for r, g in self.groups.items():
            if g.producer >= 0:
                self.new[g.producer].append(r)
            for p in range(self.n):
                if g.users >> p & 1:
                    self.touched[p].add(r)
        # in-place candidates per op: (input group, output group, scratch bytes)
        self.in_place: list[list[tuple[int, int, int]]] = [[] for _ in ops]
        self.fixed_scratch = [fixed_scratch_bytes(graph, op) for op in ops]  # in place or not
        if in_place:
            for pos, op in enumerate(ops):
                for t in in_place_inputs(graph, op):
                    gi, go = roots[t], roots[op.outputs[0]]
                    if gi == go or not self.groups[gi].arena or not self.groups[go].arena:
                        continue
                    if self.groups[go].producer != pos:
                        continue
                    if op.kind == CONV_ADD and gi == roots.get(op.inputs[0]):
                        continue  # the convolution still reads it
                    self.in_place[pos].append((gi, go, in_place_scratch_bytes(graph, op)))
        # predecessors of each op (bitmask of positions), from producers of its inputs
        producer_of = {t: pos for pos, op in enumerate(ops) for t in op.outputs}
        self.preds = [0] * self.n
        self.succs: list[list[int]] = [[] for _ in ops]
        for pos, op in enumerate(ops):
            for t in op.inputs:
                if t in producer_of and producer_of[t] != pos:
                    self.preds[pos] |= 1 << producer_of[t]
            for p in range(self.n):
                if self.preds[pos] >> p & 1:
                    self.succs[p].append(pos)
        self.pos_of = pos_of
        self.index_of = [op.index for op in ops]
        # live arena bytes before the first op: the model's input groups still to be read
        self.base0 = sum(
            g.size for g in self.groups.values() if g.producer < 0 and g.arena and (g.users or g.output)
        )

    def _dies(self, r: int, done: int) -> bool:
        g = self.groups[r]
        return not g.output and g.users & ~done == 0

    def step(self, done: int, base: int, pos: int) -> tuple[int, int]:
        """Running op ``pos`` after the ops in ``done`` with ``base`` live bytes: the bytes live
        during the step (the planner's ``live_bytes``) and the bytes live after it."""
        after_mask = done | 1 << pos
        during = base + self.fixed_scratch[pos]
        for r in self.new[pos]:
            if self.groups[r].arena:
                during += self.groups[r].size
        for gi, go, scratch in self.in_place[pos]:
            if self._dies(gi, after_mask):
                during += scratch - self.groups[go].size  # the output takes the input's bytes
                break
        after = base
        for r in self.new[pos]:
            g = self.groups[r]
            if g.arena and not self._dies(r, after_mask):
                after += g.size
        for r in self.touched[pos]:
            g = self.groups[r]
            if g.arena and self._dies(r, after_mask):
                after -= g.size
        return during, after

    def peak(self, positions: list[int]) -> int:
        done, base, peak = 0, self.base0, 0
        for pos in positions:
            during, base = self.step(done, base, pos)
            peak = max(peak, during)
            done |= 1 << pos
        return peak


def search_order(
    graph: Graph,
    in_place: bool = True,
    io_in_arena: bool = True,
    max_states: int = MAX_STATES,
    budget: int = BUDGET,
) -> Schedule:
    """The topological order with the lowest peak of live bytes (exact while every level of the
    search holds at most ``max_states`` executed sets, else a beam search). ``budget`` bounds
    the steps evaluated in all: past it, levels keep fewer sets so the search ends in time."""
    c = _Costs(graph, in_place, io_in_arena)
    ready0 = tuple(p for p in range(c.n) if c.preds[p] == 0)
    # executed set (bitmask of positions) -> (peak so far, live bytes after, ready positions)
    level: dict[int, tuple[int, int, tuple[int, ...]]] = {0: (0, c.base0, ready0)}
    back: list[dict[int, tuple[int, int]]] = []
    exact, states, spent = True, 1, 0
    for depth in range(c.n):
        nxt: dict[int, tuple[int, int, tuple[int, ...]]] = {}
        parents: dict[int, tuple[int, int]] = {}
        for done, (peak, base, ready) in level.items():
            spent += len(ready)
            for pos in ready:
                during, after = c.step(done, base, pos)
                new_peak = max(peak, during)
                mask = done | 1 << pos
                old = nxt.get(mask)
                if old is not None and (old[0], old[1]) <= (new_peak, after):
                    continue
                rest = tuple(p for p in ready if p != pos)
                freed = tuple(s for s in c.succs[pos] if c.preds[s] & ~mask == 0)
                nxt[mask] = (new_peak, after, tuple(sorted(rest + freed)))
                parents[mask] = (done, pos)
        # sets kept: max_states, fewer when the budget left would not cover the levels left
        branching = max(1, sum(len(r) for _, _, r in nxt.values()) // max(1, len(nxt)))
        left = max(0, budget - spent) // (branching * max(1, c.n - depth - 1))
        cap = min(max_states, max(MIN_STATES, left))
        if len(nxt) > cap:
            exact = False
            kept = sorted(nxt, key=lambda m: (nxt[m][0], nxt[m][1], m))[:cap]
            nxt = {m: nxt[m] for m in kept}
        states += len(nxt)
        back.append(parents)
        level = nxt
    assert len(level) == 1 or c.n == 0
    mask = (1 << c.n) - 1
    peak = level[mask][0] if c.n else 0
    positions: list[int] = []
    for parents in reversed(back):
        done, pos = parents[mask]
        positions.append(pos)
        mask = done
    positions.reverse()
    return Schedule([c.index_of[p] for p in positions], peak, exact, states)


def greedy_order(graph: Graph, in_place: bool = True, io_in_arena: bool = True) -> Schedule:
    """At each step the ready op leaving the fewest live bytes, then the lowest step peak,
    then the first in the stored order."""
    c = _Costs(graph, in_place, io_in_arena)
    done, base, peak = 0, c.base0, 0
    ready = [p for p in range(c.n) if c.preds[p] == 0]
    positions: list[int] = []
    while ready:
        options = [(c.step(done, base, p), p) for p in ready]
        (during, after), pos = min(options, key=lambda o: (o[0][1], o[0][0], o[1]))
        peak = max(peak, during)
        base = after
        done |= 1 << pos
        positions.append(pos)
        ready.remove(pos)
        ready += [s for s in c.succs[pos] if c.preds[s] & ~done == 0]
    return Schedule([c.index_of[p] for p in positions], peak, False, len(positions))


def order_peak(graph: Graph, order: list[int], in_place: bool = True, io_in_arena: bool = True) -> int:
    """The peak of live bytes of ``order`` by the search's cost model (equals the planner's)."""
    c = _Costs(graph, in_place, io_in_arena)
    return c.peak([c.pos_of[i] for i in order])


def plan_memory(
    graph: Graph,
    alignment: int = ALIGNMENT,
    in_place: bool = True,
    io_in_arena: bool = True,
    reorder: bool = True,
    max_states: int = MAX_STATES,
) -> ArenaPlan:
    """``plan_arena`` over the execution order that gives the smallest arena (see the module
    docstring); the plan records the order, how it was chosen and the stored order's figures."""
    stored = plan_arena(graph, alignment, in_place, io_in_arena)
    best = stored
    if reorder and len(graph.ops) > 1:
        searched = search_order(graph, in_place, io_in_arena, max_states)
        found = "exact search" if searched.exact else "beam search"
        greedy = greedy_order(graph, in_place, io_in_arena)
        for order, how in ((searched.order, found), (greedy.order, "greedy")):
            if order in (stored.order, best.order):
                continue
            plan = plan_arena(graph, alignment, in_place, io_in_arena, order=order)
            if plan.peak_bytes <= stored.peak_bytes and (plan.arena_bytes, plan.peak_bytes) < (
                best.arena_bytes,
                best.peak_bytes,
            ):
                best = plan
                best.order_method = how
        if best is stored:
            stored.order_method = (
                f"as stored: {'an ' if searched.exact else 'a '}{found} found no smaller arena"
            )
    best = drop_needless_modes(graph, best, alignment, in_place, io_in_arena)
    best.stored_peak_bytes, best.stored_arena_bytes = stored.peak_bytes, stored.arena_bytes
    return best


def drop_needless_modes(
    graph: Graph, plan: ArenaPlan, alignment: int = ALIGNMENT, in_place: bool = True, io_in_arena: bool = True
) -> ArenaPlan:
    """``plan`` with each optional in-place mode (1x1 in place) dropped where the peak stays as
    it is without it: those modes cost instructions, so they run only where they lower the
    memory. Without the mode, only the op's own step grows (its output beside its input instead
    of the scratch), so that step's bytes tell; the plan without them is kept if its arena is
    no larger."""
    by_index = {op.index: op for op in graph.ops}
    step = {index: pos for pos, index in enumerate(plan.order)}
    drop = set()
    for index in plan.in_place_ops:
        op = by_index[index]
        if not optional_in_place(graph, op):
            continue
        grown = graph.tensors[op.outputs[0]].nbytes - in_place_scratch_bytes(graph, op)
        if plan.live_bytes[step[index]] + grown <= plan.peak_bytes:
            drop.add(index)
    if not drop:
        return plan
    trial = plan_arena(
        graph, alignment, in_place, io_in_arena, order=plan.order, plain=frozenset(plan.plain | drop)
    )
    if (trial.arena_bytes, trial.peak_bytes) <= (plan.arena_bytes, plan.peak_bytes):
        trial.order_method = plan.order_method
        return trial
    return plan

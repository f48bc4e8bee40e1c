"""mcu_effnet.fitting: a spec fitted to a board with the engine's own numbers.

``spec_graph`` writes the int8 graph of an ``ArchSpec`` without torch; ``footprint`` sizes it as
the code generator will (arena plan, engine weights, code per op kind, instructions);
``search`` picks the largest resolution, then width, that fits the board's budgets.
"""

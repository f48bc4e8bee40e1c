"""mcu_effnet.graph (see DESIGN.md)."""

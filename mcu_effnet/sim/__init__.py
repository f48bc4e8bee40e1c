"""mcu_effnet.sim (see DESIGN.md)."""

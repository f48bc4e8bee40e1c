"""mcu_effnet.arch (see DESIGN.md)."""

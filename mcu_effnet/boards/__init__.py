"""mcu_effnet.boards (see DESIGN.md)."""

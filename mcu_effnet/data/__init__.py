"""mcu_effnet.data (see DESIGN.md)."""

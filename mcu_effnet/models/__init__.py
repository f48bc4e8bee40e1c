"""mcu_effnet.models (see DESIGN.md)."""

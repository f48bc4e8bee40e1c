"""mcu_effnet.codegen (see DESIGN.md)."""

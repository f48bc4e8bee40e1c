"""mcu_effnet.quant (see DESIGN.md)."""

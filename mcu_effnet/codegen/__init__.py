"""mcu_effnet.codegen: from a loaded graph and a board to a firmware project, and its runs.

See docs/ARCHITECTURE.md. ``engine.generate_engine`` writes the native engine's C (straight-line
kernel calls over the planned arena; ``dsp_layout`` and ``dsp_pointwise`` lay weights out for the
DSP kernels; ``c_literals`` formats values as C). ``project.write_project`` renders a whole
project for a board from ``firmware_templates/`` (the native engine, or ``tflm`` for
``--runtime tflm``: a TensorFlow Lite Micro project and its tree checks), builds it and writes
its report. ``toolchain`` runs make and QEMU and parses the firmware's console; ``compare``
builds one model three ways (native, TFLite Micro reference, TFLite Micro + CMSIS-NN) and
compares them in QEMU.
"""

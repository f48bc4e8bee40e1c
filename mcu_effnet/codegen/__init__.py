"""mcu_effnet.codegen: from a loaded graph and a board to a firmware project, and its runs.

See docs/ARCHITECTURE.md. ``engine.generate_engine`` writes the native engine's C (straight-line
kernel calls over the planned arena; ``dsp_layout`` and ``dsp_pointwise`` lay weights out for the
DSP kernels; ``c_literals`` formats values as C). ``project.write_project`` makes a whole
project for a board from ``firmware_templates/`` in four steps: ``project_plan`` (the runtime's
model, the fits checks, the test vector), ``project_render`` (the files; ``templates`` is the one
Jinja environment, ``tflm`` the TensorFlow Lite Micro project and its tree checks),
``project_build`` (make) and ``project_report`` (``report.json``, ``README.md``, ``memory.png``,
and ``report_html``'s ``report.html``). ``profile`` turns a profiling build's counter readings into
per-layer instructions; ``fuse`` runs SiLU pairs as one table lookup. ``toolchain`` runs make and QEMU and parses the firmware's console; ``compare``
builds one model three ways (native, TFLite Micro reference, TFLite Micro + CMSIS-NN) and
compares them in QEMU.
"""

"""mcu_effnet.quant: QAT training and the checked export to QCDQ ONNX and int8 ``.tflite``.

The torch side of the project (see docs/ARCHITECTURE.md). A run goes
``pipeline.train_and_export``: ``train.run_qat`` (float phase, BatchNorm folding,
``calibrate``, QAT phase; one epoch is ``loop``; ``lr_schedule``, ``options``, ``distributed``
for ``torchrun``; ``recipe`` holds the weight EMA, the best-weights keeper, distillation from a
teacher run and ``--init``) writes into a ``run_folder`` and shows its progress with ``training_report``;
then ``pipeline.export_run`` writes ``model.onnx`` (``onnx_export``, checked against Brevitas
in onnxruntime) and ``model.tflite`` (``tflite_run``).

The ONNX -> ``.tflite`` path needs no torch: ``tflite_export.export_tflite`` reads the QCDQ graph (Brevitas) or QDQ graph (onnxruntime's ``quantize_static``)
(``onnx_graph``), matches its patterns into an ``int8_model.Int8Model`` (``qcdq_lower``), writes the
flatbuffer (``tflite_writer``) and checks the file op by op and end to end in TFLite Micro against
onnxruntime (``tflite_check``).
"""

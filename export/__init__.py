"""Export stage: ONNX, TFLite int8, TFLM host check, codegen (see issues 3, 4)."""

"""Export stage: ONNX, TFLite int8, TFLite Micro (the C generated from them is in tinyrrm.codegen)."""

"""The export stage: checkpoints to ONNX model directories (heavy dependencies live here, never in the runtime)."""

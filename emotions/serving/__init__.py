"""Serving: the FastAPI service, ONNX (fp32 / int8) export and the onnxruntime predictor."""

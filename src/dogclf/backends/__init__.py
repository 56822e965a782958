"""Inference backends behind one interface: a preprocessed NCHW float32 batch in, float32 logits out.

Preprocessing, temperature, top-k and errors stay in `dogclf.inference.InferenceEngine`, so every backend
answers the same way; a backend only runs the network. Heavy engines (OpenVINO, ONNX Runtime) load on use.
"""

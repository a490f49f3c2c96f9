"""Deployment: ONNX export of a model's style encoder and content path (+ optional int8 content graph).

The exported directory runs without torch through ``dinstyle.lite``.
"""
from .onnx_export import check_outputs, export_onnx, verify
from .quantize import quantize_content

__all__ = ["check_outputs", "export_onnx", "quantize_content", "verify"]

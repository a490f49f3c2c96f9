from .din import DIN, adain, dynamic_conv2d, dynamic_conv2d_reference, identity_kernel, instance_stats

__all__ = ["DIN", "adain", "dynamic_conv2d", "dynamic_conv2d_reference", "identity_kernel", "instance_stats"]

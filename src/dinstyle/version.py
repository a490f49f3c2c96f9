"""The package version, in a leaf module (model files, style codes and exports record it)."""
__version__ = "0.1.0"

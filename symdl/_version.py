"""The package version, importable by codegen without importing the package's applications."""

__version__ = "0.1.0"

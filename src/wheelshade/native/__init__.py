"""Compiled code: binary formats, architectures, reference analysis, patching, load checks."""

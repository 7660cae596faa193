"""Data shipped with live: the default model, its labels, the model catalog, the demo clip.

Installed as the package ``live.data`` (see pyproject.toml); read it through
:func:`live.assets.data_file`.
"""

"""The project's segmentation networks (torch): definitions, construction and checkpoint loading.

Used by ``training/`` (which trains them) and the torch backend (which runs a checkpoint).
Every module here imports torch; import them only where torch is expected.
"""

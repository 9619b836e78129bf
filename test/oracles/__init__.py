"""Test oracles: independent truth the tests compare the package with (never shipped in ``seg_perception``)."""

"""Model metadata loading and its errors."""

from __future__ import annotations

import pytest
import yaml

from seg_perception.errors import ModelError
from seg_perception.model_spec import ModelSpec, default_palette

GOOD = {
    "class_names": ["road", "car"],
    "colors": [[1, 2, 3], [4, 5, 6]],
    "mean": [0.1, 0.2, 0.3],
    "std": [0.5, 0.5, 0.5],
    "input_size": [360, 480],
    "drivable_classes": ["road"],
    "obstacle_classes": ["car"],
}


def test_load_beside_model(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "m.onnx").write_bytes(b"")
    s = ModelSpec.for_model(tmp_path / "m.onnx")
    assert s.class_names == ("road", "car") and s.input_size == (360, 480) and s.name == "m"
    assert s.colors.dtype.name == "uint8" and s.class_ids(["car"]) == [1]
    assert ModelSpec.from_dict(s.to_dict()).to_dict() == s.to_dict()


def test_default_colours_when_absent():
    s = ModelSpec.from_dict({"class_names": [f"c{i}" for i in range(150)]})
    assert s.colors.shape == (150, 3) and len({tuple(c) for c in s.colors}) == 150
    assert default_palette(3).shape == (3, 3)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"class_names": []}, "no class_names"),
        ({"class_names": ["a", "a"]}, "duplicate"),
        ({"colors": [[1, 2, 3]]}, "colors"),
        ({"std": [0, 1, 1]}, "std"),
        ({"input_size": [0, 5]}, "input_size"),
        ({"drivable_classes": ["lava"]}, "unknown classes"),
        ({"resize": "crop"}, "resize"),
        ({"layout": "NHWC"}, "NCHW"),
        ({"colour": "typo"}, "unknown keys"),
    ],
)
def test_invalid_metadata(tmp_path, change, needle):
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    with pytest.raises(ModelError, match=needle) as info:
        ModelSpec.from_yaml(path)
    assert str(path) in str(info.value)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        ModelSpec.for_model(tmp_path / "absent.onnx")
    bad = tmp_path / "bad.yaml"
    bad.write_text("class_names: [unclosed")
    with pytest.raises(ModelError, match="not valid YAML"):
        ModelSpec.from_yaml(bad)
    with pytest.raises(ModelError, match="mapping"):
        ModelSpec.from_dict(["a"])  # type: ignore[arg-type]

"""CamVid-layout dataset reader: split files, path resolution, ordering, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from seg_perception.errors import DatasetError
from seg_perception.evaluation.datasets import SegmentationDataset


def test_reads_pairs_in_split_order(known_dataset: Path, ev) -> None:
    ds = SegmentationDataset(known_dataset, "test")
    assert len(ds) == 2
    rgb, lab = ds.load(0)
    img, gt = ev.known_frames()[0]
    np.testing.assert_array_equal(rgb, img)
    np.testing.assert_array_equal(lab, gt)
    assert rgb.dtype == np.uint8 and lab.dtype == np.uint8
    assert [s.name for s, _, _ in ds] == ["seq_0000", "seq_0001"]


def test_natural_sort_and_limit(tmp_path: Path, ev) -> None:
    frames = ev.known_frames() * 2
    names = ["a_10.png", "a_9.png", "a_100.png", "a_1.png"]
    root = ev.write_dataset(tmp_path / "d", frames, names=names)
    assert [s.name for s in SegmentationDataset(root, sort=True).samples] == ["a_1", "a_9", "a_10", "a_100"]
    assert [s.name for s in SegmentationDataset(root, sort=True, limit=2).samples] == ["a_1", "a_9"]
    assert [s.name for s in SegmentationDataset(root).samples] == ["a_10", "a_9", "a_100", "a_1"]


def test_absolute_segnet_paths_resolve_below_root(known_dataset: Path) -> None:
    (known_dataset / "test.txt").write_text("/SegNet/CamVid/test/seq_0000.png /SegNet/CamVid/testannot/seq_0000.png\n")
    ds = SegmentationDataset(known_dataset, "test")
    assert ds.samples[0].image == known_dataset / "test" / "seq_0000.png"


def test_missing_split_file_names_available_splits(known_dataset: Path) -> None:
    with pytest.raises(DatasetError, match=r"val\.txt not found.*\['test'\]"):
        SegmentationDataset(known_dataset, "val")


def test_missing_listed_file_and_malformed_line(known_dataset: Path) -> None:
    (known_dataset / "test.txt").write_text("test/nope.png testannot/nope.png\n")
    with pytest.raises(DatasetError, match="nope.png does not exist"):
        SegmentationDataset(known_dataset, "test")
    (known_dataset / "test.txt").write_text("just_one_column.png\n")
    with pytest.raises(DatasetError, match="expected 'image annotation'"):
        SegmentationDataset(known_dataset, "test")


def test_label_size_mismatch_is_a_dataset_error(known_dataset: Path) -> None:
    cv2.imwrite(str(known_dataset / "testannot" / "seq_0001.png"), np.zeros((5, 8), np.uint8))
    ds = SegmentationDataset(known_dataset, "test")
    with pytest.raises(DatasetError, match=r"is 8x5 but its image seq_0001.png is 8x4"):
        ds.load(1)


def test_colour_label_images_are_rejected(known_dataset: Path) -> None:
    lab = np.zeros((4, 8, 3), np.uint8)
    lab[..., 1] = 1
    cv2.imwrite(str(known_dataset / "testannot" / "seq_0000.png"), lab)
    with pytest.raises(DatasetError, match="3 channels"):
        SegmentationDataset(known_dataset, "test").load(0)
